/* Plain-C fp32 reference of the encoder families (see ref.h). Each op is a plain loop nest; sums
 * that decide accuracy (dot products, LayerNorm statistics, softmax normaliser, pooling sums,
 * norms) run in double and the result is rounded once to fp32. Numerics follow transformers'
 * models: LayerNorm with biased variance and eps inside the sqrt, erf GELU for "gelu", the tanh
 * form for "gelu_new"/"gelu_pytorch_tanh", additive finfo(float32).min on masked keys (the eager
 * mask of transformers 5.x masking_utils), post-LayerNorm residual blocks, tanh pooler on token
 * 0; RoBERTa's and MPNet's positions from the ids, MPNet's relative position bias. */
#include "ref/ref.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/family.h"

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

void ref_position_ids(int32_t *pos, const int32_t *ids, const bc_config *cfg, int B, int T) {
  for (int b = 0; b < B; b++) {
    int32_t count = 0;
    for (int t = 0; t < T; t++) {
      size_t bt = (size_t)b * T + t;
      if (cfg->pos_kind == BC_POS_PADDED) {
        /* transformers: mask = ids != padding_idx; cumsum(mask) * mask + padding_idx */
        int real = ids[bt] != cfg->padding_idx;
        count += real;
        pos[bt] = real ? cfg->padding_idx + count : cfg->padding_idx;
      } else {
        pos[bt] = t;
      }
    }
  }
}

void ref_embedding_pos_fwd(float *out,              /* (B*T, C) */
                           const int32_t *ids,      /* (B*T) */
                           const int32_t *pos_ids,  /* (B*T) */
                           const int32_t *type_ids, /* (B*T) or NULL */
                           const float *word_emb,   /* (V, C) */
                           const float *pos_emb,    /* (P, C) */
                           const float *type_emb,   /* (TT, C) or NULL */
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
      const float *pe = pos_emb + (size_t)pos_ids[bt] * C;
      if (type_emb) {
        /* transformers: (inputs_embeds + token_type_embeddings) + position_embeddings, fp32 */
        const float *te = type_emb + (size_t)(type_ids ? type_ids[bt] : 0) * C;
        for (int c = 0; c < C; c++) row[c] = (double)((we[c] + te[c]) + pe[c]);
      } else {
        /* DistilBERT, MPNet: inputs_embeds + position_embeddings */
        for (int c = 0; c < C; c++) row[c] = (double)(we[c] + pe[c]);
      }
      layernorm_row(out + bt * C, row, ln_w, ln_b, eps, C);
    }
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
  int32_t *pos = malloc((size_t)B * T * sizeof *pos + 1); /* (B*T) */
  if (!pos) {
    fill_nan(out, (size_t)B * T * C);
    return;
  }
  for (size_t i = 0; i < (size_t)B * T; i++) pos[i] = (int32_t)(i % (size_t)T);
  ref_embedding_pos_fwd(out, ids, pos, type_ids, word_emb, pos_emb, type_emb, ln_w, ln_b, eps, B,
                        T, C);
  free(pos);
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

/* One row of the masked softmax: s[j] = s[j]*scale (+ bias[j]) + (mask[j] ? 0 : -FLT_MAX),
 * softmax over j. Masked keys get exp(-FLT_MAX - max) = 0 exactly; a row with every key masked
 * has all s[j] == -FLT_MAX (a score or bias is far below its ulp) and comes out uniform (1/T), as
 * transformers' eager mask, never NaN. */
static void softmax_row(float *s,               /* (T) */
                        const float *bias,      /* (T) or NULL */
                        const int32_t *mask_b,  /* (T) or NULL */
                        float scale, int T) {
  float mx = -INFINITY;
  for (int j = 0; j < T; j++) {
    float v = s[j] * scale;
    if (bias) v = v + bias[j];
    if (mask_b && !mask_b[j]) v = v + -FLT_MAX;
    s[j] = v;
    if (v > mx) mx = v;
  }
  double sum = 0.0;
  for (int j = 0; j < T; j++) sum += exp((double)s[j] - (double)mx);
  for (int j = 0; j < T; j++) s[j] = (float)(exp((double)s[j] - (double)mx) / sum);
}

