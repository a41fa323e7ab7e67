/* The OpenCL encoder end to end against transformers / sentence-transformers fixtures
 * (tests/gen/gen_ref_fixtures.py) and the plain-C reference: every hidden state, the pooler,
 * sentence embeddings, pooling/combination on the device, padding invariance, bad input, and an
 * arena that does not fit. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/encoder.h"
#include "ref/ref.h"
#include "testutil.h"

typedef struct {
  bertcl_ctx *ctx;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->ctx = bc_test_ctx();
  *state = f;
  return 0;
}
static int teardown(void **state) {
  fixture *f = *state;
  bertcl_ctx_free(f->ctx);
  free(f);
  return 0;
}

static bc_encoder *open_encoder(fixture *f, const char *dir, bertcl_model **model) {
  if (bertcl_model_load(model, dir) != BERTCL_OK)
    fail_msg("bertcl_model_load %s: %s", dir, bertcl_last_error(NULL));
  bc_encoder *enc = NULL;
  if (bc_encoder_create(f->ctx, *model, &enc) != BERTCL_OK)
    fail_msg("bc_encoder_create: %s", bertcl_last_error(f->ctx));
  return enc;
}

#define OK(f, call)                                                                 \
  do {                                                                              \
    if ((call) != BERTCL_OK) fail_msg("%s: %s", #call, bertcl_last_error((f)->ctx)); \
  } while (0)

/* The tiny model on the device with its transformers fixture and padded batch. */
typedef struct {
  bertcl_model *m;
  bc_encoder *enc;
  struct bc_st_file *fx;
  int32_t *ids, *tt, *mask; /* (B, T) */
  int B, T;
} tiny;

static void tiny_open(fixture *f, tiny *t) {
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  t->enc = open_encoder(f, dir, &t->m);
  t->fx = bc_test_fixture_open("tiny-bert-ref.safetensors");
  int64_t sb[2];
  t->ids = bc_test_fixture_i32(t->fx, "input_ids", 0, sb);
  t->B = (int)sb[0], t->T = (int)sb[1];
  t->tt = bc_test_fixture_i32(t->fx, "token_type_ids", (size_t)t->B * t->T, NULL);
  t->mask = bc_test_fixture_i32(t->fx, "attention_mask", (size_t)t->B * t->T, NULL);
}

static void tiny_close(tiny *t) {
  free(t->ids), free(t->tt), free(t->mask);
  bc_test_fixture_close(t->fx);
  bc_encoder_free(t->enc);
  bertcl_model_free(t->m);
}

/* Every layer of a padded batch against transformers' hidden states. */
static void check_all_layers(fixture *f, bc_encoder *enc, struct bc_st_file *fx,
                             const char *prefix, float atol) {
  const bc_config *c = bc_encoder_config(enc);
  char name[96];
  int64_t shape[2];
  snprintf(name, sizeof name, "%sinput_ids", prefix);
  int32_t *ids = bc_test_fixture_i32(fx, name, 0, shape);
  int B = (int)shape[0], T = (int)shape[1], L = c->num_layers, C = c->hidden_size;
  snprintf(name, sizeof name, "%stoken_type_ids", prefix);
  int32_t *tt = bc_test_fixture_i32(fx, name, (size_t)B * T, NULL);
  snprintf(name, sizeof name, "%sattention_mask", prefix);
  int32_t *mask = bc_test_fixture_i32(fx, name, (size_t)B * T, NULL);
  int layers[64];
  for (int l = 0; l <= L; l++) layers[l] = l;
  OK(f, bc_encoder_forward(enc, ids, tt, mask, B, T, layers, L + 1));
  size_t n = (size_t)B * T * C;
  float *got = malloc(n * 4);
  for (int l = 0; l <= L; l++) {
    snprintf(name, sizeof name, "%shidden.%d", prefix, l);
    float *want = bc_test_fixture_f32(fx, name, n);
    OK(f, bc_encoder_read_hidden(enc, l, got));
    /* padding rows are not compared: transformers' values there are not features */
    for (size_t i = 0; i < (size_t)B * T; i++)
      if (!mask[i]) memcpy(got + i * C, want + i * C, (size_t)C * 4);
    char what[160];
    snprintf(what, sizeof what, "encoder %s (B=%d T=%d C=%d) vs transformers", name, B, T, C);
    printf("  %-22s max |opencl - transformers| = %.3g\n", name, bc_max_abs_diff(got, want, n));
    assert_true(bc_check_close(what, got, want, n, atol, 0, 0));
    free(want);
  }
  free(got);
  free(ids);
  free(tt);
  free(mask);
}

