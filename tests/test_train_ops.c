/* Backward and optimizer kernels (cl/backward.cl) and the training step's forward helpers
 * (cl/trainer.cl) against their plain-C twins in src/ref, on random inputs with fixed seeds: odd
 * sizes, T = 1, rows not a multiple of the work-group size. Every test runs on both kernel sets
 * (bc_kset: test_x_gpu, test_x_cpu), whatever the device. Failures print op, shape, index,
 * expected, got, seed and the set. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "ref/ref_train.h"
#include "testutil.h"
#include "train/train_ops.h"

typedef struct {
  bertcl_ctx *ctx;
  bc_train_ops set[2]; /* indexed by bc_kset */
  bc_train_ops *ops;   /* the set the test runs on */
} fixture;

#define up(f, x, bytes) bc_test_upload((f)->ctx, (x), (bytes))
#define down(f, m, x, bytes) bc_test_download((f)->ctx, (m), (x), (bytes))
#define rnd bc_rng_alloc
#define OK(call)                                                                            \
  do {                                                                                      \
    if ((call) != BERTCL_OK) fail_msg("%s: %s", #call, bertcl_last_error(f->ctx));          \
  } while (0)
/* "op shape (cpu set)": what a failure names */
#define NAME(buf, ...)                                                                   \
  do {                                                                                   \
    int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                                     \
    if (n_ > 0 && (size_t)n_ < sizeof buf)                                               \
      snprintf(buf + n_, sizeof buf - (size_t)n_, " (%s set)", bc_kset_name(f->ops->kset)); \
  } while (0)

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->ctx = bc_test_ctx();
  for (int k = 0; k < 2 && f->ctx; k++) {
    f->ctx->kset = (bc_kset)k; /* the op table builds the program for the context's set */
    if (bc_train_ops_init(f->ctx, &f->set[k]) != BERTCL_OK) {
      fprintf(stderr, "bc_train_ops_init (%s set): %s\n", bc_kset_name((bc_kset)k),
              bertcl_last_error(f->ctx));
      return -1;
    }
  }
  *state = f;
  return 0;
}
static int teardown(void **state) {
  fixture *f = *state;
  bc_train_ops_free(&f->set[0]);
  bc_train_ops_free(&f->set[1]);
  bertcl_ctx_free(f->ctx);
  free(f);
  return 0;
}

static void test_dropout(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  size_t sizes[] = {1, 10007};
  float ps[] = {0.1f, 0.5f};
  for (int si = 0; si < 2; si++)
    for (int pi = 0; pi < 2; pi++) {
      size_t n = sizes[si];
      bc_rng r;
      bc_rng_seed(&r, 7 + si);
      float *x = rnd(&r, n, -1, 1), *want = malloc(n * 4), *got = malloc(n * 4);
      ref_dropout d = {.p = ps[pi], .seed = 0x123456789abcULL, .step = 3, .id = 21};
      ref_dropout_fwd(want, x, n, &d);
      cl_mem dx = up(f, x, n * 4);
      OK(bc_op_dropout(f->ctx, f->ops, dx, dx, d.p, d.seed, d.step, d.id, n));
      down(f, dx, got, n * 4);
      char what[96];
      NAME(what, "dropout_fwd n=%zu p=%g", n, d.p);
      assert_true(bc_check_close(what, got, want, n, 0, 0, 7 + si)); /* the same mask exactly */
      clReleaseMemObject(dx);
      free(x); free(want); free(got);
    }
}

