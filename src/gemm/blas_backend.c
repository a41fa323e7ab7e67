/* The "blas" backend of bc_gemm: each product is one native-kernel command
 * (clEnqueueNativeKernel) in the context's in-order queue, which calls the host BLAS
 * (gemm/blas.h) on the buffers' host memory. So a product runs after every command enqueued
 * before it and before every command after it, its event is an ordinary OpenCL event, and the
 * job's second queue, markers and profiling work as with CLBlast.
 *
 * Memory: on a context with this backend, bc_buffer_new wraps page-aligned host memory
 * (CL_MEM_USE_HOST_PTR), so an operand's address is bc_buffer_host_ptr(buffer) + offset, read
 * when the command is enqueued; the native kernel's mem_list (whose translation of large buffers
 * PoCL 3.1 got wrong) is used only for a buffer made elsewhere. Every operand buffer is retained
 * until the command has run (released by the event's completion callback): a caller may release
 * a buffer as soon as the product is enqueued, as the job does with an arena.
 *
 * Threads: the BLAS runs single-threaded; one product is split into parts (rows of C, or whole
 * products of a batch) run by the runtime's thread that executes the command plus a pool of
 * bertcl threads that sleep on a condition variable between products (no spinning, so they do
 * not compete with the OpenCL runtime's workers). The pool has compute units - 1 threads of the
 * first device that uses it, set once per process. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/blas.h"
#include "gemm/gemm.h"

/* ---- the thread pool ----------------------------------------------------------------------- */

typedef void (*part_fn)(const void *arg, int part, int nparts);

enum { MAX_THREADS = 256 };

static struct {
  pthread_once_t once;
  pthread_mutex_t run;       /* one fork-join at a time (several queues may run products) */
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  int size;                  /* threads including the caller: device compute units */
  int started;               /* worker threads running */
  unsigned gen;
  int pending;
  part_fn fn;
  const void *arg;
  int nparts;
} pool = {.once = PTHREAD_ONCE_INIT,
          .run = PTHREAD_MUTEX_INITIALIZER,
          .mu = PTHREAD_MUTEX_INITIALIZER,
          .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *p) {
  int id = (int)(intptr_t)p; /* 1 .. size-1 */
  unsigned seen = 0;
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    while (pool.gen == seen) pthread_cond_wait(&pool.go, &pool.mu);
    seen = pool.gen;
    if (id >= pool.nparts) continue;
    part_fn fn = pool.fn;
    const void *arg = pool.arg;
    int np = pool.nparts;
    pthread_mutex_unlock(&pool.mu);
    fn(arg, id, np);
    pthread_mutex_lock(&pool.mu);
    if (--pool.pending == 0) pthread_cond_signal(&pool.done);
  }
  return NULL;
}

static int g_want_threads = 1;

static void pool_start(void) {
  int n = g_want_threads;
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pool.size = 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (int i = 1; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, &attr, worker, (void *)(intptr_t)i) != 0) break;
    pool.size = i + 1;
  }
  pthread_attr_destroy(&attr);
}

/* Runs fn(arg, 0..nparts-1) on the calling thread and the pool; returns when all are done. */
static void pool_run(part_fn fn, const void *arg, int nparts) {
  if (nparts <= 1) {
    fn(arg, 0, 1);
    return;
  }
  pthread_mutex_lock(&pool.run);
  if (nparts > pool.size) nparts = pool.size;
  pthread_mutex_lock(&pool.mu);
  pool.fn = fn;
  pool.arg = arg;
  pool.nparts = nparts;
  pool.pending = nparts - 1;
  pool.gen++;
  pthread_cond_broadcast(&pool.go);
  pthread_mutex_unlock(&pool.mu);
  fn(arg, 0, nparts);
  pthread_mutex_lock(&pool.mu);
  while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
  pthread_mutex_unlock(&pool.mu);
  pthread_mutex_unlock(&pool.run);
}

int bc_blas_backend_threads(void) { return pool.size ? pool.size : g_want_threads; }

/* ---- one product as a native kernel --------------------------------------------------------- */

typedef struct {
  bc_sgemm_fn sgemm;
  float *a, *b, *c; /* host base addresses (patched by the runtime for mem_list buffers) */
  int trans_a, trans_b;
  size_t m, n, k;
  float alpha, beta;
  size_t a_off, lda, a_stride, a_stride2;
  size_t b_off, ldb, b_stride, b_stride2;
  size_t c_off, ldc, c_stride, c_stride2;
  size_t batch, batch2;
  int nparts;
} native_args;

/* Part `part` of nparts: whole products of the batch grid when there are enough of them, else
 * a band of C's rows (or columns when C has few rows). */
