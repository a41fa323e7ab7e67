/* Plain-C backward of every encoder op (see ref_train.h), dropout and losses. Each op is a plain
 * loop nest; reductions over a batch or a feature dimension run in double and are rounded once
 * when added into the float gradient. */
#include "ref/ref_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"

/* ------------------------------------------------------------------------------------------ */
/* Philox-4x32-10 and dropout                                                                  */

static inline void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

void ref_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u; /* golden ratio */
      k1 += 0xBB67AE85u; /* sqrt(3) - 1 */
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(0xD2511F53u, c0, &hi0, &lo0);
    mulhilo32(0xCD9E8D57u, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

int ref_dropout_keep(const ref_dropout *d, uint64_t i) {
  if (!d || d->p <= 0.0f) return 1;
  uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), d->id, d->step};
  uint32_t key[2] = {(uint32_t)d->seed, (uint32_t)(d->seed >> 32)};
  uint32_t r[4];
  ref_philox4x32_10(r, ctr, key);
  float u = (float)(r[0] >> 8) * (1.0f / 16777216.0f); /* [0, 1) in steps of 2^-24 */
  return u >= d->p;
}

static float dropout_scale(const ref_dropout *d) {
  return d->p >= 1.0f ? 0.0f : 1.0f / (1.0f - d->p);
}

void ref_dropout_fwd(float *out, const float *x, size_t n, const ref_dropout *d) {
  if (!d || d->p <= 0.0f) {
    if (out != x) memmove(out, x, n * sizeof(float));
    return;
  }
  float s = dropout_scale(d);
  for (size_t i = 0; i < n; i++) out[i] = ref_dropout_keep(d, i) ? x[i] * s : 0.0f;
}

void ref_dropout_bwd(float *dx, const float *dout, size_t n, const ref_dropout *d) {
  ref_dropout_fwd(dx, dout, n, d); /* the same mask and scale: the op is linear */
}

/* ------------------------------------------------------------------------------------------ */
/* Linear                                                                                      */