static void test_layernorm_bwd(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  int shapes[][2] = {{1, 1}, {7, 33}, {5, 300}, {19, 384}};
  for (int s = 0; s < 4; s++) {
    int N = shapes[s][0], C = shapes[s][1];
    bc_rng r;
    bc_rng_seed(&r, 100 + s);
    float *x = rnd(&r, (size_t)N * C, -2, 2), *w = rnd(&r, C, 0.5f, 1.5f),
          *dout = rnd(&r, (size_t)N * C, -1, 1);
    /* dw, db accumulate (+=) into what is there */
    float *dx = calloc((size_t)N * C, 4), *dw = rnd(&r, C, -1, 1), *db = rnd(&r, C, -1, 1);
    float *gdy = calloc((size_t)N * C, 4), *gdw = malloc(C * 4), *gdb = malloc(C * 4);
    memcpy(gdw, dw, C * 4);
    memcpy(gdb, db, C * 4);
    ref_layernorm_bwd(dx, dw, db, dout, x, w, 1e-12f, N, C);
    float *stats = calloc((size_t)N * 2, 4); /* (N, 2) */
    cl_mem ddy = up(f, gdy, (size_t)N * C * 4), dst = up(f, stats, (size_t)N * 2 * 4),
           ddw = up(f, gdw, C * 4), ddb = up(f, gdb, C * 4), ddo = up(f, dout, (size_t)N * C * 4),
           dxx = up(f, x, (size_t)N * C * 4), dww = up(f, w, C * 4);
    OK(bc_op_layernorm_bwd(f->ctx, f->ops, ddy, dst, ddw, ddb, ddo, dxx, dww, 1e-12f, N, C));
    down(f, ddy, gdy, (size_t)N * C * 4);
    down(f, ddw, gdw, C * 4);
    down(f, ddb, gdb, C * 4);
    char what[96];
    NAME(what, "layernorm_bwd dx N=%d C=%d", N, C);
    assert_true(bc_check_close(what, gdy, dx, (size_t)N * C, 1e-5f, 1e-4f, 100 + s));
    NAME(what, "layernorm_bwd dw N=%d C=%d", N, C);
    assert_true(bc_check_close(what, gdw, dw, C, 1e-5f, 1e-4f, 100 + s));
    NAME(what, "layernorm_bwd db N=%d C=%d", N, C);
    assert_true(bc_check_close(what, gdb, db, C, 1e-5f, 1e-4f, 100 + s));
    cl_mem ms[] = {ddy, dst, ddw, ddb, ddo, dxx, dww};
    for (int i = 0; i < 7; i++) clReleaseMemObject(ms[i]);
    free(x); free(w); free(dout); free(dx); free(dw); free(db); free(gdy); free(gdw); free(gdb);
    free(stats);
  }
}

static void test_bias_act_colsum_tanh(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  bc_act acts[] = {BC_ACT_GELU, BC_ACT_GELU_TANH, BC_ACT_RELU};
  int shapes[][2] = {{7, 65}, {19, 1536}}; /* a tail of 1; MiniLM's FFN width */
  for (int sh = 0; sh < 2; sh++)
  for (int a = 0; a < 3; a++) {
    int N = shapes[sh][0], C = shapes[sh][1];
    size_t n = (size_t)N * C;
    bc_rng r;
    bc_rng_seed(&r, 200 + a);
    float *x = rnd(&r, n, -4, 4), *b = rnd(&r, C, -1, 1), *dout = rnd(&r, n, -1, 1);
    /* the bias gradient accumulates (+=) into what is there */
    float *want = malloc(n * 4), *got = malloc(n * 4), *dbias = rnd(&r, C, -1, 1),
          *gdb = malloc(C * 4);
    memcpy(gdb, dbias, C * 4);
    ref_bias_act_bwd(want, dbias, dout, x, b, acts[a], N, C);
    cl_mem dx = up(f, got, n * 4), ddo = up(f, dout, n * 4), dxx = up(f, x, n * 4),
           dbb = up(f, b, C * 4), ddb = up(f, gdb, C * 4);
    OK(bc_op_bias_act_bwd(f->ctx, f->ops, dx, ddo, dxx, dbb, (int)acts[a], N, C));
    OK(bc_op_colsum_bwd(f->ctx, f->ops, ddb, dx, N, C));
    down(f, dx, got, n * 4);
    down(f, ddb, gdb, C * 4);
    char what[96];
    NAME(what, "bias_act_bwd act=%d N=%d C=%d", (int)acts[a], N, C);
    assert_true(bc_check_close(what, got, want, n, 1e-5f, 1e-4f, 200 + a));
    NAME(what, "colsum_bwd (dbias) act=%d N=%d C=%d", (int)acts[a], N, C);
    assert_true(bc_check_close(what, gdb, dbias, C, 1e-5f, 1e-4f, 200 + a));
    cl_mem ms[] = {dx, ddo, dxx, dbb, ddb};
    for (int i = 0; i < 5; i++) clReleaseMemObject(ms[i]);
    free(x); free(b); free(dout); free(want); free(got); free(dbias); free(gdb);
  }
  size_t n = 455;
  bc_rng r;
  bc_rng_seed(&r, 210);
  float *y = rnd(&r, n, -0.99f, 0.99f), *dout = rnd(&r, n, -1, 1), *want = malloc(n * 4),
        *got = malloc(n * 4);
  ref_tanh_bwd(want, dout, y, n);
  cl_mem dy = up(f, y, n * 4), ddo = up(f, dout, n * 4);
  OK(bc_op_tanh_bwd(f->ctx, f->ops, ddo, ddo, dy, n));
  down(f, ddo, got, n * 4);
  assert_true(bc_check_close("tanh_bwd n=455", got, want, n, 1e-6f, 1e-5f, 210));
  clReleaseMemObject(dy); clReleaseMemObject(ddo);
  free(y); free(dout); free(want); free(got);
}

