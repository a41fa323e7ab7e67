/* Op table and launchers. One program holds every forward kernel (cl/common.cl first). */
#include "encoder/ops.h"

#include <stdio.h>
#include <string.h>

static const char *const op_files[] = {"common.cl", "embedding.cl", "layernorm.cl",
                                       "activation.cl", "attention.cl", "pooling.cl",
                                       "combine.cl", "gather.cl"};

int bc_ops_init(bertcl_ctx *ctx, bc_ops *ops) {
  memset(ops, 0, sizeof *ops);
  int st = BERTCL_OK;
  /* row-kernel work-group: a power of two, at most 128 and the device's limit */
  size_t wg = 128;
  while (wg > ctx->info.max_work_group_size && wg > 1) wg /= 2;
  ops->wg = wg;
  char opts[128];
  snprintf(opts, sizeof opts, "-DWG=%zu -cl-std=CL1.2", wg);
  BC_TRY(bc_program_build(ctx, op_files, sizeof op_files / sizeof op_files[0], opts, &ops->prog));
#define K(field, name) BC_CL_OBJ(&ctx->err, ops->field, clCreateKernel(ops->prog, name, BC_RC))
  K(embedding, "embedding_fwd");
  K(brln, "bias_residual_layernorm_fwd");
  K(bias_act, "bias_act_fwd");
  K(split_heads, "split_heads_fwd");
  K(softmax, "softmax_fwd");
  K(merge_heads, "merge_heads_fwd");
  K(pool, "pool_fwd");
  K(l2norm, "l2norm_fwd");
  K(gather_cls, "gather_cls_fwd");
  K(scale_add, "scale_add_fwd");
  K(gather_tokens, "gather_tokens_fwd");
  K(word_pool, "word_pool_fwd");
#undef K
  return BERTCL_OK;
fail:
  bc_ops_free(ops);
  return st;
}

void bc_ops_free(bc_ops *ops) {
  if (!ops) return;
  cl_kernel *ks[] = {&ops->embedding,   &ops->brln, &ops->bias_act, &ops->split_heads,
                     &ops->softmax,     &ops->merge_heads, &ops->pool, &ops->l2norm,
                     &ops->gather_cls, &ops->scale_add,
                     &ops->gather_tokens, &ops->word_pool};
  for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
    if (*ks[i]) {
      clReleaseKernel(*ks[i]);
      *ks[i] = NULL;
    }
  if (ops->prog) clReleaseProgram(ops->prog);
  ops->prog = NULL;
}

/* Sets arguments from a list of (size, pointer) pairs. */
#define ARG(i, v) BC_CL(&ctx->err, clSetKernelArg(k, (i), sizeof(v), &(v)))

static int launch(bertcl_ctx *ctx, cl_kernel k, size_t global, size_t local, const char *name) {
  int st = BERTCL_OK;
  if (global == 0) return BERTCL_OK;
  if (local) global = (global + local - 1) / local * local;
  cl_int rc = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, local ? &local : NULL, 0,
                                     NULL, NULL);
  if (rc != CL_SUCCESS)
    st = bc_fail(&ctx->err, bc_cl_status(rc), "clEnqueueNDRangeKernel(%s, global %zu) -> %s (%d)",
                 name, global, bc_cl_errname(rc), (int)rc);
  return st;
}

/* Element-wise kernels use groups of 64 (any multiple works: they check bounds). */
#define EW_LOCAL 64

int bc_op_embedding(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem ids, cl_mem type_ids,
                    cl_mem wte0, cl_mem wte1, cl_mem wpe, cl_mem wtt, cl_mem ln_w, cl_mem ln_b,
                    float eps, int B, int T, int C, int V, int split, int TT) {
  int st = BERTCL_OK;
  cl_kernel k = ops->embedding;
  ARG(0, out); ARG(1, ids); ARG(2, type_ids); ARG(3, wte0); ARG(4, wte1); ARG(5, wpe);
  ARG(6, wtt); ARG(7, ln_w); ARG(8, ln_b); ARG(9, eps); ARG(10, T); ARG(11, C); ARG(12, V);
  ARG(13, split); ARG(14, TT);
  return launch(ctx, k, (size_t)B * T * ops->wg, ops->wg, "embedding_fwd");
fail:
  return st;
}

int bc_op_bias_residual_layernorm(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem x,
                                  cl_mem bias, cl_mem residual, cl_mem w, cl_mem b, float eps,
                                  int N, int C) {
  int st = BERTCL_OK;
  cl_kernel k = ops->brln;
  ARG(0, out); ARG(1, x); ARG(2, bias); ARG(3, residual); ARG(4, w); ARG(5, b); ARG(6, eps);
  ARG(7, C);
  return launch(ctx, k, (size_t)N * ops->wg, ops->wg, "bias_residual_layernorm_fwd");
fail:
  return st;
}

