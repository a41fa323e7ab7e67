/* The public encoder API (include/bertcl.h): texts in, sentence features out, against
 * sentence-transformers; token-id input; hidden states; batch halving on a full device; errors
 * for bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"
#include "testutil.h"

static void test_minilm_texts(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  char dir[1024];
  if (!bc_test_minilm_dir(dir, sizeof dir)) {
    bertcl_ctx_free(ctx);
    skip();
  }
  bertcl_model *m = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_encoder *enc = NULL;
  assert_int_equal(bertcl_model_load(&m, dir), BERTCL_OK);
  assert_int_equal(bertcl_tokenizer_load(&tok, dir), BERTCL_OK);
  assert_int_equal(bertcl_encoder_create(&enc, ctx, m), BERTCL_OK);
  bertcl_model_free(m); /* the encoder keeps its own copy on the device */
  struct bc_st_file *fx = bc_test_fixture_open("minilm-ref.safetensors");
  json_error_t je;
  json_t *arr = json_loads(bc_st_metadata(fx, "st_texts"), 0, &je);
  assert_non_null(arr);
  size_t n = json_array_size(arr);
  const char **texts = calloc(n, sizeof *texts);
  for (size_t i = 0; i < n; i++) texts[i] = json_string_value(json_array_get(arr, i));
  float *want = bc_test_fixture_f32(fx, "st.embeddings", n * 384);
  bertcl_encode_options opt = {.pool = BERTCL_POOL_MEAN, .normalize = 1, .batch_size = 16};
  assert_int_equal(bertcl_encode_width(enc, &opt), 384);
  float *got = malloc(n * 384 * 4);
  int st = bertcl_encode(enc, tok, texts, NULL, n, &opt, got, n * 384);
  if (st != BERTCL_OK) fail_msg("%s", bertcl_last_error(enc));
  double worst = 1;
  for (size_t i = 0; i < n; i++) {
    double dot = 0;
    for (int c = 0; c < 384; c++) dot += (double)got[i * 384 + c] * want[i * 384 + c];
    if (dot < worst) worst = dot;
  }
  printf("  texts -> embeddings: min cosine to sentence-transformers %.8f over %zu texts\n",
         worst, n);
  assert_true(worst >= 0.99999);
  /* a too-small output buffer is refused before any work */
  assert_int_equal(bertcl_encode(enc, tok, texts, NULL, n, &opt, got, n * 384 - 1),
                   BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(enc), "output buffer"));
  free(got);
  free(want);
  free(texts);
  json_decref(arr);
  bc_test_fixture_close(fx);
  bertcl_encoder_free(enc);
  bertcl_tokenizer_free(tok);
  bertcl_ctx_free(ctx);
}