/* GELU's derivative on a dense sweep of inputs (bias 0, dout 1): against ref_bias_act_bwd
 * (double) within 1e-6 + 1e-5 |ref|, and in the CPU set within 8 ulp of the exact derivative
 * Phi(x) + x phi(x) = erfc(-x / sqrt 2) / 2 + x exp(-x^2 / 2) / sqrt(2 pi) in double, wherever
 * that is a normal float; ulps of the larger of the two terms (they cancel near x = -0.75, where
 * the derivative crosses zero). See run_bias_act_fwd_gelu_sweep in tests/test_ops.c. */
static void test_bias_act_bwd_gelu_sweep(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  size_t n = 0;
  float *x = bc_sweep_alloc(12.0f, getenv("BERTCL_OCLGRIND") ? 18 : 12, &n);
  int C = 1000, N = (int)((n + (size_t)C - 1) / (size_t)C);
  size_t total = (size_t)N * C;
  float *xs = calloc(total, 4), *ones = malloc(total * 4), *want = calloc(total, 4),
        *got = calloc(total, 4), *bias = calloc((size_t)C, 4), *dbias = calloc((size_t)C, 4);
  memcpy(xs, x, n * 4);
  for (size_t i = 0; i < total; i++) ones[i] = 1.0f;
  ref_bias_act_bwd(want, dbias, ones, xs, bias, BC_ACT_GELU, N, C);
  cl_mem dx = up(f, got, total * 4), ddo = up(f, ones, total * 4), dxx = up(f, xs, total * 4),
         db = up(f, bias, (size_t)C * 4);
  OK(bc_op_bias_act_bwd(f->ctx, f->ops, dx, ddo, dxx, db, (int)BC_ACT_GELU, N, C));
  down(f, dx, got, total * 4);
  char what[160];
  NAME(what, "bias_act_bwd gelu sweep [-12, 12] N=%d C=%d", N, C);
  fprintf(stderr, "%s: max |err| %.3g against ref_bias_act_bwd\n", what,
          bc_max_abs_diff(got, want, n));
  assert_true(bc_check_close(what, got, want, n, 1e-6f, 1e-5f, 0));
  size_t m = 0;
  for (size_t i = 0; i < n; i++) { /* the exact derivative where it is a normal float */
    double v = xs[i], cdf = 0.5 * erfc(-v * 0.70710678118654752440),
           xpdf = v * exp(-0.5 * v * v) * 0.39894228040143267794, e = cdf + xpdf;
    if (fabs(e) < 1.17549435e-38) continue;
    xs[m] = xs[i], got[m] = got[i], want[m] = (float)e;
    ones[m++] = (float)fmax(fabs(cdf), fabs(xpdf)); /* the ulp scale */
  }
  NAME(what, "bias_act_bwd gelu sweep [-12, 12] vs the exact derivative in double");
  bc_err_stats es = bc_error_stats(what, xs, got, want, ones, m);
  if (f->ops->kset == BC_KSET_CPU) assert_true(es.max_ulp <= 8.0);
  clReleaseMemObject(dx); clReleaseMemObject(ddo); clReleaseMemObject(dxx); clReleaseMemObject(db);
  free(x); free(xs); free(ones); free(want); free(got); free(bias); free(dbias);
}

