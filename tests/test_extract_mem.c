/* bertcl_extract (include/bertcl.h, "Extraction"): the job pipeline over texts in memory.
 * Its features must be bit for bit those `bertcl extract` writes for the same texts and options
 * (several windows, several batches, pooled + tokens + words, f16, stride windows, a bad text),
 * its defaults those of the CLI, and every bad option an error with a message. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"
#include "testutil.h"

static const char *words_[] = {"the",   "cat",   "sat",   "on",      "mat",          "quick",
                               "brown", "fox",   "jumps", "over",    "lazy",         "dog",
                               "hello", "world", "again", "running", "unbelievable", "tokenization",
                               "a",     "b",     ",",     "."};

/* n deterministic texts of 1..maxw words; text `bad` (if < n) holds invalid UTF-8, text
 * `longi` (if < n) is long enough to be truncated or split into stride windows. */
static char **make_texts(size_t n, int maxw, uint64_t seed, size_t bad, size_t longi) {
  char **t = calloc(n, sizeof *t);
  bc_rng r;
  bc_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) {
    char buf[4096] = "";
    size_t len = 0;
    int k = i == longi ? 150 : 1 + (int)(bc_rng_u32(&r) % (uint32_t)maxw);
    for (int w = 0; w < k; w++)
      len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", w ? " " : "",
                              words_[bc_rng_u32(&r) % (sizeof words_ / sizeof *words_)]);
    if (i == bad) snprintf(buf + len, sizeof buf - len, " broken \xc3 utf8");
    t[i] = strdup(buf);
  }
  return t;
}

static void free_texts(char **t, size_t n) {
  for (size_t i = 0; i < n; i++) free(t[i]);
  free(t);
}

typedef struct {
  bertcl_ctx *ctx;
  bertcl_model *model;
  bertcl_tokenizer *tok;
  bertcl_encoder *enc;
  char model_dir[1024], dir[512];
} fixture;

static int setup(fixture *x, const char *model_dir) {
  memset(x, 0, sizeof *x);
  x->ctx = bc_test_ctx();
  if (!x->ctx) return 0;
  snprintf(x->model_dir, sizeof x->model_dir, "%s", model_dir);
  assert_int_equal(bc_test_tmpdir(x->dir, sizeof x->dir), 0);
  if (bertcl_model_load(&x->model, model_dir) || bertcl_tokenizer_load(&x->tok, model_dir) ||
      bertcl_encoder_create(&x->enc, x->ctx, x->model))
    fail_msg("%s", bertcl_last_error(NULL));
  return 1;
}

static void teardown(fixture *x) {
  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
  bertcl_encoder_free(x->enc);
  bertcl_tokenizer_free(x->tok);
  bertcl_model_free(x->model);
  bertcl_ctx_free(x->ctx);
}

static void tiny_dir(char *out, size_t n) { bc_test_data_path(out, n, "tiny-bert"); }

/* Runs bertcl extract over the texts (one a line) into dir/NAME.safetensors. */
static void run_cli(const fixture *x, char **texts, size_t n, const char *name, const char *opts,
                    char *out, size_t outn) {
  char in[700], cmd[4096];
  snprintf(in, sizeof in, "%s/%s.txt", x->dir, name);
  snprintf(out, outn, "%s/%s.safetensors", x->dir, name);
  FILE *f = fopen(in, "w");
  assert_non_null(f);
  for (size_t i = 0; i < n; i++) fprintf(f, "%s\n", texts[i]);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --quiet 2>&1",
           BERTCL_BIN, x->model_dir, in, out, bertcl_ctx_device(x->ctx)->name, opts);
  char *log = NULL;
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("bertcl extract failed (%d): %s", rc, log);
  free(log);
}

/* Tensor `name` of a safetensors file as floats (F16 widened), or NULL when absent. */
static float *file_tensor(const char *path, const char *name, size_t *numel) {
  bc_err err = {0};
  bc_st_file *f = NULL;
  if (bc_st_open(&err, path, &f) != BERTCL_OK) fail_msg("%s", err.msg);
  const bc_st_tensor *t = bc_st_find(f, name);
  float *x = NULL;
  if (t) {
    x = malloc((t->numel ? t->numel : 1) * 4);
    assert_int_equal(bc_st_read_f32(&err, t, x, t->numel), BERTCL_OK);
    *numel = t->numel;
  }
  bc_st_close(f);
  return x;
}

