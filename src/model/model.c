/* bertcl_model: a Hugging Face BERT directory loaded to fp32 host memory.
 *
 * Directory layout read: config.json; model.safetensors or model.safetensors.index.json + shards;
 * optionally modules.json, <pooling>/config.json, sentence_bert_config.json (sentence-transformers)
 * and tokenizer_config.json / vocab.txt / tokenizer.json (reported by bertcl info). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/family.h"
#include "model/loader.h"
#include "model/tokcheck.h"

struct bertcl_model {
  bc_err err; /* first member: bertcl_last_error(model) */
  char *dir;
  bc_config cfg;
  bc_weights w;
  float *arena; /* every weight, fp32 */
  size_t n_params;
  bc_config_extra ex;
  int num_files, num_unused;
  char dtypes[64];
  bc_tok_settings tok;
  int has_vocab_txt, has_tokenizer_json;
};

const bc_config *bc_model_config(const struct bertcl_model *m) { return m ? &m->cfg : NULL; }
const bc_weights *bc_model_weights(const struct bertcl_model *m) { return m ? &m->w : NULL; }
const char *bc_model_dir(const struct bertcl_model *m) { return m ? m->dir : NULL; }

void bertcl_model_free(bertcl_model *m) {
  if (!m) return;
  free(m->w.layers);
  free(m->arena);
  bc_config_extra_free(&m->ex);
  free(m->dir);
  free(m);
}

/* ---- weight binding ------------------------------------------------------------------------ */

typedef struct {
  char name[160]; /* the full tensor name looked up (prefix included) */
  int ndim;
  int64_t dims[2];
  const float **dst;
  const bc_st_tensor *t; /* found; NULL for a computed table */
  int computed;          /* DistilBERT's sinusoidal position table, absent from the file */
} want;

typedef struct {
  want *v;
  size_t n, cap;
} want_list;

static int want_add(bc_err *err, want_list *l, const char *prefix, const char *name, int64_t d0,
                    int64_t d1, const float **dst) {
  if (l->n == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 64;
    want *nv = realloc(l->v, ncap * sizeof *nv);
    if (!nv) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    l->v = nv;
    l->cap = ncap;
  }
  want *w = &l->v[l->n++];
  memset(w, 0, sizeof *w);
  snprintf(w->name, sizeof w->name, "%s%s", prefix, name);
  w->ndim = d1 ? 2 : 1;
  w->dims[0] = d0;
  w->dims[1] = d1;
  w->dst = dst;
  return BERTCL_OK;
}

static const bc_st_tensor *find_in(bc_st_file *const *files, size_t nfiles, const char *name) {
  for (size_t i = 0; i < nfiles; i++) {
    const bc_st_tensor *t = bc_st_find(files[i], name);
    if (t) return t;
  }
  return NULL;
}

/* Looks a tensor up by its full name, then in the legacy LayerNorm.gamma/beta spelling. */
static const bc_st_tensor *lookup(bc_st_file *const *files, size_t nfiles, const char *name) {
  const bc_st_tensor *t = find_in(files, nfiles, name);
  if (t) return t;
  char full[192];
  snprintf(full, sizeof full, "%s", name);
  size_t n = strlen(full);
  static const char *const from[] = {"LayerNorm.weight", "LayerNorm.bias"};
  static const char *const to[] = {"LayerNorm.gamma", "LayerNorm.beta"};
  for (int k = 0; k < 2; k++) {
    size_t fl = strlen(from[k]);
    if (n >= fl && strcmp(full + n - fl, from[k]) == 0) {
      snprintf(full + n - fl, sizeof full - (n - fl), "%s", to[k]);
      return find_in(files, nfiles, full);
    }
  }
  return NULL;
}

/* lookup(prefix + name); NULL when the family has no such tensor (name NULL). */
static const bc_st_tensor *lookup2(bc_st_file *const *files, size_t nfiles, const char *prefix,
                                   const char *name) {
  if (!name) return NULL;
  char full[192];
  snprintf(full, sizeof full, "%s%s", prefix, name);
  return lookup(files, nfiles, full);
}

static void dims_str(char *out, size_t n, int ndim, const int64_t *dims) {
  size_t o = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < ndim && o < n; d++)
    o += (size_t)snprintf(out + o, n - o, "%s%lld", d ? ", " : "", (long long)dims[d]);
  if (o < n) snprintf(out + o, n - o, "]");
}

static int is_float_dtype(bc_dtype d) {
  return d == BC_DT_F32 || d == BC_DT_F16 || d == BC_DT_BF16;
}

