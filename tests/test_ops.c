/* The op-test table: every OpenCL kernel against its plain-C reference twin (src/ref) on random
 * inputs with a fixed seed, at shapes that include T = 1, odd sizes and sizes that are not a
 * multiple of the work-group size (ggml's test-backend-ops idea). Failures print op, shape,
 * index, expected, got and seed. Every row runs on both kernel sets (bc_kset: the GPU-shaped and
 * the CPU-shaped variants of our kernels), whatever the device, so both are tested on PoCL.
 * Under oclgrind (BERTCL_OCLGRIND=1) the rows that only exercise CLBlast's own kernels are
 * skipped and shapes stay small. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "encoder/ops.h"
#include "io/writers.h"
#include "ref/ref.h"
#include "testutil.h"

typedef struct {
  bertcl_ctx *ctx;
  bc_ops set[2]; /* indexed by bc_kset */
  bc_ops *ops;   /* the set the rows run now */
} fixture;

static int under_oclgrind(void) { return getenv("BERTCL_OCLGRIND") != NULL; }

static cl_mem upload_f(fixture *f, const float *x, size_t n) {
  return bc_test_upload(f->ctx, x, n * 4);
}
static cl_mem upload_i(fixture *f, const int32_t *x, size_t n) {
  return bc_test_upload(f->ctx, x, n * 4);
}
static void download(fixture *f, cl_mem m, float *x, size_t n) {
  bc_test_download(f->ctx, m, x, n * 4);
}
#define rnd bc_rng_alloc
static int32_t *random_mask(bc_rng *r, int B, int T) {
  int32_t *m = malloc((size_t)B * T * sizeof *m);
  for (int b = 0; b < B; b++) {
    int len = 1 + (int)(bc_rng_u32(r) % (uint32_t)T); /* at least one real token */
    if (b == 0) len = T;
    for (int t = 0; t < T; t++) m[(size_t)b * T + t] = t < len;
  }
  return m;
}
#define OK(call) assert_int_equal((call), BERTCL_OK)
/* "op shape (cpu set)": what a failure names */
#define SHAPE(buf, ...)                                                                  \
  do {                                                                                   \
    int n_ = snprintf(buf, sizeof buf, __VA_ARGS__);                                     \
    if (n_ > 0 && (size_t)n_ < sizeof buf)                                               \
      snprintf(buf + n_, sizeof buf - (size_t)n_, " (%s set)", bc_kset_name(f->ops->kset)); \
  } while (0)

/* ---- rows -------------------------------------------------------------------------------- */

typedef struct {
  const char *op;
  int B, T, C, NH, I, V;
  float atol, rtol;
} op_row;

/* Two forms: BERT's (positions t, two token types) and RoBERTa's / MPNet's (positions counted
 * over non-padding ids, padding_idx 1 appearing among the ids) without token types (TT 0);
 * positions by position_ids_fwd, as the encoder runs them. */
static void run_embedding_fwd(fixture *f, const op_row *row, uint64_t seed) {
  for (int form = 0; form < 2; form++) {
    bc_rng r;
    bc_rng_seed(&r, seed + (uint64_t)form);
    int B = row->B, T = row->T, C = row->C, V = row->V, P = T + 3, TT = form ? 0 : 2;
    size_t N = (size_t)B * T;
    float *wte = rnd(&r, (size_t)V * C, -1, 1), *wpe = rnd(&r, (size_t)P * C, -1, 1);
    float *wtt = rnd(&r, (size_t)2 * C, -1, 1), *lw = rnd(&r, C, 0.5f, 1.5f),
          *lb = rnd(&r, C, -0.5f, 0.5f);
    int32_t *ids = malloc(N * 4), *tt = malloc(N * 4), *pos = malloc(N * 4);
    for (size_t i = 0; i < N; i++) {
      ids[i] = (int32_t)(bc_rng_u32(&r) % (uint32_t)V);
      tt[i] = (int32_t)(bc_rng_u32(&r) % 2);
    }
    bc_config cfg = {0};
    cfg.pos_kind = form ? BC_POS_PADDED : BC_POS_ARANGE;
    cfg.padding_idx = 1;
    ref_position_ids(pos, ids, &cfg, B, T); /* < padding_idx + 1 + T = P - 1 */
    float *want = malloc(N * C * 4), *got = malloc(N * C * 4);
    ref_embedding_pos_fwd(want, ids, pos, tt, wte, wpe, TT ? wtt : NULL, lw, lb, 1e-12f, B, T, C);
    /* split the vocabulary in two buffers at V/2, as for a table above the max allocation */
    int split = V / 2;
    cl_mem o = upload_f(f, got, N * C), di = upload_i(f, ids, N), dt = upload_i(f, tt, N);
    cl_mem dpos = upload_i(f, pos, N);
    cl_mem w0 = upload_f(f, wte, (size_t)split * C),
           w1 = upload_f(f, wte + (size_t)split * C, (size_t)(V - split) * C);
    cl_mem dp = upload_f(f, wpe, (size_t)P * C), dtt = upload_f(f, wtt, (size_t)2 * C),
           dw = upload_f(f, lw, C), db = upload_f(f, lb, C);
    OK(bc_op_position_ids(f->ctx, f->ops, dpos, di, B, T, form, 1));
    OK(bc_op_embedding(f->ctx, f->ops, o, di, dpos, dt, w0, w1, dp, dtt, dw, db, 1e-12f, B, T,
                       C, V, split, P, TT));
    download(f, o, got, N * C);
    char what[128];
    SHAPE(what, "embedding_fwd %s B=%d T=%d C=%d V=%d TT=%d", form ? "padded positions" : "",
          B, T, C, V, TT);
    assert_true(bc_check_close(what, got, want, N * C, row->atol, row->rtol, seed));
    cl_mem ms[] = {o, di, dt, dpos, w0, w1, dp, dtt, dw, db};
    for (size_t i = 0; i < 10; i++) clReleaseMemObject(ms[i]);
    free(wte); free(wpe); free(wtt); free(lw); free(lb); free(ids); free(tt); free(pos);
    free(want); free(got);
  }
}