static int64_t *file_offsets(const char *path, const char *name, size_t *numel) {
  bc_err err = {0};
  bc_st_file *f = NULL;
  if (bc_st_open(&err, path, &f) != BERTCL_OK) fail_msg("%s", err.msg);
  const bc_st_tensor *t = bc_st_find(f, name);
  if (!t) fail_msg("%s has no %s", path, name);
  int64_t *x = malloc(t->numel * 8);
  memcpy(x, t->data, t->numel * 8);
  *numel = t->numel;
  bc_st_close(f);
  return x;
}

/* Same bits (NaN equal to NaN only where both are NaN); prints the first difference. */
static void assert_same_bits(const char *what, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int na = isnan(a[i]), nb = isnan(b[i]);
    if (na != nb || (!na && memcmp(&a[i], &b[i], 4) != 0))
      fail_msg("%s[%zu]: bertcl_extract %.9g, bertcl extract %.9g (of %zu values)", what, i,
               (double)a[i], (double)b[i], n);
  }
}

/* Compares every output of a bertcl_extract result with the CLI's file. */
static void compare_with_file(const bertcl_features *feat, const char *path, size_t n) {
  static const struct {
    bertcl_pool pool;
    const char *name;
  } pools[] = {{BERTCL_POOL_CLS, "cls"},
               {BERTCL_POOL_MEAN, "mean"},
               {BERTCL_POOL_MAX, "max"},
               {BERTCL_POOL_POOLER, "pooler"}};
  assert_int_equal(bertcl_features_rows(feat), n);
  for (int k = 0; k < 4; k++) {
    size_t w = 0, numel = 0;
    const float *got = bertcl_features_pooled(feat, pools[k].pool, &w);
    float *want = file_tensor(path, pools[k].name, &numel);
    assert_int_equal(got != NULL, want != NULL);
    if (got) {
      assert_int_equal(numel, n * w);
      assert_same_bits(pools[k].name, got, want, numel);
    }
    free(want);
  }
  for (int r = 0; r < 2; r++) {
    const int64_t *off = NULL;
    size_t total = 0, w = 0, numel = 0, noff = 0;
    const float *got = r ? bertcl_features_words(feat, &off, &total, &w)
                         : bertcl_features_tokens(feat, &off, &total, &w);
    const char *name = r ? "words" : "tokens";
    char oname[32];
    snprintf(oname, sizeof oname, "%s.offsets", name);
    float *want = file_tensor(path, name, &numel);
    assert_int_equal(got != NULL, want != NULL);
    if (got) {
      assert_int_equal(numel, total * w);
      assert_same_bits(name, got, want, numel);
      int64_t *woff = file_offsets(path, oname, &noff);
      assert_int_equal(noff, n + 1);
      assert_memory_equal(off, woff, (n + 1) * 8);
      free(woff);
    }
    free(want);
  }
}

/* Several windows and batches, four outputs, two layers, a bad text: the same bits as the CLI;
 * then the same with f16 readback, and with stride windows for a long text. */
