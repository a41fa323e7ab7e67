/* Plain-C fp32 reference of BertModel (see ref.h). Each op is a plain loop nest; sums that decide
 * accuracy (dot products, LayerNorm statistics, softmax normaliser, pooling sums, norms) run in
 * double and the result is rounded once to fp32. Numerics follow transformers' BertModel:
 * LayerNorm with biased variance and eps inside the sqrt, erf GELU for "gelu", the tanh form for
 * "gelu_new"/"gelu_pytorch_tanh", additive finfo(float32).min on masked keys (the eager mask of
 * transformers 5.x masking_utils), post-LayerNorm residual blocks, tanh pooler on token 0. */
#include "ref/ref.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm of one row held in double: out = (x - mean) / sqrt(var + eps) * w + b             */

static void layernorm_row(float *out,        /* (C) */
                          const double *x,   /* (C) */
                          const float *w, const float *b, float eps, int C) {
  double mean = 0.0;
  for (int c = 0; c < C; c++) mean += x[c];
  mean /= C;
  double var = 0.0; /* biased, as torch.nn.LayerNorm */
  for (int c = 0; c < C; c++) {
    double d = x[c] - mean;
    var += d * d;
  }
  var /= C;
  double rstd = 1.0 / sqrt(var + (double)eps);
  for (int c = 0; c < C; c++) out[c] = (float)((x[c] - mean) * rstd * (double)w[c] + (double)b[c]);
}

/* Row scratch in double; C is at most a few thousand for any BERT. Returns NULL on OOM. */
static double *row_scratch(int C) { return (double *)malloc((size_t)(C > 0 ? C : 1) * sizeof(double)); }

static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}

void ref_layernorm_fwd(float *out, const float *x, /* (N, C) */
                       const float *w, const float *b, float eps, int N, int C) {
  double *row = row_scratch(C); /* (C) */
  if (!row) {
    fill_nan(out, (size_t)N * (size_t)C);
    return;
  }
  for (int n = 0; n < N; n++) {
    const float *xn = x + (size_t)n * C;
    for (int c = 0; c < C; c++) row[c] = xn[c];
    layernorm_row(out + (size_t)n * C, row, w, b, eps, C);
  }
  free(row);
}

void ref_bias_residual_layernorm_fwd(float *out,            /* (N, C) */
                                     const float *x,        /* (N, C) */
                                     const float *bias,     /* (C) */
                                     const float *residual, /* (N, C) */
                                     const float *w, const float *b, float eps, int N, int C) {
  double *row = row_scratch(C); /* (C) */
  if (!row) {
    fill_nan(out, (size_t)N * (size_t)C);
    return;
  }
  for (int n = 0; n < N; n++) {
    const float *xn = x + (size_t)n * C;
    const float *rn = residual + (size_t)n * C;
    for (int c = 0; c < C; c++) {
      /* transformers: LayerNorm(dense(x) + input); the dense output (with bias) is fp32 */
      float y = xn[c] + (bias ? bias[c] : 0.0f);
      row[c] = (double)y + (double)rn[c];
    }
    layernorm_row(out + (size_t)n * C, row, w, b, eps, C);
  }
  free(row);
}

void ref_embedding_fwd(float *out,              /* (B*T, C) */
                       const int32_t *ids,      /* (B*T) */
                       const int32_t *type_ids, /* (B*T) or NULL */
                       const float *word_emb,   /* (V, C) */
                       const float *pos_emb,    /* (P, C) */
                       const float *type_emb,   /* (TT, C) */
                       const float *ln_w, const float *ln_b, float eps, int B, int T, int C) {
  double *row = row_scratch(C); /* (C) */
  if (!row) {
    fill_nan(out, (size_t)B * T * C);
    return;
  }
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T; t++) {
      size_t bt = (size_t)b * T + t;
      const float *we = word_emb + (size_t)ids[bt] * C;
      const float *te = type_emb + (size_t)(type_ids ? type_ids[bt] : 0) * C;
      const float *pe = pos_emb + (size_t)t * C;
      /* transformers: (inputs_embeds + token_type_embeddings) + position_embeddings, fp32 */
      for (int c = 0; c < C; c++) row[c] = (double)((we[c] + te[c]) + pe[c]);
      layernorm_row(out + bt * C, row, ln_w, ln_b, eps, C);
    }
  }
  free(row);
}

/* One output element: a sequential double sum over i = 0..IC-1, then the bias. */
static float linear_one(const float *xn, const float *wo, const float *bias, int o, int IC) {
  double a = 0.0;
  for (int i = 0; i < IC; i++) a += (double)xn[i] * wo[i];
  if (bias) a += bias[o];
  return (float)a;
}