static void test_tiny_parity(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  bertcl_model *m = NULL;
  bc_encoder *enc = open_encoder(f, dir, &m);
  struct bc_st_file *fx = bc_test_fixture_open("tiny-bert-ref.safetensors");
  check_all_layers(f, enc, fx, "", 1e-4f);
  /* pooler output of the same batch */
  float *pooled = malloc(5 * 32 * 4), *want = bc_test_fixture_f32(fx, "pooler", 5 * 32);
  OK(f, bc_encoder_read_pooler(enc, pooled));
  assert_true(bc_check_close("encoder pooler vs transformers", pooled, want, 5 * 32, 1e-4f, 0, 0));
  check_all_layers(f, enc, fx, "single.", 1e-4f);
  free(pooled);
  free(want);
  bc_test_fixture_close(fx);
  bc_encoder_free(enc);
  bertcl_model_free(m);
}

/* A text's features are the same alone and inside a padded batch of longer texts. */
static void test_tiny_padding_invariance(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  bertcl_model *m = NULL;
  bc_encoder *enc = open_encoder(f, dir, &m);
  struct bc_st_file *fx = bc_test_fixture_open("tiny-bert-ref.safetensors");
  int64_t sb[2], ss[2];
  int32_t *ids = bc_test_fixture_i32(fx, "input_ids", 0, sb);
  int32_t *tt = bc_test_fixture_i32(fx, "token_type_ids", 0, NULL);
  int32_t *mask = bc_test_fixture_i32(fx, "attention_mask", 0, NULL);
  int32_t *ids1 = bc_test_fixture_i32(fx, "single.input_ids", 0, ss);
  int B = (int)sb[0], T = (int)sb[1], T1 = (int)ss[1], C = 32;
  /* the single text is the batch's first one: same ids on its real positions */
  assert_memory_equal(ids, ids1, (size_t)T1 * 4);
  int last = bc_encoder_config(enc)->num_layers;
  float *alone = malloc((size_t)T1 * C * 4), *inbatch = malloc((size_t)B * T * C * 4);
  OK(f, bc_encoder_forward(enc, ids1, NULL, NULL, 1, T1, &last, 1));
  OK(f, bc_encoder_read_hidden(enc, 0, alone));
  float pa[32], pb[5 * 32];
  OK(f, bc_encoder_read_pooled(enc, BC_POOL_MEAN, BC_COMBINE_CONCAT, 1, pa));
  OK(f, bc_encoder_forward(enc, ids, tt, mask, B, T, &last, 1));
  OK(f, bc_encoder_read_hidden(enc, 0, inbatch));
  OK(f, bc_encoder_read_pooled(enc, BC_POOL_MEAN, BC_COMBINE_CONCAT, 1, pb));
  assert_true(T > T1);
  assert_true(bc_check_close("token features alone vs in a padded batch", inbatch, alone,
                             (size_t)T1 * C, 1e-5f, 0, 0));
  assert_true(bc_check_close("mean-pooled alone vs in a padded batch", pb, pa, C, 1e-5f, 0, 0));
  free(alone); free(inbatch); free(ids); free(tt); free(mask); free(ids1);
  bc_test_fixture_close(fx);
  bc_encoder_free(enc);
  bertcl_model_free(m);
}

/* Device pooling and layer combination against the reference's pooling of the same hidden
 * states. */
