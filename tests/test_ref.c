/* The plain-C reference encoder (src/ref) against hand-checked values and against the
 * transformers / sentence-transformers fixtures written by tests/gen/gen_ref_fixtures.py. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "model/model.h"
#include "model/safetensors.h"
#include "ref/ref.h"

/* ------------------------------------------------------------------------------------------ */
/* Ops: hand-checked cases and edge cases                                                      */

static void test_softmax_edges(void **state) {
  (void)state;
  /* T = 1: one real key gets probability 1 */
  float s1[1] = {123.0f};
  int32_t m1[1] = {1};
  ref_softmax_fwd(s1, m1, 0.5f, 1, 1, 1);
  assert_true(s1[0] == 1.0f);

  /* hand-computed, (1, 1, 4, 4), every query row the scores (1, 2, 3, 100) * 0.5 with key 3
   * masked -> softmax(0.5, 1, 1.5), 0 */
  float s[4 * 4];
  for (int i = 0; i < 4; i++) {
    s[i * 4 + 0] = 1.0f;
    s[i * 4 + 1] = 2.0f;
    s[i * 4 + 2] = 3.0f;
    s[i * 4 + 3] = 100.0f;
  }
  int32_t m[4] = {1, 1, 1, 0};
  ref_softmax_fwd(s, m, 0.5f, 1, 1, 4);
  double e0 = exp(0.5), e1 = exp(1.0), e2 = exp(1.5), z = e0 + e1 + e2;
  float want[4] = {(float)(e0 / z), (float)(e1 / z), (float)(e2 / z), 0.0f};
  for (int i = 0; i < 4; i++) {
    assert_true(bc_check_close("softmax (1,1,4,4) masked key", s + i * 4, want, 4, 1e-7f, 0, 0));
    assert_true(s[i * 4 + 3] == 0.0f); /* a masked key gets exactly nothing */
  }

  /* large scores do not overflow: (1, 1, 2, 2), rows softmax(1000, 999) */
  float big[2 * 2] = {1000.0f, 999.0f, 1000.0f, 999.0f};
  ref_softmax_fwd(big, NULL, 1.0f, 1, 1, 2);
  float wbig[2] = {(float)(1.0 / (1.0 + exp(-1.0))), (float)(exp(-1.0) / (1.0 + exp(-1.0)))};
  assert_true(bc_check_close("softmax (1,1,2,2) large", big, wbig, 2, 1e-7f, 0, 0));
  assert_true(bc_check_close("softmax (1,1,2,2) large", big + 2, wbig, 2, 1e-7f, 0, 0));

  /* a row whose keys are all masked: uniform over T (transformers' eager additive mask), never
   * NaN; per (b, h, i) rows of a (B=2, NH=1, T=3) block, batch 1 fully masked */
  float sc[2 * 3 * 3] = {0.1f, -2.0f, 3.0f, 1.0f, 1.0f, 1.0f, 5.0f, 0.0f, -5.0f,
                         0.1f, -2.0f, 3.0f, 1.0f, 1.0f, 1.0f, 5.0f, 0.0f, -5.0f};
  int32_t mm[2 * 3] = {1, 1, 0, 0, 0, 0};
  ref_softmax_fwd(sc, mm, 1.0f, 2, 1, 3);
  for (int i = 0; i < 3; i++) {
    float *r = sc + 9 + i * 3;
    float u[3] = {1.0f / 3, 1.0f / 3, 1.0f / 3};
    assert_true(bc_check_close("softmax fully masked row", r, u, 3, 1e-7f, 0, 0));
    float *r0 = sc + i * 3;
    assert_true(r0[2] == 0.0f);
    assert_true(fabsf(r0[0] + r0[1] - 1.0f) < 1e-6f);
  }
}

