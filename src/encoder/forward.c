/* The one device forward (see forward.h). */
#include "encoder/forward.h"

#include <math.h>

#include "gemm/gemm.h"

int bc_forward(bertcl_ctx *ctx, bc_ops *ops, bc_train_ops *tops, const bc_config *c,
               const bc_dev_weights *w, const bc_fwd_bufs *a, int B, int T,
               const bc_dropout_cfg *drop) {
  int st = BERTCL_OK;
  int L = c->num_layers, C = c->hidden_size, NH = c->num_heads, HS = C / NH,
      I = c->intermediate_size, TT = c->type_vocab_size;
  size_t N = (size_t)B * T, C3 = 3 * (size_t)C;
  float eps = c->layer_norm_eps, hp = drop ? drop->hidden_p : 0.0f,
        ap = drop ? drop->attn_p : 0.0f;
  if ((a->keep || drop) && (!tops || !a->keep || !a->xin_e))
    return bc_fail(&ctx->err, BERTCL_ERR_INTERNAL,
                   "bc_forward: dropout and kept activations need the training program");
  if (a->keep && w->split != c->vocab_size)
    return bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "bc_forward: training needs one word table");
  /* positions, embeddings (token types where the family has them) and, for MPNet, the relative
   * position bias every layer adds to its scores */
  BC_TRY(bc_op_position_ids(ctx, ops, a->pos, a->ids, B, T, c->pos_kind == BC_POS_PADDED,
                            c->padding_idx));
  if (a->keep) {
    BC_TRY(bc_op_embedding_sum(ctx, tops, a->xin_e, a->ids, a->pos, a->types, w->wte0.sub,
                               w->wpe.sub, TT > 0 ? w->wtt.sub : NULL, (int)N, C, TT));
    BC_TRY(bc_op_layernorm_fwd(ctx, tops, a->h[0], a->xin_e, w->eln_w.sub, w->eln_b.sub, eps,
                               (int)N, C));
    if (drop && hp > 0.0f)
      BC_TRY(bc_op_dropout(ctx, tops, a->h[0], a->h[0], hp, drop->seed, drop->step,
                           bc_dropout_id(-1, BC_DROP_EMB), N * C));
  } else {
    BC_TRY(bc_op_embedding(ctx, ops, a->h[0], a->ids, a->pos, a->types, w->wte0.sub,
                           w->wte1.sub, w->wpe.sub, TT > 0 ? w->wtt.sub : NULL, w->eln_w.sub,
                           w->eln_b.sub, eps, B, T, C, c->vocab_size, w->split,
                           bc_config_position_rows(c), TT));
  }
  cl_mem bias = NULL;
  if (c->rel_buckets > 0) {
    BC_TRY(bc_op_rel_position_bias(ctx, ops, a->bias, w->rel_bias.sub, NH, T));
    bias = a->bias;
  }
  float scale = 1.0f / sqrtf((float)HS);
  for (int l = 0; l < L; l++) {
    const bc_dev_layer *d = &w->layers[l];
    const bc_fwd_layer *x = &a->layer[a->keep ? l : 0];
    cl_mem h = a->h[l], out = a->h[l + 1];
    /* qkv (N, 3C) = h (N, C) @ Wqkv^T + 1 (N, 1) @ bqkv (1, 3C) */
    BC_TRY(bc_linear(ctx, x->qkv, 0, h, 0, d->qkv_w.base, d->qkv_w.off, N, (size_t)C, C3));
    bc_gemm_args gb = {.m = N, .n = C3, .k = 1, .alpha = 1.0f, .beta = 1.0f, .a = a->ones,
                       .lda = 1, .b = d->qkv_b.base, .b_off = d->qkv_b.off, .ldb = C3,
                       .c = x->qkv, .ldc = C3};
    BC_TRY(bc_gemm(ctx, &gb));
    /* The heads are read in place: head h of sequence b starts at b*T*3C + h*HS (q), + C (k),
     * + 2C (v), rows 3C apart; an outer batch level over b, an inner one over h. */
    bc_gemm_args g = {.trans_a = 0, .trans_b = 1, .m = (size_t)T, .n = (size_t)T,
                      .k = (size_t)HS, .alpha = 1.0f, .beta = 0.0f,
                      .a = x->qkv, .a_off = 0, .lda = C3, .a_stride = (size_t)HS,
                      .a_stride2 = (size_t)T * C3,
                      .b = x->qkv, .b_off = (size_t)C, .ldb = C3, .b_stride = (size_t)HS,
                      .b_stride2 = (size_t)T * C3,
                      .c = x->probs, .ldc = (size_t)T, .c_stride = (size_t)T * T,
                      .c_stride2 = (size_t)NH * T * T,
                      .batch = (size_t)NH, .batch2 = (size_t)B};
    BC_TRY(bc_gemm(ctx, &g));
    BC_TRY(bc_op_softmax(ctx, ops, x->probs, a->mask, bias, scale, B, NH, T));
    cl_mem pr = x->probs;
    if (drop && ap > 0.0f) {
      BC_TRY(bc_op_dropout(ctx, tops, a->pdrop, x->probs, ap, drop->seed, drop->step,
                           bc_dropout_id(l, BC_DROP_ATTN), N * NH * T));
      pr = a->pdrop;
    }
    /* context, merged: ctx (B*T, C), head h of row (b, t) at columns h*HS.. = probs v */
    bc_gemm_args g2 = {.trans_a = 0, .trans_b = 0, .m = (size_t)T, .n = (size_t)HS,
                       .k = (size_t)T, .alpha = 1.0f, .beta = 0.0f,
                       .a = pr, .lda = (size_t)T, .a_stride = (size_t)T * T,
                       .a_stride2 = (size_t)NH * T * T,
                       .b = x->qkv, .b_off = 2 * (size_t)C, .ldb = C3, .b_stride = (size_t)HS,
                       .b_stride2 = (size_t)T * C3,
                       .c = x->ctx, .ldc = (size_t)C, .c_stride = (size_t)HS,
                       .c_stride2 = (size_t)T * C,
                       .batch = (size_t)NH, .batch2 = (size_t)B};
    BC_TRY(bc_gemm(ctx, &g2));
    BC_TRY(bc_linear(ctx, a->proj, 0, x->ctx, 0, d->ao_w.base, d->ao_w.off, N, (size_t)C,
                     (size_t)C));
    if (a->keep) {
      BC_TRY(bc_op_bias_dropout_residual(ctx, tops, x->xin1, a->proj, d->ao_b.sub, h,
                                         drop ? hp : 0.0f, drop ? drop->seed : 0,
                                         drop ? drop->step : 0,
                                         bc_dropout_id(l, BC_DROP_ATTN_OUT), (int)N, C));
      BC_TRY(bc_op_layernorm_fwd(ctx, tops, x->h1, x->xin1, d->ln1_w.sub, d->ln1_b.sub, eps,
                                 (int)N, C));
    } else {
      BC_TRY(bc_op_bias_residual_layernorm(ctx, ops, x->h1, a->proj, d->ao_b.sub, h,
                                           d->ln1_w.sub, d->ln1_b.sub, eps, (int)N, C));
    }
    /* FFN: act = act(h1 Wi^T + bi), the product kept before its bias when training */
    cl_mem pre = a->keep ? x->pre : x->act;
    BC_TRY(bc_linear(ctx, pre, 0, x->h1, 0, d->i_w.base, d->i_w.off, N, (size_t)C, (size_t)I));
    if (pre != x->act)
      BC_CL(&ctx->err,
            clEnqueueCopyBuffer(ctx->queue, pre, x->act, 0, 0, N * I * 4, 0, NULL, NULL));
    BC_TRY(bc_op_bias_act(ctx, ops, x->act, d->i_b.sub, (int)c->act, (int)N, I));
    BC_TRY(bc_linear(ctx, a->proj, 0, x->act, 0, d->o_w.base, d->o_w.off, N, (size_t)I,
                     (size_t)C));
    if (a->keep) {
      BC_TRY(bc_op_bias_dropout_residual(ctx, tops, x->xin2, a->proj, d->o_b.sub, x->h1,
                                         drop ? hp : 0.0f, drop ? drop->seed : 0,
                                         drop ? drop->step : 0,
                                         bc_dropout_id(l, BC_DROP_FFN_OUT), (int)N, C));
      BC_TRY(bc_op_layernorm_fwd(ctx, tops, out, x->xin2, d->ln2_w.sub, d->ln2_b.sub, eps,
                                 (int)N, C));
    } else {
      BC_TRY(bc_op_bias_residual_layernorm(ctx, ops, out, a->proj, d->o_b.sub, x->h1,
                                           d->ln2_w.sub, d->ln2_b.sub, eps, (int)N, C));
    }
  }
  return BERTCL_OK;
fail:
  return st;
}
