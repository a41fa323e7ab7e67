/* Loading a tokenizer from a model directory: tokenizer.json (parse.c), or vocab.txt +
 * tokenizer_config.json (BERT WordPiece); default lengths from tokenizer_config.json,
 * config.json and sentence_bert_config.json; the vocabulary store and the public getters. */
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

int bc_tok_set_id(bertcl_tokenizer *tok, int64_t id, const char *s, size_t len) {
  if (id < 0 || id >= BC_TOK_MAX_ID)
    return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "token id %lld out of range [0, %d)",
                   (long long)id, BC_TOK_MAX_ID);
  if ((size_t)id >= tok->n_ids) {
    size_t n = tok->n_ids ? tok->n_ids : 1024;
    while (n <= (size_t)id) n *= 2;
    uint32_t *t = realloc(tok->id_off, n * sizeof *t);
    if (!t) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary");
    tok->id_off = t;
    uint32_t *l = realloc(tok->id_len, n * sizeof *l);
    if (!l) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary");
    tok->id_len = l;
    for (size_t i = tok->n_ids; i < n; i++) {
      tok->id_off[i] = 0;
      tok->id_len[i] = 0;
    }
    tok->n_ids = n;
  }
  if (len > 0xFFFFFF)
    return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "token of %zu bytes is too long", len);
  if (tok->pool_len + len + 1 > tok->pool_cap) {
    size_t cap = tok->pool_cap ? tok->pool_cap : 1 << 16;
    while (cap < tok->pool_len + len + 1) cap *= 2;
    if (cap > 0xF0000000u)
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "vocabulary strings over 3.7 GiB");
    char *p = realloc(tok->pool, cap);
    if (!p) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory for the vocabulary");
    tok->pool = p;
    tok->pool_cap = cap;
  }
  memcpy(tok->pool + tok->pool_len, s, len);
  tok->pool[tok->pool_len + len] = '\0';
  tok->id_off[id] = (uint32_t)tok->pool_len + 1;
  tok->id_len[id] = (uint32_t)len;
  tok->pool_len += len + 1;
  return BERTCL_OK;
}

int bc_tok_map_init(bertcl_tokenizer *tok, bc_tok_map *m, size_t n, size_t skip) {
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

void bc_tok_map_free(bc_tok_map *m) {
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
        memcmp(bc_tok_str(tok, id) + m->key_skip, key, len) == 0)
      return (int32_t)id;
  }
}

/* Inserts id under its string (minus key_skip bytes); a later id for the same key replaces
 * the earlier one, as a dict / HashMap built in order does. The map holds at most cap / 2. */
void bc_tok_map_put(const bertcl_tokenizer *tok, bc_tok_map *m, uint32_t id) {
  const char *key = bc_tok_str(tok, id) + m->key_skip;
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
        memcmp(bc_tok_str(tok, o) + m->key_skip, key, len) == 0) {
      m->slots[i] = id + 1;
      return;
    }
  }
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

/* ---- vocab.txt + tokenizer_config.json (BertTokenizer / MPNetTokenizer) ---- */

static int tpl_push(bertcl_tokenizer *tok, bc_tpl *t, int kind, int32_t type_id, int32_t id) {
  bc_tpl_item *it = realloc(t->items, (t->n + 1) * sizeof *it);
  if (!it) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  t->items = it;
  bc_tpl_item *x = &it[t->n++];
  memset(x, 0, sizeof *x);
  x->kind = kind;
  x->type_id = type_id;
  if (kind == BC_TPL_SPECIAL) {
    x->ids = malloc(sizeof *x->ids);
    if (!x->ids) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
    x->ids[0] = id;
    x->nids = 1;
    t->n_special++;
  }
  return BERTCL_OK;
}