static void test_pool_combine(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  tiny t;
  tiny_open(f, &t);
  bc_encoder *enc = t.enc;
  int32_t *ids = t.ids, *tt = t.tt, *mask = t.mask;
  int B = t.B, T = t.T, C = 32;
  int layers[] = {1, 2};
  OK(f, bc_encoder_forward(enc, ids, tt, mask, B, T, layers, 2));
  size_t n = (size_t)B * T * C;
  float *h[2] = {malloc(n * 4), malloc(n * 4)};
  OK(f, bc_encoder_read_hidden(enc, 0, h[0]));
  OK(f, bc_encoder_read_hidden(enc, 1, h[1]));
  int modes[] = {BC_POOL_CLS, BC_POOL_MEAN, BC_POOL_MAX};
  float *p[2] = {malloc((size_t)B * C * 4), malloc((size_t)B * C * 4)};
  float *want = malloc((size_t)B * 2 * C * 4), *got = malloc((size_t)B * 2 * C * 4);
  for (int mi = 0; mi < 3; mi++)
    for (int comb = 0; comb < 3; comb++)
      for (int norm = 0; norm < 2; norm++) {
        ref_pool_fwd(p[0], h[0], mask, modes[mi], B, T, C);
        ref_pool_fwd(p[1], h[1], mask, modes[mi], B, T, C);
        int width = comb == BC_COMBINE_CONCAT ? 2 * C : C;
        for (int b = 0; b < B; b++)
          for (int c = 0; c < C; c++) {
            float a = p[0][(size_t)b * C + c], z = p[1][(size_t)b * C + c];
            if (comb == BC_COMBINE_CONCAT) {
              want[(size_t)b * width + c] = a;
              want[(size_t)b * width + C + c] = z;
            } else {
              want[(size_t)b * width + c] = comb == BC_COMBINE_SUM ? a + z : (a + z) / 2.0f;
            }
          }
        if (norm) ref_l2norm_fwd(want, want, B, width);
        OK(f, bc_encoder_read_pooled(enc, modes[mi], comb, norm, got));
        char what[128];
        snprintf(what, sizeof what, "pooled mode=%d combine=%d normalize=%d", modes[mi], comb,
                 norm);
        assert_true(bc_check_close(what, got, want, (size_t)B * width, 1e-5f, 1e-5f, 0));
      }
  free(h[0]); free(h[1]); free(p[0]); free(p[1]); free(want); free(got);
  tiny_close(&t);
}

/* Token and word features gathered on the device equal the hidden states read back whole. */
static void test_tokens_words(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  tiny t;
  tiny_open(f, &t);
  bc_encoder *enc = t.enc;
  int32_t *ids = t.ids, *tt = t.tt, *mask = t.mask;
  int B = t.B, T = t.T, C = 32;
  int layers[] = {1, 2};
  OK(f, bc_encoder_forward(enc, ids, tt, mask, B, T, layers, 2));
  size_t n = (size_t)B * T * C;
  float *h0 = malloc(n * 4), *h1 = malloc(n * 4);
  OK(f, bc_encoder_read_hidden(enc, 0, h0));
  OK(f, bc_encoder_read_hidden(enc, 1, h1));
  size_t ntok = bc_encoder_token_count(enc), rows = 0;
  float *want = malloc(ntok * 2 * C * 4), *got = malloc(ntok * 2 * C * 4);
  /* word ids: token t of row b belongs to word t / 2 (pairs of subwords), none at t = 0 */
  int32_t *wid = malloc((size_t)B * T * 4);
  size_t r = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      wid[(size_t)b * T + t] = (t > 0 && mask[(size_t)b * T + t]) ? (t - 1) / 2 : -1;
      if (!mask[(size_t)b * T + t]) continue;
      for (int c = 0; c < C; c++) {
        want[r * 2 * C + c] = h0[((size_t)b * T + t) * C + c];
        want[r * 2 * C + C + c] = h1[((size_t)b * T + t) * C + c];
      }
      r++;
    }
  assert_int_equal(r, ntok);
  OK(f, bc_encoder_read_tokens(enc, BC_COMBINE_CONCAT, got, &rows));
  assert_int_equal(rows, ntok);
  assert_true(bc_check_close("tokens concat", got, want, ntok * 2 * C, 0, 0, 0));
  size_t nw = bc_encoder_word_count(enc, wid);
  float *wwant = calloc(nw * C, 4), *wgot = malloc(nw * C * 4);
  size_t k = 0;
  for (int b = 0; b < B; b++) {
    int len = 0;
    for (int t = 0; t < T; t++) len += mask[(size_t)b * T + t];
    for (int w = 0; 1 + 2 * w < len; w++, k++) {
      int t0 = 1 + 2 * w, cnt = t0 + 1 < len ? 2 : 1;
      for (int c = 0; c < C; c++) {
        double s = 0;
        for (int q = 0; q < cnt; q++)
          s += ((double)h0[((size_t)b * T + t0 + q) * C + c] +
                h1[((size_t)b * T + t0 + q) * C + c]) / 2.0;
        wwant[k * C + c] = (float)(s / cnt);
      }
    }
  }
  assert_int_equal(k, nw);
  OK(f, bc_encoder_read_words(enc, wid, 2, BC_COMBINE_MEAN, wgot, &rows));
  assert_int_equal(rows, nw);
  assert_true(bc_check_close("words mean of layer mean", wgot, wwant, nw * C, 1e-6f, 1e-5f, 0));
  free(h0); free(h1); free(want); free(got); free(wid); free(wwant); free(wgot);
  tiny_close(&t);
}