static void run_bias_residual_layernorm_fwd(fixture *f, const op_row *row, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  int N = row->B * row->T, C = row->C;
  float *x = rnd(&r, (size_t)N * C, -3, 3), *bias = rnd(&r, C, -1, 1),
        *res = rnd(&r, (size_t)N * C, -3, 3), *w = rnd(&r, C, 0.5f, 1.5f),
        *b = rnd(&r, C, -0.5f, 0.5f);
  float *want = malloc((size_t)N * C * 4), *got = malloc((size_t)N * C * 4);
  ref_bias_residual_layernorm_fwd(want, x, bias, res, w, b, 1e-12f, N, C);
  cl_mem dx = upload_f(f, x, (size_t)N * C), dbias = upload_f(f, bias, C),
         dres = upload_f(f, res, (size_t)N * C), dw = upload_f(f, w, C), db = upload_f(f, b, C);
  /* in place (out == x), as the encoder runs it */
  OK(bc_op_bias_residual_layernorm(f->ctx, f->ops, dx, dx, dbias, dres, dw, db, 1e-12f, N, C));
  download(f, dx, got, (size_t)N * C);
  char what[128];
  SHAPE(what, "bias_residual_layernorm_fwd N=%d C=%d", N, C);
  assert_true(bc_check_close(what, got, want, (size_t)N * C, row->atol, row->rtol, seed));
  cl_mem ms[] = {dx, dbias, dres, dw, db};
  for (size_t i = 0; i < 5; i++) clReleaseMemObject(ms[i]);
  free(x); free(bias); free(res); free(w); free(b); free(want); free(got);
}

static void run_bias_act_fwd(fixture *f, const op_row *row, uint64_t seed) {
  int N = row->B * row->T, C = row->C;
  bc_act acts[] = {BC_ACT_GELU, BC_ACT_GELU_TANH, BC_ACT_RELU};
  for (int a = 0; a < 3; a++) {
    bc_rng r;
    bc_rng_seed(&r, seed + (uint64_t)a);
    float *x = rnd(&r, (size_t)N * C, -4, 4), *bias = rnd(&r, C, -1, 1);
    float *want = malloc((size_t)N * C * 4), *got = malloc((size_t)N * C * 4);
    memcpy(want, x, (size_t)N * C * 4);
    ref_bias_act_fwd(want, bias, acts[a], N, C);
    cl_mem dx = upload_f(f, x, (size_t)N * C), db = upload_f(f, bias, C);
    OK(bc_op_bias_act(f->ctx, f->ops, dx, db, (int)acts[a], N, C));
    download(f, dx, got, (size_t)N * C);
    char what[128];
    SHAPE(what, "bias_act_fwd act=%d N=%d C=%d", (int)acts[a], N, C);
    assert_true(bc_check_close(what, got, want, (size_t)N * C, row->atol, row->rtol, seed + a));
    clReleaseMemObject(dx);
    clReleaseMemObject(db);
    free(x); free(bias); free(want); free(got);
  }
}

/* GELU (erf form) on a dense sweep of inputs: the proof of the CPU set's polynomial erf (and a
 * measure of the builtin erf in the GPU set). Against the C reference (ref_bias_act_fwd, double
 * precision), every value within row->atol + row->rtol |ref|. The CPU set must also stay within
 * row->V ulp of the exact GELU, x Phi(x) with Phi = erfc(-x / sqrt 2) / 2 in double, at every x
 * where that is a normal float: relative accuracy into the far negative tail, where the erf form
 * 1 + erf(x / sqrt 2) cancels (in float in the GPU set, in double in the reference). */
