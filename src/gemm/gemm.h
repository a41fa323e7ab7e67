/* The one internal GEMM interface. Every matrix product (encoder, backward pass, bench, tune)
 * goes through bc_gemm, never through a BLAS directly. The module owns every CLBlast call and
 * every host-BLAS call; a small table of functions (bc_gemm_backend, in the spirit of ggml's
 * backend interface) is chosen per context when the context is created:
 *   clblast  CLBlast's OpenCL kernels (any device);
 *   blas     a host BLAS loaded at run time (gemm/blas.h), each product one native-kernel
 *            command in the device's in-order queue (CPU devices with CL_EXEC_NATIVE_KERNEL).
 * "auto" (the default) picks blas on CPU devices that pass its checks, clblast elsewhere.
 *
 * Row-major: C = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T; operands are
 * (buffer, offset in floats) pairs; batch > 1 runs strided-batched products (strides in floats);
 * batch2 > 1 adds an outer batch level (strides a_stride2...): product (j, i) of the batch2 x
 * batch grid reads A at a_off + j*a_stride2 + i*a_stride (same for B and C). The outer level
 * lets attention read heads straight out of the (B*T, 3C) QKV rows: head h of sequence b at
 * b*T*3C + h*HS, which is no single stride. */
#ifndef BC_GEMM_H
#define BC_GEMM_H

#include "runtime/runtime.h"

typedef struct {
  int trans_a, trans_b;
  size_t m, n, k;
  float alpha, beta;
  cl_mem a; size_t a_off, lda, a_stride, a_stride2;
  cl_mem b; size_t b_off, ldb, b_stride, b_stride2;
  cl_mem c; size_t c_off, ldc, c_stride, c_stride2;
  size_t batch;  /* 0 or 1: a single product */
  size_t batch2; /* 0 or 1: no outer batch level */
  cl_event *event; /* NULL, or receives the event of the last command (caller releases it) */
} bc_gemm_args;

int bc_gemm(bertcl_ctx *ctx, const bc_gemm_args *g);

/* out (N, OC) = x (N, IC) @ w^T, w (OC, IC) as PyTorch's Linear (no bias; kernels add it). */
int bc_linear(bertcl_ctx *ctx, cl_mem out, size_t out_off, cl_mem x, size_t x_off, cl_mem w,
              size_t w_off, size_t n, size_t ic, size_t oc);

/* ---- backends ------------------------------------------------------------------------------ */

typedef enum { BC_GEMM_CLBLAST = 0, BC_GEMM_BLAS = 1 } bc_gemm_kind;

typedef struct bc_gemm_backend {
  bc_gemm_kind kind;
  const char *name; /* "clblast", "blas" */
  /* one product (batch, batch2 >= 1 already normalised); enqueues on ctx->queue */
  int (*gemm)(bertcl_ctx *ctx, const bc_gemm_args *g);
} bc_gemm_backend;

extern const bc_gemm_backend bc_gemm_clblast;
extern const bc_gemm_backend bc_gemm_blas;

/* Chooses ctx's backend from ctx->gemm_request (bertcl_ctx_create calls it once the queue
 * exists). "blas" on a device that cannot run it fails with the reason. */
int bc_gemm_ctx_init(bertcl_ctx *ctx);
/* Called by bertcl_ctx_free after the queue finished; the last context clears CLBlast's
 * process-wide program cache. */
void bc_gemm_ctx_release(bertcl_ctx *ctx);

/* Why the BLAS backend can or cannot run on ctx's device ("" when it can). */
int bc_gemm_blas_usable(bertcl_ctx *ctx, char *why, size_t n);

/* One line naming ctx's backend: "blas: OpenBLAS 0.3.34 (SkylakeX kernels, 2 threads)" or
 * "clblast: CLBlast 1.5.3". */
void bc_gemm_describe(const bertcl_ctx *ctx, char *out, size_t n);

/* CLBlast version this program was built against ("1.5.3", or "unknown"). */
const char *bc_clblast_version(void);

#endif
