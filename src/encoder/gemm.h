/* The one internal GEMM interface. Every matrix product of the encoder (and later the backward
 * pass) goes through bc_gemm, never through CLBlast directly, so a device-specific GEMM can
 * replace CLBlast per device here without touching the callers.
 * Row-major: C = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T; operands are
 * (buffer, offset in floats) pairs; batch > 1 runs strided-batched products (strides in floats). */
#ifndef BC_GEMM_H
#define BC_GEMM_H

#include "runtime/runtime.h"

typedef struct {
  int trans_a, trans_b;
  size_t m, n, k;
  float alpha, beta;
  cl_mem a; size_t a_off, lda, a_stride;
  cl_mem b; size_t b_off, ldb, b_stride;
  cl_mem c; size_t c_off, ldc, c_stride;
  size_t batch; /* 0 or 1: a single product */
  cl_event *event; /* NULL, or receives the event of the last kernel (caller releases it) */
} bc_gemm_args;

int bc_gemm(bertcl_ctx *ctx, const bc_gemm_args *g);

/* out (N, OC) = x (N, IC) @ w^T, w (OC, IC) as PyTorch's Linear (no bias; kernels add it). */
int bc_linear(bertcl_ctx *ctx, cl_mem out, size_t out_off, cl_mem x, size_t x_off, cl_mem w,
              size_t w_off, size_t n, size_t ic, size_t oc);

#endif