/* [CLS] A [SEP] / [CLS] A [SEP] B [SEP] (BERT) or <s> A </s> </s> B </s> (MPNet, RoBERTa). */
static int tpl_classic(bertcl_tokenizer *tok, int32_t cls, int32_t sep, int roberta) {
  int st;
  bc_tpl *s = &tok->post.single, *p = &tok->post.pair;
  int32_t tb = roberta ? 0 : 1;
  tok->post.kind = roberta ? BC_PP_ROBERTA : BC_PP_BERT;
  if ((st = tpl_push(tok, s, BC_TPL_SPECIAL, 0, cls)) || (st = tpl_push(tok, s, BC_TPL_SEQ_A, 0, 0)) ||
      (st = tpl_push(tok, s, BC_TPL_SPECIAL, 0, sep)) || (st = tpl_push(tok, p, BC_TPL_SPECIAL, 0, cls)) ||
      (st = tpl_push(tok, p, BC_TPL_SEQ_A, 0, 0)) || (st = tpl_push(tok, p, BC_TPL_SPECIAL, 0, sep)))
    return st;
  if (roberta && (st = tpl_push(tok, p, BC_TPL_SPECIAL, 0, sep))) return st;
  if ((st = tpl_push(tok, p, BC_TPL_SEQ_B, tb, 0)) || (st = tpl_push(tok, p, BC_TPL_SPECIAL, tb, sep)))
    return st;
  return BERTCL_OK;
}

int bc_tok_tpl_classic(bertcl_tokenizer *tok, int32_t cls, int32_t sep, int roberta) {
  return tpl_classic(tok, cls, sep, roberta);
}