int bc_op_bias_act(bertcl_ctx *ctx, bc_ops *ops, cl_mem x, cl_mem bias, int act, int N, int C) {
  int st = BERTCL_OK;
  cl_kernel k = ops->bias_act;
  ARG(0, x); ARG(1, bias); ARG(2, act); ARG(3, N); ARG(4, C);
  return launch(ctx, k, (size_t)N * C, EW_LOCAL, "bias_act_fwd");
fail:
  return st;
}

int bc_op_split_heads(bertcl_ctx *ctx, bc_ops *ops, cl_mem q, cl_mem kk, cl_mem v, cl_mem qkv,
                      cl_mem bias, int B, int T, int C, int NH) {
  int st = BERTCL_OK;
  cl_kernel k = ops->split_heads;
  ARG(0, q); ARG(1, kk); ARG(2, v); ARG(3, qkv); ARG(4, bias); ARG(5, B); ARG(6, T); ARG(7, C);
  ARG(8, NH);
  return launch(ctx, k, (size_t)B * T * C, EW_LOCAL, "split_heads_fwd");
fail:
  return st;
}

int bc_op_softmax(bertcl_ctx *ctx, bc_ops *ops, cl_mem scores, cl_mem mask, float scale, int B,
                  int NH, int T) {
  int st = BERTCL_OK;
  cl_kernel k = ops->softmax;
  ARG(0, scores); ARG(1, mask); ARG(2, scale); ARG(3, NH); ARG(4, T);
  return launch(ctx, k, (size_t)B * NH * T * ops->wg, ops->wg, "softmax_fwd");
fail:
  return st;
}

int bc_op_merge_heads(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem ctxv, int B, int T, int C,
                      int NH) {
  int st = BERTCL_OK;
  cl_kernel k = ops->merge_heads;
  ARG(0, out); ARG(1, ctxv); ARG(2, B); ARG(3, T); ARG(4, C); ARG(5, NH);
  return launch(ctx, k, (size_t)B * T * C, EW_LOCAL, "merge_heads_fwd");
fail:
  return st;
}

int bc_op_pool(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, cl_mem mask, int mode, int B,
               int T, int C, int out_stride, int col0) {
  int st = BERTCL_OK;
  cl_kernel k = ops->pool;
  ARG(0, out); ARG(1, h); ARG(2, mask); ARG(3, mode); ARG(4, B); ARG(5, T); ARG(6, C);
  ARG(7, out_stride); ARG(8, col0);
  return launch(ctx, k, (size_t)B * C, EW_LOCAL, "pool_fwd");
fail:
  return st;
}

int bc_op_l2norm(bertcl_ctx *ctx, bc_ops *ops, cl_mem x, int N, int C) {
  int st = BERTCL_OK;
  cl_kernel k = ops->l2norm;
  ARG(0, x); ARG(1, C);
  return launch(ctx, k, (size_t)N * ops->wg, ops->wg, "l2norm_fwd");
fail:
  return st;
}

int bc_op_gather_cls(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, int B, int T, int C) {
  int st = BERTCL_OK;
  cl_kernel k = ops->gather_cls;
  ARG(0, out); ARG(1, h); ARG(2, B); ARG(3, T); ARG(4, C);
  return launch(ctx, k, (size_t)B * C, EW_LOCAL, "gather_cls_fwd");
fail:
  return st;
}

int bc_op_scale_add(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem in, float alpha, float beta,
                    int N, int C, int out_stride, int col0) {
  int st = BERTCL_OK;
  cl_kernel k = ops->scale_add;
  ARG(0, out); ARG(1, in); ARG(2, alpha); ARG(3, beta); ARG(4, N); ARG(5, C);
  ARG(6, out_stride); ARG(7, col0);
  return launch(ctx, k, (size_t)N * C, EW_LOCAL, "scale_add_fwd");
fail:
  return st;
}

int bc_op_gather_tokens(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, cl_mem row_off,
                        float alpha, float beta, int B, int T, int C, int out_stride, int col0) {
  int st = BERTCL_OK;
  cl_kernel k = ops->gather_tokens;
  ARG(0, out); ARG(1, h); ARG(2, row_off); ARG(3, alpha); ARG(4, beta); ARG(5, B); ARG(6, T);
  ARG(7, C); ARG(8, out_stride); ARG(9, col0);
  return launch(ctx, k, (size_t)B * T * C, EW_LOCAL, "gather_tokens_fwd");
fail:
  return st;
}

int bc_op_word_pool(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, cl_mem word_ids,
                    cl_mem word_b, cl_mem word_w, int mode, float alpha, float beta, int nwords,
                    int T, int C, int out_stride, int col0) {
  int st = BERTCL_OK;
  cl_kernel k = ops->word_pool;
  ARG(0, out); ARG(1, h); ARG(2, word_ids); ARG(3, word_b); ARG(4, word_w); ARG(5, mode);
  ARG(6, alpha); ARG(7, beta); ARG(8, nwords); ARG(9, T); ARG(10, C); ARG(11, out_stride);
  ARG(12, col0);
  return launch(ctx, k, (size_t)nwords * C, EW_LOCAL, "word_pool_fwd");
fail:
  return st;
}