void ref_linear_bwd(float *dx,         /* (N, IC) */
                    float *dw,         /* (OC, IC) */
                    float *db,         /* (OC) */
                    const float *dout, /* (N, OC) */
                    const float *x,    /* (N, IC) */
                    const float *w,    /* (OC, IC) */
                    int N, int IC, int OC) {
  if (dx) {
    for (int n = 0; n < N; n++) {
      const float *dn = dout + (size_t)n * OC; /* (OC) */
      float *dxn = dx + (size_t)n * IC;        /* (IC) */
      for (int i = 0; i < IC; i++) {
        double a = 0.0;
        for (int o = 0; o < OC; o++) a += (double)dn[o] * w[(size_t)o * IC + i];
        dxn[i] += (float)a;
      }
    }
  }
  if (dw) {
    for (int o = 0; o < OC; o++) {
      float *dwo = dw + (size_t)o * IC; /* (IC) */
      for (int i = 0; i < IC; i++) {
        double a = 0.0;
        for (int n = 0; n < N; n++) a += (double)dout[(size_t)n * OC + o] * x[(size_t)n * IC + i];
        dwo[i] += (float)a;
      }
    }
  }
  if (db) {
    for (int o = 0; o < OC; o++) {
      double a = 0.0;
      for (int n = 0; n < N; n++) a += dout[(size_t)n * OC + o];
      db[o] += (float)a;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm                                                                                   */

/* Backward of one row y = (x - mean) * rstd * w + b, with x held in double.
 * dxhat = dy * w; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
 * dx_row (C, double) is written; dw, db (C) accumulate in double sums. */
static void layernorm_row_bwd(double *dx_row,     /* (C) */
                              double *dw_acc, double *db_acc, /* (C) or NULL */
                              const float *dy,    /* (C) */
                              const double *x,    /* (C) */
                              const float *w, float eps, int C) {
  double mean = 0.0;
  for (int c = 0; c < C; c++) mean += x[c];
  mean /= C;
  double var = 0.0;
  for (int c = 0; c < C; c++) {
    double d = x[c] - mean;
    var += d * d;
  }
  var /= C;
  double rstd = 1.0 / sqrt(var + (double)eps);
  double m1 = 0.0, m2 = 0.0; /* mean(dxhat), mean(dxhat * xhat) */
  for (int c = 0; c < C; c++) {
    double xhat = (x[c] - mean) * rstd;
    double dxhat = (double)dy[c] * w[c];
    m1 += dxhat;
    m2 += dxhat * xhat;
    if (dw_acc) dw_acc[c] += (double)dy[c] * xhat;
    if (db_acc) db_acc[c] += dy[c];
  }
  m1 /= C;
  m2 /= C;
  for (int c = 0; c < C; c++) {
    double xhat = (x[c] - mean) * rstd;
    double dxhat = (double)dy[c] * w[c];
    dx_row[c] = rstd * (dxhat - m1 - xhat * m2);
  }
}

/* Scratch: x row, dx row, dw and db sums, all (C) double. */
typedef struct {
  double *x, *dx, *dw, *db;
} ln_scratch;

static int ln_scratch_init(ln_scratch *s, int C) {
  s->x = calloc((size_t)4 * (size_t)(C > 0 ? C : 1), sizeof(double));
  if (!s->x) return -1;
  s->dx = s->x + C;
  s->dw = s->dx + C;
  s->db = s->dw + C;
  return 0;
}

static void ln_scratch_flush(ln_scratch *s, float *dw, float *db, int C) {
  for (int c = 0; c < C; c++) {
    if (dw) dw[c] += (float)s->dw[c];
    if (db) db[c] += (float)s->db[c];
  }
  free(s->x);
}

void ref_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                       const float *w, float eps, int N, int C) {
  ln_scratch s;
  if (ln_scratch_init(&s, C)) return;
  for (int n = 0; n < N; n++) {
    const float *xn = x + (size_t)n * C;
    for (int c = 0; c < C; c++) s.x[c] = xn[c];
    layernorm_row_bwd(s.dx, s.dw, s.db, dout + (size_t)n * C, s.x, w, eps, C);
    if (dx)
      for (int c = 0; c < C; c++) dx[(size_t)n * C + c] += (float)s.dx[c];
  }
  ln_scratch_flush(&s, dw, db, C);
}

void ref_bias_residual_layernorm_bwd(float *dx, float *dbias, float *dresidual, float *dw,
                                     float *db, const float *dout, const float *x,
                                     const float *bias, const float *residual, const float *w,
                                     float eps, int N, int C) {
  ln_scratch s;
  if (ln_scratch_init(&s, C)) return;
  double *dbias_acc = calloc((size_t)(C > 0 ? C : 1), sizeof(double)); /* (C) */
  if (!dbias_acc) {
    free(s.x);
    return;
  }
  for (int n = 0; n < N; n++) {
    const float *xn = x + (size_t)n * C, *rn = residual + (size_t)n * C;
    for (int c = 0; c < C; c++) {
      float y = xn[c] + (bias ? bias[c] : 0.0f); /* the forward's fp32 sum, as ref.c */
      s.x[c] = (double)y + (double)rn[c];
    }
    layernorm_row_bwd(s.dx, s.dw, s.db, dout + (size_t)n * C, s.x, w, eps, C);
    for (int c = 0; c < C; c++) {
      float g = (float)s.dx[c];
      if (dx) dx[(size_t)n * C + c] += g;
      if (dresidual) dresidual[(size_t)n * C + c] += g;
      dbias_acc[c] += s.dx[c];
    }
  }
  if (bias && dbias)
    for (int c = 0; c < C; c++) dbias[c] += (float)dbias_acc[c];
  free(dbias_acc);
  ln_scratch_flush(&s, dw, db, C);
}

/* ------------------------------------------------------------------------------------------ */
/* Embeddings                                                                                  */

void ref_embedding_pos_bwd(float *dword, float *dpos, float *dtype, float *dln_w, float *dln_b,
                           const float *dout, const int32_t *ids, const int32_t *pos_ids,
                           const int32_t *type_ids, const float *word_emb, const float *pos_emb,
                           const float *type_emb, const float *ln_w, float eps, int B, int T,
                           int C) {
  ln_scratch s;
  if (ln_scratch_init(&s, C)) return;
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T; t++) {
      size_t bt = (size_t)b * T + t;
      int tt = type_ids ? type_ids[bt] : 0, p = pos_ids ? pos_ids[bt] : t;
      const float *we = word_emb + (size_t)ids[bt] * C;
      const float *te = type_emb ? type_emb + (size_t)tt * C : NULL;
      const float *pe = pos_emb + (size_t)p * C;
      for (int c = 0; c < C; c++) /* as the forward */
        s.x[c] = (double)(te ? (we[c] + te[c]) + pe[c] : we[c] + pe[c]);
      layernorm_row_bwd(s.dx, s.dw, s.db, dout + bt * C, s.x, ln_w, eps, C);
      for (int c = 0; c < C; c++) {
        float g = (float)s.dx[c];
        if (dword) dword[(size_t)ids[bt] * C + c] += g;
        if (dpos) dpos[(size_t)p * C + c] += g;
        if (dtype && te) dtype[(size_t)tt * C + c] += g;
      }
    }
  }
  ln_scratch_flush(&s, dln_w, dln_b, C);
}

