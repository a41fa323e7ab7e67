/* The encoder families (RoBERTa, XLM-RoBERTa, CamemBERT, DistilBERT, MPNet): loading each tiny
 * model folder of tests/gen/gen_family_models.py as transformers saved it, and the plain-C
 * reference forward (src/ref) against what transformers computed on it: every hidden layer, the
 * positions, the pooler, the classification heads, sentence-transformers pooling, padding
 * invariance, MPNet's relative-position buckets and DistilBERT's sinusoidal table.
 *
 * $BERTCL_TEST_FAMILY_SABOTAGE breaks one architecture detail, to show these tests catch it
 * (they must then FAIL): "positions" (RoBERTa / MPNet count positions from 0 as BERT does),
 * "relbias" (MPNet without its relative attention bias), "eps" (torch's default LayerNorm eps
 * 1e-5 instead of config.json's, or DistilBERT's fixed 1e-12), "head" (the tanh head runs ReLU). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "encoder/encoder.h"
#include "encoder/ops.h"
#include "model/family.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "ref/ref.h"
#include "ref/ref_task.h"
#include "ref/ref_train.h"
#include "train/layout.h"
#include "train/recipe.h"
#include "train/trainer.h"

/* ------------------------------------------------------------------------------------------ */
/* Fixtures                                                                                    */

typedef struct {
  const char *name;       /* folder under tests/data/families */
  const char *model_type; /* config.json model_type */
  bc_family family;
  int type_vocab_size;    /* 0: no token types */
  int has_pooler;
  int seq_labels;         /* sequence-classification head's labels, 0 without */
  int token_labels;       /* token-classification head's labels, 0 without */
  int st_pooling;         /* sentence-transformers pooling, 0 without */
} family_case;

static const family_case k_cases[] = {
    {"tiny-roberta", "roberta", BC_FAMILY_ROBERTA, 1, 0, 3, 0, 0},
    {"tiny-xlm-roberta", "xlm-roberta", BC_FAMILY_ROBERTA, 1, 1, 0, 0, BC_POOL_CLS},
    {"tiny-camembert", "camembert", BC_FAMILY_ROBERTA, 1, 0, 0, 5, 0},
    {"tiny-distilbert", "distilbert", BC_FAMILY_DISTILBERT, 0, 0, 2, 0, 0},
    {"tiny-distilbert-sin", "distilbert", BC_FAMILY_DISTILBERT, 0, 0, 0, 3, 0},
    {"tiny-mpnet", "mpnet", BC_FAMILY_MPNET, 0, 0, 2, 0, 0},
    {"tiny-mpnet-st", "mpnet", BC_FAMILY_MPNET, 0, 1, 0, 0, BC_POOL_MEAN},
};
#define N_CASES (sizeof k_cases / sizeof k_cases[0])

/* The folder tests/data/families/<name>, as transformers saved it (tokenizer included). */
static void family_dir(char *out, size_t n, const char *name) {
  char rel[256];
  snprintf(rel, sizeof rel, "families/%s", name);
  bc_test_data_path(out, n, rel);
}

static void case_dir(char *out, size_t n, const family_case *fc) { family_dir(out, n, fc->name); }

static bc_st_file *case_fixture(const family_case *fc, const char *dir) {
  char rel[256];
  snprintf(rel, sizeof rel, "families/%s-ref.safetensors", fc->name);
  bc_st_file *fx = bc_test_fixture_open(rel);
  /* the fixture records the FNV-1a 64 of the model.safetensors it was made from */
  const char *want = bc_st_metadata(fx, "model_fnv1a64");
  assert_non_null(want);
  char path[1200], got[17];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  char *data = NULL;
  size_t len = 0;
  bc_err err = {0};
  if (bc_read_file(&err, path, &data, &len) != BERTCL_OK) fail_msg("%s", err.msg);
  snprintf(got, sizeof got, "%016llx", (unsigned long long)bc_fnv1a64(BC_FNV_INIT, data, len));
  free(data);
  if (strcmp(got, want) != 0)
    fail_msg("%s is not the model %s was made from: rerun tests/gen/gen_family_models.py", path,
             rel);
  return fx;
}

/* The model under test, with $BERTCL_TEST_FAMILY_SABOTAGE applied to its copy of the config. */
typedef struct {
  bertcl_model *m;
  bc_config cfg;
  bc_weights w;
} test_model;

static void model_open(test_model *tm, const char *dir) {
  memset(tm, 0, sizeof *tm);
  if (bertcl_model_load(&tm->m, dir) != BERTCL_OK)
    fail_msg("bertcl_model_load %s: %s", dir, bertcl_last_error(NULL));
  tm->cfg = *bc_model_config(tm->m);
  tm->w = *bc_model_weights(tm->m);
  const char *sab = getenv("BERTCL_TEST_FAMILY_SABOTAGE");
  if (!sab || !*sab) return;
  if (!strcmp(sab, "positions")) {
    tm->cfg.pos_kind = BC_POS_ARANGE;
  } else if (!strcmp(sab, "relbias")) {
    tm->cfg.rel_buckets = 0;
  } else if (!strcmp(sab, "eps")) {
    tm->cfg.layer_norm_eps = tm->cfg.layer_norm_eps == 1e-5f ? 1e-12f : 1e-5f;
  } else if (!strcmp(sab, "head")) {
    if (tm->cfg.head == BC_CLS_HEAD_DENSE_TANH) tm->cfg.head = BC_CLS_HEAD_DENSE_RELU;
  } else {
    fail_msg("BERTCL_TEST_FAMILY_SABOTAGE=%s: want positions, relbias, eps or head", sab);
  }
  printf("SABOTAGED model (%s): this test must fail\n", sab);
}

static void model_close(test_model *tm) { bertcl_model_free(tm->m); }

static int has(bc_st_file *fx, const char *name) { return bc_st_find(fx, name) != NULL; }

/* Compares (n) values with the fixture tensor name; prints and returns the max |diff|. */
static double compare(bc_st_file *fx, const char *model, const char *name, const float *got,
                      size_t n, float atol, int *ok) {
  float *want = bc_test_fixture_f32(fx, name, n);
  char what[192];
  snprintf(what, sizeof what, "ref %s %s vs transformers", model, name);
  if (!bc_check_close(what, got, want, n, atol, 0, 0)) *ok = 0;
  double d = bc_max_abs_diff(got, want, n);
  printf("  %-22s max |ref - transformers| = %.3g\n", name, d);
  free(want);
  return d;
}

/* One batch of a fixture (prefix "", "single." or "long."): hidden states, positions and
 * whatever heads the fixture holds. Returns the worst hidden-state |diff|; *hidden_out (may be
 * NULL) receives the malloc'd (L+1, B*T, C) states and *Bo, *To the batch shape. */
static double check_batch(const family_case *fc, const test_model *tm, bc_st_file *fx,
                          const char *prefix, int *ok, float **hidden_out, int *Bo, int *To) {
  const bc_config *cfg = &tm->cfg;
  char name[96];
  int64_t shape[2];
  snprintf(name, sizeof name, "%sinput_ids", prefix);
  int32_t *ids = bc_test_fixture_i32(fx, name, 0, shape);
  int B = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  size_t BT = (size_t)B * T, BTC = BT * C;
  snprintf(name, sizeof name, "%sattention_mask", prefix);
  int32_t *mask = bc_test_fixture_i32(fx, name, BT, NULL);
  snprintf(name, sizeof name, "%stoken_type_ids", prefix);
  int32_t *types = has(fx, name) ? bc_test_fixture_i32(fx, name, BT, NULL) : NULL;
  float *hidden = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* (L+1, B*T, C) */
  float *pooled = malloc((size_t)B * C * sizeof(float));          /* (B, C) */
  assert_true(hidden && pooled);
  int st = ref_model_fwd(cfg, &tm->w, ids, types, mask, B, T, hidden, pooled);
  if (st != BERTCL_OK) fail_msg("ref_model_fwd %s: %s", fc->name, bertcl_last_error(NULL));

  printf("%s %sbatch B=%d T=%d:\n", fc->name, prefix, B, T);
  double worst = 0.0;
  for (int l = 0; l <= L; l++) {
    snprintf(name, sizeof name, "%shidden.%d", prefix, l);
    double d = compare(fx, fc->name, name, hidden + (size_t)l * BTC, BTC, 1e-5f, ok);
    if (d > worst) worst = d;
  }
  if (!*prefix) {
    /* the positions transformers used, exactly */
    int32_t *want = bc_test_fixture_i32(fx, "position_ids", BT, NULL);
    int32_t *pos = malloc(BT * sizeof *pos);
    assert_non_null(pos);
    ref_position_ids(pos, ids, cfg, B, T);
    for (size_t i = 0; i < BT; i++)
      if (pos[i] != want[i]) {
        printf("position_ids %s: index %zu (row %zu, token %zu): want %d, got %d\n", fc->name, i,
               i / (size_t)T, i % (size_t)T, want[i], pos[i]);
        *ok = 0;
        break;
      }
    free(pos);
    free(want);
  }
  const float *last = hidden + (size_t)L * BTC; /* (B*T, C) */
  snprintf(name, sizeof name, "%spooler", prefix);
  if (has(fx, name)) {
    assert_non_null(tm->w.pool_w);
    compare(fx, fc->name, name, pooled, (size_t)B * C, 1e-5f, ok);
  }
  snprintf(name, sizeof name, "%slogits", prefix);
  if (has(fx, name) && fc->seq_labels) {
    int K = fc->seq_labels;
    float *logits = malloc((size_t)B * K * sizeof(float)); /* (B, K) */
    assert_non_null(logits);
    assert_int_equal(ref_seq_head_fwd(logits, NULL, cfg, &tm->w, last, B, T, K, NULL, NULL),
                     BERTCL_OK);
    compare(fx, fc->name, name, logits, (size_t)B * K, 1e-5f, ok);
    free(logits);
  } else if (has(fx, name) && fc->token_labels) {
    int K = fc->token_labels;
    float *logits = malloc(BT * K * sizeof(float)); /* (B*T, K): the classifier on every token */
    assert_non_null(logits);
    ref_linear_fwd(logits, last, tm->w.cls_w, tm->w.cls_b, (int)BT, C, K);
    compare(fx, fc->name, name, logits, BT * K, 1e-5f, ok);
    free(logits);
  }
  snprintf(name, sizeof name, "%sst.embeddings", prefix);
  if (has(fx, name)) {
    /* sentence-transformers' Pooling and Normalize modules on the last hidden state */
    assert_int_equal(cfg->st_pooling, fc->st_pooling);
    assert_true(cfg->st_normalize);
    ref_pool_fwd(pooled, last, mask, cfg->st_pooling, B, T, C);
    ref_l2norm_fwd(pooled, pooled, B, C);
    compare(fx, fc->name, name, pooled, (size_t)B * C, 1e-6f, ok);
  }
  free(pooled);
  free(types);
  free(mask);
  free(ids);
  if (hidden_out)
    *hidden_out = hidden;
  else
    free(hidden);
  if (Bo) *Bo = B;
  if (To) *To = T;
  return worst;
}

/* ------------------------------------------------------------------------------------------ */
/* Real text: bertcl's tokenizer (tokenizer.json's pipeline: byte-level BPE, Unigram, MPNet's
 * WordPiece template) on the texts the fixtures were made from (tests/gen/gen_family_models.py
 * TEXTS and PAIR), then the reference forward                                                 */

