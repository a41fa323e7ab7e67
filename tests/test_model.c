/* Model loading: config.json, safetensors (single and sharded), weight names (bert. prefix,
 * legacy LayerNorm.gamma/beta, classifier), F16/BF16 conversion, sentence-transformers modules,
 * the real all-MiniLM-L6-v2 (skipped when absent), hostile files (each with its own error, also
 * through `bertcl info`), and `bertcl info` itself. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/writers.h"
#include "model/loader.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static char tiny_dir[1024];

static void write_bytes(const char *dir, const char *name, const void *data, size_t len) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  char *slash = strrchr(p, '/');
  *slash = '\0';
  assert_int_equal(bc_mkdirs(p), 0);
  *slash = '/';
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  if (len) assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text) {
  write_bytes(dir, name, text, strlen(text));
}

static char *read_tiny(const char *name, size_t *len) {
  char p[1200], *data = NULL;
  snprintf(p, sizeof p, "%s/%s", tiny_dir, name);
  assert_int_equal(bc_read_file(NULL, p, &data, len), BERTCL_OK);
  return data;
}

/* A fresh directory holding tiny-bert's config.json (unless config is given). */
static void new_case(char *dir, size_t n, const char *config) {
  assert_int_equal(bc_test_tmpdir(dir, n), 0);
  if (config) {
    write_text(dir, "config.json", config);
  } else {
    size_t len;
    char *c = read_tiny("config.json", &len);
    write_bytes(dir, "config.json", c, len);
    free(c);
  }
}

/* safetensors bytes: u64 header length (hlen_override when not ~0), header, data. */
static void write_st_raw(const char *dir, const char *name, const char *header, const void *data,
                         size_t dlen, uint64_t hlen_override) {
  size_t hl = strlen(header), total = 8 + hl + dlen;
  unsigned char *buf = malloc(total);
  assert_non_null(buf);
  uint64_t h = hlen_override != ~0ULL ? hlen_override : hl;
  for (int b = 0; b < 8; b++) buf[b] = (unsigned char)(h >> (8 * b));
  memcpy(buf + 8, header, hl);
  if (dlen) memcpy(buf + 8 + hl, data, dlen);
  write_bytes(dir, name, buf, total);
  free(buf);
}

typedef struct {
  const char *prefix; /* prepended to every BertModel name */
  int legacy_ln;      /* LayerNorm.weight/bias -> gamma/beta */
  const char *drop;   /* a tensor left out */
  const char *as_i64; /* a tensor stored as I64 (same byte size as shape x 8) */
  const char *dtype;  /* "F32" (default), "F16" or "BF16" for every tensor */
  int classifier;     /* add classifier.weight/bias with this many labels */
  int shards;         /* 0/1: model.safetensors; 2: two shards + index */
  int dup_in_shards;  /* put one tensor in both shards */
  int position_ids;   /* add embeddings.position_ids as I64 (unused, as in MiniLM) */
} variant;

static uint16_t bf16_trunc(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return (uint16_t)(u >> 16);
}

/* Writes tiny-bert's tensors to dir under the variant's names and dtypes. */
static void write_tiny_variant(const char *dir, const variant *v) {
  char p[1200];
  snprintf(p, sizeof p, "%s/model.safetensors", tiny_dir);
  bc_st_file *src = NULL;
  assert_int_equal(bc_st_open(NULL, p, &src), BERTCL_OK);
  int nshards = v->shards > 1 ? v->shards : 1;
  json_t *hdr[2] = {json_object(), json_object()};
  unsigned char *data[2] = {NULL, NULL};
  size_t dlen[2] = {0, 0};
  json_t *wmap = json_object();
  size_t n = bc_st_count(src);
  size_t extra = v->classifier ? 2 : 0;
  if (v->position_ids) {
    int64_t ids[64];
    for (int k = 0; k < 64; k++) ids[k] = k;
    data[0] = malloc(sizeof ids);
    memcpy(data[0], ids, sizeof ids);
    dlen[0] = sizeof ids;
    json_object_set_new(hdr[0], "embeddings.position_ids",
                        json_pack("{s:s, s:[i, i], s:[i, i]}", "dtype", "I64", "shape", 1, 64,
                                  "data_offsets", 0, (int)sizeof ids));
  }
  for (size_t i = 0; i < n + extra; i++) {
    char name[256];
    const float *vals = NULL;
    float *tmp = NULL;
    size_t numel;
    int64_t shape[2];
    int ndim;
    if (i < n) {
      const bc_st_tensor *t = bc_st_at(src, i);
      if (v->drop && strcmp(t->name, v->drop) == 0) continue;
      snprintf(name, sizeof name, "%s%s", v->prefix ? v->prefix : "", t->name);
      size_t nl = strlen(name);
      if (v->legacy_ln && nl > 16 && strcmp(name + nl - 16, "LayerNorm.weight") == 0)
        strcpy(name + nl - 6, "gamma");
      else if (v->legacy_ln && nl > 14 && strcmp(name + nl - 14, "LayerNorm.bias") == 0)
        strcpy(name + nl - 4, "beta");
      numel = t->numel;
      tmp = malloc(numel * sizeof *tmp);
      assert_int_equal(bc_st_read_f32(NULL, t, tmp, numel), BERTCL_OK);
      vals = tmp;
      ndim = t->ndim;
      shape[0] = t->shape[0];
      shape[1] = ndim > 1 ? t->shape[1] : 0;
    } else {
      int is_w = i == n;
      snprintf(name, sizeof name, "classifier.%s", is_w ? "weight" : "bias");
      ndim = is_w ? 2 : 1;
      shape[0] = v->classifier;
      shape[1] = is_w ? 32 : 0;
      numel = (size_t)v->classifier * (is_w ? 32 : 1);
      tmp = malloc(numel * sizeof *tmp);
      for (size_t k = 0; k < numel; k++) tmp[k] = 0.01f * (float)k - (is_w ? 0.1f : 0.5f);
      vals = tmp;
    }
    int s = (v->shards > 1 && i >= n / 2) ? 1 : 0;
    const char *dt = v->dtype ? v->dtype : "F32";
    int is_i64 = v->as_i64 && strcmp(name, v->as_i64) == 0;
    if (is_i64) dt = "I64";
    size_t es = strcmp(dt, "F32") == 0 ? 4 : strcmp(dt, "I64") == 0 ? 8 : 2;
    for (int copy = 0; copy < ((v->dup_in_shards && i == 0) ? 2 : 1); copy++) {
      int sh = copy ? 1 : s;
      unsigned char *nd = realloc(data[sh], dlen[sh] + numel * es + 1);
      assert_non_null(nd);
      data[sh] = nd;
      unsigned char *o = data[sh] + dlen[sh];
      for (size_t k = 0; k < numel; k++) {
        if (es == 4) {
          memcpy(o + 4 * k, &vals[k], 4);
        } else if (es == 8) {
          int64_t q = (int64_t)k;
          memcpy(o + 8 * k, &q, 8);
        } else {
          uint16_t h = strcmp(dt, "F16") == 0 ? bc_f32_to_f16(vals[k]) : bf16_trunc(vals[k]);
          memcpy(o + 2 * k, &h, 2);
        }
      }
      json_t *e =
          json_pack("{s:s, s:[I], s:[I, I]}", "dtype", dt, "shape", (json_int_t)shape[0],
                    "data_offsets", (json_int_t)dlen[sh], (json_int_t)(dlen[sh] + numel * es));
      if (ndim == 2) json_array_append_new(json_object_get(e, "shape"), json_integer(shape[1]));
      json_object_set_new(hdr[sh], name, e);
      dlen[sh] += numel * es;
      char shard[64];
      snprintf(shard, sizeof shard, "model-%05d-of-%05d.safetensors", sh + 1, nshards);
      json_object_set_new(wmap, name, json_string(shard));
    }
    free(tmp);
  }
  for (int sh = 0; sh < nshards; sh++) {
    char *h = json_dumps(hdr[sh], JSON_COMPACT);
    char fname[64];
    if (nshards == 1)
      snprintf(fname, sizeof fname, "model.safetensors");
    else
      snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", sh + 1, nshards);
    write_st_raw(dir, fname, h, data[sh], dlen[sh], ~0ULL);
    free(h);
    free(data[sh]);
    json_decref(hdr[sh]);
  }
  if (nshards == 1) json_decref(hdr[1]);
  if (nshards > 1) {
    json_t *idx =
        json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)0, "weight_map", wmap);
    char *s = json_dumps(idx, JSON_INDENT(2));
    write_text(dir, "model.safetensors.index.json", s);
    free(s);
    json_decref(idx);
  } else {
    json_decref(wmap);
  }
  bc_st_close(src);
}