static void test_extract_equals_cli(void **state) {
  (void)state;
  char md[1024];
  tiny_dir(md, sizeof md);
  fixture x;
  if (!setup(&x, md)) skip();
  size_t n = 300;
  char **texts = make_texts(n, 40, 17, 123, 77);
  static const int layers[] = {-2, -1};
  static const struct {
    const char *name, *cli;
    bertcl_extract_options o;
  } cases[] = {
      {"multi",
       "--pool cls,mean,max,pooler --layers -2: --tokens --words mean --window 70 "
       "--max-tokens 400 --batch-size 16 --threads 2",
       {.pools = BERTCL_POOL_CLS | BERTCL_POOL_MEAN | BERTCL_POOL_MAX | BERTCL_POOL_POOLER,
        .layers = layers,
        .nlayers = 2,
        .tokens = 1,
        .words = 2,
        .window = 70,
        .max_tokens = 400,
        .batch_size = 16,
        .threads = 2}},
      {"f16",
       "--pool mean --normalize --layers -2: --combine mean --words first --dtype f16 "
       "--batch-size 32",
       {.pools = BERTCL_POOL_MEAN,
        .normalize = BERTCL_NORMALIZE_ON,
        .layers = layers,
        .nlayers = 2,
        .combine = BERTCL_COMBINE_MEAN,
        .words = 1,
        .f16 = 1,
        .batch_size = 32}},
      {"stride",
       "--pool none --tokens --max-len 32 --stride 8 --no-bucket --batch-size 8",
       {.pools = BERTCL_EXTRACT_NO_POOL,
        .tokens = 1,
        .max_length = 32,
        .stride = 8,
        .no_bucket = 1,
        .batch_size = 8}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    char path[800];
    run_cli(&x, texts, n, cases[c].name, cases[c].cli, path, sizeof path);
    bertcl_features *f = NULL;
    if (bertcl_extract(x.enc, x.tok, (const char *const *)texts, NULL, n, &cases[c].o, &f))
      fail_msg("%s: %s", cases[c].name, bertcl_last_error(x.enc));
    print_message("%s: %llu rows, %llu batches, %llu bad, %llu truncated, %llu split\n",
                  cases[c].name, (unsigned long long)bertcl_features_stats(f)->rows,
                  (unsigned long long)bertcl_features_stats(f)->batches,
                  (unsigned long long)bertcl_features_stats(f)->bad,
                  (unsigned long long)bertcl_features_stats(f)->truncated,
                  (unsigned long long)bertcl_features_stats(f)->windows_split);
    assert_int_equal(bertcl_features_stats(f)->bad, 1);
    assert_true(bertcl_features_stats(f)->batches > 1);
    compare_with_file(f, path, n);
    size_t w = 0;
    const float *p = bertcl_features_pooled(f, BERTCL_POOL_MEAN, &w);
    if (p) assert_true(isnan(p[123 * w]) && !isnan(p[122 * w]));
    bertcl_features_free(f);
  }
  free_texts(texts, n);
  teardown(&x);
}

/* Zero options are the CLI's defaults: a sentence-transformers model gets its pooling and
 * normalisation (all-MiniLM-L6-v2: mean, L2), a plain BERT the [CLS] vector. Pairs work. */
static void test_extract_defaults(void **state) {
  (void)state;
  char md[1024];
  if (!bc_test_minilm_dir(md, sizeof md)) skip();
  fixture x;
  if (!setup(&x, md)) skip();
  const char *texts[] = {"A man is eating food.", "A man is riding a horse.", "", "Hi"};
  const char *pairs[] = {NULL, "A woman plays violin.", NULL, ""};
  size_t n = 4;
  char path[800];
  run_cli(&x, (char **)texts, n, "defaults", "", path, sizeof path);
  bertcl_features *f = NULL;
  if (bertcl_extract(x.enc, x.tok, texts, NULL, n, NULL, &f))
    fail_msg("%s", bertcl_last_error(x.enc));
  compare_with_file(f, path, n); /* only "mean" exists in both */
  size_t w = 0;
  const float *m = bertcl_features_pooled(f, BERTCL_POOL_MEAN, &w);
  assert_non_null(m);
  assert_int_equal(w, 384);
  assert_null(bertcl_features_pooled(f, BERTCL_POOL_CLS, NULL));
  assert_null(bertcl_features_tokens(f, NULL, NULL, NULL));
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (size_t c = 0; c < w; c++) s += (double)m[i * w + c] * m[i * w + c];
    assert_true(fabs(s - 1.0) < 1e-5);
  }
  bertcl_features_free(f);
  /* a pair changes row 1 only ("" as a pair is no pair, as in transformers) */
  bertcl_features *g = NULL;
  assert_int_equal(bertcl_extract(x.enc, x.tok, texts, pairs, n, NULL, &g), BERTCL_OK);
  bertcl_extract(x.enc, x.tok, texts, NULL, n, NULL, &f);
  const float *a = bertcl_features_pooled(f, BERTCL_POOL_MEAN, NULL);
  const float *b = bertcl_features_pooled(g, BERTCL_POOL_MEAN, NULL);
  assert_memory_equal(a, b, w * 4);
  assert_memory_not_equal(a + w, b + w, w * 4);
  assert_memory_equal(a + 3 * w, b + 3 * w, w * 4);
  bertcl_features_free(f);
  bertcl_features_free(g);
  teardown(&x);
  /* a plain BERT: CLS, not normalised */
  tiny_dir(md, sizeof md);
  if (!setup(&x, md)) skip();
  assert_int_equal(bertcl_extract(x.enc, x.tok, texts, NULL, n, NULL, &f), BERTCL_OK);
  assert_non_null(bertcl_features_pooled(f, BERTCL_POOL_CLS, &w));
  assert_null(bertcl_features_pooled(f, BERTCL_POOL_MEAN, NULL));
  bertcl_features_free(f);
  teardown(&x);
}