void ref_linear_fwd(float *out,        /* (N, OC) */
                    const float *x,    /* (N, IC) */
                    const float *w,    /* (OC, IC) */
                    const float *bias, /* (OC) or NULL */
                    int N, int IC, int OC) {
  /* Blocks of 4 rows x 4 outputs share their loads (16 independent sums keep the FPU busy).
   * Every element is still the same sequential double sum as linear_one, so the result does
   * not depend on the blocking. */
  int n = 0;
  for (; n + 4 <= N; n += 4) {
    const float *x0 = x + (size_t)n * IC, *x1 = x0 + IC, *x2 = x1 + IC, *x3 = x2 + IC;
    int o = 0;
    for (; o + 4 <= OC; o += 4) {
      const float *w0 = w + (size_t)o * IC, *w1 = w0 + IC, *w2 = w1 + IC, *w3 = w2 + IC;
      double a[4][4] = {{0.0}}; /* [row][output] */
      for (int i = 0; i < IC; i++) {
        double xv[4] = {x0[i], x1[i], x2[i], x3[i]};
        double wv[4] = {w0[i], w1[i], w2[i], w3[i]};
        for (int r = 0; r < 4; r++)
          for (int c = 0; c < 4; c++) a[r][c] += xv[r] * wv[c];
      }
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
          double v = a[r][c];
          if (bias) v += bias[o + c];
          out[(size_t)(n + r) * OC + o + c] = (float)v;
        }
    }
    for (; o < OC; o++)
      for (int r = 0; r < 4; r++)
        out[(size_t)(n + r) * OC + o] = linear_one(x + (size_t)(n + r) * IC, w + (size_t)o * IC, bias, o, IC);
  }
  for (; n < N; n++)
    for (int o = 0; o < OC; o++)
      out[(size_t)n * OC + o] = linear_one(x + (size_t)n * IC, w + (size_t)o * IC, bias, o, IC);
}

float ref_act(float x, bc_act act) {
  double v = x;
  switch (act) {
  case BC_ACT_GELU: /* 0.5 x (1 + erf(x / sqrt(2))) */
    return (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
  case BC_ACT_GELU_TANH: /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    return (float)(0.5 * v * (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v))));
  case BC_ACT_RELU:
    return x > 0.0f ? x : 0.0f;
  }
  return NAN;
}

void ref_bias_act_fwd(float *x, /* (N, C) */ const float *bias, /* (C) */ bc_act act, int N,
                      int C) {
  for (int n = 0; n < N; n++) {
    float *xn = x + (size_t)n * C;
    for (int c = 0; c < C; c++) xn[c] = ref_act(xn[c] + (bias ? bias[c] : 0.0f), act);
  }
}

/* One row of the masked softmax: s[j] = s[j]*scale + (mask[j] ? 0 : -FLT_MAX), softmax over j.
 * Masked keys get exp(-FLT_MAX - max) = 0 exactly; a row with every key masked has all
 * s[j] == -FLT_MAX and comes out uniform (1/T), as transformers' eager mask, never NaN. */
static void softmax_row(float *s,               /* (T) */
                        const int32_t *mask_b,  /* (T) or NULL */
                        float scale, int T) {
  float mx = -INFINITY;
  for (int j = 0; j < T; j++) {
    float v = s[j] * scale;
    if (mask_b && !mask_b[j]) v = v + -FLT_MAX;
    s[j] = v;
    if (v > mx) mx = v;
  }
  double sum = 0.0;
  for (int j = 0; j < T; j++) sum += exp((double)s[j] - (double)mx);
  for (int j = 0; j < T; j++) s[j] = (float)(exp((double)s[j] - (double)mx) / sum);
}

void ref_softmax_fwd(float *scores, /* (B, NH, T, T) */ const int32_t *mask, /* (B, T) */
                     float scale, int B, int NH, int T) {
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++)
        softmax_row(scores + (((size_t)b * NH + h) * T + i) * T, mask ? mask + (size_t)b * T : NULL,
                    scale, T);
}

