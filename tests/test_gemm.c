/* The GEMM module (src/gemm): every backend against a double-precision loop on a table of
 * shapes (transposes, offsets, padded leading dimensions, alpha/beta, strided batches, the
 * two-level batch grid, products large enough to be split over threads), the BLAS backend's
 * buffer lifetime rule (operands released while the product is still queued), a buffer made
 * outside bc_buffer_new, the host-BLAS check against a broken sgemm, and the backend choice. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm/blas.h"
#include "gemm/gemm.h"
#include "testutil.h"

typedef struct {
  bertcl_ctx *ctx[2]; /* [0] CLBlast, [1] host BLAS (NULL when this machine has none) */
} fixture;

static bertcl_ctx *ctx_with(const char *gemm) {
  const char *dev = getenv("BERTCL_TEST_DEVICE");
  bertcl_ctx_options opt = {0};
  opt.device = (dev && *dev) ? dev : "pocl";
  opt.gemm = gemm;
  bertcl_ctx *ctx = NULL;
  if (bertcl_ctx_create(&ctx, &opt) != BERTCL_OK) {
    fprintf(stderr, "gemm=%s: %s\n", gemm, bertcl_last_error(NULL));
    return NULL;
  }
  return ctx;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->ctx[0] = ctx_with("clblast");
  f->ctx[1] = ctx_with("blas");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  bertcl_ctx_free(f->ctx[0]);
  bertcl_ctx_free(f->ctx[1]);
  free(f);
  return 0;
}

/* {m, n, k, trans_a, trans_b, batch, batch2, alpha, beta, pad, offset} */
typedef struct {
  int m, n, k, ta, tb, batch, batch2;
  float alpha, beta;
  int pad, off;
} shape;

static const shape table[] = {
    {1, 1, 1, 0, 1, 1, 1, 1.0f, 0.0f, 0, 0},        /* the op table's gemm rows */
    {21, 65, 33, 0, 1, 1, 1, 1.0f, 0.0f, 0, 0},
    {37, 29, 53, 0, 0, 1, 1, 0.5f, 0.25f, 3, 7},    /* every transpose case, alpha/beta, ld */
    {37, 29, 53, 1, 0, 1, 1, 1.0f, 1.0f, 2, 5},
    {37, 29, 53, 1, 1, 1, 1, -1.0f, 0.5f, 1, 1},
    {7, 7, 16, 0, 1, 12, 1, 1.0f, 0.0f, 0, 3},      /* attention scores, context */
    {7, 16, 7, 0, 0, 12, 1, 1.0f, 0.0f, 0, 0},
    {5, 5, 8, 0, 1, 4, 3, 1.0f, 0.0f, 0, 2},        /* batch2 x batch grid */
    {5, 8, 5, 0, 0, 1, 6, 1.0f, 0.0f, 4, 0},
    {200, 300, 64, 0, 1, 1, 1, 1.0f, 0.0f, 0, 0},   /* split over threads by rows */
    {20, 500, 150, 0, 1, 1, 1, 1.0f, 0.5f, 0, 1},   /* ... by columns */
    {130, 96, 40, 1, 0, 1, 1, 1.0f, 0.0f, 0, 0},    /* ... rows of a transposed A */
    {33, 300, 64, 0, 1, 1, 1, 1.0f, 0.0f, 0, 0},
    {64, 64, 64, 0, 1, 5, 1, 1.0f, 0.0f, 0, 0},     /* batch split over threads */
};

/* Row-major element (r, c) of op(X) for X with leading dimension ld. */
static double at(const float *x, size_t ld, int trans, int r, int c) {
  return trans ? x[(size_t)c * ld + r] : x[(size_t)r * ld + c];
}

