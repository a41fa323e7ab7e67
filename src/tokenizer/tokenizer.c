/* Loading a WordPiece tokenizer from a model directory: tokenizer.json, or vocab.txt +
 * tokenizer_config.json; default lengths from tokenizer_config.json, config.json and
 * sentence_bert_config.json. */
#define _POSIX_C_SOURCE 200809L
#include "tokenizer/tokenizer.h"

#include "model/tokcheck.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- string pool and id table ---- */

static uint32_t hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

/* Records token string s as id (the later definition of an id wins). */
static int set_id(bertcl_tokenizer *tok, int64_t id, const char *s, size_t len) {
  if (id < 0 || id >= BC_TOK_MAX_ID)
    return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "token id %lld out of range [0, %d)",
                   (long long)id, BC_TOK_MAX_ID);
  if ((size_t)id >= tok->n_ids) {
    size_t n = tok->n_ids ? tok->n_ids : 1024;
    while (n <= (size_t)id) n *= 2;
    char **t = realloc(tok->id_tok, n * sizeof *t);
    if (!t) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary");
    tok->id_tok = t;
    uint32_t *l = realloc(tok->id_len, n * sizeof *l);
    if (!l) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary");
    tok->id_len = l;
    for (size_t i = tok->n_ids; i < n; i++) {
      tok->id_tok[i] = NULL;
      tok->id_len[i] = 0;
    }
    tok->n_ids = n;
  }
  if (len > UINT32_MAX / 2)
    return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "token of %zu bytes is too long", len);
  if (tok->pool_len + len + 1 > tok->pool_cap) {
    size_t cap = tok->pool_cap ? tok->pool_cap : 1 << 16;
    while (cap < tok->pool_len + len + 1) cap *= 2;
    char *p = realloc(tok->pool, cap);
    if (!p) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary");
    /* id_tok holds offsets (as pointers from NULL) until finish_ids() */
    tok->pool = p;
    tok->pool_cap = cap;
  }
  memcpy(tok->pool + tok->pool_len, s, len);
  tok->pool[tok->pool_len + len] = '\0';
  tok->id_tok[id] = (char *)(uintptr_t)(tok->pool_len + 1); /* offset + 1; 0 = unused */
  tok->id_len[id] = (uint32_t)len;
  tok->pool_len += len + 1;
  return BERTCL_OK;
}

/* Turns the stored pool offsets into pointers (after the pool stops growing). */
static void finish_ids(bertcl_tokenizer *tok) {
  for (size_t i = 0; i < tok->n_ids; i++) {
    uintptr_t off = (uintptr_t)tok->id_tok[i];
    tok->id_tok[i] = off ? tok->pool + (off - 1) : NULL;
  }
}

static int map_init(bertcl_tokenizer *tok, bc_tok_map *m, size_t n, size_t skip) {
  size_t cap = 16;
  while (cap < n * 2 + 16) cap *= 2;
  m->slots = calloc(cap, sizeof *m->slots);
  m->hashes = calloc(cap, sizeof *m->hashes);
  if (!m->slots || !m->hashes)
    return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary map");
  m->cap = cap;
  m->count = 0;
  m->max_key = 0;
  m->key_skip = skip;
  return BERTCL_OK;
}

static void map_free(bc_tok_map *m) {
  free(m->slots);
  free(m->hashes);
  memset(m, 0, sizeof *m);
}

int32_t bc_tok_map_get(const bertcl_tokenizer *tok, const bc_tok_map *m, const char *key,
                       size_t len) {
  if (!m->cap || len > m->max_key) return -1;
  uint32_t h = hash_bytes(key, len);
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t s = m->slots[i];
    if (!s) return -1;
    if (m->hashes[i] != h) continue;
    uint32_t id = s - 1;
    if (tok->id_len[id] - m->key_skip == len &&
        memcmp(tok->id_tok[id] + m->key_skip, key, len) == 0)
      return (int32_t)id;
  }
}

/* Inserts id under its string (minus key_skip bytes); a later id for the same key replaces
 * the earlier one, as a Python dict built line by line does. */
