/* Task models of every family on the plain-C reference (see ref_task.h): ref_encoder_fwd's
 * activations, the head, the loss, then the backward in reverse order. */
#include "ref/ref_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/family.h"
#include "train/recipe.h"

/* A gradient view's field as the writable buffer it is. */
#define GW(x) ((float *)(x))

/* The embeddings' backward with the positions the forward used: the LayerNorm's input is
 * recomputed in the forward's fp32 order, its gradient scattered into the word, position and
 * (when the family has them) token-type rows. */
static int embedding_bwd(const bc_config *cfg, const bc_weights *w, bc_weights *g,
                         const float *dout, /* (B*T, C) at the LayerNorm output */
                         const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids,
                         int B, int T) {
  int C = cfg->hidden_size;
  size_t BT = (size_t)B * T;
  const float *type_emb = cfg->type_vocab_size > 0 ? w->type_emb : NULL;
  float *x = malloc(BT * C * sizeof(float));         /* (B*T, C) LayerNorm input */
  float *dx = calloc(BT * C, sizeof(float));         /* (B*T, C) its gradient */
  if (!x || !dx) {
    free(x);
    free(dx);
    return bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_task_fwd_bwd: out of memory");
  }
  for (size_t bt = 0; bt < BT; bt++) {
    const float *we = w->word_emb + (size_t)ids[bt] * C, *pe = w->pos_emb + (size_t)pos_ids[bt] * C;
    const float *te = type_emb ? type_emb + (size_t)(type_ids ? type_ids[bt] : 0) * C : NULL;
    for (int c = 0; c < C; c++) x[bt * C + c] = te ? (we[c] + te[c]) + pe[c] : we[c] + pe[c];
  }
  ref_layernorm_bwd(dx, GW(g->emb_ln_w), GW(g->emb_ln_b), dout, x, w->emb_ln_w,
                    cfg->layer_norm_eps, (int)BT, C);
  for (size_t bt = 0; bt < BT; bt++) {
    float *gw = GW(g->word_emb) + (size_t)ids[bt] * C, *gp = GW(g->pos_emb) + (size_t)pos_ids[bt] * C;
    float *gt = type_emb && g->type_emb
                    ? GW(g->type_emb) + (size_t)(type_ids ? type_ids[bt] : 0) * C
                    : NULL;
    for (int c = 0; c < C; c++) {
      float d = dx[bt * C + c];
      gw[c] += d;
      gp[c] += d;
      if (gt) gt[c] += d;
    }
  }
  free(dx);
  free(x);
  return BERTCL_OK;
}

/* dz (B, NH, T, T), the gradient at the attention's scaled scores (softmax's input), from the
 * context's gradient: dprobs = dctx v^T through the probabilities' dropout, then softmax's
 * backward. Only the relative position bias needs it (q, k and v come from ref_attention_bwd). */
static void attention_score_grad(float *dz, const float *dctx, const float *v, const float *probs,
                                 const ref_dropout *drop, int B, int T, int C, int NH) {
  int HS = C / NH;
  int dropping = drop && drop->p > 0.0f;
  float dscale = dropping ? (drop->p >= 1.0f ? 0.0f : 1.0f / (1.0f - drop->p)) : 1.0f;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
          size_t e = (((size_t)b * NH + h) * T + i) * T + j;
          const float *di = dctx + ((size_t)b * T + i) * C + (size_t)h * HS;
          const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * HS;
          double s = 0.0;
          for (int c = 0; c < HS; c++) s += (double)di[c] * vj[c];
          if (dropping) s = ref_dropout_keep(drop, e) ? s * dscale : 0.0;
          dz[e] = (float)s;
        }
  ref_softmax_bwd(dz, dz, probs, 1.0f, B, NH, T);
}

