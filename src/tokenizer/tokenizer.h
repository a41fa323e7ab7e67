/* WordPiece tokenizer internals (bc_tok_ prefix), shared by the files of src/tokenizer/.
 *
 * Pipeline, exactly as Hugging Face's Rust tokenizers run it for BERT:
 *   decode UTF-8 (errors -> U+FFFD) -> split out added tokens on the raw text -> per remaining
 *   piece: BertNormalizer (clean_text, CJK spacing, NFD + drop Mn, lowercase) ->
 *   BertPreTokenizer (split on whitespace, isolate punctuation) -> WordPiece (greedy longest
 *   match, "##" continuation, [UNK] for words over max_input_chars_per_word chars) ->
 *   truncation -> TemplateProcessing ([CLS] A [SEP] B [SEP]).
 */
#ifndef BC_TOKENIZER_H
#define BC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Longest text (bytes) one call tokenizes: offsets are int32. */
#define BC_TOK_MAX_TEXT 0x7FFFFFF0
/* Largest token id accepted from a file (vocabularies have well under a million). */
#define BC_TOK_MAX_ID (1 << 24)

/* Hash map from byte strings to ids: open addressing, keys are slices of the tokenizer's pool. */
typedef struct {
  uint32_t *slots;  /* (cap) id + 1, 0 = empty */
  uint32_t *hashes; /* (cap) */
  size_t cap;       /* power of two */
  size_t count;
  size_t max_key;  /* longest key in bytes */
  size_t key_skip; /* bytes of the stored token skipped for the key ("##" for continuations) */
} bc_tok_map;

typedef struct {
  uint32_t *cps; /* (len) content as code points */
  size_t len;
  int32_t id;
  int special; /* special tokens are plain text under split_special_tokens */
} bc_tok_added;

enum { BC_TPL_SPECIAL = 0, BC_TPL_SEQ_A = 1, BC_TPL_SEQ_B = 2 };
typedef struct {
  int kind;
  int32_t type_id;
  int32_t *ids; /* (nids) for BC_TPL_SPECIAL */
  size_t nids;
} bc_tpl_item;

typedef struct {
  bc_tpl_item *items;
  size_t n;
  size_t n_special; /* template tokens in total */
} bc_tpl;

struct bertcl_tokenizer {
  bc_err err;
  /* normalizer */
  int clean_text, handle_chinese, strip_accents, lowercase;
  /* WordPiece */
  char *prefix;
  size_t prefix_len;
  size_t max_chars_per_word;
  int32_t unk_id;
  /* vocabulary: id -> string (pointers into pool), and string -> id maps */
  char *pool;
  size_t pool_len, pool_cap;
  char **id_tok;    /* (n_ids) NULL for unused ids */
  uint32_t *id_len; /* (n_ids) */
  size_t n_ids;
  size_t vocab_size; /* distinct model vocabulary entries */
  bc_tok_map vocab;  /* every model vocabulary entry */
  bc_tok_map cont;   /* entries that start with prefix, keyed without it */
  /* added tokens, matched on the raw text before normalisation (normalized: false) */
  bc_tok_added *added;
  size_t n_added;
  uint8_t added_first_ascii[128]; /* 1 when some added token starts with this ASCII char */
  int added_non_ascii_first;      /* some added token starts with a non-ASCII char */
  /* post-processor */
  bc_tpl single, pair;
  /* lengths and padding */
  size_t max_length;
  int32_t pad_id, pad_type_id;
};

/* Loads from explicit files; json_path NULL = vocab.txt + tokenizer_config.json mode.
 * config_path / st_path / model_config_path may be NULL or name missing files. */
int bc_tok_load_files(bertcl_tokenizer **out, const char *json_path, const char *vocab_path,
                      const char *tok_config_path, const char *model_config_path,
                      const char *st_config_path);

/* Looks up key (len bytes) in map; -1 when absent. */
int32_t bc_tok_map_get(const bertcl_tokenizer *tok, const bc_tok_map *m, const char *key,
                       size_t len);

/* ---- characters (normalize.c) ---- */

/* Decodes UTF-8, replacing each maximal ill-formed subsequence with U+FFFD (Python's
 * errors="replace"). cps must hold len entries. Returns the number of code points; *replaced
 * gets the number of replacements. */
size_t bc_tok_utf8_decode(const char *s, size_t len, uint32_t *cps, size_t *replaced);
/* Encodes one code point (<= 0x10FFFF) into out (4 bytes); returns the byte count. */
size_t bc_tok_utf8_put(uint32_t cp, char *out);

/* Normalized character: code point, index of the original character it came from. */
typedef struct {
  uint32_t cp;
  uint32_t orig;
} bc_tok_nchar;

/* Growable buffer of normalized characters. */
typedef struct {
  bc_tok_nchar *v;
  size_t n, cap;
  uint32_t *tmp; /* scratch for NFD alignment (tmp_cap entries) */
  size_t tmp_cap;
} bc_tok_nbuf;

/* Appends the normalisation of cps[0..n) (original indices base..base+n) to out.
 * Returns BERTCL_OK or BERTCL_ERR_NOMEM. */
int bc_tok_normalize(const bertcl_tokenizer *tok, const uint32_t *cps, size_t n, uint32_t base,
                     bc_tok_nbuf *out);

/* Pre-tokenizer classes of a normalized character. */
int bc_tok_is_space(uint32_t cp);
int bc_tok_is_punct(uint32_t cp);

#endif /* BC_TOKENIZER_H */
