/* A model folder's tokenizer checked at load; see tokcheck.h. */
#define _POSIX_C_SOURCE 200809L
#include "model/tokcheck.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_file(const char *p) {
  struct stat sb;
  return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

char *bc_tokfile_path(const char *dir) {
  static const char *const names[2] = {"tokenizer.json", "vocab.txt"};
  size_t n = strlen(dir) + 32;
  char *p = malloc(n);
  for (int i = 0; p && i < 2; i++) {
    snprintf(p, n, "%s/%s", dir, names[i]);
    if (is_file(p)) return p;
  }
  free(p);
  return NULL;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

int bc_tokfile_precheck(bc_err *err, const char *tokfile) {
  if (!ends_with(tokfile, "vocab.txt")) return BERTCL_OK;
  char *data = NULL;
  size_t len = 0;
  int st = bc_read_file(err, tokfile, &data, &len);
  if (st) return st;
  size_t line = 0, tokens = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && data[j] != '\n') j++;
    line++;
    size_t n = j - i;
    while (n > 0 && data[i + n - 1] == '\r') n--;
    if (n > 0) tokens++;
    size_t v = bc_utf8_valid_prefix((const unsigned char *)data + i, j - i);
    if (v != j - i) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s line %zu (token id %zu): invalid UTF-8 (byte 0x%02x at column %zu); a "
                   "vocabulary must be UTF-8 text, one token a line",
                   tokfile, line, line - 1, (unsigned char)data[i + v], v + 1);
      break;
    }
    i = j + 1;
  }
  free(data);
  if (st == BERTCL_OK && tokens == 0)
    st = bc_fail(err, BERTCL_ERR_FORMAT,
                 "%s is empty (%zu bytes, no token): a vocabulary needs at least its special "
                 "tokens ([UNK], [CLS], [SEP])",
                 tokfile, len);
  return st;
}

/* The probe: template tokens of a single text and of a pair, and the padding of a batch; the
 * type ids of every token (text tokens take theirs from the template too). special 0: a text
 * token, only its type id is checked. */
typedef struct {
  int32_t id, type_id;
  int special;
  const char *what;
} special;

static int collect_specials(bc_err *err, const bertcl_tokenizer *tok, const char *tokfile,
                            special *out, size_t cap, size_t *n) {
  *n = 0;
  const char *pair_b = "b";
  for (int w = 0; w < 2; w++) {
    bertcl_encoding *e = NULL;
    int st = bertcl_tokenizer_encode(tok, "a", 1, w ? pair_b : NULL, w ? 1 : 0, NULL, &e);
    if (st)
      return bc_fail(err, st, "%s: the tokenizer cannot encode a test text: %s", tokfile,
                     bertcl_last_error(NULL));
    for (size_t i = 0; i < e->n && *n < cap; i++)
      out[(*n)++] = (special){e->ids[i], e->type_ids[i], e->seq_ids[i] < 0,
                              w ? "pair template" : "template"};
    bertcl_encoding_free(e);
  }
  const char *rows[2] = {"a", "a a a a"};
  bertcl_batch *b = NULL;
  int st = bertcl_tokenizer_encode_batch(tok, rows, NULL, 2, NULL, &b);
  if (st)
    return bc_fail(err, st, "%s: the tokenizer cannot encode a test batch: %s", tokfile,
                   bertcl_last_error(NULL));
  for (size_t t = 0; t < b->seq && *n < cap; t++)
    if (!b->mask[t]) {
      out[(*n)++] = (special){b->ids[t], b->type_ids[t], 1, "padding"};
      break;
    }
  bertcl_batch_free(b);
  return BERTCL_OK;
}