static void map_put(const bertcl_tokenizer *tok, bc_tok_map *m, uint32_t id) {
  const char *key = tok->id_tok[id] + m->key_skip;
  size_t len = tok->id_len[id] - m->key_skip;
  uint32_t h = hash_bytes(key, len);
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t s = m->slots[i];
    if (!s) {
      m->slots[i] = id + 1;
      m->hashes[i] = h;
      m->count++;
      if (len > m->max_key) m->max_key = len;
      return;
    }
    uint32_t o = s - 1;
    if (m->hashes[i] == h && tok->id_len[o] - m->key_skip == len &&
        memcmp(tok->id_tok[o] + m->key_skip, key, len) == 0) {
      m->slots[i] = id + 1;
      return;
    }
  }
}

static int maps_init(bertcl_tokenizer *tok, size_t n) {
  int st = map_init(tok, &tok->vocab, n, 0);
  if (st) return st;
  return map_init(tok, &tok->cont, n, tok->prefix_len);
}

/* Adds a model vocabulary id to the full map and, when it starts with the continuation
 * prefix, to the continuation map (keyed without the prefix). */
static void maps_put(bertcl_tokenizer *tok, uint32_t id) {
  map_put(tok, &tok->vocab, id);
  if (tok->id_len[id] >= tok->prefix_len &&
      memcmp(tok->id_tok[id], tok->prefix, tok->prefix_len) == 0)
    map_put(tok, &tok->cont, id);
}

/* ---- helpers ---- */

static int file_exists(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static json_t *load_json(bc_err *err, const char *path, int *st) {
  json_error_t je;
  json_t *j = json_load_file(path, JSON_DECODE_ANY, &je);
  if (!j) {
    *st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    *st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: not a JSON object", path);
    return NULL;
  }
  *st = BERTCL_OK;
  return j;
}

/* "content" of a special token given as a string or as {"content": ...}. */
static const char *token_str(json_t *v) {
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_object(v)) {
    json_t *c = json_object_get(v, "content");
    if (json_is_string(c)) return json_string_value(c);
  }
  return NULL;
}

static int add_added(bertcl_tokenizer *tok, int32_t id, const char *content, size_t len,
                     int special) {
  if (len == 0) return BERTCL_OK;
  bc_tok_added *a = realloc(tok->added, (tok->n_added + 1) * sizeof *a);
  if (!a) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  tok->added = a;
  bc_tok_added *t = &a[tok->n_added];
  t->cps = malloc((len + 1) * sizeof *t->cps);
  if (!t->cps) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  t->len = bc_tok_utf8_decode(content, len, t->cps, NULL);
  t->id = id;
  t->special = special;
  tok->n_added++;
  if (t->cps[0] < 128)
    tok->added_first_ascii[t->cps[0]] = 1;
  else
    tok->added_non_ascii_first = 1;
  return BERTCL_OK;
}

/* Added tokens are matched on the raw text, whole: normalized/lstrip/rstrip/single_word
 * (which BERT tokenizers do not use) are refused rather than approximated. */
static int check_added_flags(bertcl_tokenizer *tok, const char *path, json_t *a,
                             const char *content) {
  if (json_is_true(json_object_get(a, "normalized")) ||
      json_is_true(json_object_get(a, "lstrip")) || json_is_true(json_object_get(a, "rstrip")) ||
      json_is_true(json_object_get(a, "single_word")))
    return bc_fail(&tok->err, BERTCL_ERR_UNSUPPORTED,
                   "%s: added token '%s' uses normalized/lstrip/rstrip/single_word, which "
                   "bertcl does not support",
                   path, content);
  return BERTCL_OK;
}