/* Bad options and inputs fail with a status and a message naming the problem; no texts is an
 * empty result. */
static void test_extract_errors(void **state) {
  (void)state;
  char md[1024];
  tiny_dir(md, sizeof md);
  fixture x;
  if (!setup(&x, md)) skip();
  const char *texts[] = {"fine", "bad \xff byte", NULL};
  bertcl_features *f = (bertcl_features *)&x; /* must come back NULL */
  static const int bad_layer[] = {99};
  static const struct {
    bertcl_extract_options o;
    const char *msg;
  } cases[] = {
      {{.pools = 64}, "pools"},
      {{.pools = BERTCL_EXTRACT_NO_POOL | BERTCL_POOL_CLS}, "pools"},
      {{.pools = BERTCL_EXTRACT_NO_POOL}, "nothing to extract"},
      {{.layers = bad_layer, .nlayers = 1}, "layer"},
      {{.combine = (bertcl_combine)7}, "combine"},
      {{.normalize = (bertcl_normalize)9}, "normalize"},
      {{.words = 3}, "words"},
      {{.max_length = 100000}, "max_length"},
      {{.tokens = 1, .max_length = 16, .stride = 14}, "stride"},
      {{.stride = 4}, "stride"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    f = (bertcl_features *)&x;
    int st = bertcl_extract(x.enc, x.tok, texts, NULL, 1, &cases[c].o, &f);
    print_message("case %zu: %s\n", c, bertcl_last_error(x.enc));
    assert_int_not_equal(st, BERTCL_OK);
    assert_null(f);
    assert_non_null(strstr(bertcl_last_error(x.enc), cases[c].msg));
  }
  /* a NULL text */
  assert_int_equal(bertcl_extract(x.enc, x.tok, texts, NULL, 3, NULL, &f), BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(x.enc), "texts[2]"));
  /* invalid UTF-8: a NaN row, or with strict an error naming the text */
  assert_int_equal(bertcl_extract(x.enc, x.tok, texts, NULL, 2, NULL, &f), BERTCL_OK);
  assert_int_equal(bertcl_features_stats(f)->bad, 1);
  bertcl_features_free(f);
  bertcl_extract_options strict = {.strict = 1};
  assert_int_equal(bertcl_extract(x.enc, x.tok, texts, NULL, 2, &strict, &f), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(bertcl_last_error(x.enc), "texts[1]: invalid UTF-8"));
  assert_non_null(strstr(bertcl_last_error(NULL), "texts[1]"));
  /* the pooler of a model without one */
  /* no texts */
  bertcl_extract_options tk = {.tokens = 1, .words = 1};
  assert_int_equal(bertcl_extract(x.enc, x.tok, NULL, NULL, 0, &tk, &f), BERTCL_OK);
  assert_int_equal(bertcl_features_rows(f), 0);
  const int64_t *off = NULL;
  size_t total = 9;
  assert_non_null(bertcl_features_tokens(f, &off, &total, NULL));
  assert_int_equal(total, 0);
  assert_int_equal(off[0], 0);
  bertcl_features_free(f);
  bertcl_features_free(NULL);
  assert_null(bertcl_features_pooled(NULL, BERTCL_POOL_CLS, NULL));
  assert_int_equal(bertcl_extract(NULL, x.tok, texts, NULL, 1, NULL, &f), BERTCL_ERR_INVALID_ARG);
  teardown(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extract_equals_cli),
      cmocka_unit_test(test_extract_defaults),
      cmocka_unit_test(test_extract_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
