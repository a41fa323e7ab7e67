/* The op table: which kernel runs each encoder op on this device, and its launcher.
 * Every launcher enqueues on ctx->queue without waiting. Buffers are whole cl_mem objects
 * (sub-buffers for weights); shapes are written beside each argument. */
#ifndef BC_OPS_H
#define BC_OPS_H

#include "model/model.h"
#include "runtime/runtime.h"

enum { BC_ACT_TANH_ = 3 }; /* the pooler's tanh, beside bc_act's values */

/* Appends to the build options at buf (capacity n) the -D options that give cl/common.cl the
 * activation codes (ACT_GELU, ...) from bc_act, so C and OpenCL share one definition. */
void bc_act_options(char *buf, size_t n);

/* Every kernel of the encoder's program (cl/common.cl + op_files in ops.c). X(name) generates
 * the bc_ops field, its clCreateKernel and its release; the field is the kernel's name. */
#define BC_OPS_KERNELS(X)                                                                      \
  X(position_ids_fwd) X(rel_position_bias_fwd) X(rel_position_bias_bwd_diag)                   \
  X(rel_position_bias_bwd_table) X(embedding_fwd) X(bias_residual_layernorm_fwd)               \
  X(bias_act_fwd) X(split_heads_fwd) X(softmax_fwd) X(merge_heads_fwd) X(pool_fwd)             \
  X(l2norm_fwd) X(gather_cls_fwd) X(scale_add_fwd) X(gather_tokens_fwd) X(word_pool_fwd)       \
  X(to_half_fwd)

typedef struct {
  cl_program prog;
  bc_kset kset; /* the kernel set the program was built for (ctx->kset at bc_ops_init) */
  size_t wg;    /* work-group size of the GPU set's row kernels (-DWG) */
#define BC_OPS_FIELD(name) cl_kernel name;
  BC_OPS_KERNELS(BC_OPS_FIELD)
#undef BC_OPS_FIELD
} bc_ops;

int bc_ops_init(bertcl_ctx *ctx, bc_ops *ops);
void bc_ops_free(bc_ops *ops);

/* Position ids (bc_config.pos_kind): t (padded 0), or padding_idx + the count of non-padding
 * ids (padded 1: RoBERTa, MPNet). Twin: ref_position_ids. */
int bc_op_position_ids(bertcl_ctx *ctx, bc_ops *ops, cl_mem pos /* (B*T) */,
                       cl_mem ids /* (B*T) */, int B, int T, int padded, int padding_idx);
/* MPNet's relative position bias (NH, T, T) from its table (NB, NH). Twin:
 * ref_rel_position_bias_fwd. */
int bc_op_rel_position_bias(bertcl_ctx *ctx, bc_ops *ops, cl_mem bias /* (NH, T, T) */,
                            cl_mem table /* (NB, NH) */, int NH, int T);
/* The table's gradient (accumulated) from dz (B, NH, T, T), the gradient at the scores the
 * bias was added to: per diagonal into ddiag (NH, 2T-1) (scratch), then per bucket. Twin:
 * ref_rel_position_bias_bwd. */
int bc_op_rel_position_bias_bwd(bertcl_ctx *ctx, bc_ops *ops, cl_mem dtable /* (NB, NH) */,
                                cl_mem ddiag /* (NH, 2T-1) */, cl_mem dz /* (B, NH, T, T) */,
                                int B, int NH, int T);
/* LayerNorm((word[ids] + type[type_ids]) + pos[pos_ids]); TT 0: no token types (type_ids and
 * wtt are not read). Twin: ref_embedding_pos_fwd. */
int bc_op_embedding(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (B*T, C) */,
                    cl_mem ids /* (B*T) */, cl_mem pos_ids /* (B*T) */,
                    cl_mem type_ids /* (B*T) */, cl_mem wte0 /* (split, C) */,
                    cl_mem wte1 /* (V-split, C) */, cl_mem wpe /* (P, C) */,
                    cl_mem wtt /* (TT, C) */, cl_mem ln_w, cl_mem ln_b, float eps, int B, int T,
                    int C, int V, int split, int P, int TT);
int bc_op_bias_residual_layernorm(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (N, C) */,
                                  cl_mem x /* (N, C) */, cl_mem bias /* (C) */,
                                  cl_mem residual /* (N, C) */, cl_mem w, cl_mem b, float eps,
                                  int N, int C);
int bc_op_bias_act(bertcl_ctx *ctx, bc_ops *ops, cl_mem x /* (N, C) */, cl_mem bias /* (C) */,
                   int act, int N, int C);
int bc_op_split_heads(bertcl_ctx *ctx, bc_ops *ops, cl_mem q, cl_mem k, cl_mem v /* (B,NH,T,HS) */,
                      cl_mem qkv /* (B*T, 3C) */, cl_mem bias /* (3C) */, int B, int T, int C,
                      int NH);
/* bias (NH, T, T) or NULL: MPNet's relative position bias, added after the scale. Twin:
 * ref_softmax_bias_fwd. */
int bc_op_softmax(bertcl_ctx *ctx, bc_ops *ops, cl_mem scores /* (B, NH, T, T) */,
                  cl_mem mask /* (B, T) */, cl_mem bias /* (NH, T, T) or NULL */, float scale,
                  int B, int NH, int T);
int bc_op_merge_heads(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (B*T, C) */,
                      cl_mem ctxv /* (B, NH, T, HS) */, int B, int T, int C, int NH);
int bc_op_pool(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (B, out_stride) */,
               cl_mem h /* (B*T, C) */, cl_mem mask /* (B, T) */, int mode, int B, int T, int C,
               int out_stride, int col0);
int bc_op_l2norm(bertcl_ctx *ctx, bc_ops *ops, cl_mem x /* (N, C) */, int N, int C);
int bc_op_gather_cls(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (B, C) */,
                     cl_mem h /* (B*T, C) */, int B, int T, int C);

int bc_op_scale_add(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (N, out_stride) */,
                    cl_mem in /* (N, C) */, float alpha, float beta, int N, int C, int out_stride,
                    int col0);
int bc_op_gather_tokens(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (sum len, out_stride) */,
                        cl_mem h /* (B*T, C) */, cl_mem row_off /* (B+1) */, float alpha,
                        float beta, int B, int T, int C, int out_stride, int col0);
int bc_op_word_pool(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (nwords, out_stride) */,
                    cl_mem h /* (B*T, C) */, cl_mem word_ids /* (B, T) */,
                    cl_mem word_b /* (nwords) */, cl_mem word_w /* (nwords) */, int mode,
                    float alpha, float beta, int nwords, int T, int C, int out_stride, int col0);

/* out (n) IEEE halves = in (n) floats, rounded to nearest even: bit for bit bc_f32_to_f16. */
int bc_op_to_half(bertcl_ctx *ctx, bc_ops *ops, cl_mem out /* (n) half */, cl_mem in /* (n) */,
                  int n);

#endif