static int tpl_add_special(bertcl_tokenizer *tok, bc_tpl *t, const int32_t *ids, size_t n,
                           int32_t type_id) {
  bc_tpl_item *it = realloc(t->items, (t->n + 1) * sizeof *it);
  if (!it) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  t->items = it;
  bc_tpl_item *x = &it[t->n];
  memset(x, 0, sizeof *x);
  x->kind = BC_TPL_SPECIAL;
  x->type_id = type_id;
  x->ids = malloc((n ? n : 1) * sizeof *x->ids);
  if (!x->ids) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  memcpy(x->ids, ids, n * sizeof *ids);
  x->nids = n;
  t->n++;
  t->n_special += n;
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || (size_t)ids[i] >= tok->n_ids || !tok->id_tok[ids[i]])
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "template token id %d is not in the vocabulary",
                     (int)ids[i]);
  return BERTCL_OK;
}

static int tpl_add_seq(bertcl_tokenizer *tok, bc_tpl *t, int kind, int32_t type_id) {
  bc_tpl_item *it = realloc(t->items, (t->n + 1) * sizeof *it);
  if (!it) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  t->items = it;
  memset(&it[t->n], 0, sizeof it[t->n]);
  it[t->n].kind = kind;
  it[t->n].type_id = type_id;
  t->n++;
  return BERTCL_OK;
}

static void tpl_free(bc_tpl *t) {
  for (size_t i = 0; i < t->n; i++) free(t->items[i].ids);
  free(t->items);
  memset(t, 0, sizeof *t);
}

/* [CLS] A [SEP] / [CLS] A [SEP] B [SEP] with type ids 0 / 1 (BertProcessing). */
static int tpl_bert(bertcl_tokenizer *tok, int32_t cls, int32_t sep) {
  int st;
  if ((st = tpl_add_special(tok, &tok->single, &cls, 1, 0)) ||
      (st = tpl_add_seq(tok, &tok->single, BC_TPL_SEQ_A, 0)) ||
      (st = tpl_add_special(tok, &tok->single, &sep, 1, 0)) ||
      (st = tpl_add_special(tok, &tok->pair, &cls, 1, 0)) ||
      (st = tpl_add_seq(tok, &tok->pair, BC_TPL_SEQ_A, 0)) ||
      (st = tpl_add_special(tok, &tok->pair, &sep, 1, 0)) ||
      (st = tpl_add_seq(tok, &tok->pair, BC_TPL_SEQ_B, 1)) ||
      (st = tpl_add_special(tok, &tok->pair, &sep, 1, 1)))
    return st;
  return BERTCL_OK;
}

static int parse_template(bertcl_tokenizer *tok, const char *path, json_t *pp) {
  const char *type = json_string_value(json_object_get(pp, "type"));
  if (type && strcmp(type, "BertProcessing") == 0) {
    json_t *sep = json_object_get(pp, "sep"), *cls = json_object_get(pp, "cls");
    if (!json_is_array(sep) || !json_is_array(cls) || !json_is_integer(json_array_get(sep, 1)) ||
        !json_is_integer(json_array_get(cls, 1)))
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: BertProcessing without sep/cls", path);
    return tpl_bert(tok, (int32_t)json_integer_value(json_array_get(cls, 1)),
                    (int32_t)json_integer_value(json_array_get(sep, 1)));
  }
  if (!type || strcmp(type, "TemplateProcessing") != 0)
    return bc_fail(&tok->err, BERTCL_ERR_UNSUPPORTED, "%s: post_processor type '%s' unsupported",
                   path, type ? type : "?");
  json_t *specials = json_object_get(pp, "special_tokens");
  const char *names[2] = {"single", "pair"};
  bc_tpl *tpls[2] = {&tok->single, &tok->pair};
  for (int w = 0; w < 2; w++) {
    json_t *arr = json_object_get(pp, names[w]);
    if (!json_is_array(arr))
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: template '%s' missing", path, names[w]);
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
      json_t *sp = json_object_get(item, "SpecialToken"), *sq = json_object_get(item, "Sequence");
      int st;
      if (sp) {
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *def = name ? json_object_get(specials, name) : NULL;
        json_t *ids = json_object_get(def, "ids");
        if (!json_is_array(ids))
          return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: special token '%s' undefined", path,
                         name ? name : "?");
        int32_t buf[16];
        size_t n = json_array_size(ids);
        if (n > 16)
          return bc_fail(&tok->err, BERTCL_ERR_UNSUPPORTED, "%s: special token '%s' too long", path,
                         name);
        for (size_t k = 0; k < n; k++) buf[k] = (int32_t)json_integer_value(json_array_get(ids, k));
        st = tpl_add_special(tok, tpls[w], buf, n,
                             (int32_t)json_integer_value(json_object_get(sp, "type_id")));
      } else if (sq) {
        const char *id = json_string_value(json_object_get(sq, "id"));
        int kind = id && strcmp(id, "B") == 0 ? BC_TPL_SEQ_B : BC_TPL_SEQ_A;
        st = tpl_add_seq(tok, tpls[w], kind,
                         (int32_t)json_integer_value(json_object_get(sq, "type_id")));
      } else {
        return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: bad template item", path);
      }
      if (st) return st;
    }
  }
  return BERTCL_OK;
}