static void test_softmax_bwd(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  int shapes[][3] = {{1, 1, 1}, {2, 3, 7}, {1, 2, 131}};
  for (int s = 0; s < 3; s++) {
    int B = shapes[s][0], NH = shapes[s][1], T = shapes[s][2];
    size_t n = (size_t)B * NH * T * T;
    bc_rng r;
    bc_rng_seed(&r, 300 + s);
    float *p = rnd(&r, n, -3, 3), *dp = rnd(&r, n, -1, 1), *want = malloc(n * 4),
          *got = malloc(n * 4);
    ref_softmax_fwd(p, NULL, 1.0f, B, NH, T); /* real probabilities */
    ref_softmax_bwd(want, dp, p, 0.125f, B, NH, T);
    cl_mem dpp = up(f, p, n * 4), ddp = up(f, dp, n * 4);
    OK(bc_op_softmax_bwd(f->ctx, f->ops, ddp, ddp, dpp, 0.125f, B * NH * T, T));
    down(f, ddp, got, n * 4);
    char what[96];
    NAME(what, "softmax_bwd B=%d NH=%d T=%d", B, NH, T);
    assert_true(bc_check_close(what, got, want, n, 1e-6f, 1e-4f, 300 + s));
    clReleaseMemObject(dpp); clReleaseMemObject(ddp);
    free(p); free(dp); free(want); free(got);
  }
}

/* layernorm_bwd then the table scatter, against ref_embedding_pos_bwd (which runs both), in
 * BERT's form (positions t, two token types) and RoBERTa's / MPNet's (positions counted over
 * non-padding ids, padding id 1 among the ids, shared rows; no token types). */
