/* Linear probes (src/probe): the logistic regression against scikit-learn's LogisticRegression
 * (tests/gen/gen_probe_fixture.py), its gradient against finite differences (with and without a
 * scalar mix), separable data, and bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe/logreg.h"
#include "probe/plot.h"
#include "testutil.h"

static bertcl_ctx *ctx_or_skip(void) {
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) {
    printf("no OpenCL device: skipped\n");
    skip();
  }
  return ctx;
}

/* Our fit equals sklearn's on the same objective: weights in standardised units, intercepts and
 * probabilities. Binary problems have one weight vector (sklearn's coef_ (1, D)). */
static void check_sklearn(bertcl_ctx *ctx, struct bc_st_file *f, const char *name, int K) {
  char key[64];
  snprintf(key, sizeof key, "%s.X", name);
  float *X = bc_test_fixture_f32(f, key, 0);
  snprintf(key, sizeof key, "%s.y", name);
  int32_t *y = bc_test_fixture_i32(f, key, 0, NULL);
  snprintf(key, sizeof key, "%s.coef", name);
  float *coef = bc_test_fixture_f32(f, key, 0);
  snprintf(key, sizeof key, "%s.intercept", name);
  float *icpt = bc_test_fixture_f32(f, key, 0);
  snprintf(key, sizeof key, "%s.proba", name);
  float *proba = bc_test_fixture_f32(f, key, 0);
  snprintf(key, sizeof key, "%s.l2", name);
  float *l2 = bc_test_fixture_f32(f, key, 1);
  int N = name[0] == 'b' ? 300 : 400, D = name[0] == 'b' ? 24 : 17, KW = K == 2 ? 1 : K;
  bc_logreg m;
  bc_logreg_opts o = {.l2 = l2[0], .tol = 1e-7, .max_iter = 5000};
  assert_int_equal(bc_logreg_fit(ctx, X, y, (size_t)N, D, K, &o, &m), BERTCL_OK);
  printf("%s: %d iterations, loss %.9f, stop %d, max |gradient| %.2e\n", name, m.iters, m.loss,
         m.stop, m.grad_max);
  assert_true(m.stop != BC_LOGREG_MAX_ITER);
  assert_true(m.iters > 1);
  assert_true(bc_check_close("logreg coef vs sklearn", m.W, coef, (size_t)KW * D, 2e-4f, 2e-4f,
                             1234));
  assert_true(bc_check_close("logreg intercept vs sklearn", m.b, icpt, (size_t)KW, 2e-4f, 2e-4f,
                             1234));
  float *pr = malloc((size_t)N * K * sizeof *pr);
  assert_int_equal(bc_logreg_predict(ctx, &m, X, (size_t)N, pr), BERTCL_OK);
  assert_true(bc_check_close("logreg probabilities vs sklearn", pr, proba, (size_t)N * K, 2e-5f,
                             0, 1234));
  /* raw-unit weights give the same logits on raw features */
  float *wr = malloc((size_t)KW * D * sizeof *wr), br[8];
  assert_int_equal(bc_logreg_raw_weights(&m, wr, br), BERTCL_OK);
  for (int n = 0; n < 5; n++)
    for (int k = 0; k < KW; k++) {
      double raw = br[k], std = m.b[k];
      for (int c = 0; c < D; c++) {
        float x = X[(size_t)n * D + c];
        raw += (double)wr[(size_t)k * D + c] * x;
        std += (double)m.W[(size_t)k * D + c] * (x - m.mean[c]) * m.scale[c];
      }
      assert_true(fabs(raw - std) < 1e-3);
    }
  free(wr);
  free(pr);
  bc_logreg_free(&m);
  free(X);
  free(y);
  free(coef);
  free(icpt);
  free(proba);
  free(l2);
}

static void test_logreg_matches_sklearn(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_or_skip();
  struct bc_st_file *f = bc_test_fixture_open("probe-sklearn.safetensors");
  check_sklearn(ctx, f, "bin", 2);
  check_sklearn(ctx, f, "multi", 3);
  bc_test_fixture_close(f);
  bertcl_ctx_free(ctx);
}