static const char *const k_text0 = "Hello, the world was on fire!";
static const char *const k_text2 = "The quick brown fox jumps over the lazy dog, then it runs away.";
static const char *const k_pair[2] = {"The cat sat on the mat.", "It was not happy at all."};

static int ids_match(const char *what, const bertcl_encoding *e, const int32_t *row, int T,
                     const int32_t *mask_row, int skip) {
  size_t n = 0;
  while ((int)n < T && mask_row[n]) n++;
  if (e->n != n) {
    printf("%s: bertcl %zu tokens, transformers %zu\n", what, e->n, n);
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    if ((int)i != skip && e->ids[i] != row[i]) {
      printf("%s: token %zu: bertcl id %d ('%s'), transformers %d\n", what, i, e->ids[i],
             e->tokens[i] ? e->tokens[i] : "?", row[i]);
      return 0;
    }
  return 1;
}

static void test_family_real_text(void **state) {
  (void)state;
  int ok = 1;
  for (size_t i = 0; i < N_CASES; i++) {
    const family_case *fc = &k_cases[i];
    char dir[1024];
    case_dir(dir, sizeof dir, fc);
    bertcl_tokenizer *tok = NULL;
    if (bertcl_tokenizer_load(&tok, dir) != BERTCL_OK)
      fail_msg("%s: %s", fc->name, bertcl_last_error(NULL));
    test_model tm;
    model_open(&tm, dir);
    bc_st_file *fx = case_fixture(fc, dir);
    int64_t shape[2];
    int32_t *ids = bc_test_fixture_i32(fx, "input_ids", 0, shape);
    int B = (int)shape[0], T = (int)shape[1];
    int32_t *mask = bc_test_fixture_i32(fx, "attention_mask", (size_t)B * T, NULL);
    /* rows: text 0, the pair, [a single special token], text 2 */
    int pad_inside = !strcmp(fc->name, "tiny-roberta") || !strcmp(fc->name, "tiny-mpnet");
    bertcl_encoding *e0 = NULL, *e1 = NULL, *e2 = NULL;
    assert_int_equal(bertcl_tokenizer_encode(tok, k_text0, strlen(k_text0), NULL, 0, NULL, &e0),
                     BERTCL_OK);
    assert_int_equal(bertcl_tokenizer_encode(tok, k_pair[0], strlen(k_pair[0]), k_pair[1],
                                             strlen(k_pair[1]), NULL, &e1), BERTCL_OK);
    assert_int_equal(bertcl_tokenizer_encode(tok, k_text2, strlen(k_text2), NULL, 0, NULL, &e2),
                     BERTCL_OK);
    char what[160];
    snprintf(what, sizeof what, "%s text", fc->name);
    int case_ok = ids_match(what, e0, ids, T, mask, -1);
    snprintf(what, sizeof what, "%s pair", fc->name);
    case_ok &= ids_match(what, e1, ids + T, T, mask + T, pad_inside ? 3 : -1);
    snprintf(what, sizeof what, "%s long text", fc->name);
    case_ok &= ids_match(what, e2, ids + (size_t)(B - 1) * T, T, mask + (size_t)(B - 1) * T, -1);
    /* bertcl's own ids of text 0 through the reference: transformers' batch of one */
    int C = tm.cfg.hidden_size, L = tm.cfg.num_layers, n0 = (int)e0->n;
    float *hidden = malloc((size_t)(L + 1) * n0 * C * sizeof(float));
    assert_non_null(hidden);
    assert_int_equal(ref_model_fwd(&tm.cfg, &tm.w, e0->ids, e0->type_ids, NULL, 1, n0, hidden,
                                   NULL), BERTCL_OK);
    char name[32];
    snprintf(name, sizeof name, "single.hidden.%d", L);
    float *want = bc_test_fixture_f32(fx, name, (size_t)n0 * C);
    snprintf(what, sizeof what, "%s: bertcl tokens -> ref -> last layer vs transformers", fc->name);
    case_ok &= bc_check_close(what, hidden + (size_t)L * n0 * C, want, (size_t)n0 * C, 1e-5f, 0, 0);
    printf("%-20s bertcl's tokenizer gives transformers' ids (%zu + %zu + %zu tokens); last layer "
           "max |diff| %.3g\n", fc->name, e0->n, e1->n, e2->n,
           bc_max_abs_diff(hidden + (size_t)L * n0 * C, want, (size_t)n0 * C));
    ok &= case_ok;
    free(want);
    free(hidden);
    bertcl_encoding_free(e2);
    bertcl_encoding_free(e1);
    bertcl_encoding_free(e0);
    free(mask);
    free(ids);
    bc_test_fixture_close(fx);
    model_close(&tm);
    bertcl_tokenizer_free(tok);
  }
  assert_true(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

static void test_family_load(void **state) {
  (void)state;
  for (size_t i = 0; i < N_CASES; i++) {
    const family_case *fc = &k_cases[i];
    char dir[1024];
    case_dir(dir, sizeof dir, fc);
    bertcl_model *m = NULL;
    if (bertcl_model_load(&m, dir) != BERTCL_OK)
      fail_msg("%s: %s", fc->name, bertcl_last_error(NULL));
    bertcl_model_info in;
    assert_int_equal(bertcl_model_get_info(m, &in), BERTCL_OK);
    const bc_config *c = bc_model_config(m);
    const bc_weights *w = bc_model_weights(m);
    printf("%-20s model_type %-11s family %-10s types %d pooler %d labels %d unused %d\n",
           fc->name, in.model_type, in.family, in.type_vocab_size, in.has_pooler, in.num_labels,
           in.num_unused);
    assert_string_equal(in.model_type, fc->model_type);
    assert_string_equal(in.family, bc_family_name(fc->family));
    assert_int_equal(c->family, fc->family);
    assert_int_equal(in.type_vocab_size, fc->type_vocab_size);
    assert_int_equal(w->type_emb != NULL, fc->type_vocab_size > 0);
    assert_int_equal(in.has_pooler, fc->has_pooler);
    assert_int_equal(in.num_labels, fc->seq_labels + fc->token_labels);
    assert_int_equal(w->head_w != NULL, fc->seq_labels > 0);
    assert_int_equal(in.num_unused, 0); /* every tensor of the file is bound */
    assert_int_equal(c->st_pooling, fc->st_pooling);
    int mpnet = fc->family == BC_FAMILY_MPNET, roberta = fc->family == BC_FAMILY_ROBERTA;
    assert_int_equal(c->rel_buckets, mpnet ? 32 : 0);
    assert_int_equal(w->rel_bias != NULL, mpnet);
    assert_int_equal(c->pos_kind, mpnet || roberta ? BC_POS_PADDED : BC_POS_ARANGE);
    if (c->pos_kind == BC_POS_PADDED) {
      assert_int_equal(c->padding_idx, 1);
      assert_int_equal(in.max_position, c->position_rows);
      assert_int_equal(c->max_position, c->position_rows - 2); /* padding_idx + 1 below */
      assert_int_equal(in.max_length, c->st_max_seq_length ? c->st_max_seq_length
                                                            : c->max_position);
    } else {
      assert_int_equal(c->max_position, c->position_rows);
    }
    assert_int_equal(c->head, mpnet || roberta ? BC_CLS_HEAD_DENSE_TANH
                              : fc->family == BC_FAMILY_DISTILBERT ? BC_CLS_HEAD_DENSE_RELU
                                                                   : BC_CLS_HEAD_POOLER);
    if (fc->family == BC_FAMILY_DISTILBERT) {
      assert_true(c->layer_norm_eps == 1e-12f);
      assert_true(fabsf(c->cls_dropout - 0.2f) < 1e-7f); /* seq_classif_dropout */
    }
    if (!strcmp(fc->name, "tiny-roberta")) assert_true(c->layer_norm_eps == 1e-5f);
    if (!strcmp(fc->name, "tiny-distilbert-sin")) assert_int_equal(c->act, BC_ACT_RELU);
    bertcl_model_free(m);
  }
  /* BERT keeps its pooler as the head's dense layer */
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  bertcl_model *m = NULL;
  assert_int_equal(bertcl_model_load(&m, dir), BERTCL_OK);
  const bc_config *c = bc_model_config(m);
  assert_int_equal(c->family, BC_FAMILY_BERT);
  assert_int_equal(c->pos_kind, BC_POS_ARANGE);
  assert_int_equal(c->head, BC_CLS_HEAD_POOLER);
  assert_int_equal(c->max_position, c->position_rows);
  bertcl_model_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* The reference forward against transformers                                                  */

static void test_family_hidden_states(void **state) {
  (void)state;
  int ok = 1;
  for (size_t i = 0; i < N_CASES; i++) {
    const family_case *fc = &k_cases[i];
    char dir[1024];
    case_dir(dir, sizeof dir, fc);
    test_model tm;
    model_open(&tm, dir);
    bc_st_file *fx = case_fixture(fc, dir);
    int case_ok = 1;
    check_batch(fc, &tm, fx, "", &case_ok, NULL, NULL, NULL);
    if (has(fx, "long.input_ids")) check_batch(fc, &tm, fx, "long.", &case_ok, NULL, NULL, NULL);
    if (!case_ok) printf("%s: MISMATCH\n", fc->name);
    ok &= case_ok;
    bc_test_fixture_close(fx);
    model_close(&tm);
  }
  assert_true(ok);
}

/* Row 0 of the padded batch run alone, unpadded: its real positions equal the batch's
 * (atol 1e-5) and transformers' own batch-of-one run. */
static void test_family_padding_invariance(void **state) {
  (void)state;
  int ok = 1;
  for (size_t i = 0; i < N_CASES; i++) {
    const family_case *fc = &k_cases[i];
    char dir[1024];
    case_dir(dir, sizeof dir, fc);
    test_model tm;
    model_open(&tm, dir);
    bc_st_file *fx = case_fixture(fc, dir);
    float *batch = NULL, *alone = NULL;
    int B, T, B1, T1, case_ok = 1;
    check_batch(fc, &tm, fx, "", &case_ok, &batch, &B, &T);
    check_batch(fc, &tm, fx, "single.", &case_ok, &alone, &B1, &T1);
    assert_int_equal(B1, 1);
    assert_true(T1 < T); /* row 0 is padded in the batch */
    int C = tm.cfg.hidden_size, L = tm.cfg.num_layers;
    double worst = 0.0;
    for (int l = 0; l <= L; l++) {
      const float *p = batch + (size_t)l * B * T * C, *a = alone + (size_t)l * T1 * C;
      char what[128];
      snprintf(what, sizeof what, "%s hidden.%d (1,%d,%d) alone vs in a padded batch", fc->name,
               l, T1, C);
      if (!bc_check_close(what, a, p, (size_t)T1 * C, 1e-5f, 0, 0)) case_ok = 0;
      double d = bc_max_abs_diff(a, p, (size_t)T1 * C);
      if (d > worst) worst = d;
    }
    printf("%s padding invariance (T=%d in a batch of %d x %d): max |diff| = %.3g\n", fc->name,
           T1, B, T, worst);
    ok &= case_ok;
    free(batch);
    free(alone);
    bc_test_fixture_close(fx);
    model_close(&tm);
  }
  assert_true(ok);
}

/* MPNet's buckets for every relative position in [-2048, 2048], as torch computed them. */
static void test_rel_position_buckets(void **state) {
  (void)state;
  bc_st_file *fx = bc_test_fixture_open("families/tiny-mpnet-ref.safetensors");
  int64_t shape[2];
  int32_t *want = bc_test_fixture_i32(fx, "rel_buckets", 0, shape);
  assert_int_equal(shape[1], 4097);
  int seen[BC_REL_BUCKETS] = {0};
  for (int i = 0; i < 4097; i++) {
    int rel = i - 2048, got = bc_rel_position_bucket(rel);
    if (got != want[i]) fail_msg("bucket of relative position %d: want %d, got %d", rel, want[i], got);
    seen[got] = 1;
  }
  /* every bucket is reached but 16: keys after the query are at distance 1 or more */
  for (int b = 0; b < BC_REL_BUCKETS; b++) assert_int_equal(seen[b], b != BC_REL_BUCKETS / 2);
  /* the bias table: bias[h, i, j] = table[bucket(j - i), h] */
  float table[BC_REL_BUCKETS * 2], bias[2 * 3 * 3];
  for (int k = 0; k < BC_REL_BUCKETS * 2; k++) table[k] = (float)k;
  ref_rel_position_bias_fwd(bias, table, 2, 3);
  /* table (NB, NH) holds 2 * bucket + h; a key after the query is in the upper half */
  assert_true(bias[0] == 0.0f && bias[1] == 34.0f && bias[2] == 36.0f); /* h 0, i 0: j 0, 1, 2 */
  assert_true(bias[3] == 2.0f);                                        /* h 0, i 1, j 0: rel -1 */
  assert_true(bias[9 + 1] == 35.0f);                                   /* h 1, i 0, j 1 */
  /* the backward is the forward's adjoint, summed over the batch: for random table and dz,
   * sum_b <dz[b], bias(table)> == <dtable, table> */
  {
    enum { B = 3, NH = 2, T = 150 };
    bc_rng rng;
    bc_rng_seed(&rng, 7);
    float *tab = bc_rng_alloc(&rng, (size_t)BC_REL_BUCKETS * NH, -1.0f, 1.0f);
    float *dz = bc_rng_alloc(&rng, (size_t)B * NH * T * T, -1.0f, 1.0f);
    float *bb = malloc((size_t)NH * T * T * sizeof(float));
    float *dtab = calloc((size_t)BC_REL_BUCKETS * NH, sizeof(float));
    assert_true(tab && dz && bb && dtab);
    ref_rel_position_bias_fwd(bb, tab, NH, T);
    ref_rel_position_bias_bwd(dtab, dz, B, NH, T);
    double lhs = 0.0, rhs = 0.0;
    for (int b = 0; b < B; b++)
      for (size_t e = 0; e < (size_t)NH * T * T; e++) lhs += (double)dz[(size_t)b * NH * T * T + e] * bb[e];
    for (int k = 0; k < BC_REL_BUCKETS * NH; k++) rhs += (double)dtab[k] * tab[k];
    printf("rel_position_bias adjoint: %.9g vs %.9g\n", lhs, rhs);
    assert_true(fabs(lhs - rhs) <= 1e-6 * (fabs(lhs) + 1.0) + 1e-3);
    free(dtab);
    free(bb);
    free(dz);
    free(tab);
  }
  free(want);
  bc_test_fixture_close(fx);
}

/* DistilBERT's sinusoidal table, computed by the loader when the file lacks it. */
static void test_sinusoidal_positions(void **state) {
  (void)state;
  char dir[1024];
  family_dir(dir, sizeof dir, "tiny-distilbert-sin");
  bertcl_model *m = NULL;
  assert_int_equal(bertcl_model_load(&m, dir), BERTCL_OK);
  const bc_config *c = bc_model_config(m);
  bc_st_file *fx = bc_test_fixture_open("families/tiny-distilbert-sin-ref.safetensors");
  size_t n = (size_t)c->position_rows * c->hidden_size;
  float *want = bc_test_fixture_f32(fx, "position_table", n);
  assert_true(bc_check_close("sinusoidal position table vs transformers",
                             bc_model_weights(m)->pos_emb, want, n, 0, 0, 0));
  free(want);
  bc_test_fixture_close(fx);
  bertcl_model_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* The forward as the training reference uses it: activations kept, dropout sites              */

static void test_encoder_fwd_keeps_activations(void **state) {
  (void)state;
  char dir[1024];
  family_dir(dir, sizeof dir, "tiny-mpnet");
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  enum { B = 2, T = 6 };
  int32_t ids[B * T] = {0, 10, 11, 12, 13, 2, 0, 20, 21, 2, 1, 1};
  int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  int C = cfg->hidden_size, L = cfg->num_layers;
  size_t BTC = (size_t)B * T * C;
  float *h0 = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* (L+1, B*T, C) eval */
  float *h1 = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* kept, p = 0 */
  float *h2 = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* kept, dropout */
  assert_true(h0 && h1 && h2);
  assert_int_equal(ref_encoder_fwd(cfg, &tm.w, ids, NULL, mask, B, T, NULL, h0, NULL), BERTCL_OK);

  ref_fwd_acts acts;
  assert_int_equal(ref_fwd_acts_alloc(&acts, cfg, B, T), BERTCL_OK);
  ref_dropout sites[REF_FWD_DROP_SITES(2)];
  assert_int_equal(L, 2);
  for (int s = 0; s < REF_FWD_DROP_SITES(2); s++)
    sites[s] = (ref_dropout){0.0f, 1234, 7, (uint32_t)s};
  assert_int_equal(ref_encoder_fwd(cfg, &tm.w, ids, NULL, mask, B, T, sites, h1, &acts), BERTCL_OK);
  /* p = 0 sites are the eval forward, bit for bit */
  assert_true(bc_check_close("ref_encoder_fwd p=0 vs eval", h1, h0, (size_t)(L + 1) * BTC, 0, 0, 0));
  /* what is kept is what the layers computed: h_{l+1} = LN2(t2 + h1), positions, bias */
  for (int l = 0; l < L; l++) {
    const ref_layer_acts *a = &acts.layer[l];
    float *re = malloc(BTC * sizeof(float));
    assert_non_null(re);
    ref_bias_residual_layernorm_fwd(re, a->t2, NULL, a->h1, tm.w.layers[l].ln2_w,
                                    tm.w.layers[l].ln2_b, cfg->layer_norm_eps, B * T, C);
    assert_true(bc_check_close("h_{l+1} from kept t2, h1", re, h1 + (size_t)(l + 1) * BTC, BTC, 0,
                               0, (uint64_t)l));
    /* masked keys get probability 0 */
    assert_true(a->probs[((size_t)1 * cfg->num_heads * T + 0) * T + 4] == 0.0f);
    free(re);
  }
  assert_int_equal(acts.pos_ids[0], 2);           /* padding_idx 1 + 1 */
  assert_int_equal(acts.pos_ids[T + 4], 1);       /* padding keeps padding_idx */
  assert_non_null(acts.pos_bias);

  /* dropout at p = 0.25 on every site: the embeddings' output is ref_dropout_fwd of eval's */
  for (int s = 0; s < REF_FWD_DROP_SITES(2); s++) sites[s].p = 0.25f;
  assert_int_equal(ref_encoder_fwd(cfg, &tm.w, ids, NULL, mask, B, T, sites, h2, &acts), BERTCL_OK);
  float *e = malloc(BTC * sizeof(float));
  assert_non_null(e);
  ref_dropout_fwd(e, h0, BTC, &sites[0]);
  assert_true(bc_check_close("embeddings dropout site", h2, e, BTC, 0, 0, 1234));
  size_t zeros = 0;
  for (size_t i = 0; i < BTC; i++) zeros += h2[i] == 0.0f;
  assert_true(zeros > BTC / 8 && zeros < BTC / 2); /* about a quarter dropped */
  assert_true(bc_max_abs_diff(h2 + (size_t)L * BTC, h0 + (size_t)L * BTC, BTC) > 1e-3);
  /* the same (seed, step, ids) reproduce the same forward */
  assert_int_equal(ref_encoder_fwd(cfg, &tm.w, ids, NULL, mask, B, T, sites, h1, &acts), BERTCL_OK);
  assert_true(bc_check_close("dropout forward repeated", h1, h2, (size_t)(L + 1) * BTC, 0, 0, 0));

  /* a head with dropout: d_out zeroes what ref_dropout_fwd zeroes */
  float logits[B * 2], logits0[B * 2], x[B * 32], z[B * 32], zd[B * 32];
  assert_true(C <= 32);
  ref_head_acts ha = {x, z, zd};
  const float *last = h0 + (size_t)L * BTC;
  assert_int_equal(ref_seq_head_fwd(logits0, NULL, cfg, &tm.w, last, B, T, 2, NULL, NULL),
                   BERTCL_OK);
  assert_int_equal(ref_seq_head_fwd(logits, &ha, cfg, &tm.w, last, B, T, 2, &sites[1], &sites[2]),
                   BERTCL_OK);
  float *zref = malloc((size_t)B * C * sizeof(float));
  assert_non_null(zref);
  ref_dropout_fwd(zref, z, (size_t)B * C, &sites[2]);
  assert_true(bc_check_close("head dropout site", zd, zref, (size_t)B * C, 0, 0, 0));
  assert_true(bc_max_abs_diff(logits, logits0, B * 2) > 1e-4);
  free(zref);
  free(e);
  ref_fwd_acts_free(&acts);
  ref_fwd_acts_free(&acts); /* twice: a no-op */
  free(h2);
  free(h1);
  free(h0);
  model_close(&tm);
}

/* ------------------------------------------------------------------------------------------ */
/* What each family refuses                                                                    */

static void write_text(const char *dir, const char *name, const char *text) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void copy_file(const char *from, const char *to) {
  char *data = NULL;
  size_t len = 0;
  bc_err err = {0};
  if (bc_read_file(&err, from, &data, &len) != BERTCL_OK) fail_msg("%s", err.msg);
  FILE *f = fopen(to, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
  free(data);
}

/* dir/config.json = the folder's config.json with key set to json (NULL: removed), weights
 * copied; returns the load status and leaves the message in bertcl_last_error(NULL). */
static int load_variant(const char *tmp, const char *folder, const char *key, const char *json) {
  char src[1200], path[1200], rel[256];
  snprintf(rel, sizeof rel, "families/%s", folder);
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, rel);
  snprintf(src, sizeof src, "%s/model.safetensors", dir);
  snprintf(path, sizeof path, "%s/model.safetensors", tmp);
  copy_file(src, path);
  snprintf(src, sizeof src, "%s/config.json", dir);
  char *text = NULL;
  size_t len = 0;
  bc_err err = {0};
  if (bc_read_file(&err, src, &text, &len) != BERTCL_OK) fail_msg("%s", err.msg);
  /* a textual edit keeps the test free of a JSON writer: replace the key's line */
  char *out = malloc(len + 256);
  assert_non_null(out);
  char needle[96];
  snprintf(needle, sizeof needle, "\"%s\":", key);
  char *at = strstr(text, needle);
  if (at) {
    char *eol = strchr(at, '\n');
    size_t head = (size_t)(at - text);
    memcpy(out, text, head);
    out[head] = '\0';
    if (json) sprintf(out + head, "\"%s\": %s,", key, json);
    strcat(out, eol ? eol : "");
  } else {
    assert_non_null(json);
    snprintf(out, len + 256, "{\"%s\": %s,%s", key, json, strchr(text, '{') + 1);
  }
  write_text(tmp, "config.json", out);
  free(out);
  free(text);
  bertcl_model *m = NULL;
  int st = bertcl_model_load(&m, tmp);
  bertcl_model_free(m);
  return st;
}

static void expect_msg(int st, int want, const char *needle) {
  const char *msg = bertcl_last_error(NULL);
  if (st != want || (needle && !strstr(msg, needle)))
    fail_msg("got %s: %s (want %s: %s)", bertcl_status_name(st), msg, bertcl_status_name(want),
             needle ? needle : "");
}

static void test_family_errors(void **state) {
  (void)state;
  char tmp[1024];
  assert_int_equal(bc_test_tmpdir(tmp, sizeof tmp), 0);
  /* RoBERTa counts positions from pad_token_id: a null one is refused */
  expect_msg(load_variant(tmp, "tiny-roberta", "pad_token_id", "null"), BERTCL_ERR_FORMAT,
             "\"pad_token_id\" is null; roberta counts positions from it");
  /* ... and a table too short for any position after it */
  expect_msg(load_variant(tmp, "tiny-roberta", "pad_token_id", "65"), BERTCL_ERR_FORMAT,
             "max_position_embeddings 66 leaves no position after padding_idx 65");
  /* MPNet buckets into 32 whatever the table holds */
  expect_msg(load_variant(tmp, "tiny-mpnet", "relative_attention_num_buckets", "16"),
             BERTCL_ERR_UNSUPPORTED, "relative_attention_num_buckets 16 is below the 32");
  /* without sinusoidal_pos_embds a missing position table is an error */
  expect_msg(load_variant(tmp, "tiny-distilbert-sin", "sinusoidal_pos_embds", "false"),
             BERTCL_ERR_MISSING,
             "missing tensor 'distilbert.embeddings.position_embeddings.weight'");
  /* DistilBERT's keys: a dim that is not a multiple of n_heads */
  expect_msg(load_variant(tmp, "tiny-distilbert", "n_heads", "5"), BERTCL_ERR_FORMAT,
             "dim 32 is not a multiple of n_heads 5");
  expect_msg(load_variant(tmp, "tiny-distilbert", "activation", "\"silu\""),
             BERTCL_ERR_UNSUPPORTED, "activation \"silu\" is not supported");
  /* a family's name table: MPNet weights under a RoBERTa config miss RoBERTa's names */
  expect_msg(load_variant(tmp, "tiny-mpnet-st", "model_type", "\"roberta\""), BERTCL_ERR_MISSING,
             "missing tensor 'embeddings.token_type_embeddings.weight'");
  /* no model_type: the architecture names the family */
  expect_msg(load_variant(tmp, "tiny-mpnet", "model_type", NULL), BERTCL_OK, NULL);
  expect_msg(load_variant(tmp, "tiny-mpnet", "model_type", "\"deberta-v2\""),
             BERTCL_ERR_UNSUPPORTED, "bertcl runs model_type bert, roberta, xlm-roberta");

  /* RoBERTa's longest sequence is max_position_embeddings - padding_idx - 1 = 64 */
  char dir[1024];
  family_dir(dir, sizeof dir, "tiny-roberta");
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  assert_int_equal(cfg->max_position, 64);
  enum { TMAX = 65 };
  int32_t ids[TMAX], pos[TMAX];
  for (int t = 0; t < TMAX; t++) ids[t] = 5;
  float *hidden = malloc((size_t)(cfg->num_layers + 1) * TMAX * cfg->hidden_size * sizeof(float));
  assert_non_null(hidden);
  assert_int_equal(ref_model_fwd(cfg, &tm.w, ids, NULL, NULL, 1, TMAX - 1, hidden, NULL),
                   BERTCL_OK);
  ref_position_ids(pos, ids, cfg, 1, TMAX - 1);
  assert_int_equal(pos[TMAX - 2], 65); /* the table's last row */
  assert_int_equal(ref_model_fwd(cfg, &tm.w, ids, NULL, NULL, 1, TMAX, hidden, NULL),
                   BERTCL_ERR_INVALID_ARG);
  assert_int_equal(bc_config_check_batch(NULL, cfg, ids, NULL, 1, TMAX), BERTCL_ERR_INVALID_ARG);
  int32_t types[2] = {0, 1}; /* type_vocab_size 1 */
  assert_int_equal(bc_config_check_batch(NULL, cfg, ids, types, 1, 2), BERTCL_ERR_INVALID_ARG);
  model_close(&tm);

  /* no token types: type ids are ignored, whatever they hold */
  family_dir(dir, sizeof dir, "tiny-distilbert");
  model_open(&tm, dir);
  cfg = &tm.cfg;
  int32_t t7[4] = {7, 7, 7, 7};
  float *h2 = malloc((size_t)(cfg->num_layers + 1) * 4 * cfg->hidden_size * sizeof(float));
  assert_non_null(h2);
  assert_int_equal(bc_config_check_batch(NULL, cfg, ids, t7, 1, 4), BERTCL_OK);
  assert_int_equal(ref_model_fwd(cfg, &tm.w, ids, NULL, NULL, 1, 4, hidden, NULL), BERTCL_OK);
  assert_int_equal(ref_model_fwd(cfg, &tm.w, ids, t7, NULL, 1, 4, h2, NULL), BERTCL_OK);
  assert_true(bc_check_close("distilbert type ids ignored", h2, hidden,
                             (size_t)(cfg->num_layers + 1) * 4 * cfg->hidden_size, 0, 0, 0));
  free(h2);
  free(hidden);
  model_close(&tm);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  bc_test_run(cmd, NULL);
}

/* The OpenCL encoder on every family against transformers: every hidden layer of the fixture
 * batches (and MPNet's 160-token batch), the pooler, sentence-transformers pooling, and row 0
 * alone vs in the padded batch. */
static double device_batch(bertcl_ctx *ctx, bc_encoder *enc, const family_case *fc,
                           bc_st_file *fx, const char *prefix, float atol, int *ok,
                           float **last_out) {
  const bc_config *cfg = bc_encoder_config(enc);
  char name[96];
  int64_t shape[2];
  snprintf(name, sizeof name, "%sinput_ids", prefix);
  int32_t *ids = bc_test_fixture_i32(fx, name, 0, shape);
  int B = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  size_t BTC = (size_t)B * T * C;
  snprintf(name, sizeof name, "%sattention_mask", prefix);
  int32_t *mask = bc_test_fixture_i32(fx, name, (size_t)B * T, NULL);
  snprintf(name, sizeof name, "%stoken_type_ids", prefix);
  int32_t *types = has(fx, name) ? bc_test_fixture_i32(fx, name, (size_t)B * T, NULL) : NULL;
  int layers[64];
  for (int l = 0; l <= L; l++) layers[l] = l;
  if (bc_encoder_forward(enc, ids, types, mask, B, T, layers, L + 1) != BERTCL_OK)
    fail_msg("bc_encoder_forward %s: %s", fc->name, bertcl_last_error(ctx));
  float *got = malloc(BTC * sizeof(float));
  assert_non_null(got);
  double worst = 0.0;
  for (int l = 0; l <= L; l++) {
    assert_int_equal(bc_encoder_read_hidden(enc, l, got), BERTCL_OK);
    snprintf(name, sizeof name, "%shidden.%d", prefix, l);
    float *want = bc_test_fixture_f32(fx, name, BTC);
    /* padding positions are not compared: the device leaves them as its kernels make them */
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++)
        if (!mask[(size_t)b * T + t])
          memcpy(got + ((size_t)b * T + t) * C, want + ((size_t)b * T + t) * C, C * sizeof(float));
    char what[160];
    snprintf(what, sizeof what, "OpenCL encoder %s %s vs transformers", fc->name, name);
    if (!bc_check_close(what, got, want, BTC, atol, 0, 0)) *ok = 0;
    double d = bc_max_abs_diff(got, want, BTC);
    if (d > worst) worst = d;
    free(want);
  }
  snprintf(name, sizeof name, "%spooler", prefix);
  if (has(fx, name)) {
    float *want = bc_test_fixture_f32(fx, name, (size_t)B * C);
    assert_int_equal(bc_encoder_read_pooler(enc, got), BERTCL_OK);
    if (!bc_check_close("OpenCL pooler vs transformers", got, want, (size_t)B * C, atol, 0, 0))
      *ok = 0;
    free(want);
  }
  snprintf(name, sizeof name, "%sst.embeddings", prefix);
  if (has(fx, name)) {
    float *want = bc_test_fixture_f32(fx, name, (size_t)B * C);
    int last = L;
    assert_int_equal(bc_encoder_forward(enc, ids, types, mask, B, T, &last, 1), BERTCL_OK);
    assert_int_equal(bc_encoder_read_pooled(enc, cfg->st_pooling, BC_COMBINE_CONCAT,
                                            cfg->st_normalize, got), BERTCL_OK);
    if (!bc_check_close("OpenCL sentence-transformers pooling vs sentence-transformers", got,
                        want, (size_t)B * C, 1e-5f, 0, 0))
      *ok = 0;
    free(want);
  }
  if (last_out) { /* the last layer again, for the padding check */
    int last = L;
    assert_int_equal(bc_encoder_forward(enc, ids, types, mask, B, T, &last, 1), BERTCL_OK);
    *last_out = malloc(BTC * sizeof(float));
    assert_non_null(*last_out);
    assert_int_equal(bc_encoder_read_hidden(enc, 0, *last_out), BERTCL_OK);
  }
  free(got);
  free(types);
  free(mask);
  free(ids);
  return worst;
}

static void test_family_device(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  int ok = 1;
  for (size_t i = 0; i < N_CASES; i++) {
    const family_case *fc = &k_cases[i];
    char dir[1024];
    case_dir(dir, sizeof dir, fc);
    bertcl_model *m = NULL;
    if (bertcl_model_load(&m, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
    bc_encoder *enc = NULL;
    if (bc_encoder_create(ctx, m, &enc) != BERTCL_OK)
      fail_msg("bc_encoder_create %s: %s", fc->name, bertcl_last_error(ctx));
    bc_st_file *fx = case_fixture(fc, dir);
    float *batch_last = NULL, *alone_last = NULL;
    double w = device_batch(ctx, enc, fc, fx, "", 1e-5f, &ok, &batch_last);
    double w1 = device_batch(ctx, enc, fc, fx, "single.", 1e-5f, &ok, &alone_last);
    double wl = has(fx, "long.input_ids") ? device_batch(ctx, enc, fc, fx, "long.", 1e-5f, &ok, NULL)
                                          : 0.0;
    /* row 0 alone vs in the padded batch, on the device */
    int64_t shape[2];
    int32_t *ids1 = bc_test_fixture_i32(fx, "single.input_ids", 0, shape);
    int T1 = (int)shape[1], C = bc_model_config(m)->hidden_size;
    double pad = bc_max_abs_diff(alone_last, batch_last, (size_t)T1 * C);
    if (pad > 1e-5) ok = 0;
    char longer[64] = "";
    if (wl > 0) snprintf(longer, sizeof longer, ", %.3g (160 tokens)", wl);
    printf("%-20s OpenCL vs transformers: every layer max |diff| %.3g (batch), %.3g (alone)%s; "
           "padding invariance %.3g\n", fc->name, w, w1, longer, pad);
    free(ids1);
    free(alone_last);
    free(batch_last);
    bc_test_fixture_close(fx);
    bc_encoder_free(enc);
    bertcl_model_free(m);
  }
  bertcl_ctx_free(ctx);
  assert_true(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* The family kernels (cl/position.cl) against their reference twins: exact (integer positions,
 * copied table entries). Sizes: T = 1, odd T, T past MPNet's distance 128, ids with the padding
 * id inside and at the end of rows. */

static void test_position_kernels(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  static const char *const files[] = {"common.cl", "position.cl"};
  char opts[320];
  snprintf(opts, sizeof opts, "-DREL_BUCKETS=%d -cl-std=CL1.2", BC_REL_BUCKETS);
  bc_act_options(opts, sizeof opts); /* common.cl wants the activation codes */
  cl_program prog = NULL;
  if (bc_program_build(ctx, files, 2, opts, &prog) != BERTCL_OK)
    fail_msg("position.cl: %s", bertcl_last_error(ctx));
  cl_int rc;
  cl_kernel kpos = clCreateKernel(prog, "position_ids_fwd", &rc);
  assert_int_equal(rc, CL_SUCCESS);
  cl_kernel kbias = clCreateKernel(prog, "rel_position_bias_fwd", &rc);
  assert_int_equal(rc, CL_SUCCESS);
  cl_kernel kdiag = clCreateKernel(prog, "rel_position_bias_bwd_diag", &rc);
  assert_int_equal(rc, CL_SUCCESS);
  cl_kernel ktab = clCreateKernel(prog, "rel_position_bias_bwd_table", &rc);
  assert_int_equal(rc, CL_SUCCESS);
  static const struct {
    int B, T, NH;
  } shapes[] = {{1, 1, 1}, {3, 7, 2}, {2, 33, 4}, {1, 300, 3}, {5, 130, 1}};
  uint64_t seed = 18;
  bc_rng rng;
  bc_rng_seed(&rng, seed);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int B = shapes[s].B, T = shapes[s].T, NH = shapes[s].NH;
    size_t BT = (size_t)B * T, BIAS = (size_t)NH * T * T;
    int32_t *ids = malloc(BT * sizeof *ids), *pos = malloc(BT * sizeof *pos);
    int32_t *want = malloc(BT * sizeof *want);
    float *table = bc_rng_alloc(&rng, (size_t)BC_REL_BUCKETS * NH, -1.0f, 1.0f);
    float *bias = malloc(BIAS * sizeof(float)), *bwant = malloc(BIAS * sizeof(float));
    assert_true(ids && pos && want && table && bias && bwant);
    for (size_t i = 0; i < BT; i++) ids[i] = (int32_t)(bc_rng_u32(&rng) % 6); /* pad id 1 often */
    cl_mem dids = bc_test_upload(ctx, ids, BT * sizeof *ids);
    cl_mem dpos = bc_test_upload(ctx, pos, BT * sizeof *pos);
    cl_mem dtab = bc_test_upload(ctx, table, (size_t)BC_REL_BUCKETS * NH * sizeof(float));
    cl_mem dbias = bc_test_upload(ctx, bias, BIAS * sizeof(float));
    for (int padded = 0; padded <= 1; padded++) {
      bc_config cfg = {0};
      cfg.pos_kind = padded ? BC_POS_PADDED : BC_POS_ARANGE;
      cfg.padding_idx = 1;
      ref_position_ids(want, ids, &cfg, B, T);
      int pidx = 1;
      bc_karg a[] = {KARG(dpos), KARG(dids), KARG(B), KARG(T), KARG(padded), KARG(pidx)};
      assert_int_equal(bc_kernel_run(ctx, kpos, "position_ids_fwd", a, 6, (size_t)B, 64),
                       BERTCL_OK);
      bc_test_download(ctx, dpos, pos, BT * sizeof *pos);
      for (size_t i = 0; i < BT; i++)
        if (pos[i] != want[i])
          fail_msg("position_ids_fwd (%d, %d) padded %d: index %zu want %d got %d, seed %llu", B,
                   T, padded, i, want[i], pos[i], (unsigned long long)seed);
    }
    bc_karg a[] = {KARG(dbias), KARG(dtab), KARG(NH), KARG(T)};
    assert_int_equal(bc_kernel_run(ctx, kbias, "rel_position_bias_fwd", a, 4, BIAS, 64), BERTCL_OK);
    bc_test_download(ctx, dbias, bias, BIAS * sizeof(float));
    ref_rel_position_bias_fwd(bwant, table, NH, T);
    char what[96];
    snprintf(what, sizeof what, "rel_position_bias_fwd (%d, %d, %d)", NH, T, T);
    assert_true(bc_check_close(what, bias, bwant, BIAS, 0, 0, seed));
    /* the table's gradient from dz (B, NH, T, T), accumulated onto a non-zero dtable */
    size_t DZ = (size_t)B * BIAS, NBH = (size_t)BC_REL_BUCKETS * NH;
    float *dz = bc_rng_alloc(&rng, DZ, -1.0f, 1.0f);
    float *gtab = bc_rng_alloc(&rng, NBH, -1.0f, 1.0f), *gtab_want = malloc(NBH * sizeof(float));
    assert_true(dz && dtab && gtab_want);
    memcpy(gtab_want, gtab, NBH * sizeof(float));
    ref_rel_position_bias_bwd(gtab_want, dz, B, NH, T);
    cl_mem ddz = bc_test_upload(ctx, dz, DZ * sizeof(float));
    cl_mem ddiag = bc_test_upload(ctx, dz, (size_t)NH * (2 * T - 1) * sizeof(float));
    cl_mem ddtab = bc_test_upload(ctx, gtab, NBH * sizeof(float));
    bc_karg a1[] = {KARG(ddiag), KARG(ddz), KARG(B), KARG(NH), KARG(T)};
    assert_int_equal(bc_kernel_run(ctx, kdiag, "rel_position_bias_bwd_diag", a1, 5,
                                   (size_t)NH * (2 * T - 1), 64), BERTCL_OK);
    bc_karg a2[] = {KARG(ddtab), KARG(ddiag), KARG(NH), KARG(T)};
    assert_int_equal(bc_kernel_run(ctx, ktab, "rel_position_bias_bwd_table", a2, 4, NBH, 64),
                     BERTCL_OK);
    bc_test_download(ctx, ddtab, gtab, NBH * sizeof(float));
    snprintf(what, sizeof what, "rel_position_bias_bwd (%d, %d, %d, %d)", B, NH, T, T);
    /* float sums of up to B*T*T terms of size 1 on the device, double in the reference */
    assert_true(bc_check_close(what, gtab, gtab_want, NBH, 1e-5f * (float)T, 1e-5f, seed));
    clReleaseMemObject(ddtab);
    clReleaseMemObject(ddiag);
    clReleaseMemObject(ddz);
    free(gtab_want);
    free(gtab);
    free(dz);
    clReleaseMemObject(dbias);
    clReleaseMemObject(dtab);
    clReleaseMemObject(dpos);
    clReleaseMemObject(dids);
    free(bwant);
    free(bias);
    free(table);
    free(want);
    free(pos);
    free(ids);
  }
  clReleaseKernel(ktab);
  clReleaseKernel(kdiag);
  clReleaseKernel(kbias);
  clReleaseKernel(kpos);
  clReleaseProgram(prog);
  bertcl_ctx_free(ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* Training steps against transformers (tests/gen/gen_family_train_fixtures.py): one batch's loss,
 * logits and every parameter's gradient, then three AdamW steps of two accumulated micro-batches
 * with clipping and the linear schedule, every parameter after them. */

/* A copy of w whose tensors (those bc_family_params lists) live in one flat buffer. */
typedef struct {
  bc_weights w;
  bc_layer_weights *layers;
  bc_param *p;
  int n;
  size_t *off, total;
  float *flat;
} flat_view;

static void view_bind(flat_view *v, const bc_config *cfg, const bc_weights *src, int K, int copy) {
  memset(v, 0, sizeof *v);
  v->w = *src;
  int L = cfg->num_layers;
  v->layers = malloc((size_t)L * sizeof *v->layers);
  assert_non_null(v->layers);
  memcpy(v->layers, src->layers, (size_t)L * sizeof *v->layers);
  v->w.layers = v->layers;
  v->n = bc_family_params(cfg, &v->w, K, NULL, 0);
  assert_true(v->n > 0);
  v->p = calloc((size_t)v->n, sizeof *v->p);
  v->off = calloc((size_t)v->n, sizeof *v->off);
  assert_true(v->p && v->off);
  assert_int_equal(bc_family_params(cfg, &v->w, K, v->p, v->n), v->n);
  for (int i = 0; i < v->n; i++) {
    v->off[i] = v->total;
    v->total += (size_t)v->p[i].shape[0] * (size_t)(v->p[i].ndim == 2 ? v->p[i].shape[1] : 1);
  }
  v->flat = calloc(v->total, sizeof(float));
  assert_non_null(v->flat);
  for (int i = 0; i < v->n; i++) {
    size_t numel = (i + 1 < v->n ? v->off[i + 1] : v->total) - v->off[i];
    if (copy) memcpy(v->flat + v->off[i], *v->p[i].slot, numel * sizeof(float));
    *v->p[i].slot = v->flat + v->off[i];
  }
  if (cfg->head == BC_CLS_HEAD_POOLER && v->w.cls_w) { /* BERT: the pooler is the head */
    v->w.head_w = v->w.pool_w;
    v->w.head_b = v->w.pool_b;
  }
}

static void view_free(flat_view *v) {
  free(v->flat);
  free(v->off);
  free(v->p);
  free(v->layers);
}

static size_t view_numel(const flat_view *v, int i) {
  return (i + 1 < v->n ? v->off[i + 1] : v->total) - v->off[i];
}

typedef struct {
  const char *name; /* folder and fixture */
  ref_task task;
  const char *key;  /* prefix of the loss, logits and grad.* keys ("cls." in BERT's fixture) */
} train_case;

/* The training fixtures: the families' (tests/gen/gen_family_train_fixtures.py), then BERT's
 * (tests/gen/gen_train_fixtures.py: it holds its classifier), which test_family_training_step
 * alone reads. */
static const train_case train_cases[] = {{"tiny-roberta", REF_TASK_SEQUENCE, ""},
                                         {"tiny-distilbert", REF_TASK_SEQUENCE, ""},
                                         {"tiny-mpnet", REF_TASK_SEQUENCE, ""},
                                         {"tiny-camembert", REF_TASK_TOKEN, ""},
                                         {"tiny-bert", REF_TASK_SEQUENCE, "cls."}};
#define N_TRAIN_CASES (sizeof train_cases / sizeof train_cases[0])
#define N_FAMILY_TRAIN_CASES (N_TRAIN_CASES - 1)

/* A training fixture's model and batch. */
typedef struct {
  test_model tm;
  bc_st_file *fx;
  int32_t *ids, *mask, *types, *labels; /* (B, T), (B, T), (B, T) or NULL, (rows) */
  int B, T, K, seq; /* K from the fixture's logits; seq: a sequence task */
  size_t BT, rows;  /* rows: B (sequence) or B*T (token) */
} train_batch;

static void train_batch_open(train_batch *tb, const train_case *tc) {
  int bert = !strcmp(tc->name, "tiny-bert");
  char dir[1024], rel[256], key[96];
  if (bert)
    bc_test_data_path(dir, sizeof dir, "tiny-bert");
  else
    family_dir(dir, sizeof dir, tc->name);
  model_open(&tb->tm, dir);
  if (bert)
    snprintf(rel, sizeof rel, "tiny-train-ref.safetensors");
  else
    snprintf(rel, sizeof rel, "families/%s-train-ref.safetensors", tc->name);
  bc_st_file *fx = tb->fx = bc_test_fixture_open(rel);
  int64_t shape[2];
  tb->ids = bc_test_fixture_i32(fx, "input_ids", 0, shape);
  tb->B = (int)shape[0], tb->T = (int)shape[1], tb->seq = tc->task == REF_TASK_SEQUENCE;
  tb->BT = (size_t)tb->B * tb->T, tb->rows = tb->seq ? (size_t)tb->B : tb->BT;
  tb->mask = bc_test_fixture_i32(fx, "attention_mask", tb->BT, NULL);
  tb->types = has(fx, "token_type_ids") ? bc_test_fixture_i32(fx, "token_type_ids", tb->BT, NULL)
                                        : NULL;
  tb->labels = bc_test_fixture_i32(fx, "labels", tb->rows, NULL);
  snprintf(key, sizeof key, "%slogits", tc->key);
  const bc_st_tensor *lt = bc_st_find(fx, key);
  assert_non_null(lt);
  tb->K = (int)lt->shape[lt->ndim - 1];
}

static void train_batch_close(train_batch *tb) {
  free(tb->labels);
  free(tb->types);
  free(tb->mask);
  free(tb->ids);
  bc_test_fixture_close(tb->fx);
  model_close(&tb->tm);
}

static void test_family_training_step(void **state) {
  (void)state;
  /* BERT's training fixture (tests/gen/gen_train_fixtures.py) holds its classifier: the same
   * schedule, checked against transformers too */
  int ok = 1;
  for (size_t ci = 0; ci < N_TRAIN_CASES; ci++) {
    const train_case *tc = &train_cases[ci];
    int bert = !strcmp(tc->name, "tiny-bert");
    char key[96];
    train_batch tb;
    train_batch_open(&tb, tc);
    const bc_config *cfg = &tb.tm.cfg;
    int B = tb.B, T = tb.T, K = tb.K;
    int32_t *ids = tb.ids, *mask = tb.mask, *types = tb.types, *labels = tb.labels;
    float *cls_w = NULL, *cls_b = NULL;
    if (bert) { /* BertForSequenceClassification: the pooler and the fixture's classifier */
      cls_w = bc_test_fixture_f32(tb.fx, "cls.classifier.weight", (size_t)K * cfg->hidden_size);
      cls_b = bc_test_fixture_f32(tb.fx, "cls.classifier.bias", (size_t)K);
      tb.tm.w.cls_w = cls_w, tb.tm.w.cls_b = cls_b;
      tb.tm.w.head_w = tb.tm.w.pool_w, tb.tm.w.head_b = tb.tm.w.pool_b;
    }

    flat_view pv, gv, mv, vv;
    view_bind(&pv, cfg, &tb.tm.w, K, 1);
    view_bind(&gv, cfg, &tb.tm.w, K, 0);
    /* every tensor transformers trains has a gradient here, and the Trainer's no-decay group is
     * the table's */
    const char *no_decay = bc_st_metadata(tb.fx, "no_decay"),
               *params = bc_st_metadata(tb.fx, "parameters");
    assert_true(no_decay && (params || bert));
    int nparams = 0;
    for (const char *q = params; q && (q = strchr(q, '"')); q = strchr(q + 1, '"') + 1) nparams++;
    if (params && nparams != pv.n) {
      printf("%s: transformers trains %d tensors, bertcl lists %d\n", tc->name, nparams, pv.n);
      ok = 0;
    }
    for (int i = 0; i < pv.n; i++) {
      char quoted[200];
      snprintf(quoted, sizeof quoted, "\"%s\"", pv.p[i].name);
      if (params && !strstr(params, quoted)) {
        printf("%s: %s is not a parameter of the task model\n", tc->name, pv.p[i].name);
        ok = 0;
      }
      if (pv.p[i].decay != !strstr(no_decay, quoted)) {
        printf("%s: %s decay %d, the Trainer's %d\n", tc->name, pv.p[i].name, pv.p[i].decay,
               !strstr(no_decay, quoted));
        ok = 0;
      }
    }

    /* one forward and backward on the whole batch */
    double loss = 0.0;
    float *logits = malloc(tb.rows * K * sizeof(float));
    assert_non_null(logits);
    int st = ref_task_fwd_bwd(cfg, &pv.w, tc->task, K, ids, types, mask, labels, NULL, B, T, NULL,
                              1.0f, &gv.w, &loss, logits);
    if (st != BERTCL_OK) fail_msg("ref_task_fwd_bwd %s: %s", tc->name, bertcl_last_error(NULL));
    snprintf(key, sizeof key, "%sloss", tc->key);
    float *want_loss = bc_test_fixture_f32(tb.fx, key, 1);
    printf("%s (%s head, K=%d, B=%d T=%d): loss %.7f vs transformers %.7f\n", tc->name,
           tb.seq ? "sequence" : "token", K, B, T, loss, (double)want_loss[0]);
    if (fabs(loss - want_loss[0]) > 1e-5 * (1.0 + fabs(want_loss[0]))) ok = 0;
    snprintf(key, sizeof key, "%slogits", tc->key);
    compare(tb.fx, tc->name, key, logits, tb.rows * K, 1e-5f, &ok);
    double worst = 0.0;
    for (int i = 0; i < gv.n; i++) {
      char name[200];
      snprintf(name, sizeof name, "%sgrad.%s", tc->key, gv.p[i].name);
      size_t numel = view_numel(&gv, i);
      float *want = bc_test_fixture_f32(tb.fx, name, numel);
      if (!bc_check_close(name, gv.flat + gv.off[i], want, numel, 2e-5f, 1e-4f, 0)) ok = 0;
      double d = bc_max_abs_diff(gv.flat + gv.off[i], want, numel);
      if (d > worst) worst = d;
      free(want);
    }
    printf("  every gradient (%d tensors): max |ref - transformers| = %.3g\n", gv.n, worst);

    /* three AdamW steps, two micro-batches each (the recipe in the fixture's metadata) */
    view_bind(&mv, cfg, &tb.tm.w, K, 0);
    view_bind(&vv, cfg, &tb.tm.w, K, 0);
    float *wl = bc_test_fixture_f32(tb.fx, "adamw.loss", 3),
          *wn = bc_test_fixture_f32(tb.fx, "adamw.grad_norm", 3);
    float *wlr = bc_test_fixture_f32(tb.fx, "adamw.lr", 3);
    int mb = B / 2;
    for (int step = 0; step < 3; step++) {
      memset(gv.flat, 0, gv.total * sizeof(float));
      double total = 0.0;
      for (int j = 0; j < 2; j++) {
        size_t r0 = (size_t)j * mb * T;
        double lj = 0.0;
        st = ref_task_fwd_bwd(cfg, &pv.w, tc->task, K, ids + r0, types ? types + r0 : NULL,
                              mask + r0, labels + (tb.seq ? (size_t)j * mb : r0), NULL, mb, T, NULL,
                              0.5f, &gv.w, &lj, NULL);
        assert_int_equal(st, BERTCL_OK);
        total += lj / 2;
      }
      double norm = ref_clip_grad_norm(gv.flat, gv.total, 0.25f);
      float lr = bc_lr_linear(step, 1, 3, 1e-3f);
      for (int i = 0; i < pv.n; i++)
        ref_adamw_update(pv.flat + pv.off[i], gv.flat + gv.off[i], mv.flat + mv.off[i],
                         vv.flat + vv.off[i], view_numel(&pv, i), lr, 0.9f, 0.999f, 1e-8f,
                         pv.p[i].decay ? 0.01f : 0.0f, step + 1);
      printf("  AdamW step %d: loss %.7f (%.7f) grad norm %.6f (%.6f) lr %.3g (%.3g)\n", step,
             total, (double)wl[step], norm, (double)wn[step], (double)lr, (double)wlr[step]);
      if (fabs(total - wl[step]) > 1e-5 * (1.0 + fabs(wl[step])) ||
          fabs(norm - wn[step]) > 1e-4 * (1.0 + fabs(wn[step])) || fabsf(lr - wlr[step]) > 1e-9f)
        ok = 0;
    }
    worst = 0.0;
    for (int i = 0; i < pv.n; i++) {
      char name[200];
      snprintf(name, sizeof name, "adamw.%s", pv.p[i].name);
      size_t numel = view_numel(&pv, i);
      float *want = bc_test_fixture_f32(tb.fx, name, numel);
      const char *kb = bc_family_get(cfg->family)->names.k_b;
      size_t nl = strlen(pv.p[i].name), kl = strlen(kb);
      if (nl >= kl && strcmp(pv.p[i].name + nl - kl, kb) == 0) {
        /* the key bias's gradient is zero in exact arithmetic (softmax ignores a shift shared
         * by every key): both sides hold rounding noise, which Adam turns into steps of about
         * +-lr; only the size of the move is checked, at most the summed learning rates */
        if (!bc_check_close(name, pv.flat + pv.off[i], want, numel, 3e-3f, 0, 0)) ok = 0;
        free(want);
        continue;
      }
      if (!bc_check_close(name, pv.flat + pv.off[i], want, numel, 1e-5f, 1e-4f, 0)) ok = 0;
      double d = bc_max_abs_diff(pv.flat + pv.off[i], want, numel);
      if (d > worst) worst = d;
      free(want);
    }
    printf("  every parameter after 3 steps (key biases apart): max |ref - transformers| = %.3g\n",
           worst);
    free(wlr);
    free(wn);
    free(wl);
    free(want_loss);
    free(cls_b);
    free(cls_w);
    free(logits);
    view_free(&vv);
    view_free(&mv);
    view_free(&gv);
    view_free(&pv);
    train_batch_close(&tb);
  }
  assert_true(ok);
}

/* With dropout on every site (p 0.1; masks fixed by the seed, so the loss is a smooth function
 * of the parameters), the training reference's gradients against central differences of its own
 * loss, for elements of every tensor the families differ in (positions, the relative position
 * bias, the head's dense layer and classifier) and of a layer's weights. */
static void test_family_training_dropout_fd(void **state) {
  (void)state;
  int ok = 1;
  for (size_t ci = 0; ci < N_FAMILY_TRAIN_CASES; ci++) {
    const train_case *tc = &train_cases[ci];
    train_batch tb;
    train_batch_open(&tb, tc);
    const bc_config *cfg = &tb.tm.cfg;
    int B = tb.B, T = tb.T, K = tb.K, L = cfg->num_layers;
    int32_t *ids = tb.ids, *mask = tb.mask, *labels = tb.labels;
    ref_dropout sites[REF_FWD_DROP_SITES(2) + 2];
    assert_int_equal(L, 2);
    for (int k = 0; k < REF_FWD_DROP_SITES(2) + 2; k++)
      sites[k] = (ref_dropout){0.1f, 99, 3, (uint32_t)(k + 1)};
    ref_task_dropout drop = {sites, &sites[REF_FWD_DROP_SITES(2)], &sites[REF_FWD_DROP_SITES(2) + 1]};
    flat_view pv, gv;
    view_bind(&pv, cfg, &tb.tm.w, K, 1);
    view_bind(&gv, cfg, &tb.tm.w, K, 0);
    double loss0 = 0.0, nodrop = 0.0;
    assert_int_equal(ref_task_fwd_bwd(cfg, &pv.w, tc->task, K, ids, NULL, mask, labels, NULL, B, T,
                                      &drop, 1.0f, &gv.w, &loss0, NULL), BERTCL_OK);
    assert_int_equal(ref_task_fwd_bwd(cfg, &pv.w, tc->task, K, ids, NULL, mask, labels, NULL, B, T,
                                      NULL, 1.0f, NULL, &nodrop, NULL), BERTCL_OK);
    assert_true(fabs(loss0 - nodrop) > 1e-4); /* the masks are on */
    bc_rng rng;
    bc_rng_seed(&rng, 5 + ci);
    int checked = 0;
    double worst = 0.0;
    for (int i = 0; i < pv.n; i++) {
      const char *nm = pv.p[i].name;
      int wanted = strstr(nm, "position_embeddings") || strstr(nm, "relative_attention_bias") ||
                   strstr(nm, "classifier") || strstr(nm, "layer.1.") || strstr(nm, "LayerNorm");
      if (!wanted) continue;
      size_t numel = view_numel(&pv, i);
      for (int r = 0; r < 4; r++) {
        size_t e = pv.off[i] + bc_rng_u32(&rng) % numel;
        if (strstr(nm, "position_embeddings")) /* a row the batch uses: position of token 1 */
          e = pv.off[i] + (size_t)(cfg->pos_kind == BC_POS_PADDED ? cfg->padding_idx + 2 : 1) *
                              cfg->hidden_size + bc_rng_u32(&rng) % cfg->hidden_size;
        float x0 = pv.flat[e];
        double h = 1e-3 * (fabs(x0) > 1.0 ? fabs(x0) : 1.0), lp = 0.0, lm = 0.0;
        pv.flat[e] = (float)(x0 + h);
        ref_task_fwd_bwd(cfg, &pv.w, tc->task, K, ids, NULL, mask, labels, NULL, B, T, &drop,
                         1.0f, NULL, &lp, NULL);
        pv.flat[e] = (float)(x0 - h);
        ref_task_fwd_bwd(cfg, &pv.w, tc->task, K, ids, NULL, mask, labels, NULL, B, T, &drop,
                         1.0f, NULL, &lm, NULL);
        pv.flat[e] = x0;
        double fd = (lp - lm) / ((double)(float)(x0 + h) - (double)(float)(x0 - h));
        double got = gv.flat[e], err = fabs(got - fd);
        if (err > worst) worst = err;
        if (err > 5e-4 + 1e-2 * fabs(fd)) {
          printf("%s %s[%zu]: finite difference %.6g, gradient %.6g\n", tc->name, nm,
                 e - pv.off[i], fd, got);
          ok = 0;
        }
        checked++;
      }
    }
    printf("%s with dropout: %d gradient elements vs central differences, max |diff| %.3g\n",
           tc->name, checked, worst);
    view_free(&gv);
    view_free(&pv);
    train_batch_close(&tb);
  }
  assert_true(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* The OpenCL trainer (train/trainer.h: the one device forward of forward.h, the backward, the
 * family's head from train/heads.c) against the same transformers fixtures: the layout is the task
 * model's named_parameters() in order with the Trainer's decay groups; one batch's loss, logits
 * and every gradient; three AdamW steps (two accumulated micro-batches, clipping, the linear
 * schedule) and every parameter after them; then, with dropout on every site, every gradient
 * against the plain-C reference with the same seed (transformers' dropout is torch's RNG). */

/* Per tensor: |got - want| <= a_rel * max|want| + 1e-7 * (max over every tensor) + rtol |want|;
 * returns the worst max|diff| / max|want| over the tensors whose gradient is not rounding noise. */
static double check_tensors(const bc_layout *lay, const float *got, float *const *want,
                            double a_rel, float rtol, const char *noise, const char *what,
                            int *ok) {
  double gmax = 0.0, worst = 0.0;
  const char *worst_name = "";
  for (int i = 0; i < lay->count; i++)
    for (size_t e = 0; e < lay->t[i].numel; e++)
      if (fabs(want[i][e]) > gmax) gmax = fabs(want[i][e]);
  for (int i = 0; i < lay->count; i++) {
    const bc_tensor *t = &lay->t[i];
    double mx = 0.0;
    for (size_t e = 0; e < t->numel; e++)
      if (fabs(want[i][e]) > mx) mx = fabs(want[i][e]);
    double d = bc_max_abs_diff(got + t->offset, want[i], t->numel);
    if (mx > 1e-7 * gmax && d / mx > worst) worst = d / mx, worst_name = t->name;
    char name[300];
    snprintf(name, sizeof name, "%s %s", what, t->name);
    /* a tensor whose gradient is zero in exact arithmetic (the key bias: softmax ignores a
     * shift shared by every key) holds rounding noise on both sides: an absolute bound */
    size_t nl = strlen(t->name), kl = strlen(noise);
    float atol = nl >= kl && !strcmp(t->name + nl - kl, noise) ? 2e-5f
                                                                : (float)(a_rel * mx + 1e-7 * gmax);
    if (!bc_check_close(name, got + t->offset, want[i], t->numel, atol, rtol, 0)) *ok = 0;
  }
  printf("  %s: worst tensor %s\n", what, worst_name);
  return worst;
}

static float **fixture_tensors(bc_st_file *fx, const bc_layout *lay, const char *prefix) {
  float **want = calloc((size_t)lay->count, sizeof *want);
  assert_non_null(want);
  for (int i = 0; i < lay->count; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, lay->t[i].name);
    want[i] = bc_test_fixture_f32(fx, name, lay->t[i].numel);
  }
  return want;
}

static void free_tensors(float **t, int n) {
  for (int i = 0; i < n; i++) free(t[i]);
  free(t);
}

static void test_family_device_training(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  int ok = 1;
  for (size_t ci = 0; ci < N_FAMILY_TRAIN_CASES; ci++) {
    const train_case *tc = &train_cases[ci];
    train_batch tb;
    train_batch_open(&tb, tc);
    const bc_config *cfg = &tb.tm.cfg;
    int B = tb.B, T = tb.T, K = tb.K;
    int32_t *ids = tb.ids, *mask = tb.mask, *types = tb.types, *labels = tb.labels;
    bc_head_kind head = tb.seq ? BC_HEAD_SEQUENCE : BC_HEAD_TOKEN;

    /* the layout: transformers' parameters (as a set: bertcl orders them by model.h's tables,
     * transformers by module registration) and the Trainer's decay groups */
    bc_layout lay;
    assert_int_equal(bc_layout_init(&lay, cfg, K, tb.seq), BERTCL_OK);
    json_error_t je;
    json_t *names = json_loads(bc_st_metadata(tb.fx, "parameters"), 0, &je);
    const char *no_decay = bc_st_metadata(tb.fx, "no_decay");
    assert_true(json_is_array(names) && no_decay);
    if (json_array_size(names) != (size_t)lay.count) {
      printf("%s: transformers trains %zu tensors, the layout has %d\n", tc->name,
             json_array_size(names), lay.count);
      ok = 0;
    }
    for (size_t j = 0; j < json_array_size(names); j++)
      if (bc_layout_find(&lay, json_string_value(json_array_get(names, j))) < 0) {
        printf("%s: %s is not in the layout\n", tc->name,
               json_string_value(json_array_get(names, j)));
        ok = 0;
      }
    for (int i = 0; i < lay.count; i++) {
      char quoted[200];
      snprintf(quoted, sizeof quoted, "\"%s\"", lay.t[i].name);
      if (lay.t[i].decay != !strstr(no_decay, quoted)) {
        printf("%s: %s decay %d, the Trainer's %d\n", tc->name, lay.t[i].name, lay.t[i].decay,
               !strstr(no_decay, quoted));
        ok = 0;
      }
    }
    json_decref(names);
    float *flat = calloc(lay.total, sizeof(float)), *grad = calloc(lay.total, sizeof(float));
    float *rgrad = calloc(lay.total, sizeof(float)), *logits = malloc(tb.rows * K * sizeof(float));
    assert_true(flat && grad && rgrad && logits);
    assert_int_equal(bc_weights_gather(flat, &lay, &tb.tm.w), BERTCL_OK);
    bc_trainer *tr = NULL;
    if (bc_trainer_create(ctx, cfg, head, K, flat, 0, &tr) != BERTCL_OK)
      fail_msg("bc_trainer_create %s: %s", tc->name, bertcl_last_error(ctx));

    /* one batch */
    double loss = 0.0;
    assert_int_equal(bc_trainer_zero_grad(tr), BERTCL_OK);
    if (bc_trainer_fwd_bwd(tr, ids, types, mask, labels, NULL, B, T, NULL, 1.0f, 1, &loss,
                           logits) != BERTCL_OK)
      fail_msg("bc_trainer_fwd_bwd %s: %s", tc->name, bertcl_last_error(ctx));
    assert_int_equal(bc_trainer_read(tr, BC_TR_GRADS, grad), BERTCL_OK);
    float *want_loss = bc_test_fixture_f32(tb.fx, "loss", 1);
    if (fabs(loss - want_loss[0]) > 1e-5 * (1.0 + fabs(want_loss[0]))) ok = 0;
    float *want_logits = bc_test_fixture_f32(tb.fx, "logits", tb.rows * K);
    double dl = bc_max_abs_diff(logits, want_logits, tb.rows * K);
    if (!bc_check_close("trainer logits", logits, want_logits, tb.rows * K, 1e-5f, 0, 0)) ok = 0;
    float **wg = fixture_tensors(tb.fx, &lay, "grad.");
    char what[400];
    snprintf(what, sizeof what, "trainer %s grad vs transformers", tc->name);
    const char *kb = bc_family_get(cfg->family)->names.k_b;
    double wrel = check_tensors(&lay, grad, wg, 2e-5, 1e-4f, kb, what, &ok);
    printf("%s (OpenCL trainer, %s head, K=%d, B=%d T=%d): loss %.7f vs transformers %.7f, logits "
           "max |diff| %.3g; %d gradients, max over tensors of max |diff| / max |grad| = %.3g\n",
           tc->name, tb.seq ? "sequence" : "token", K, B, T, loss, (double)want_loss[0], dl,
           lay.count, wrel);
    free_tensors(wg, lay.count);

    /* three AdamW steps of two micro-batches */
    float *wl = bc_test_fixture_f32(tb.fx, "adamw.loss", 3),
          *wn = bc_test_fixture_f32(tb.fx, "adamw.grad_norm", 3);
    float *wlr = bc_test_fixture_f32(tb.fx, "adamw.lr", 3);
    bc_adamw_cfg ac = {0.9f, 0.999f, 1e-8f, 0.01f};
    int mb = B / 2;
    for (int step = 0; step < 3; step++) {
      assert_int_equal(bc_trainer_zero_grad(tr), BERTCL_OK);
      double total = 0.0, norm = 0.0;
      for (int j = 0; j < 2; j++) {
        size_t r0 = (size_t)j * mb * T;
        double lj = 0.0;
        if (bc_trainer_fwd_bwd(tr, ids + r0, types ? types + r0 : NULL, mask + r0,
                               labels + (tb.seq ? (size_t)j * mb : r0), NULL, mb, T, NULL, 0.5f, 1,
                               &lj, NULL) != BERTCL_OK)
          fail_msg("%s step %d: %s", tc->name, step, bertcl_last_error(ctx));
        total += lj / 2;
      }
      float lr = bc_lr_linear(step, 1, 3, 1e-3f);
      assert_int_equal(bc_trainer_step(tr, &ac, lr, 0.25f, step + 1, &norm), BERTCL_OK);
      printf("  AdamW step %d: loss %.7f (%.7f) grad norm %.6f (%.6f) lr %.3g (%.3g)\n", step,
             total, (double)wl[step], norm, (double)wn[step], (double)lr, (double)wlr[step]);
      if (fabs(total - wl[step]) > 1e-5 * (1.0 + fabs(wl[step])) ||
          fabs(norm - wn[step]) > 1e-4 * (1.0 + fabs(wn[step])) || fabsf(lr - wlr[step]) > 1e-9f)
        ok = 0;
    }
    float *params = malloc(lay.total * sizeof(float));
    assert_non_null(params);
    assert_int_equal(bc_trainer_read(tr, BC_TR_PARAMS, params), BERTCL_OK);
    double worst = 0.0;
    for (int i = 0; i < lay.count; i++) {
      const bc_tensor *t = &lay.t[i];
      char name[200];
      snprintf(name, sizeof name, "adamw.%s", t->name);
      float *want = bc_test_fixture_f32(tb.fx, name, t->numel);
      size_t nl = strlen(t->name), kl = strlen(kb);
      /* the key bias: rounding noise on both sides, which Adam turns into steps of about
       * +-lr (see test_family_training_step) */
      int key_bias = nl >= kl && strcmp(t->name + nl - kl, kb) == 0;
      snprintf(what, sizeof what, "trainer %s %s", tc->name, name);
      if (!bc_check_close(what, params + t->offset, want, t->numel, key_bias ? 3e-3f : 1e-5f,
                          key_bias ? 0.0f : 1e-4f, 0))
        ok = 0;
      double d = bc_max_abs_diff(params + t->offset, want, t->numel);
      if (!key_bias && d > worst) worst = d;
      free(want);
    }
    printf("  every parameter after 3 steps (key biases apart): max |trainer - transformers| = "
           "%.3g\n", worst);

    /* dropout on every site: the device against the reference, same seed and step */
    bc_dropout_cfg drop = {0.1f, 0.1f, 0.1f, 77, 5};
    assert_int_equal(bc_trainer_write(tr, BC_TR_PARAMS, flat), BERTCL_OK);
    assert_int_equal(bc_trainer_zero_grad(tr), BERTCL_OK);
    double dloss = 0.0, rloss = 0.0;
    assert_int_equal(bc_trainer_fwd_bwd(tr, ids, types, mask, labels, NULL, B, T, &drop, 1.0f, 1,
                                        &dloss, NULL), BERTCL_OK);
    assert_int_equal(bc_trainer_read(tr, BC_TR_GRADS, grad), BERTCL_OK);
    bc_weights w;
    bc_grads g;
    assert_int_equal(bc_weights_bind(&w, &lay, flat), BERTCL_OK);
    assert_int_equal(bc_grads_bind(&g, &lay, rgrad), BERTCL_OK);
    int st = tb.seq ? ref_cls_fwd_bwd(cfg, &w, K, ids, types, mask, labels, NULL, B, T, &drop, 1.0f,
                                   &g, &rloss, NULL)
                 : ref_tok_fwd_bwd(cfg, &w, K, ids, types, mask, labels, B, T, &drop, 1.0f, &g,
                                   &rloss, NULL);
    assert_int_equal(st, BERTCL_OK);
    float **rg = calloc((size_t)lay.count, sizeof *rg);
    assert_non_null(rg);
    for (int i = 0; i < lay.count; i++) {
      rg[i] = malloc(lay.t[i].numel * sizeof(float));
      memcpy(rg[i], rgrad + lay.t[i].offset, lay.t[i].numel * sizeof(float));
    }
    snprintf(what, sizeof what, "trainer %s grad (dropout) vs the reference", tc->name);
    wrel = check_tensors(&lay, grad, rg, 1e-5, 1e-4f, kb, what, &ok);
    if (fabs(dloss - rloss) > 1e-5 * (1.0 + fabs(rloss))) ok = 0;
    printf("  dropout on: loss %.7f (reference %.7f, without dropout %.7f); gradients vs the "
           "reference: max over tensors of max |diff| / max |grad| = %.3g\n", dloss, rloss, loss,
           wrel);
    if (fabs(dloss - loss) < 1e-4) ok = 0; /* the masks are on */
    free_tensors(rg, lay.count);
    bc_grads_unbind(&g);
    bc_weights_unbind(&w);
    free(params);
    free(wlr);
    free(wn);
    free(wl);
    free(want_logits);
    free(want_loss);
    bc_trainer_free(tr);
    free(logits);
    free(rgrad);
    free(grad);
    free(flat);
    bc_layout_free(&lay);
    train_batch_close(&tb);
  }
  bertcl_ctx_free(ctx);
  assert_true(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* Real weights (bench/real_weights.sh): $BERTCL_REAL_MODEL (a model folder) and
 * $BERTCL_REAL_FIXTURE (texts, and sentence-transformers' input_ids, attention_mask and
 * embeddings); skipped without them. Each text goes through bertcl's tokenizer (its ids must be
 * sentence-transformers'), alone and unpadded through the reference forward, then the folder's
 * sentence-transformers pooling and Normalize. */

static void test_real_weights(void **state) {
  (void)state;
  const char *dir = getenv("BERTCL_REAL_MODEL"), *fix = getenv("BERTCL_REAL_FIXTURE");
  if (!dir || !*dir || !fix || !*fix) {
    printf("no $BERTCL_REAL_MODEL / $BERTCL_REAL_FIXTURE (bench/real_weights.sh sets them)\n");
    skip();
  }
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  bertcl_tokenizer *tok = NULL;
  if (bertcl_tokenizer_load(&tok, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  bc_st_file *fx = NULL;
  bc_err err = {0};
  if (bc_st_open(&err, fix, &fx) != BERTCL_OK) fail_msg("%s", err.msg);
  int64_t shape[2];
  int32_t *ids = bc_test_fixture_i32(fx, "input_ids", 0, shape);
  int N = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  int32_t *mask = bc_test_fixture_i32(fx, "attention_mask", (size_t)N * T, NULL);
  float *want = bc_test_fixture_f32(fx, "embeddings", (size_t)N * C);
  const char *texts_json = bc_st_metadata(fx, "texts");
  assert_non_null(texts_json);
  json_t *texts = json_loads(texts_json, 0, NULL);
  assert_true(json_is_array(texts) && (int)json_array_size(texts) == N);
  float *got = malloc((size_t)N * C * sizeof(float)); /* (N, C) */
  assert_non_null(got);
  assert_true(cfg->st_pooling != 0);
  double min_cos = 1.0, max_diff = 0.0;
  int same_ids = 0;
  for (int n = 0; n < N; n++) {
    /* the text through bertcl's tokenizer, checked against sentence-transformers' ids */
    const char *text = json_string_value(json_array_get(texts, (size_t)n));
    bertcl_encoding *e = NULL;
    assert_int_equal(bertcl_tokenizer_encode(tok, text, strlen(text), NULL, 0, NULL, &e),
                     BERTCL_OK);
    char what[64];
    snprintf(what, sizeof what, "sentence %d", n);
    same_ids += ids_match(what, e, ids + (size_t)n * T, T, mask + (size_t)n * T, -1);
    int len = (int)e->n;
    float *hidden = malloc((size_t)(L + 1) * len * C * sizeof(float)); /* (L+1, 1*len, C) */
    assert_non_null(hidden);
    assert_int_equal(ref_model_fwd(cfg, &tm.w, e->ids, e->type_ids, NULL, 1, len, hidden, NULL),
                     BERTCL_OK);
    float *v = got + (size_t)n * C;
    ref_pool_fwd(v, hidden + (size_t)L * len * C, NULL, cfg->st_pooling, 1, len, C);
    if (cfg->st_normalize) ref_l2norm_fwd(v, v, 1, C);
    free(hidden);
    bertcl_encoding_free(e);
    const float *w = want + (size_t)n * C;
    double dot = 0, na = 0, nb = 0;
    for (int c = 0; c < C; c++) {
      dot += (double)v[c] * w[c];
      na += (double)v[c] * v[c];
      nb += (double)w[c] * w[c];
      double d = fabs((double)v[c] - w[c]);
      if (d > max_diff) max_diff = d;
    }
    double cosv = dot / sqrt(na * nb);
    if (cosv < min_cos) min_cos = cosv;
  }
  printf("%s (%s, %d layers, hidden %d): %d sentences; bertcl's token ids equal "
         "sentence-transformers' for %d; reference embeddings vs sentence-transformers: min "
         "cosine %.9f, max |diff| %.3g\n",
         dir, bc_family_name(cfg->family), L, C, N, same_ids, min_cos, max_diff);
  assert_int_equal(same_ids, N);
  assert_true(min_cos >= 0.99999);
  /* the OpenCL encoder on the padded batch (the same ids), the folder's pooling */
  bertcl_ctx *ctx = bc_test_ctx();
  if (ctx) {
    bc_encoder *enc = NULL;
    if (bc_encoder_create(ctx, tm.m, &enc) != BERTCL_OK) fail_msg("%s", bertcl_last_error(ctx));
    int last = L;
    assert_int_equal(bc_encoder_forward(enc, ids, NULL, mask, N, T, &last, 1), BERTCL_OK);
    assert_int_equal(bc_encoder_read_pooled(enc, cfg->st_pooling, BC_COMBINE_CONCAT,
                                            cfg->st_normalize, got), BERTCL_OK);
    double dmin = 1.0, dmax = 0.0;
    for (int n = 0; n < N; n++) {
      const float *v = got + (size_t)n * C, *w = want + (size_t)n * C;
      double dot = 0, na = 0, nb = 0;
      for (int c = 0; c < C; c++) {
        dot += (double)v[c] * w[c], na += (double)v[c] * v[c], nb += (double)w[c] * w[c];
        if (fabs((double)v[c] - w[c]) > dmax) dmax = fabs((double)v[c] - w[c]);
      }
      if (dot / sqrt(na * nb) < dmin) dmin = dot / sqrt(na * nb);
    }
    printf("OpenCL encoder (%s), batch %d x %d: min cosine %.9f, max |diff| %.3g\n",
           bertcl_ctx_device(ctx)->name, N, T, dmin, dmax);
    assert_true(dmin >= 0.99999);
    bc_encoder_free(enc);
    bertcl_ctx_free(ctx);
  }
  json_decref(texts);
  free(got);
  free(want);
  free(mask);
  free(ids);
  bc_st_close(fx);
  bertcl_tokenizer_free(tok);
  model_close(&tm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_family_load),
      cmocka_unit_test(test_family_hidden_states),
      cmocka_unit_test(test_family_real_text),
      cmocka_unit_test(test_family_padding_invariance),
      cmocka_unit_test(test_rel_position_buckets),
      cmocka_unit_test(test_sinusoidal_positions),
      cmocka_unit_test(test_encoder_fwd_keeps_activations),
      cmocka_unit_test(test_family_errors),
      cmocka_unit_test(test_family_device),
      cmocka_unit_test(test_position_kernels),
      cmocka_unit_test(test_family_training_step),
      cmocka_unit_test(test_family_training_dropout_fd),
      cmocka_unit_test(test_family_device_training),
      cmocka_unit_test(test_real_weights),
  };
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
