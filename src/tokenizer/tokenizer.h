/* Tokenizer internals (bc_tok_ prefix), shared by the files of src/tokenizer/.
 *
 * A tokenizer is Hugging Face's pipeline, read from tokenizer.json (or built from vocab.txt):
 *   decode UTF-8 (errors -> U+FFFD)
 *   -> added tokens with normalized=false, matched on the raw text         (added.c)
 *   -> per remaining piece: normalizer (a sequence of steps)               (normalize.c,
 *                                                                             precompiled.c)
 *   -> added tokens with normalized=true, matched on the normalized piece  (added.c)
 *   -> pre-tokenizer (a sequence of steps splitting pieces into words)     (pretok.c, regex.c)
 *   -> model on each word: WordPiece, Unigram, BPE or WordLevel            (models.c)
 *   -> truncation -> post-processor (offset trimming, template)           (encode.c)
 * exactly as the Rust `tokenizers` crate runs it, alignments included: every normalized
 * character carries the range [a0, a1) of original characters it came from, following
 * NormalizedString::transform (tokenizer/normalizer.rs), so offsets come out as HF reports them.
 * Word ids are the index of the pre-tokenizer split a token came from (added tokens count).
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

/* ---- characters ---- */

/* Normalized character: code point and the original characters [a0, a1) it is aligned to
 * (absolute indices in the text; a0 == a1 for characters inserted at the start of a piece). */
typedef struct {
  uint32_t cp;
  uint32_t a0, a1;
} bc_tok_nchar;

/* Growable buffer of normalized characters. */
typedef struct {
  bc_tok_nchar *v;
  size_t n, cap;
} bc_tok_nbuf;

/* One character of a transformation (NormalizedString::transform): change 1 = inserted,
 * 0 = replaces one character, -k = replaces one and removes k following ones. */
typedef struct {
  uint32_t cp;
  int32_t change;
} bc_tok_change;

typedef struct {
  bc_tok_change *v;
  size_t n, cap;
} bc_tok_changes;

/* ---- regular expressions (regex.c): PCRE2 with UTF + UCP, iterated like the onig crate ---- */
typedef struct bc_tok_regex bc_tok_regex;
/* Compiles pattern (a literal string when literal != 0). NULL with a message in err. */
bc_tok_regex *bc_tok_regex_new(bc_err *err, const char *what, const char *pattern, int literal);
void bc_tok_regex_free(bc_tok_regex *re);
/* Match iterator state: one per thread (PCRE2 match data is not shareable). */
typedef struct {
  void *md; /* pcre2_match_data_8 * */
  const bc_tok_regex *re;
} bc_tok_rematch;
/* Finds the matches of re in s[0..len) (UTF-8) as onig's find_iter does; appends (start, end)
 * byte pairs to *out (n pairs, growing *cap). Returns BERTCL_OK or an error status. */
int bc_tok_regex_find_all(const bc_tok_regex *re, bc_tok_rematch *m, const char *s, size_t len,
                          uint32_t **out, size_t *n, size_t *cap);
void bc_tok_rematch_free(bc_tok_rematch *m);

/* ---- Precompiled normalizer (precompiled.c): SentencePiece's charsmap ---- */
typedef struct bc_tok_precompiled bc_tok_precompiled;
int bc_tok_precompiled_new(bc_err *err, const char *base64, bc_tok_precompiled **out);
void bc_tok_precompiled_free(bc_tok_precompiled *pc);

/* ---- components ---- */

enum {
  BC_NORM_BERT = 1,
  BC_NORM_NFD,
  BC_NORM_NFKD,
  BC_NORM_NFC,
  BC_NORM_NFKC,
  BC_NORM_LOWERCASE,
  BC_NORM_STRIP_ACCENTS,
  BC_NORM_STRIP,
  BC_NORM_REPLACE,
  BC_NORM_PREPEND,
  BC_NORM_PRECOMPILED,
  BC_NORM_NMT,
  BC_NORM_BYTELEVEL
};

typedef struct {
  int kind;
  int clean_text, handle_chinese, strip_accents, lowercase; /* BERT */
  int left, right;                                          /* STRIP */
  bc_tok_regex *re;                                         /* REPLACE */
  char *pattern;                                            /* REPLACE: as written */
  uint32_t *text;                                           /* REPLACE content, PREPEND */
  size_t text_len;
  bc_tok_precompiled *pc; /* PRECOMPILED */
} bc_tok_norm;