/* Checks one found tensor against what the config says. */
static int check_shape(bc_err *err, const char *wname, const char *cname, const want *w) {
  const bc_st_tensor *t = w->t;
  int ok = t->ndim == w->ndim;
  for (int d = 0; ok && d < w->ndim; d++) ok = t->shape[d] == w->dims[d];
  if (!ok) {
    char got[200], exp[64];
    dims_str(got, sizeof got, t->ndim, t->shape);
    dims_str(exp, sizeof exp, w->ndim, w->dims);
    return bc_fail(err, BERTCL_ERR_SHAPE, "%s: tensor '%s' has shape %s but %s implies %s", wname,
                   w->name, got, cname, exp);
  }
  if (!is_float_dtype(t->dtype))
    return bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                   "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16", wname, t->name,
                   t->dtype_name);
  return BERTCL_OK;
}

static int missing(bc_err *err, const char *wname, const want *w) {
  char exp[64];
  dims_str(exp, sizeof exp, w->ndim, w->dims);
  return bc_fail(err, BERTCL_ERR_MISSING, "%s: missing tensor '%s' (expected shape %s)", wname,
                 w->name, exp);
}

static int debug_enabled(void) {
  const char *e = getenv("BERTCL_DEBUG");
  return e && *e && strcmp(e, "0") != 0;
}

int bc_model_build(bc_err *err, const char *dir, const char *config_name, const char *config_text,
                   size_t config_len, bc_st_file *const *files, size_t nfiles,
                   const char *weights_name, struct bertcl_model **out) {
  *out = NULL;
  want_list wl = {0};
  const bc_st_tensor **used = NULL;
  int st;
  bertcl_model *m = calloc(1, sizeof *m);
  if (!m) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  if (!(m->dir = strdup(dir ? dir : ""))) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  m->tok.do_lower_case = -1;
  BC_TRY(bc_config_parse(err, config_name, config_text, config_len, &m->cfg, &m->ex));
  const bc_config *c = &m->cfg;
  const int64_t C = c->hidden_size, I = c->intermediate_size;

  /* a tensor name in two shards is ambiguous */
  for (size_t f = 0; f < nfiles; f++) {
    for (size_t i = 0; f > 0 && i < bc_st_count(files[f]); i++) {
      const bc_st_tensor *t = bc_st_at(files[f], i);
      for (size_t g = 0; g < f; g++) {
        if (bc_st_find(files[g], t->name)) {
          st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor '%s' is in two shards (%s and %s)",
                       weights_name, t->name, bc_st_path(files[g]), bc_st_path(files[f]));
          goto fail;
        }
      }
    }
  }
  const bc_family_desc *fam = bc_family_get(c->family);
  const bc_tensor_names *nm = &fam->names;
  /* a task checkpoint (RobertaForSequenceClassification...) holds the encoder under a prefix */
  const char *prefix = "";
  if (!lookup2(files, nfiles, "", nm->word_emb) &&
      lookup2(files, nfiles, fam->base_prefix, nm->word_emb))
    prefix = fam->base_prefix;

  m->w.layers = calloc((size_t)c->num_layers, sizeof *m->w.layers);
  if (!m->w.layers) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  bc_weights *w = &m->w;
  /* the sizes the X-macros of model.h name */
  const int64_t V = c->vocab_size, P = bc_config_position_rows(c), TT = c->type_vocab_size;
  const int64_t NB = c->rel_buckets, NH = c->num_heads, K = m->ex.expected_labels;
  (void)V, (void)P, (void)TT, (void)NB, (void)NH, (void)K, (void)I;
#define WANT(f, r, cc, d)                                                                      \
  if (nm->f) BC_TRY(want_add(err, &wl, prefix, nm->f, r, cc, &w->f));
  BC_WEIGHTS_EMB(WANT)
  BC_WEIGHTS_REL(WANT)