/* Loads dir expecting failure with status and a message containing each of the needles. */
static void expect_fail(const char *dir, int status, const char *needle1, const char *needle2) {
  bertcl_model *m = (bertcl_model *)0x1;
  int st = bertcl_model_load(&m, dir);
  const char *msg = bertcl_last_error(NULL);
  if (st != status || !strstr(msg, needle1) || (needle2 && !strstr(msg, needle2)))
    fail_msg("load %s: status %s (want %s), message: %s\n  (want '%s'%s%s)", dir,
             bertcl_status_name(st), bertcl_status_name(status), msg, needle1,
             needle2 ? " and " : "", needle2 ? needle2 : "");
  assert_null(m);
}

/* `bertcl info -m dir` must exit 1 with one line "bertcl: info: ..." containing needle. */
static void expect_cli_fail(const char *dir, const char *needle) {
  char cmd[2400], *out = NULL;
  snprintf(cmd, sizeof cmd, "'%s' info -m '%s' 2>&1", BERTCL_BIN, dir);
  int rc = bc_test_run(cmd, &out);
  assert_non_null(out);
  size_t len = strlen(out);
  int lines = 0;
  for (size_t i = 0; i < len; i++) lines += out[i] == '\n';
  if (rc != 1 || lines != 1 || strncmp(out, "bertcl: info: ", 14) != 0 || !strstr(out, needle))
    fail_msg("bertcl info -m %s: exit %d, %d lines: %s (want exit 1, one line with '%s')", dir, rc,
             lines, out, needle);
  free(out);
}

static void rm_rf(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

/* ---- valid models -------------------------------------------------------------------------- */

/* |a - b| <= tol * |a| + atol for a sample of every kind of weight. */
static void check_same_weights(const bertcl_model *a, const bertcl_model *b, float tol,
                               float atol) {
  const bc_config *c = bc_model_config(a);
  const bc_weights *wa = bc_model_weights(a), *wb = bc_model_weights(b);
  size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
  struct {
    const float *x, *y;
    size_t n;
  } pairs[] = {{wa->word_emb, wb->word_emb, (size_t)c->vocab_size * C},
               {wa->pos_emb, wb->pos_emb, (size_t)c->max_position * C},
               {wa->type_emb, wb->type_emb, (size_t)c->type_vocab_size * C},
               {wa->emb_ln_w, wb->emb_ln_w, C},
               {wa->emb_ln_b, wb->emb_ln_b, C},
               {wa->layers[1].q_w, wb->layers[1].q_w, C * C},
               {wa->layers[1].ln1_w, wb->layers[1].ln1_w, C},
               {wa->layers[1].ln2_b, wb->layers[1].ln2_b, C},
               {wa->layers[0].inter_w, wb->layers[0].inter_w, I * C},
               {wa->layers[0].out_w, wb->layers[0].out_w, C * I},
               {wa->pool_w, wb->pool_w, C * C}};
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
    assert_non_null(pairs[k].x);
    assert_non_null(pairs[k].y);
    for (size_t i = 0; i < pairs[k].n; i++)
      if (!(fabsf(pairs[k].x[i] - pairs[k].y[i]) <= tol * fabsf(pairs[k].x[i]) + atol))
        fail_msg("weights pair %zu index %zu: %.9g vs %.9g", k, i, pairs[k].x[i], pairs[k].y[i]);
  }
}

static void test_load_tiny(void **state) {
  (void)state;
  bertcl_model *m = NULL;
  assert_int_equal(bertcl_model_load(&m, tiny_dir), BERTCL_OK);
  const bc_config *c = bc_model_config(m);
  assert_int_equal(c->vocab_size, 1395);
  assert_int_equal(c->hidden_size, 32);
  assert_int_equal(c->num_layers, 2);
  assert_int_equal(c->num_heads, 4);
  assert_int_equal(c->intermediate_size, 64);
  assert_int_equal(c->max_position, 64);
  assert_int_equal(c->type_vocab_size, 2);
  assert_int_equal(c->pad_token_id, 0);
  assert_int_equal(c->act, BC_ACT_GELU);
  assert_true(c->layer_norm_eps == 1e-12f);
  assert_int_equal(c->num_labels, 0);
  assert_int_equal(c->st_pooling, 0);
  assert_int_equal(c->st_normalize, 0);
  assert_string_equal(bc_model_dir(m), tiny_dir);
  const bc_weights *w = bc_model_weights(m);
  assert_non_null(w->pool_w);
  assert_null(w->cls_w);
  /* every weight equals the file's bytes */
  char p[1200];
  snprintf(p, sizeof p, "%s/model.safetensors", tiny_dir);
  bc_st_file *f = NULL;
  assert_int_equal(bc_st_open(NULL, p, &f), BERTCL_OK);
  const struct {
    const char *name;
    const float *x;
  } chk[] = {{"embeddings.word_embeddings.weight", w->word_emb},
             {"embeddings.LayerNorm.bias", w->emb_ln_b},
             {"encoder.layer.0.attention.self.key.weight", w->layers[0].k_w},
             {"encoder.layer.1.attention.self.value.bias", w->layers[1].v_b},
             {"encoder.layer.1.attention.output.dense.weight", w->layers[1].ao_w},
             {"encoder.layer.1.intermediate.dense.bias", w->layers[1].inter_b},
             {"encoder.layer.1.output.dense.bias", w->layers[1].out_b},
             {"encoder.layer.0.output.LayerNorm.weight", w->layers[0].ln2_w},
             {"pooler.dense.bias", w->pool_b}};
  for (size_t k = 0; k < sizeof chk / sizeof chk[0]; k++) {
    const bc_st_tensor *t = bc_st_find(f, chk[k].name);
    assert_non_null(t);
    assert_memory_equal(t->data, chk[k].x, t->nbytes);
  }
  bc_st_close(f);
  bertcl_model_info in;
  assert_int_equal(bertcl_model_get_info(m, &in), BERTCL_OK);
  assert_string_equal(in.model_type, "bert");
  assert_string_equal(in.hidden_act, "gelu");
  assert_string_equal(in.dtypes, "F32");
  assert_int_equal(in.num_params, 64960);
  assert_int_equal(in.num_files, 1);
  assert_int_equal(in.num_unused, 0);
  assert_int_equal(in.has_pooler, 1);
  assert_int_equal(in.max_length, 64);
  assert_int_equal(in.do_lower_case, 1);
  assert_int_equal(in.has_vocab_txt, 1);
  assert_int_equal(in.has_tokenizer_json, 1);
  assert_string_equal(in.pooling, "");
  assert_null(bertcl_model_label(m, 0));
  assert_string_equal(bertcl_last_error(m), "");
  bertcl_model_free(m);
  bertcl_model_free(NULL);
  assert_int_equal(bertcl_model_load(NULL, tiny_dir), BERTCL_ERR_INVALID_ARG);
  assert_int_equal(bertcl_model_get_info(NULL, &in), BERTCL_ERR_INVALID_ARG);
}

