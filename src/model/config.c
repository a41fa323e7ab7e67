/* config.json (BertConfig, RobertaConfig, XLMRobertaConfig, CamembertConfig, DistilBertConfig,
 * MPNetConfig) and the sentence-transformers module files: parse and validate. The family's keys
 * come from model/family.c; missing keys take the config class's defaults, as transformers does;
 * present keys must have the right type and a sane range. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/family.h"
#include "model/loader.h"

/* Parses text as one JSON object, rejecting duplicate keys. */
static int load_object(bc_err *err, const char *name, const char *text, size_t len, size_t flags,
                       json_t **out) {
  *out = NULL;
  json_error_t jerr;
  json_t *root = json_loadb(text, len, flags | JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    if (json_error_code(&jerr) == json_error_duplicate_key)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: duplicate key: %s", name, jerr.text);
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", name,
                   jerr.text, jerr.line, jerr.column);
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not a JSON object", name);
  }
  *out = root;
  return BERTCL_OK;
}

/* An integer key in [lo, hi]; def when absent or null. */
static int get_int(bc_err *err, const char *name, json_t *o, const char *key, int def, long lo,
                   long hi, int *out) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) {
    *out = def;
    return BERTCL_OK;
  }
  if (!json_is_integer(v))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"%s\" must be an integer", name, key);
  json_int_t x = json_integer_value(v);
  if (x < lo || x > hi)
    return bc_fail(err, BERTCL_ERR_UNSUPPORTED, "%s: \"%s\" is %lld, outside [%ld, %ld]", name, key,
                   (long long)x, lo, hi);
  *out = (int)x;
  return BERTCL_OK;
}

/* A string key copied into out; def when absent or null. */
static int get_str(bc_err *err, const char *name, json_t *o, const char *key, const char *def,
                   char *out, size_t n) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) {
    snprintf(out, n, "%s", def);
    return BERTCL_OK;
  }
  if (!json_is_string(v))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"%s\" must be a string", name, key);
  const char *s = json_string_value(v);
  if (strlen(s) >= n)
    return bc_fail(err, BERTCL_ERR_UNSUPPORTED, "%s: \"%s\" value '%.40s...' is too long", name,
                   key, s);
  snprintf(out, n, "%s", s);
  return BERTCL_OK;
}

/* A boolean key; def when absent or null. */
static int get_bool(bc_err *err, const char *name, json_t *o, const char *key, int def, int *out) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) {
    *out = def;
    return BERTCL_OK;
  }
  if (!json_is_boolean(v))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"%s\" must be true or false", name, key);
  *out = json_is_true(v);
  return BERTCL_OK;
}

void bc_config_extra_free(bc_config_extra *ex) {
  if (!ex) return;
  for (int i = 0; i < ex->n_labels; i++) free(ex->labels[i]);
  free(ex->labels);
  ex->labels = NULL;
  ex->n_labels = 0;
}

/* Parses a decimal id key of id2label: digits only, no sign, no leading zeros. */
static int parse_id(const char *s, long *out) {
  if (!*s || (s[0] == '0' && s[1])) return -1;
  long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > 100000000) return -1;
    v = v * 10 + (*p - '0');
  }
  *out = v;
  return 0;
}

static int parse_labels(bc_err *err, const char *name, json_t *root, bc_config_extra *ex) {
  json_t *id2label = json_object_get(root, "id2label");
  json_t *label2id = json_object_get(root, "label2id");
  int num_labels = 0, st;
  if ((st = get_int(err, name, root, "num_labels", 0, 1, 1000000, &num_labels))) return st;
  ex->expected_labels = num_labels ? num_labels : 2;
  if (id2label && !json_is_null(id2label)) {
    if (!json_is_object(id2label))
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"id2label\" must be an object", name);
    size_t n = json_object_size(id2label);
    if (n == 0 || n > 1000000)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"id2label\" has %zu entries", name, n);
    if (num_labels && (size_t)num_labels != n)
      return bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s: \"num_labels\" is %d but \"id2label\" has %zu entries", name, num_labels,
                     n);
    ex->labels = calloc(n, sizeof *ex->labels);
    if (!ex->labels) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    ex->n_labels = (int)n;
    const char *k;
    json_t *v;
    json_object_foreach(id2label, k, v) {
      long id;
      if (parse_id(k, &id) != 0 || (size_t)id >= n)
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: \"id2label\" key '%.40s' is not a label id in [0, %zu)", name, k, n);
      if (!json_is_string(v))
        return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"id2label\" value of %ld is not a string",
                       name, id);
      if (ex->labels[id])
        return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"id2label\" lists id %ld twice", name, id);
      if (!(ex->labels[id] = strdup(json_string_value(v))))
        return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    }
    ex->expected_labels = (int)n;
  }
  if (label2id && !json_is_null(label2id)) {
    if (!json_is_object(label2id))
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"label2id\" must be an object", name);
    const char *k;
    json_t *v;
    json_object_foreach(label2id, k, v) {
      if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: \"label2id\" value of '%.40s' is not a non-negative integer", name, k);
      json_int_t id = json_integer_value(v);
      if (ex->labels && (id >= ex->n_labels || strcmp(ex->labels[id], k) != 0))
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: \"label2id\" maps '%.40s' to %lld, which \"id2label\" does not", name,
                       k, (long long)id);
    }
    if (ex->labels && json_object_size(label2id) != (size_t)ex->n_labels)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"label2id\" has %zu entries, \"id2label\" %d",
                     name, json_object_size(label2id), ex->n_labels);
  }
  return BERTCL_OK;
}