static void test_pool_edges(void **state) {
  (void)state;
  /* (B=2, T=3, C=2); sequence 0 has 2 real tokens, sequence 1 none */
  float h[2 * 3 * 2] = {1.0f, -4.0f, 3.0f, -2.0f, 50.0f, 60.0f,
                        7.0f, 8.0f,  9.0f, 10.0f, 11.0f, 12.0f};
  int32_t mask[2 * 3] = {1, 1, 0, 0, 0, 0};
  float out[2 * 2];

  ref_pool_fwd(out, h, mask, BC_POOL_MEAN, 2, 3, 2);
  float wmean[4] = {2.0f, -3.0f, 0.0f, 0.0f}; /* no real token: 0 / clamp(0, 1e-9) = 0 */
  assert_true(bc_check_close("pool mean (2,3,2)", out, wmean, 4, 0, 0, 0));

  ref_pool_fwd(out, h, mask, BC_POOL_MAX, 2, 3, 2);
  /* the padding position (50, 60) is larger but masked; no real token: -1e9 */
  float wmax[4] = {3.0f, -2.0f, -1e9f, -1e9f};
  assert_true(bc_check_close("pool max (2,3,2)", out, wmax, 4, 0, 0, 0));

  ref_pool_fwd(out, h, mask, BC_POOL_CLS, 2, 3, 2);
  float wcls[4] = {1.0f, -4.0f, 7.0f, 8.0f};
  assert_true(bc_check_close("pool cls (2,3,2)", out, wcls, 4, 0, 0, 0));

  /* T = 1 */
  float h1[3] = {-1.5f, 0.0f, 2.5f};
  int32_t m1[1] = {1};
  float o1[3];
  for (int mode = BC_POOL_CLS; mode <= BC_POOL_MAX; mode <<= 1) {
    ref_pool_fwd(o1, h1, m1, mode, 1, 1, 3);
    assert_true(bc_check_close("pool T=1 (1,1,3)", o1, h1, 3, 0, 0, (uint64_t)mode));
  }
}

static void test_l2norm_edges(void **state) {
  (void)state;
  float x[3 * 2] = {3.0f, 4.0f, 0.0f, 0.0f, 3e-14f, 4e-14f};
  float out[3 * 2];
  ref_l2norm_fwd(out, x, 3, 2);
  /* (3,4)/5; zero row stays zero; a row with norm 5e-14 < 1e-12 is divided by 1e-12 */
  float want[6] = {0.6f, 0.8f, 0.0f, 0.0f, 0.03f, 0.04f};
  assert_true(bc_check_close("l2norm (3,2)", out, want, 6, 1e-7f, 1e-6f, 0));
  ref_l2norm_fwd(x, x, 3, 2); /* in place */
  assert_true(bc_check_close("l2norm in place (3,2)", x, want, 6, 1e-7f, 1e-6f, 0));
  float one[1] = {-2.0f};
  ref_l2norm_fwd(one, one, 1, 1);
  assert_true(one[0] == -1.0f);
}