static void run_shape(bertcl_ctx *ctx, const shape *s, uint64_t seed) {
  bc_rng r;
  bc_rng_seed(&r, seed);
  size_t lda = (size_t)(s->ta ? s->m : s->k) + s->pad, ldb = (size_t)(s->tb ? s->k : s->n) + s->pad,
         ldc = (size_t)s->n + s->pad;
  size_t ma = (size_t)(s->ta ? s->k : s->m) * lda, mb = (size_t)(s->tb ? s->n : s->k) * ldb,
         mc = (size_t)s->m * ldc;
  /* batch strides with a gap; outer strides past a whole inner batch */
  size_t sa = ma + 3, sb = mb + 1, sc = mc + 2;
  size_t sa2 = sa * s->batch + 5, sb2 = sb * s->batch + 2, sc2 = sc * s->batch + 7;
  size_t na = s->off + sa2 * s->batch2, nb = s->off + sb2 * s->batch2,
         nc = s->off + sc2 * s->batch2;
  float *a = bc_rng_alloc(&r, na, -1, 1), *b = bc_rng_alloc(&r, nb, -1, 1),
        *c = bc_rng_alloc(&r, nc, -1, 1), *want = malloc(nc * 4), *got = malloc(nc * 4);
  memcpy(want, c, nc * 4);
  for (int j = 0; j < s->batch2; j++)
    for (int i = 0; i < s->batch; i++) {
      const float *ap = a + s->off + j * sa2 + i * sa, *bp = b + s->off + j * sb2 + i * sb;
      float *cp = want + s->off + j * sc2 + i * sc;
      for (int y = 0; y < s->m; y++)
        for (int x = 0; x < s->n; x++) {
          double acc = 0;
          for (int p = 0; p < s->k; p++) acc += at(ap, lda, s->ta, y, p) * at(bp, ldb, s->tb, p, x);
          cp[(size_t)y * ldc + x] = (float)(s->alpha * acc + s->beta * cp[(size_t)y * ldc + x]);
        }
    }
  cl_mem da = bc_test_upload(ctx, a, na * 4), db = bc_test_upload(ctx, b, nb * 4),
         dc = bc_test_upload(ctx, c, nc * 4);
  bc_gemm_args g = {.trans_a = s->ta, .trans_b = s->tb, .m = (size_t)s->m, .n = (size_t)s->n,
                    .k = (size_t)s->k, .alpha = s->alpha, .beta = s->beta,
                    .a = da, .a_off = (size_t)s->off, .lda = lda, .a_stride = sa, .a_stride2 = sa2,
                    .b = db, .b_off = (size_t)s->off, .ldb = ldb, .b_stride = sb, .b_stride2 = sb2,
                    .c = dc, .c_off = (size_t)s->off, .ldc = ldc, .c_stride = sc, .c_stride2 = sc2,
                    .batch = (size_t)s->batch, .batch2 = (size_t)s->batch2};
  if (bc_gemm(ctx, &g) != BERTCL_OK) fail_msg("bc_gemm: %s", bertcl_last_error(ctx));
  bc_test_download(ctx, dc, got, nc * 4);
  char what[160];
  snprintf(what, sizeof what, "gemm[%s] m=%d n=%d k=%d trans=%d%d batch=%dx%d pad=%d off=%d",
           bertcl_ctx_gemm(ctx), s->m, s->n, s->k, s->ta, s->tb, s->batch2, s->batch, s->pad,
           s->off);
  /* the whole of C, gaps and padding included (a product must not write outside its rows) */
  assert_true(bc_check_close(what, got, want, nc, 1e-5f, 1e-4f, seed));
  clReleaseMemObject(da), clReleaseMemObject(db), clReleaseMemObject(dc);
  free(a), free(b), free(c), free(want), free(got);
}

static void test_shapes(void **state) {
  fixture *f = *state;
  if (!f->ctx[0]) skip();
  for (int be = 0; be < 2; be++) {
    if (!f->ctx[be]) {
      fprintf(stderr, "no host BLAS backend on this device: only CLBlast checked\n");
      continue;
    }
    assert_string_equal(bertcl_ctx_gemm(f->ctx[be]), be ? "blas" : "clblast");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
      run_shape(f->ctx[be], &table[i], 500 + i);
  }
}