static void run_bias_act_fwd_gelu_sweep(fixture *f, const op_row *row, uint64_t seed) {
  size_t n = 0;
  float *x = bc_sweep_alloc(12.0f, under_oclgrind() ? 18 : 12, &n);
  int C = row->C, N = (int)((n + (size_t)C - 1) / (size_t)C);
  size_t total = (size_t)N * C;
  float *xs = calloc(total, 4), *want = calloc(total, 4), *got = calloc(total, 4),
        *bias = calloc((size_t)C, 4);
  memcpy(xs, x, n * 4);
  memcpy(want, xs, total * 4);
  ref_bias_act_fwd(want, bias, BC_ACT_GELU, N, C);
  cl_mem dx = upload_f(f, xs, total), db = upload_f(f, bias, (size_t)C);
  OK(bc_op_bias_act(f->ctx, f->ops, dx, db, (int)BC_ACT_GELU, N, C));
  download(f, dx, got, total);
  char what[160];
  SHAPE(what, "bias_act_fwd gelu sweep [-12, 12] N=%d C=%d", N, C);
  fprintf(stderr, "%s: max |err| %.3g against ref_bias_act_fwd\n", what,
          bc_max_abs_diff(got, want, n));
  assert_true(bc_check_close(what, got, want, n, row->atol, row->rtol, seed));
  size_t m = 0;
  for (size_t i = 0; i < n; i++) { /* exact GELU where it is a normal float, compacted */
    double e = (double)xs[i] * 0.5 * erfc(-(double)xs[i] * 0.70710678118654752440);
    if (fabs(e) >= 1.17549435e-38) xs[m] = xs[i], got[m] = got[i], want[m++] = (float)e;
  }
  SHAPE(what, "bias_act_fwd gelu sweep [-12, 12] vs x erfc(-x / sqrt 2) / 2 in double");
  bc_err_stats es = bc_error_stats(what, xs, got, want, NULL, m);
  if (f->ops->kset == BC_KSET_CPU) assert_true(es.max_ulp <= (double)row->V);
  clReleaseMemObject(dx);
  clReleaseMemObject(db);
  free(x); free(xs); free(want); free(got); free(bias);
}

/* Without and with MPNet's relative position bias (NH, T, T) added after the scale. */
static void run_softmax_fwd(fixture *f, const op_row *row, uint64_t seed) {
  for (int with_bias = 0; with_bias < 2; with_bias++) {
    bc_rng r;
    bc_rng_seed(&r, seed + (uint64_t)with_bias);
    int B = row->B, T = row->T, NH = row->NH;
    size_t n = (size_t)B * NH * T * T;
    float *s = rnd(&r, n, -8, 8), *want = malloc(n * 4), *got = malloc(n * 4);
    float *bias = rnd(&r, (size_t)NH * T * T, -2, 2);
    int32_t *mask = random_mask(&r, B, T);
    memcpy(want, s, n * 4);
    float scale = 0.353553f;
    ref_softmax_bias_fwd(want, with_bias ? bias : NULL, mask, scale, B, NH, T);
    cl_mem ds = upload_f(f, s, n), dm = upload_i(f, mask, (size_t)B * T);
    cl_mem dbias = upload_f(f, bias, (size_t)NH * T * T);
    OK(bc_op_softmax(f->ctx, f->ops, ds, dm, with_bias ? dbias : NULL, scale, B, NH, T));
    download(f, ds, got, n);
    char what[128];
    SHAPE(what, "softmax_fwd%s B=%d NH=%d T=%d", with_bias ? " with position bias" : "", B, NH,
          T);
    assert_true(bc_check_close(what, got, want, n, row->atol, row->rtol, seed));
    clReleaseMemObject(dbias);
    clReleaseMemObject(ds);
    clReleaseMemObject(dm);
    free(s); free(want); free(got); free(mask); free(bias);
  }
}

/* split_heads and merge_heads move data; their twins are these loops. */
static void ref_split_heads(float *q, float *k, float *v, const float *qkv, const float *bias,
                            int B, int T, int C, int NH) {
  int HS = C / NH;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int t = 0; t < T; t++)
        for (int d = 0; d < HS; d++) {
          size_t dst = (((size_t)b * NH + h) * T + t) * HS + d;
          size_t src = ((size_t)b * T + t) * 3 * C + (size_t)h * HS + d;
          q[dst] = qkv[src] + bias[h * HS + d];
          k[dst] = qkv[src + C] + bias[C + h * HS + d];
          v[dst] = qkv[src + 2 * C] + bias[2 * C + h * HS + d];
        }
}