static void test_layernorm_hand(void **state) {
  (void)state;
  /* x = (1, 2, 3, 4): mean 2.5, biased variance 1.25 */
  float x[2 * 4] = {1.0f, 2.0f, 3.0f, 4.0f, 7.0f, 7.0f, 7.0f, 7.0f};
  float w[4] = {1.0f, 2.0f, 0.5f, -1.0f}, b[4] = {0.0f, 0.1f, -0.1f, 1.0f};
  float out[8], want[8];
  for (int k = 0; k < 2; k++) {
    float eps = k == 0 ? 1e-12f : 1.0f; /* the epsilon sits inside the sqrt */
    double rstd = 1.0 / sqrt(1.25 + (double)eps);
    for (int c = 0; c < 4; c++) want[c] = (float)((x[c] - 2.5) * rstd * w[c] + b[c]);
    for (int c = 0; c < 4; c++) want[4 + c] = b[c]; /* constant row: x - mean = 0 */
    ref_layernorm_fwd(out, x, w, b, eps, 2, 4);
    assert_true(bc_check_close("layernorm (2,4)", out, want, 8, 1e-6f, 0, (uint64_t)k));
  }
  /* bias + residual + LayerNorm: (x + bias) + residual == LayerNorm of the sum */
  float y[4] = {0.5f, 1.0f, 1.5f, 2.0f}, yb[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  float res[4] = {0.0f, 0.5f, 1.0f, 1.5f};
  ref_bias_residual_layernorm_fwd(out, y, yb, res, w, b, 1e-12f, 1, 4);
  ref_layernorm_fwd(want, x, w, b, 1e-12f, 1, 4);
  assert_true(bc_check_close("bias_residual_layernorm (1,4)", out, want, 4, 1e-6f, 0, 0));
}

static void test_act_values(void **state) {
  (void)state;
  /* torch.nn.functional.gelu(x) and gelu(x, approximate="tanh") in float64 */
  const float xs[4] = {-3.0f, -0.5f, 1.0f, 2.0f};
  const float gelu[4] = {-0.0040496941f, -0.15426877f, 0.84134475f, 1.9544997f};
  const float gelu_tanh[4] = {-0.0036373921f, -0.15428599f, 0.84119199f, 1.9545977f};
  for (int i = 0; i < 4; i++) {
    assert_true(fabsf(ref_act(xs[i], BC_ACT_GELU) - gelu[i]) < 1e-7f);
    assert_true(fabsf(ref_act(xs[i], BC_ACT_GELU_TANH) - gelu_tanh[i]) < 1e-7f);
    assert_true(ref_act(xs[i], BC_ACT_RELU) == (xs[i] > 0 ? xs[i] : 0.0f));
  }
  float v[2 * 2] = {0.0f, 1.0f, -1.0f, 0.5f}, bias[2] = {1.0f, -1.5f};
  ref_bias_act_fwd(v, bias, BC_ACT_GELU, 2, 2);
  float want[4] = {gelu[2], gelu[1], 0.0f, 0.0f};
  want[3] = ref_act(-1.0f, BC_ACT_GELU);
  assert_true(bc_check_close("bias_act gelu (2,2)", v, want, 4, 1e-7f, 0, 0));
}

static void test_linear_hand(void **state) {
  (void)state;
  /* N=5, IC=3, OC=5 exercises both the 4x4 blocks and the remainders */
  enum { N = 5, IC = 3, OC = 5 };
  float x[N * IC], w[OC * IC], bias[OC], out[N * OC], want[N * OC];
  for (int i = 0; i < N * IC; i++) x[i] = (float)(i % 7) - 3.0f;
  for (int i = 0; i < OC * IC; i++) w[i] = 0.25f * (float)((i * 5) % 11) - 1.0f;
  for (int o = 0; o < OC; o++) bias[o] = 0.5f * o;
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      float s = bias[o]; /* small integers and quarters: exact in fp32 */
      for (int i = 0; i < IC; i++) s += x[n * IC + i] * w[o * IC + i];
      want[n * OC + o] = s;
    }
  ref_linear_fwd(out, x, w, bias, N, IC, OC);
  assert_true(bc_check_close("linear (5,3)->(5,5)", out, want, N * OC, 0, 0, 0));
  ref_linear_fwd(out, x, w, NULL, N, IC, OC);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) want[n * OC + o] -= bias[o];
  assert_true(bc_check_close("linear no bias (5,3)->(5,5)", out, want, N * OC, 0, 0, 0));
}