/* Reads settings of tokenizer.json. */
static int load_tokenizer_json(bertcl_tokenizer *tok, const char *path) {
  int st;
  json_t *root = load_json(&tok->err, path, &st);
  if (!root) return st;
  json_t *model = json_object_get(root, "model");
  const char *mtype = json_string_value(json_object_get(model, "type"));
  json_t *vocab = json_object_get(model, "vocab");
  if (mtype && strcmp(mtype, "WordPiece") != 0) {
    st = bc_fail(&tok->err, BERTCL_ERR_UNSUPPORTED, "%s: model type '%s' is not WordPiece", path,
                 mtype);
    goto fail;
  }
  if (!json_is_object(vocab)) {
    st = bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: model.vocab missing", path);
    goto fail;
  }
  const char *key;
  json_t *v;
  json_object_foreach(vocab, key, v) {
    if (!json_is_integer(v)) {
      st = bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: vocab id of '%s' is not an integer", path,
                   key);
      goto fail;
    }
    BC_TRY(set_id(tok, json_integer_value(v), key, strlen(key)));
  }
  tok->vocab_size = json_object_size(vocab);
  const char *unk = json_string_value(json_object_get(model, "unk_token"));
  const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
  json_t *mx = json_object_get(model, "max_input_chars_per_word");
  free(tok->prefix);
  tok->prefix = strdup(prefix ? prefix : "##");
  if (!tok->prefix) {
    st = bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  tok->prefix_len = strlen(tok->prefix);
  tok->max_chars_per_word = json_is_integer(mx) ? (size_t)json_integer_value(mx) : 100;
  json_t *uv = unk ? json_object_get(vocab, unk) : NULL;
  tok->unk_id = json_is_integer(uv) ? (int32_t)json_integer_value(uv) : -1;

  json_t *norm = json_object_get(root, "normalizer");
  if (json_is_null(norm) || !norm) {
    tok->clean_text = tok->handle_chinese = tok->strip_accents = tok->lowercase = 0;
  } else {
    const char *ntype = json_string_value(json_object_get(norm, "type"));
    if (!ntype || strcmp(ntype, "BertNormalizer") != 0) {
      st = bc_fail(&tok->err, BERTCL_ERR_UNSUPPORTED, "%s: normalizer '%s' unsupported", path,
                   ntype ? ntype : "?");
      goto fail;
    }
    tok->clean_text = json_is_true(json_object_get(norm, "clean_text"));
    tok->handle_chinese = json_is_true(json_object_get(norm, "handle_chinese_chars"));
    tok->lowercase = json_is_true(json_object_get(norm, "lowercase"));
    json_t *sa = json_object_get(norm, "strip_accents");
    tok->strip_accents = (!sa || json_is_null(sa)) ? tok->lowercase : json_is_true(sa);
  }
  json_t *pre = json_object_get(root, "pre_tokenizer");
  const char *ptype = json_string_value(json_object_get(pre, "type"));
  if (!ptype || strcmp(ptype, "BertPreTokenizer") != 0) {
    st = bc_fail(&tok->err, BERTCL_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' unsupported", path,
                 ptype ? ptype : "null");
    goto fail;
  }
  json_t *added = json_object_get(root, "added_tokens");
  size_t i;
  json_t *a;
  json_array_foreach(added, i, a) {
    const char *content = json_string_value(json_object_get(a, "content"));
    json_t *id = json_object_get(a, "id");
    if (!content || !json_is_integer(id)) {
      st = bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: added_tokens[%zu] malformed", path, i);
      goto fail;
    }
    if ((st = check_added_flags(tok, path, a, content))) goto fail;
    BC_TRY(set_id(tok, json_integer_value(id), content, strlen(content)));
    BC_TRY(add_added(tok, (int32_t)json_integer_value(id), content, strlen(content),
                     json_is_true(json_object_get(a, "special"))));
  }
  json_t *pad = json_object_get(root, "padding");
  if (json_is_object(pad)) {
    tok->pad_id = (int32_t)json_integer_value(json_object_get(pad, "pad_id"));
    tok->pad_type_id = (int32_t)json_integer_value(json_object_get(pad, "pad_type_id"));
  } else {
    json_t *pv = json_object_get(vocab, "[PAD]");
    tok->pad_id = json_is_integer(pv) ? (int32_t)json_integer_value(pv) : 0;
  }
  finish_ids(tok);
  /* WordPiece looks up the model vocabulary only (not tokens that only added_tokens define) */
  BC_TRY(maps_init(tok, tok->n_ids));
  json_object_foreach(vocab, key, v) maps_put(tok, (uint32_t)json_integer_value(v));
  json_t *pp = json_object_get(root, "post_processor");
  if (pp && !json_is_null(pp)) BC_TRY(parse_template(tok, path, pp));
  json_decref(root);
  return BERTCL_OK;
fail:
  json_decref(root);
  return st;
}

