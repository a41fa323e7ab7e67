/* Task heads of the OpenCL trainer (see head.h and trainer_impl.h): one forward and one backward
 * per head kind, reading the last hidden state h_L and writing the logits; the backward leaves
 * the gradient at h_L in tr->dH for the encoder's backward. The sequence head's shape is the
 * family's (bc_config.head): BERT's pooler, RoBERTa's and MPNet's classifier (dropout, dense,
 * tanh, dropout, out_proj), DistilBERT's (pre_classifier, ReLU, dropout, classifier).
 * Twins: ref_seq_head_fwd and ref_task_fwd_bwd (src/ref). */
#include <stddef.h>

#include "gemm/gemm.h"
#include "train/trainer_impl.h"

static const bc_head_desc descs[BC_HEAD_COUNT] = {
    [BC_HEAD_SEQUENCE] = {"sequence", "ForSequenceClassification", 1, 0, 1},
    [BC_HEAD_TOKEN] = {"token", "ForTokenClassification", 0, 1, 2},
};

const bc_head_desc *bc_head_describe(int kind) {
  return kind >= 0 && kind < BC_HEAD_COUNT ? &descs[kind] : NULL;
}

/* ---- *ForSequenceClassification --------------------------------------------------------- */
/* head_x (B, C) = h_L[b, 0] (dropout at BC_DROP_HEAD_IN where the family's head has it);
 * head_pre = head_x Wd^T; pooled = act(head_pre + bd) (tanh; DistilBERT: ReLU);
 * pooled_d = dropout(pooled) (BC_DROP_CLS); logits (B, K) = pooled_d Wc^T + bc. */

static int head_act(const bc_config *c) { return c->head == BC_CLS_HEAD_DENSE_RELU ? BC_ACT_RELU : BC_ACT_TANH_; }

static int sequence_forward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int L = tr->cfg.num_layers, C = tr->cfg.hidden_size, K = tr->K;
  float cp = drop ? drop->cls_p : 0.0f;
  size_t BC = (size_t)B * C;
  BC_TRY(bc_op_gather_cls(ctx, &tr->ops, tr->head_x, tr->h[L], B, T, C));
  if (tr->cfg.head == BC_CLS_HEAD_DENSE_TANH)
    BC_TRY(bc_tr_dropout(tr, tr->head_x, drop, cp, bc_dropout_id(-1, BC_DROP_HEAD_IN), BC));
  BC_TRY(bc_linear(ctx, tr->head_pre, 0, tr->head_x, 0, tr->buf[0], OFF(tr->i_dw), (size_t)B,
                   (size_t)C, (size_t)C));
  BC_TRY(bc_tr_copy(tr, tr->pooled, tr->head_pre, BC));
  BC_TRY(bc_op_bias_act(ctx, &tr->ops, tr->pooled, P(tr->i_db), head_act(&tr->cfg), B, C));
  BC_TRY(bc_tr_copy(tr, tr->pooled_d, tr->pooled, BC));
  BC_TRY(bc_tr_dropout(tr, tr->pooled_d, drop, cp, bc_dropout_id(-1, BC_DROP_CLS), BC));
  BC_TRY(bc_linear(ctx, tr->logits, 0, tr->pooled_d, 0, tr->buf[0], OFF(tr->i_cw), (size_t)B,
                   (size_t)C, (size_t)K));
  BC_TRY(bc_tr_bias_dropout_res(tr, tr->logits, tr->logits, P(tr->i_cb), NULL, NULL, 0.0f, 0, B,
                                K));
  return BERTCL_OK;
fail:
  return st;
}