static void test_bad_input_and_oom(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  bertcl_model *m = NULL;
  bc_encoder *enc = open_encoder(f, dir, &m);
  const bc_config *c = bc_encoder_config(enc);
  int32_t ids[4] = {2, 5, c->vocab_size, 3};
  int last = c->num_layers;
  assert_int_equal(bc_encoder_forward(enc, ids, NULL, NULL, 1, 4, &last, 1),
                   BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(f->ctx), "outside the vocabulary"));
  ids[2] = 4;
  int bad_layer = c->num_layers + 1;
  assert_int_equal(bc_encoder_forward(enc, ids, NULL, NULL, 1, 4, &bad_layer, 1),
                   BERTCL_ERR_INVALID_ARG);
  int32_t *longer = calloc((size_t)c->max_position + 1, 4);
  assert_int_equal(bc_encoder_forward(enc, longer, NULL, NULL, 1, c->max_position + 1, &last, 1),
                   BERTCL_ERR_INVALID_ARG);
  free(longer);
  /* an arena above the device memory cap fails as a full device does, with the sizes */
  bc_encoder_set_mem_cap(enc, 64 * 1024);
  int32_t *big = calloc(64 * 32, 4);
  assert_int_equal(bc_encoder_forward(enc, big, NULL, NULL, 64, 32, &last, 1),
                   BERTCL_ERR_DEVICE_OOM);
  assert_non_null(strstr(bertcl_last_error(f->ctx), "batch 64 x 32"));
  /* a small batch still fits and runs */
  assert_int_equal(bc_encoder_forward(enc, big, NULL, NULL, 2, 4, &last, 1), BERTCL_OK);
  free(big);
  bc_encoder_free(enc);
  bertcl_model_free(m);
}

static void test_minilm_parity(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  char dir[1024];
  if (!bc_test_minilm_dir(dir, sizeof dir)) skip();
  bertcl_model *m = NULL;
  bc_encoder *enc = open_encoder(f, dir, &m);
  struct bc_st_file *fx = bc_test_fixture_open("minilm-ref.safetensors");
  check_all_layers(f, enc, fx, "batch.", 1e-4f);
  /* sentence-transformers embeddings: mean pooling + normalize, in batches of 10 */
  int64_t s[2];
  int32_t *ids = bc_test_fixture_i32(fx, "st.input_ids", 0, s);
  int32_t *mask = bc_test_fixture_i32(fx, "st.attention_mask", 0, NULL);
  int32_t *tt = bc_test_fixture_i32(fx, "st.token_type_ids", 0, NULL);
  int N = (int)s[0], T = (int)s[1], C = 384, last = 6;
  float *want = bc_test_fixture_f32(fx, "st.embeddings", (size_t)N * C);
  float *got = malloc((size_t)N * C * 4);
  for (int b0 = 0; b0 < N; b0 += 10) {
    int nb = N - b0 < 10 ? N - b0 : 10;
    OK(f, bc_encoder_forward(enc, ids + (size_t)b0 * T, tt + (size_t)b0 * T,
                             mask + (size_t)b0 * T, nb, T, &last, 1));
    OK(f, bc_encoder_read_pooled(enc, BC_POOL_MEAN, BC_COMBINE_CONCAT, 1,
                                 got + (size_t)b0 * C));
  }
  double worst = 1.0;
  for (int i = 0; i < N; i++) {
    double dot = 0, na = 0, nb = 0;
    for (int c = 0; c < C; c++) {
      double a = got[(size_t)i * C + c], b = want[(size_t)i * C + c];
      dot += a * b, na += a * a, nb += b * b;
    }
    double cos = dot / sqrt(na * nb);
    if (cos < worst) worst = cos;
    if (cos < 0.99999) fprintf(stderr, "sentence %d: cosine %.7f < 0.99999\n", i, cos);
  }
  printf("  min cosine to sentence-transformers over %d sentences: %.8f\n", N, worst);
  assert_true(worst >= 0.99999);
  free(ids); free(mask); free(tt); free(want); free(got);
  bc_test_fixture_close(fx);
  bc_encoder_free(enc);
  bertcl_model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_parity),     cmocka_unit_test(test_tiny_padding_invariance),
      cmocka_unit_test(test_pool_combine),    cmocka_unit_test(test_tokens_words),
      cmocka_unit_test(test_bad_input_and_oom),
      cmocka_unit_test(test_minilm_parity),
  };
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("encoder", tests, setup, teardown);
}