void ref_softmax_bias_fwd(float *scores,         /* (B, NH, T, T) */
                          const float *pos_bias, /* (NH, T, T) or NULL */
                          const int32_t *mask,   /* (B, T) or NULL */
                          float scale, int B, int NH, int T) {
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++)
        softmax_row(scores + (((size_t)b * NH + h) * T + i) * T,
                    pos_bias ? pos_bias + ((size_t)h * T + i) * T : NULL,
                    mask ? mask + (size_t)b * T : NULL, scale, T);
}

void ref_softmax_fwd(float *scores, /* (B, NH, T, T) */ const int32_t *mask, /* (B, T) */
                     float scale, int B, int NH, int T) {
  ref_softmax_bias_fwd(scores, NULL, mask, scale, B, NH, T);
}

void ref_rel_position_bias_fwd(float *bias,        /* (NH, T, T) */
                               const float *table, /* (NB, NH) */
                               int NH, int T) {
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) {
      const float *row = table + (size_t)bc_rel_position_bucket(j - i) * NH; /* (NH) */
      for (int h = 0; h < NH; h++) bias[((size_t)h * T + i) * T + j] = row[h];
    }
}

void ref_rel_position_bias_bwd(float *dtable,   /* (NB, NH) */
                               const float *dz, /* (B, NH, T, T) */
                               int B, int NH, int T) {
  /* one double sum per table entry, over every (b, i, j) in its bucket */
  double *acc = calloc((size_t)BC_REL_BUCKETS * (NH > 0 ? NH : 1), sizeof(double)); /* (NB, NH) */
  if (!acc) {
    fill_nan(dtable, (size_t)BC_REL_BUCKETS * NH);
    return;
  }
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
          acc[(size_t)bc_rel_position_bucket(j - i) * NH + h] +=
              dz[(((size_t)b * NH + h) * T + i) * T + j];
  for (size_t k = 0; k < (size_t)BC_REL_BUCKETS * NH; k++) dtable[k] += (float)acc[k];
  free(acc);
}