int ref_task_fwd_bwd(const bc_config *cfg, const bc_weights *w, ref_task task, int K,
                     const int32_t *ids, const int32_t *type_ids, const int32_t *mask,
                     const int32_t *labels, const float *targets, int B, int T,
                     const ref_task_dropout *drop, float grad_scale, bc_weights *g, double *loss,
                     float *logits_out) {
  int seq = task == REF_TASK_SEQUENCE;
  if (!cfg || !w || !ids || B <= 0 || T <= 0 || K <= 0 || (task != REF_TASK_SEQUENCE && task != REF_TASK_TOKEN) ||
      (!labels && !(seq && K == 1 && targets)))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_task_fwd_bwd: null argument, B=%d T=%d, K=%d without labels/targets", B,
                   T, K);
  if (!w->cls_w || !w->cls_b || (seq && (!w->head_w || !w->head_b)))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_task_fwd_bwd: the model has no %s head",
                   seq ? "sequence-classification" : "token-classification");
  int C = cfg->hidden_size, L = cfg->num_layers, NH = cfg->num_heads, I = cfg->intermediate_size;
  size_t BT = (size_t)B * T, BTC = BT * C, BTI = BT * I, PR = BT * NH * T;
  size_t rows = seq ? (size_t)B : BT; /* logits rows */
  size_t nlab = seq ? (size_t)B : BT;
  for (size_t i = 0; labels && i < nlab; i++)
    if (labels[i] != -100 && (labels[i] < 0 || labels[i] >= K))
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_task_fwd_bwd: label %d of row %zu not in [0, %d)",
                     (int)labels[i], i, K);
  const ref_dropout *d_enc = drop ? drop->enc : NULL;
  const ref_dropout *d_in = drop ? drop->head_in : NULL, *d_out = drop ? drop->head_out : NULL;

  ref_fwd_acts acts = {0};
  float *hidden = malloc((size_t)(L + 1) * BTC * sizeof(float)); /* (L+1, B*T, C) */
  float *head = malloc((3 * BTC + 2 * rows * K) * sizeof(float));
  float *grad = NULL;
  int st = ref_fwd_acts_alloc(&acts, cfg, B, T);
  if (st == BERTCL_OK && (!hidden || !head))
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_task_fwd_bwd: out of memory for B=%d T=%d", B, T);
  if (st) goto fail;
  /* head buffers: sequence x, z, zd (B, C); token: the dropped hidden state (B*T, C) in x */
  float *x = head, *z = head + BTC, *zd = head + 2 * BTC;
  float *logits = head + 3 * BTC, *dlogits = logits + rows * K; /* (rows, K) each */

  /* ---- forward ---- */
  BC_TRY(ref_encoder_fwd(cfg, w, ids, type_ids, mask, B, T, d_enc, hidden, &acts));
  const float *hL = hidden + (size_t)L * BTC; /* (B*T, C) */
  if (seq) {
    ref_head_acts ha = {x, z, zd};
    BC_TRY(ref_seq_head_fwd(logits, &ha, cfg, w, hL, B, T, K, d_in, d_out));
  } else {
    ref_dropout_fwd(x, hL, BTC, d_out);
    ref_linear_fwd(logits, x, w->cls_w, w->cls_b, (int)BT, C, K);
  }
  double lv = (seq && K == 1) ? bc_mse_fwd_bwd(dlogits, logits, targets, B, grad_scale)
                              : ref_cross_entropy_fwd_bwd(dlogits, logits, labels, (int)rows, K,
                                                          grad_scale);
  if (loss) *loss = lv;
  if (logits_out) memcpy(logits_out, logits, rows * K * sizeof(float));
  if (!g) goto fail; /* forward only: done */

  /* ---- backward ---- */
  /* dh (B*T, C) at layer l's input, dhn at its output, dh1, dt, dctx, dq, dk, dv (B*T, C),
   * dact (B*T, I), dz (B, NH, T, T) when the family has a relative position bias */
  grad = calloc(8 * BTC + BTI + (cfg->rel_buckets > 0 ? PR : 0), sizeof(float));
  if (!grad) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_task_fwd_bwd: out of memory for gradients");
    goto fail;
  }
  float *dh = grad, *dhn = dh + BTC, *dh1 = dhn + BTC, *dt = dh1 + BTC, *dctx = dt + BTC;
  float *dq = dctx + BTC, *dk = dq + BTC, *dv = dk + BTC, *dact = dv + BTC;
  float *dz = cfg->rel_buckets > 0 ? dact + BTI : NULL;

  if (seq) {
    float *dx = dt, *dzd = dq; /* (B, C) scratch in buffers not yet used */
    memset(dzd, 0, (size_t)B * C * sizeof(float));
    ref_linear_bwd(dzd, GW(g->cls_w), GW(g->cls_b), dlogits, zd, w->cls_w, B, C, K);
    ref_dropout_bwd(dzd, dzd, (size_t)B * C, d_out);
    if (cfg->head == BC_CLS_HEAD_DENSE_RELU) {
      for (size_t i = 0; i < (size_t)B * C; i++) dzd[i] = z[i] > 0.0f ? dzd[i] : 0.0f;
    } else {
      ref_tanh_bwd(dzd, dzd, z, (size_t)B * C);
    }
    memset(dx, 0, (size_t)B * C * sizeof(float));
    ref_linear_bwd(dx, GW(g->head_w), GW(g->head_b), dzd, x, w->head_w, B, C, C);
    if (cfg->head == BC_CLS_HEAD_DENSE_TANH) ref_dropout_bwd(dx, dx, (size_t)B * C, d_in);
    for (int b = 0; b < B; b++)
      for (int c = 0; c < C; c++) dhn[(size_t)b * T * C + c] += dx[(size_t)b * C + c];
  } else {
    ref_linear_bwd(dhn, GW(g->cls_w), GW(g->cls_b), dlogits, x, w->cls_w, (int)BT, C, K);
    ref_dropout_bwd(dhn, dhn, BTC, d_out);
  }

  float eps = cfg->layer_norm_eps;
  for (int l = L - 1; l >= 0; l--) {
    const bc_layer_weights *lw = &w->layers[l];
    bc_layer_weights *lg = &g->layers[l];
    const ref_layer_acts *a = &acts.layer[l];
    const float *h = hidden + (size_t)l * BTC;
    const ref_dropout *d_attn = d_enc ? &d_enc[ref_fwd_drop_site(l, REF_FWD_DROP_ATTN)] : NULL;
    const ref_dropout *d_ao = d_enc ? &d_enc[ref_fwd_drop_site(l, REF_FWD_DROP_ATTN_OUT)] : NULL;
    const ref_dropout *d_ffn = d_enc ? &d_enc[ref_fwd_drop_site(l, REF_FWD_DROP_FFN_OUT)] : NULL;
    memset(dh, 0, BTC * sizeof(float));
    memset(dh1, 0, BTC * sizeof(float));
    memset(dt, 0, BTC * sizeof(float));
    memset(dact, 0, BTI * sizeof(float));
    /* h_{l+1} = LN2(t2 + h1), t2 = dropout(act @ out_w^T + out_b) */
    ref_bias_residual_layernorm_bwd(dt, NULL, dh1, GW(lg->ln2_w), GW(lg->ln2_b), dhn, a->t2, NULL,
                                    a->h1, lw->ln2_w, eps, (int)BT, C);
    ref_dropout_bwd(dt, dt, BTC, d_ffn);
    ref_linear_bwd(dact, GW(lg->out_w), GW(lg->out_b), dt, a->act, lw->out_w, (int)BT, I, C);
    ref_bias_act_bwd(dact, GW(lg->inter_b), dact, a->pre, lw->inter_b, cfg->act, (int)BT, I);
    ref_linear_bwd(dh1, GW(lg->inter_w), NULL, dact, a->h1, lw->inter_w, (int)BT, C, I);
    /* h1 = LN1(t1 + h), t1 = dropout(ctx @ ao_w^T + ao_b) */
    memset(dt, 0, BTC * sizeof(float));
    ref_bias_residual_layernorm_bwd(dt, NULL, dh, GW(lg->ln1_w), GW(lg->ln1_b), dh1, a->t1, NULL,
                                    h, lw->ln1_w, eps, (int)BT, C);
    ref_dropout_bwd(dt, dt, BTC, d_ao);
    memset(dctx, 0, BTC * sizeof(float));
    ref_linear_bwd(dctx, GW(lg->ao_w), GW(lg->ao_b), dt, a->ctx, lw->ao_w, (int)BT, C, C);
    memset(dq, 0, 3 * BTC * sizeof(float)); /* dq, dk, dv are adjacent */
    ref_attention_bwd(dq, dk, dv, dctx, a->q, a->k, a->v, a->probs, d_attn, B, T, C, NH);
    if (dz && g->rel_bias) {
      attention_score_grad(dz, dctx, a->v, a->probs, d_attn, B, T, C, NH);
      ref_rel_position_bias_bwd(GW(g->rel_bias), dz, B, NH, T);
    }
    ref_linear_bwd(dh, GW(lg->q_w), GW(lg->q_b), dq, h, lw->q_w, (int)BT, C, C);
    ref_linear_bwd(dh, GW(lg->k_w), GW(lg->k_b), dk, h, lw->k_w, (int)BT, C, C);
    ref_linear_bwd(dh, GW(lg->v_w), GW(lg->v_b), dv, h, lw->v_w, (int)BT, C, C);
    memcpy(dhn, dh, BTC * sizeof(float)); /* the gradient at layer l's input feeds layer l-1 */
  }
  if (d_enc) ref_dropout_bwd(dhn, dhn, BTC, &d_enc[0]);
  BC_TRY(embedding_bwd(cfg, w, g, dhn, ids, acts.pos_ids, type_ids, B, T));

fail:
  free(grad);
  free(head);
  free(hidden);
  ref_fwd_acts_free(&acts);
  return st;
}
