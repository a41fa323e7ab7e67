/* Fine-tuning's kernels (cl/backward.cl: backward and optimizer; cl/trainer.cl: the forward
 * helpers that keep what the backward needs), and their launchers. Twins in src/ref/ref_train.h
 * and src/ref/ref.h; tests/test_train_ops.c compares each with its twin. */
#ifndef BC_TRAIN_OPS_H
#define BC_TRAIN_OPS_H

#include "runtime/runtime.h"

/* Every kernel of the training program (cl/common.cl + backward.cl + trainer.cl). X(name)
 * generates the bc_train_ops field, its clCreateKernel and its release. */
#define BC_TRAIN_OPS_KERNELS(X)                                                                 \
  X(dropout_fwd) X(layernorm_bwd) X(layernorm_bwd_params) X(colsum_bwd) X(bias_act_bwd)         \
  X(tanh_bwd) X(softmax_bwd) X(embedding_bwd_rows) X(embedding_bwd_type)                        \
  X(cross_entropy_fwd_bwd) X(adamw_step) X(sumsq_partial) X(embedding_sum_fwd)                  \
  X(layernorm_fwd) X(bias_dropout_residual_fwd)

typedef struct {
  cl_program prog;
  bc_kset kset; /* the kernel set the program was built for (ctx->kset at init) */
  size_t wg;    /* work-group size of the GPU set's row kernels */
  size_t vw;    /* lanes of the CPU set's vector code (-DVW) */
#define BC_TRAIN_OPS_FIELD(name) cl_kernel name;
  BC_TRAIN_OPS_KERNELS(BC_TRAIN_OPS_FIELD)
#undef BC_TRAIN_OPS_FIELD
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
/* Embedding tables' gradients (accumulated) from dy (B*T, C) at the LayerNorm input: word rows
 * by ids, position rows by pos_ids (host (B*T); NULL: t), token types by type_ids (device) when
 * TT > 0. Rows are summed per table row in (b, t) order after a host sort (deterministic: no
 * atomics). */
int bc_op_embedding_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dword /* (V, C) */,
                        cl_mem dpos /* (P, C) */, cl_mem dtype /* (TT, C) or NULL */,
                        cl_mem dy, const int32_t *ids, const int32_t *pos_ids, cl_mem type_ids,
                        int B, int T, int TT, int C);
/* Mean cross-entropy (labels -100 ignored): dlogits written; *loss set (host sum of the rows). */
int bc_op_cross_entropy(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dlogits, cl_mem logits,
                        const int32_t *labels, int B, int K, float scale, double *loss);
/* Global L2 norm of a flat gradient buffer (n floats). */
int bc_op_grad_norm(bertcl_ctx *ctx, bc_train_ops *o, cl_mem g, size_t n, double *norm);
int bc_op_adamw(bertcl_ctx *ctx, bc_train_ops *o, cl_mem p, cl_mem m, cl_mem v, cl_mem g,
                size_t off, size_t n, float gscale, float lr, float beta1, float beta2, float eps,
                float wd, int t);

/* ---- forward helpers of the training step (cl/trainer.cl) ---- */
/* xin (N, C) = (word[ids] + type[type_ids]) + pos[pos_ids], N = B*T rows; TT 0: no token types
 * (type_ids and wtt are not read). */
int bc_op_embedding_sum(bertcl_ctx *ctx, bc_train_ops *o, cl_mem xin /* (N, C) */,
                        cl_mem ids /* (N) */, cl_mem pos_ids /* (N) */, cl_mem type_ids /* (N) */,
                        cl_mem wte /* (V, C) */, cl_mem wpe /* (P, C) */,
                        cl_mem wtt /* (TT, C) */, int N, int C, int TT);
/* out (N, C) = LayerNorm(x) per row (out may not alias x). */
int bc_op_layernorm_fwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem out, cl_mem x, cl_mem w,
                        cl_mem b, float eps, int N, int C);
/* out (N, C) = dropout(x + bias) (+ res when res != NULL), dropout site (seed, step, id) with
 * probability p (p 0: none); out may equal x. */
int bc_op_bias_dropout_residual(bertcl_ctx *ctx, bc_train_ops *o, cl_mem out, cl_mem x,
                                cl_mem bias /* (C) */, cl_mem res /* (N, C) or NULL */, float p,
                                uint64_t seed, uint32_t step, uint32_t id, int N, int C);

#endif