/* Reads vocab.txt (one token a line, id = line number) and tokenizer_config.json. */
static int load_vocab_txt(bertcl_tokenizer *tok, const char *vocab_path, json_t *cfg,
                          size_t *lines) {
  char *data = NULL;
  size_t len = 0;
  int st = bc_read_file(&tok->err, vocab_path, &data, &len);
  if (st) return st;
  size_t id = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && data[j] != '\n') j++;
    st = set_id(tok, (int64_t)id, data + i, j - i);
    if (st) {
      free(data);
      return st;
    }
    id++;
    i = j + 1;
  }
  free(data);
  tok->vocab_size = id;
  *lines = id;
  /* added_tokens_decoder (tokenizer_config.json written by transformers): ids past the
   * vocabulary get their strings here; matching is set up in vocab_txt_specials */
  json_t *dec = json_object_get(cfg, "added_tokens_decoder");
  const char *key;
  json_t *v;
  json_object_foreach(dec, key, v) {
    const char *s = token_str(v);
    char *end;
    long aid = strtol(key, &end, 10);
    if (!s || *end || aid < 0 || aid >= BC_TOK_MAX_ID)
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "added_tokens_decoder entry '%s' malformed",
                     key);
    if ((size_t)aid >= id) {
      st = set_id(tok, aid, s, strlen(s));
      if (st) return st;
    }
  }
  json_t *lc = json_object_get(cfg, "do_lower_case");
  tok->lowercase = lc ? json_is_true(lc) : 1;
  json_t *sa = json_object_get(cfg, "strip_accents");
  tok->strip_accents = (!sa || json_is_null(sa)) ? tok->lowercase : json_is_true(sa);
  json_t *cc = json_object_get(cfg, "tokenize_chinese_chars");
  tok->handle_chinese = cc ? json_is_true(cc) : 1;
  tok->clean_text = 1;
  tok->prefix = strdup("##");
  if (!tok->prefix) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  tok->prefix_len = 2;
  tok->max_chars_per_word = 100;
  return BERTCL_OK;
}

static int32_t lookup_exact(bertcl_tokenizer *tok, const char *s) {
  return s ? bc_tok_map_get(tok, &tok->vocab, s, strlen(s)) : -1;
}