static void embedding_bwd_form(fixture *f, int form) {
  int B = 3, T = 7, C = 33, V = 11, P = T + 3, TT = form ? 0 : 2;
  size_t N = (size_t)B * T;
  uint64_t seed = 400 + (uint64_t)form;
  bc_rng r;
  bc_rng_seed(&r, seed);
  float *we = rnd(&r, (size_t)V * C, -1, 1), *pe = rnd(&r, (size_t)P * C, -1, 1),
        *te = rnd(&r, (size_t)2 * C, -1, 1), *lw = rnd(&r, C, 0.5f, 1.5f),
        *dout = rnd(&r, N * C, -1, 1);
  int32_t *ids = malloc(N * 4), *tt = malloc(N * 4), *pos = malloc(N * 4);
  for (size_t i = 0; i < N; i++) ids[i] = (int32_t)(bc_rng_u32(&r) % 5), tt[i] = (int32_t)(i % 3 == 0);
  bc_config cfg = {0};
  cfg.pos_kind = form ? BC_POS_PADDED : BC_POS_ARANGE;
  cfg.padding_idx = 1;
  ref_position_ids(pos, ids, &cfg, B, T); /* < padding_idx + 1 + T = P - 1 */
  float *dword = calloc((size_t)V * C, 4), *dpos = calloc((size_t)P * C, 4),
        *dtype = calloc((size_t)2 * C, 4), *dlw = calloc(C, 4), *dlb = calloc(C, 4);
  ref_embedding_pos_bwd(dword, dpos, dtype, dlw, dlb, dout, ids, pos, tt, we, pe, TT ? te : NULL,
                        lw, 1e-12f, B, T, C);
  float *xin = malloc(N * C * 4);
  for (size_t i = 0; i < N; i++)
    for (int c = 0; c < C; c++) {
      float w0 = we[(size_t)ids[i] * C + c], p0 = pe[(size_t)pos[i] * C + c];
      xin[i * C + c] = TT ? (w0 + te[(size_t)tt[i] * C + c]) + p0 : w0 + p0;
    }
  float *z = calloc((size_t)V * C + (size_t)P * C + N * C * 2 + 4, 4);
  cl_mem ddy = up(f, z, N * C * 4), dst = up(f, z, N * 8), dlw_ = up(f, z, C * 4),
         dlb_ = up(f, z, C * 4), ddo = up(f, dout, N * C * 4), dx = up(f, xin, N * C * 4),
         dw = up(f, lw, C * 4), dwd = up(f, z, (size_t)V * C * 4), dpd = up(f, z, (size_t)P * C * 4),
         dtd = up(f, z, (size_t)2 * C * 4), dtt = up(f, tt, N * 4);
  OK(bc_op_layernorm_bwd(f->ctx, f->ops, ddy, dst, dlw_, dlb_, ddo, dx, dw, 1e-12f, (int)N, C));
  OK(bc_op_embedding_bwd(f->ctx, f->ops, dwd, dpd, dtd, ddy, ids, form ? pos : NULL, dtt, B, T,
                         TT, C));
  float *g = malloc((size_t)V * C * 4 + (size_t)P * C * 4);
  char what[128];
  NAME(what, "embedding_bwd dword B=3 T=7 C=33 (%s)", form ? "padded positions, no types" : "BERT");
  down(f, dwd, g, (size_t)V * C * 4);
  assert_true(bc_check_close(what, g, dword, (size_t)V * C, 1e-5f, 1e-4f, seed));
  NAME(what, "embedding_bwd dpos (%s)", form ? "padded positions" : "positions t");
  down(f, dpd, g, (size_t)P * C * 4);
  assert_true(bc_check_close(what, g, dpos, (size_t)P * C, 1e-5f, 1e-4f, seed));
  NAME(what, "embedding_bwd dtype (%s)", form ? "untouched without types" : "two types");
  down(f, dtd, g, (size_t)2 * C * 4);
  assert_true(bc_check_close(what, g, dtype, (size_t)2 * C, 1e-5f, 1e-4f, seed));
  down(f, dlw_, g, C * 4);
  assert_true(bc_check_close("embedding_bwd dln_w", g, dlw, C, 1e-5f, 1e-4f, seed));
  down(f, dlb_, g, C * 4);
  assert_true(bc_check_close("embedding_bwd dln_b", g, dlb, C, 1e-5f, 1e-4f, seed));
  cl_mem ms[] = {ddy, dst, dlw_, dlb_, ddo, dx, dw, dwd, dpd, dtd, dtt};
  for (int i = 0; i < 11; i++) clReleaseMemObject(ms[i]);
  free(we); free(pe); free(te); free(lw); free(dout); free(ids); free(tt); free(pos); free(dword);
  free(dpos); free(dtype); free(dlw); free(dlb); free(xin); free(z); free(g);
}

static void test_embedding_bwd(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  embedding_bwd_form(f, 0);
  embedding_bwd_form(f, 1);
}