static void run_split_merge_heads_fwd(fixture *f, const op_row *row, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  int B = row->B, T = row->T, C = row->C, NH = row->NH;
  size_t n = (size_t)B * T * C;
  float *qkv = rnd(&r, 3 * n, -1, 1), *bias = rnd(&r, 3 * (size_t)C, -1, 1);
  float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *got = malloc(n * 4);
  ref_split_heads(q, k, v, qkv, bias, B, T, C, NH);
  cl_mem dqkv = upload_f(f, qkv, 3 * n), db = upload_f(f, bias, 3 * (size_t)C);
  cl_mem dq = upload_f(f, got, n), dk = upload_f(f, got, n), dv = upload_f(f, got, n);
  OK(bc_op_split_heads(f->ctx, f->ops, dq, dk, dv, dqkv, db, B, T, C, NH));
  char what[128];
  SHAPE(what, "split_heads_fwd B=%d T=%d C=%d NH=%d", B, T, C, NH);
  download(f, dq, got, n);
  assert_true(bc_check_close(what, got, q, n, 0, 0, seed));
  download(f, dk, got, n);
  assert_true(bc_check_close(what, got, k, n, 0, 0, seed));
  download(f, dv, got, n);
  assert_true(bc_check_close(what, got, v, n, 0, 0, seed));
  /* merge_heads inverts the head layout: merging q must give qkv's first third + bias */
  float *want = malloc(n * 4);
  for (size_t i = 0; i < (size_t)B * T; i++)
    for (int c = 0; c < C; c++) want[i * C + c] = qkv[i * 3 * C + c] + bias[c];
  cl_mem dout = upload_f(f, got, n);
  OK(bc_op_merge_heads(f->ctx, f->ops, dout, dq, B, T, C, NH));
  download(f, dout, got, n);
  SHAPE(what, "merge_heads_fwd B=%d T=%d C=%d NH=%d", B, T, C, NH);
  assert_true(bc_check_close(what, got, want, n, 0, 0, seed));
  cl_mem ms[] = {dqkv, db, dq, dk, dv, dout};
  for (size_t i = 0; i < 6; i++) clReleaseMemObject(ms[i]);
  free(qkv); free(bias); free(q); free(k); free(v); free(got); free(want);
}

static void run_pool_fwd(fixture *f, const op_row *row, uint64_t seed) {
  int B = row->B, T = row->T, C = row->C;
  int modes[] = {BC_POOL_CLS, BC_POOL_MEAN, BC_POOL_MAX};
  for (int m = 0; m < 3; m++) {
    bc_rng r;
    bc_rng_seed(&r, seed + (uint64_t)m);
    float *h = rnd(&r, (size_t)B * T * C, -2, 2);
    int32_t *mask = random_mask(&r, B, T);
    float *want = malloc((size_t)B * C * 4), *got = malloc((size_t)B * 2 * C * 4);
    ref_pool_fwd(want, h, mask, modes[m], B, T, C);
    cl_mem dh = upload_f(f, h, (size_t)B * T * C), dm = upload_i(f, mask, (size_t)B * T);
    cl_mem dout = upload_f(f, got, (size_t)B * 2 * C);
    /* written at column C of a (B, 2C) buffer, as when several poolings share one output */
    OK(bc_op_pool(f->ctx, f->ops, dout, dh, dm, modes[m], B, T, C, 2 * C, C));
    download(f, dout, got, (size_t)B * 2 * C);
    for (int b = 0; b < B; b++) memmove(got + (size_t)b * C, got + (size_t)b * 2 * C + C, C * 4);
    char what[128];
    SHAPE(what, "pool_fwd mode=%d B=%d T=%d C=%d", modes[m], B, T, C);
    assert_true(bc_check_close(what, got, want, (size_t)B * C, row->atol, row->rtol, seed + m));
    clReleaseMemObject(dh); clReleaseMemObject(dm); clReleaseMemObject(dout);
    free(h); free(mask); free(want); free(got);
  }
}

static void run_gather_cls_l2norm_fwd(fixture *f, const op_row *row, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  int B = row->B, T = row->T, C = row->C;
  float *h = rnd(&r, (size_t)B * T * C, -2, 2);
  float *want = malloc((size_t)B * C * 4), *got = malloc((size_t)B * C * 4);
  for (int b = 0; b < B; b++) memcpy(want + (size_t)b * C, h + (size_t)b * T * C, C * 4);
  cl_mem dh = upload_f(f, h, (size_t)B * T * C), dout = upload_f(f, want, (size_t)B * C);
  OK(bc_op_gather_cls(f->ctx, f->ops, dout, dh, B, T, C));
  download(f, dout, got, (size_t)B * C);
  char what[128];
  SHAPE(what, "gather_cls_fwd B=%d T=%d C=%d", B, T, C);
  assert_true(bc_check_close(what, got, want, (size_t)B * C, 0, 0, seed));
  ref_l2norm_fwd(want, want, B, C);
  OK(bc_op_l2norm(f->ctx, f->ops, dout, B, C));
  download(f, dout, got, (size_t)B * C);
  SHAPE(what, "l2norm_fwd N=%d C=%d", B, C);
  assert_true(bc_check_close(what, got, want, (size_t)B * C, row->atol, row->rtol, seed));
  clReleaseMemObject(dh); clReleaseMemObject(dout);
  free(h); free(want); free(got);
}