/* Special tokens and template of the vocab.txt mode (after the maps exist). */
static int vocab_txt_specials(bertcl_tokenizer *tok, const char *path, json_t *cfg) {
  static const char *const keys[] = {"pad_token", "unk_token", "cls_token", "sep_token",
                                     "mask_token"};
  static const char *const defaults[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  int32_t ids[5];
  const char *strs[5];
  for (int k = 0; k < 5; k++) {
    json_t *v = json_object_get(cfg, keys[k]);
    const char *s = v ? token_str(v) : defaults[k];
    strs[k] = s;
    ids[k] = lookup_exact(tok, s);
    if (ids[k] >= 0) {
      int st = add_added(tok, ids[k], s, strlen(s), 1);
      if (st) return st;
    }
  }
  /* tokens of added_tokens_decoder (tokenizer_config.json written by transformers) */
  json_t *dec = json_object_get(cfg, "added_tokens_decoder");
  const char *key;
  json_t *v;
  json_object_foreach(dec, key, v) {
    const char *s = token_str(v);
    long id = strtol(key, NULL, 10);
    int dup = 0;
    for (size_t k = 0; k < tok->n_added; k++) dup |= tok->added[k].id == id;
    if (!s || dup || id < 0 || (size_t)id >= tok->n_ids) continue;
    int st = json_is_object(v) ? check_added_flags(tok, path, v, s) : BERTCL_OK;
    if (!st)
      st = add_added(tok, (int32_t)id, s, strlen(s), json_is_true(json_object_get(v, "special")));
    if (st) return st;
  }
  tok->pad_id = ids[0] >= 0 ? ids[0] : 0;
  tok->unk_id = ids[1];
  if (ids[2] < 0 || ids[3] < 0) {
    int k = ids[2] < 0 ? 2 : 3;
    return bc_fail(&tok->err, BERTCL_ERR_FORMAT,
                   "the %s '%s' (%s) is not in the vocabulary (vocab.txt)", keys[k],
                   strs[k] ? strs[k] : "null", path);
  }
  return tpl_bert(tok, ids[2], ids[3]);
}

static size_t min_len(size_t a, json_t *v) {
  if (!json_is_integer(v)) return a;
  json_int_t x = json_integer_value(v);
  if (x <= 0) return a;
  return (uint64_t)x < a ? (size_t)x : a;
}

int bc_tok_load_files(bertcl_tokenizer **out, const char *json_path, const char *vocab_path,
                      const char *tok_config_path, const char *model_config_path,
                      const char *st_config_path) {
  *out = NULL;
  bertcl_tokenizer *tok = calloc(1, sizeof *tok);
  if (!tok) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  int st = BERTCL_OK;
  json_t *cfg = NULL;
  if (file_exists(tok_config_path)) {
    cfg = load_json(&tok->err, tok_config_path, &st);
    if (!cfg) goto fail;
  }
  if (json_path) {
    BC_TRY(load_tokenizer_json(tok, json_path));
  } else {
    if (!file_exists(vocab_path)) {
      st = bc_fail(&tok->err, BERTCL_ERR_MISSING, "neither tokenizer.json nor %s exists",
                   vocab_path ? vocab_path : "vocab.txt");
      goto fail;
    }
    size_t lines = 0;
    BC_TRY(load_vocab_txt(tok, vocab_path, cfg, &lines));
    finish_ids(tok);
    BC_TRY(maps_init(tok, lines));
    for (size_t id = 0; id < lines; id++) maps_put(tok, (uint32_t)id);
  }
  if (!json_path) {
    BC_TRY(
        vocab_txt_specials(tok, tok_config_path ? tok_config_path : "tokenizer_config.json", cfg));
    tok->vocab_size = tok->vocab.count;
  }
  if (tok->unk_id < 0) {
    st = bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: the unknown token is not in the vocabulary",
                 json_path ? json_path : vocab_path);
    goto fail;
  }
  /* default max length */
  size_t ml = SIZE_MAX;
  if (cfg) {
    json_t *m = json_object_get(cfg, "model_max_length");
    if (json_is_integer(m) && json_integer_value(m) < (json_int_t)1 << 40) ml = min_len(ml, m);
  }
  const char *extra[2] = {model_config_path, st_config_path};
  const char *field[2] = {"max_position_embeddings", "max_seq_length"};
  for (int k = 0; k < 2; k++) {
    if (!file_exists(extra[k])) continue;
    json_t *j = load_json(&tok->err, extra[k], &st);
    if (!j) goto fail;
    ml = min_len(ml, json_object_get(j, field[k]));
    json_decref(j);
  }
  tok->max_length = ml;
  json_decref(cfg);
  bc_err_clear(&tok->err);
  *out = tok;
  return BERTCL_OK;
fail:
  json_decref(cfg);
  bc_err_to_thread(&tok->err);
  bertcl_tokenizer_free(tok);
  return st;
}

