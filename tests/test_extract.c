/* bertcl extract through the command-line program: outputs equal the encoder's, row i is input
 * line i, several outputs in one pass, and a device that runs out of memory makes the batch
 * halve until the job finishes with the same result. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/encoder.h"
#include "model/safetensors.h"
#include "testutil.h"

static const char *lines[] = {"Hello, the world was on fire!", "a b", "The cat sat on the mat.",
                              "The quick brown fox jumps over the lazy dog, then it runs away.",
                              "x", "It was not happy at all.", "Hello again", "the end"};
#define NLINES 8

static void write_input(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < NLINES; i++) fprintf(f, "%s\n", lines[i]);
  fclose(f);
}

static float *read_tensor(const char *path, const char *name, size_t *numel) {
  bc_err err = {0};
  bc_st_file *f = NULL;
  if (bc_st_open(&err, path, &f) != BERTCL_OK) fail_msg("%s", err.msg);
  const bc_st_tensor *t = bc_st_find(f, name);
  if (!t) fail_msg("%s has no tensor %s", path, name);
  float *x = malloc(t->numel * 4);
  assert_int_equal(bc_st_read_f32(&err, t, x, t->numel), BERTCL_OK);
  *numel = t->numel;
  bc_st_close(f);
  return x;
}

static void test_extract_tiny(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  char dir[512], model[1024], in[700], out1[700], out2[700], cmd[4096];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  bc_test_data_path(model, sizeof model, "tiny-bert");
  snprintf(in, sizeof in, "%s/in.txt", dir);
  snprintf(out1, sizeof out1, "%s/a.safetensors", dir);
  snprintf(out2, sizeof out2, "%s/b.safetensors", dir);
  write_input(in);
  const char *dev = bertcl_ctx_device(ctx)->name;
  char *log = NULL;
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool cls,mean,pooler "
           "--layers -2: --combine concat --batch-size 3 2>&1",
           BERTCL_BIN, model, in, out1, dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("extract failed (%d): %s", rc, log);
  free(log);
  /* the encoder on the same texts, one at a time (no padding), gives the same rows */
  bertcl_model *m = NULL;
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_model_load(&m, model), BERTCL_OK);
  assert_int_equal(bertcl_tokenizer_load(&tok, model), BERTCL_OK);
  bc_encoder *enc = NULL;
  assert_int_equal(bc_encoder_create(ctx, m, &enc), BERTCL_OK);
  size_t n_cls, n_mean, n_pool;
  float *cls = read_tensor(out1, "cls", &n_cls), *mean = read_tensor(out1, "mean", &n_mean),
        *pool = read_tensor(out1, "pooler", &n_pool);
  int C = 32, layers[] = {1, 2};
  assert_int_equal(n_cls, (size_t)NLINES * 2 * C);
  assert_int_equal(n_pool, (size_t)NLINES * C);
  for (int i = 0; i < NLINES; i++) {
    bertcl_batch *b = NULL;
    assert_int_equal(bertcl_tokenizer_encode_batch(tok, &lines[i], NULL, 1, NULL, &b), BERTCL_OK);
    assert_int_equal(bc_encoder_forward(enc, b->ids, b->type_ids, b->mask, 1, (int)b->seq,
                                        layers, 2), BERTCL_OK);
    float want[64], wp[32];
    char what[64];
    snprintf(what, sizeof what, "extract row %d cls", i);
    assert_int_equal(bc_encoder_read_pooled(enc, BC_POOL_CLS, BC_COMBINE_CONCAT, 0, want), 0);
    assert_true(bc_check_close(what, cls + (size_t)i * 2 * C, want, 2 * C, 1e-5f, 1e-5f, 0));
    snprintf(what, sizeof what, "extract row %d mean", i);
    assert_int_equal(bc_encoder_read_pooled(enc, BC_POOL_MEAN, BC_COMBINE_CONCAT, 0, want), 0);
    assert_true(bc_check_close(what, mean + (size_t)i * 2 * C, want, 2 * C, 1e-5f, 1e-5f, 0));
    snprintf(what, sizeof what, "extract row %d pooler", i);
    assert_int_equal(bc_encoder_read_pooler(enc, wp), 0);
    assert_true(bc_check_close(what, pool + (size_t)i * C, wp, C, 1e-5f, 1e-5f, 0));
    bertcl_batch_free(b);
  }
  /* a device memory cap that a batch of 8 does not fit: the batch halves, the job finishes,
   * and the result is the same */
  snprintf(cmd, sizeof cmd,
           "BERTCL_DEVICE_MEM_CAP=150000 %s extract -m '%s' -i '%s' -o '%s' --device '%s' "
           "--pool cls,mean,pooler --layers -2: --batch-size 8 2>&1",
           BERTCL_BIN, model, in, out2, dev);
  rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("capped extract failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "retrying with 4"));
  free(log);
  size_t n2;
  float *mean2 = read_tensor(out2, "mean", &n2);
  assert_int_equal(n2, n_mean);
  assert_true(bc_check_close("mean with halved batches", mean2, mean, n2, 1e-5f, 1e-5f, 0));
  /* a cap too small for even one text: a clear error, no output file */
  snprintf(cmd, sizeof cmd,
           "BERTCL_DEVICE_MEM_CAP=1000 %s extract -m '%s' -i '%s' -o '%s/c.npy' --device '%s' "
           "--pool mean --format npy 2>&1", BERTCL_BIN, model, in, dir, dev);
  rc = bc_test_run(cmd, &log);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(log, "try a smaller --batch-size"));
  free(log);
  snprintf(cmd, sizeof cmd, "%s/c.npy", dir);
  assert_null(fopen(cmd, "r"));
  free(cls); free(mean); free(pool); free(mean2);
  bc_encoder_free(enc);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_extract_tiny)};
  return cmocka_run_group_tests_name("extract", tests, NULL, NULL);
}