#undef WANT
  if (m->ex.sinusoidal && !lookup2(files, nfiles, prefix, nm->pos_emb)) {
    /* DistilBERT with sinusoidal_pos_embds: transformers computes a missing table */
    for (size_t i = 0; i < wl.n; i++)
      if (wl.v[i].dst == &w->pos_emb) wl.v[i].computed = 1;
  }
  for (int l = 0; l < c->num_layers; l++) {
    bc_layer_weights *lw = &w->layers[l];
    char lp[192];
    snprintf(lp, sizeof lp, "%s", prefix);
    snprintf(lp + strlen(lp), sizeof lp - strlen(lp), fam->layer_prefix, l);
#define WANT(f, r, cc, d) BC_TRY(want_add(err, &wl, lp, nm->f, r, cc, &lw->f));
    BC_WEIGHTS_LAYER(WANT)
#undef WANT
  }
  /* optional groups, each all or nothing: the pooler; the head's dense layer; the classifier
   * (the sequence head's, else a token-classification checkpoint's "classifier") */
  if (lookup2(files, nfiles, prefix, nm->pool_w) || lookup2(files, nfiles, prefix, nm->pool_b)) {
#define WANT(f, r, cc, d) BC_TRY(want_add(err, &wl, prefix, nm->f, r, cc, &w->f));
    BC_WEIGHTS_POOL(WANT)
#undef WANT
  }
  const char *cls_w = nm->cls_w, *cls_b = nm->cls_b;
  int seq_cls = lookup2(files, nfiles, "", cls_w) || lookup2(files, nfiles, "", cls_b);
  if (!seq_cls) {
    cls_w = "classifier.weight";
    cls_b = "classifier.bias";
  }
  if (lookup2(files, nfiles, "", cls_w) || lookup2(files, nfiles, "", cls_b)) {
    BC_TRY(want_add(err, &wl, "", cls_w, K, C, &w->cls_w));
    BC_TRY(want_add(err, &wl, "", cls_b, K, 0, &w->cls_b));
    /* the sequence head's dense layer; absent in a token-classification checkpoint, whose
     * classifier DistilBERT names as its sequence head's */
    if (seq_cls &&
        (lookup2(files, nfiles, "", nm->head_w) || lookup2(files, nfiles, "", nm->head_b))) {
      BC_TRY(want_add(err, &wl, "", nm->head_w, C, C, &w->head_w));
      BC_TRY(want_add(err, &wl, "", nm->head_b, C, 0, &w->head_b));
    }
  }

  size_t n_params = 0;
  for (size_t i = 0; i < wl.n; i++) {
    want *x = &wl.v[i];
    size_t numel = (size_t)x->dims[0] * (size_t)(x->ndim == 2 ? x->dims[1] : 1);
    if (!x->computed) {
      if (!(x->t = lookup(files, nfiles, x->name))) {
        st = missing(err, weights_name, x);
        goto fail;
      }
      BC_TRY(check_shape(err, weights_name, config_name, x));
      numel = x->t->numel;
    }
    if (bc_add_size(n_params, numel, &n_params)) {
      st = bc_fail(err, BERTCL_ERR_OVERFLOW, "%s: parameter count overflows", weights_name);
      goto fail;
    }
  }
  size_t bytes;
  if (bc_mul_size(n_params ? n_params : 1, sizeof(float), &bytes)) {
    st = bc_fail(err, BERTCL_ERR_OVERFLOW, "%s: weights too large", weights_name);
    goto fail;
  }
  m->arena = malloc(bytes);
  if (!m->arena) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of host memory for %zu bytes of weights", bytes);
    goto fail;
  }
  float *p = m->arena;
  for (size_t i = 0; i < wl.n; i++) {
    want *x = &wl.v[i];
    size_t numel = (size_t)x->dims[0] * (size_t)(x->ndim == 2 ? x->dims[1] : 1);
    if (x->computed)
      bc_sinusoidal_positions(p, (int)x->dims[0], (int)x->dims[1]);
    else
      BC_TRY(bc_st_read_f32(err, x->t, p, (numel = x->t->numel)));
    *x->dst = p;
    p += numel;
  }
  /* BertForSequenceClassification's head dense layer is the pooler */
  if (c->head == BC_CLS_HEAD_POOLER && w->cls_w && w->pool_w) {
    w->head_w = w->pool_w;
    w->head_b = w->pool_b;
  }
  m->n_params = n_params;
  m->cfg.num_labels = w->cls_w ? (int)K : 0;

  /* dtypes on disk of the loaded weights, and the tensors left unused */
  static const char *const dt_order[] = {"BF16", "F16", "F32"};
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < wl.n; i++) {
      if (wl.v[i].t && strcmp(wl.v[i].t->dtype_name, dt_order[k]) == 0) {
        size_t o = strlen(m->dtypes);
        snprintf(m->dtypes + o, sizeof m->dtypes - o, "%s%s", o ? "," : "", dt_order[k]);
        break;
      }
    }
  }
  used = calloc(wl.n ? wl.n : 1, sizeof *used);
  if (!used) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < wl.n; i++) used[i] = wl.v[i].t;
  int dbg = debug_enabled();
  for (size_t f = 0; f < nfiles; f++) {
    for (size_t i = 0; i < bc_st_count(files[f]); i++) {
      const bc_st_tensor *t = bc_st_at(files[f], i);
      int is_used = 0;
      for (size_t k = 0; k < wl.n && !is_used; k++) is_used = used[k] == t;
      if (is_used) continue;
      m->num_unused++;
      if (dbg)
        fprintf(stderr, "bertcl: debug: %s: unused tensor '%s' (%s, %zu elements)\n",
                bc_st_path(files[f]), t->name, t->dtype_name, t->numel);
    }
  }
  m->num_files = (int)nfiles;
  free(used);
  free(wl.v);
  *out = m;
  return BERTCL_OK;