/* scale_add: concatenation into a wider row, then sum and mean across "layers" */
static void run_scale_add_fwd(fixture *f, const op_row *row, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  int N = row->B * row->T, C = row->C, W = 2 * C;
  float *a = rnd(&r, (size_t)N * C, -2, 2), *b = rnd(&r, (size_t)N * C, -2, 2);
  float *want = malloc((size_t)N * W * 4), *got = malloc((size_t)N * W * 4);
  for (size_t i = 0; i < (size_t)N; i++)
    for (int c = 0; c < C; c++) {
      want[i * W + c] = 0.5f * a[i * C + c];                       /* mean of a and b */
      want[i * W + C + c] = 0.5f * a[i * C + c] + 0.5f * b[i * C + c];
      want[i * W + c] = want[i * W + c] + 0.5f * b[i * C + c];
      want[i * W + C + c] = a[i * C + c]; /* then overwritten by concat of a (beta 0) */
    }
  cl_mem da = upload_f(f, a, (size_t)N * C), db = upload_f(f, b, (size_t)N * C);
  float *nan = malloc((size_t)N * W * 4);
  for (size_t i = 0; i < (size_t)N * W; i++) nan[i] = NAN; /* beta 0 must not read the output */
  cl_mem dout = upload_f(f, nan, (size_t)N * W);
  OK(bc_op_scale_add(f->ctx, f->ops, dout, da, 0.5f, 0.0f, N, C, W, 0));
  OK(bc_op_scale_add(f->ctx, f->ops, dout, db, 0.5f, 1.0f, N, C, W, 0));
  OK(bc_op_scale_add(f->ctx, f->ops, dout, da, 1.0f, 0.0f, N, C, W, C));
  download(f, dout, got, (size_t)N * W);
  char what[128];
  SHAPE(what, "scale_add_fwd N=%d C=%d", N, C);
  assert_true(bc_check_close(what, got, want, (size_t)N * W, row->atol, row->rtol, seed));
  clReleaseMemObject(da); clReleaseMemObject(db); clReleaseMemObject(dout);
  free(a); free(b); free(want); free(got); free(nan);
}

/* gather_tokens and word_pool, against these loops: real tokens of right-padded rows, and the
 * first / mean subword of each word id. */
static void run_gather_tokens_word_pool_fwd(fixture *f, const op_row *row, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  int B = row->B, T = row->T, C = row->C, W = 2 * C;
  float *h = rnd(&r, (size_t)B * T * C, -2, 2);
  int32_t *mask = random_mask(&r, B, T), *off = malloc(((size_t)B + 1) * 4);
  int32_t *wid = malloc((size_t)B * T * 4), *wb = malloc((size_t)B * T * 4),
          *ww = malloc((size_t)B * T * 4);
  off[0] = 0;
  int nw = 0;
  for (int b = 0; b < B; b++) {
    int len = 0, w = -1;
    for (int t = 0; t < T; t++) len += mask[(size_t)b * T + t];
    off[b + 1] = off[b] + len;
    for (int t = 0; t < T; t++) {
      int id = -1;
      if (t < len && t > 0 && t < len - 1) { /* [CLS] and [SEP] have no word */
        if (w < 0 || bc_rng_u32(&r) % 3 == 0) w++;
        id = w;
      }
      wid[(size_t)b * T + t] = id;
    }
    for (int k = 0; k <= w; k++, nw++) wb[nw] = b, ww[nw] = k;
  }
  size_t ntok = (size_t)off[B];
  float *want = calloc(ntok * W + 1, 4), *got = calloc(ntok * W + 1, 4);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < off[b + 1] - off[b]; t++)
      for (int c = 0; c < C; c++) {
        float x = h[((size_t)b * T + t) * C + c];
        want[((size_t)off[b] + t) * W + C + c] = 2.0f * x; /* alpha 2 at column C */
      }
  cl_mem dh = upload_f(f, h, (size_t)B * T * C), doff = upload_i(f, off, (size_t)B + 1);
  cl_mem dout = upload_f(f, want, ntok * W + 1);
  OK(bc_op_gather_tokens(f->ctx, f->ops, dout, dh, doff, 2.0f, 0.0f, B, T, C, W, C));
  download(f, dout, got, ntok * W);
  char what[128];
  SHAPE(what, "gather_tokens_fwd B=%d T=%d C=%d", B, T, C);
  assert_true(bc_check_close(what, got, want, ntok * W, 0, 0, seed));
  for (int mode = 1; mode <= 2; mode++) {
    float *wwant = calloc((size_t)nw * C + 1, 4), *wgot = calloc((size_t)nw * C + 1, 4);
    for (int k = 0; k < nw; k++)
      for (int c = 0; c < C; c++) {
        double s = 0;
        int n = 0;
        for (int t = 0; t < T; t++)
          if (wid[(size_t)wb[k] * T + t] == ww[k] && (mode == 2 || n == 0)) {
            s += h[((size_t)wb[k] * T + t) * C + c];
            n++;
          }
        wwant[(size_t)k * C + c] = n ? (float)(s / n) : 0.0f;
      }
    cl_mem did = upload_i(f, wid, (size_t)B * T), dwb = upload_i(f, wb, nw ? (size_t)nw : 1),
           dww = upload_i(f, ww, nw ? (size_t)nw : 1), dwo = upload_f(f, wgot, (size_t)nw * C + 1);
    OK(bc_op_word_pool(f->ctx, f->ops, dwo, dh, did, dwb, dww, mode, 1.0f, 0.0f, nw, T, C, C, 0));
    download(f, dwo, wgot, (size_t)nw * C);
    SHAPE(what, "word_pool_fwd mode=%d B=%d T=%d C=%d words=%d", mode, B, T, C, nw);
    assert_true(bc_check_close(what, wgot, wwant, (size_t)nw * C, 1e-6f, 1e-5f, seed));
    clReleaseMemObject(did); clReleaseMemObject(dwb); clReleaseMemObject(dww);
    clReleaseMemObject(dwo);
    free(wwant); free(wgot);
  }
  clReleaseMemObject(dh); clReleaseMemObject(doff); clReleaseMemObject(dout);
  free(h); free(mask); free(off); free(wid); free(wb); free(ww); free(want); free(got);
}