/* SplitDelimiterBehavior */
enum {
  BC_SPLIT_REMOVED = 0,
  BC_SPLIT_ISOLATED,
  BC_SPLIT_MERGED_PREV,
  BC_SPLIT_MERGED_NEXT,
  BC_SPLIT_CONTIGUOUS
};

enum {
  BC_PRE_BERT = 1,       /* whitespace removed, punctuation isolated */
  BC_PRE_WHITESPACE,     /* \w+|[^\w\s]+ kept */
  BC_PRE_WS_SPLIT,       /* whitespace removed */
  BC_PRE_PUNCT,          /* punctuation, behavior */
  BC_PRE_DIGITS,         /* numeric characters, isolated or contiguous */
  BC_PRE_CHAR_DELIM,     /* one character, removed */
  BC_PRE_METASPACE,      /* replacement char, prepend scheme, split */
  BC_PRE_BYTELEVEL,      /* add_prefix_space, GPT-2 regex, byte-to-char map */
  BC_PRE_SPLIT           /* regex or string pattern, behavior, invert */
};
enum { BC_PREPEND_ALWAYS = 0, BC_PREPEND_FIRST, BC_PREPEND_NEVER };

typedef struct {
  int kind;
  int behavior;           /* PUNCT, SPLIT */
  int individual;         /* DIGITS */
  uint32_t ch;            /* CHAR_DELIM delimiter, METASPACE replacement */
  int prepend_scheme;     /* METASPACE */
  int split;              /* METASPACE */
  int add_prefix_space;   /* BYTELEVEL */
  int use_regex;          /* BYTELEVEL */
  int invert;             /* SPLIT */
  bc_tok_regex *re;       /* SPLIT, BYTELEVEL (GPT-2 pattern) */
  char *pattern;          /* SPLIT: as written */
} bc_tok_pre;

enum { BC_MODEL_WORDPIECE = 1, BC_MODEL_UNIGRAM, BC_MODEL_BPE, BC_MODEL_WORDLEVEL };

/* Byte trie for Unigram's common-prefix search. */
typedef struct {
  uint32_t *first; /* (nodes + 1) edges of node k: first[k] .. first[k+1] */
  uint8_t *label;  /* (edges) sorted within a node */
  uint32_t *child; /* (edges) */
  int32_t *value;  /* (nodes) id of the piece ending here, -1 if none */
  size_t nodes, edges;
  uint32_t root[256]; /* child of the root per byte + 1, 0 = none */
} bc_tok_trie;

/* BPE merges: (left id, right id) -> (rank, merged id). */
typedef struct {
  uint64_t *keys; /* (cap) left << 32 | right, UINT64_MAX = empty */
  uint32_t *rank, *merged;
  size_t cap;
} bc_tok_merges;

typedef struct {
  int kind;
  int32_t unk_id; /* -1 = none, -2 = named but not in the vocabulary (an error when needed) */
  /* WordPiece */
  char *prefix; /* continuing_subword_prefix (WordPiece, BPE); NULL for BPE without one */
  size_t prefix_len;
  size_t max_chars_per_word;
  /* Unigram */
  double *scores; /* (n_pieces) */
  size_t n_pieces;
  double min_score;
  bc_tok_trie trie;
  /* Unigram, BPE */
  int byte_fallback;
  int32_t byte_id[256]; /* id of "<0xXX>", -1 if absent */
  /* BPE */
  char *suffix; /* end_of_word_suffix, NULL if none */
  size_t suffix_len;
  int fuse_unk, ignore_merges;
  float dropout;
  bc_tok_merges merges;
} bc_tok_model;

/* Template items (post-processor). */
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

enum { BC_PP_NONE = 0, BC_PP_TEMPLATE, BC_PP_BERT, BC_PP_ROBERTA };
typedef struct {
  int kind;
  int trims;            /* ByteLevel / RobertaProcessing offset trimming passes */
  int trim_prefix_space; /* add_prefix_space of the trimming processor */
  bc_tpl single, pair;
} bc_tok_post;

/* Added token: matched in the raw text (normalized = 0) or in the normalized text. */
typedef struct {
  uint32_t *cps; /* (len) pattern as code points (normalized content when normalized) */
  size_t len;
  int32_t id;
  uint8_t special, normalized, lstrip, rstrip, single_word;
} bc_tok_added;

typedef struct {
  bc_tok_added *v; /* sorted by first code point */
  size_t n;
  uint8_t first_ascii[128]; /* 1 when some token starts with this ASCII char */
  int non_ascii_first;
} bc_tok_addset;