/* Central finite differences of the objective against its analytic gradient, for two and four
 * classes, with and without a scalar mix of three blocks. */
static void test_logreg_gradient(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_or_skip();
  bc_rng r;
  bc_rng_seed(&r, 99);
  enum { N = 40, D = 6 };
  for (int variant = 0; variant < 4; variant++) {
    int K = variant % 2 ? 4 : 2, J = variant >= 2 ? 3 : 1, KW = K == 2 ? 1 : K;
    int in_dim = J * D;
    float *X = bc_rng_alloc(&r, (size_t)N * in_dim, -1.5f, 1.5f);
    int32_t y[N];
    for (int n = 0; n < N; n++) y[n] = (int32_t)(bc_rng_u32(&r) % (uint32_t)K);
    bc_logreg_opts o = {.l2 = 0.05, .mix_blocks = J};
    size_t np = (size_t)KW * D + KW + (J > 1 ? (size_t)J : 0);
    double *th = malloc(np * sizeof *th), *g = malloc(np * sizeof *g);
    for (size_t i = 0; i < np; i++) th[i] = bc_rng_uniform(&r, -0.5f, 0.5f);
    double f0;
    assert_int_equal(bc_logreg_objective(ctx, X, y, N, in_dim, K, &o, th, &f0, g), BERTCL_OK);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
      double h = 1e-3, fp, fm, keep = th[i];
      th[i] = keep + h;
      assert_int_equal(bc_logreg_objective(ctx, X, y, N, in_dim, K, &o, th, &fp, NULL),
                       BERTCL_OK);
      th[i] = keep - h;
      assert_int_equal(bc_logreg_objective(ctx, X, y, N, in_dim, K, &o, th, &fm, NULL),
                       BERTCL_OK);
      th[i] = keep;
      double fd = (fp - fm) / (2 * h), err = fabs(fd - g[i]) / (1e-3 + fabs(fd));
      if (err > worst) worst = err;
      if (err > 2e-2)
        fail_msg("gradient K=%d J=%d param %zu: analytic %.7f, finite difference %.7f", K, J, i,
                 g[i], fd);
    }
    printf("gradient K=%d mix=%d: %zu parameters, worst relative error %.2e\n", K, J, np, worst);
    free(th);
    free(g);
    free(X);
  }
  bertcl_ctx_free(ctx);
}

/* Well-separated classes: every training row right; a scalar mix puts its weight on the block
 * that carries the signal. */