void ref_embedding_bwd(float *dword, float *dpos, float *dtype, float *dln_w, float *dln_b,
                       const float *dout, const int32_t *ids, const int32_t *type_ids,
                       const float *word_emb, const float *pos_emb, const float *type_emb,
                       const float *ln_w, float eps, int B, int T, int C) {
  ref_embedding_pos_bwd(dword, dpos, dtype, dln_w, dln_b, dout, ids, NULL, type_ids, word_emb,
                        pos_emb, type_emb, ln_w, eps, B, T, C);
}

/* ------------------------------------------------------------------------------------------ */
/* Activations                                                                                 */

double ref_act_grad(double x, bc_act act) {
  switch (act) {
  case BC_ACT_GELU: { /* 0.5 (1 + erf(x / sqrt 2)) + x * phi(x) */
    double cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752440));
    double pdf = 0.39894228040143267794 * exp(-0.5 * x * x); /* 1 / sqrt(2 pi) */
    return cdf + x * pdf;
  }
  case BC_ACT_GELU_TANH: { /* u = k (x + a x^3): 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u' */
    const double k = 0.79788456080286535588, a = 0.044715;
    double u = k * (x + a * x * x * x);
    double th = tanh(u);
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3.0 * a * x * x);
  }
  case BC_ACT_RELU:
    return x > 0.0 ? 1.0 : 0.0;
  }
  return NAN;
}

void ref_bias_act_bwd(float *dx, float *dbias, const float *dout, const float *x,
                      const float *bias, bc_act act, int N, int C) {
  double *acc = dbias ? calloc((size_t)(C > 0 ? C : 1), sizeof(double)) : NULL; /* (C) */
  for (int n = 0; n < N; n++) {
    for (int c = 0; c < C; c++) {
      size_t i = (size_t)n * C + c;
      float z = x[i] + (bias ? bias[c] : 0.0f); /* the forward's fp32 sum */
      double g = (double)dout[i] * ref_act_grad(z, act);
      dx[i] = (float)g;
      if (acc) acc[c] += g;
    }
  }
  if (acc) {
    for (int c = 0; c < C; c++) dbias[c] += (float)acc[c];
    free(acc);
  }
}

void ref_tanh_bwd(float *dx, const float *dout, const float *y, size_t n) {
  for (size_t i = 0; i < n; i++) dx[i] = (float)((double)dout[i] * (1.0 - (double)y[i] * y[i]));
}

/* ------------------------------------------------------------------------------------------ */
/* Softmax and attention                                                                       */

static void softmax_row_bwd(float *ds, const float *dp, const float *p, float scale, int T) {
  double dot = 0.0;
  for (int j = 0; j < T; j++) dot += (double)p[j] * dp[j];
  for (int j = 0; j < T; j++) ds[j] = (float)((double)scale * p[j] * ((double)dp[j] - dot));
}

void ref_softmax_bwd(float *dscores, const float *dprobs, const float *probs, float scale, int B,
                     int NH, int T) {
  size_t rows = (size_t)B * NH * T;
  for (size_t r = 0; r < rows; r++)
    softmax_row_bwd(dscores + r * T, dprobs + r * T, probs + r * T, scale, T);
}

static float attention_scale(int HS) { return (float)(1.0 / sqrt((double)HS)); }