struct bertcl_tokenizer {
  bc_err err;
  /* vocabulary: id -> string (pointers into pool), and string -> id maps */
  char *pool;
  size_t pool_len, pool_cap;
  uint32_t *id_off; /* (n_ids) offset + 1 of the id's string in pool, 0 = unused id */
  uint32_t *id_len; /* (n_ids) */
  size_t n_ids;
  size_t vocab_size; /* model vocabulary entries */
  bc_tok_map vocab;  /* every model vocabulary entry */
  bc_tok_map cont;   /* WordPiece: entries that start with prefix, keyed without it */
  /* pipeline */
  bc_tok_norm *norms;
  size_t n_norms;
  bc_tok_pre *pres;
  size_t n_pres;
  bc_tok_model model;
  bc_tok_post post;
  bc_tok_addset added_raw, added_norm; /* every added token is in one of the two */
  bc_tok_added *added_all;             /* (n_added) in file order, for token_to_id */
  size_t n_added;
  int32_t *added_index; /* (added_index_cap) hash of added_all by content: index + 1 */
  size_t added_index_cap;
  int64_t next_added_id; /* id of the next added token not in the vocabulary (starts at the
                            model's vocabulary size) */
  int has_pad;           /* tokenizer.json has a padding section */
  int need_regex; /* some component matches a regex: encode allocates match data */
  /* lengths and padding */
  size_t max_length;
  int32_t pad_id, pad_type_id;
  size_t trunc_max_length; /* tokenizer.json "truncation" (shown by info; not a default) */
  /* descriptions of the components (bertcl_tokenizer_describe) */
  char *desc[5];
};

/* Loads from explicit files; json_path NULL = vocab.txt + tokenizer_config.json mode.
 * config_path / st_path / model_config_path may be NULL or name missing files. */
int bc_tok_load_files(bertcl_tokenizer **out, const char *json_path, const char *vocab_path,
                      const char *tok_config_path, const char *model_config_path,
                      const char *st_config_path);

/* ---- vocabulary (tokenizer.c) ---- */
/* Records token string s as id (the later definition of an id wins). */
int bc_tok_set_id(bertcl_tokenizer *tok, int64_t id, const char *s, size_t len);
/* String of an id (NUL-terminated), NULL when unused. */
static inline const char *bc_tok_str(const bertcl_tokenizer *tok, size_t id) {
  return id < tok->n_ids && tok->id_off[id] ? tok->pool + tok->id_off[id] - 1 : NULL;
}
int bc_tok_map_init(bertcl_tokenizer *tok, bc_tok_map *m, size_t n, size_t skip);
void bc_tok_map_put(const bertcl_tokenizer *tok, bc_tok_map *m, uint32_t id);
void bc_tok_map_free(bc_tok_map *m);
/* Looks up key (len bytes) in map; -1 when absent. */
int32_t bc_tok_map_get(const bertcl_tokenizer *tok, const bc_tok_map *m, const char *key,
                       size_t len);

/* ---- tokenizer.json (parse.c) ---- */
int bc_tok_parse_json(bertcl_tokenizer *tok, const char *path);
struct json_t;
/* The components of a parsed tokenizer.json (name: for messages). */
int bc_tok_parse_root(bertcl_tokenizer *tok, const char *name, struct json_t *root);
/* A tokenizer from tokenizer.json text alone (no config files: no default max length). For
 * the fuzzers and tests. */
int bc_tok_load_json_text(bertcl_tokenizer **out, const char *text, size_t len);
/* Component descriptions for the vocab.txt mode and after parsing. */
int bc_tok_describe_all(bertcl_tokenizer *tok);
void bc_tok_components_free(bertcl_tokenizer *tok);
/* [CLS] A [SEP] (BERT) or <s> A </s> </s> B </s> (roberta != 0) templates. */
int bc_tok_tpl_classic(bertcl_tokenizer *tok, int32_t cls, int32_t sep, int roberta);
/* Adds an added token the way tokenizers' AddedVocabulary::add_tokens does (id = existing id of
 * the content, else the next free id). */
int bc_tok_add_token(bertcl_tokenizer *tok, const char *content, int special, int normalized,
                     int lstrip, int rstrip, int single_word);
/* Builds the two matching sets (after every token is added and the normalizer is known). */
int bc_tok_added_finish(bertcl_tokenizer *tok);

/* A match of an added token: characters [s, e) (lstrip/rstrip included) and its id. */
typedef struct {
  uint32_t s, e;
  int32_t id;
} bc_tok_amatch;
/* Finds the added tokens of set in cps (n characters, the code point every stride uint32s) the
 * way AddedVocabulary::find_matches does: leftmost-longest, non-overlapping; special tokens
 * skipped when split_special; single_word, lstrip, rstrip applied. */