void ref_attention_bias_fwd(float *out,   /* (B*T, C) */
                            float *probs, /* (B, NH, T, T) or NULL */
                            const float *q, const float *k, const float *v, /* (B*T, C) each */
                            const int32_t *mask,      /* (B, T) or NULL */
                            const float *pos_bias,    /* (NH, T, T) or NULL */
                            const ref_dropout *drop,  /* or NULL */
                            int B, int T, int C, int NH) {
  int HS = C / NH;
  float scale = (float)(1.0 / sqrt((double)HS)); /* transformers: head_dim ** -0.5 */
  int dropping = drop && drop->p > 0.0f;
  float dscale = dropping ? (drop->p >= 1.0f ? 0.0f : 1.0f / (1.0f - drop->p)) : 1.0f;
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
        size_t row0 = (((size_t)b * NH + h) * T + i) * T; /* element (b, h, i, 0) */
        const float *qi = q + ((size_t)b * T + i) * C + (size_t)h * HS; /* (HS) */
        for (int j = 0; j < T; j++) {
          const float *kj = k + ((size_t)b * T + j) * C + (size_t)h * HS; /* (HS) */
          double d = 0.0;
          for (int c = 0; c < HS; c++) d += (double)qi[c] * kj[c];
          row[j] = (float)d;
        }
        softmax_row(row, pos_bias ? pos_bias + ((size_t)h * T + i) * T : NULL, mb, scale, T);
        if (probs) memcpy(probs + row0, row, (size_t)T * sizeof(float));
        for (int c = 0; c < HS; c++) acc[c] = 0.0;
        for (int j = 0; j < T; j++) {
          const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * HS; /* (HS) */
          double p = row[j];
          if (dropping) p = ref_dropout_keep(drop, row0 + j) ? row[j] * dscale : 0.0f;
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

void ref_attention_fwd(float *out,   /* (B*T, C) */
                       float *probs, /* (B, NH, T, T) or NULL */
                       const float *q, const float *k, const float *v, /* (B*T, C) each */
                       const int32_t *mask, /* (B, T) or NULL */
                       int B, int T, int C, int NH) {
  ref_attention_bias_fwd(out, probs, q, k, v, mask, NULL, NULL, B, T, C, NH);
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

/* Sizes of one forward: (B*T, C), (B*T, I) and (B, NH, T, T) elements, overflow-checked. */
static int fwd_sizes(const bc_config *cfg, int B, int T, size_t *BTC, size_t *BTI, size_t *PR) {
  size_t BT;
  int C = cfg->hidden_size, I = cfg->intermediate_size, NH = cfg->num_heads;
  if (bc_mul_size((size_t)B, (size_t)T, &BT) || BT > (size_t)INT32_MAX ||
      bc_mul_size(BT, (size_t)C, BTC) || bc_mul_size(BT, (size_t)I, BTI) ||
      bc_mul_size(BT * (size_t)NH, (size_t)T, PR) ||
      *BTC > SIZE_MAX / 8 / sizeof(float) || *BTI > SIZE_MAX / 8 / sizeof(float) ||
      *PR > SIZE_MAX / 8 / sizeof(float))
    return bc_fail(NULL, BERTCL_ERR_OVERFLOW, "ref: B=%d T=%d C=%d I=%d overflows", B, T, C, I);
  return BERTCL_OK;
}

void ref_fwd_acts_free(ref_fwd_acts *a) {
  if (!a) return;
  free(a->arena);
  free(a->layer);
  free(a->pos_ids);
  memset(a, 0, sizeof *a);
}

int ref_fwd_acts_alloc(ref_fwd_acts *a, const bc_config *cfg, int B, int T) {
  memset(a, 0, sizeof *a);
  if (!cfg || B <= 0 || T <= 0 || cfg->num_layers < 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_fwd_acts_alloc: B=%d T=%d", B, T);
  size_t BTC = 0, BTI = 0, PR = 0;
  int st = fwd_sizes(cfg, B, T, &BTC, &BTI, &PR);
  if (st) return st;
  int L = cfg->num_layers, NH = cfg->num_heads;
  size_t bias_n = cfg->rel_buckets > 0 ? (size_t)NH * T * T : 0;
  size_t per_layer = 7 * BTC + 2 * BTI + PR, total;
  if (bc_mul_size(per_layer, (size_t)L, &total) || bc_add_size(total, bias_n, &total) ||
      total > SIZE_MAX / sizeof(float))
    return bc_fail(NULL, BERTCL_ERR_OVERFLOW, "ref_fwd_acts_alloc: B=%d T=%d overflows", B, T);
  a->B = B, a->T = T, a->L = L;
  a->pos_ids = malloc((size_t)B * T * sizeof *a->pos_ids);
  a->layer = calloc((size_t)(L > 0 ? L : 1), sizeof *a->layer);
  a->arena = malloc((total ? total : 1) * sizeof(float));
  if (!a->pos_ids || !a->layer || !a->arena) {
    ref_fwd_acts_free(a);
    return bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_fwd_acts_alloc: out of memory for B=%d T=%d", B,
                   T);
  }
  float *cur = a->arena;
  for (int l = 0; l < L; l++) {
    ref_layer_acts *la = &a->layer[l];
    la->q = cur, cur += BTC;
    la->k = cur, cur += BTC;
    la->v = cur, cur += BTC;
    la->ctx = cur, cur += BTC;
    la->t1 = cur, cur += BTC;
    la->h1 = cur, cur += BTC;
    la->t2 = cur, cur += BTC;
    la->pre = cur, cur += BTI;
    la->act = cur, cur += BTI;
    la->probs = cur, cur += PR;
  }
  a->pos_bias = bias_n ? cur : NULL;
  return BERTCL_OK;
}

/* x = dropout(x + bias) in place, (N, C) */
static void bias_dropout(float *x, const float *bias, const ref_dropout *d, int N, int C) {
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) x[(size_t)n * C + c] += bias[c];
  ref_dropout_fwd(x, x, (size_t)N * C, d);
}

int ref_encoder_fwd(const bc_config *cfg, const bc_weights *w,
                    const int32_t *ids,      /* (B*T) */
                    const int32_t *type_ids, /* (B*T) or NULL */
                    const int32_t *mask,     /* (B, T) or NULL */
                    int B, int T,
                    const ref_dropout *drop, /* (REF_FWD_DROP_SITES(L)) or NULL */
                    float *hidden,           /* (L+1, B*T, C) */
                    ref_fwd_acts *acts) {
  if (!cfg || !w || !ids || !hidden || B <= 0 || T <= 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_encoder_fwd: null argument or B=%d T=%d", B,
                   T);
  int C = cfg->hidden_size, L = cfg->num_layers, NH = cfg->num_heads, I = cfg->intermediate_size;
  if (C <= 0 || L < 0 || NH <= 0 || C % NH != 0 || I <= 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_encoder_fwd: bad config hidden %d layers %d heads %d intermediate %d", C,
                   L, NH, I);
  if (T > cfg->max_position)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_encoder_fwd: sequence length %d exceeds the model's %d positions", T,
                   cfg->max_position);
  if (acts && (acts->B != B || acts->T != T || acts->L != L || !acts->layer))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_encoder_fwd: activations sized for B=%d T=%d L=%d, not %d, %d, %d",
                   acts->B, acts->T, acts->L, B, T, L);
  if (cfg->rel_buckets > 0 && !w->rel_bias)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_encoder_fwd: the config has a relative attention bias, the weights none");
  const float *type_emb = cfg->type_vocab_size > 0 ? w->type_emb : NULL;
  size_t BTC = 0, BTI = 0, PR = 0;
  int st = fwd_sizes(cfg, B, T, &BTC, &BTI, &PR);
  if (st) return bc_fail(NULL, st, "ref_encoder_fwd: %s", bertcl_last_error(NULL));
  size_t BT = (size_t)B * T;
  for (size_t i = 0; i < BT; i++) {
    if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                     "ref_encoder_fwd: token id %d at %zu not in [0, %d)", (int)ids[i], i,
                     cfg->vocab_size);
    if (type_emb && type_ids && (type_ids[i] < 0 || type_ids[i] >= cfg->type_vocab_size))
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                     "ref_encoder_fwd: token type %d at %zu not in [0, %d)", (int)type_ids[i], i,
                     cfg->type_vocab_size);
  }

  /* without acts: one layer's scratch, reused, and no probabilities kept */
  ref_layer_acts one = {0};
  int32_t *pos_ids = acts ? acts->pos_ids : malloc(BT * sizeof *pos_ids); /* (B*T) */
  float *pos_bias = acts ? acts->pos_bias : NULL;                          /* (NH, T, T) */
  float *arena = NULL;
  if (!acts) {
    size_t bias_n = cfg->rel_buckets > 0 ? (size_t)NH * T * T : 0;
    arena = malloc((7 * BTC + 2 * BTI + bias_n) * sizeof(float));
    if (!pos_ids || !arena) {
      st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_encoder_fwd: out of memory for B=%d T=%d", B, T);
      goto fail;
    }
    float *cur = arena;
    one.q = cur, cur += BTC;
    one.k = cur, cur += BTC;
    one.v = cur, cur += BTC;
    one.ctx = cur, cur += BTC;
    one.t1 = cur, cur += BTC;
    one.h1 = cur, cur += BTC;
    one.t2 = cur, cur += BTC;
    one.pre = cur, cur += BTI;
    one.act = cur, cur += BTI;
    one.probs = NULL;
    pos_bias = bias_n ? cur : NULL;
  }
  float eps = cfg->layer_norm_eps;

  ref_position_ids(pos_ids, ids, cfg, B, T);
  float *h = hidden; /* (B*T, C) layer 0 */
  ref_embedding_pos_fwd(h, ids, pos_ids, type_ids, w->word_emb, w->pos_emb, type_emb,
                        w->emb_ln_w, w->emb_ln_b, eps, B, T, C);
  if (drop) ref_dropout_fwd(h, h, BTC, &drop[0]);
  if (pos_bias) ref_rel_position_bias_fwd(pos_bias, w->rel_bias, NH, T);
  for (int l = 0; l < L; l++) {
    const bc_layer_weights *lw = &w->layers[l];
    ref_layer_acts *a = acts ? &acts->layer[l] : &one;
    const ref_dropout *d_attn = drop ? &drop[ref_fwd_drop_site(l, REF_FWD_DROP_ATTN)] : NULL;
    const ref_dropout *d_ao = drop ? &drop[ref_fwd_drop_site(l, REF_FWD_DROP_ATTN_OUT)] : NULL;
    const ref_dropout *d_ffn = drop ? &drop[ref_fwd_drop_site(l, REF_FWD_DROP_FFN_OUT)] : NULL;
    float *hn = h + BTC; /* (B*T, C) layer l+1 */
    ref_linear_fwd(a->q, h, lw->q_w, lw->q_b, (int)BT, C, C);
    ref_linear_fwd(a->k, h, lw->k_w, lw->k_b, (int)BT, C, C);
    ref_linear_fwd(a->v, h, lw->v_w, lw->v_b, (int)BT, C, C);
    ref_attention_bias_fwd(a->ctx, a->probs, a->q, a->k, a->v, mask, pos_bias, d_attn, B, T, C,
                           NH);
    ref_linear_fwd(a->t1, a->ctx, lw->ao_w, NULL, (int)BT, C, C);
    bias_dropout(a->t1, lw->ao_b, d_ao, (int)BT, C);
    ref_bias_residual_layernorm_fwd(a->h1, a->t1, NULL, h, lw->ln1_w, lw->ln1_b, eps, (int)BT, C);
    ref_linear_fwd(a->pre, a->h1, lw->inter_w, NULL, (int)BT, C, I);
    memcpy(a->act, a->pre, BTI * sizeof(float));
    ref_bias_act_fwd(a->act, lw->inter_b, cfg->act, (int)BT, I);
    ref_linear_fwd(a->t2, a->act, lw->out_w, NULL, (int)BT, I, C);
    bias_dropout(a->t2, lw->out_b, d_ffn, (int)BT, C);
    ref_bias_residual_layernorm_fwd(hn, a->t2, NULL, a->h1, lw->ln2_w, lw->ln2_b, eps, (int)BT, C);
    h = hn;
  }