static void test_attention_padding_t1(void **state) {
  (void)state;
  enum { T = 5, C = 8, NH = 2, R = 3 };
  uint64_t seed = 42;
  bc_rng rng;
  bc_rng_seed(&rng, seed);
  float q[T * C], k[T * C], v[T * C], out[T * C], out_r[R * C];
  float probs[NH * T * T];
  bc_rng_fill(&rng, q, T * C, -2.0f, 2.0f);
  bc_rng_fill(&rng, k, T * C, -2.0f, 2.0f);
  bc_rng_fill(&rng, v, T * C, -2.0f, 2.0f);
  /* padded (1, 5) with 3 real tokens vs the unpadded (1, 3): real rows identical */
  int32_t mask[T] = {1, 1, 1, 0, 0}, mask_r[R] = {1, 1, 1};
  ref_attention_fwd(out, probs, q, k, v, mask, 1, T, C, NH);
  ref_attention_fwd(out_r, NULL, q, k, v, mask_r, 1, R, C, NH);
  assert_true(bc_check_close("attention padded vs unpadded (1,3,8)", out, out_r, R * C, 0, 0, seed));
  for (int h = 0; h < NH; h++)
    for (int i = 0; i < T; i++) {
      const float *p = probs + ((size_t)h * T + i) * T;
      assert_true(p[3] == 0.0f && p[4] == 0.0f);
      assert_true(fabsf(p[0] + p[1] + p[2] - 1.0f) < 1e-6f);
    }
  /* head h of query i is sum_j p[h,i,j] v[j, head h] */
  for (int h = 0; h < NH; h++)
    for (int i = 0; i < T; i++)
      for (int c = 0; c < C / NH; c++) {
        double s = 0.0;
        for (int j = 0; j < T; j++) s += (double)probs[(h * T + i) * T + j] * v[j * C + h * (C / NH) + c];
        assert_true(fabs(s - out[i * C + h * (C / NH) + c]) < 1e-6);
      }
  /* T = 1: the context is v itself */
  ref_attention_fwd(out, NULL, q, k, v, mask, 1, 1, C, NH);
  assert_true(bc_check_close("attention T=1 (1,1,8)", out, v, C, 0, 0, seed));
}

/* ------------------------------------------------------------------------------------------ */
/* Whole model against transformers / sentence-transformers (tests/gen/gen_ref_fixtures.py)    */

/* The model under test. $BERTCL_TEST_REF_SABOTAGE deliberately breaks it, to show that these
 * tests catch such mistakes (each must then FAIL): "weight" adds 0.01 to one element of layer 0's
 * query weight, "eps" uses torch's default LayerNorm epsilon 1e-5 instead of config.json's,
 * "act" swaps erf GELU and its tanh approximation. */
typedef struct {
  bertcl_model *m;
  bc_config cfg;
  bc_weights w;
  bc_layer_weights *layers; /* (L) copy, when a weight is patched */
  float *q_w;               /* (C, C) patched copy */
} test_model;

static void model_open(test_model *tm, const char *dir) {
  memset(tm, 0, sizeof *tm);
  if (bertcl_model_load(&tm->m, dir) != BERTCL_OK)
    fail_msg("bertcl_model_load %s: %s", dir, bertcl_last_error(NULL));
  tm->cfg = *bc_model_config(tm->m);
  tm->w = *bc_model_weights(tm->m);
  const char *sab = getenv("BERTCL_TEST_REF_SABOTAGE");
  if (!sab || !*sab) return;
  int L = tm->cfg.num_layers, C = tm->cfg.hidden_size;
  if (!strcmp(sab, "weight")) {
    tm->layers = malloc((size_t)L * sizeof *tm->layers);
    tm->q_w = malloc((size_t)C * C * sizeof(float));
    assert_true(tm->layers && tm->q_w);
    memcpy(tm->layers, tm->w.layers, (size_t)L * sizeof *tm->layers);
    memcpy(tm->q_w, tm->w.layers[0].q_w, (size_t)C * C * sizeof(float));
    tm->q_w[(size_t)1 * C + 2] += 0.01f;
    tm->layers[0].q_w = tm->q_w;
    tm->w.layers = tm->layers;
  } else if (!strcmp(sab, "eps")) {
    tm->cfg.layer_norm_eps = 1e-5f;
  } else if (!strcmp(sab, "act")) {
    tm->cfg.act = tm->cfg.act == BC_ACT_GELU ? BC_ACT_GELU_TANH : BC_ACT_GELU;
  } else {
    fail_msg("BERTCL_TEST_REF_SABOTAGE=%s: want weight, eps or act", sab);
  }
  printf("SABOTAGED model (%s): this test must fail\n", sab);
}

static void model_close(test_model *tm) {
  free(tm->q_w);
  free(tm->layers);
  bertcl_model_free(tm->m);
}