int bertcl_tokenizer_load(bertcl_tokenizer **out, const char *dir) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  if (!dir) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "model directory is NULL");
  size_t n = strlen(dir) + 64;
  char *p[5];
  static const char *const names[5] = {"tokenizer.json", "vocab.txt", "tokenizer_config.json",
                                       "config.json", "sentence_bert_config.json"};
  for (int i = 0; i < 5; i++) {
    p[i] = malloc(n);
    if (!p[i]) {
      for (int k = 0; k < i; k++) free(p[k]);
      return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
    }
    snprintf(p[i], n, "%s/%s", dir, names[i]);
  }
  int st;
  if (!file_exists(p[0]) && !file_exists(p[1])) {
    st = bc_fail(NULL, BERTCL_ERR_MISSING, "%s: no tokenizer.json and no vocab.txt", dir);
  } else {
    /* the folder checks of model/tokcheck.h: the file's bytes, then the loaded tokenizer
     * against config.json's table sizes */
    const char *tokfile = file_exists(p[0]) ? p[0] : p[1];
    st = bc_tokfile_precheck(NULL, tokfile);
    if (st == BERTCL_OK)
      st = bc_tok_load_files(out, file_exists(p[0]) ? p[0] : NULL, p[1], p[2], p[3], p[4]);
    if (st == BERTCL_OK) {
      bc_tok_limits lim;
      bc_tok_limits_from_config(p[3], &lim);
      st = bc_tokenizer_check(NULL, *out, tokfile, &lim);
      if (st != BERTCL_OK) {
        bertcl_tokenizer_free(*out);
        *out = NULL;
      }
    }
  }
  for (int i = 0; i < 5; i++) free(p[i]);
  return st;
}

void bertcl_tokenizer_free(bertcl_tokenizer *tok) {
  if (!tok) return;
  map_free(&tok->vocab);
  map_free(&tok->cont);
  for (size_t i = 0; i < tok->n_added; i++) free(tok->added[i].cps);
  free(tok->added);
  tpl_free(&tok->single);
  tpl_free(&tok->pair);
  free(tok->id_tok);
  free(tok->id_len);
  free(tok->pool);
  free(tok->prefix);
  free(tok);
}

size_t bertcl_tokenizer_max_length(const bertcl_tokenizer *tok) {
  return tok ? tok->max_length : 0;
}

size_t bertcl_tokenizer_vocab_size(const bertcl_tokenizer *tok) {
  return tok ? tok->vocab_size : 0;
}

size_t bertcl_tokenizer_id_bound(const bertcl_tokenizer *tok) {
  if (!tok) return 0;
  size_t n = tok->n_ids;
  while (n > 0 && !tok->id_tok[n - 1]) n--;
  return n;
}

const char *bertcl_tokenizer_id_to_token(const bertcl_tokenizer *tok, int32_t id) {
  if (!tok || id < 0 || (size_t)id >= tok->n_ids) return NULL;
  return tok->id_tok[id];
}

int32_t bertcl_tokenizer_token_to_id(const bertcl_tokenizer *tok, const char *token) {
  if (!tok || !token) return -1;
  size_t len = strlen(token);
  for (size_t k = 0; k < tok->n_added; k++) {
    const bc_tok_added *a = &tok->added[k];
    const char *s = tok->id_tok[a->id];
    if (s && strlen(s) == len && memcmp(s, token, len) == 0) return a->id;
  }
  return bc_tok_map_get(tok, &tok->vocab, token, len);
}