static void test_logreg_separable_and_mix(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_or_skip();
  bc_rng r;
  bc_rng_seed(&r, 5);
  enum { N = 300, D = 12, K = 3 };
  float *X = malloc((size_t)N * 2 * D * sizeof *X);
  int32_t y[N];
  for (int n = 0; n < N; n++) {
    y[n] = n % K;
    for (int c = 0; c < D; c++) {
      X[(size_t)n * 2 * D + c] = bc_rng_uniform(&r, -1, 1);                          /* noise */
      X[(size_t)n * 2 * D + D + c] = (c == y[n] ? 4.0f : 0.0f) + bc_rng_uniform(&r, -1, 1);
    }
  }
  bc_logreg m;
  bc_logreg_opts o = {.l2 = 1e-3};
  assert_int_equal(bc_logreg_fit(ctx, X, y, N, 2 * D, K, &o, &m), BERTCL_OK);
  float *pr = malloc((size_t)N * K * sizeof *pr);
  assert_int_equal(bc_logreg_predict(ctx, &m, X, N, pr), BERTCL_OK);
  int right = 0;
  for (int n = 0; n < N; n++) {
    int best = 0;
    for (int k = 1; k < K; k++)
      if (pr[n * K + k] > pr[n * K + best]) best = k;
    right += best == y[n];
  }
  assert_int_equal(right, N);
  bc_logreg_free(&m);
  o.mix_blocks = 2;
  assert_int_equal(bc_logreg_fit(ctx, X, y, N, 2 * D, K, &o, &m), BERTCL_OK);
  printf("mix weights %.3f %.3f after %d iterations\n", m.mix[0], m.mix[1], m.iters);
  assert_true(m.mix[1] > 0.8f);
  assert_int_equal(bc_logreg_predict(ctx, &m, X, N, pr), BERTCL_OK);
  right = 0;
  for (int n = 0; n < N; n++) {
    int best = 0;
    for (int k = 1; k < K; k++)
      if (pr[n * K + k] > pr[n * K + best]) best = k;
    right += best == y[n];
  }
  assert_true(right >= N - 3);
  bc_logreg_free(&m);
  /* determinism: the same fit twice gives the same bits */
  bc_logreg m2;
  o.mix_blocks = 0;
  assert_int_equal(bc_logreg_fit(ctx, X, y, N, 2 * D, K, &o, &m), BERTCL_OK);
  assert_int_equal(bc_logreg_fit(ctx, X, y, N, 2 * D, K, &o, &m2), BERTCL_OK);
  assert_memory_equal(m.W, m2.W, (size_t)K * 2 * D * sizeof(float));
  bc_logreg_free(&m);
  bc_logreg_free(&m2);
  /* bad arguments */
  y[7] = K;
  assert_int_equal(bc_logreg_fit(ctx, X, y, N, 2 * D, K, &o, &m), BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(ctx), "row 7"));
  y[7] = 0;
  assert_int_equal(bc_logreg_fit(ctx, X, y, 0, 2 * D, K, &o, &m), BERTCL_ERR_INVALID_ARG);
  o.mix_blocks = 5; /* 24 columns do not split into 5 blocks */
  assert_int_equal(bc_logreg_fit(ctx, X, y, N, 2 * D, K, &o, &m), BERTCL_ERR_INVALID_ARG);
  free(pr);
  free(X);
  bertcl_ctx_free(ctx);
}

/* The chart: well-formed XML (checked by Python's parser when present), escaped text, one marker
 * per defined point, NaN points left out, the best point ringed. */
static void test_plot_svg(void **state) {
  (void)state;
  const double a[4] = {0.5, 0.75, NAN, 0.9}, b[4] = {0.6, 0.7, 0.8, 0.85};
  const char *ticks[4] = {"emb", "1", "2", "3"};
  bc_plot_series series[2] = {{"mean <pool>", a}, {"cls & co", b}};
  bc_plot_hline hl[1] = {{"last4: 0.95", 0.95}};
  bc_plot p = {.title = "SST-2 \"dev\" accuracy", .x_label = "layer", .y_label = "accuracy",
               .x_ticks = ticks, .npoints = 4, .series = series, .nseries = 2, .hlines = hl,
               .nhlines = 1, .best_series = 0, .best_point = 3};
  char *svg = NULL;
  assert_int_equal(bc_plot_svg(NULL, &p, &svg), BERTCL_OK);
  assert_non_null(strstr(svg, "mean &lt;pool&gt;"));
  assert_non_null(strstr(svg, "cls &amp; co"));
  assert_non_null(strstr(svg, "SST-2 &quot;dev&quot; accuracy"));
  assert_null(strstr(svg, "nan"));
  int circles = 0;
  for (const char *q = svg; (q = strstr(q, "<circle")); q++) circles++;
  assert_int_equal(circles, 3 + 4 + 2 /* legend */ + 1 /* best */);
  assert_non_null(strstr(svg, ">best</text>"));
  char dir[1024], path[1200], cmd[1400];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/p.svg", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(svg, f);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "python3 -c 'import sys, xml.etree.ElementTree as E; "
           "r = E.parse(sys.argv[1]).getroot(); assert r.tag.endswith(\"svg\")' '%s' 2>&1",
           path);
  char *out = NULL;
  if (bc_test_run("python3 -c 'import xml.etree.ElementTree' 2>/dev/null", NULL) == 0) {
    int rc = bc_test_run(cmd, &out);
    if (rc != 0) fail_msg("the SVG is not well-formed XML: %s", out);
    free(out);
  }
  unlink(path);
  rmdir(dir);
  free(svg);
  p.npoints = 0;
  assert_int_equal(bc_plot_svg(NULL, &p, &svg), BERTCL_ERR_INVALID_ARG);
}