fail:
  free(used);
  free(wl.v);
  bertcl_model_free(m);
  return st;
}

/* ---- directory loading --------------------------------------------------------------------- */

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, (*a && a[strlen(a) - 1] != '/' && *b) ? "/" : "", b);
  return s;
}

static int exists(const char *dir, const char *name, int want_dir) {
  char *p = join(dir, name);
  struct stat sb;
  int r = p && stat(p, &sb) == 0 && (want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
  free(p);
  return r;
}

/* Reads dir/name; *text NULL (and BERTCL_OK) when optional and absent. */
static int read_in(bc_err *err, const char *dir, const char *name, int optional, char **text,
                   size_t *len, char **path_out) {
  *text = NULL;
  *len = 0;
  char *p = join(dir, name);
  if (!p) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  struct stat sb;
  int st = BERTCL_OK;
  if (stat(p, &sb) != 0) {
    if (!optional) st = bc_fail(err, BERTCL_ERR_MISSING, "%s: not found (%s)", p, strerror(errno));
  } else if (!S_ISREG(sb.st_mode)) {
    st = bc_fail(err, BERTCL_ERR_IO, "%s: not a regular file", p);
  } else if (sb.st_size > (64 << 20)) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED, "%s: %lld bytes is too large for a JSON file", p,
                 (long long)sb.st_size);
  } else {
    st = bc_read_file(err, p, text, len);
  }
  if (st == BERTCL_OK && *text && path_out)
    *path_out = p;
  else
    free(p);
  return st;
}

/* Opens the shards that model.safetensors.index.json names. */
static int open_sharded(bc_err *err, const char *dir, const char *index_path, bc_st_file ***files,
                        size_t *nfiles) {
  *files = NULL;
  *nfiles = 0;
  char *text = NULL;
  size_t len = 0;
  int st = bc_read_file(err, index_path, &text, &len);
  if (st) return st;
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  free(text);
  bc_st_file **fs = NULL;
  size_t nf = 0;
  if (!root) {
    if (json_error_code(&jerr) == json_error_duplicate_key)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: duplicate key: %s", index_path, jerr.text);
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)",
                   index_path, jerr.text, jerr.line, jerr.column);
  }
  json_t *map = json_object_get(root, "weight_map");
  if (!json_is_object(root) || !json_is_object(map) || json_object_size(map) == 0) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    goto fail;
  }
  fs = calloc(json_object_size(map), sizeof *fs);
  char **names = calloc(json_object_size(map), sizeof *names);
  if (!fs || !names) {
    free(names);
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  const char *k;
  json_t *v;
  json_object_foreach(map, k, v) {
    if (!json_is_string(v)) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: weight_map value of '%s' is not a string",
                   index_path, k);
      break;
    }
    const char *shard = json_string_value(v);
    if (!*shard || strchr(shard, '/') || strcmp(shard, ".") == 0 || strcmp(shard, "..") == 0) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: shard name \"%.80s\" of '%s' is not a file name in the directory",
                   index_path, shard, k);
      break;
    }
    size_t i = 0;
    while (i < nf && strcmp(names[i], shard) != 0) i++;
    if (i == nf) {
      char *sp = join(dir, shard);
      names[nf] = (char *)shard;
      st = sp ? bc_st_open(err, sp, &fs[nf]) : bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      if (st == BERTCL_ERR_MISSING)
        st = bc_fail(err, BERTCL_ERR_MISSING, "%s: shard %s named in %s does not exist", sp, shard,
                     index_path);
      free(sp);
      if (st) break;
      nf++;
    }
    if (!bc_st_find(fs[i], k)) {
      st = bc_fail(err, BERTCL_ERR_MISSING, "%s: says tensor '%s' is in %s, which lacks it",
                   index_path, k, shard);
      break;
    }
  }
  free(names);
  if (st) goto fail;
  json_decref(root);
  *files = fs;
  *nfiles = nf;
  return BERTCL_OK;