void ref_attention_dropout_fwd(float *out, float *probs, const float *q, const float *k,
                               const float *v, const int32_t *mask, const ref_dropout *drop,
                               int B, int T, int C, int NH) {
  int HS = C / NH;
  float scale = attention_scale(HS);
  double *acc = malloc((size_t)(HS > 0 ? HS : 1) * sizeof(double)); /* (HS) */
  if (!acc) return;
  float dscale = drop && drop->p > 0.0f ? dropout_scale(drop) : 1.0f;
  for (int b = 0; b < B; b++) {
    const int32_t *mb = mask ? mask + (size_t)b * T : NULL; /* (T) */
    for (int h = 0; h < NH; h++) {
      float *pbh = probs + ((size_t)b * NH + h) * T * T; /* (T, T) */
      for (int i = 0; i < T; i++) {
        const float *qi = q + ((size_t)b * T + i) * C + (size_t)h * HS;
        for (int j = 0; j < T; j++) {
          const float *kj = k + ((size_t)b * T + j) * C + (size_t)h * HS;
          double d = 0.0;
          for (int c = 0; c < HS; c++) d += (double)qi[c] * kj[c];
          pbh[(size_t)i * T + j] = (float)d;
        }
      }
      ref_softmax_fwd(pbh, mb, scale, 1, 1, T); /* one (T, T) block: the forward's numerics */
      for (int i = 0; i < T; i++) {
        size_t row0 = (((size_t)b * NH + h) * T + i) * T;
        const float *p = probs + row0; /* (T) */
        for (int c = 0; c < HS; c++) acc[c] = 0.0;
        for (int j = 0; j < T; j++) {
          double pj = p[j];
          if (drop && drop->p > 0.0f) pj = ref_dropout_keep(drop, row0 + j) ? p[j] * dscale : 0.0f;
          const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * HS;
          for (int c = 0; c < HS; c++) acc[c] += pj * vj[c];
        }
        float *oi = out + ((size_t)b * T + i) * C + (size_t)h * HS;
        for (int c = 0; c < HS; c++) oi[c] = (float)acc[c];
      }
    }
  }
  free(acc);
}

void ref_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *probs,
                       const ref_dropout *drop, int B, int T, int C, int NH) {
  int HS = C / NH;
  float scale = attention_scale(HS);
  int dropping = drop && drop->p > 0.0f;
  float dscale = dropping ? dropout_scale(drop) : 1.0f;
  float *dp = malloc((size_t)(T > 0 ? T : 1) * sizeof(float)); /* (T) */
  float *ds = malloc((size_t)(T > 0 ? T : 1) * sizeof(float)); /* (T) */
  double *acc = malloc((size_t)(HS > 0 ? HS : 1) * sizeof(double)); /* (HS) */
  if (!dp || !ds || !acc) goto done;
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      size_t base = (size_t)b * T * C + (size_t)h * HS; /* row b*T, head h */
      /* dv_j += sum_i pd_ij dout_i (pd: the dropped probabilities) */
      for (int j = 0; j < T; j++) {
        for (int c = 0; c < HS; c++) acc[c] = 0.0;
        for (int i = 0; i < T; i++) {
          size_t pi = (((size_t)b * NH + h) * T + i) * T + j;
          double pd = probs[pi];
          if (dropping) pd = ref_dropout_keep(drop, pi) ? probs[pi] * dscale : 0.0f;
          const float *di = dout + base + (size_t)i * C;
          for (int c = 0; c < HS; c++) acc[c] += pd * di[c];
        }
        float *dvj = dv + base + (size_t)j * C;
        for (int c = 0; c < HS; c++) dvj[c] += (float)acc[c];
      }
      for (int i = 0; i < T; i++) {
        size_t row0 = (((size_t)b * NH + h) * T + i) * T;
        const float *di = dout + base + (size_t)i * C;
        /* dpd_ij = dout_i . v_j, then through dropout and softmax */
        for (int j = 0; j < T; j++) {
          const float *vj = v + base + (size_t)j * C;
          double d = 0.0;
          for (int c = 0; c < HS; c++) d += (double)di[c] * vj[c];
          dp[j] = (float)d;
        }
        if (dropping) {
          /* element index row0 + j: the forward's numbering */
          for (int j = 0; j < T; j++) dp[j] = ref_dropout_keep(drop, row0 + j) ? dp[j] * dscale : 0.0f;
        }
        softmax_row_bwd(ds, dp, probs + row0, scale, T);
        /* dq_i += sum_j ds_ij k_j; dk_j += ds_ij q_i (scale is inside ds) */
        const float *qi = q + base + (size_t)i * C;
        for (int c = 0; c < HS; c++) acc[c] = 0.0;
        for (int j = 0; j < T; j++) {
          const float *kj = k + base + (size_t)j * C;
          for (int c = 0; c < HS; c++) acc[c] += (double)ds[j] * kj[c];
        }
        float *dqi = dq + base + (size_t)i * C;
        for (int c = 0; c < HS; c++) dqi[c] += (float)acc[c];
        for (int j = 0; j < T; j++) {
          float *dkj = dk + base + (size_t)j * C;
          for (int c = 0; c < HS; c++) dkj[c] += (float)((double)ds[j] * qi[c]);
        }
      }
    }
  }