/* The model_type of a config.json without one, from its architectures[] class names. */
static const bc_model_type *type_from_architectures(json_t *root) {
  json_t *arch = json_object_get(root, "architectures");
  size_t i;
  json_t *v;
  if (!json_is_array(arch)) return NULL;
  json_array_foreach(arch, i, v) {
    const bc_model_type *t = json_is_string(v) ? bc_model_type_from_arch(json_string_value(v)) : NULL;
    if (t) return t;
  }
  return NULL;
}

/* A dropout probability in [0, 1); def when absent or null. */
static int get_prob(bc_err *err, const char *name, json_t *o, const char *key, float def,
                    float *out) {
  json_t *v = key ? json_object_get(o, key) : NULL;
  *out = def;
  if (!v || json_is_null(v)) return BERTCL_OK;
  if (!json_is_number(v))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"%s\" must be a number", name, key);
  double p = json_number_value(v);
  if (!(p >= 0.0 && p < 1.0))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"%s\" %g is not in [0, 1)", name, key, p);
  *out = (float)p;
  return BERTCL_OK;
}

int bc_config_parse(bc_err *err, const char *name, const char *text, size_t len, bc_config *cfg,
                    bc_config_extra *ex) {
  memset(cfg, 0, sizeof *cfg);
  memset(ex, 0, sizeof *ex);
  json_t *root = NULL;
  int st = load_object(err, name, text, len, 0, &root);
  if (st) return st;

  BC_TRY(get_str(err, name, root, "model_type", "", ex->model_type, sizeof ex->model_type));
  const bc_model_type *mt = NULL;
  if (ex->model_type[0] == '\0') {
    if (!(mt = type_from_architectures(root))) {
      st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                   "%s: no \"model_type\" (and no architecture bertcl knows); bertcl runs "
                   "model_type %s",
                   name, bc_model_types_supported());
      goto fail;
    }
    snprintf(ex->model_type, sizeof ex->model_type, "%s", mt->model_type);
  } else if (!(mt = bc_model_type_find(ex->model_type))) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                 "%s: model_type \"%s\" is not supported; bertcl runs model_type %s (BERT, "
                 "MiniLM, BGE, E5, RoBERTa, XLM-RoBERTa, CamemBERT, DistilBERT, MPNet and their "
                 "fine-tuned descendants)",
                 name, ex->model_type, bc_model_types_supported());
    goto fail;
  }
  const bc_family_desc *fam = bc_family_get(mt->family);
  cfg->family = fam->id;
  cfg->pos_kind = fam->pos_kind;
  cfg->head = fam->head;
  int is_decoder = 0, cross = 0;
  BC_TRY(get_bool(err, name, root, "is_decoder", 0, &is_decoder));
  BC_TRY(get_bool(err, name, root, "add_cross_attention", 0, &cross));
  if (is_decoder || cross) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                 "%s: \"%s\" is true; bertcl runs bidirectional encoders only", name,
                 is_decoder ? "is_decoder" : "add_cross_attention");
    goto fail;
  }
  BC_TRY(get_int(err, name, root, "vocab_size", mt->vocab_size, 1, 1L << 24, &cfg->vocab_size));
  BC_TRY(get_int(err, name, root, fam->key_hidden, 768, 1, 1L << 16, &cfg->hidden_size));
  BC_TRY(get_int(err, name, root, fam->key_layers, fam->id == BC_FAMILY_DISTILBERT ? 6 : 12, 1,
                 1024, &cfg->num_layers));
  BC_TRY(get_int(err, name, root, fam->key_heads, 12, 1, 1L << 16, &cfg->num_heads));
  BC_TRY(get_int(err, name, root, fam->key_inter, 3072, 1, 1L << 20, &cfg->intermediate_size));
  BC_TRY(get_int(err, name, root, "max_position_embeddings", 512, 1, 1L << 20,
                 &cfg->position_rows));
  cfg->max_position = cfg->position_rows;
  if (fam->has_types)
    BC_TRY(get_int(err, name, root, "type_vocab_size", 2, 1, 1L << 16, &cfg->type_vocab_size));
  json_t *pad = json_object_get(root, "pad_token_id");
  if (fam->pos_kind == BC_POS_PADDED && fam->fixed_padding_idx < 0 && pad && json_is_null(pad)) {
    st = bc_fail(err, BERTCL_ERR_FORMAT,
                 "%s: \"pad_token_id\" is null; %s counts positions from it", name, fam->name);
    goto fail;
  }
  BC_TRY(get_int(err, name, root, "pad_token_id", mt->pad_token_id, 0,
                 (long)cfg->vocab_size - 1, &cfg->pad_token_id));
  if (cfg->hidden_size % cfg->num_heads != 0) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: %s %d is not a multiple of %s %d", name,
                 fam->key_hidden, cfg->hidden_size, fam->key_heads, cfg->num_heads);
    goto fail;
  }
  if (fam->pos_kind == BC_POS_PADDED) {
    /* positions run from padding_idx + 1 to padding_idx + T */
    cfg->padding_idx = fam->fixed_padding_idx >= 0 ? fam->fixed_padding_idx : cfg->pad_token_id;
    cfg->max_position = cfg->position_rows - cfg->padding_idx - 1;
    if (cfg->max_position < 1) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: max_position_embeddings %d leaves no position after padding_idx %d",
                   name, cfg->position_rows, cfg->padding_idx);
      goto fail;
    }
  }
  if (fam->rel_attention_bias) {
    BC_TRY(get_int(err, name, root, "relative_attention_num_buckets", BC_REL_BUCKETS, 1, 1L << 16,
                   &cfg->rel_buckets));
    if (cfg->rel_buckets < BC_REL_BUCKETS) {
      /* transformers always buckets into 32 (MPNetEncoder.compute_position_bias) */
      st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                   "%s: relative_attention_num_buckets %d is below the %d buckets %s uses", name,
                   cfg->rel_buckets, BC_REL_BUCKETS, fam->name);
      goto fail;
    }
  }

  cfg->layer_norm_eps = 1e-12f;
  json_t *eps = fam->eps_in_config ? json_object_get(root, "layer_norm_eps") : NULL;
  if (eps && !json_is_null(eps)) {
    if (!json_is_number(eps)) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"layer_norm_eps\" must be a number", name);
      goto fail;
    }
    double e = json_number_value(eps);
    if (!(e > 0.0 && e < 1.0)) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"layer_norm_eps\" %g is not in (0, 1)", name, e);
      goto fail;
    }
    cfg->layer_norm_eps = (float)e;
  }

  BC_TRY(get_str(err, name, root, fam->key_act, "gelu", ex->hidden_act, sizeof ex->hidden_act));
  if (strcmp(ex->hidden_act, "gelu") == 0) {
    cfg->act = BC_ACT_GELU;
  } else if (strcmp(ex->hidden_act, "gelu_new") == 0 ||
             strcmp(ex->hidden_act, "gelu_pytorch_tanh") == 0) {
    cfg->act = BC_ACT_GELU_TANH;
  } else if (strcmp(ex->hidden_act, "relu") == 0) {
    cfg->act = BC_ACT_RELU;
  } else {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                 "%s: %s \"%s\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)", name,
                 fam->key_act, ex->hidden_act);
    goto fail;
  }

  char pet[64];
  BC_TRY(get_str(err, name, root, "position_embedding_type", "absolute", pet, sizeof pet));
  if (strcmp(pet, "absolute") != 0) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                 "%s: position_embedding_type \"%s\" is not supported (absolute only)", name, pet);
    goto fail;
  }
  if (fam->sinusoidal_key)
    BC_TRY(get_bool(err, name, root, "sinusoidal_pos_embds", 0, &ex->sinusoidal));

  BC_TRY(get_prob(err, name, root, fam->key_hidden_dropout, 0.1f, &cfg->hidden_dropout));
  BC_TRY(get_prob(err, name, root, fam->key_attn_dropout, 0.1f, &cfg->attn_dropout));
  float cls_def = fam->id == BC_FAMILY_DISTILBERT ? 0.2f : cfg->hidden_dropout;
  BC_TRY(get_prob(err, name, root, fam->key_cls_dropout, cls_def, &cfg->cls_dropout));

  BC_TRY(get_str(err, name, root, "problem_type", "", cfg->problem_type, sizeof cfg->problem_type));
  if (cfg->problem_type[0] && strcmp(cfg->problem_type, "regression") != 0 &&
      strcmp(cfg->problem_type, "single_label_classification") != 0 &&
      strcmp(cfg->problem_type, "multi_label_classification") != 0) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                 "%s: problem_type \"%s\" is not one of regression, "
                 "single_label_classification, multi_label_classification",
                 name, cfg->problem_type);
    goto fail;
  }
  BC_TRY(parse_labels(err, name, root, ex));
  json_decref(root);
  return BERTCL_OK;
