/* Sequence-task metrics. See metrics.h. */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bc_metrics_clear(bertcl_metrics *m) {
  memset(m, 0, sizeof *m);
  m->accuracy = m->macro_f1 = m->f1 = NAN;
  m->mse = m->pearson = m->spearman = NAN;
  m->precision = m->recall = m->entity_f1 = NAN;
}

void bc_score_classes(bertcl_metrics *r, const int32_t *gold, const int32_t *pred, size_t n,
                      int K) {
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) ok += gold[i] == pred[i];
  r->examples = n;
  r->accuracy = n ? (double)ok / n : 0;
  r->f1 = 0;
  double sum = 0;
  int classes = 0;
  for (int k = 0; k < K; k++) {
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
      tp += gold[i] == k && pred[i] == k;
      fp += gold[i] != k && pred[i] == k;
      fn += gold[i] == k && pred[i] != k;
    }
    if (tp + fp + fn == 0) continue; /* a label absent from both: sklearn's zero_division aside */
    double f = 2.0 * tp / (double)(2 * tp + fp + fn);
    sum += f;
    classes++;
    if (K == 2 && k == 1) r->f1 = f;
  }
  r->macro_f1 = classes ? sum / classes : 0;
  if (K != 2) r->f1 = r->macro_f1;
}

/* Pearson correlation of x and y (n); NaN when either is constant (as scipy). */
static double pearson(const double *x, const double *y, size_t n) {
  double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; i++) mx += x[i], my += y[i];
  mx /= (double)n, my /= (double)n;
  for (size_t i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

typedef struct {
  double v;
  size_t i;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Ranks 1..n of x, ties sharing their mean rank (scipy's rankdata "average"). */
static int ranks(const double *x, size_t n, double *rk) {
  keyed *ix = malloc((n ? n : 1) * sizeof *ix);
  if (!ix) return -1;
  for (size_t i = 0; i < n; i++) ix[i] = (keyed){x[i], i};
  qsort(ix, n, sizeof *ix, cmp_keyed);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && ix[j + 1].v == ix[i].v) j++;
    for (size_t k = i; k <= j; k++) rk[ix[k].i] = 0.5 * (double)(i + j) + 1.0;
    i = j + 1;
  }
  free(ix);
  return 0;
}

int bc_score_regression(bertcl_metrics *m, const double *g, const double *p, size_t n) {
  double se = 0;
  for (size_t i = 0; i < n; i++) se += (p[i] - g[i]) * (p[i] - g[i]);
  m->examples = n;
  m->mse = n ? se / (double)n : 0;
  m->pearson = pearson(g, p, n);
  double *rg = malloc((n ? n : 1) * sizeof *rg), *rp = malloc((n ? n : 1) * sizeof *rp);
  if (!rg || !rp || ranks(g, n, rg) || ranks(p, n, rp)) {
    free(rg), free(rp);
    return BERTCL_ERR_NOMEM;
  }
  m->spearman = pearson(rg, rp, n);
  free(rg), free(rp);
  return BERTCL_OK;
}