/* Writes a TSV of n labelled texts: label 1 texts hold "school", label 0 texts "music", among
 * filler words, so a probe on any layer of the tiny model can tell them apart. */
static void write_tsv(const char *path, int n, int seed, const char *extra_label) {
  static const char *const filler[] = {"the", "of", "city", "year", "people", "world", "house",
                                       "game", "water", "film", "team", "life", "day"};
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "sentence\tlabel\n");
  bc_rng r;
  bc_rng_seed(&r, (uint64_t)seed);
  for (int i = 0; i < n; i++) {
    int y = (int)(bc_rng_u32(&r) % 2), len = 3 + (int)(bc_rng_u32(&r) % 6),
        at = (int)(bc_rng_u32(&r) % (uint32_t)len);
    for (int w = 0; w < len; w++)
      fprintf(f, "%s%s", w ? " " : "", w == at ? (y ? "school" : "music") : filler[bc_rng_u32(&r) % 13]);
    fprintf(f, "\t%d\n", y);
  }
  if (extra_label) fprintf(f, "the city\t%s\n", extra_label);
  fclose(f);
}

/* bertcl_probe end to end on the tiny model: every cell, the outputs, and a saved probe that
 * predicts exactly what its cell scored. */
static void test_probe_sequence(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_or_skip();
  char dir[1024], train[1200], dev[1200], out[1200], model_dir[1024], pred[1200], path[1300];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  bc_test_data_path(model_dir, sizeof model_dir, "tiny-bert");
  snprintf(train, sizeof train, "%s/train.tsv", dir);
  snprintf(dev, sizeof dev, "%s/dev.tsv", dir);
  snprintf(out, sizeof out, "%s/probe", dir);
  snprintf(pred, sizeof pred, "%s/pred.jsonl", dir);
  write_tsv(train, 160, 1, NULL);
  write_tsv(dev, 60, 2, NULL);
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_model_load(&model, model_dir), BERTCL_OK);
  assert_int_equal(bertcl_tokenizer_load(&tok, model_dir), BERTCL_OK);
  bertcl_probe_options o;
  bertcl_probe_options_init(&o);
  o.train_file = train;
  o.eval_file = dev;
  o.output_dir = out;
  o.pools = BERTCL_POOL_CLS | BERTCL_POOL_MEAN | BERTCL_POOL_POOLER;
  bertcl_probe_result res;
  int st = bertcl_probe(ctx, model, tok, &o, NULL, NULL, &res);
  if (st != BERTCL_OK) fail_msg("bertcl_probe: %s", bertcl_last_error(ctx));
  /* 3 hidden states x 2 poolings, mean and mix of them per pooling (no last4: only 3 layers),
   * and the pooler */
  assert_int_equal(res.ncells, 3 * 2 + 2 * 2 + 1);
  assert_int_equal(res.num_labels, 2);
  assert_int_equal(res.train_rows, 160);
  assert_int_equal(res.eval_rows, 60);
  assert_true(res.best >= 0 && (size_t)res.best < res.ncells);
  const bertcl_probe_cell *best = &res.cells[res.best];
  printf("best cell %s/%s: eval %.4f train %.4f\n", best->row, best->col, best->score,
         best->train_score);
  assert_true(best->score >= 0.95);
  for (size_t i = 0; i < res.ncells; i++) {
    assert_true(res.cells[i].score <= best->score);
    assert_true(res.cells[i].converged);
    assert_true(fabs(res.cells[i].l2 - 1.0 / 160) < 1e-12);
  }
  assert_string_equal(res.cells[res.ncells - 1].col, "pooler");
  /* outputs */
  json_error_t je;
  snprintf(path, sizeof path, "%s/probe.json", out);
  json_t *j = json_load_file(path, 0, &je);
  assert_non_null(j);
  assert_int_equal(json_array_size(json_object_get(j, "cells")), res.ncells);
  json_decref(j);
  snprintf(path, sizeof path, "%s/probe.svg", out);
  assert_int_equal(access(path, R_OK), 0);
  assert_true(bertcl_probe_dir_is_probe(out));
  assert_false(bertcl_probe_dir_is_probe(dir));
  /* the saved best probe predicts the eval file with the cell's accuracy */
  bertcl_predict_options po = {.input_file = dev, .output_file = pred};
  st = bertcl_probe_predict(ctx, out, &po, NULL, NULL);
  if (st != BERTCL_OK) fail_msg("bertcl_probe_predict: %s", bertcl_last_error(ctx));
  FILE *pf = fopen(pred, "r"), *df = fopen(dev, "r");
  assert_non_null(pf);
  assert_non_null(df);
  char line[4096], dline[4096];
  int right = 0, rows = 0;
  assert_non_null(fgets(dline, sizeof dline, df)); /* header */
  while (fgets(line, sizeof line, pf) && fgets(dline, sizeof dline, df)) {
    json_t *o2 = json_loads(line, 0, &je);
    assert_non_null(o2);
    const char *lab = json_string_value(json_object_get(o2, "label"));
    const char *tab = strrchr(dline, '\t');
    assert_non_null(lab);
    right += tab && tab[1] == lab[0];
    rows++;
    json_decref(o2);
  }
  fclose(pf);
  fclose(df);
  assert_int_equal(rows, 60);
  assert_true(fabs((double)right / rows - best->score) < 1e-9);
  bertcl_probe_result_free(&res);
  /* the CLI prints the table and predict -m OUT_DIR reads the probe */
  char cmd[8192], *log = NULL;
  snprintf(cmd, sizeof cmd,
           "%s probe -m '%s' --train '%s' --eval '%s' -o '%s/cli' --layers 0,-1 --pool mean "
           "--combine none --l2 auto -q --device \"${BERTCL_TEST_DEVICE:-pocl}\" 2>&1",
           BERTCL_BIN, model_dir, train, dev, dir);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("bertcl probe failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "0 (emb)"));
  assert_non_null(strstr(log, "best: hidden state"));
  free(log);
  snprintf(cmd, sizeof cmd, "%s predict -m '%s/cli' -i '%s' --device \"${BERTCL_TEST_DEVICE:-pocl}\" 2>&1 | wc -l",
           BERTCL_BIN, dir, dev);
  assert_int_equal(bc_test_run(cmd, &log), 0);
  assert_int_equal(atoi(log), 60);
  free(log);
  /* bad input: an eval label train lacks, regression targets, a missing file */
  write_tsv(dev, 10, 3, "7");
  st = bertcl_probe(ctx, model, tok, &o, NULL, NULL, &res);
  assert_int_equal(st, BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(ctx), "line 12"));
  write_tsv(dev, 10, 3, "0.5");
  o.train_file = dev;
  assert_int_equal(bertcl_probe(ctx, model, tok, &o, NULL, NULL, &res), BERTCL_ERR_UNSUPPORTED);
  o.train_file = "/nonexistent/train.tsv";
  assert_int_not_equal(bertcl_probe(ctx, model, tok, &o, NULL, NULL, &res), BERTCL_OK);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  bertcl_ctx_free(ctx);
}