fail:
  free(arena);
  if (!acts) free(pos_ids);
  return st;
}

int ref_model_fwd(const bc_config *cfg, const bc_weights *w,
                  const int32_t *ids,      /* (B*T) */
                  const int32_t *type_ids, /* (B*T) or NULL */
                  const int32_t *mask,     /* (B, T) or NULL */
                  int B, int T,
                  float *hidden, /* (L+1, B*T, C) */
                  float *pooled) /* (B, C) or NULL */ {
  int st = ref_encoder_fwd(cfg, w, ids, type_ids, mask, B, T, NULL, hidden, NULL);
  if (st != BERTCL_OK) return st;
  int C = cfg->hidden_size;
  const float *last = hidden + (size_t)cfg->num_layers * B * T * C; /* (B*T, C) */
  if (pooled && w->pool_w && w->pool_b) ref_pooler_fwd(pooled, last, w->pool_w, w->pool_b, B, T, C);
  return BERTCL_OK;
}

int ref_seq_head_fwd(float *logits, /* (B, K) */
                     ref_head_acts *acts, const bc_config *cfg, const bc_weights *w,
                     const float *h, /* (B*T, C) */
                     int B, int T, int K, const ref_dropout *d_in, const ref_dropout *d_out) {
  if (!logits || !cfg || !w || !h || B <= 0 || T <= 0 || K <= 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "ref_seq_head_fwd: null argument or B=%d K=%d", B,
                   K);
  if (!w->head_w || !w->head_b || !w->cls_w || !w->cls_b)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_seq_head_fwd: the model has no sequence-classification head");
  int C = cfg->hidden_size;
  size_t BC = (size_t)B * C;
  float *own = acts ? NULL : malloc(3 * BC * sizeof(float)); /* x, z, zd: (B, C) each */
  if (!acts && !own)
    return bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_seq_head_fwd: out of memory for B=%d", B);
  float *x = acts ? acts->x : own, *z = acts ? acts->z : own + BC, *zd = acts ? acts->zd : own + 2 * BC;
  for (int b = 0; b < B; b++) memcpy(x + (size_t)b * C, h + (size_t)b * T * C, C * sizeof(float));
  if (cfg->head == BC_CLS_HEAD_DENSE_TANH) ref_dropout_fwd(x, x, BC, d_in);
  ref_linear_fwd(z, x, w->head_w, w->head_b, B, C, C);
  for (size_t i = 0; i < BC; i++)
    z[i] = cfg->head == BC_CLS_HEAD_DENSE_RELU ? (z[i] > 0.0f ? z[i] : 0.0f) : (float)tanh((double)z[i]);
  ref_dropout_fwd(zd, z, BC, d_out);
  ref_linear_fwd(logits, zd, w->cls_w, w->cls_b, B, C, K);
  free(own);
  return BERTCL_OK;
}
