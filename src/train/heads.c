/* Task heads of the OpenCL trainer (see head.h and trainer_impl.h): one forward and one backward
 * per head kind, reading the last hidden state h_L and writing the logits; the backward leaves
 * the gradient at h_L in tr->dH for the encoder's backward. Twins: src/ref/ref_cls.c. */
#include <stddef.h>

#include "gemm/gemm.h"
#include "train/trainer_impl.h"

static const bc_head_desc descs[BC_HEAD_COUNT] = {
    [BC_HEAD_SEQUENCE] = {"sequence", "BertForSequenceClassification", 1, 0, 1},
    [BC_HEAD_TOKEN] = {"token", "BertForTokenClassification", 0, 1, 2},
};

const bc_head_desc *bc_head_describe(int kind) {
  return kind >= 0 && kind < BC_HEAD_COUNT ? &descs[kind] : NULL;
}

/* ---- BertForSequenceClassification ------------------------------------------------------- */
/* pooled (B, C) = tanh(h_L[b, 0] Wp^T + bp) (rows of h_L at stride T*C);
 * logits (B, K) = dropout(pooled) Wc^T + bc. Tensors: pb pooler weight, pb+1 pooler bias,
 * pb+2 classifier weight, pb+3 classifier bias. */

static int sequence_forward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int L = tr->cfg.num_layers, C = tr->cfg.hidden_size, K = tr->K;
  float cp = drop ? drop->cls_p : 0.0f;
  int pb = bc_tr_head_base(tr);
  BC_TRY(bc_tr_gemm(tr, 0, 1, (size_t)B, (size_t)C, (size_t)C, 0.0f, tr->h[L], 0, (size_t)T * C,
                    tr->buf[0], OFF(pb), (size_t)C, tr->pooled, 0, (size_t)C));
  BC_TRY(bc_op_bias_act(ctx, &tr->ops, tr->pooled, P(pb + 1), BC_ACT_TANH_, B, C));
  BC_TRY(bc_tr_copy(tr, tr->pooled_d, tr->pooled, (size_t)B * C));
  BC_TRY(bc_tr_dropout(tr, tr->pooled_d, drop, cp, bc_dropout_id(-1, BC_DROP_CLS),
                       (size_t)B * C));
  BC_TRY(bc_linear(ctx, tr->logits, 0, tr->pooled_d, 0, tr->buf[0], OFF(pb + 2), (size_t)B,
                   (size_t)C, (size_t)K));
  BC_TRY(bc_tr_bias_dropout_res(tr, tr->logits, tr->logits, P(pb + 3), NULL, NULL, 0.0f, 0, B,
                                K));
  return BERTCL_OK;
fail:
  return st;
}

/* Classifier and pooler gradients; dH (B*T, C): only token 0 of each row receives the pooler's
 * gradient. */
static int sequence_backward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop,
                             int to_encoder) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int L = tr->cfg.num_layers, C = tr->cfg.hidden_size, K = tr->K;
  float cp = drop ? drop->cls_p : 0.0f;
  cl_mem gb = tr->buf[BC_TR_GRADS], pbuf = tr->buf[BC_TR_PARAMS];
  int pb = bc_tr_head_base(tr);
  /* classifier: dlogits (B, K) -> dWc, dbc, dpooled */
  BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(pb + 3), tr->dlogits, B, K));
  BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)K, (size_t)C, (size_t)B, 1.0f, tr->dlogits, 0, (size_t)K,
                    tr->pooled_d, 0, (size_t)C, gb, OFF(pb + 2), (size_t)C));
  BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)B, (size_t)C, (size_t)K, 0.0f, tr->dlogits, 0, (size_t)K,
                    pbuf, OFF(pb + 2), (size_t)C, tr->dpooled, 0, (size_t)C));
  BC_TRY(bc_tr_dropout(tr, tr->dpooled, drop, cp, bc_dropout_id(-1, BC_DROP_CLS),
                       (size_t)B * C));
  BC_TRY(bc_op_tanh_bwd(ctx, &tr->tops, tr->dpooled, tr->dpooled, tr->pooled, (size_t)B * C));
  BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(pb + 1), tr->dpooled, B, C));
  BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)C, (size_t)C, (size_t)B, 1.0f, tr->dpooled, 0, (size_t)C,
                    tr->h[L], 0, (size_t)T * C, gb, OFF(pb), (size_t)C));
  if (to_encoder) {
    BC_TRY(bc_tr_fill0(tr, tr->dH, (size_t)B * T * C));
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)B, (size_t)C, (size_t)C, 0.0f, tr->dpooled, 0,
                      (size_t)C, pbuf, OFF(pb), (size_t)C, tr->dH, 0, (size_t)T * C));
  }
  return BERTCL_OK;
fail:
  return st;
}

/* ---- BertForTokenClassification ---------------------------------------------------------- */
/* pooled_d (B*T, C) = dropout(h_L) (the classifier site, every token);
 * logits (B*T, K) = pooled_d Wc^T + bc. Tensors: hb classifier weight, hb+1 classifier bias. */

static int token_forward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int L = tr->cfg.num_layers, C = tr->cfg.hidden_size, K = tr->K, N = B * T;
  float cp = drop ? drop->cls_p : 0.0f;
  int hb = bc_tr_head_base(tr);
  BC_TRY(bc_tr_copy(tr, tr->pooled_d, tr->h[L], (size_t)N * C));
  BC_TRY(bc_tr_dropout(tr, tr->pooled_d, drop, cp, bc_dropout_id(-1, BC_DROP_CLS),
                       (size_t)N * C));
  BC_TRY(bc_linear(ctx, tr->logits, 0, tr->pooled_d, 0, tr->buf[0], OFF(hb), (size_t)N,
                   (size_t)C, (size_t)K));
  BC_TRY(bc_tr_bias_dropout_res(tr, tr->logits, tr->logits, P(hb + 1), NULL, NULL, 0.0f, 0, N,
                                K));
  return BERTCL_OK;
fail:
  return st;
}

/* Classifier gradients; dH (B*T, C) = dropout_bwd(dlogits Wc). */
static int token_backward(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop,
                          int to_encoder) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int C = tr->cfg.hidden_size, K = tr->K, N = B * T;
  float cp = drop ? drop->cls_p : 0.0f;
  cl_mem gb = tr->buf[BC_TR_GRADS], pbuf = tr->buf[BC_TR_PARAMS];
  int hb = bc_tr_head_base(tr);
  BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(hb + 1), tr->dlogits, N, K));
  BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)K, (size_t)C, (size_t)N, 1.0f, tr->dlogits, 0, (size_t)K,
                    tr->pooled_d, 0, (size_t)C, gb, OFF(hb), (size_t)C));
  if (to_encoder) {
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)N, (size_t)C, (size_t)K, 0.0f, tr->dlogits, 0,
                      (size_t)K, pbuf, OFF(hb), (size_t)C, tr->dH, 0, (size_t)C));
    BC_TRY(bc_tr_dropout(tr, tr->dH, drop, cp, bc_dropout_id(-1, BC_DROP_CLS), (size_t)N * C));
  }
  return BERTCL_OK;
fail:
  return st;
}

const bc_head_ops bc_head_table[BC_HEAD_COUNT] = {
    [BC_HEAD_SEQUENCE] = {sequence_forward, sequence_backward},
    [BC_HEAD_TOKEN] = {token_forward, token_backward},
};