static void test_cross_entropy_norm_adamw(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  int B = 5, K = 3;
  bc_rng r;
  bc_rng_seed(&r, 500);
  float *z = rnd(&r, (size_t)B * K, -3, 3), *want = malloc((size_t)B * K * 4),
        *got = malloc((size_t)B * K * 4);
  int32_t labels[5] = {0, 2, -100, 1, 2};
  double lref = ref_cross_entropy_fwd_bwd(want, z, labels, B, K, 0.5f), lgot = 0;
  cl_mem dz = up(f, z, (size_t)B * K * 4), ddz = up(f, got, (size_t)B * K * 4);
  OK(bc_op_cross_entropy(f->ctx, f->ops, ddz, dz, labels, B, K, 0.5f, &lgot));
  down(f, ddz, got, (size_t)B * K * 4);
  assert_true(bc_check_close("cross_entropy dlogits B=5 K=3", got, want, (size_t)B * K, 1e-6f,
                             1e-5f, 500));
  float fl = (float)lgot, fr = (float)lref;
  assert_true(bc_check_close("cross_entropy loss", &fl, &fr, 1, 1e-6f, 1e-5f, 500));
  clReleaseMemObject(dz); clReleaseMemObject(ddz);
  free(z); free(want); free(got);
  /* global gradient norm over a buffer that is not a multiple of the reduction block */
  size_t n = 70001;
  float *gr = rnd(&r, n, -1, 1);
  double nref = ref_clip_grad_norm(gr, n, 0.0f), ngot = 0;
  cl_mem dg = up(f, gr, n * 4);
  OK(bc_op_grad_norm(f->ctx, f->ops, dg, n, &ngot));
  float a = (float)ngot, b = (float)nref;
  assert_true(bc_check_close("grad_norm n=70001", &a, &b, 1, 0, 1e-5f, 500));
  /* three AdamW steps on the tensor at offset 1000 of the flat buffers, with clipping scale */
  size_t off = 1000, len = 4097;
  float *p = rnd(&r, n, -1, 1), *m = calloc(n, 4), *v = calloc(n, 4);
  float *pg = malloc(n * 4), *mg = malloc(n * 4), *vg = malloc(n * 4), *gs = malloc(n * 4);
  memcpy(pg, p, n * 4);
  cl_mem dp = up(f, p, n * 4), dm = up(f, m, n * 4), dv = up(f, v, n * 4);
  for (int t = 1; t <= 3; t++) {
    float gscale = 0.7f, lr = 1e-3f * t;
    for (size_t i = 0; i < n; i++) gs[i] = gr[i] * gscale;
    ref_adamw_update(p + off, gs + off, m + off, v + off, len, lr, 0.9f, 0.999f, 1e-8f, 0.01f, t);
    OK(bc_op_adamw(f->ctx, f->ops, dp, dm, dv, dg, off, len, gscale, lr, 0.9f, 0.999f, 1e-8f,
                   0.01f, t));
  }
  down(f, dp, pg, n * 4);
  down(f, dm, mg, n * 4);
  down(f, dv, vg, n * 4);
  assert_true(bc_check_close("adamw params after 3 steps (n=4097 at offset 1000)", pg, p, n,
                             1e-7f, 1e-5f, 500));
  assert_true(bc_check_close("adamw m", mg, m, n, 1e-8f, 1e-5f, 500));
  assert_true(bc_check_close("adamw v", vg, v, n, 1e-10f, 1e-5f, 500));
  cl_mem ms[] = {dg, dp, dm, dv};
  for (int i = 0; i < 4; i++) clReleaseMemObject(ms[i]);
  free(gr); free(p); free(m); free(v); free(pg); free(mg); free(vg); free(gs);
}

/* The training step's forward helpers (cl/trainer.cl), against plain loops and the reference's
 * LayerNorm and dropout: embedding sum, LayerNorm, bias + dropout + residual. */