/* Compares every hidden state (L+1, B*T, C) and returns the largest |diff| seen. */
static double check_hidden(bc_st_file *fx, const char *model, const char *prefix, const float *hidden,
                           int L, int B, int T, int C, float atol, int *ok) {
  size_t BTC = (size_t)B * T * C;
  double worst = 0.0;
  for (int l = 0; l <= L; l++) {
    char name[64], what[160];
    snprintf(name, sizeof name, "%shidden.%d", prefix, l);
    float *want = bc_test_fixture_f32(fx, name, BTC);
    double d = bc_max_abs_diff(hidden + (size_t)l * BTC, want, BTC);
    snprintf(what, sizeof what, "ref_model_fwd %s %s (%d,%d,%d) vs transformers", model, name, B, T,
             C);
    if (!bc_check_close(what, hidden + (size_t)l * BTC, want, BTC, atol, 0, 0)) *ok = 0;
    printf("  %-20s max |ref - transformers| = %.3g\n", name, d);
    if (d > worst) worst = d;
    free(want);
  }
  return worst;
}

static void tiny_paths(char *dir, size_t n) { bc_test_data_path(dir, n, "tiny-bert"); }

/* The fixture records the FNV-1a 64 of the model.safetensors it was made from: a regenerated
 * model with a stale fixture fails here with the fix, not with a wall of mismatches. */
static void check_fixture_model(bc_st_file *fx, const char *dir) {
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
    fail_msg("%s (FNV-1a %s) is not the model tiny-bert-ref.safetensors was made from (%s): "
             "rerun tests/gen/gen_ref_fixtures.py",
             path, got, want);
}

static void test_tiny_hidden_states(void **state) {
  (void)state;
  char dir[1024];
  tiny_paths(dir, sizeof dir);
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  const bc_weights *w = &tm.w;
  bc_st_file *fx = bc_test_fixture_open("tiny-bert-ref.safetensors");
  check_fixture_model(fx, dir);
  int64_t shape[2];
  int32_t *ids = bc_test_fixture_i32(fx, "input_ids", 0, shape);
  int B = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  int32_t *types = bc_test_fixture_i32(fx, "token_type_ids", (size_t)B * T, NULL);
  int32_t *mask = bc_test_fixture_i32(fx, "attention_mask", (size_t)B * T, NULL);
  size_t BTC = (size_t)B * T * C;
  float *hidden = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* (L+1, B*T, C) */
  float *pooled = malloc((size_t)B * C * sizeof(float));          /* (B, C) */
  assert_non_null(hidden);
  assert_non_null(pooled);
  assert_int_equal(ref_model_fwd(cfg, w, ids, types, mask, B, T, hidden, pooled), BERTCL_OK);

  int ok = 1;
  printf("tiny-bert B=%d T=%d:\n", B, T);
  check_hidden(fx, "tiny-bert", "", hidden, L, B, T, C, 1e-5f, &ok);
  float *want = bc_test_fixture_f32(fx, "pooler", (size_t)B * C);
  printf("  %-20s max |ref - transformers| = %.3g\n", "pooler",
         bc_max_abs_diff(pooled, want, (size_t)B * C));
  if (!bc_check_close("ref_model_fwd tiny-bert pooler (B,C) vs transformers", pooled, want, (size_t)B * C, 1e-5f, 0,
                      0))
    ok = 0;
  free(want);
  free(pooled);
  free(hidden);
  free(mask);
  free(types);
  free(ids);
  bc_test_fixture_close(fx);
  model_close(&tm);
  assert_true(ok);
}

/* Row 0 of the padded batch run alone, unpadded: the same real-position outputs (atol 1e-5),
 * and the same as transformers' own batch-of-one run. */