/* Reads vocab.txt (one token a line, id = line number) and tokenizer_config.json. */
static int load_vocab_txt(bertcl_tokenizer *tok, const char *vocab_path, const char *cfg_path,
                          json_t *cfg) {
  char *data = NULL;
  size_t len = 0;
  int st = bc_read_file(&tok->err, vocab_path, &data, &len);
  if (st) return st;
  size_t id = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && data[j] != '\n') j++;
    st = bc_tok_set_id(tok, (int64_t)id, data + i, j - i);
    if (st) {
      free(data);
      return st;
    }
    id++;
    i = j + 1;
  }
  free(data);
  if (!id) return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s is empty", vocab_path);
  st = bc_tok_map_init(tok, &tok->vocab, id, 0);
  if (st) return st;
  bc_tok_model *md = &tok->model;
  md->kind = BC_MODEL_WORDPIECE;
  md->prefix = strdup("##");
  if (!md->prefix) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  md->prefix_len = 2;
  md->max_chars_per_word = 100;
  st = bc_tok_map_init(tok, &tok->cont, id, md->prefix_len);
  if (st) return st;
  for (size_t k = 0; k < id; k++) {
    bc_tok_map_put(tok, &tok->vocab, (uint32_t)k);
    if (tok->id_len[k] >= 2 && memcmp(bc_tok_str(tok, k), "##", 2) == 0)
      bc_tok_map_put(tok, &tok->cont, (uint32_t)k);
  }
  tok->vocab_size = tok->vocab.count;
  bc_tok_norm *nz = calloc(1, sizeof *nz);
  bc_tok_pre *pre = calloc(1, sizeof *pre);
  if (!nz || !pre) {
    free(nz);
    free(pre);
    return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  }
  tok->norms = nz;
  tok->n_norms = 1;
  tok->pres = pre;
  tok->n_pres = 1;
  pre->kind = BC_PRE_BERT;
  nz->kind = BC_NORM_BERT;
  json_t *lc = json_object_get(cfg, "do_lower_case");
  nz->lowercase = lc ? json_is_true(lc) : 1;
  json_t *sa = json_object_get(cfg, "strip_accents");
  nz->strip_accents = (!sa || json_is_null(sa)) ? nz->lowercase : json_is_true(sa);
  json_t *cc = json_object_get(cfg, "tokenize_chinese_chars");
  nz->handle_chinese = cc ? json_is_true(cc) : 1;
  nz->clean_text = 1;
  /* special tokens: the five of BertTokenizer (or the names tokenizer_config.json gives),
   * then added_tokens_decoder (transformers' tokenizer_config.json) in id order */
  static const char *const keys[] = {"pad_token", "unk_token", "cls_token", "sep_token",
                                     "mask_token"};
  static const char *const defaults[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  int32_t ids[5];
  tok->next_added_id = (int64_t)tok->vocab_size;
  for (int k = 0; k < 5; k++) {
    json_t *v = json_object_get(cfg, keys[k]);
    const char *s = v ? token_str(v) : defaults[k];
    ids[k] = s ? bc_tok_map_get(tok, &tok->vocab, s, strlen(s)) : -1;
    if (ids[k] >= 0 && (st = bc_tok_add_token(tok, s, 1, 0, 0, 0, 0))) return st;
  }
  json_t *dec = json_object_get(cfg, "added_tokens_decoder");
  const char *key;
  json_t *v;
  json_object_foreach(dec, key, v) {
    const char *s = token_str(v);
    char *end;
    long aid = strtol(key, &end, 10);
    if (!s || *end || aid < 0 || aid >= BC_TOK_MAX_ID)
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: added_tokens_decoder entry '%s' malformed",
                     cfg_path, key);
    int special = json_is_true(json_object_get(v, "special"));
    json_t *nm = json_object_get(v, "normalized");
    int normalized = nm ? json_is_true(nm) : !special;
    /* ids past the vocabulary are the file's (transformers numbers them that way) */
    if ((size_t)aid >= id && bertcl_tokenizer_token_to_id(tok, s) < 0) tok->next_added_id = aid;
    if ((st = bc_tok_add_token(tok, s, special, normalized,
                               json_is_true(json_object_get(v, "lstrip")),
                               json_is_true(json_object_get(v, "rstrip")),
                               json_is_true(json_object_get(v, "single_word")))))
      return st;
  }
  tok->pad_id = ids[0] >= 0 ? ids[0] : 0;
  md->unk_id = ids[1];
  if (ids[2] < 0 || ids[3] < 0) {
    int k = ids[2] < 0 ? 2 : 3;
    json_t *v = json_object_get(cfg, keys[k]);
    const char *s = v ? token_str(v) : defaults[k];
    return bc_fail(&tok->err, BERTCL_ERR_FORMAT,
                   "the %s '%s' (%s) is not in the vocabulary (vocab.txt)", keys[k],
                   s ? s : "null", cfg_path);
  }
  const char *cls_name = json_string_value(json_object_get(cfg, "tokenizer_class"));
  int roberta = cls_name && (bc_icontains(cls_name, "MPNet") || bc_icontains(cls_name, "Roberta"));
  if (roberta) tok->post.trims = 1; /* RobertaProcessing(trim_offsets=True), as converted */
  return tpl_classic(tok, ids[2], ids[3], roberta);
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
  tok->model.unk_id = -1;
  int st = BERTCL_OK;
  json_t *cfg = NULL;
  if (file_exists(tok_config_path)) {
    cfg = load_json(&tok->err, tok_config_path, &st);
    if (!cfg) goto fail;
  }
  if (json_path) {
    BC_TRY(bc_tok_parse_json(tok, json_path));
    if (!tok->has_pad) {
      /* no padding section: the pad token of tokenizer_config.json, else [PAD] / <pad> */
      json_t *pv = json_object_get(cfg, "pad_token");
      const char *names[3] = {pv ? token_str(pv) : NULL, "[PAD]", "<pad>"};
      for (int k = 0; k < 3; k++) {
        int32_t id = names[k] ? bertcl_tokenizer_token_to_id(tok, names[k]) : -1;
        if (id >= 0) {
          tok->pad_id = id;
          break;
        }
      }
    }
  } else {
    if (!file_exists(vocab_path)) {
      st = bc_fail(&tok->err, BERTCL_ERR_MISSING, "neither tokenizer.json nor %s exists",
                   vocab_path ? vocab_path : "vocab.txt");
      goto fail;
    }
    BC_TRY(load_vocab_txt(tok, vocab_path,
                          tok_config_path ? tok_config_path : "tokenizer_config.json", cfg));
    BC_TRY(bc_tok_added_finish(tok));
    if (tok->model.unk_id < 0) {
      st = bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s: the unknown token is not in the vocabulary",
                   vocab_path);
      goto fail;
    }
  }
  BC_TRY(bc_tok_describe_all(tok));
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

int bc_tok_load_json_text(bertcl_tokenizer **out, const char *text, size_t len) {
  *out = NULL;
  bertcl_tokenizer *tok = calloc(1, sizeof *tok);
  if (!tok) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  tok->model.unk_id = -1;
  tok->max_length = SIZE_MAX;
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  int st = root ? bc_tok_parse_root(tok, "tokenizer.json", root)
                : bc_fail(&tok->err, BERTCL_ERR_FORMAT, "tokenizer.json:%d:%d: %s", je.line,
                          je.column, je.text);
  json_decref(root);
  if (!st) st = bc_tok_describe_all(tok);
  if (st) {
    bc_err_to_thread(&tok->err);
    bertcl_tokenizer_free(tok);
    return st;
  }
  bc_err_clear(&tok->err);
  *out = tok;
  return BERTCL_OK;
}