/* GEMM (CLBlast behind bc_gemm) in the two forms the encoder uses: Linear and strided batch. */
static void run_gemm(fixture *f, const op_row *row, uint64_t seed) {
  if (under_oclgrind()) return; /* CLBlast's kernels, not ours */
  bc_rng r;
  bc_rng_seed(&r, seed);
  int N = row->B * row->T, IC = row->C, OC = row->I;
  float *x = rnd(&r, (size_t)N * IC, -1, 1), *w = rnd(&r, (size_t)OC * IC, -1, 1);
  float *want = malloc((size_t)N * OC * 4), *got = malloc((size_t)N * OC * 4);
  ref_linear_fwd(want, x, w, NULL, N, IC, OC);
  cl_mem dx = upload_f(f, x, (size_t)N * IC), dw = upload_f(f, w, (size_t)OC * IC),
         dout = upload_f(f, want, (size_t)N * OC);
  OK(bc_linear(f->ctx, dout, 0, dx, 0, dw, 0, (size_t)N, (size_t)IC, (size_t)OC));
  download(f, dout, got, (size_t)N * OC);
  char what[128];
  SHAPE(what, "gemm linear N=%d IC=%d OC=%d", N, IC, OC);
  assert_true(bc_check_close(what, got, want, (size_t)N * OC, row->atol, row->rtol, seed));
  clReleaseMemObject(dx); clReleaseMemObject(dw); clReleaseMemObject(dout);
  free(x); free(w); free(want); free(got);
}

/* Attention as the encoder composes it: split_heads, batched q k^T, softmax, batched p v,
 * merge_heads; against ref_attention_fwd. */
static void run_attention(fixture *f, const op_row *row, uint64_t seed) {
  if (under_oclgrind()) return;
  bc_rng r;
  bc_rng_seed(&r, seed);
  int B = row->B, T = row->T, C = row->C, NH = row->NH, HS = C / NH;
  size_t n = (size_t)B * T * C;
  float *qkv = rnd(&r, 3 * n, -1, 1), *bias = rnd(&r, 3 * (size_t)C, -0.2f, 0.2f);
  int32_t *mask = random_mask(&r, B, T);
  float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *want = malloc(n * 4),
        *got = malloc(n * 4);
  /* ref_attention_fwd takes q, k, v as (B*T, C) */
  for (size_t i = 0; i < (size_t)B * T; i++)
    for (int c = 0; c < C; c++) {
      q[i * C + c] = qkv[i * 3 * C + c] + bias[c];
      k[i * C + c] = qkv[i * 3 * C + C + c] + bias[C + c];
      v[i * C + c] = qkv[i * 3 * C + 2 * C + c] + bias[2 * C + c];
    }
  ref_attention_fwd(want, NULL, q, k, v, mask, B, T, C, NH);
  size_t ns = (size_t)B * NH * T * T;
  cl_mem dqkv = upload_f(f, qkv, 3 * n), db = upload_f(f, bias, 3 * (size_t)C),
         dm = upload_i(f, mask, (size_t)B * T);
  cl_mem dq = upload_f(f, got, n), dk = upload_f(f, got, n), dv = upload_f(f, got, n),
         dctx = upload_f(f, got, n), dout = upload_f(f, got, n);
  float *zeros = calloc(ns, 4);
  cl_mem dsc = upload_f(f, zeros, ns);
  OK(bc_op_split_heads(f->ctx, f->ops, dq, dk, dv, dqkv, db, B, T, C, NH));
  bc_gemm_args g = {.trans_a = 0, .trans_b = 1, .m = (size_t)T, .n = (size_t)T,
                    .k = (size_t)HS, .alpha = 1.0f, .beta = 0.0f,
                    .a = dq, .lda = (size_t)HS, .a_stride = (size_t)T * HS,
                    .b = dk, .ldb = (size_t)HS, .b_stride = (size_t)T * HS,
                    .c = dsc, .ldc = (size_t)T, .c_stride = (size_t)T * T,
                    .batch = (size_t)B * NH};
  OK(bc_gemm(f->ctx, &g));
  OK(bc_op_softmax(f->ctx, f->ops, dsc, dm, NULL, 1.0f / sqrtf((float)HS), B, NH, T));
  bc_gemm_args g2 = {.trans_a = 0, .trans_b = 0, .m = (size_t)T, .n = (size_t)HS,
                     .k = (size_t)T, .alpha = 1.0f, .beta = 0.0f,
                     .a = dsc, .lda = (size_t)T, .a_stride = (size_t)T * T,
                     .b = dv, .ldb = (size_t)HS, .b_stride = (size_t)T * HS,
                     .c = dctx, .ldc = (size_t)HS, .c_stride = (size_t)T * HS,
                     .batch = (size_t)B * NH};
  OK(bc_gemm(f->ctx, &g2));
  OK(bc_op_merge_heads(f->ctx, f->ops, dout, dctx, B, T, C, NH));
  download(f, dout, got, n);
  char what[128];
  SHAPE(what, "attention B=%d T=%d C=%d NH=%d", B, T, C, NH);
  assert_true(bc_check_close(what, got, want, n, row->atol, row->rtol, seed));
  cl_mem ms[] = {dqkv, db, dm, dq, dk, dv, dctx, dout, dsc};
  for (size_t i = 0; i < 9; i++) clReleaseMemObject(ms[i]);
  free(qkv); free(bias); free(mask); free(q); free(k); free(v); free(want); free(got);
  free(zeros);
}