fail:
  for (size_t i = 0; i < nf; i++) bc_st_close(fs[i]);
  free(fs);
  json_decref(root);
  return st;
}

/* sentence-transformers modules and tokenizer settings. */
/* Pooling paths are relative to top (where modules.json is); the rest is read from dir (the
 * Transformer module's directory, the same one except in the older subdirectory layout). */
static int load_extras(bc_err *err, bertcl_model *m, const char *top, const char *dir,
                       const bc_st_modules *mods) {
  char *text = NULL, *path = NULL;
  size_t len = 0;
  int st = BERTCL_OK;
  bc_config *c = &m->cfg;
  if (mods->present) {
    c->st_normalize = mods->normalize;
    if (mods->has_pooling) {
      char *pdir = join(top, mods->pooling);
      if (!pdir) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      st = read_in(err, pdir, "config.json", 0, &text, &len, &path);
      free(pdir);
      if (st) return st;
      st = bc_pooling_parse(err, path, text, len, c->hidden_size, &c->st_pooling);
      free(text);
      free(path);
      text = path = NULL;
      if (st) return st;
    }
  }
  if ((st = read_in(err, dir, "sentence_bert_config.json", 1, &text, &len, &path))) return st;
  if (text) {
    st = bc_sbert_config_parse(err, path, text, len, &c->st_max_seq_length, &c->st_do_lower_case);
    free(text);
    free(path);
    text = path = NULL;
    if (st) return st;
    if (c->st_max_seq_length > c->max_position) c->st_max_seq_length = c->max_position;
  }
  if ((st = read_in(err, dir, "tokenizer_config.json", 1, &text, &len, &path))) return st;
  if (text) {
    st = bc_tok_settings_parse(err, path, text, len, &m->tok);
    free(text);
    free(path);
    if (st) return st;
  }
  m->has_vocab_txt = exists(dir, "vocab.txt", 0);
  m->has_tokenizer_json = exists(dir, "tokenizer.json", 0);
  return BERTCL_OK;
}

int bertcl_model_load(bertcl_model **out, const char *dir_in) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_model_load: out is NULL");
  *out = NULL;
  if (!dir_in || !*dir_in)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_model_load: no model directory given");
  bc_err *err = NULL; /* the thread's slot: there is no handle yet */
  struct stat sb;
  if (stat(dir_in, &sb) != 0)
    return bc_fail(err, BERTCL_ERR_MISSING, "model directory %s: %s", dir_in, strerror(errno));
  if (!S_ISDIR(sb.st_mode))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "%s is not a directory (give the model directory)",
                   dir_in);
  char *text = NULL, *cfg_path = NULL, *wpath = NULL, *dir = NULL;
  size_t len = 0, nfiles = 0;
  bc_st_file **files = NULL;
  bertcl_model *m = NULL;
  bc_st_modules mods;
  memset(&mods, 0, sizeof mods);
  int st;

  /* sentence-transformers: the Transformer module may live in a subdirectory */
  BC_TRY(read_in(err, dir_in, "modules.json", 1, &text, &len, &cfg_path));
  if (text) {
    st = bc_modules_parse(err, cfg_path, text, len, &mods);
    free(text);
    free(cfg_path);
    text = cfg_path = NULL;
    if (st) goto fail;
  }
  dir = (mods.transformer[0] && !exists(dir_in, "config.json", 0)) ? join(dir_in, mods.transformer)
                                                                   : strdup(dir_in);
  if (!dir) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  BC_TRY(read_in(err, dir, "config.json", 0, &text, &len, &cfg_path));

  if (exists(dir, "model.safetensors", 0)) {
    wpath = join(dir, "model.safetensors");
    files = calloc(1, sizeof *files);
    if (!wpath || !files) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      goto fail;
    }
    BC_TRY(bc_st_open(err, wpath, &files[0]));
    nfiles = 1;
  } else if (exists(dir, "model.safetensors.index.json", 0)) {
    wpath = join(dir, "model.safetensors.index.json");
    if (!wpath) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      goto fail;
    }
    BC_TRY(open_sharded(err, dir, wpath, &files, &nfiles));
  } else if (exists(dir, "pytorch_model.bin", 0) ||
             exists(dir, "pytorch_model.bin.index.json", 0)) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                 "%s has only pytorch_model.bin (a Python pickle, which bertcl does not read); "
                 "convert it once with: python3 scripts/convert_pytorch_bin.py %s",
                 dir, dir);
    goto fail;
  } else {
    st = bc_fail(err, BERTCL_ERR_MISSING,
                 "%s: no model.safetensors or model.safetensors.index.json", dir);
    goto fail;
  }
  BC_TRY(bc_model_build(err, dir, cfg_path, text, len, files, nfiles, wpath, &m));
  BC_TRY(load_extras(err, m, dir_in, dir, &mods));
  {
    /* the directory's tokenizer must fit the tables it indexes (model/tokcheck.h) */
    bc_tok_limits lim = {m->cfg.vocab_size, m->cfg.type_vocab_size, ""};
    snprintf(lim.source, sizeof lim.source,
             "the row count of %s embeddings.word_embeddings.weight (%s vocab_size)", wpath,
             cfg_path);
    BC_TRY(bc_model_tokenizer_check(err, dir_in, dir, &lim));
  }
  free(m->dir);
  m->dir = dir;
  dir = NULL;