int bc_tok_added_find(const bc_tok_addset *set, const uint32_t *cps, size_t stride, size_t n,
                      int split_special, bc_tok_amatch **out, size_t *nout, size_t *cap);
void bc_tok_addset_free(bc_tok_addset *set);

/* ---- characters (normalize.c) ---- */

/* Decodes UTF-8, replacing each maximal ill-formed subsequence with U+FFFD (Python's
 * errors="replace"). cps must hold len entries. Returns the number of code points; *replaced
 * gets the number of replacements. */
size_t bc_tok_utf8_decode(const char *s, size_t len, uint32_t *cps, size_t *replaced);
/* Encodes one code point (<= 0x10FFFF) into out (4 bytes); returns the byte count. */
size_t bc_tok_utf8_put(uint32_t cp, char *out);

/* Character classes as the Rust tokenizers sees them (unicode_tables.h). */
int bc_tok_is_space(uint32_t cp);   /* char::is_whitespace, regex \s */
int bc_tok_is_punct(uint32_t cp);   /* BertPreTokenizer / Punctuation */
int bc_tok_is_word(uint32_t cp);    /* regex \w (Unicode) */
int bc_tok_is_numeric(uint32_t cp); /* char::is_numeric */
int bc_tok_ccc(uint32_t cp);        /* canonical combining class (unicode-normalization) */
uint32_t bc_tok_lower(uint32_t cp); /* char::to_lowercase for the one-character cases */

int bc_tok_nbuf_grow(bc_tok_nbuf *b, size_t extra);
static inline int bc_tok_nbuf_reserve(bc_tok_nbuf *b, size_t extra) {
  return b->n + extra <= b->cap ? BERTCL_OK : bc_tok_nbuf_grow(b, extra);
}
int bc_tok_changes_push(bc_tok_changes *c, uint32_t cp, int32_t change);

/* Scratch space of the normalizers (one per thread). */
typedef struct {
  bc_tok_nbuf tmp;
  bc_tok_changes ch;
  uint32_t *u32;
  size_t u32_cap;
  char *bytes;
  size_t bytes_cap;
  uint32_t *matches;
  size_t matches_cap;
  bc_tok_rematch rm;
} bc_tok_nscratch;
void bc_tok_nscratch_free(bc_tok_nscratch *s);

/* Applies the transformation ch to b (NormalizedString::transform with initial_offset), with
 * shift the alignment of characters inserted at the very start. */
int bc_tok_transform(bc_tok_nbuf *b, const bc_tok_changes *ch, size_t initial_offset,
                     uint32_t shift, bc_tok_nbuf *tmp);

/* Runs the normalizer over b in place (shift: original index of the piece's start). */
int bc_tok_normalize(const bertcl_tokenizer *tok, bc_tok_nbuf *b, uint32_t shift,
                     bc_tok_nscratch *s);
/* The same from normalizer step `from` on. */
int bc_tok_normalize_from(const bertcl_tokenizer *tok, size_t from, bc_tok_nbuf *b,
                          uint32_t shift, bc_tok_nscratch *s);
/* Normalizes the code points cps[0..n) (original characters shift..shift+n) into b. */
int bc_tok_normalize_cps(const bertcl_tokenizer *tok, const uint32_t *cps, size_t n,
                         uint32_t shift, bc_tok_nbuf *b, bc_tok_nscratch *s);
/* BertNormalizer over b, or over cps[0..ncps) (aligned to shift + i) into b when cps is set. */
int bc_tok_norm_bert(const bc_tok_norm *n, bc_tok_nbuf *b, const uint32_t *cps, size_t ncps,
                     uint32_t shift, bc_tok_nscratch *s);
/* NFD / NFKD / NFC / NFKC (normalize.c). */
int bc_tok_norm_nfx(int kind, bc_tok_nbuf *b, uint32_t shift, bc_tok_nscratch *s);
/* Precompiled (precompiled.c). */
int bc_tok_norm_precompiled(const bc_tok_precompiled *pc, bc_tok_nbuf *b, uint32_t shift,
                            bc_tok_nscratch *s);
/* Replaces every match of re by text (NormalizedString::replace). */
int bc_tok_norm_replace(const bc_tok_regex *re, const uint32_t *text, size_t text_len,
                        bc_tok_nbuf *b, uint32_t shift, bc_tok_nscratch *s);
/* Prepends text (NormalizedString::prepend); no-op on an empty buffer. */
int bc_tok_norm_prepend(const uint32_t *text, size_t text_len, bc_tok_nbuf *b, uint32_t shift,
                        bc_tok_nscratch *s);
