/* Op table and launchers. One program holds every forward kernel (cl/common.cl first). */
#include "encoder/ops.h"

#include "model/family.h"

#include <stdio.h>
#include <string.h>

static const char *const op_files[] = {"common.cl", "position.cl", "embedding.cl", "layernorm.cl",
                                       "activation.cl", "attention.cl", "pooling.cl",
                                       "combine.cl", "gather.cl"};

void bc_act_options(char *buf, size_t n) {
  size_t len = strlen(buf);
  if (len < n)
    snprintf(buf + len, n - len, " -DACT_GELU=%d -DACT_GELU_TANH=%d -DACT_RELU=%d -DACT_TANH=%d",
             (int)BC_ACT_GELU, (int)BC_ACT_GELU_TANH, (int)BC_ACT_RELU, (int)BC_ACT_TANH_);
}

int bc_ops_init(bertcl_ctx *ctx, bc_ops *ops) {
  memset(ops, 0, sizeof *ops);
  int st = BERTCL_OK;
  ops->wg = bc_row_work_group(ctx);
  ops->kset = ctx->kset;
  char opts[320];
  bc_kernel_options(ctx, ops->kset, opts, sizeof opts);
  bc_act_options(opts, sizeof opts);
  size_t used = strlen(opts);
  snprintf(opts + used, sizeof opts - used, " -DREL_BUCKETS=%d", BC_REL_BUCKETS);
  BC_TRY(bc_program_build(ctx, op_files, sizeof op_files / sizeof op_files[0], opts, &ops->prog));
#define BC_OPS_CREATE(name) \
  BC_CL_OBJ(&ctx->err, ops->name, clCreateKernel(ops->prog, #name, BC_RC));
  BC_OPS_KERNELS(BC_OPS_CREATE)
#undef BC_OPS_CREATE
  return BERTCL_OK;
fail:
  bc_ops_free(ops);
  return st;
}

void bc_ops_free(bc_ops *ops) {
  if (!ops) return;
#define BC_OPS_RELEASE(name) \
  if (ops->name) clReleaseKernel(ops->name);
  BC_OPS_KERNELS(BC_OPS_RELEASE)
#undef BC_OPS_RELEASE
  if (ops->prog) clReleaseProgram(ops->prog);
  memset(ops, 0, sizeof *ops);
}

/* Element-wise kernels use groups of 64 (any multiple works: they check bounds). */
#define EW_LOCAL 64
#define A KARG
/* Enqueues kernel `name` (a bc_ops field) over `global` items in groups of `local` and returns
 * the status. */
#define RUN(name, global, local, ...) \
  BC_KERNEL_RUN(ctx, ops->name, #name, global, local, __VA_ARGS__)
/* Same over `rows` rows, shaped by the kernel set (bc_rows_launch). */
#define RUN_ROWS(name, rows, ...)                                                               \
  do {                                                                                          \
    size_t g_, l_;                                                                              \
    bc_rows_launch(ops->kset, ops->wg, (rows), &g_, &l_);                                       \
    RUN(name, g_, l_, __VA_ARGS__);                                                             \
  } while (0)

int bc_op_position_ids(bertcl_ctx *ctx, bc_ops *ops, cl_mem pos, cl_mem ids, int B, int T,
                       int padded, int padding_idx) {
  RUN(position_ids_fwd, (size_t)B, EW_LOCAL, A(pos), A(ids), A(B), A(T), A(padded),
      A(padding_idx));
}

int bc_op_rel_position_bias(bertcl_ctx *ctx, bc_ops *ops, cl_mem bias, cl_mem table, int NH,
                            int T) {
  RUN(rel_position_bias_fwd, (size_t)NH * T * T, EW_LOCAL, A(bias), A(table), A(NH), A(T));
}

int bc_op_rel_position_bias_bwd(bertcl_ctx *ctx, bc_ops *ops, cl_mem dtable, cl_mem ddiag,
                                cl_mem dz, int B, int NH, int T) {
  int st = BERTCL_OK;
  const bc_karg a1[] = {A(ddiag), A(dz), A(B), A(NH), A(T)};
  BC_TRY(bc_kernel_run(ctx, ops->rel_position_bias_bwd_diag, "rel_position_bias_bwd_diag", a1, 5,
                       (size_t)NH * (2 * (size_t)T - 1), EW_LOCAL));
  const bc_karg a2[] = {A(dtable), A(ddiag), A(NH), A(T)};
  BC_TRY(bc_kernel_run(ctx, ops->rel_position_bias_bwd_table, "rel_position_bias_bwd_table", a2,
                       4, (size_t)BC_REL_BUCKETS * NH, EW_LOCAL));
fail:
  return st;
}

int bc_op_embedding(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem ids, cl_mem pos_ids,
                    cl_mem type_ids, cl_mem wte0, cl_mem wte1, cl_mem wpe, cl_mem wtt,
                    cl_mem ln_w, cl_mem ln_b, float eps, int B, int T, int C, int V, int split,
                    int P, int TT) {
  /* without token types the kernel reads neither type_ids nor wtt: any buffer will do */
  if (TT <= 0) type_ids = ids, wtt = wpe, TT = 0;
  int rows = B * T;
  RUN_ROWS(embedding_fwd, (size_t)rows, A(out), A(ids), A(pos_ids), A(type_ids), A(wte0),
           A(wte1), A(wpe), A(wtt), A(ln_w), A(ln_b), A(eps), A(rows), A(C), A(V), A(split), A(P),
           A(TT));
}

int bc_op_bias_residual_layernorm(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem x,
                                  cl_mem bias, cl_mem residual, cl_mem w, cl_mem b, float eps,
                                  int N, int C) {
  RUN_ROWS(bias_residual_layernorm_fwd, (size_t)N, A(out), A(x), A(bias), A(residual), A(w), A(b),
           A(eps), A(N), A(C));
}

int bc_op_bias_act(bertcl_ctx *ctx, bc_ops *ops, cl_mem x, cl_mem bias, int act, int N, int C) {
  if (ops->kset == BC_KSET_CPU)
    RUN_ROWS(bias_act_fwd, (size_t)N, A(x), A(bias), A(act), A(N), A(C));
  RUN(bias_act_fwd, (size_t)N * C, EW_LOCAL, A(x), A(bias), A(act), A(N), A(C));
}

int bc_op_split_heads(bertcl_ctx *ctx, bc_ops *ops, cl_mem q, cl_mem k, cl_mem v, cl_mem qkv,
                      cl_mem bias, int B, int T, int C, int NH) {
  RUN(split_heads_fwd, (size_t)B * T * C, EW_LOCAL, A(q), A(k), A(v), A(qkv), A(bias), A(B), A(T),
      A(C), A(NH));
}

int bc_op_softmax(bertcl_ctx *ctx, bc_ops *ops, cl_mem scores, cl_mem mask, cl_mem bias,
                  float scale, int B, int NH, int T) {
  int has_bias = bias != NULL;
  if (!bias) bias = scores; /* not read */
  int rows = B * NH * T;
  RUN_ROWS(softmax_fwd, (size_t)rows, A(scores), A(mask), A(bias), A(scale), A(rows), A(NH), A(T),
           A(has_bias));
}

int bc_op_merge_heads(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem ctxv, int B, int T, int C,
                      int NH) {
  RUN(merge_heads_fwd, (size_t)B * T * C, EW_LOCAL, A(out), A(ctxv), A(B), A(T), A(C), A(NH));
}

int bc_op_pool(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, cl_mem mask, int mode, int B,
               int T, int C, int out_stride, int col0) {
  RUN(pool_fwd, (size_t)B * C, EW_LOCAL, A(out), A(h), A(mask), A(mode), A(B), A(T), A(C),
      A(out_stride), A(col0));
}

int bc_op_l2norm(bertcl_ctx *ctx, bc_ops *ops, cl_mem x, int N, int C) {
  RUN_ROWS(l2norm_fwd, (size_t)N, A(x), A(N), A(C));
}

int bc_op_gather_cls(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, int B, int T, int C) {
  RUN(gather_cls_fwd, (size_t)B * C, EW_LOCAL, A(out), A(h), A(B), A(T), A(C));
}

int bc_op_scale_add(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem in, float alpha, float beta,
                    int N, int C, int out_stride, int col0) {
  RUN(scale_add_fwd, (size_t)N * C, EW_LOCAL, A(out), A(in), A(alpha), A(beta), A(N), A(C),
      A(out_stride), A(col0));
}

int bc_op_gather_tokens(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, cl_mem row_off,
                        float alpha, float beta, int B, int T, int C, int out_stride, int col0) {
  RUN(gather_tokens_fwd, (size_t)B * T * C, EW_LOCAL, A(out), A(h), A(row_off), A(alpha), A(beta),
      A(B), A(T), A(C), A(out_stride), A(col0));
}

int bc_op_word_pool(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem h, cl_mem word_ids,
                    cl_mem word_b, cl_mem word_w, int mode, float alpha, float beta, int nwords,
                    int T, int C, int out_stride, int col0) {
  RUN(word_pool_fwd, (size_t)nwords * C, EW_LOCAL, A(out), A(h), A(word_ids), A(word_b),
      A(word_w), A(mode), A(alpha), A(beta), A(nwords), A(T), A(C), A(out_stride), A(col0));
}

int bc_op_to_half(bertcl_ctx *ctx, bc_ops *ops, cl_mem out, cl_mem in, int n) {
  RUN(to_half_fwd, (size_t)n, EW_LOCAL, A(out), A(in), A(n));
}