fail:
  bc_config_extra_free(ex);
  json_decref(root);
  return st;
}

/* The module class name after the last '.', e.g. "Pooling". */
static const char *class_of(const char *type) {
  const char *dot = strrchr(type, '.');
  return dot ? dot + 1 : type;
}

int bc_modules_parse(bc_err *err, const char *name, const char *text, size_t len,
                     bc_st_modules *out) {
  memset(out, 0, sizeof *out);
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", name,
                   jerr.text, jerr.line, jerr.column);
  int st = BERTCL_OK;
  if (!json_is_array(root)) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: not a JSON array of modules", name);
    goto done;
  }
  size_t i;
  json_t *m;
  int have_transformer = 0;
  json_array_foreach(root, i, m) {
    json_t *type = json_object_get(m, "type"), *path = json_object_get(m, "path");
    if (!json_is_object(m) || !json_is_string(type) || (path && !json_is_string(path))) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: module %zu is not an object with \"type\" and \"path\" strings", name, i);
      goto done;
    }
    const char *t = json_string_value(type), *cls = class_of(t);
    const char *p = path ? json_string_value(path) : "";
    if (strstr(p, "..") || p[0] == '/' || strlen(p) >= sizeof out->pooling) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: module path \"%.60s\" is not a subdirectory", name,
                   p);
      goto done;
    }
    if (strcmp(cls, "Transformer") == 0 && !have_transformer && i == 0) {
      have_transformer = 1;
      snprintf(out->transformer, sizeof out->transformer, "%s", p);
    } else if (strcmp(cls, "Pooling") == 0 && have_transformer && !out->has_pooling) {
      out->has_pooling = 1;
      snprintf(out->pooling, sizeof out->pooling, "%s", p);
    } else if (strcmp(cls, "Normalize") == 0 && out->has_pooling && !out->normalize) {
      out->normalize = 1;
    } else {
      st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                   "%s: module %zu \"%.80s\" (path \"%.60s\") is not supported; bertcl runs "
                   "Transformer, Pooling, Normalize in that order",
                   name, i, t, p);
      goto done;
    }
  }
  if (!have_transformer) {
    st = bc_fail(err, BERTCL_ERR_UNSUPPORTED, "%s: no Transformer module first", name);
    goto done;
  }
  out->present = 1;