static void test_load_minilm(void **state) {
  (void)state;
  char dir[1200];
  const char *env = getenv("BERTCL_MINILM_DIR");
  if (env && *env)
    snprintf(dir, sizeof dir, "%s", env);
  else
    snprintf(dir, sizeof dir, "%s/../../models/all-MiniLM-L6-v2", BERTCL_TEST_DATA);
  char cfg[1300];
  snprintf(cfg, sizeof cfg, "%s/model.safetensors", dir);
  if (access(cfg, R_OK) != 0) {
    printf("all-MiniLM-L6-v2 not found at %s (run scripts/fetch-model.sh): skipped\n", dir);
    skip();
  }
  bertcl_model *m = NULL;
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  const bc_config *c = bc_model_config(m);
  assert_int_equal(c->vocab_size, 30522);
  assert_int_equal(c->hidden_size, 384);
  assert_int_equal(c->num_layers, 6);
  assert_int_equal(c->num_heads, 12);
  assert_int_equal(c->intermediate_size, 1536);
  assert_int_equal(c->max_position, 512);
  assert_int_equal(c->st_pooling, BC_POOL_MEAN);
  assert_int_equal(c->st_normalize, 1);
  assert_int_equal(c->st_max_seq_length, 256);
  bertcl_model_info in;
  assert_int_equal(bertcl_model_get_info(m, &in), BERTCL_OK);
  assert_int_equal(in.num_params, 22713216);
  assert_int_equal(in.num_unused, 1); /* embeddings.position_ids, I64 */
  assert_string_equal(in.dtypes, "F32");
  assert_string_equal(in.pooling, "mean");
  assert_int_equal(in.max_length, 256);
  /* a value checked against safetensors.safe_open in Python */
  assert_true(bc_model_weights(m)->emb_ln_w[0] == 0.59892833f);
  bertcl_model_free(m);
}

static void test_prefix_legacy_classifier(void **state) {
  (void)state;
  bertcl_model *ref = NULL, *m = NULL;
  assert_int_equal(bertcl_model_load(&ref, tiny_dir), BERTCL_OK);
  char dir[1024];
  size_t len;
  char *cfgtext = read_tiny("config.json", &len);
  json_t *cfg = json_loadb(cfgtext, len, 0, NULL);
  free(cfgtext);
  json_object_set_new(cfg, "id2label",
                      json_pack("{s:s, s:s, s:s}", "0", "neg", "1", "neu", "2", "pos"));
  json_object_set_new(cfg, "label2id", json_pack("{s:i, s:i, s:i}", "neg", 0, "neu", 1, "pos", 2));
  json_object_set_new(cfg, "problem_type", json_string("single_label_classification"));
  char *cfgs = json_dumps(cfg, 0);
  new_case(dir, sizeof dir, cfgs);
  variant v = {.prefix = "bert.", .legacy_ln = 1, .classifier = 3};
  write_tiny_variant(dir, &v);
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  check_same_weights(ref, m, 0.0f, 0.0f);
  const bc_config *c = bc_model_config(m);
  assert_int_equal(c->num_labels, 3);
  assert_string_equal(c->problem_type, "single_label_classification");
  const bc_weights *w = bc_model_weights(m);
  assert_non_null(w->cls_w);
  assert_true(w->cls_w[1] == 0.01f - 0.1f);
  assert_true(w->cls_b[2] == 0.02f - 0.5f);
  assert_string_equal(bertcl_model_label(m, 2), "pos");
  assert_null(bertcl_model_label(m, 3));
  bertcl_model_free(m);
  m = NULL;
  rm_rf(dir);

  /* classifier rows must match id2label */
  new_case(dir, sizeof dir, cfgs);
  variant v4 = {.classifier = 4};
  write_tiny_variant(dir, &v4);
  expect_fail(dir, BERTCL_ERR_SHAPE, "classifier.weight' has shape [4, 32]", "implies [3, 32]");
  rm_rf(dir);
  /* no id2label: transformers' default of 2 labels */
  new_case(dir, sizeof dir, NULL);
  variant v2 = {.classifier = 2};
  write_tiny_variant(dir, &v2);
  assert_int_equal(bertcl_model_load(&m, dir), BERTCL_OK);
  assert_int_equal(bc_model_config(m)->num_labels, 2);
  bertcl_model_free(m);
  rm_rf(dir);
  free(cfgs);
  json_decref(cfg);
  bertcl_model_free(ref);
}

static void test_half_dtypes(void **state) {
  (void)state;
  bertcl_model *ref = NULL, *m = NULL;
  assert_int_equal(bertcl_model_load(&ref, tiny_dir), BERTCL_OK);
  const bc_config *c = bc_model_config(ref);
  size_t n = (size_t)c->vocab_size * (size_t)c->hidden_size;
  const char *dts[] = {"F16", "BF16"};
  for (int k = 0; k < 2; k++) {
    char dir[1024];
    new_case(dir, sizeof dir, NULL);
    variant v = {.dtype = dts[k]};
    write_tiny_variant(dir, &v);
    if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
    /* half: 11 significant bits, subnormals in steps of 2^-24; bf16 truncated to 8 bits */
    check_same_weights(ref, m, k == 0 ? 1.0f / 2048 : 1.0f / 128, k == 0 ? 3.0e-8f : 0.0f);
    const float *a = bc_model_weights(ref)->word_emb, *b = bc_model_weights(m)->word_emb;
    for (size_t i = 0; i < n; i++) {
      if (k == 0) { /* exact: the nearest half, widened */
        assert_int_equal(bc_f32_to_f16(b[i]), bc_f32_to_f16(a[i]));
      } else { /* exact: the truncated bfloat16 */
        uint32_t ua, ub;
        memcpy(&ua, &a[i], 4);
        memcpy(&ub, &b[i], 4);
        assert_int_equal(ub, ua & 0xFFFF0000u);
      }
    }
    bertcl_model_info in;
    bertcl_model_get_info(m, &in);
    assert_string_equal(in.dtypes, dts[k]);
    bertcl_model_free(m);
    m = NULL;
    rm_rf(dir);
  }
  bertcl_model_free(ref);
}

static void test_sharded(void **state) {
  (void)state;
  bertcl_model *ref = NULL, *m = NULL;
  assert_int_equal(bertcl_model_load(&ref, tiny_dir), BERTCL_OK);
  char dir[1024];
  new_case(dir, sizeof dir, NULL);
  variant v = {.shards = 2, .prefix = "bert."};
  write_tiny_variant(dir, &v);
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  check_same_weights(ref, m, 0.0f, 0.0f);
  bertcl_model_info in;
  bertcl_model_get_info(m, &in);
  assert_int_equal(in.num_files, 2);
  bertcl_model_free(m);
  /* a missing shard */
  char p[1200];
  snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
  assert_int_equal(unlink(p), 0);
  expect_fail(dir, BERTCL_ERR_MISSING, "model-00002-of-00002.safetensors", "does not exist");
  rm_rf(dir);
  /* a tensor in both shards */
  new_case(dir, sizeof dir, NULL);
  variant vd = {.shards = 2, .dup_in_shards = 1};
  write_tiny_variant(dir, &vd);
  expect_fail(dir, BERTCL_ERR_FORMAT, "is in two shards", NULL);
  rm_rf(dir);
  /* the index names a file outside the directory */
  new_case(dir, sizeof dir, NULL);
  write_text(dir, "model.safetensors.index.json",
             "{\"weight_map\": {\"embeddings.word_embeddings.weight\": \"../x.safetensors\"}}");
  expect_fail(dir, BERTCL_ERR_FORMAT, "is not a file name in the directory", NULL);
  expect_cli_fail(dir, "is not a file name in the directory");
  /* the index says a tensor is in a shard that lacks it */
  variant v1 = {0};
  write_tiny_variant(dir, &v1);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  char q[1200];
  snprintf(q, sizeof q, "%s/model-00001-of-00001.safetensors", dir);
  assert_int_equal(rename(p, q), 0);
  write_text(dir, "model.safetensors.index.json",
             "{\"weight_map\": {\"pooler.dense.bias\": \"model-00001-of-00001.safetensors\", "
             "\"cls.predictions.bias\": \"model-00001-of-00001.safetensors\"}}");
  expect_fail(dir, BERTCL_ERR_MISSING, "'cls.predictions.bias' is in model-00001", "lacks it");
  rm_rf(dir);
  bertcl_model_free(ref);
}