static void run_part(const void *p, int part, int nparts) {
  const native_args *g = p;
  int ta = g->trans_a ? BC_CBLAS_TRANS : BC_CBLAS_NO_TRANS;
  int tb = g->trans_b ? BC_CBLAS_TRANS : BC_CBLAS_NO_TRANS;
  size_t total = g->batch * g->batch2;
  if (total >= (size_t)nparts) {
    size_t lo = total * (size_t)part / (size_t)nparts, hi = total * (size_t)(part + 1) / (size_t)nparts;
    for (size_t q = lo; q < hi; q++) {
      size_t j = q / g->batch, i = q % g->batch;
      const float *a = g->a + g->a_off + j * g->a_stride2 + i * g->a_stride;
      const float *b = g->b + g->b_off + j * g->b_stride2 + i * g->b_stride;
      float *c = g->c + g->c_off + j * g->c_stride2 + i * g->c_stride;
      g->sgemm(BC_CBLAS_ROW_MAJOR, ta, tb, (int)g->m, (int)g->n, (int)g->k, g->alpha, a,
               (int)g->lda, b, (int)g->ldb, g->beta, c, (int)g->ldc);
    }
    return;
  }
  /* one product split: rows of C when there are enough (bands of 16), else columns */
  const float *a = g->a + g->a_off, *b = g->b + g->b_off;
  float *c = g->c + g->c_off;
  if (g->m >= g->n || g->m >= 16 * (size_t)nparts) {
    size_t lo = g->m * (size_t)part / (size_t)nparts / 16 * 16;
    size_t hi = part + 1 == nparts ? g->m : g->m * (size_t)(part + 1) / (size_t)nparts / 16 * 16;
    if (hi <= lo) return;
    const float *ap = g->trans_a ? a + lo : a + lo * g->lda;
    g->sgemm(BC_CBLAS_ROW_MAJOR, ta, tb, (int)(hi - lo), (int)g->n, (int)g->k, g->alpha, ap,
             (int)g->lda, b, (int)g->ldb, g->beta, c + lo * g->ldc, (int)g->ldc);
  } else {
    size_t lo = g->n * (size_t)part / (size_t)nparts / 16 * 16;
    size_t hi = part + 1 == nparts ? g->n : g->n * (size_t)(part + 1) / (size_t)nparts / 16 * 16;
    if (hi <= lo) return;
    const float *bp = g->trans_b ? b + lo * g->ldb : b + lo;
    g->sgemm(BC_CBLAS_ROW_MAJOR, ta, tb, (int)g->m, (int)(hi - lo), (int)g->k, g->alpha, a,
             (int)g->lda, bp, (int)g->ldb, g->beta, c + lo, (int)g->ldc);
  }
}

static void CL_CALLBACK native_gemm(void *p) {
  const native_args *g = p;
  pool_run(run_part, g, g->nparts);
}

/* Buffers held until the command has run. */
typedef struct {
  cl_mem m[3];
  int n;
} held;

static void CL_CALLBACK release_held(cl_event e, cl_int status, void *p) {
  (void)e;
  (void)status;
  held *h = p;
  for (int i = 0; i < h->n; i++) clReleaseMemObject(h->m[i]);
  free(h);
}

static int parts_for(const bc_gemm_args *g) {
  double flops = 2.0 * (double)g->m * g->n * g->k * g->batch * g->batch2;
  int n = bc_blas_backend_threads();
  if (flops < 1e6) return 1; /* a thread hand-off costs more than it saves */
  size_t total = g->batch * g->batch2;
  if (total > 1 && total < (size_t)n) n = (int)total;
  if (total == 1 && g->m < 32 && g->n < 32) return 1;
  return n;
}

static int blas_gemm(bertcl_ctx *ctx, const bc_gemm_args *g) {
  const bc_blas_lib *lib = bc_blas_lib_get();
  const size_t lim = 0x7FFFFFFF;
  if (g->m > lim || g->n > lim || g->k > lim || g->lda > lim || g->ldb > lim || g->ldc > lim)
    return bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED,
                   "BLAS product m=%zu n=%zu k=%zu exceeds 32-bit BLAS sizes", g->m, g->n, g->k);
  native_args na = {.sgemm = lib->sgemm, .trans_a = g->trans_a, .trans_b = g->trans_b,
                    .m = g->m, .n = g->n, .k = g->k, .alpha = g->alpha, .beta = g->beta,
                    .a_off = g->a_off, .lda = g->lda, .a_stride = g->a_stride,
                    .a_stride2 = g->a_stride2, .b_off = g->b_off, .ldb = g->ldb,
                    .b_stride = g->b_stride, .b_stride2 = g->b_stride2, .c_off = g->c_off,
                    .ldc = g->ldc, .c_stride = g->c_stride, .c_stride2 = g->c_stride2,
                    .batch = g->batch, .batch2 = g->batch2};
  na.nparts = parts_for(g);
  /* host addresses; a buffer made outside bc_buffer_new goes through mem_list instead */
  cl_mem mems[3] = {g->a, g->b, g->c};
  float **ptrs[3] = {&na.a, &na.b, &na.c};
  cl_mem list[3];
  const void *loc[3];
  cl_uint nlist = 0;
  for (int i = 0; i < 3; i++) {
    *ptrs[i] = bc_buffer_host_ptr(mems[i]);
    if (!*ptrs[i]) {
      list[nlist] = mems[i];
      loc[nlist] = ptrs[i];
      nlist++;
    }
  }
  held *h = malloc(sizeof *h);
  if (!h) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  h->n = 0;
  for (int i = 0; i < 3; i++) {
    if (clRetainMemObject(mems[i]) != CL_SUCCESS) {
      for (int j = 0; j < h->n; j++) clReleaseMemObject(h->m[j]);
      free(h);
      return bc_fail(&ctx->err, BERTCL_ERR_OPENCL, "clRetainMemObject: invalid operand buffer");
    }
    h->m[h->n++] = mems[i];
  }
  cl_event ev = NULL;
  cl_int rc = clEnqueueNativeKernel(ctx->queue, native_gemm, &na, sizeof na, nlist,
                                    nlist ? list : NULL, nlist ? loc : NULL, 0, NULL, &ev);
  if (rc != CL_SUCCESS) {
    release_held(NULL, 0, h);
    return bc_fail(&ctx->err, bc_cl_status(rc),
                   "clEnqueueNativeKernel(sgemm m=%zu n=%zu k=%zu batch=%zux%zu) -> %s (%d) on %s",
                   g->m, g->n, g->k, g->batch2, g->batch, bc_cl_errname(rc), (int)rc,
                   ctx->info.name);
  }
  rc = clSetEventCallback(ev, CL_COMPLETE, release_held, h);
  if (rc != CL_SUCCESS) { /* cannot be told when it ran: wait, then release */
    clWaitForEvents(1, &ev);
    release_held(NULL, 0, h);
  }
  if (g->event)
    *g->event = ev;
  else
    clReleaseEvent(ev);
  return BERTCL_OK;
}