static void test_tiny_padding_invariance(void **state) {
  (void)state;
  char dir[1024];
  tiny_paths(dir, sizeof dir);
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  const bc_weights *w = &tm.w;
  bc_st_file *fx = bc_test_fixture_open("tiny-bert-ref.safetensors");
  check_fixture_model(fx, dir);
  int64_t shape[2], shape1[2];
  int32_t *ids = bc_test_fixture_i32(fx, "input_ids", 0, shape);
  int B = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  int32_t *types = bc_test_fixture_i32(fx, "token_type_ids", (size_t)B * T, NULL);
  int32_t *mask = bc_test_fixture_i32(fx, "attention_mask", (size_t)B * T, NULL);
  int32_t *ids1 = bc_test_fixture_i32(fx, "single.input_ids", 0, shape1);
  int T1 = (int)shape1[1];
  assert_int_equal(shape1[0], 1);
  assert_true(T1 < T);
  int32_t *types1 = bc_test_fixture_i32(fx, "single.token_type_ids", (size_t)T1, NULL);
  int32_t *mask1 = bc_test_fixture_i32(fx, "single.attention_mask", (size_t)T1, NULL);
  for (int t = 0; t < T; t++) assert_int_equal(mask[t], t < T1); /* row 0 = the single text */

  size_t BTC = (size_t)B * T * C, TC1 = (size_t)T1 * C;
  float *hidden = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* (L+1, B*T, C) */
  float *hidden1 = malloc((size_t)(L + 1) * TC1 * sizeof(float)); /* (L+1, 1*T1, C) */
  float *pooled = malloc((size_t)B * C * sizeof(float));           /* (B, C) */
  float *pooled1 = malloc((size_t)C * sizeof(float));              /* (1, C) */
  assert_true(hidden && hidden1 && pooled && pooled1);
  assert_int_equal(ref_model_fwd(cfg, w, ids, types, mask, B, T, hidden, pooled), BERTCL_OK);
  assert_int_equal(ref_model_fwd(cfg, w, ids1, types1, mask1, 1, T1, hidden1, pooled1), BERTCL_OK);

  int ok = 1;
  double worst = 0.0;
  for (int l = 0; l <= L; l++) {
    /* row 0's first T1 positions of the padded batch are rows 0..T1-1 of layer l */
    const float *padded = hidden + (size_t)l * BTC;
    const float *alone = hidden1 + (size_t)l * TC1;
    char what[96];
    snprintf(what, sizeof what, "hidden.%d (1,%d,%d) alone vs in padded batch", l, T1, C);
    if (!bc_check_close(what, alone, padded, TC1, 1e-5f, 0, 0)) ok = 0;
    double d = bc_max_abs_diff(alone, padded, TC1);
    if (d > worst) worst = d;
  }
  if (!bc_check_close("pooler (1,C) alone vs in padded batch", pooled1, pooled, (size_t)C, 1e-5f,
                      0, 0))
    ok = 0;
  printf("tiny-bert padding invariance (T=%d in a batch of %d x %d): max |diff| = %.3g\n", T1, B,
         T, worst);
  printf("tiny-bert batch of one vs transformers' batch of one:\n");
  check_hidden(fx, "tiny-bert", "single.", hidden1, L, 1, T1, C, 1e-5f, &ok);
  float *want1 = bc_test_fixture_f32(fx, "single.pooler", (size_t)C);
  if (!bc_check_close("single.pooler (1,C) vs transformers", pooled1, want1, (size_t)C, 1e-5f, 0,
                      0))
    ok = 0;
  free(want1);
  free(pooled1);
  free(pooled);
  free(hidden1);
  free(hidden);
  free(mask1);
  free(types1);
  free(ids1);
  free(mask);
  free(types);
  free(ids);
  bc_test_fixture_close(fx);
  model_close(&tm);
  assert_true(ok);
}

/* A sequence with no real token stays finite (its attention rows are uniform, not NaN) and does
 * not change the other sequences; bad inputs are refused with BERTCL_ERR_INVALID_ARG. */