/* to_half: bit for bit the host writer's bc_f32_to_f16 (round to nearest even, overflow to inf,
 * half subnormals), on edge values then on floats of every magnitude half can hold and beyond */
static void run_to_half_fwd(fixture *f, const op_row *row, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  static const float edge[] = {
      0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e9f, INFINITY,
      -INFINITY, NAN, 5.9604645e-8f /* 2^-24 */, 2.9802322e-8f /* 2^-25: tie to 0 */,
      4.4703484e-8f /* 1.5 * 2^-25 */, 6.1035156e-5f /* 2^-14 */, 6.1e-5f, 1e-40f,
      1.00048828125f /* 1 + 2^-11: tie to 1 */, 1.00146484375f /* 1 + 3 * 2^-11: tie up */,
      3.14159265f, -2.71828183f};
  size_t ne = sizeof edge / sizeof edge[0], n = ne + (size_t)row->B * row->T * row->C;
  float *x = malloc(n * 4);
  memcpy(x, edge, ne * 4);
  for (size_t i = ne; i < n; i++) { /* sign, exponent 2^-30 .. 2^20, random mantissa */
    uint32_t u = bc_rng_u32(&r);
    uint32_t e = 97u + bc_rng_u32(&r) % 51u;
    u = (u & 0x807FFFFFu) | (e << 23);
    memcpy(&x[i], &u, 4);
  }
  uint16_t *got = malloc(n * 2);
  cl_mem din = upload_f(f, x, n);
  cl_mem dout = bc_test_upload(f->ctx, got, n * 2);
  OK(bc_op_to_half(f->ctx, f->ops, dout, din, (int)n));
  bc_test_download(f->ctx, dout, got, n * 2);
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint16_t want = bc_f32_to_f16(x[i]);
    int nan = (want & 0x7C00u) == 0x7C00u && (want & 0x3FFu);
    int ok = nan ? (got[i] & 0x7C00u) == 0x7C00u && (got[i] & 0x3FFu) : got[i] == want;
    if (!ok && bad++ < 5)
      fprintf(stderr, "MISMATCH to_half_fwd n=%zu: x[%zu] = %.9g (0x%08x): want 0x%04x got 0x%04x "
              "(seed %llu)\n", n, i, (double)x[i], (unsigned)(*(uint32_t *)(void *)&x[i]),
              want, got[i], (unsigned long long)seed);
  }
  assert_int_equal(bad, 0);
  clReleaseMemObject(din); clReleaseMemObject(dout);
  free(x); free(got);
}

/* Every op of the table: X(name) pairs row name "name" with its runner run_name and generates
 * the cmocka test test_name. */
#define OPS(X)                                                                                 \
  X(embedding_fwd) X(bias_residual_layernorm_fwd) X(bias_act_fwd) X(softmax_fwd)              \
  X(split_merge_heads_fwd) X(pool_fwd) X(gather_cls_l2norm_fwd) X(scale_add_fwd)              \
  X(gather_tokens_word_pool_fwd) X(gemm) X(attention) X(to_half_fwd) X(bias_act_fwd_gelu_sweep)

typedef void (*op_runner)(fixture *, const op_row *, uint64_t);
static const struct {
  const char *op;
  op_runner run;
} runners[] = {
#define RUNNER(name) {#name, run_##name},
    OPS(RUNNER)
#undef RUNNER
};

/* {op, B, T, C, NH, I, V, atol, rtol}: T = 1, odd sizes, C not a multiple of the work group
 * (128), C above it, a real MiniLM row width (384). For the CPU set: rows not a multiple of its
 * groups (16), widths below 8, with a tail after 8-lane blocks, and multiples of 8. */