void ref_attention_fwd(float *out,   /* (B*T, C) */
                       float *probs, /* (B, NH, T, T) or NULL */
                       const float *q, const float *k, const float *v, /* (B*T, C) each */
                       const int32_t *mask, /* (B, T) or NULL */
                       int B, int T, int C, int NH) {
  int HS = C / NH;
  float scale = (float)(1.0 / sqrt((double)HS)); /* transformers: head_dim ** -0.5 */
  float *row = (float *)malloc((size_t)(T > 0 ? T : 1) * sizeof(float)); /* (T) */
  double *acc = row_scratch(HS);                                         /* (HS) */
  if (!row || !acc) {
    free(row);
    free(acc);
    fill_nan(out, (size_t)B * T * C);
    return;
  }
  for (int b = 0; b < B; b++) {
    const int32_t *mb = mask ? mask + (size_t)b * T : NULL; /* (T) */
    for (int h = 0; h < NH; h++) {
      for (int i = 0; i < T; i++) {
        const float *qi = q + ((size_t)b * T + i) * C + (size_t)h * HS; /* (HS) */
        for (int j = 0; j < T; j++) {
          const float *kj = k + ((size_t)b * T + j) * C + (size_t)h * HS; /* (HS) */
          double d = 0.0;
          for (int c = 0; c < HS; c++) d += (double)qi[c] * kj[c];
          row[j] = (float)d;
        }
        softmax_row(row, mb, scale, T);
        if (probs) memcpy(probs + (((size_t)b * NH + h) * T + i) * T, row, (size_t)T * sizeof(float));
        for (int c = 0; c < HS; c++) acc[c] = 0.0;
        for (int j = 0; j < T; j++) {
          const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * HS; /* (HS) */
          double p = row[j];
          for (int c = 0; c < HS; c++) acc[c] += p * vj[c];
        }
        float *oi = out + ((size_t)b * T + i) * C + (size_t)h * HS; /* (HS) */
        for (int c = 0; c < HS; c++) oi[c] = (float)acc[c];
      }
    }
  }
  free(acc);
  free(row);
}

void ref_pooler_fwd(float *out, /* (B, C) */ const float *h, /* (B*T, C) */ const float *w,
                    const float *bias, int B, int T, int C) {
  for (int b = 0; b < B; b++) {
    const float *h0 = h + (size_t)b * T * C; /* (C) token 0 of sequence b */
    float *ob = out + (size_t)b * C;
    ref_linear_fwd(ob, h0, w, bias, 1, C, C);
    for (int c = 0; c < C; c++) ob[c] = (float)tanh((double)ob[c]);
  }
}

void ref_pool_fwd(float *out, /* (B, C) */ const float *h, /* (B*T, C) */
                  const int32_t *mask, /* (B, T) or NULL */ int mode, int B, int T, int C) {
  for (int b = 0; b < B; b++) {
    const float *hb = h + (size_t)b * T * C; /* (T, C) */
    const int32_t *mb = mask ? mask + (size_t)b * T : NULL;
    float *ob = out + (size_t)b * C; /* (C) */
    if (mode == BC_POOL_CLS) {
      for (int c = 0; c < C; c++) ob[c] = hb[c];
    } else if (mode == BC_POOL_MEAN) {
      /* sum(h * mask) / clamp(sum(mask), min=1e-9): a row with no real token gives 0 */
      double count = 0.0;
      for (int t = 0; t < T; t++) count += (mb ? (mb[t] != 0) : 1);
      double den = count > 1e-9 ? count : 1e-9;
      for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int t = 0; t < T; t++)
          if (!mb || mb[t]) s += hb[(size_t)t * C + c];
        ob[c] = (float)(s / den);
      }
    } else if (mode == BC_POOL_MAX) {
      /* padding positions set to -1e9 before the max (a row with no real token gives -1e9) */
      for (int c = 0; c < C; c++) {
        float m = -INFINITY;
        for (int t = 0; t < T; t++) {
          float x = (!mb || mb[t]) ? hb[(size_t)t * C + c] : -1e9f;
          if (x > m) m = x;
        }
        ob[c] = m;
      }
    } else {
      fill_nan(ob, (size_t)C); /* not a single pooling mode: make the misuse visible */
    }
  }
}

void ref_l2norm_fwd(float *out, const float *x, /* (N, C) */ int N, int C) {
  for (int n = 0; n < N; n++) {
    const float *xn = x + (size_t)n * C;
    float *on = out + (size_t)n * C;
    double ss = 0.0;
    for (int c = 0; c < C; c++) ss += (double)xn[c] * xn[c];
    double nrm = sqrt(ss);
    if (nrm < 1e-12) nrm = 1e-12;
    for (int c = 0; c < C; c++) on[c] = (float)(xn[c] / nrm);
  }
}

/* ------------------------------------------------------------------------------------------ */