fail:
  for (size_t i = 0; i < nfiles; i++) bc_st_close(files[i]);
  free(files);
  free(text);
  free(cfg_path);
  free(wpath);
  free(dir);
  if (st != BERTCL_OK) {
    bertcl_model_free(m);
    return st;
  }
  bc_err_clear(&m->err);
  *out = m;
  return BERTCL_OK;
}

/* ---- queries ------------------------------------------------------------------------------- */

int bertcl_model_get_info(const bertcl_model *m, bertcl_model_info *info) {
  if (!m || !info)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_model_get_info: NULL argument");
  memset(info, 0, sizeof *info);
  const bc_config *c = &m->cfg;
  snprintf(info->model_type, sizeof info->model_type, "%s", m->ex.model_type);
  snprintf(info->hidden_act, sizeof info->hidden_act, "%s", m->ex.hidden_act);
  info->vocab_size = c->vocab_size;
  info->hidden_size = c->hidden_size;
  info->num_layers = c->num_layers;
  info->num_heads = c->num_heads;
  info->intermediate_size = c->intermediate_size;
  info->max_position = bc_config_position_rows(c);
  info->type_vocab_size = c->type_vocab_size;
  info->pad_token_id = c->pad_token_id;
  info->layer_norm_eps = c->layer_norm_eps;
  info->has_pooler = m->w.pool_w != NULL;
  info->num_labels = c->num_labels;
  snprintf(info->problem_type, sizeof info->problem_type, "%s", c->problem_type);
  info->num_params = m->n_params;
  info->num_files = m->num_files;
  info->num_unused = m->num_unused;
  snprintf(info->dtypes, sizeof info->dtypes, "%s", m->dtypes);
  size_t o = 0;
  static const struct {
    int flag;
    const char *name;
  } pools[] = {{BC_POOL_CLS, "cls"}, {BC_POOL_MEAN, "mean"}, {BC_POOL_MAX, "max"}};
  for (int k = 0; k < 3; k++)
    if (c->st_pooling & pools[k].flag)
      o += (size_t)snprintf(info->pooling + o, sizeof info->pooling - o, "%s%s", o ? "+" : "",
                            pools[k].name);
  info->normalize = c->st_normalize;
  info->st_max_seq_length = c->st_max_seq_length;
  int maxlen = c->max_position;
  if (c->st_max_seq_length > 0 && c->st_max_seq_length < maxlen)
    maxlen = c->st_max_seq_length;
  else if (c->st_max_seq_length == 0 && m->tok.model_max_length > 0 &&
           m->tok.model_max_length < maxlen)
    maxlen = (int)m->tok.model_max_length;
  info->max_length = maxlen;
  info->do_lower_case = m->tok.do_lower_case;
  if (c->st_do_lower_case) info->do_lower_case = 1;
  info->has_vocab_txt = m->has_vocab_txt;
  info->has_tokenizer_json = m->has_tokenizer_json;
  snprintf(info->tokenizer_class, sizeof info->tokenizer_class, "%s", m->tok.tokenizer_class);
  snprintf(info->family, sizeof info->family, "%s", bc_family_name(c->family));
  return BERTCL_OK;
}

const char *bertcl_model_label(const bertcl_model *m, int id) {
  if (!m || id < 0 || id >= m->ex.n_labels || !m->ex.labels) return NULL;
  return m->ex.labels[id];
}