int bc_tokenizer_check(bc_err *err, const bertcl_tokenizer *tok, const char *tokfile,
                       const bc_tok_limits *lim) {
  size_t bound = bertcl_tokenizer_id_bound(tok);
  if (bound == 0 || bertcl_tokenizer_vocab_size(tok) == 0)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: the vocabulary is empty", tokfile);
  for (size_t id = 0; id < bound; id++) {
    const char *s = bertcl_tokenizer_id_to_token(tok, (int32_t)id);
    if (!s) continue;
    size_t n = strlen(s), v = bc_utf8_valid_prefix((const unsigned char *)s, n);
    if (v != n)
      return bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s: token id %zu is not valid UTF-8 (byte 0x%02x at %zu); a vocabulary "
                     "must be UTF-8 text",
                     tokfile, id, (unsigned char)s[v], v);
  }
  special sp[64];
  size_t nsp = 0;
  int st = collect_specials(err, tok, tokfile, sp, 64, &nsp);
  if (st) return st;
  for (size_t i = 0; i < nsp; i++)
    if (sp[i].special && !bertcl_tokenizer_id_to_token(tok, sp[i].id))
      return bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s: the %s token id %d is not in the vocabulary (ids 0..%zu); the special "
                     "tokens must be vocabulary or added tokens",
                     tokfile, sp[i].what, (int)sp[i].id, bound - 1);
  if (lim && lim->vocab_rows > 0 && bound > (size_t)lim->vocab_rows) {
    const char *last = bertcl_tokenizer_id_to_token(tok, (int32_t)(bound - 1));
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: the tokenizer produces token ids up to %zu ('%.40s'), %zu ids, but %s is "
                   "%ld: ids %ld..%zu have no row in the model's word-embedding table. Use the "
                   "tokenizer the model was trained with (a vocabulary smaller than the table "
                   "is fine)",
                   tokfile, bound - 1, last ? last : "?", bound, lim->source, lim->vocab_rows,
                   lim->vocab_rows, bound - 1);
  }
  if (lim && lim->type_rows > 0)
    for (size_t i = 0; i < nsp; i++)
      if (sp[i].type_id < 0 || sp[i].type_id >= lim->type_rows)
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: the %s gives token type id %d, but the model has %ld token types "
                       "(type_vocab_size)",
                       tokfile, sp[i].what, (int)sp[i].type_id, lim->type_rows);
  return BERTCL_OK;
}

void bc_tok_limits_from_config(const char *config_path, bc_tok_limits *lim) {
  memset(lim, 0, sizeof *lim);
  if (!is_file(config_path)) return;
  json_error_t je;
  json_t *root = json_load_file(config_path, 0, &je);
  if (!json_is_object(root)) {
    json_decref(root);
    return;
  }
  json_t *v = json_object_get(root, "vocab_size"), *t = json_object_get(root, "type_vocab_size");
  if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < (1L << 30))
    lim->vocab_rows = (long)json_integer_value(v);
  if (json_is_integer(t) && json_integer_value(t) > 0 && json_integer_value(t) < (1L << 30))
    lim->type_rows = (long)json_integer_value(t);
  snprintf(lim->source, sizeof lim->source, "%s vocab_size", config_path);
  json_decref(root);
}

int bc_model_tokenizer_check(bc_err *err, const char *top, const char *dir,
                             const bc_tok_limits *lim) {
  char *tokfile = bc_tokfile_path(top);
  const char *tokdir = top;
  if (!tokfile) {
    tokfile = bc_tokfile_path(dir);
    tokdir = dir;
  }
  if (!tokfile) return BERTCL_OK;
  bertcl_tokenizer *tok = NULL;
  int st = bertcl_tokenizer_load(&tok, tokdir);
  if (st == BERTCL_ERR_UNSUPPORTED) {
    /* a tokenizer bertcl cannot read yet (another model type or pipeline) is not a hostile one:
     * the weights still load, for ids from elsewhere; encoding text reports the reason */
    st = BERTCL_OK;
  } else if (st != BERTCL_OK) {
    if (err) *err = *bc_thread_err();
  } else {
    st = bc_tokenizer_check(err, tok, tokfile, lim);
  }
  bertcl_tokenizer_free(tok);
  free(tokfile);
  return st;
}
