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

  /* hand-computed: scores (1, 2, 3, 100) * 0.5, key 3 masked -> softmax(0.5, 1, 1.5), 0 */
  float s[4] = {1.0f, 2.0f, 3.0f, 100.0f};
  int32_t m[4] = {1, 1, 1, 0};
  ref_softmax_fwd(s, m, 0.5f, 1, 1, 4);
  double e0 = exp(0.5), e1 = exp(1.0), e2 = exp(1.5), z = e0 + e1 + e2;
  float want[4] = {(float)(e0 / z), (float)(e1 / z), (float)(e2 / z), 0.0f};
  assert_true(bc_check_close("softmax (1,1,1,4) masked key", s, want, 4, 1e-7f, 0, 0));
  assert_true(s[3] == 0.0f); /* a masked key gets exactly nothing */

  /* large scores do not overflow: softmax(1000, 999) */
  float big[2] = {1000.0f, 999.0f};
  ref_softmax_fwd(big, NULL, 1.0f, 1, 1, 2);
  float wbig[2] = {(float)(1.0 / (1.0 + exp(-1.0))), (float)(exp(-1.0) / (1.0 + exp(-1.0)))};
  assert_true(bc_check_close("softmax (1,1,1,2) large", big, wbig, 2, 1e-7f, 0, 0));

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_softmax_edges),     cmocka_unit_test(test_pool_edges),
      cmocka_unit_test(test_l2norm_edges),      cmocka_unit_test(test_layernorm_hand),
      cmocka_unit_test(test_act_values),        cmocka_unit_test(test_linear_hand),
      cmocka_unit_test(test_attention_padding_t1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