static void test_sentence_transformers(void **state) {
  (void)state;
  char dir[1024];
  new_case(dir, sizeof dir, NULL);
  variant v = {0};
  write_tiny_variant(dir, &v);
  write_text(dir, "modules.json",
             "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": "
             "\"sentence_transformers.models.Transformer\"}, {\"idx\": 1, \"name\": \"1\", "
             "\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}, "
             "{\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": "
             "\"sentence_transformers.models.Normalize\"}]");
  write_text(dir, "1_Pooling/config.json",
             "{\"word_embedding_dimension\": 32, \"pooling_mode_cls_token\": true, "
             "\"pooling_mode_mean_tokens\": true, \"pooling_mode_max_tokens\": false, "
             "\"pooling_mode_mean_sqrt_len_tokens\": false}");
  write_text(dir, "sentence_bert_config.json",
             "{\"max_seq_length\": 128, \"do_lower_case\": true}");
  bertcl_model *m = NULL;
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  const bc_config *c = bc_model_config(m);
  assert_int_equal(c->st_pooling, BC_POOL_CLS | BC_POOL_MEAN);
  assert_int_equal(c->st_normalize, 1);
  assert_int_equal(c->st_max_seq_length, 64); /* clamped to max_position_embeddings */
  assert_int_equal(c->st_do_lower_case, 1);
  bertcl_model_info in;
  bertcl_model_get_info(m, &in);
  assert_string_equal(in.pooling, "cls+mean");
  assert_int_equal(in.max_length, 64);
  bertcl_model_free(m);

  /* unsupported pooling, wrong dimension, unsupported module, missing pooling config */
  write_text(dir, "1_Pooling/config.json",
             "{\"word_embedding_dimension\": 32, \"pooling_mode_mean_sqrt_len_tokens\": true}");
  expect_fail(dir, BERTCL_ERR_UNSUPPORTED, "pooling_mode_mean_sqrt_len_tokens is not supported",
              "1_Pooling/config.json");
  write_text(dir, "1_Pooling/config.json",
             "{\"word_embedding_dimension\": 384, \"pooling_mode_mean_tokens\": true}");
  expect_fail(dir, BERTCL_ERR_SHAPE, "word_embedding_dimension 384 differs", "hidden_size 32");
  write_text(dir, "1_Pooling/config.json", "{\"word_embedding_dimension\": 32}");
  expect_fail(dir, BERTCL_ERR_FORMAT, "no pooling mode is set", NULL);
  write_text(dir, "modules.json",
             "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"}, "
             "{\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}, "
             "{\"path\": \"2_Dense\", \"type\": \"sentence_transformers.models.Dense\"}]");
  expect_fail(dir, BERTCL_ERR_UNSUPPORTED, "modules.json", "sentence_transformers.models.Dense");
  write_text(dir, "modules.json",
             "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"}, "
             "{\"path\": \"3_Pool\", \"type\": \"sentence_transformers.models.Pooling\"}]");
  expect_fail(dir, BERTCL_ERR_MISSING, "3_Pool/config.json", "not found");
  write_text(dir, "modules.json", "[{\"path\": \"../..\", \"type\": \"x.Transformer\"}]");
  expect_fail(dir, BERTCL_ERR_FORMAT, "is not a subdirectory", NULL);
  rm_rf(dir);

  /* older layout: the Transformer module in its own subdirectory */
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  char sub[1100];
  snprintf(sub, sizeof sub, "%s/0_Transformer", dir);
  assert_int_equal(bc_mkdirs(sub), 0);
  size_t len;
  char *cfg = read_tiny("config.json", &len);
  write_bytes(sub, "config.json", cfg, len);
  free(cfg);
  write_tiny_variant(sub, &v);
  write_text(sub, "sentence_bert_config.json", "{\"max_seq_length\": 40}");
  write_text(dir, "modules.json",
             "[{\"path\": \"0_Transformer\", \"type\": "
             "\"sentence_transformers.models.Transformer\"}, {\"path\": \"1_Pooling\", "
             "\"type\": \"sentence_transformers.models.Pooling\"}]");
  write_text(dir, "1_Pooling/config.json",
             "{\"word_embedding_dimension\": 32, \"pooling_mode_max_tokens\": true}");
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  assert_int_equal(bc_model_config(m)->st_pooling, BC_POOL_MAX);
  assert_int_equal(bc_model_config(m)->st_normalize, 0);
  assert_string_equal(bc_model_dir(m), sub);
  assert_int_equal(bc_model_config(m)->st_max_seq_length, 40);
  bertcl_model_free(m);
  rm_rf(dir);
}

