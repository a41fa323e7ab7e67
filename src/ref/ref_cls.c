/* Plain-C training step of BertForSequenceClassification and BertForTokenClassification (see
 * ref_train.h): one forward + backward pass of the encoder keeping its activations, with either
 * head on top. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "ref/ref_train.h"

/* ------------------------------------------------------------------------------------------ */
/* Forward + backward                                                                          */

/* Activations of one layer, all kept for the backward. */
typedef struct {
  float *q, *k, *v;    /* (B*T, C) each */
  float *probs;        /* (B, NH, T, T) softmax before dropout */
  float *ctx;          /* (B*T, C) attention context */
  float *t1;           /* (B*T, C) dropout(ctx @ ao_w^T + ao_b): LayerNorm 1 input minus residual */
  float *h1;           /* (B*T, C) attention block output */
  float *pre;          /* (B*T, I) h1 @ inter_w^T (before bias) */
  float *act;          /* (B*T, I) act(pre + inter_b) */
  float *t2;           /* (B*T, C) dropout(act @ out_w^T + out_b) */
} layer_acts;

static ref_dropout make_drop(const bc_dropout_cfg *d, float p, uint32_t id) {
  ref_dropout r = {0.0f, 0, 0, id};
  if (d) {
    r.p = p;
    r.seed = d->seed;
    r.step = d->step;
  }
  return r;
}

/* out = dropout(out + bias) in place, (N, C) */
static void bias_dropout(float *x, const float *bias, const ref_dropout *d, int N, int C) {
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) x[(size_t)n * C + c] += bias[c];
  ref_dropout_fwd(x, x, (size_t)N * C, d);
}

/* The two heads share everything but the layers after the encoder. */
enum { HEAD_SEQUENCE = 0, HEAD_TOKEN = 1 };