static const op_row table[] = {
    {"embedding_fwd", 1, 1, 32, 4, 64, 50, 1e-5f, 1e-5f},
    {"embedding_fwd", 3, 7, 33, 3, 64, 101, 1e-5f, 1e-5f},
    {"embedding_fwd", 2, 5, 384, 12, 64, 77, 1e-5f, 1e-5f},
    {"embedding_fwd", 3, 7, 40, 4, 64, 20, 1e-5f, 1e-5f},
    {"bias_residual_layernorm_fwd", 1, 1, 1, 1, 1, 1, 1e-5f, 1e-5f},
    {"bias_residual_layernorm_fwd", 3, 7, 33, 1, 1, 1, 1e-5f, 1e-5f},
    {"bias_residual_layernorm_fwd", 2, 9, 300, 1, 1, 1, 1e-5f, 1e-5f},
    {"bias_residual_layernorm_fwd", 37, 1, 384, 1, 1, 1, 1e-5f, 1e-5f},
    {"bias_act_fwd", 1, 1, 1, 1, 1, 1, 1e-6f, 1e-5f},
    {"bias_act_fwd", 3, 7, 65, 1, 1, 1, 1e-6f, 1e-5f},
    {"bias_act_fwd", 17, 1, 8, 1, 1, 1, 1e-6f, 1e-5f},
    {"bias_act_fwd", 5, 1, 1536, 1, 1, 1, 1e-6f, 1e-5f},
    {"softmax_fwd", 1, 1, 4, 1, 1, 1, 1e-6f, 1e-5f},
    {"softmax_fwd", 3, 7, 12, 3, 1, 1, 1e-6f, 1e-5f},
    {"softmax_fwd", 2, 131, 8, 2, 1, 1, 1e-6f, 1e-5f},
    {"softmax_fwd", 1, 8, 1, 3, 1, 1, 1e-6f, 1e-5f},
    {"softmax_fwd", 3, 128, 1, 2, 1, 1, 1e-6f, 1e-5f},
    {"split_merge_heads_fwd", 1, 1, 4, 2, 1, 1, 0, 0},
    {"split_merge_heads_fwd", 3, 7, 12, 3, 1, 1, 0, 0},
    {"pool_fwd", 1, 1, 5, 1, 1, 1, 1e-6f, 1e-5f},
    {"pool_fwd", 4, 9, 33, 1, 1, 1, 1e-5f, 1e-5f},
    {"gather_cls_l2norm_fwd", 1, 1, 1, 1, 1, 1, 1e-6f, 1e-5f},
    {"gather_cls_l2norm_fwd", 5, 3, 385, 1, 1, 1, 1e-6f, 1e-5f},
    {"gather_cls_l2norm_fwd", 17, 2, 384, 1, 1, 1, 1e-6f, 1e-5f},
    {"scale_add_fwd", 1, 1, 1, 1, 1, 1, 1e-6f, 1e-6f},
    {"scale_add_fwd", 3, 7, 130, 1, 1, 1, 1e-6f, 1e-6f},
    {"gather_tokens_word_pool_fwd", 1, 1, 3, 1, 1, 1, 0, 0},
    {"gather_tokens_word_pool_fwd", 4, 9, 33, 1, 1, 1, 0, 0},
    {"gather_tokens_word_pool_fwd", 3, 130, 5, 1, 1, 1, 0, 0},
    {"gemm", 1, 1, 1, 1, 1, 1, 1e-5f, 1e-5f},
    {"gemm", 3, 7, 33, 1, 65, 1, 1e-4f, 1e-4f},
    {"attention", 1, 1, 8, 2, 1, 1, 1e-5f, 1e-4f},
    {"attention", 3, 7, 12, 3, 1, 1, 1e-5f, 1e-4f},
    {"attention", 2, 17, 32, 4, 1, 1, 1e-5f, 1e-4f},
    {"to_half_fwd", 1, 1, 1, 1, 1, 1, 0, 0},
    {"to_half_fwd", 3, 7, 131, 1, 1, 1, 0, 0},
    /* C: row width of the sweep's matrix; V: the CPU set's ulp bound */
    {"bias_act_fwd_gelu_sweep", 1, 1, 1000, 1, 1, 8, 1e-6f, 1e-5f},
};

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->ctx = bc_test_ctx();
  for (int k = 0; k < 2 && f->ctx; k++) {
    f->ctx->kset = (bc_kset)k; /* the op table builds the program for the context's set */
    if (bc_ops_init(f->ctx, &f->set[k]) != BERTCL_OK) {
      fprintf(stderr, "bc_ops_init (%s set): %s\n", bc_kset_name((bc_kset)k),
              bertcl_last_error(f->ctx));
      return -1;
    }
    assert_int_equal(f->set[k].kset, k);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  bc_ops_free(&f->set[0]);
  bc_ops_free(&f->set[1]);
  bertcl_ctx_free(f->ctx);
  free(f);
  return 0;
}

static void run_rows(void **state, const char *op) {
  fixture *f = *state;
  if (!f->ctx) skip();
  int n = 0;
  for (int k = 0; k < 2; k++) {
    f->ops = &f->set[k];
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
      if (strcmp(table[i].op, op) != 0) continue;
      for (size_t j = 0; j < sizeof runners / sizeof runners[0]; j++)
        if (strcmp(runners[j].op, op) == 0) runners[j].run(f, &table[i], 1000 + i);
      n++;
    }
  }
  assert_true(n > 0);
}

#define OP_TEST(name) \
  static void test_##name(void **state) { run_rows(state, #name); }
OPS(OP_TEST)

int main(void) {
#define OP_ENTRY(name) cmocka_unit_test(test_##name),
  const struct CMUnitTest tests[] = {OPS(OP_ENTRY)};
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("ops", tests, setup, teardown);
}