int ref_bert_fwd(const bc_config *cfg, const bc_weights *w,
                 const int32_t *ids,      /* (B*T) */
                 const int32_t *type_ids, /* (B*T) or NULL */
                 const int32_t *mask,     /* (B, T) or NULL */
                 int B, int T,
                 float *hidden, /* (L+1, B*T, C) */
                 float *pooled) /* (B, C) or NULL */ {
  if (!cfg || !w || !ids || !hidden || B <= 0 || T <= 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_bert_fwd: null argument or B=%d T=%d", B, T);
  int C = cfg->hidden_size, L = cfg->num_layers, NH = cfg->num_heads, I = cfg->intermediate_size;
  if (C <= 0 || L < 0 || NH <= 0 || C % NH != 0 || I <= 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_bert_fwd: bad config hidden %d layers %d heads %d intermediate %d", C, L,
                   NH, I);
  if (T > cfg->max_position)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_bert_fwd: sequence length %d exceeds max_position_embeddings %d", T,
                   cfg->max_position);
  size_t BT, BTC, BTI, bytes;
  if (bc_mul_size((size_t)B, (size_t)T, &BT) || BT > (size_t)INT32_MAX ||
      bc_mul_size(BT, (size_t)C, &BTC) || bc_mul_size(BT, (size_t)I, &BTI) ||
      bc_mul_size(BTC > BTI ? BTC : BTI, sizeof(float), &bytes))
    return bc_fail(NULL, BERTCL_ERR_OVERFLOW, "ref_bert_fwd: B=%d T=%d C=%d I=%d overflows", B, T,
                   C, I);
  for (size_t i = 0; i < BT; i++) {
    if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_bert_fwd: token id %d at %zu not in [0, %d)",
                     (int)ids[i], i, cfg->vocab_size);
    if (type_ids && (type_ids[i] < 0 || type_ids[i] >= cfg->type_vocab_size))
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                     "ref_bert_fwd: token type %d at %zu not in [0, %d)", (int)type_ids[i], i,
                     cfg->type_vocab_size);
  }

  int st = BERTCL_OK;
  float *q = malloc(BTC * sizeof(float));     /* (B*T, C) */
  float *k = malloc(BTC * sizeof(float));     /* (B*T, C) */
  float *v = malloc(BTC * sizeof(float));     /* (B*T, C) */
  float *ctx = malloc(BTC * sizeof(float));   /* (B*T, C) attention context */
  float *proj = malloc(BTC * sizeof(float));  /* (B*T, C) output projection before bias */
  float *inter = malloc(BTI * sizeof(float)); /* (B*T, I) */
  if (!q || !k || !v || !ctx || !proj || !inter) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_bert_fwd: out of memory for B=%d T=%d", B, T);
    goto fail;
  }

  float *h = hidden; /* (B*T, C) layer 0 */
  ref_embedding_fwd(h, ids, type_ids, w->word_emb, w->pos_emb, w->type_emb, w->emb_ln_w,
                    w->emb_ln_b, cfg->layer_norm_eps, B, T, C);
  for (int l = 0; l < L; l++) {
    const bc_layer_weights *lw = &w->layers[l];
    float *hn = h + BTC; /* (B*T, C) layer l+1 */
    float *h1 = hn;      /* attention block output, overwritten in place by the FFN block */
    ref_linear_fwd(q, h, lw->q_w, lw->q_b, (int)BT, C, C);
    ref_linear_fwd(k, h, lw->k_w, lw->k_b, (int)BT, C, C);
    ref_linear_fwd(v, h, lw->v_w, lw->v_b, (int)BT, C, C);
    ref_attention_fwd(ctx, NULL, q, k, v, mask, B, T, C, NH);
    ref_linear_fwd(proj, ctx, lw->ao_w, NULL, (int)BT, C, C);
    ref_bias_residual_layernorm_fwd(h1, proj, lw->ao_b, h, lw->ln1_w, lw->ln1_b,
                                    cfg->layer_norm_eps, (int)BT, C);
    ref_linear_fwd(inter, h1, lw->inter_w, NULL, (int)BT, C, I);
    ref_bias_act_fwd(inter, lw->inter_b, cfg->act, (int)BT, I);
    ref_linear_fwd(proj, inter, lw->out_w, NULL, (int)BT, I, C);
    ref_bias_residual_layernorm_fwd(hn, proj, lw->out_b, h1, lw->ln2_w, lw->ln2_b,
                                    cfg->layer_norm_eps, (int)BT, C);
    h = hn;
  }
  if (pooled && w->pool_w && w->pool_b) ref_pooler_fwd(pooled, h, w->pool_w, w->pool_b, B, T, C);

fail:
  free(inter);
  free(proj);
  free(ctx);
  free(v);
  free(k);
  free(q);
  return st;
}