static void test_tiny_masked_row_and_bad_input(void **state) {
  (void)state;
  char dir[1024];
  tiny_paths(dir, sizeof dir);
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  const bc_weights *w = &tm.w;
  enum { B = 2, T = 4 };
  int C = cfg->hidden_size, L = cfg->num_layers;
  int32_t ids[B * T] = {101, 1010, 1011, 102, 101, 1012, 102, 0};
  int32_t mask[B * T] = {1, 1, 1, 1, 0, 0, 0, 0};
  int32_t mask0[T] = {1, 1, 1, 1};
  size_t BTC = (size_t)B * T * C;
  float *hidden = malloc((size_t)(L + 1) * BTC * sizeof(float));  /* (L+1, B*T, C) */
  float *hidden0 = malloc((size_t)(L + 1) * T * C * sizeof(float)); /* (L+1, 1*T, C) */
  float pooled[B * 64];
  assert_true(hidden && hidden0 && C <= 64);
  assert_int_equal(ref_model_fwd(cfg, w, ids, NULL, mask, B, T, hidden, pooled), BERTCL_OK);
  for (size_t i = 0; i < (size_t)(L + 1) * BTC; i++)
    if (!isfinite(hidden[i])) fail_msg("hidden value %zu is %g with a fully masked row", i, hidden[i]);
  for (int i = 0; i < B * C; i++) assert_true(isfinite(pooled[i]));
  assert_int_equal(ref_model_fwd(cfg, w, ids, NULL, mask0, 1, T, hidden0, NULL), BERTCL_OK);
  for (int l = 0; l <= L; l++)
    assert_true(bc_check_close("hidden (1,4,C) beside a fully masked row vs alone",
                               hidden + (size_t)l * BTC, hidden0 + (size_t)l * T * C,
                               (size_t)T * C, 0, 0, (uint64_t)l));

  int32_t bad_ids[T] = {101, cfg->vocab_size, 102, 0};
  assert_int_equal(ref_model_fwd(cfg, w, bad_ids, NULL, NULL, 1, T, hidden0, NULL),
                   BERTCL_ERR_INVALID_ARG);
  int32_t bad_types[T] = {0, 0, cfg->type_vocab_size, 0};
  assert_int_equal(ref_model_fwd(cfg, w, ids, bad_types, NULL, 1, T, hidden0, NULL),
                   BERTCL_ERR_INVALID_ARG);
  assert_int_equal(ref_model_fwd(cfg, w, ids, NULL, NULL, 1, cfg->max_position + 1, hidden0, NULL),
                   BERTCL_ERR_INVALID_ARG);
  assert_int_equal(ref_model_fwd(cfg, w, ids, NULL, NULL, 0, T, hidden0, NULL),
                   BERTCL_ERR_INVALID_ARG);
  free(hidden0);
  free(hidden);
  model_close(&tm);
}

static void test_minilm_hidden_states(void **state) {
  (void)state;
  char dir[1024];
  if (!bc_test_minilm_dir(dir, sizeof dir)) skip();
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  const bc_weights *w = &tm.w;
  bc_st_file *fx = bc_test_fixture_open("minilm-ref.safetensors");
  int64_t shape[2];
  int32_t *ids = bc_test_fixture_i32(fx, "batch.input_ids", 0, shape);
  int B = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  int32_t *types = bc_test_fixture_i32(fx, "batch.token_type_ids", (size_t)B * T, NULL);
  int32_t *mask = bc_test_fixture_i32(fx, "batch.attention_mask", (size_t)B * T, NULL);
  size_t BTC = (size_t)B * T * C;
  float *hidden = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* (L+1, B*T, C) */
  assert_non_null(hidden);
  assert_int_equal(ref_model_fwd(cfg, w, ids, types, mask, B, T, hidden, NULL), BERTCL_OK);
  int ok = 1;
  printf("all-MiniLM-L6-v2 B=%d T=%d:\n", B, T);
  check_hidden(fx, "all-MiniLM-L6-v2", "batch.", hidden, L, B, T, C, 1e-4f, &ok);
  free(hidden);
  free(mask);
  free(types);
  free(ids);
  bc_test_fixture_close(fx);
  model_close(&tm);
  assert_true(ok);
}

/* Sentences to run: all 50, or $BERTCL_TEST_REF_SENTENCES; sanitizer builds default to 20. */
static int sentence_count(int total) {
  const char *env = getenv("BERTCL_TEST_REF_SENTENCES");
  int n = total;
#if defined(__SANITIZE_ADDRESS__)
  n = 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  n = 20;
#endif
#endif
  if (env && *env) n = atoi(env);
  if (n < 1) n = 1;
  return n < total ? n : total;
}