static int head_fwd_bwd(int head, const bc_config *cfg, const bc_weights *w, int K,
                        const int32_t *ids, const int32_t *type_ids, const int32_t *mask,
                        const int32_t *labels, const float *targets, int B, int T,
                        const bc_dropout_cfg *drop, float grad_scale, bc_grads *g, double *loss,
                        float *logits_out) {
  int tok = head == HEAD_TOKEN;
  if (!cfg || !w || !ids || B <= 0 || T <= 0 || K <= 0 || (K > 1 && !labels) ||
      (K == 1 && (tok || !targets)))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_%s_fwd_bwd: null argument, B=%d T=%d or K=%d without labels/targets",
                   tok ? "tok" : "cls", B, T, K);
  if ((!tok && (!w->pool_w || !w->pool_b)) || !w->cls_w || !w->cls_b)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_%s_fwd_bwd: the model needs %s",
                   tok ? "tok" : "cls", tok ? "a classifier" : "a pooler and a classifier");
  int C = cfg->hidden_size, L = cfg->num_layers, NH = cfg->num_heads, I = cfg->intermediate_size;
  if (C <= 0 || L < 0 || NH <= 0 || C % NH || I <= 0 || T > cfg->max_position)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_fwd_bwd: bad config (C=%d L=%d NH=%d I=%d) or T=%d > %d", C, L, NH, I,
                   T, cfg->max_position);
  size_t BT = (size_t)B * T, BTC, BTI, PR;
  if (BT > (size_t)INT32_MAX || bc_mul_size(BT, (size_t)C, &BTC) ||
      bc_mul_size(BT, (size_t)I, &BTI) || bc_mul_size(BT * (size_t)NH, (size_t)T, &PR))
    return bc_fail(NULL, BERTCL_ERR_OVERFLOW, "ref_fwd_bwd: B=%d T=%d overflows", B, T);
  for (size_t i = 0; i < BT; i++)
    if (ids[i] < 0 || ids[i] >= cfg->vocab_size ||
        (type_ids && (type_ids[i] < 0 || type_ids[i] >= cfg->type_vocab_size)))
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_fwd_bwd: token %zu: id %d type %d", i,
                     (int)ids[i], type_ids ? (int)type_ids[i] : 0);
  int R = tok ? B * T : B; /* rows of logits and labels */
  for (int b = 0; b < R; b++)
    if (K > 1 && labels[b] != -100 && (labels[b] < 0 || labels[b] >= K))
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_fwd_bwd: label %d of row %d not in [0, %d)",
                     (int)labels[b], b, K);

  int st = BERTCL_OK;
  float eps = cfg->layer_norm_eps;
  /* per-layer activations: 7 (B*T, C) + 2 (B*T, I) + probs; then hidden states, pooler, head */
  size_t per_layer = 7 * BTC + 2 * BTI + PR;
  /* head: pooled and its dropout (B, C) each (token head: the dropped hidden state (B*T, C)),
   * logits and dlogits (R, K) each */
  size_t head_act = tok ? BTC : 2 * (size_t)B * C;
  size_t n_act = (size_t)L * per_layer + (size_t)(L + 1) * BTC + head_act + 2 * (size_t)R * K;
  float *arena = malloc(n_act * sizeof(float));
  layer_acts *la = calloc((size_t)(L > 0 ? L : 1), sizeof *la);
  float *grad_arena = NULL;
  if (!arena || !la) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_fwd_bwd: out of memory for B=%d T=%d", B, T);
    goto fail;
  }
  float *cur = arena;
  for (int l = 0; l < L; l++) {
    layer_acts *a = &la[l];
    a->q = cur, cur += BTC;
    a->k = cur, cur += BTC;
    a->v = cur, cur += BTC;
    a->ctx = cur, cur += BTC;
    a->t1 = cur, cur += BTC;
    a->h1 = cur, cur += BTC;
    a->t2 = cur, cur += BTC;
    a->pre = cur, cur += BTI;
    a->act = cur, cur += BTI;
    a->probs = cur, cur += PR;
  }
  float *hidden = cur; /* (L+1, B*T, C) */
  cur += (size_t)(L + 1) * BTC;
  /* sequence head: pooled (B, C) tanh output, pooled_d after dropout; token head: pooled_d is
   * the dropped last hidden state (B*T, C) */
  float *pooled = tok ? NULL : cur, *pooled_d = tok ? cur : cur + (size_t)B * C;
  cur += head_act;
  float *logits = cur, *dlogits = cur + (size_t)R * K; /* (R, K) each */

  float hp = drop ? drop->hidden_p : 0.0f, ap = drop ? drop->attn_p : 0.0f;
  float cp = drop ? drop->cls_p : 0.0f;

  /* ---- forward ---- */
  ref_dropout d_emb = make_drop(drop, hp, bc_dropout_id(-1, BC_DROP_EMB));
  ref_embedding_fwd(hidden, ids, type_ids, w->word_emb, w->pos_emb, w->type_emb, w->emb_ln_w,
                    w->emb_ln_b, eps, B, T, C);
  ref_dropout_fwd(hidden, hidden, BTC, &d_emb);
  for (int l = 0; l < L; l++) {
    const bc_layer_weights *lw = &w->layers[l];
    layer_acts *a = &la[l];
    const float *h = hidden + (size_t)l * BTC; /* (B*T, C) */
    float *hn = hidden + (size_t)(l + 1) * BTC;
    ref_dropout d_attn = make_drop(drop, ap, bc_dropout_id(l, BC_DROP_ATTN));
    ref_dropout d_ao = make_drop(drop, hp, bc_dropout_id(l, BC_DROP_ATTN_OUT));
    ref_dropout d_ffn = make_drop(drop, hp, bc_dropout_id(l, BC_DROP_FFN_OUT));
    ref_linear_fwd(a->q, h, lw->q_w, lw->q_b, (int)BT, C, C);
    ref_linear_fwd(a->k, h, lw->k_w, lw->k_b, (int)BT, C, C);
    ref_linear_fwd(a->v, h, lw->v_w, lw->v_b, (int)BT, C, C);
    ref_attention_dropout_fwd(a->ctx, a->probs, a->q, a->k, a->v, mask, &d_attn, B, T, C, NH);
    ref_linear_fwd(a->t1, a->ctx, lw->ao_w, NULL, (int)BT, C, C);
    bias_dropout(a->t1, lw->ao_b, &d_ao, (int)BT, C);
    ref_bias_residual_layernorm_fwd(a->h1, a->t1, NULL, h, lw->ln1_w, lw->ln1_b, eps, (int)BT, C);
    ref_linear_fwd(a->pre, a->h1, lw->inter_w, NULL, (int)BT, C, I);
    memcpy(a->act, a->pre, BTI * sizeof(float));
    ref_bias_act_fwd(a->act, lw->inter_b, cfg->act, (int)BT, I);
    ref_linear_fwd(a->t2, a->act, lw->out_w, NULL, (int)BT, I, C);
    bias_dropout(a->t2, lw->out_b, &d_ffn, (int)BT, C);
    ref_bias_residual_layernorm_fwd(hn, a->t2, NULL, a->h1, lw->ln2_w, lw->ln2_b, eps, (int)BT, C);
  }
  const float *hL = hidden + (size_t)L * BTC;
  ref_dropout d_cls = make_drop(drop, cp, bc_dropout_id(-1, BC_DROP_CLS));
  if (tok) {
    ref_dropout_fwd(pooled_d, hL, BTC, &d_cls);
  } else {
    ref_pooler_fwd(pooled, hL, w->pool_w, w->pool_b, B, T, C);
    ref_dropout_fwd(pooled_d, pooled, (size_t)B * C, &d_cls);
  }
  ref_linear_fwd(logits, pooled_d, w->cls_w, w->cls_b, R, C, K);
  double lv = K > 1 ? ref_cross_entropy_fwd_bwd(dlogits, logits, labels, R, K, grad_scale)
                    : bc_mse_fwd_bwd(dlogits, logits, targets, B, grad_scale);
  if (loss) *loss = lv;
  if (logits_out) memcpy(logits_out, logits, (size_t)R * K * sizeof(float));
  if (!g) goto fail; /* forward only: done */

  /* ---- backward ---- */
  /* gradient buffers: dh (B*T, C) current hidden, dh1, dt (B*T, C), dq dk dv dctx (B*T, C),
   * dact (B*T, I), dpooled (B, C) */
  grad_arena = calloc(8 * BTC + BTI + (tok ? BTC : (size_t)B * C), sizeof(float));
  if (!grad_arena) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_fwd_bwd: out of memory for gradients");
    goto fail;
  }
  float *dh = grad_arena, *dh1 = dh + BTC, *dt = dh1 + BTC, *dq = dt + BTC, *dk = dq + BTC;
  float *dv = dk + BTC, *dctx = dv + BTC, *dhn = dctx + BTC, *dact = dhn + BTC;
  float *dpooled = dact + BTI; /* (R, C) */

  ref_linear_bwd(dpooled, g->cls_w, g->cls_b, dlogits, pooled_d, w->cls_w, R, C, K);
  ref_dropout_bwd(dpooled, dpooled, (size_t)R * C, &d_cls);
  if (tok)
    memcpy(dhn, dpooled, BTC * sizeof(float));
  else
    ref_pooler_bwd(dhn, g->pool_w, g->pool_b, dpooled, hL, pooled, w->pool_w, B, T, C);
  for (int l = L - 1; l >= 0; l--) {
    const bc_layer_weights *lw = &w->layers[l];
    bc_layer_grads *lg = &g->layers[l];
    layer_acts *a = &la[l];
    const float *h = hidden + (size_t)l * BTC;
    ref_dropout d_attn = make_drop(drop, ap, bc_dropout_id(l, BC_DROP_ATTN));
    ref_dropout d_ao = make_drop(drop, hp, bc_dropout_id(l, BC_DROP_ATTN_OUT));
    ref_dropout d_ffn = make_drop(drop, hp, bc_dropout_id(l, BC_DROP_FFN_OUT));
    memset(dh, 0, BTC * sizeof(float));
    memset(dh1, 0, BTC * sizeof(float));
    memset(dt, 0, BTC * sizeof(float));
    memset(dact, 0, BTI * sizeof(float));
    /* hn = LN2(t2 + h1) */
    ref_bias_residual_layernorm_bwd(dt, NULL, dh1, lg->ln2_w, lg->ln2_b, dhn, a->t2, NULL, a->h1,
                                    lw->ln2_w, eps, (int)BT, C);
    ref_dropout_bwd(dt, dt, BTC, &d_ffn);
    ref_linear_bwd(dact, lg->out_w, lg->out_b, dt, a->act, lw->out_w, (int)BT, I, C);
    ref_bias_act_bwd(dact, lg->inter_b, dact, a->pre, lw->inter_b, cfg->act, (int)BT, I);
    ref_linear_bwd(dh1, lg->inter_w, NULL, dact, a->h1, lw->inter_w, (int)BT, C, I);
    /* h1 = LN1(t1 + h) */
    memset(dt, 0, BTC * sizeof(float));
    ref_bias_residual_layernorm_bwd(dt, NULL, dh, lg->ln1_w, lg->ln1_b, dh1, a->t1, NULL, h,
                                    lw->ln1_w, eps, (int)BT, C);
    ref_dropout_bwd(dt, dt, BTC, &d_ao);
    memset(dctx, 0, BTC * sizeof(float));
    ref_linear_bwd(dctx, lg->ao_w, lg->ao_b, dt, a->ctx, lw->ao_w, (int)BT, C, C);
    memset(dq, 0, 3 * BTC * sizeof(float)); /* dq, dk, dv are adjacent */
    ref_attention_bwd(dq, dk, dv, dctx, a->q, a->k, a->v, a->probs, &d_attn, B, T, C, NH);
    ref_linear_bwd(dh, lg->q_w, lg->q_b, dq, h, lw->q_w, (int)BT, C, C);
    ref_linear_bwd(dh, lg->k_w, lg->k_b, dk, h, lw->k_w, (int)BT, C, C);
    ref_linear_bwd(dh, lg->v_w, lg->v_b, dv, h, lw->v_w, (int)BT, C, C);
    memcpy(dhn, dh, BTC * sizeof(float)); /* the gradient at layer l's input feeds layer l-1 */
  }
  ref_dropout_bwd(dhn, dhn, BTC, &d_emb);
  ref_embedding_bwd(g->word_emb, g->pos_emb, g->type_emb, g->emb_ln_w, g->emb_ln_b, dhn, ids,
                    type_ids, w->word_emb, w->pos_emb, w->type_emb, w->emb_ln_w, eps, B, T, C);

fail:
  free(grad_arena);
  free(la);
  free(arena);
  return st;
}

int ref_cls_fwd_bwd(const bc_config *cfg, const bc_weights *w, int K, const int32_t *ids,
                    const int32_t *type_ids, const int32_t *mask, const int32_t *labels,
                    const float *targets, int B, int T, const bc_dropout_cfg *drop,
                    float grad_scale, bc_grads *g, double *loss, float *logits) {
  return head_fwd_bwd(HEAD_SEQUENCE, cfg, w, K, ids, type_ids, mask, labels, targets, B, T, drop,
                      grad_scale, g, loss, logits);
}

int ref_tok_fwd_bwd(const bc_config *cfg, const bc_weights *w, int K, const int32_t *ids,
                    const int32_t *type_ids, const int32_t *mask, const int32_t *labels, int B,
                    int T, const bc_dropout_cfg *drop, float grad_scale, bc_grads *g,
                    double *loss, float *logits) {
  return head_fwd_bwd(HEAD_TOKEN, cfg, w, K, ids, type_ids, mask, labels, NULL, B, T, drop,
                      grad_scale, g, loss, logits);
}