/* config.json variants: each accepted or rejected with its own error. */
static void test_config_validation(void **state) {
  (void)state;
  size_t len;
  char *base = read_tiny("config.json", &len);
  char dir[1024];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  variant v = {0};
  write_tiny_variant(dir, &v);
  static const struct {
    const char *key, *json; /* key set to the JSON value (NULL json: key removed) */
    int status;
    const char *needle;
    int act;
  } cases[] = {
      {"hidden_act", "\"gelu_new\"", BERTCL_OK, NULL, BC_ACT_GELU_TANH},
      {"hidden_act", "\"gelu_pytorch_tanh\"", BERTCL_OK, NULL, BC_ACT_GELU_TANH},
      {"hidden_act", "\"relu\"", BERTCL_OK, NULL, BC_ACT_RELU},
      {"hidden_act", NULL, BERTCL_OK, NULL, BC_ACT_GELU},
      {"hidden_act", "\"silu\"", BERTCL_ERR_UNSUPPORTED, "hidden_act \"silu\" is not supported", 0},
      {"position_embedding_type", "\"relative_key\"", BERTCL_ERR_UNSUPPORTED,
       "position_embedding_type \"relative_key\" is not supported", 0},
      {"model_type", "\"deberta-v2\"", BERTCL_ERR_UNSUPPORTED,
       "model_type \"deberta-v2\" is not supported; bertcl runs model_type bert, roberta, "
       "xlm-roberta, camembert, distilbert, mpnet", 0},
      {"num_attention_heads", "5", BERTCL_ERR_FORMAT, "not a multiple of num_attention_heads 5", 0},
      {"hidden_size", "\"32\"", BERTCL_ERR_FORMAT, "\"hidden_size\" must be an integer", 0},
      {"num_hidden_layers", "0", BERTCL_ERR_UNSUPPORTED, "\"num_hidden_layers\" is 0", 0},
      {"layer_norm_eps", "-1", BERTCL_ERR_FORMAT, "\"layer_norm_eps\" -1 is not in (0, 1)", 0},
      {"problem_type", "\"ranking\"", BERTCL_ERR_UNSUPPORTED, "problem_type \"ranking\"", 0},
      {"is_decoder", "true", BERTCL_ERR_UNSUPPORTED, "\"is_decoder\" is true", 0},
      {"pad_token_id", "5000", BERTCL_ERR_UNSUPPORTED, "\"pad_token_id\" is 5000", 0},
      {"id2label", "{\"0\": \"a\", \"2\": \"b\"}", BERTCL_ERR_FORMAT,
       "\"id2label\" key '2' is not a label id in [0, 2)", 0},
      {"label2id", "{\"x\": 0}", BERTCL_ERR_FORMAT, "\"label2id\" has 1 entries", 0},
      {"vocab_size", "1000", BERTCL_ERR_SHAPE,
       "'embeddings.word_embeddings.weight' has shape [1395, 32] but", 0},
      {"intermediate_size", "65", BERTCL_ERR_SHAPE,
       "'encoder.layer.0.intermediate.dense.weight' has shape [64, 32]", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *cfg = json_loadb(base, len, 0, NULL);
    if (cases[i].json)
      json_object_set_new(cfg, cases[i].key, json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
    else
      json_object_del(cfg, cases[i].key);
    if (strcmp(cases[i].key, "label2id") == 0)
      json_object_set_new(cfg, "id2label", json_pack("{s:s, s:s}", "0", "x", "1", "y"));
    char *s = json_dumps(cfg, 0);
    write_text(dir, "config.json", s);
    free(s);
    json_decref(cfg);
    bertcl_model *m = NULL;
    int st = bertcl_model_load(&m, dir);
    if (st != cases[i].status ||
        (cases[i].needle && !strstr(bertcl_last_error(NULL), cases[i].needle)))
      fail_msg("case %zu (%s = %s): %s: %s (want %s: %s)", i, cases[i].key,
               cases[i].json ? cases[i].json : "<removed>", bertcl_status_name(st),
               bertcl_last_error(NULL), bertcl_status_name(cases[i].status),
               cases[i].needle ? cases[i].needle : "");
    if (st == BERTCL_OK) assert_int_equal(bc_model_config(m)->act, cases[i].act);
    if (st != BERTCL_OK) assert_non_null(strstr(bertcl_last_error(NULL), "config.json"));
    bertcl_model_free(m);
  }
  /* not JSON, duplicate keys, not an object */
  write_text(dir, "config.json", "{\"hidden_size\": 32,");
  expect_fail(dir, BERTCL_ERR_FORMAT, "config.json: not valid JSON", NULL);
  write_text(dir, "config.json", "{\"hidden_size\": 32, \"hidden_size\": 32}");
  expect_fail(dir, BERTCL_ERR_FORMAT, "config.json: duplicate key", "hidden_size");
  expect_cli_fail(dir, "duplicate key");
  write_text(dir, "config.json", "[1, 2]");
  expect_fail(dir, BERTCL_ERR_FORMAT, "config.json: not a JSON object", NULL);
  write_text(dir, "tokenizer_config.json", "{");
  write_bytes(dir, "config.json", base, len);
  expect_fail(dir, BERTCL_ERR_FORMAT, "tokenizer_config.json: not valid JSON", NULL);
  rm_rf(dir);
  free(base);
}

/* ---- hostile files ------------------------------------------------------------------------- */

typedef struct {
  const char *what;
  const char *header; /* NULL: raw bytes below */
  size_t dlen;        /* data bytes after the header (zeros) */
  uint64_t hlen;      /* ~0: the header's length */
  const char *raw;    /* raw file bytes when header is NULL */
  size_t rawlen;
  int status;
  const char *needle;
} hostile;

#define T1(name, dt, shape, b, e)                                                              \
  "\"" name "\": {\"dtype\": \"" dt "\", \"shape\": " shape ", \"data_offsets\": [" #b ", " #e \
  "]"                                                                                          \
  "}"

static const hostile hostiles[] = {
    {"empty file", NULL, 0, ~0ULL, "", 0, BERTCL_ERR_FORMAT, "file is empty"},
    {"< 8 bytes", NULL, 0, ~0ULL, "\x10\x00\x00", 3, BERTCL_ERR_FORMAT,
     "file is 3 bytes, too short for the 8-byte header length"},
    {"header length beyond the file", "{}", 0, 1000, NULL, 0, BERTCL_ERR_FORMAT,
     "header length 1000 runs past the end of the file (10 bytes)"},
    {"header length > 100 MB", "{}", 0, 200000000ULL, NULL, 0, BERTCL_ERR_FORMAT,
     "header length 200000000 exceeds the limit of 100000000 bytes"},
    {"non-UTF-8 header", "{\"a\xff\": {}}", 0, ~0ULL, NULL, 0, BERTCL_ERR_UTF8,
     "header is not valid UTF-8 (byte 3 of the header)"},
    {"overlong UTF-8 header", "{\"\xc0\xaf\": {}}", 0, ~0ULL, NULL, 0, BERTCL_ERR_UTF8,
     "header is not valid UTF-8 (byte 2 of the header)"},
    {"non-JSON header", "{\"a\": [1, }", 0, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT,
     "header is not valid JSON"},
    {"header not an object", "[1, 2]", 0, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT, "must start with '{'"},
    {"unknown dtype", "{" T1("w", "Q7", "[2]", 0, 8) "}", 8, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT,
     "tensor 'w' has unknown dtype 'Q7'"},
    {"shape/size mismatch", "{" T1("w", "F32", "[3]", 0, 8) "}", 8, ~0ULL, NULL, 0,
     BERTCL_ERR_FORMAT,
     "tensor 'w' shape [3] x F32 is 12 bytes but its data_offsets [0, 8] cover 8"},
    {"overlapping offsets", "{" T1("a", "F32", "[2]", 0, 8) ", " T1("b", "F32", "[2]", 4, 12) "}",
     12, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT,
     "tensor 'b' data_offsets [4, 12] overlap the previous tensor 'a'"},
    {"gap between tensors", "{" T1("a", "F32", "[2]", 0, 8) ", " T1("b", "F32", "[2]", 12, 20) "}",
     20, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT, "gap of 4 unused bytes before tensor 'b'"},
    {"offsets past the end", "{" T1("a", "F32", "[250]", 0, 1000) "}", 16, ~0ULL, NULL, 0,
     BERTCL_ERR_FORMAT,
     "tensor 'a' data_offsets [0, 1000] run past the end of the data section (16 bytes)"},
    {"trailing bytes", "{" T1("a", "F32", "[2]", 0, 8) "}", 12, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT,
     "4 trailing bytes after the last tensor"},
    {"duplicate key", "{" T1("a", "F32", "[1]", 0, 4) ", " T1("a", "F32", "[1]", 4, 8) "}", 8,
     ~0ULL, NULL, 0, BERTCL_ERR_FORMAT, "header has a duplicate key"},
    {"shape product overflow", "{" T1("a", "F32", "[4294967296, 4294967296, 16]", 0, 8) "}", 8,
     ~0ULL, NULL, 0, BERTCL_ERR_OVERFLOW, "tensor 'a': the product of its shape overflows"},
    {"byte size overflow", "{" T1("a", "F64", "[4294967296, 536870912]", 0, 8) "}", 8, ~0ULL, NULL,
     0, BERTCL_ERR_OVERFLOW, "elements of F64 overflow the byte size"},
    {"offsets reversed", "{" T1("a", "F32", "[0]", 8, 0) "}", 8, ~0ULL, NULL, 0, BERTCL_ERR_FORMAT,
     "data_offsets [8, 0] end before they begin"},
    {"negative dimension", "{" T1("a", "F32", "[-2]", 0, 8) "}", 8, ~0ULL, NULL, 0,
     BERTCL_ERR_FORMAT, "tensor 'a' shape entry 0 is not a non-negative integer"},
    {"metadata not strings", "{\"__metadata__\": {\"format\": 1}}", 0, ~0ULL, NULL, 0,
     BERTCL_ERR_FORMAT, "\"__metadata__\" value of 'format' is not a string"},
    {"no data_offsets", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, ~0ULL, NULL, 0,
     BERTCL_ERR_FORMAT, "tensor 'a' has no \"data_offsets\" pair of integers"},
    {"too many dimensions", "{" T1("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, ~0ULL, NULL, 0,
     BERTCL_ERR_UNSUPPORTED, "tensor 'a' has 9 dimensions (at most 8)"},
    {"valid header, no weights", "{" T1("a", "F32", "[1]", 0, 4) "}", 4, ~0ULL, NULL, 0,
     BERTCL_ERR_MISSING,
     "missing tensor 'embeddings.word_embeddings.weight' (expected shape [1395, 32])"},
};

static void test_hostile_safetensors(void **state) {
  (void)state;
  size_t nh = sizeof hostiles / sizeof hostiles[0];
  assert_true(nh >= 15);
  for (size_t i = 0; i < nh; i++) {
    const hostile *h = &hostiles[i];
    char dir[1024];
    new_case(dir, sizeof dir, NULL);
    if (h->header) {
      unsigned char *zeros = calloc(1, h->dlen + 1);
      write_st_raw(dir, "model.safetensors", h->header, zeros, h->dlen, h->hlen);
      free(zeros);
    } else {
      write_bytes(dir, "model.safetensors", h->raw, h->rawlen);
    }
    bertcl_model *m = (bertcl_model *)0x1;
    int st = bertcl_model_load(&m, dir);
    const char *msg = bertcl_last_error(NULL);
    if (st != h->status || !strstr(msg, h->needle) || !strstr(msg, "model.safetensors"))
      fail_msg("hostile '%s': %s: %s\n  want %s: %s", h->what, bertcl_status_name(st), msg,
               bertcl_status_name(h->status), h->needle);
    assert_null(m);
    /* the same through the reader on bytes in memory */
    char p[1200], *bytes = NULL;
    size_t blen = 0;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    assert_int_equal(bc_read_file(NULL, p, &bytes, &blen), BERTCL_OK);
    bc_st_file *f = NULL;
    bc_err e = {0};
    st = bc_st_open_mem(&e, "mem", bytes, blen, &f);
    if (h->status != BERTCL_ERR_MISSING) {
      assert_int_equal(st, h->status);
      assert_non_null(strstr(e.msg, h->needle));
      assert_null(f);
    } else {
      assert_int_equal(st, BERTCL_OK);
      bc_st_close(f);
    }
    free(bytes);
    expect_cli_fail(dir, h->needle);
    rm_rf(dir);
  }
}

static void test_hostile_model(void **state) {
  (void)state;
  char dir[1024];
  /* missing tensor, named with its expected shape */
  new_case(dir, sizeof dir, NULL);
  variant v = {.drop = "encoder.layer.1.output.dense.weight"};
  write_tiny_variant(dir, &v);
  expect_fail(dir, BERTCL_ERR_MISSING,
              "missing tensor 'encoder.layer.1.output.dense.weight' (expected shape [32, 64])",
              NULL);
  expect_cli_fail(dir, "missing tensor 'encoder.layer.1.output.dense.weight'");
  rm_rf(dir);
  /* the same with the bert. prefix: the error names the prefixed name */
  new_case(dir, sizeof dir, NULL);
  variant vp = {.prefix = "bert.", .drop = "embeddings.LayerNorm.bias"};
  write_tiny_variant(dir, &vp);
  expect_fail(dir, BERTCL_ERR_MISSING, "missing tensor 'bert.embeddings.LayerNorm.bias'", "[32]");
  rm_rf(dir);
  /* half a pooler */
  new_case(dir, sizeof dir, NULL);
  variant vq = {.drop = "pooler.dense.weight"};
  write_tiny_variant(dir, &vq);
  expect_fail(dir, BERTCL_ERR_MISSING,
              "missing tensor 'pooler.dense.weight' (expected shape [32, 32])", NULL);
  rm_rf(dir);
  /* a needed tensor with a dtype that is not a float */
  new_case(dir, sizeof dir, NULL);
  variant vi = {.as_i64 = "embeddings.LayerNorm.weight"};
  write_tiny_variant(dir, &vi);
  expect_fail(dir, BERTCL_ERR_UNSUPPORTED, "'embeddings.LayerNorm.weight' has dtype I64", NULL);
  expect_cli_fail(dir, "has dtype I64");
  rm_rf(dir);
  /* config/tensor shape mismatch */
  size_t len;
  char *base = read_tiny("config.json", &len);
  json_t *cfg = json_loadb(base, len, 0, NULL);
  json_object_set_new(cfg, "max_position_embeddings", json_integer(128));
  char *s = json_dumps(cfg, 0);
  new_case(dir, sizeof dir, s);
  variant v0 = {0};
  write_tiny_variant(dir, &v0);
  expect_fail(dir, BERTCL_ERR_SHAPE, "'embeddings.position_embeddings.weight' has shape [64, 32]",
              "config.json implies [128, 32]");
  expect_cli_fail(dir, "has shape [64, 32]");
  rm_rf(dir);
  free(s);
  json_decref(cfg);
  free(base);
  /* only pytorch_model.bin */
  new_case(dir, sizeof dir, NULL);
  write_text(dir, "pytorch_model.bin", "PK\x03\x04 not really");
  expect_fail(dir, BERTCL_ERR_UNSUPPORTED, "has only pytorch_model.bin",
              "scripts/convert_pytorch_bin.py");
  expect_cli_fail(dir, "scripts/convert_pytorch_bin.py");
  unlink(strcat(dir, "/pytorch_model.bin"));
  *strrchr(dir, '/') = '\0';
  /* no weights at all; no config; not a directory */
  expect_fail(dir, BERTCL_ERR_MISSING, "no model.safetensors or model.safetensors.index.json",
              NULL);
  char cfgp[1200];
  snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
  unlink(cfgp);
  expect_fail(dir, BERTCL_ERR_MISSING, "config.json: not found", NULL);
  expect_fail("/nonexistent/bertcl-model", BERTCL_ERR_MISSING, "/nonexistent/bertcl-model", NULL);
  expect_cli_fail("/nonexistent/bertcl-model", "/nonexistent/bertcl-model");
  expect_fail(BERTCL_BIN, BERTCL_ERR_INVALID_ARG, "is not a directory", NULL);
  rm_rf(dir);
}

/* ---- hostile tokenizer files (model/tokcheck.h) ---------------------------------------------- */

/* tiny-bert's vocab.txt with `extra` lines appended, line `bad_line` (1-based, 0 = none)
 * replaced by `bad`, lines equal to `drop` removed, cut to `keep` lines (0 = all). */
static char *vocab_variant(size_t *len, const char *extra, size_t bad_line, const char *bad,
                           const char *drop, size_t keep) {
  size_t n;
  char *v = read_tiny("vocab.txt", &n);
  char *out = malloc(n + strlen(extra) + 64);
  size_t o = 0, line = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && v[j] != '\n') j++;
    line++;
    if (keep && line > keep) break;
    if (line == bad_line) {
      o += (size_t)sprintf(out + o, "%s\n", bad);
    } else if (!drop || j - i != strlen(drop) || memcmp(v + i, drop, j - i) != 0) {
      memcpy(out + o, v + i, j - i);
      o += j - i;
      out[o++] = '\n';
    }
    i = j + 1;
  }
  memcpy(out + o, extra, strlen(extra));
  o += strlen(extra);
  free(v);
  *len = o;
  return out;
}

/* tiny-bert's tokenizer.json with one change: an added token (id), the pad_id of padding, the
 * [CLS] template id, or the type id of the pair's second sequence. */
typedef enum { TJ_ADDED, TJ_PAD, TJ_TEMPLATE, TJ_PAIR_TYPE } tj_change;

static void write_tokenizer_json(const char *dir, tj_change what, int value) {
  size_t n;
  char *text = read_tiny("tokenizer.json", &n);
  json_t *t = json_loadb(text, n, 0, NULL);
  assert_non_null(t);
  free(text);
  switch (what) {
    case TJ_ADDED:
      json_array_append_new(json_object_get(t, "added_tokens"),
                            json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", value, "content",
                                      "[NEW]", "single_word", 0, "lstrip", 0, "rstrip", 0,
                                      "normalized", 0, "special", 1));
      break;
    case TJ_PAD:
      json_object_set_new(t, "padding",
                          json_pack("{s:s, s:s, s:n, s:i, s:i, s:s}", "strategy", "BatchLongest",
                                    "direction", "Right", "pad_to_multiple_of", "pad_id", value,
                                    "pad_type_id", 0, "pad_token", "[PAD]"));
      break;
    case TJ_TEMPLATE: {
      json_t *sp = json_object_get(json_object_get(t, "post_processor"), "special_tokens");
      json_object_set_new(json_object_get(sp, "[CLS]"), "ids", json_pack("[i]", value));
      break;
    }
    case TJ_PAIR_TYPE: {
      json_t *pair = json_object_get(json_object_get(t, "post_processor"), "pair");
      json_object_set_new(json_object_get(json_array_get(pair, 3), "Sequence"), "type_id",
                          json_integer(value));
      break;
    }
  }
  char *s = json_dumps(t, 0);
  write_text(dir, "tokenizer.json", s);
  free(s);
  json_decref(t);
}

