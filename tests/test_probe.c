/* Linear probes (src/probe): the logistic regression against scikit-learn's LogisticRegression
 * (tests/gen/gen_probe_fixture.py), its gradient against finite differences (with and without a
 * scalar mix), separable data, and bad arguments. */
#define _POSIX_C_SOURCE 200809L
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logreg_matches_sklearn),
      cmocka_unit_test(test_logreg_gradient),
      cmocka_unit_test(test_logreg_separable_and_mix),
      cmocka_unit_test(test_plot_svg),
  };
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("probe", tests, NULL, NULL);
}