done:
  json_decref(root);
  return st;
}

int bc_pooling_parse(bc_err *err, const char *name, const char *text, size_t len, int hidden_size,
                     int *flags) {
  *flags = 0;
  json_t *root = NULL;
  int st = load_object(err, name, text, len, 0, &root);
  if (st) return st;
  int dim = 0, cls = 0, mean = 0, max = 0;
  /* sentence-transformers 6 writes embedding_dimension and pooling_mode ("mean" or a list of
   * modes); earlier versions word_embedding_dimension and one pooling_mode_* flag per mode */
  const char *dim_key =
      json_object_get(root, "embedding_dimension") ? "embedding_dimension" : "word_embedding_dimension";
  BC_TRY(get_int(err, name, root, dim_key, hidden_size, 1, 1L << 16, &dim));
  if (dim != hidden_size) {
    st = bc_fail(err, BERTCL_ERR_SHAPE, "%s: %s %d differs from the model's hidden_size %d", name,
                 dim_key, dim, hidden_size);
    goto fail;
  }
  json_t *mode = json_object_get(root, "pooling_mode");
  if (mode && !json_is_null(mode)) {
    size_t n = json_is_array(mode) ? json_array_size(mode) : 1;
    for (size_t i = 0; i < n; i++) {
      json_t *v = json_is_array(mode) ? json_array_get(mode, i) : mode;
      const char *s = json_is_string(v) ? json_string_value(v) : NULL;
      if (!s) {
        st = bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s: \"pooling_mode\" must be a mode name or a list of them", name);
        goto fail;
      }
      if (strcmp(s, "cls") == 0) {
        cls = 1;
      } else if (strcmp(s, "mean") == 0) {
        mean = 1;
      } else if (strcmp(s, "max") == 0) {
        max = 1;
      } else {
        st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                     "%s: pooling_mode \"%.40s\" is not supported (cls, mean and max pooling are)",
                     name, s);
        goto fail;
      }
    }
  }
  int c0 = 0, m0 = 0, x0 = 0;
  BC_TRY(get_bool(err, name, root, "pooling_mode_cls_token", 0, &c0));
  BC_TRY(get_bool(err, name, root, "pooling_mode_mean_tokens", 0, &m0));
  BC_TRY(get_bool(err, name, root, "pooling_mode_max_tokens", 0, &x0));
  cls |= c0, mean |= m0, max |= x0;
  static const char *unsupported[] = {"pooling_mode_mean_sqrt_len_tokens",
                                      "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"};
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
    int on = 0;
    BC_TRY(get_bool(err, name, root, unsupported[i], 0, &on));
    if (on) {
      st = bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                   "%s: %s is not supported (cls, mean and max pooling are)", name, unsupported[i]);
      goto fail;
    }
  }
  *flags = (cls ? BC_POOL_CLS : 0) | (mean ? BC_POOL_MEAN : 0) | (max ? BC_POOL_MAX : 0);
  if (*flags == 0) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: no pooling mode is set", name);
    goto fail;
  }