static void test_ids_hidden_and_halving(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  bertcl_model *m = NULL;
  bertcl_encoder *enc = NULL;
  assert_int_equal(bertcl_model_load(&m, dir), BERTCL_OK);
  assert_int_equal(bertcl_encoder_create(&enc, ctx, m), BERTCL_OK);
  struct bc_st_file *fx = bc_test_fixture_open("tiny-bert-ref.safetensors");
  int64_t sh[2];
  int32_t *ids = bc_test_fixture_i32(fx, "input_ids", 0, sh);
  int32_t *tt = bc_test_fixture_i32(fx, "token_type_ids", 0, NULL);
  int32_t *mask = bc_test_fixture_i32(fx, "attention_mask", 0, NULL);
  size_t B = (size_t)sh[0], T = (size_t)sh[1], C = 32;
  /* hidden states of layers 0 and -1 equal transformers' */
  int layers[] = {0, -1};
  float *h = malloc(2 * B * T * C * 4);
  assert_int_equal(bertcl_encode_hidden(enc, ids, tt, mask, B, T, layers, 2, h, 2 * B * T * C),
                   BERTCL_OK);
  float *h0 = bc_test_fixture_f32(fx, "hidden.0", B * T * C),
        *h2 = bc_test_fixture_f32(fx, "hidden.2", B * T * C);
  for (size_t i = 0; i < B * T; i++)
    if (!mask[i]) memcpy(h + i * C, h0 + i * C, C * 4), memcpy(h + (B * T + i) * C, h2 + i * C, C * 4);
  assert_true(bc_check_close("encode_hidden layer 0", h, h0, B * T * C, 1e-4f, 0, 0));
  assert_true(bc_check_close("encode_hidden layer -1", h + B * T * C, h2, B * T * C, 1e-4f, 0, 0));
  /* the pooler through encode_ids equals transformers' pooler_output */
  float *pool = malloc(B * C * 4), *pwant = bc_test_fixture_f32(fx, "pooler", B * C);
  bertcl_encode_options opt = {.pool = BERTCL_POOL_POOLER, .batch_size = 2};
  assert_int_equal(bertcl_encode_ids(enc, ids, tt, mask, B, T, &opt, pool, B * C), BERTCL_OK);
  assert_true(bc_check_close("encode_ids pooler", pool, pwant, B * C, 1e-4f, 0, 0));
  /* concat of two layers with mean pooling, whole batch at once, as the reference */
  int two[] = {1, 2};
  bertcl_encode_options o2 = {.pool = BERTCL_POOL_MEAN, .layers = two, .nlayers = 2};
  assert_int_equal(bertcl_encode_width(enc, &o2), 2 * C);
  float *full = malloc(B * 2 * C * 4), *halved = malloc(B * 2 * C * 4);
  assert_int_equal(bertcl_encode_ids(enc, ids, tt, mask, B, T, &o2, full, B * 2 * C), BERTCL_OK);
  bertcl_encoder_free(enc);
  /* a device that only fits small batches: the batch halves and the result is the same */
  setenv("BERTCL_DEVICE_MEM_CAP", "160000", 1);
  assert_int_equal(bertcl_encoder_create(&enc, ctx, m), BERTCL_OK);
  unsetenv("BERTCL_DEVICE_MEM_CAP");
  o2.batch_size = 8;
  int st = bertcl_encode_ids(enc, ids, tt, mask, B, T, &o2, halved, B * 2 * C);
  if (st != BERTCL_OK) fail_msg("%s", bertcl_last_error(enc));
  assert_true(bc_check_close("mean concat with halved batches", halved, full, B * 2 * C, 1e-5f,
                             1e-5f, 0));
  /* one row too large for the cap: a clear error with the sizes */
  bertcl_encoder_free(enc);
  setenv("BERTCL_DEVICE_MEM_CAP", "2000", 1);
  assert_int_equal(bertcl_encoder_create(&enc, ctx, m), BERTCL_OK);
  unsetenv("BERTCL_DEVICE_MEM_CAP");
  assert_int_equal(bertcl_encode_ids(enc, ids, tt, mask, B, T, &o2, halved, B * 2 * C),
                   BERTCL_ERR_DEVICE_OOM);
  assert_non_null(strstr(bertcl_last_error(enc), "batch 1 x"));
  /* bad layer */
  int bad[] = {7};
  bertcl_encode_options o3 = {.layers = bad, .nlayers = 1};
  assert_int_equal(bertcl_encode_ids(enc, ids, tt, mask, B, T, &o3, halved, B * 2 * C),
                   BERTCL_ERR_INVALID_ARG);
  free(h); free(h0); free(h2); free(pool); free(pwant); free(full); free(halved);
  free(ids); free(tt); free(mask);
  bc_test_fixture_close(fx);
  bertcl_encoder_free(enc);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  bertcl_encoder_free(NULL);
}

/* The README's example program runs and ranks the paraphrase first. */
static void test_example_program(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  char dir[1024], cmd[2048];
  if (!bc_test_minilm_dir(dir, sizeof dir)) {
    bertcl_ctx_free(ctx);
    skip();
  }
  snprintf(cmd, sizeof cmd,
           "BERTCL_DEVICE='%s' '%s' '%s' 'A man is eating food.' 'A man is eating a piece of "
           "bread.' 'A monkey is playing drums.' 2>&1",
           bertcl_ctx_device(ctx)->name, BERTCL_EXAMPLE_EMBED, dir);
  char *out = NULL;
  int rc = bc_test_run(cmd, &out);
  if (rc != 0) fail_msg("example failed (%d): %s", rc, out);
  double c01 = 0, c02 = 0;
  const char *p = strstr(out, "cosine(0, 1) = "), *q = strstr(out, "cosine(0, 2) = ");
  assert_non_null(p);
  assert_non_null(q);
  c01 = atof(p + 15);
  c02 = atof(q + 15);
  printf("  example: cosine(food, bread) %.4f > cosine(food, drums) %.4f\n", c01, c02);
  assert_true(c01 > 0.6 && c01 > c02 + 0.3);
  free(out);
  bertcl_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_minilm_texts),
                                     cmocka_unit_test(test_ids_hidden_and_halving),
                                     cmocka_unit_test(test_example_program)};
  return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