static void test_minilm_sentence_embeddings(void **state) {
  (void)state;
  char dir[1024];
  if (!bc_test_minilm_dir(dir, sizeof dir)) skip();
  test_model tm;
  model_open(&tm, dir);
  const bc_config *cfg = &tm.cfg;
  const bc_weights *w = &tm.w;
  bc_st_file *fx = bc_test_fixture_open("minilm-ref.safetensors");
  int64_t shape[2];
  int32_t *ids = bc_test_fixture_i32(fx, "st.input_ids", 0, shape);
  int S = (int)shape[0], T = (int)shape[1], C = cfg->hidden_size, L = cfg->num_layers;
  int32_t *types = bc_test_fixture_i32(fx, "st.token_type_ids", (size_t)S * T, NULL);
  int32_t *mask = bc_test_fixture_i32(fx, "st.attention_mask", (size_t)S * T, NULL);
  float *want = bc_test_fixture_f32(fx, "st.embeddings", (size_t)S * C);
  float *hidden = malloc((size_t)(L + 1) * T * C * sizeof(float)); /* (L+1, 1*n, C) */
  float *emb = malloc((size_t)C * sizeof(float));                   /* (1, C) */
  assert_true(hidden && emb);

  int n = sentence_count(S), bad = 0;
  double min_cos = 2.0, max_diff = 0.0;
  for (int s = 0; s < n; s++) {
    /* each sentence alone at its own length: padding-free, as one request */
    int len = 0;
    for (int t = 0; t < T; t++) len += mask[(size_t)s * T + t] != 0;
    const int32_t *ms = mask + (size_t)s * T;
    assert_int_equal(ref_model_fwd(cfg, w, ids + (size_t)s * T, types + (size_t)s * T, ms, 1, len,
                                  hidden, NULL),
                     BERTCL_OK);
    const float *last = hidden + (size_t)L * len * C; /* (1*len, C) */
    ref_pool_fwd(emb, last, ms, BC_POOL_MEAN, 1, len, C);
    ref_l2norm_fwd(emb, emb, 1, C);
    const float *ws = want + (size_t)s * C;
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int c = 0; c < C; c++) {
      dot += (double)emb[c] * ws[c];
      na += (double)emb[c] * emb[c];
      nb += (double)ws[c] * ws[c];
    }
    double cosv = dot / (sqrt(na) * sqrt(nb));
    double d = bc_max_abs_diff(emb, ws, (size_t)C);
    if (!(cosv >= 0.99999)) {
      fprintf(stderr,
              "MISMATCH sentence %d (%d tokens): cosine to sentence-transformers %.9f < 0.99999, "
              "max |diff| %.3g\n",
              s, len, cosv, d);
      bad++;
    }
    if (cosv < min_cos || isnan(cosv)) min_cos = cosv;
    if (d > max_diff) max_diff = d;
  }
  printf("all-MiniLM-L6-v2 mean+normalize embeddings, %d of %d sentences: min cosine %.9f, max "
         "|diff| %.3g\n",
         n, S, min_cos, max_diff);
  free(emb);
  free(hidden);
  free(want);
  free(mask);
  free(types);
  free(ids);
  bc_test_fixture_close(fx);
  model_close(&tm);
  assert_int_equal(bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_softmax_edges),     cmocka_unit_test(test_pool_edges),
      cmocka_unit_test(test_l2norm_edges),      cmocka_unit_test(test_layernorm_hand),
      cmocka_unit_test(test_act_values),        cmocka_unit_test(test_linear_hand),
      cmocka_unit_test(test_attention_padding_t1),
      cmocka_unit_test(test_tiny_hidden_states),
      cmocka_unit_test(test_tiny_padding_invariance),
      cmocka_unit_test(test_tiny_masked_row_and_bad_input),
      cmocka_unit_test(test_minilm_hidden_states),
      cmocka_unit_test(test_minilm_sentence_embeddings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