fail:
  json_decref(root);
  return st;
}

int bc_sbert_config_parse(bc_err *err, const char *name, const char *text, size_t len,
                          int *max_seq_length, int *do_lower_case) {
  *max_seq_length = 0;
  *do_lower_case = 0;
  json_t *root = NULL;
  int st = load_object(err, name, text, len, 0, &root);
  if (st) return st;
  BC_TRY(get_int(err, name, root, "max_seq_length", 0, 1, 1L << 20, max_seq_length));
  BC_TRY(get_bool(err, name, root, "do_lower_case", 0, do_lower_case));
fail:
  json_decref(root);
  return st;
}

int bc_tok_settings_parse(bc_err *err, const char *name, const char *text, size_t len,
                          bc_tok_settings *out) {
  memset(out, 0, sizeof *out);
  out->do_lower_case = -1;
  json_t *root = NULL;
  /* transformers writes model_max_length = 1e30 as a 31-digit integer */
  int st = load_object(err, name, text, len, JSON_DECODE_INT_AS_REAL, &root);
  if (st) return st;
  BC_TRY(get_bool(err, name, root, "do_lower_case", -1, &out->do_lower_case));
  BC_TRY(get_str(err, name, root, "tokenizer_class", "", out->tokenizer_class,
                 sizeof out->tokenizer_class));
  json_t *mml = json_object_get(root, "model_max_length");
  if (mml && !json_is_null(mml)) {
    if (!json_is_number(mml)) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"model_max_length\" must be a number", name);
      goto fail;
    }
    double v = json_number_value(mml);
    if (v >= 1.0 && v <= (double)(1L << 20) && floor(v) == v) out->model_max_length = (long)v;
  }
fail:
  json_decref(root);
  return st;
}

int bc_config_check_batch(bc_err *err, const bc_config *c, const int32_t *ids,
                          const int32_t *type_ids, int B, int T) {
  if (T > c->max_position)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "sequence length %d exceeds the model's %d positions", T, c->max_position);
  size_t N = (size_t)B * T;
  for (size_t i = 0; i < N; i++) {
    if (ids[i] < 0 || ids[i] >= c->vocab_size)
      return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                     "token id %d at position %zu is outside the vocabulary (size %d)",
                     (int)ids[i], i, c->vocab_size);
    if (type_ids && c->type_vocab_size > 0 &&
        (type_ids[i] < 0 || type_ids[i] >= c->type_vocab_size))
      return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                     "token type id %d at position %zu is outside [0, %d)", (int)type_ids[i], i,
                     c->type_vocab_size);
  }
  return BERTCL_OK;
}