const bc_gemm_backend bc_gemm_blas = {BC_GEMM_BLAS, "blas", blas_gemm};

/* ---- the per-context check ---------------------------------------------------------------- */

typedef struct {
  const float *p, *sub; /* host addresses of the buffer and of its sub-buffer */
  size_t n;
  int *verdict; /* host memory outside any buffer: 1 = the pattern was there */
} probe_args;

static void CL_CALLBACK probe_native(void *p) {
  const probe_args *a = p;
  int ok = a->sub == a->p + 1024;
  for (size_t i = 0; i < a->n && ok; i++) ok = a->p[i] == 3.0f;
  float *w = (float *)a->p;
  for (size_t i = 0; i < a->n; i++) w[i] = (float)i;
  *a->verdict = ok;
}

/* Does this device see the memory behind bc_buffer_new's buffers where the BLAS will look? A
 * fill enqueued by the runtime must be visible to a native kernel at the host address, a
 * native kernel's writes to a read enqueued after it, and a sub-buffer must sit at its parent's
 * address + origin. Also sizes the thread pool, once per process. */
int bc_blas_backend_check(bertcl_ctx *ctx, char *why, size_t n) {
  int st = BERTCL_OK, saved = ctx->host_buffers, verdict = -1;
  const size_t count = 4096;
  cl_mem buf = NULL, sub = NULL;
  float *back = malloc(count * sizeof *back);
  ctx->host_buffers = 1;
  if (!back) goto fail;
  buf = bc_buffer_new(ctx, CL_MEM_READ_WRITE, count * 4, NULL, &st);
  if (!buf) goto fail;
  cl_buffer_region r = {1024 * 4, 1024 * 4};
  BC_CL_OBJ(&ctx->err, sub, clCreateSubBuffer(buf, 0, CL_BUFFER_CREATE_TYPE_REGION, &r, BC_RC));
  const float three = 3.0f;
  BC_CL(&ctx->err, clEnqueueFillBuffer(ctx->queue, buf, &three, sizeof three, 0, count * 4, 0,
                                       NULL, NULL));
  probe_args pa = {bc_buffer_host_ptr(buf), bc_buffer_host_ptr(sub), count, &verdict};
  if (!pa.p) {
    snprintf(why, n, "%s: a CL_MEM_USE_HOST_PTR buffer reports no host pointer", ctx->info.name);
    goto done;
  }
  BC_CL(&ctx->err, clEnqueueNativeKernel(ctx->queue, probe_native, &pa, sizeof pa, 0, NULL, NULL,
                                         0, NULL, NULL));
  BC_CL(&ctx->err,
        clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, 0, count * 4, back, 0, NULL, NULL));
  int seen = 1;
  for (size_t i = 0; i < count && seen; i++) seen = back[i] == (float)i;
  if (verdict != 1 || !seen)
    snprintf(why, n, "%s does not run native kernels on the buffers' host memory (%s)",
             ctx->info.name, verdict != 1 ? "a fill was not visible, or a sub-buffer was "
             "elsewhere" : "a native kernel's writes were not read back");
  else
    why[0] = '\0';
  goto done;
fail:
  snprintf(why, n, "checking native kernels on %s failed: %s", ctx->info.name,
           st == BERTCL_OK ? "out of memory" : ctx->err.msg);
done:
  if (sub) clReleaseMemObject(sub);
  if (buf) clReleaseMemObject(buf);
  free(back);
  ctx->host_buffers = saved;
  if (why[0]) return 0;
  if (g_want_threads < (int)ctx->info.compute_units) g_want_threads = (int)ctx->info.compute_units;
  pthread_once(&pool.once, pool_start);
  return 1;
}