int bertcl_tokenizer_load(bertcl_tokenizer **out, const char *dir) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  if (!dir) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "model directory is NULL");
  size_t n = strlen(dir) + 64;
  enum { JSON, VOCAB, CFG, MODEL_CFG, ST_CFG, SPM, BPE_VOCAB, NPATHS };
  char *p[NPATHS];
  static const char *const names[NPATHS] = {
      "tokenizer.json",           "vocab.txt",               "tokenizer_config.json",
      "config.json",              "sentence_bert_config.json", "sentencepiece.bpe.model",
      "vocab.json"};
  for (int i = 0; i < NPATHS; i++) {
    p[i] = malloc(n);
    if (!p[i]) {
      for (int k = 0; k < i; k++) free(p[k]);
      return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
    }
    snprintf(p[i], n, "%s/%s", dir, names[i]);
  }
  int st;
  if (file_exists(p[JSON]) || file_exists(p[VOCAB])) {
    /* the folder checks of model/tokcheck.h: the file's bytes, then the loaded tokenizer
     * against config.json's table sizes */
    const char *tokfile = file_exists(p[JSON]) ? p[JSON] : p[VOCAB];
    st = bc_tokfile_precheck(NULL, tokfile);
    if (st == BERTCL_OK)
      st = bc_tok_load_files(out, file_exists(p[JSON]) ? p[JSON] : NULL, p[VOCAB], p[CFG],
                             p[MODEL_CFG], p[ST_CFG]);
    if (st == BERTCL_OK) {
      bc_tok_limits lim;
      bc_tok_limits_from_config(p[MODEL_CFG], &lim);
      st = bc_tokenizer_check(NULL, *out, tokfile, &lim);
      if (st != BERTCL_OK) {
        bertcl_tokenizer_free(*out);
        *out = NULL;
      }
    }
  } else if (file_exists(p[SPM]) || file_exists(p[BPE_VOCAB])) {
    const char *have = file_exists(p[SPM]) ? names[SPM] : "vocab.json + merges.txt";
    st = bc_fail(NULL, BERTCL_ERR_MISSING,
                 "%s: tokenizer.json is missing (found %s, which bertcl does not read); write it "
                 "with transformers: AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)",
                 dir, have);
  } else {
    st = bc_fail(NULL, BERTCL_ERR_MISSING, "%s: no tokenizer.json and no vocab.txt", dir);
  }
  for (int i = 0; i < NPATHS; i++) free(p[i]);
  return st;
}

void bertcl_tokenizer_free(bertcl_tokenizer *tok) {
  if (!tok) return;
  bc_tok_map_free(&tok->vocab);
  bc_tok_map_free(&tok->cont);
  bc_tok_components_free(tok);
  free(tok->id_off);
  free(tok->id_len);
  free(tok->pool);
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
  while (n > 0 && !tok->id_off[n - 1]) n--;
  return n;
}

const char *bertcl_tokenizer_id_to_token(const bertcl_tokenizer *tok, int32_t id) {
  if (!tok || id < 0) return NULL;
  return bc_tok_str(tok, (size_t)id);
}

int32_t bertcl_tokenizer_token_to_id(const bertcl_tokenizer *tok, const char *token) {
  if (!tok || !token) return -1;
  size_t len = strlen(token);
  for (size_t k = 0; k < tok->n_added; k++) {
    const bc_tok_added *a = &tok->added_all[k];
    const char *s = bc_tok_str(tok, (size_t)a->id);
    if (s && tok->id_len[a->id] == len && memcmp(s, token, len) == 0) return a->id;
  }
  return bc_tok_map_get(tok, &tok->vocab, token, len);
}

const char *bertcl_tokenizer_describe(const bertcl_tokenizer *tok, bertcl_tokenizer_stage stage) {
  if (!tok || (int)stage < 0 || (int)stage >= 5) return NULL;
  return tok->desc[stage] ? tok->desc[stage] : "none";
}

const char *bertcl_tokenizer_model_type(const bertcl_tokenizer *tok) {
  if (!tok) return NULL;
  switch (tok->model.kind) {
  case BC_MODEL_WORDPIECE: return "WordPiece";
  case BC_MODEL_UNIGRAM: return "Unigram";
  case BC_MODEL_BPE: return "BPE";
  case BC_MODEL_WORDLEVEL: return "WordLevel";
  default: return "?";
  }
}