/* A CoNLL file: "school" / "music" / "water" tagged B-ORG / B-PER / I-PER (after music), the
 * rest O, in sentences of filler words. */
static void write_conll(const char *path, int nsent, int seed) {
  static const char *const filler[] = {"the", "of", "city", "year", "people", "world", "house",
                                       "game", "film", "team", "life", "day"};
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "-DOCSTART- -X- O\n\n");
  bc_rng r;
  bc_rng_seed(&r, (uint64_t)seed);
  for (int s = 0; s < nsent; s++) {
    int len = 3 + (int)(bc_rng_u32(&r) % 6);
    for (int w = 0; w < len; w++) {
      uint32_t k = bc_rng_u32(&r) % 6;
      if (k == 0)
        fprintf(f, "school NN B-ORG\n");
      else if (k == 1)
        fprintf(f, "music NN B-PER\nwater NN I-PER\n");
      else
        fprintf(f, "%s NN O\n", filler[bc_rng_u32(&r) % 12]);
    }
    fprintf(f, "\n");
  }
  fclose(f);
}

/* The token task: word vectors, entity F1, and a saved probe that tags CoNLL input. */
static void test_probe_token(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_or_skip();
  char dir[1024], train[1200], dev[1200], out[1200], model_dir[1024], pred[1200];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  bc_test_data_path(model_dir, sizeof model_dir, "tiny-bert");
  snprintf(train, sizeof train, "%s/train.conll", dir);
  snprintf(dev, sizeof dev, "%s/dev.conll", dir);
  snprintf(out, sizeof out, "%s/probe", dir);
  snprintf(pred, sizeof pred, "%s/pred.conll", dir);
  write_conll(train, 80, 1);
  write_conll(dev, 30, 2);
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_model_load(&model, model_dir), BERTCL_OK);
  assert_int_equal(bertcl_tokenizer_load(&tok, model_dir), BERTCL_OK);
  for (int words = 1; words <= 2; words++) {
    bertcl_probe_options o;
    bertcl_probe_options_init(&o);
    o.task = BERTCL_PROBE_TOKEN;
    o.words = words;
    o.train_file = train;
    o.eval_file = dev;
    o.output_dir = out;
    bertcl_probe_result res;
    int st = bertcl_probe(ctx, model, tok, &o, NULL, NULL, &res);
    if (st != BERTCL_OK) fail_msg("bertcl_probe (token): %s", bertcl_last_error(ctx));
    assert_int_equal(res.ncells, 3 + 2); /* 3 hidden states, mean and mix */
    assert_int_equal(res.num_labels, 4);  /* B-ORG B-PER I-PER O */
    const bertcl_probe_cell *b = &res.cells[res.best];
    printf("words %d: best %s/%s entity F1 %.4f (P %.4f R %.4f)\n", words, b->row, b->col,
           b->entity_f1, b->entity_precision, b->entity_recall);
    assert_string_equal(b->col, words == 1 ? "first" : "mean");
    assert_true(b->score == b->entity_f1);
    assert_true(b->entity_f1 >= 0.95);
    bertcl_probe_result_free(&res);
  }
  /* the saved probe tags the CoNLL eval file: the input's lines with the tag appended */
  bertcl_predict_options po = {.input_file = dev, .output_file = pred};
  int st = bertcl_probe_predict(ctx, out, &po, NULL, NULL);
  if (st != BERTCL_OK) fail_msg("bertcl_probe_predict (token): %s", bertcl_last_error(ctx));
  FILE *pf = fopen(pred, "r");
  assert_non_null(pf);
  char line[512];
  int words = 0, right = 0, blanks = 0;
  while (fgets(line, sizeof line, pf)) {
    char w[64], pos[8], gold[16], got[16];
    if (line[0] == '\n') {
      blanks++;
      continue;
    }
    assert_int_equal(sscanf(line, "%63s %7s %15s %15s", w, pos, gold, got), 4);
    words++;
    right += !strcmp(gold, got);
  }
  fclose(pf);
  assert_int_equal(blanks, 30);
  printf("saved token probe: %d of %d words right\n", right, words);
  assert_true(right >= words - 2);
  char cmd[2200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  bertcl_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logreg_matches_sklearn),
      cmocka_unit_test(test_logreg_gradient),
      cmocka_unit_test(test_logreg_separable_and_mix),
      cmocka_unit_test(test_plot_svg),
      cmocka_unit_test(test_probe_sequence),
      cmocka_unit_test(test_probe_token),
  };
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("probe", tests, NULL, NULL);
}