/* A buffer made with clCreateBuffer, not bc_buffer_new, still works (through mem_list). */
static void test_foreign_buffer(void **state) {
  fixture *f = *state;
  bertcl_ctx *ctx = f->ctx[1];
  if (!ctx) skip();
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {0};
  cl_int rc;
  cl_mem da = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof a, a,
                             &rc);
  assert_int_equal(rc, CL_SUCCESS);
  assert_null(bc_buffer_host_ptr(da));
  cl_mem db = bc_test_upload(ctx, b, sizeof b), dc = bc_test_upload(ctx, c, sizeof c);
  assert_non_null(bc_buffer_host_ptr(db));
  /* (2x3) @ (3x2) */
  bc_gemm_args g = {.m = 2, .n = 2, .k = 3, .alpha = 1, .a = da, .lda = 3, .b = db, .ldb = 2,
                    .c = dc, .ldc = 2};
  assert_int_equal(bc_gemm(ctx, &g), BERTCL_OK);
  bc_test_download(ctx, dc, c, sizeof c);
  float want[4] = {1 + 3, 2 + 3, 4 + 6, 5 + 6};
  assert_true(bc_check_close("gemm foreign buffer", c, want, 4, 0, 0, 1));
  clReleaseMemObject(da), clReleaseMemObject(db), clReleaseMemObject(dc);
}

static atomic_int destroyed;
static void CL_CALLBACK on_destroy(cl_mem m, void *p) {
  (void)m, (void)p;
  atomic_fetch_add(&destroyed, 1);
}

/* The job releases an arena while products are still queued: the BLAS backend must keep every
 * operand alive until its command ran, and let it go afterwards. The queue is held behind a
 * user event; A and B (large, so their memory goes back to the OS when freed) are released
 * before the product may run. */
static void test_buffer_lifetime(void **state) {
  fixture *f = *state;
  bertcl_ctx *ctx = f->ctx[1];
  if (!ctx) skip();
  const size_t m = 256, n = 256, k = 512;
  bc_rng r;
  bc_rng_seed(&r, 77);
  float *a = bc_rng_alloc(&r, m * k, -1, 1), *b = bc_rng_alloc(&r, n * k, -1, 1);
  float *want = malloc(m * n * 4), *got = malloc(m * n * 4);
  for (size_t y = 0; y < m; y++)
    for (size_t x = 0; x < n; x++) {
      double acc = 0;
      for (size_t p = 0; p < k; p++) acc += (double)a[y * k + p] * b[x * k + p];
      want[y * n + x] = (float)acc;
    }
  int st = BERTCL_OK;
  cl_mem da = bc_buffer_new(ctx, CL_MEM_READ_ONLY, m * k * 4, a, &st);
  cl_mem db = bc_buffer_new(ctx, CL_MEM_READ_ONLY, n * k * 4, b, &st);
  cl_mem dc = bc_buffer_new(ctx, CL_MEM_READ_WRITE, m * n * 4, NULL, &st);
  assert_int_equal(st, BERTCL_OK);
  atomic_store(&destroyed, 0);
  assert_int_equal(clSetMemObjectDestructorCallback(da, on_destroy, NULL), CL_SUCCESS);
  assert_int_equal(clSetMemObjectDestructorCallback(db, on_destroy, NULL), CL_SUCCESS);
  cl_int rc;
  cl_event gate = clCreateUserEvent(ctx->context, &rc);
  assert_int_equal(rc, CL_SUCCESS);
  assert_int_equal(clEnqueueMarkerWithWaitList(ctx->queue, 1, &gate, NULL), CL_SUCCESS);
  cl_event done = NULL;
  bc_gemm_args g = {.trans_b = 1, .m = m, .n = n, .k = k, .alpha = 1, .a = da, .lda = k,
                    .b = db, .ldb = k, .c = dc, .ldc = n, .event = &done};
  assert_int_equal(bc_gemm(ctx, &g), BERTCL_OK);
  clReleaseMemObject(da); /* what the job does to an arena while its commands are queued */
  clReleaseMemObject(db);
  free(a), free(b);
  int early = atomic_load(&destroyed); /* 0: still held by the queued product */
  clSetUserEventStatus(gate, CL_COMPLETE);
  clReleaseEvent(gate);
  if (early) fprintf(stderr, "%d operand buffers were destroyed while queued\n", early);
  assert_int_equal(early, 0);
  bc_test_download(ctx, dc, got, m * n * 4);
  assert_true(bc_check_close("gemm after its operands were released", got, want, m * n, 1e-4f,
                             1e-4f, 77));
  cl_int status = 1;
  clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
  assert_int_equal(status, CL_COMPLETE);
  clReleaseEvent(done);
  /* and let go once it ran (the completion callback may run just after the read returns) */
  for (int i = 0; i < 500 && atomic_load(&destroyed) < 2; i++)
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  assert_int_equal(atomic_load(&destroyed), 2);
  clReleaseMemObject(dc);
  free(want), free(got);
}