done:
  free(acc);
  free(ds);
  free(dp);
}

/* ------------------------------------------------------------------------------------------ */
/* Pooler                                                                                      */

void ref_pooler_bwd(float *dh, float *dw, float *db, const float *dpooled, const float *h,
                    const float *pooled, const float *w, int B, int T, int C) {
  float *dz = malloc((size_t)B * C * sizeof(float)); /* (B, C) */
  float *h0 = malloc((size_t)B * C * sizeof(float)); /* (B, C) token 0 of each sequence */
  float *dh0 = calloc((size_t)B * C, sizeof(float)); /* (B, C) */
  if (!dz || !h0 || !dh0) goto done;
  ref_tanh_bwd(dz, dpooled, pooled, (size_t)B * C);
  for (int b = 0; b < B; b++) memcpy(h0 + (size_t)b * C, h + (size_t)b * T * C, (size_t)C * sizeof(float));
  ref_linear_bwd(dh ? dh0 : NULL, dw, db, dz, h0, w, B, C, C);
  if (dh)
    for (int b = 0; b < B; b++)
      for (int c = 0; c < C; c++) dh[(size_t)b * T * C + c] += dh0[(size_t)b * C + c];
done:
  free(dh0);
  free(h0);
  free(dz);
}

/* ------------------------------------------------------------------------------------------ */
/* Losses                                                                                      */

double ref_cross_entropy_fwd_bwd(float *dlogits, const float *logits, const int32_t *labels,
                                 int B, int K, float scale) {
  int count = 0;
  for (int b = 0; b < B; b++) count += labels[b] != -100;
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    const float *lb = logits + (size_t)b * K; /* (K) */
    double mx = -INFINITY;
    for (int j = 0; j < K; j++)
      if (lb[j] > mx) mx = lb[j];
    double z = 0.0;
    for (int j = 0; j < K; j++) z += exp((double)lb[j] - mx);
    double lse = mx + log(z);
    int y = labels[b];
    if (y != -100) total += lse - lb[y];
    if (dlogits) {
      for (int j = 0; j < K; j++) {
        double g = 0.0;
        if (y != -100 && count > 0)
          g = (exp((double)lb[j] - lse) - (j == y ? 1.0 : 0.0)) / count * scale;
        dlogits[(size_t)b * K + j] = (float)g;
      }
    }
  }
  return count > 0 ? total / count : NAN;
}

/* ------------------------------------------------------------------------------------------ */
/* Clipping, schedule, AdamW                                                                   */

double ref_clip_grad_norm(float *g, size_t n, float max_norm) {
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
  double total = sqrt(ss);
  if (max_norm > 0.0f) {
    double coef = (double)max_norm / (total + 1e-6);
    if (coef < 1.0) {
      float cf = (float)coef;
      for (size_t i = 0; i < n; i++) g[i] *= cf;
    }
  }
  return total;
}

void ref_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int t) {
  /* scalars in double as Python computes them, then used as fp32 as torch does */
  float decay = (float)(1.0 - (double)lr * weight_decay);
  double bc1 = 1.0 - pow((double)beta1, t), bc2 = 1.0 - pow((double)beta2, t);
  float step_size = (float)((double)lr / bc1);
  float bc2_sqrt = (float)sqrt(bc2);
  float w1 = (float)(1.0 - (double)beta1), w2 = (float)(1.0 - (double)beta2);
  for (size_t i = 0; i < n; i++) {
    float pi = p[i] * decay;
    float mi = m[i] + w1 * (g[i] - m[i]); /* lerp(m, g, 1 - beta1) */
    float vi = v[i] * beta2 + w2 * g[i] * g[i];
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    p[i] = pi - step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}

void ref_adamw_step(float *params, const float *grads, float *m, float *v, const bc_layout *lay,
                    const bc_adamw_cfg *cfg, float lr, int t) {
  for (int i = 0; i < lay->count; i++) {
    const bc_tensor *tt = &lay->t[i];
    ref_adamw_update(params + tt->offset, grads + tt->offset, m + tt->offset, v + tt->offset,
                     tt->numel, lr, cfg->beta1, cfg->beta2, cfg->eps,
                     tt->decay ? cfg->weight_decay : 0.0f, t);
  }
}