/* Classifier and dense-layer gradients; dH (B*T, C): only token 0 of each row receives one. */
static int sequence_backward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop,
                             int to_encoder) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int C = tr->cfg.hidden_size, K = tr->K;
  float cp = drop ? drop->cls_p : 0.0f;
  size_t BC = (size_t)B * C;
  /* classifier: dlogits (B, K) -> dWc, dbc, dpooled */
  BC_TRY(bc_tr_linear_bwd(tr, tr->dpooled, 0.0f, G(tr->i_cb), OFF(tr->i_cw), tr->dlogits,
                          tr->pooled_d, B, C, K));
  BC_TRY(bc_tr_dropout(tr, tr->dpooled, drop, cp, bc_dropout_id(-1, BC_DROP_CLS), BC));
  if (tr->cfg.head == BC_CLS_HEAD_DENSE_RELU)
    BC_TRY(bc_op_bias_act_bwd(ctx, &tr->tops, tr->dpooled, tr->dpooled, tr->head_pre,
                              P(tr->i_db), BC_ACT_RELU, B, C));
  else
    BC_TRY(bc_op_tanh_bwd(ctx, &tr->tops, tr->dpooled, tr->dpooled, tr->pooled, BC));
  /* the dense layer: dWd, dbd, and the gradient at its input */
  BC_TRY(bc_tr_linear_bwd(tr, to_encoder ? tr->head_dx : NULL, 0.0f, G(tr->i_db), OFF(tr->i_dw),
                          tr->dpooled, tr->head_x, B, C, C));
  if (to_encoder) {
    if (tr->cfg.head == BC_CLS_HEAD_DENSE_TANH)
      BC_TRY(bc_tr_dropout(tr, tr->head_dx, drop, cp, bc_dropout_id(-1, BC_DROP_HEAD_IN), BC));
    /* dH: zero but for token 0 of each row, which gets head_dx's row */
    BC_TRY(bc_tr_fill0(tr, tr->dH, (size_t)B * T * C));
    size_t origin[3] = {0, 0, 0}, region[3] = {(size_t)C * 4, (size_t)B, 1};
    BC_CL(&ctx->err, clEnqueueCopyBufferRect(ctx->queue, tr->head_dx, tr->dH, origin, origin,
                                             region, (size_t)C * 4, 0, (size_t)T * C * 4, 0, 0,
                                             NULL, NULL));
  }
  return BERTCL_OK;
fail:
  return st;
}

/* ---- *ForTokenClassification ------------------------------------------------------------ */
/* pooled_d (B*T, C) = dropout(h_L) (the classifier site, every token);
 * logits (B*T, K) = pooled_d Wc^T + bc ("classifier" in every family). */

static int token_forward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int L = tr->cfg.num_layers, C = tr->cfg.hidden_size, K = tr->K, N = B * T;
  float cp = drop ? drop->cls_p : 0.0f;
  BC_TRY(bc_tr_copy(tr, tr->pooled_d, tr->h[L], (size_t)N * C));
  BC_TRY(bc_tr_dropout(tr, tr->pooled_d, drop, cp, bc_dropout_id(-1, BC_DROP_CLS),
                       (size_t)N * C));
  BC_TRY(bc_linear(ctx, tr->logits, 0, tr->pooled_d, 0, tr->buf[0], OFF(tr->i_cw), (size_t)N,
                   (size_t)C, (size_t)K));
  BC_TRY(bc_tr_bias_dropout_res(tr, tr->logits, tr->logits, P(tr->i_cb), NULL, NULL, 0.0f, 0, N,
                                K));
  return BERTCL_OK;
fail:
  return st;
}

/* Classifier gradients; dH (B*T, C) = dropout_bwd(dlogits Wc). */
static int token_backward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop,
                          int to_encoder) {
  int st = BERTCL_OK;
  int C = tr->cfg.hidden_size, K = tr->K, N = B * T;
  float cp = drop ? drop->cls_p : 0.0f;
  BC_TRY(bc_tr_linear_bwd(tr, to_encoder ? tr->dH : NULL, 0.0f, G(tr->i_cb), OFF(tr->i_cw),
                          tr->dlogits, tr->pooled_d, N, C, K));
  if (to_encoder)
    BC_TRY(bc_tr_dropout(tr, tr->dH, drop, cp, bc_dropout_id(-1, BC_DROP_CLS), (size_t)N * C));
  return BERTCL_OK;
fail:
  return st;
}

const bc_head_ops bc_head_table[BC_HEAD_COUNT] = {
    [BC_HEAD_SEQUENCE] = {sequence_forward, sequence_backward},
    [BC_HEAD_TOKEN] = {token_forward, token_backward},
};