/* A wrong sgemm is caught by the check every library must pass before it is used. */
static void ref_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c,
                      int ldc) {
  (void)order;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      float acc = 0;
      for (int p = 0; p < k; p++)
        acc += (ta == BC_CBLAS_TRANS ? a[p * lda + i] : a[i * lda + p]) *
               (tb == BC_CBLAS_TRANS ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = alpha * acc + beta * c[i * ldc + j];
    }
}
static void sgemm_no_beta(int order, int ta, int tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc) {
  (void)beta;
  ref_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
}
static void sgemm_ignores_trans(int order, int ta, int tb, int m, int n, int k, float alpha,
                                const float *a, int lda, const float *b, int ldb, float beta,
                                float *c, int ldc) {
  (void)ta;
  ref_sgemm(order, BC_CBLAS_NO_TRANS, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void test_blas_verify(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(bc_blas_verify(ref_sgemm, why, sizeof why), 0);
  assert_int_equal(bc_blas_verify(sgemm_no_beta, why, sizeof why), -1);
  assert_non_null(strstr(why, "wrong results"));
  assert_int_equal(bc_blas_verify(sgemm_ignores_trans, why, sizeof why), -1);
  const bc_blas_lib *lib = bc_blas_lib_get();
  fprintf(stderr, "host BLAS: %s\n", lib->ok ? lib->name : lib->why);
  if (lib->ok) {
    assert_non_null(lib->sgemm);
    assert_int_equal(bc_blas_verify(lib->sgemm, why, sizeof why), 0);
  }
}

/* The choice: names in bertcl_ctx_gemm_info, and "blas" where none can run is an error that
 * says why (a fresh process: the library is looked for once per process). */
static void test_choice(void **state) {
  fixture *f = *state;
  if (!f->ctx[0]) skip();
  char line[1024];
  assert_int_equal(bertcl_ctx_gemm_info(f->ctx[0], line, sizeof line), BERTCL_OK);
  assert_non_null(strstr(line, "clblast: CLBlast"));
  if (f->ctx[1]) {
    assert_int_equal(bertcl_ctx_gemm_info(f->ctx[1], line, sizeof line), BERTCL_OK);
    assert_non_null(strstr(line, "blas: "));
  }
  char *out = NULL;
  const char *dev = getenv("BERTCL_TEST_DEVICE");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "BERTCL_BLAS=none %s devices --gemm blas --device %s", BERTCL_BIN,
           dev && *dev ? dev : "pocl");
  int rc = bc_test_run(cmd, &out);
  fprintf(stderr, "%s -> %d:\n%s", cmd, rc, out ? out : "");
  assert_int_not_equal(rc, 0);
  assert_non_null(out);
  assert_non_null(strstr(out, "BERTCL_BLAS=none"));
  free(out);
  snprintf(cmd, sizeof cmd, "BERTCL_BLAS=none %s devices --device %s", BERTCL_BIN,
           dev && *dev ? dev : "pocl");
  rc = bc_test_run(cmd, &out);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "gemm clblast"));
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes),          cmocka_unit_test(test_foreign_buffer),
      cmocka_unit_test(test_buffer_lifetime), cmocka_unit_test(test_blas_verify),
      cmocka_unit_test(test_choice),
  };
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("gemm", tests, setup, teardown);
}
