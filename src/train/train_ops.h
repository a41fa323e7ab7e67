/* Backward and optimizer kernels for fine-tuning (cl/backward.cl), and their launchers.
 * Twins in src/ref/ref_train.h; tests/test_train_ops.c compares each with its twin. */
#ifndef BC_TRAIN_OPS_H
#define BC_TRAIN_OPS_H

#include "runtime/runtime.h"

typedef struct {
  cl_program prog;
  size_t wg;
  cl_kernel dropout, ln_bwd, ln_params, colsum, bias_act_bwd, tanh_bwd, softmax_bwd, emb_word,
      emb_pos_type, xent, adamw, sumsq;
} bc_train_ops;

int bc_train_ops_init(bertcl_ctx *ctx, bc_train_ops *ops);
void bc_train_ops_free(bc_train_ops *ops);

/* out = dropout(x) for site (seed, step, id); also the backward (same mask). */
int bc_op_dropout(bertcl_ctx *ctx, bc_train_ops *o, cl_mem out, cl_mem x, float p, uint64_t seed,
                  uint32_t step, uint32_t id, size_t n);
/* dy (N, C) written, stats (N, 2) written; then dw, db (C) accumulated. */
int bc_op_layernorm_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dy, cl_mem stats, cl_mem dw,
                        cl_mem db, cl_mem dout, cl_mem xin, cl_mem w, float eps, int N, int C);
int bc_op_colsum_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem db, cl_mem d, int N, int C);
int bc_op_bias_act_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dx, cl_mem dout, cl_mem x,
                       cl_mem bias, int act, int N, int C);
int bc_op_tanh_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dx, cl_mem dout, cl_mem y, size_t n);
int bc_op_softmax_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem ds, cl_mem dp, cl_mem p,
                      float scale, int rows, int T);
/* Embedding tables' gradients (accumulated) from dy at the LayerNorm input; ids on the host are
 * sorted into segments here (deterministic: no atomics). */
int bc_op_embedding_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dword, cl_mem dpos,
                        cl_mem dtype, cl_mem dy, const int32_t *ids, cl_mem type_ids, int B,
                        int T, int TT, int C);
/* Mean cross-entropy (labels -100 ignored): dlogits written; *loss set (host sum of the rows). */
int bc_op_cross_entropy(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dlogits, cl_mem logits,
                        const int32_t *labels, int B, int K, float scale, double *loss);
/* Global L2 norm of a flat gradient buffer (n floats). */
int bc_op_grad_norm(bertcl_ctx *ctx, bc_train_ops *o, cl_mem g, size_t n, double *norm);
int bc_op_adamw(bertcl_ctx *ctx, bc_train_ops *o, cl_mem p, cl_mem m, cl_mem v, cl_mem g,
                size_t off, size_t n, float gscale, float lr, float beta1, float beta2, float eps,
                float wd, int t);

#endif