/* A tiny-bert directory (config, weights, tokenizer_config.json) without tokenizer files. */
static void new_tok_case(char *dir, size_t n) {
  new_case(dir, n, NULL);
  variant v = {0};
  write_tiny_variant(dir, &v);
  size_t len;
  char *c = read_tiny("tokenizer_config.json", &len);
  write_bytes(dir, "tokenizer_config.json", c, len);
  free(c);
}

/* `bertcl CMD -m dir ...` exits non-zero and prints needle. */
static void expect_cmd_fail(const char *cmdline, const char *needle) {
  char *out = NULL;
  int rc = bc_test_run(cmdline, &out);
  if (rc == 0 || !out || !strstr(out, needle))
    fail_msg("%s: exit %d: %s (want a failure naming '%s')", cmdline, rc, out ? out : "", needle);
  free(out);
}

/* Each hostile tokenizer is refused at load with its own message naming the file and the
 * sizes, by bertcl_model_load, bertcl_tokenizer_load, `bertcl info` and `bertcl tokenize`;
 * a vocabulary smaller than the table still loads. */
static void test_hostile_tokenizer(void **state) {
  (void)state;
  typedef struct {
    const char *what;
    const char *extra; /* vocab.txt: lines appended */
    size_t bad_line;
    const char *bad, *drop;
    int json;          /* 1: tokenizer.json with change tj, value */
    tj_change tj;
    int value;
    const char *needle1, *needle2;
  } tcase;
  static const tcase cases[] = {
      {"empty vocab.txt", NULL, 0, NULL, NULL, 0, 0, 0, "vocab.txt is empty (0 bytes, no token)",
       NULL},
      {"vocab.txt of blank lines", "\n\n\n", 0, NULL, NULL, 0, 0, 0, "vocab.txt is empty", NULL},
      {"invalid UTF-8 in vocab.txt", "", 1001, "ab\xff" "cd", NULL, 0, 0, 0,
       "vocab.txt line 1001 (token id 1000): invalid UTF-8 (byte 0xff at column 3)", NULL},
      {"overlong UTF-8 in vocab.txt", "", 7, "\xc0\xaf", NULL, 0, 0, 0,
       "vocab.txt line 7 (token id 6): invalid UTF-8 (byte 0xc0 at column 1)", NULL},
      {"vocab.txt larger than the table", "extra1\nextra2\nextra3\n", 0, NULL, NULL, 0, 0, 0,
       "vocab.txt: the tokenizer produces token ids up to 1397 ('extra3'), 1398 ids",
       "config.json vocab_size is 1395: ids 1395..1397 have no row"},
      {"no [CLS] in vocab.txt", "", 0, NULL, "[CLS]", 0, 0, 0, "cls_token '[CLS]'",
       "is not in the vocabulary"},
      {"no [UNK] in vocab.txt", "", 0, NULL, "[UNK]", 0, 0, 0,
       "vocab.txt: the unknown token is not in the vocabulary", NULL},
      /* tokenizers numbers an added token not in the vocabulary from the vocabulary's size on
       * (the file's id 2000 is only checked by a warning): [NEW] gets 1395, one past the table */
      {"added token past the table", NULL, 0, NULL, NULL, 1, TJ_ADDED, 2000,
       "tokenizer.json: the tokenizer produces token ids up to 1395 ('[NEW]'), 1396 ids",
       "vocab_size is 1395"},
      {"padding id past the vocabulary", NULL, 0, NULL, NULL, 1, TJ_PAD, 7777,
       "tokenizer.json: the padding token id 7777 is not in the vocabulary (ids 0..1394)", NULL},
      {"negative padding id", NULL, 0, NULL, NULL, 1, TJ_PAD, -1,
       "tokenizer.json: the padding token id -1 is not in the vocabulary", NULL},
      {"template id past the vocabulary", NULL, 0, NULL, NULL, 1, TJ_TEMPLATE, 5000,
       "template token id 5000 is not in the vocabulary", NULL},
      {"pair type id past the type table", NULL, 0, NULL, NULL, 1, TJ_PAIR_TYPE, 5,
       "tokenizer.json: the pair template gives token type id 5",
       "the model has 2 token types (type_vocab_size)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const tcase *c = &cases[i];
    char dir[1024], cmd[8192];
    new_tok_case(dir, sizeof dir);
    if (c->json) {
      write_tokenizer_json(dir, c->tj, c->value);
    } else if (!c->extra) {
      write_bytes(dir, "vocab.txt", "", 0);
    } else if (c->bad_line == 0 && !c->drop && strspn(c->extra, "\n") == strlen(c->extra)) {
      write_text(dir, "vocab.txt", c->extra);
    } else {
      size_t len;
      char *v = vocab_variant(&len, c->extra, c->bad_line, c->bad, c->drop, 0);
      write_bytes(dir, "vocab.txt", v, len);
      free(v);
    }
    print_message("hostile tokenizer: %s\n", c->what);
    expect_fail(dir, BERTCL_ERR_FORMAT, c->needle1, c->needle2);
    bertcl_tokenizer *tok = (bertcl_tokenizer *)0x1;
    int st = bertcl_tokenizer_load(&tok, dir);
    const char *msg = bertcl_last_error(NULL);
    if (st != BERTCL_ERR_FORMAT || !strstr(msg, c->needle1))
      fail_msg("tokenizer load of '%s': %s: %s", c->what, bertcl_status_name(st), msg);
    assert_null(tok);
    expect_cli_fail(dir, c->needle1);
    snprintf(cmd, sizeof cmd, "echo hello | '%s' tokenize -m '%s' 2>&1", BERTCL_BIN, dir);
    expect_cmd_fail(cmd, c->needle1);
    if (i == 4) {
      /* extract and finetune refuse it before they write anything */
      snprintf(cmd, sizeof cmd, "echo hello > '%s/in.txt' && '%s' extract -m '%s' -i '%s/in.txt' "
               "-o '%s/out' 2>&1", dir, BERTCL_BIN, dir, dir, dir);
      expect_cmd_fail(cmd, c->needle2);
      snprintf(cmd, sizeof cmd, "printf 'text,label\\nhi,a\\nho,b\\n' > '%s/t.csv' && '%s' finetune "
               "-m '%s' --train '%s/t.csv' -o '%s/ft' 2>&1", dir, BERTCL_BIN, dir, dir, dir);
      expect_cmd_fail(cmd, c->needle2);
      struct stat sb;
      char p[1200];
      snprintf(p, sizeof p, "%s/out", dir);
      assert_int_not_equal(stat(p, &sb), 0);
      snprintf(p, sizeof p, "%s/ft", dir);
      assert_int_not_equal(stat(p, &sb), 0);
    }
    rm_rf(dir);
  }

  /* sentence-transformers layout: the tokenizer at the top, config.json and the weights in
   * 0_Transformer/. The tokenizer alone has no config.json to compare with, the model's
   * word-embedding table does. */
  char dir[1024];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  char sub[1100];
  snprintf(sub, sizeof sub, "%s/0_Transformer", dir);
  assert_int_equal(bc_mkdirs(sub), 0);
  {
    size_t len;
    char *c = read_tiny("config.json", &len);
    write_bytes(sub, "config.json", c, len);
    free(c);
    variant v = {0};
    write_tiny_variant(sub, &v);
    char *v2 = vocab_variant(&len, "x1\nx2\n", 0, NULL, NULL, 0);
    write_bytes(dir, "vocab.txt", v2, len);
    free(v2);
    write_text(dir, "modules.json",
               "[{\"idx\": 0, \"name\": \"0\", \"path\": \"0_Transformer\", \"type\": "
               "\"sentence_transformers.models.Transformer\"}]");
  }
  bertcl_tokenizer *tok = NULL;
  if (bertcl_tokenizer_load(&tok, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  assert_int_equal(bertcl_tokenizer_id_bound(tok), 1397);
  bertcl_tokenizer_free(tok);
  expect_fail(dir, BERTCL_ERR_FORMAT, "vocab.txt: the tokenizer produces token ids up to 1396",
              "is 1395: ids 1395..1396 have no row in the model's word-embedding table");
  expect_fail(dir, BERTCL_ERR_FORMAT, "the row count of", "embeddings.word_embeddings.weight");
  expect_cli_fail(dir, "0_Transformer/model.safetensors embeddings.word_embeddings.weight");
  rm_rf(dir);

  /* controls: a vocabulary smaller than the table loads everywhere; so does the directory
   * without tokenizer files (ids can be given directly) */
  new_tok_case(dir, sizeof dir);
  size_t len;
  char *v = vocab_variant(&len, "", 0, NULL, NULL, 1000);
  write_bytes(dir, "vocab.txt", v, len);
  free(v);
  bertcl_model *m = NULL;
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  bertcl_model_free(m);
  if (bertcl_tokenizer_load(&tok, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  assert_int_equal(bertcl_tokenizer_id_bound(tok), 1000);
  bertcl_tokenizer_free(tok);
  char cmd[2400], *out = NULL;
  snprintf(cmd, sizeof cmd, "'%s' info -m '%s' 2>&1 && echo hello | '%s' tokenize -m '%s' 2>&1",
           BERTCL_BIN, dir, BERTCL_BIN, dir);
  if (bc_test_run(cmd, &out) != 0) fail_msg("smaller vocabulary refused: %s", out);
  free(out);
  char p[1200];
  snprintf(p, sizeof p, "%s/vocab.txt", dir);
  unlink(p);
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  bertcl_model_free(m);
  /* a tokenizer of a kind bertcl does not read is not a hostile one: the weights load */
  write_text(dir, "tokenizer.json", "{\"model\": {\"type\": \"Martian\", \"vocab\": {}}}");
  tok = (bertcl_tokenizer *)0x1;
  assert_int_equal(bertcl_tokenizer_load(&tok, dir), BERTCL_ERR_UNSUPPORTED);
  assert_null(tok);
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  bertcl_model_free(m);
  rm_rf(dir);
}

/* scripts/convert_pytorch_bin.py turns a pytorch_model.bin directory into one bertcl loads
 * (skipped without Python torch + safetensors). */
static void test_convert_pytorch_bin(void **state) {
  (void)state;
  if (bc_test_run("python3 -c 'import torch, safetensors' 2>/dev/null", NULL) != 0) {
    printf("python3 with torch and safetensors not available: skipped\n");
    skip();
  }
  char dir[1024], cmd[4000], *out = NULL;
  new_case(dir, sizeof dir, NULL);
  snprintf(cmd, sizeof cmd,
           "python3 -c \"import sys, torch; from safetensors.torch import load_file; "
           "sd = load_file(sys.argv[1]); "
           "sd['cls.predictions.decoder.weight'] = sd['embeddings.word_embeddings.weight']; "
           "torch.save({'bert.' + k: v for k, v in sd.items()}, sys.argv[2])\" "
           "'%s/model.safetensors' '%s/pytorch_model.bin' 2>&1",
           tiny_dir, dir);
  if (bc_test_run(cmd, &out) != 0) fail_msg("torch.save failed: %s", out);
  free(out);
  expect_fail(dir, BERTCL_ERR_UNSUPPORTED, "scripts/convert_pytorch_bin.py", NULL);
  snprintf(cmd, sizeof cmd, "python3 '%s/../../scripts/convert_pytorch_bin.py' '%s' 2>&1",
           BERTCL_TEST_DATA, dir);
  if (bc_test_run(cmd, &out) != 0) fail_msg("convert_pytorch_bin.py failed: %s", out);
  free(out);
  bertcl_model *ref = NULL, *m = NULL;
  assert_int_equal(bertcl_model_load(&ref, tiny_dir), BERTCL_OK);
  if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  check_same_weights(ref, m, 0.0f, 0.0f);
  bertcl_model_info in;
  bertcl_model_get_info(m, &in);
  assert_int_equal(in.num_unused, 1); /* the tied decoder copy */
  bertcl_model_free(m);
  bertcl_model_free(ref);
  rm_rf(dir);
}

/* ---- bertcl info ---------------------------------------------------------------------------- */

static void test_cli_info(void **state) {
  (void)state;
  char cmd[2400], *out = NULL;
  snprintf(cmd, sizeof cmd, "'%s' info -m '%s' --json 2>&1", BERTCL_BIN, tiny_dir);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  json_error_t jerr;
  json_t *o = json_loads(out, 0, &jerr);
  if (!o) fail_msg("not JSON (%s): %s", jerr.text, out);
  assert_int_equal(json_integer_value(json_object_get(o, "layers")), 2);
  assert_int_equal(json_integer_value(json_object_get(o, "hidden_size")), 32);
  assert_int_equal(json_integer_value(json_object_get(o, "heads")), 4);
  assert_int_equal(json_integer_value(json_object_get(o, "vocab_size")), 1395);
  assert_int_equal(json_integer_value(json_object_get(o, "parameters")), 64960);
  assert_string_equal(json_string_value(json_object_get(o, "dtypes")), "F32");
  assert_string_equal(json_string_value(json_object_get(o, "model_type")), "bert");
  assert_string_equal(json_string_value(json_object_get(o, "family")), "bert");
  assert_true(json_is_null(json_object_get(o, "pooling")));
  assert_int_equal(json_integer_value(json_object_get(o, "max_length")), 64);
  assert_true(json_is_true(json_object_get(json_object_get(o, "tokenizer"), "do_lower_case")));
  json_decref(o);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' info -m '%s' 2>&1", BERTCL_BIN, tiny_dir);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "layers          2\n"));
  assert_non_null(strstr(out, "parameters      64960"));
  assert_non_null(strstr(out, "activation      gelu (erf form)"));
  free(out);
  /* unused tensors (of any dtype) are fine, and listed at debug level */
  char dir[1024];
  new_case(dir, sizeof dir, NULL);
  variant v = {.position_ids = 1, .prefix = "bert."};
  write_tiny_variant(dir, &v);
  snprintf(cmd, sizeof cmd, "BERTCL_DEBUG=1 '%s' info -m '%s' --json 2>&1", BERTCL_BIN, dir);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  if (!strstr(out, "bertcl: debug: ") ||
      !strstr(out, "unused tensor 'embeddings.position_ids' (I64, 64 elements)"))
    fail_msg("no debug line for the unused tensor: %s", out);
  assert_non_null(strstr(out, "\"unused_tensors\": 1"));
  assert_non_null(strstr(out, "\"layer_norm_eps\": 1e-12"));
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' info -m '%s' 2>&1", BERTCL_BIN, dir);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_null(strstr(out, "debug"));
  assert_non_null(strstr(out, "1 unused tensor)"));
  free(out);
  rm_rf(dir);
  snprintf(cmd, sizeof cmd, "'%s' info 2>&1", BERTCL_BIN);
  assert_int_equal(bc_test_run(cmd, &out), 2);
  assert_non_null(strstr(out, "use -m MODEL_DIR"));
  free(out);
}

int main(void) {
  bc_test_data_path(tiny_dir, sizeof tiny_dir, "tiny-bert");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_tiny),
      cmocka_unit_test(test_load_minilm),
      cmocka_unit_test(test_prefix_legacy_classifier),
      cmocka_unit_test(test_half_dtypes),
      cmocka_unit_test(test_sharded),
      cmocka_unit_test(test_sentence_transformers),
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test(test_hostile_safetensors),
      cmocka_unit_test(test_hostile_model),
      cmocka_unit_test(test_hostile_tokenizer),
      cmocka_unit_test(test_convert_pytorch_bin),
      cmocka_unit_test(test_cli_info),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