static void trainer_helpers(fixture *f, int B, int T, int C, uint64_t seed) {
  int V = 9, P = T + 1, TT = 2, N = B * T;
  size_t n = (size_t)N * C;
  char what[128];
  bc_rng r;
  bc_rng_seed(&r, seed);
  float *we = rnd(&r, (size_t)V * C, -1, 1), *pe = rnd(&r, (size_t)P * C, -1, 1),
        *te = rnd(&r, (size_t)TT * C, -1, 1), *x = rnd(&r, n, -2, 2), *res = rnd(&r, n, -1, 1),
        *w = rnd(&r, C, 0.5f, 1.5f), *b = rnd(&r, C, -0.5f, 0.5f);
  int32_t *ids = malloc((size_t)N * 4), *tt = malloc((size_t)N * 4);
  for (int i = 0; i < N; i++) ids[i] = (int32_t)(bc_rng_u32(&r) % V), tt[i] = i % 2;
  float *want = malloc(n * 3 * 4), *got = malloc(n * 3 * 4);
  cl_mem dwe = up(f, we, (size_t)V * C * 4), dpe = up(f, pe, (size_t)P * C * 4),
         dte = up(f, te, (size_t)TT * C * 4), dids = up(f, ids, (size_t)N * 4),
         dtt = up(f, tt, (size_t)N * 4), dx = up(f, x, n * 4), dres = up(f, res, n * 4),
         dw = up(f, w, C * 4), db = up(f, b, C * 4), dout = up(f, want, n * 3 * 4);
  /* embedding sum: BERT's form (positions t, types), and positions from a permutation-like
   * table read without types (RoBERTa's and MPNet's forms only differ in the ids) */
  int32_t *pos = malloc((size_t)N * 4);
  for (int form = 0; form < 2; form++) {
    for (int i = 0; i < N; i++) pos[i] = form ? (int32_t)((i * 5 + 1) % P) : i % T;
    for (int i = 0; i < N; i++)
      for (int c = 0; c < C; c++) {
        float w0 = we[(size_t)ids[i] * C + c], p0 = pe[(size_t)pos[i] * C + c];
        want[(size_t)i * C + c] = form ? w0 + p0 : (w0 + te[(size_t)tt[i] * C + c]) + p0;
      }
    cl_mem dpos = up(f, pos, (size_t)N * 4);
    OK(bc_op_embedding_sum(f->ctx, f->ops, dout, dids, dpos, dtt, dwe, dpe, dte, N, C,
                           form ? 0 : TT));
    down(f, dout, got, n * 4);
    NAME(what, "embedding_sum_fwd N=%d C=%d %s", N, C, form ? "(no types)" : "(types)");
    assert_true(bc_check_close(what, got, want, n, 0, 0, seed));
    clReleaseMemObject(dpos);
  }
  free(pos);
  /* LayerNorm */
  float eps = 1e-12f;
  ref_layernorm_fwd(want, x, w, b, eps, N, C);
  OK(bc_op_layernorm_fwd(f->ctx, f->ops, dout, dx, dw, db, eps, N, C));
  down(f, dout, got, n * 4);
  NAME(what, "layernorm_fwd N=%d C=%d", N, C);
  assert_true(bc_check_close(what, got, want, n, 1e-5f, 1e-5f, seed));
  /* bias + dropout + residual, with and without the residual */
  ref_dropout d = {.p = 0.25f, .seed = 99, .step = 2, .id = 17};
  for (int has_res = 0; has_res < 2; has_res++) {
    for (size_t i = 0; i < n; i++) want[i] = x[i] + b[i % C];
    ref_dropout_fwd(want, want, n, &d);
    if (has_res)
      for (size_t i = 0; i < n; i++) want[i] += res[i];
    OK(bc_op_bias_dropout_residual(f->ctx, f->ops, dout, dx, db, has_res ? dres : NULL, d.p,
                                   d.seed, d.step, d.id, N, C));
    down(f, dout, got, n * 4);
    NAME(what, "bias_dropout_residual_fwd%s N=%d C=%d", has_res ? " (residual)" : "", N, C);
    assert_true(bc_check_close(what, got, want, n, 1e-6f, 1e-6f, seed));
  }
  cl_mem ms[] = {dwe, dpe, dte, dids, dtt, dx, dres, dw, db, dout};
  for (int i = 0; i < 10; i++) clReleaseMemObject(ms[i]);
  free(we); free(pe); free(te); free(x); free(res); free(w); free(b); free(ids); free(tt);
  free(want); free(got);
}

static void test_trainer_helpers(void **state) {
  fixture *f = *state;
  if (!f->ctx) skip();
  trainer_helpers(f, 3, 7, 12, 600); /* C: one 8-lane block and a tail of 4 */
  trainer_helpers(f, 2, 9, 44, 601); /* 18 rows (two CPU groups) */
}

/* test_x_gpu and test_x_cpu: test_x on each kernel set */
#define BOTH_SETS(name)                                                                     \
  static void name##_gpu(void **state) {                                                    \
    fixture *f = *state;                                                                    \
    f->ops = &f->set[BC_KSET_GPU];                                                          \
    name(state);                                                                            \
  }                                                                                         \
  static void name##_cpu(void **state) {                                                    \
    fixture *f = *state;                                                                    \
    f->ops = &f->set[BC_KSET_CPU];                                                          \
    name(state);                                                                            \
  }
#define TESTS(X)                                                                            \
  X(test_dropout) X(test_layernorm_bwd) X(test_bias_act_colsum_tanh)                        \
  X(test_bias_act_bwd_gelu_sweep) X(test_softmax_bwd) X(test_embedding_bwd)                 \
  X(test_cross_entropy_norm_adamw) X(test_trainer_helpers)
TESTS(BOTH_SETS)
#define BOTH_ENTRIES(name) cmocka_unit_test(name##_gpu), cmocka_unit_test(name##_cpu),

int main(void) {
  const struct CMUnitTest tests[] = {TESTS(BOTH_ENTRIES)};
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("train_ops", tests, setup, teardown);
}