/* Maps every character to the characters of its UTF-8 bytes (ByteLevel). */
int bc_tok_bytelevel_map(bc_tok_nbuf *b, uint32_t shift, bc_tok_nscratch *s);
/* The 256 characters of the byte-level alphabet (GPT-2's bytes_to_unicode). */
extern const uint16_t bc_tok_byte_char[256];
/* UTF-8 of chars[0..n) into s->bytes; bpos (n + 1 entries, in s->u32) gets each char's byte
 * start. */
int bc_tok_to_utf8(const bc_tok_nchar *chars, size_t n, bc_tok_nscratch *s, size_t *nbytes);

/* ---- models ---- */

/* A token of one sequence: id, original character range, word index; lead/trail count the
 * leading/trailing whitespace characters of its string (ByteLevel offset trimming). */
typedef struct {
  int32_t id;
  uint32_t start, end;
  int32_t word;
  uint16_t lead, trail;
} bc_tok_token;

typedef struct {
  bc_tok_token *v;
  size_t n, cap;
} bc_tok_tokvec;

int bc_tok_tokvec_grow(bc_tok_tokvec *t);
/* Appends a model token (lead/trail 0xFFFF: counted from the id's string when needed). */
static inline int bc_tok_push(bc_tok_tokvec *t, int32_t id, uint32_t start, uint32_t end,
                              int32_t word) {
  if (t->n == t->cap && bc_tok_tokvec_grow(t)) return BERTCL_ERR_NOMEM;
  t->v[t->n++] = (bc_tok_token){id, start, end, word, 0xFFFF, 0xFFFF};
  return BERTCL_OK;
}

/* Model scratch space (one per thread). */
typedef struct {
  char *bytes;
  uint32_t *bpos; /* byte -> char, char -> byte */
  size_t cap;
  double *best;    /* Unigram: (bytes + 1) */
  int32_t *from;   /* Unigram: start of the best path's last piece, -1 unreached */
  int32_t *bid;    /* Unigram: id of that piece */
  size_t ucap;
  void *sym; /* BPE symbols */
  size_t sym_cap;
  void *heap;
  size_t heap_cap;
  int32_t *ids;
  uint32_t *spans;
  size_t ids_cap;
} bc_tok_mscratch;
void bc_tok_mscratch_free(bc_tok_mscratch *m);

/* Tokenizes one pre-tokenized word w[0..n) (n > 0), appending to out. Returns BERTCL_OK,
 * BERTCL_ERR_NOMEM, or BERTCL_ERR_INVALID_ARG (an unknown character and no unk token). */
int bc_tok_wordpiece(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w,
                     size_t n, int32_t word, bc_tok_tokvec *out);
int bc_tok_unigram(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w,
                   size_t n, int32_t word, bc_tok_tokvec *out);
int bc_tok_bpe(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w, size_t n,
               int32_t word, bc_tok_tokvec *out);
int bc_tok_wordlevel(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w,
                     size_t n, int32_t word, bc_tok_tokvec *out);
int bc_tok_trie_build(bertcl_tokenizer *tok, bc_tok_trie *t);
void bc_tok_trie_free(bc_tok_trie *t);
int bc_tok_merges_put(bc_tok_merges *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t merged);
void bc_tok_merges_free(bc_tok_merges *m);

/* ---- pre-tokenizers (pretok.c) ---- */

/* One piece of text on its way through the pre-tokenizers. */
typedef struct {
  const bc_tok_nchar *ptr; /* its characters in the step's input or work buffer, or NULL: */
  size_t off;              /* ... at buf.v + off (the level's own buffer, which may move) */
  size_t len;
  uint32_t shift; /* original start of the piece */
} bc_tok_piece;

/* Output of one pre-tokenizer step: pieces whose characters are in buf. */
typedef struct {
  bc_tok_nbuf buf;
  bc_tok_piece *pieces;
  size_t n, cap;
  bc_tok_nbuf work; /* the step's own scratch */
  void *spans;      /* pretok.c's span list (spans_cap entries) */
  size_t spans_cap;
} bc_tok_level;
void bc_tok_level_free(bc_tok_level *L);

/* Applies pre-tokenizer step p to the piece chars[0..n) (n > 0, original start shift),
 * appending its non-empty pieces to L (L is not cleared). */
int bc_tok_pre_apply(const bc_tok_pre *p, const bc_tok_nchar *chars, size_t n, uint32_t shift,
                     bc_tok_level *L, bc_tok_nscratch *s);

#endif /* BC_TOKENIZER_H */
