/* bertcl_probe and bertcl_probe_predict (include/bertcl.h): features of every requested layer
 * from one pass of the extraction pipeline (bertcl_extract), a logistic-regression probe
 * (probe/logreg.h) per (layer or combination, pooling) cell, the table's outputs (probe.json,
 * probe.svg via probe/plot.h) and the best cell's classifier, which bertcl_probe_predict applies
 * again. Datasets, label maps and metrics are fine-tuning's (src/train). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bertcl.h"
#include "io/durable.h"
#include "io/writers.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "probe/logreg.h"
#include "probe/plot.h"
#include "runtime/runtime.h"
#include "encoder/encoder.h"
#include "job/job.h"
#include "train/align.h"
#include "train/data.h"
#include "train/entity.h"
#include "train/examples.h"
#include "train/labels.h"
#include "train/metrics.h"
#include "train/words.h"

#define PROBE_FORMAT "bertcl-probe/1"
#define MAX_LAYERS 64

void bertcl_probe_options_init(bertcl_probe_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->words = 1;
  o->combos = BERTCL_PROBE_LAST4 | BERTCL_PROBE_MEAN | BERTCL_PROBE_MIX;
  o->l2 = BERTCL_PROBE_L2_DEFAULT;
}

void bertcl_probe_result_free(bertcl_probe_result *r) {
  if (!r) return;
  free(r->cells);
  memset(r, 0, sizeof *r);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- what a cell's features are ---------------------------------------------------------- */

typedef enum { FEAT_SINGLE = 0, FEAT_CONCAT = 1, FEAT_MEAN = 2, FEAT_MIX = 3 } feat_kind;

/* A cell's features: pooling `pool` of hidden states layers[0..n), joined by kind. */
typedef struct {
  bertcl_pool pool; /* sequence task; 0 for the token task */
  int words;        /* token task: 1 first subword, 2 mean of subwords; 0 for sequence */
  feat_kind kind;
  int n;
  int layers[MAX_LAYERS];
} feat_spec;

static const char *pool_name(bertcl_pool p) {
  switch (p) {
    case BERTCL_POOL_CLS: return "cls";
    case BERTCL_POOL_MEAN: return "mean";
    case BERTCL_POOL_MAX: return "max";
    case BERTCL_POOL_POOLER: return "pooler";
  }
  return "?";
}

static int pool_from_name(const char *s, bertcl_pool *p) {
  const bertcl_pool all[] = {BERTCL_POOL_CLS, BERTCL_POOL_MEAN, BERTCL_POOL_MAX,
                             BERTCL_POOL_POOLER};
  for (size_t i = 0; i < 4; i++)
    if (s && !strcmp(s, pool_name(all[i]))) return *p = all[i], 1;
  return 0;
}

static const char *kind_name(feat_kind k) {
  return k == FEAT_CONCAT ? "concat" : k == FEAT_MEAN ? "mean" : k == FEAT_MIX ? "mix" : "single";
}

/* The cell's design matrix (rows, D) from pooled features F (rows, width) of the layers that
 * were extracted (ext[0..next), concatenated in that order, C columns each): the spec's layers
 * side by side (single, concat, mix) or averaged (mean), left to right in spec order. */
static float *cell_matrix(const feat_spec *s, const float *F, size_t rows, const int *ext,
                          int next, int C, int *D) {
  int blocks[MAX_LAYERS];
  for (int i = 0; i < s->n; i++) {
    blocks[i] = -1;
    for (int j = 0; j < next; j++)
      if (ext[j] == s->layers[i]) blocks[i] = j;
    if (blocks[i] < 0) return NULL;
  }
  size_t width = (size_t)next * C;
  *D = s->kind == FEAT_MEAN ? C : s->n * C;
  float *X = malloc(rows * (size_t)*D * sizeof *X);
  if (!X) return NULL;
  for (size_t r = 0; r < rows; r++) {
    const float *src = F + r * width;
    float *dst = X + r * (size_t)*D;
    if (s->kind == FEAT_MEAN) {
      for (int c = 0; c < C; c++) {
        double acc = 0;
        for (int i = 0; i < s->n; i++) acc += src[(size_t)blocks[i] * C + c];
        dst[c] = (float)(acc / s->n);
      }
    } else {
      for (int i = 0; i < s->n; i++)
        memcpy(dst + (size_t)i * C, src + (size_t)blocks[i] * C, (size_t)C * sizeof *dst);
    }
  }
  return X;
}

/* ---- the run ---------------------------------------------------------------------------- */

typedef struct {
  bertcl_ctx *ctx;
  bc_err *err;
  const bertcl_model *model;
  const bertcl_tokenizer *tok;
  bertcl_probe_options o;
  bertcl_progress_fn fn;
  void *user;
  char msg[1024];
  int L, C, K;
  int layers[MAX_LAYERS], nl; /* hidden states probed, in the order asked */
  bertcl_pool pools[4];
  int npools;
  bc_text_data train, ev;      /* sequence task */
  bc_word_data wtrain, wev;    /* token task */
  bc_labelmap lm;
  int32_t *y;       /* (ntrain + nev) label ids: train rows (examples or words) first */
  size_t ntrain, nev;
  unsigned char *no_tok;       /* token task: (ntrain + nev) words the tokenizer makes no token
                                  of (no features: predicted as fine-tuning does, O) */
  int32_t fallback_tag;        /* their prediction: O, else label 0 */
  bertcl_probe_cell *cells;
  size_t ncells, capcells;
  /* the best cell so far, kept to be saved */
  int best;
  feat_spec best_spec;
  bc_logreg best_model;
} run;

__attribute__((format(printf, 3, 4))) static void emit(run *r, bertcl_progress *p,
                                                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  p->message = r->msg;
  if (r->fn) r->fn(p, r->user);
}

static void run_free(run *r) {
  bc_text_data_free(&r->train);
  bc_text_data_free(&r->ev);
  bc_word_data_free(&r->wtrain);
  bc_word_data_free(&r->wev);
  free(r->no_tok);
  bc_labelmap_free(&r->lm);
  free(r->y);
  free(r->cells);
  bc_logreg_free(&r->best_model);
}

/* Reads train and eval, builds the label map from train, and the label ids. */
static int read_sequence_data(run *r) {
  bc_text_columns cols = {r->o.text_column, r->o.pair_column, r->o.label_column};
  int st = bc_text_data_read(r->err, r->o.train_file, &cols, BC_DATA_NEED_LABEL, &r->train);
  if (st == BERTCL_OK)
    st = bc_text_data_read(r->err, r->o.eval_file, &cols, BC_DATA_NEED_LABEL, &r->ev);
  if (st != BERTCL_OK) return st;
  if (r->train.n < 2)
    return bc_fail(r->err, BERTCL_ERR_INVALID_ARG, "%s: a probe needs at least 2 examples",
                   r->o.train_file);
  if (r->ev.n == 0)
    return bc_fail(r->err, BERTCL_ERR_INVALID_ARG, "%s holds no example", r->o.eval_file);
  if (bc_labels_are_regression((const char *const *)r->train.label, r->train.n, 0))
    return bc_fail(r->err, BERTCL_ERR_UNSUPPORTED,
                   "%s: the labels are numbers with decimals (regression targets); a probe "
                   "trains classifiers",
                   r->o.train_file);
  st = bc_labelmap_build(r->err, &r->lm, (const char *const *)r->train.label, r->train.n, NULL, 0);
  if (st != BERTCL_OK) return st;
  r->K = r->lm.K;
  r->ntrain = r->train.n;
  r->nev = r->ev.n;
  r->y = malloc((r->ntrain + r->nev) * sizeof *r->y);
  if (!r->y) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < r->ntrain; i++) r->y[i] = bc_labelmap_id(&r->lm, r->train.label[i]);
  for (size_t i = 0; i < r->nev; i++) {
    int id = bc_labelmap_id(&r->lm, r->ev.label[i]);
    if (id < 0)
      return bc_fail(r->err, BERTCL_ERR_INVALID_ARG,
                     "%s line %zu: label '%s' does not occur in %s; a probe cannot predict it",
                     r->o.eval_file, r->ev.line[i], r->ev.label[i], r->o.train_file);
    r->y[r->ntrain + i] = id;
  }
  return BERTCL_OK;
}

/* Token task: CoNLL or JSONL words with tags; the tag map is the sorted tags of train
 * (run_ner.py's label list). */
static int read_token_data(run *r) {
  bc_word_columns cols = {.tag_column = -1};
  int st = bc_words_read(r->err, r->o.train_file, &cols, BC_WORDS_NEED_TAGS, &r->wtrain);
  if (st == BERTCL_OK)
    st = bc_words_read(r->err, r->o.eval_file, &cols, BC_WORDS_NEED_TAGS, &r->wev);
  if (st != BERTCL_OK) return st;
  r->ntrain = r->wtrain.start[r->wtrain.n];
  r->nev = r->wev.start[r->wev.n];
  if (r->ntrain < 2 || r->nev == 0)
    return bc_fail(r->err, BERTCL_ERR_INVALID_ARG, "%s: a probe needs at least 2 words",
                   r->ntrain < 2 ? r->o.train_file : r->o.eval_file);
  st = bc_labelmap_sorted(r->err, &r->lm, (const char *const *)r->wtrain.tags, r->ntrain);
  if (st != BERTCL_OK) return st;
  r->K = r->lm.K;
  if (r->K < 2)
    return bc_fail(r->err, BERTCL_ERR_INVALID_ARG, "%s: every word has the tag '%s'",
                   r->o.train_file, r->lm.names[0]);
  r->y = malloc((r->ntrain + r->nev) * sizeof *r->y);
  r->no_tok = calloc(r->ntrain + r->nev, 1);
  if (!r->y || !r->no_tok) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < r->ntrain; i++) r->y[i] = bc_labelmap_id(&r->lm, r->wtrain.tags[i]);
  for (size_t i = 0; i < r->nev; i++) {
    int id = bc_labelmap_id(&r->lm, r->wev.tags[i]);
    if (id < 0)
      return bc_fail(r->err, BERTCL_ERR_INVALID_ARG,
                     "%s line %zu: tag '%s' does not occur in %s; a probe cannot predict it",
                     r->o.eval_file, r->wev.line[i], r->wev.tags[i], r->o.train_file);
    r->y[r->ntrain + i] = id;
  }
  r->fallback_tag = bc_labelmap_id(&r->lm, "O");
  if (r->fallback_tag < 0) r->fallback_tag = 0;
  return BERTCL_OK;
}

/* The hidden states asked for: all 0..L by default; negatives count from the end. */
static int resolve_layers(run *r) {
  if (!r->o.layers || r->o.nlayers <= 0) {
    r->nl = r->L + 1;
    for (int l = 0; l <= r->L; l++) r->layers[l] = l;
    return BERTCL_OK;
  }
  if (r->o.nlayers > MAX_LAYERS)
    return bc_fail(r->err, BERTCL_ERR_INVALID_ARG, "at most %d layers", MAX_LAYERS);
  r->nl = 0;
  for (int i = 0; i < r->o.nlayers; i++) {
    int l = r->o.layers[i] < 0 ? r->L + 1 + r->o.layers[i] : r->o.layers[i];
    if (l < 0 || l > r->L)
      return bc_fail(r->err, BERTCL_ERR_INVALID_ARG,
                     "layer %d does not exist: hidden states are 0 (embeddings) .. %d",
                     r->o.layers[i], r->L);
    int dup = 0;
    for (int j = 0; j < r->nl; j++) dup |= r->layers[j] == l;
    if (!dup) r->layers[r->nl++] = l;
  }
  return BERTCL_OK;
}

/* The penalty for n training rows: explicit, 1/n, or chosen on a held-out tenth. */
static int choose_l2(run *r, const float *X, const int32_t *y, size_t n, int D, int mix,
                     double *l2) {
  if (r->o.l2 >= 0) return *l2 = r->o.l2, BERTCL_OK;
  if (r->o.l2 != BERTCL_PROBE_L2_AUTO || n < 20) return *l2 = 1.0 / (double)n, BERTCL_OK;
  /* every 10th row held out */
  size_t nh = n / 10, nf = n - nh;
  float *Xf = malloc(nf * (size_t)D * sizeof *Xf), *Xh = malloc(nh * (size_t)D * sizeof *Xh);
  int32_t *yf = malloc(nf * sizeof *yf), *yh = malloc(nh * sizeof *yh), *pred = NULL;
  float *pr = malloc(nh * (size_t)r->K * sizeof *pr);
  int st = BERTCL_OK;
  if (!Xf || !Xh || !yf || !yh || !pr) {
    st = bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0, a = 0, b = 0; i < n; i++) {
    int held = i % 10 == 9 && b < nh;
    memcpy((held ? Xh + b * (size_t)D : Xf + a * (size_t)D), X + i * (size_t)D,
           (size_t)D * sizeof *X);
    if (held)
      yh[b++] = y[i];
    else
      yf[a++] = y[i];
  }
  static const double grid[] = {0.001, 0.01, 0.1, 1, 10, 100};
  double best_acc = -1, best_c = 1;
  for (size_t g = 0; g < sizeof grid / sizeof grid[0]; g++) {
    bc_logreg m;
    bc_logreg_opts lo = {.l2 = 1.0 / (grid[g] * (double)nf), .max_iter = r->o.max_iter,
                         .mix_blocks = mix};
    if ((st = bc_logreg_fit(r->ctx, Xf, yf, nf, D, r->K, &lo, &m)) != BERTCL_OK) goto done;
    st = bc_logreg_predict(r->ctx, &m, Xh, nh, pr);
    bc_logreg_free(&m);
    if (st != BERTCL_OK) goto done;
    size_t right = 0;
    for (size_t i = 0; i < nh; i++) {
      int bk = 0;
      for (int k = 1; k < r->K; k++)
        if (pr[i * r->K + k] > pr[i * r->K + bk]) bk = k;
      right += bk == yh[i];
    }
    double acc = (double)right / (double)nh;
    if (acc > best_acc + 1e-12) best_acc = acc, best_c = grid[g]; /* ties: the smaller C */
  }
  *l2 = 1.0 / (best_c * (double)n);
done:
  free(Xf), free(Xh), free(yf), free(yh), free(pr), free(pred);
  return st;
}

static int argmax_rows(const float *pr, size_t n, int K, int32_t *out) {
  for (size_t i = 0; i < n; i++) {
    int bk = 0;
    for (int k = 1; k < K; k++)
      if (pr[i * K + k] > pr[i * K + bk]) bk = k;
    out[i] = bk;
  }
  return BERTCL_OK;
}

/* Entity precision, recall and F1 (seqeval's default mode) of predicted tag ids against gold
 * ones over the sentences of d. */
static int entity_scores(run *r, const bc_word_data *d, const int32_t *gold, const int32_t *pred,
                         double *p, double *rc, double *f1) {
  size_t n = d->start[d->n];
  const char **g = malloc((n ? n : 1) * sizeof *g), **q = malloc((n ? n : 1) * sizeof *q);
  if (!g || !q) {
    free(g), free(q);
    return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) g[i] = r->lm.names[gold[i]], q[i] = r->lm.names[pred[i]];
  bc_entity_report rep;
  int st = bc_entity_score(r->err, g, q, d->start, d->n, &rep);
  if (st == BERTCL_OK) {
    *p = rep.precision, *rc = rep.recall, *f1 = rep.f1;
    bc_entity_report_free(&rep);
  }
  free(g), free(q);
  return st;
}

static int add_cell(run *r, const bertcl_probe_cell *c) {
  if (r->ncells == r->capcells) {
    size_t cap = r->capcells ? 2 * r->capcells : 32;
    bertcl_probe_cell *nc = realloc(r->cells, cap * sizeof *nc);
    if (!nc) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    r->cells = nc;
    r->capcells = cap;
  }
  r->cells[r->ncells++] = *c;
  return BERTCL_OK;
}

/* Fits and scores one cell on design matrix X (ntrain + nev, D): train rows first. */
static int fit_cell(run *r, const feat_spec *spec, const char *row, const char *col,
                    const float *X, int D) {
  int mix = spec->kind == FEAT_MIX ? spec->n : 0;
  size_t nt = r->ntrain, ne = r->nev;
  int K = r->K, st;
  double l2 = 0;
  bc_logreg m = {0};
  float *pr = malloc((nt > ne ? nt : ne) * (size_t)K * sizeof *pr);
  int32_t *pred = malloc((nt > ne ? nt : ne) * sizeof *pred);
  if (!pr || !pred) {
    st = bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = choose_l2(r, X, r->y, nt, D, mix, &l2)) != BERTCL_OK) goto done;
  bc_logreg_opts lo = {.l2 = l2, .max_iter = r->o.max_iter, .mix_blocks = mix};
  if ((st = bc_logreg_fit(r->ctx, X, r->y, nt, D, K, &lo, &m)) != BERTCL_OK) goto done;
  bertcl_probe_cell c = {0};
  snprintf(c.row, sizeof c.row, "%s", row);
  snprintf(c.col, sizeof c.col, "%s", col);
  c.l2 = l2;
  c.iters = m.iters;
  c.converged = m.stop != BC_LOGREG_MAX_ITER;
  c.entity_precision = c.entity_recall = c.entity_f1 = NAN;
  bertcl_metrics tm;
  bc_metrics_clear(&tm);
  if ((st = bc_logreg_predict(r->ctx, &m, X, nt, pr)) != BERTCL_OK) goto done;
  argmax_rows(pr, nt, K, pred);
  if (r->no_tok)
    for (size_t i = 0; i < nt; i++)
      if (r->no_tok[i]) pred[i] = r->fallback_tag;
  bc_score_classes(&tm, r->y, pred, nt, K);
  tm.examples = nt;
  c.train_score = tm.accuracy;
  if (r->o.task == BERTCL_PROBE_TOKEN) {
    double p, rc, f1;
    if ((st = entity_scores(r, &r->wtrain, r->y, pred, &p, &rc, &f1)) != BERTCL_OK) goto done;
    c.train_score = f1;
  }
  bc_metrics_clear(&c.metrics);
  if ((st = bc_logreg_predict(r->ctx, &m, X + nt * (size_t)D, ne, pr)) != BERTCL_OK) goto done;
  argmax_rows(pr, ne, K, pred);
  if (r->no_tok)
    for (size_t i = 0; i < ne; i++)
      if (r->no_tok[nt + i]) pred[i] = r->fallback_tag;
  bc_score_classes(&c.metrics, r->y + nt, pred, ne, K);
  c.metrics.examples = ne;
  c.score = c.metrics.accuracy;
  if (r->o.task == BERTCL_PROBE_TOKEN) {
    st = entity_scores(r, &r->wev, r->y + nt, pred, &c.entity_precision, &c.entity_recall,
                       &c.entity_f1);
    if (st != BERTCL_OK) goto done;
    c.score = c.entity_f1;
  }
  if ((st = add_cell(r, &c)) != BERTCL_OK) goto done;
  if (r->best < 0 || c.score > r->cells[r->best].score) {
    r->best = (int)r->ncells - 1;
    r->best_spec = *spec;
    bc_logreg_free(&r->best_model);
    r->best_model = m;
    memset(&m, 0, sizeof m);
  }
  bertcl_progress p = {.event = BERTCL_EVENT_EVAL, .metrics = &c.metrics,
                       .improved = r->best == (int)r->ncells - 1};
  if (r->o.task == BERTCL_PROBE_TOKEN)
    emit(r, &p,
         "%-6s %-6s eval entity F1 %.4f (P %.4f R %.4f), word accuracy %.4f (train F1 %.4f, "
         "l2 %.3g, %d iterations%s)",
         row, col, c.entity_f1, c.entity_precision, c.entity_recall, c.metrics.accuracy,
         c.train_score, l2, c.iters, c.converged ? "" : ", not converged");
  else
    emit(r, &p,
         "%-6s %-6s eval accuracy %.4f macro-F1 %.4f (train %.4f, l2 %.3g, %d iterations%s)",
         row, col, c.metrics.accuracy, c.metrics.macro_f1, c.train_score, l2, c.iters,
         c.converged ? "" : ", not converged");
done:
  bc_logreg_free(&m);
  free(pr);
  free(pred);
  return st;
}

/* Every cell of one pooling from its features F (rows, next * C) of layers ext[0..next). */
static int probe_pooling(run *r, bertcl_pool pool, int words, const float *F, const int *ext,
                         int next, int all_layers) {
  const char *col = words ? (words == 2 ? "mean" : "first") : pool_name(pool);
  int st = BERTCL_OK;
  size_t rows = r->ntrain + r->nev;
  for (int j = 0; j < next && st == BERTCL_OK; j++) {
    feat_spec s = {.pool = pool, .words = words, .kind = FEAT_SINGLE, .n = 1,
                   .layers = {ext[j]}};
    char row[16];
    snprintf(row, sizeof row, "%d", ext[j]);
    int D = 0;
    float *X = cell_matrix(&s, F, rows, ext, next, r->C, &D);
    if (!X) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    st = fit_cell(r, &s, row, col, X, D);
    free(X);
  }
  if (!all_layers || r->o.no_combos || r->nl < 2) return st;
  /* combinations over every requested layer (in the order asked) */
  static const struct {
    unsigned bit;
    feat_kind kind;
    const char *row;
  } combos[] = {{BERTCL_PROBE_LAST4, FEAT_CONCAT, "last4"},
                {BERTCL_PROBE_MEAN, FEAT_MEAN, "mean"},
                {BERTCL_PROBE_MIX, FEAT_MIX, "mix"}};
  for (size_t c = 0; c < 3 && st == BERTCL_OK; c++) {
    if (!(r->o.combos & combos[c].bit)) continue;
    feat_spec s = {.pool = pool, .words = words, .kind = combos[c].kind};
    int first = combos[c].bit == BERTCL_PROBE_LAST4 ? (r->nl > 4 ? r->nl - 4 : 0) : 0;
    if (combos[c].bit == BERTCL_PROBE_LAST4 && r->nl < 4) continue;
    for (int j = first; j < r->nl; j++) s.layers[s.n++] = r->layers[j];
    int D = 0;
    float *X = cell_matrix(&s, F, rows, ext, next, r->C, &D);
    if (!X) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    st = fit_cell(r, &s, combos[c].row, col, X, D);
    free(X);
  }
  return st;
}

/* Extraction options for the texts of rows: pooled features of `pools` over layers ext. */
static void extract_opts(const run *r, bertcl_extract_options *xo, unsigned pools, const int *ext,
                         int next) {
  memset(xo, 0, sizeof *xo);
  xo->pools = pools;
  xo->layers = ext;
  xo->nlayers = next;
  xo->combine = BERTCL_COMBINE_CONCAT;
  xo->normalize = BERTCL_NORMALIZE_OFF;
  xo->max_length = r->o.max_length;
  xo->batch_size = r->o.batch_size;
  xo->strict = 1;
}

/* Says the feature memory up front; returns 1 when every layer's features at once would take
 * more than half the free memory: then one layer per encoder pass (combinations of several
 * layers are skipped). */
static int plan_memory(run *r, const char *what, int nfeat, const char *feat_name) {
  double need = (double)(r->ntrain + r->nev) * r->nl * r->C * nfeat * sizeof(float);
  long pages = sysconf(_SC_AVPHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  double avail = pages > 0 && psize > 0 ? (double)pages * psize : 8e9;
  int per_layer = need > 0.5 * avail;
  bertcl_progress p = {.event = BERTCL_EVENT_INFO};
  emit(r, &p,
       "probe: %zu train + %zu eval %s, %d labels; %d hidden states x %d %s x %d floats = "
       "%.1f MiB of features%s",
       r->ntrain, r->nev, what, r->K, r->nl, nfeat, feat_name, r->C, need / 1048576.0,
       per_layer ? " (more than half the free memory: one layer per encoder pass, no "
                   "combinations)"
                 : "");
  return per_layer;
}

static int run_sequence(run *r, bertcl_encoder *enc, double *t_extract, double *t_fit) {
  int st = BERTCL_OK;
  size_t rows = r->ntrain + r->nev;
  const char **texts = malloc(rows * sizeof *texts), **pairs = malloc(rows * sizeof *pairs);
  if (!texts || !pairs) {
    free(texts), free(pairs);
    return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  }
  int any_pair = 0;
  for (size_t i = 0; i < rows; i++) {
    const bc_text_data *d = i < r->ntrain ? &r->train : &r->ev;
    size_t k = i < r->ntrain ? i : i - r->ntrain;
    texts[i] = d->text[k];
    pairs[i] = d->pair[k];
    any_pair |= pairs[i] != NULL;
  }
  unsigned layer_pools = 0;
  int pooler = 0;
  for (int p = 0; p < r->npools; p++) {
    if (r->pools[p] == BERTCL_POOL_POOLER)
      pooler = 1;
    else
      layer_pools |= (unsigned)r->pools[p];
  }
  int nlp = r->npools - pooler;
  int per_layer = plan_memory(r, "examples", nlp > 0 ? nlp : 1, "poolings");
  for (int pass = 0; pass < (per_layer ? r->nl : 1) && st == BERTCL_OK; pass++) {
    const int *ext = per_layer ? &r->layers[pass] : r->layers;
    int next = per_layer ? 1 : r->nl;
    if (!layer_pools) break;
    bertcl_extract_options xo;
    extract_opts(r, &xo, layer_pools, ext, next);
    bertcl_features *f = NULL;
    double t0 = now_s();
    st = bertcl_extract(enc, r->tok, texts, any_pair ? pairs : NULL, rows, &xo, &f);
    *t_extract += now_s() - t0;
    if (st != BERTCL_OK) {
      bc_fail(r->err, st, "%s", bertcl_last_error(enc));
      break;
    }
    t0 = now_s();
    for (int p = 0; p < r->npools && st == BERTCL_OK; p++) {
      if (r->pools[p] == BERTCL_POOL_POOLER) continue;
      size_t width = 0;
      const float *F = bertcl_features_pooled(f, r->pools[p], &width);
      if (!F || width != (size_t)next * r->C) {
        st = bc_fail(r->err, BERTCL_ERR_INTERNAL, "extraction returned no %s features",
                     pool_name(r->pools[p]));
        break;
      }
      st = probe_pooling(r, r->pools[p], 0, F, ext, next, !per_layer);
    }
    *t_fit += now_s() - t0;
    bertcl_features_free(f);
  }
  if (pooler && st == BERTCL_OK) {
    bertcl_extract_options xo;
    int last = r->L;
    extract_opts(r, &xo, BERTCL_POOL_POOLER, &last, 1);
    bertcl_features *f = NULL;
    double t0 = now_s();
    st = bertcl_extract(enc, r->tok, texts, any_pair ? pairs : NULL, rows, &xo, &f);
    *t_extract += now_s() - t0;
    if (st != BERTCL_OK) {
      bc_fail(r->err, st, "%s", bertcl_last_error(enc));
    } else {
      size_t width = 0;
      const float *F = bertcl_features_pooled(f, BERTCL_POOL_POOLER, &width);
      feat_spec s = {.pool = BERTCL_POOL_POOLER, .kind = FEAT_SINGLE, .n = 1, .layers = {last}};
      char row[16];
      snprintf(row, sizeof row, "%d", last);
      t0 = now_s();
      st = F ? fit_cell(r, &s, row, "pooler", F, (int)width)
             : bc_fail(r->err, BERTCL_ERR_INTERNAL, "extraction returned no pooler output");
      *t_fit += now_s() - t0;
    }
    bertcl_features_free(f);
  }
  free(texts);
  free(pairs);
  return st;
}

/* ---- token task: word vectors ------------------------------------------------------------ */

/* The longest window of a sentence: --max-len, else the tokenizer's limit, within the model's
 * positions. */
static size_t window_length(const run *r, const bertcl_model *model) {
  size_t m = r->o.max_length ? r->o.max_length : bertcl_tokenizer_max_length(r->tok);
  size_t mp = (size_t)bc_model_config(model)->max_position;
  return m > mp ? mp : m;
}

/* Word vectors of d's words (each word tokenized on its own, as is_split_into_words; sentences
 * longer than a window split into windows of whole words, train/align.h) from hidden states
 * ext[0..next) side by side, words mode 1 (first subword) or 2 (mean of subwords): rows
 * base .. base + words of F (rows, next * C), in word order. Words the tokenizer makes no token
 * of keep no_tok[row] = 1 (their rows stay zero). */
static int word_features(bc_err *err, bc_encoder *enc, const bertcl_tokenizer *tok,
                         const bc_word_data *d, size_t window, int words, size_t batch_size,
                         const int *ext, int next, int C, float *F, size_t base,
                         unsigned char *no_tok) {
  bc_examples x = {0};
  bc_align_stats stats = {0};
  bc_align_options ao = {.max_length = window};
  bc_bucket_plan plan = {0};
  bc_batch_buf bb = {0};
  int32_t *wids = NULL, pad_id = 0, pad_type = 0;
  int *lens = NULL;
  float *out = NULL;
  size_t width = (size_t)next * C, cap_out = 0;
  int st = bc_examples_from_words(err, &x, tok, d, NULL, &ao, &stats);
  if (st == BERTCL_OK) st = bc_tokenizer_pad(err, tok, &pad_id, &pad_type);
  if (st != BERTCL_OK) goto done;
  for (size_t i = 0; i < d->start[d->n]; i++) no_tok[base + i] = 1;
  lens = malloc((x.n ? x.n : 1) * sizeof *lens);
  if (!lens) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < x.n; i++) lens[i] = (int)(x.start[i + 1] - x.start[i]);
  st = bc_bucket_make(err, lens, x.n, 1, 8192, batch_size ? (int)batch_size : 128, &plan);
  for (size_t bi = 0; bi < plan.nbatches && st == BERTCL_OK; bi++) {
    const size_t *idx = plan.order + plan.batches[bi].start;
    size_t n = plan.batches[bi].count;
    if ((st = bc_examples_batch(err, &bb, &x, idx, n, pad_id, pad_type)) != BERTCL_OK) break;
    int32_t *nw = realloc(wids, (size_t)bb.B * bb.T * sizeof *nw);
    if (!nw) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      break;
    }
    wids = nw;
    /* window-local word ids: a word's first subword and its later subwords share it; the
     * template's first and last tokens and padding are -1 */
    size_t rows = 0;
    for (size_t b = 0; b < n; b++) {
      size_t e = idx[b], len = x.start[e + 1] - x.start[e];
      const int32_t *tw = x.tok_word + x.start[e];
      int32_t first = -1, last = -1, cur = -1;
      for (size_t t = 0; t < len; t++)
        if (tw[t] >= 0) {
          if (first < 0) first = tw[t];
          last = tw[t];
        }
      for (int t = 0; t < bb.T; t++) {
        int32_t v = -1;
        if ((size_t)t < len && t > 0 && (size_t)t + 1 < len) {
          if (tw[t] >= 0) cur = tw[t] - first;
          v = cur;
        }
        wids[b * (size_t)bb.T + (size_t)t] = v;
      }
      if (first >= 0) rows += (size_t)(last - first + 1);
    }
    if (rows * width > cap_out) {
      float *no = realloc(out, rows * width * sizeof *no);
      if (!no) {
        st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        break;
      }
      out = no, cap_out = rows * width;
    }
    st = bc_encoder_forward(enc, bb.ids, bb.types, bb.mask, bb.B, bb.T, ext, next);
    size_t got = 0;
    if (st == BERTCL_OK && rows)
      st = bc_encoder_read_words(enc, wids, words, BC_COMBINE_CONCAT, out, &got);
    if (st != BERTCL_OK) break; /* the encoder's message is in the context's err */
    if (got != rows) {
      st = bc_fail(err, BERTCL_ERR_INTERNAL, "%zu word rows for %zu words", got, rows);
      break;
    }
    size_t k = 0;
    for (size_t b = 0; b < n; b++) {
      size_t e = idx[b], len = x.start[e + 1] - x.start[e];
      const int32_t *tw = x.tok_word + x.start[e];
      int32_t first = -1, last = -1;
      for (size_t t = 0; t < len; t++)
        if (tw[t] >= 0) {
          if (first < 0) first = tw[t];
          last = tw[t];
        }
      if (first < 0) continue;
      size_t s0 = base + d->start[x.sentence[e]];
      for (int32_t w = first; w <= last; w++, k++)
        memcpy(F + (s0 + (size_t)w) * width, out + k * width, width * sizeof *F);
      for (size_t t = 0; t < len; t++)
        if (tw[t] >= 0) no_tok[s0 + (size_t)tw[t]] = 0;
    }
  }
  /* words without a token: zero features (their prediction is replaced anyway) */
  for (size_t i = 0; i < d->start[d->n] && st == BERTCL_OK; i++)
    if (no_tok[base + i]) memset(F + (base + i) * width, 0, width * sizeof *F);
done:
  bc_examples_free(&x);
  bc_bucket_free(&plan);
  bc_batch_buf_free(&bb);
  free(wids);
  free(lens);
  free(out);
  return st;
}

static int run_token(run *r, bertcl_encoder *pub, double *t_extract, double *t_fit) {
  bertcl_ctx *ectx = NULL;
  bc_encoder *enc = bc_encoder_unwrap(pub, &ectx);
  int st = BERTCL_OK;
  size_t rows = r->ntrain + r->nev, window = window_length(r, r->model);
  int per_layer = plan_memory(r, "words", 1, r->o.words == 2 ? "word means" : "first subwords");
  for (int pass = 0; pass < (per_layer ? r->nl : 1) && st == BERTCL_OK; pass++) {
    const int *ext = per_layer ? &r->layers[pass] : r->layers;
    int next = per_layer ? 1 : r->nl;
    float *F = malloc(rows * (size_t)next * r->C * sizeof *F);
    if (!F) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory: %zu words x %d x %d floats",
                           rows, next, r->C);
    double t0 = now_s();
    st = word_features(r->err, enc, r->tok, &r->wtrain, window, r->o.words, r->o.batch_size,
                       ext, next, r->C, F, 0, r->no_tok);
    if (st == BERTCL_OK)
      st = word_features(r->err, enc, r->tok, &r->wev, window, r->o.words, r->o.batch_size, ext,
                         next, r->C, F, r->ntrain, r->no_tok);
    *t_extract += now_s() - t0;
    t0 = now_s();
    if (st == BERTCL_OK) st = probe_pooling(r, 0, r->o.words, F, ext, next, !per_layer);
    *t_fit += now_s() - t0;
    free(F);
  }
  return st;
}

/* ---- outputs ---------------------------------------------------------------------------- */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int write_json(run *r, const char *name, json_t *j) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", r->o.output_dir, name);
  char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  if (!text) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  size_t n = strlen(text);
  text[n] = '\n'; /* json_dumps leaves room for the NUL: write the newline in its place */
  int st = bc_write_file_atomic(r->err, path, text, n + 1);
  free(text);
  return st;
}

static int write_table(run *r, const bertcl_probe_result *res) {
  json_t *j = json_object(), *cells = json_array();
  json_object_set_new(j, "format", json_string(PROBE_FORMAT));
  json_object_set_new(j, "model", json_string(bc_model_dir(r->model)));
  json_object_set_new(j, "task", json_string(r->o.task == BERTCL_PROBE_TOKEN ? "token" : "sequence"));
  json_object_set_new(j, "train_file", json_string(r->o.train_file));
  json_object_set_new(j, "eval_file", json_string(r->o.eval_file));
  json_object_set_new(j, "train_rows", json_integer((json_int_t)res->train_rows));
  json_object_set_new(j, "eval_rows", json_integer((json_int_t)res->eval_rows));
  json_object_set_new(j, "num_labels", json_integer(r->K));
  json_object_set_new(j, "metric", json_string(r->o.task == BERTCL_PROBE_TOKEN ? "entity_f1" : "accuracy"));
  json_object_set_new(j, "extract_seconds", json_real(res->extract_seconds));
  json_object_set_new(j, "fit_seconds", json_real(res->fit_seconds));
  json_object_set_new(j, "l2", r->o.l2 == BERTCL_PROBE_L2_AUTO      ? json_string("auto")
                               : r->o.l2 == BERTCL_PROBE_L2_DEFAULT ? json_string("1/N")
                                                                    : json_real(r->o.l2));
  for (size_t i = 0; i < res->ncells; i++) {
    const bertcl_probe_cell *c = &res->cells[i];
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "row", c->row, "col", c->col,
                          "score", num(c->score), "train_score", num(c->train_score),
                          "accuracy", num(c->metrics.accuracy), "macro_f1",
                          num(c->metrics.macro_f1), "f1", num(c->metrics.f1));
    if (r->o.task == BERTCL_PROBE_TOKEN) {
      json_object_set_new(o, "entity_precision", num(c->entity_precision));
      json_object_set_new(o, "entity_recall", num(c->entity_recall));
      json_object_set_new(o, "entity_f1", num(c->entity_f1));
    }
    json_object_set_new(o, "l2", json_real(c->l2));
    json_object_set_new(o, "iterations", json_integer(c->iters));
    json_object_set_new(o, "converged", json_boolean(c->converged));
    json_object_set_new(o, "best", json_boolean((int)i == res->best));
    json_array_append_new(cells, o);
  }
  json_object_set_new(j, "cells", cells);
  int st = write_json(r, "probe.json", j);
  json_decref(j);
  return st;
}

static int write_plot(run *r, const bertcl_probe_result *res) {
  const char *ticks[MAX_LAYERS];
  char tickbuf[MAX_LAYERS][16];
  for (int j = 0; j < r->nl; j++) {
    snprintf(tickbuf[j], sizeof tickbuf[j], r->layers[j] == 0 ? "emb" : "%d", r->layers[j]);
    ticks[j] = tickbuf[j];
  }
  const char *cols[4];
  int ncols = 0;
  for (size_t i = 0; i < res->ncells; i++) {
    int seen = 0;
    for (int c = 0; c < ncols; c++) seen |= !strcmp(cols[c], res->cells[i].col);
    if (!seen && ncols < 4) cols[ncols++] = res->cells[i].col;
  }
  double *ys = malloc(((size_t)ncols * r->nl + 1) * sizeof *ys);
  bc_plot_series series[4];
  bc_plot_hline hl[3];
  char hlname[3][64];
  size_t ns = 0, nh = 0;
  int best_s = -1, best_p = -1;
  if (!ys) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  for (int p = 0; p < ncols; p++) {
    double *y = ys + (size_t)ns * r->nl;
    int any = 0;
    for (int j = 0; j < r->nl; j++) {
      y[j] = NAN;
      char row[16];
      snprintf(row, sizeof row, "%d", r->layers[j]);
      for (size_t i = 0; i < res->ncells; i++)
        if (!strcmp(res->cells[i].row, row) && !strcmp(res->cells[i].col, cols[p])) {
          y[j] = res->cells[i].score;
          any = 1;
          if ((int)i == res->best) best_s = (int)ns, best_p = j;
        }
    }
    if (any) series[ns++] = (bc_plot_series){cols[p], y};
  }
  const char *rows[] = {"last4", "mean", "mix"};
  for (int c = 0; c < 3; c++) { /* each combination's best pooling as a reference line */
    int bi = -1;
    for (size_t i = 0; i < res->ncells; i++)
      if (!strcmp(res->cells[i].row, rows[c]) && (bi < 0 || res->cells[i].score > res->cells[bi].score))
        bi = (int)i;
    if (bi < 0) continue;
    snprintf(hlname[nh], sizeof hlname[nh], "%s (%s): %.4f", rows[c], res->cells[bi].col,
             res->cells[bi].score);
    hl[nh] = (bc_plot_hline){hlname[nh], res->cells[bi].score};
    nh++;
  }
  char title[256];
  const char *slash = strrchr(bc_model_dir(r->model), '/');
  snprintf(title, sizeof title, "Linear probes of %s: eval %s", slash ? slash + 1 : bc_model_dir(r->model),
           r->o.task == BERTCL_PROBE_TOKEN ? "entity F1" : "accuracy");
  bc_plot plot = {.title = title, .x_label = "hidden state (emb = embeddings)",
                  .y_label = r->o.task == BERTCL_PROBE_TOKEN ? "entity F1" : "accuracy",
                  .x_ticks = ticks, .npoints = (size_t)r->nl, .series = series, .nseries = ns,
                  .hlines = hl, .nhlines = nh, .best_series = best_s, .best_point = best_p};
  char *svg = NULL;
  int st = bc_plot_svg(r->err, &plot, &svg);
  free(ys);
  if (st != BERTCL_OK) return st;
  char path[4096];
  snprintf(path, sizeof path, "%s/probe.svg", r->o.output_dir);
  st = bc_write_file_atomic(r->err, path, svg, strlen(svg));
  free(svg);
  return st;
}

/* The best cell's classifier: probe.safetensors (standardisation, weights, bias, mix) and
 * probe_config.json (the encoder, the features, the labels). */
static int write_best(run *r) {
  const bc_logreg *m = &r->best_model;
  int KW = m->K == 2 ? 1 : m->K;
  bc_st_out_tensor t[5] = {
      {"mean", m->mean, 1, {(size_t)m->in_dim}, BC_OUT_F32},
      {"scale", m->scale, 1, {(size_t)m->in_dim}, BC_OUT_F32},
      {"weight", m->W, 2, {(size_t)KW, (size_t)m->D}, BC_OUT_F32},
      {"bias", m->b, 1, {(size_t)KW}, BC_OUT_F32},
      {"mix", m->mix, 1, {(size_t)m->mix_blocks}, BC_OUT_F32}};
  char path[4096];
  snprintf(path, sizeof path, "%s/probe.safetensors", r->o.output_dir);
  bc_st_meta meta[] = {{"format", PROBE_FORMAT}};
  int st = bc_st_write(r->err, path, t, m->mix ? 5 : 4, meta, 1);
  if (st != BERTCL_OK) return st;
  char *abs = realpath(bc_model_dir(r->model), NULL);
  json_t *j = json_object(), *layers = json_array(), *labels = json_array();
  for (int i = 0; i < r->best_spec.n; i++)
    json_array_append_new(layers, json_integer(r->best_spec.layers[i]));
  for (int k = 0; k < r->K; k++) json_array_append_new(labels, json_string(r->lm.names[k]));
  const bertcl_probe_cell *c = &r->cells[r->best];
  json_object_set_new(j, "format", json_string(PROBE_FORMAT));
  json_object_set_new(j, "model", json_string(abs ? abs : bc_model_dir(r->model)));
  json_object_set_new(j, "task", json_string(r->o.task == BERTCL_PROBE_TOKEN ? "token" : "sequence"));
  if (r->o.task == BERTCL_PROBE_TOKEN)
    json_object_set_new(j, "words", json_string(r->best_spec.words == 2 ? "mean" : "first"));
  else
    json_object_set_new(j, "pool", json_string(pool_name(r->best_spec.pool)));
  json_object_set_new(j, "combine", json_string(kind_name(r->best_spec.kind)));
  json_object_set_new(j, "layers", layers);
  json_object_set_new(j, "max_length", json_integer((json_int_t)r->o.max_length));
  json_object_set_new(j, "labels", labels);
  json_object_set_new(j, "row", json_string(c->row));
  json_object_set_new(j, "col", json_string(c->col));
  json_object_set_new(j, "eval_score", num(c->score));
  json_object_set_new(j, "l2", json_real(c->l2));
  free(abs);
  st = write_json(r, "probe_config.json", j);
  json_decref(j);
  return st;
}

int bertcl_probe(bertcl_ctx *ctx, const bertcl_model *model, const bertcl_tokenizer *tok,
                 const bertcl_probe_options *opt, bertcl_progress_fn progress, void *user,
                 bertcl_probe_result *result) {
  if (result) memset(result, 0, sizeof *result);
  if (!ctx) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_probe: ctx is NULL");
  if (!model || !tok || !opt || !opt->train_file || !opt->eval_file || !opt->output_dir)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "bertcl_probe: model, tokenizer, train_file, eval_file and output_dir are "
                   "required");
  run r = {.ctx = ctx, .err = &ctx->err, .model = model, .tok = tok, .o = *opt, .fn = progress,
           .user = user, .best = -1};
  const bc_config *cfg = bc_model_config(model);
  r.L = cfg->num_layers;
  r.C = cfg->hidden_size;
  bertcl_encoder *enc = NULL;
  bertcl_probe_result res = {0};
  int st = resolve_layers(&r);
  if (st != BERTCL_OK) goto done;
  if (r.o.task == BERTCL_PROBE_TOKEN && r.o.words != 1 && r.o.words != 2) {
    st = bc_fail(r.err, BERTCL_ERR_INVALID_ARG, "words: 1 (first subword) or 2 (mean), got %d",
                 r.o.words);
    goto done;
  }
  unsigned pools = r.o.pools ? r.o.pools : (BERTCL_POOL_CLS | BERTCL_POOL_MEAN);
  const bertcl_pool order[] = {BERTCL_POOL_CLS, BERTCL_POOL_MEAN, BERTCL_POOL_MAX,
                               BERTCL_POOL_POOLER};
  for (int p = 0; p < 4; p++)
    if (pools & (unsigned)order[p]) r.pools[r.npools++] = order[p];
  if (!r.npools || (pools & ~(unsigned)(BERTCL_POOL_CLS | BERTCL_POOL_MEAN | BERTCL_POOL_MAX |
                                        BERTCL_POOL_POOLER))) {
    st = bc_fail(r.err, BERTCL_ERR_INVALID_ARG, "pools: OR of bertcl_pool values (got %#x)",
                 pools);
    goto done;
  }
  if (r.o.task == BERTCL_PROBE_TOKEN) r.npools = 0;
  if (r.o.task == BERTCL_PROBE_SEQUENCE && (pools & BERTCL_POOL_POOLER) &&
      !bc_model_weights(model)->pool_w) {
    st = bc_fail(r.err, BERTCL_ERR_UNSUPPORTED,
                 "%s has no pooler (pooler.dense): probe cls, mean or max instead",
                 bc_model_dir(model));
    goto done;
  }
  st = r.o.task == BERTCL_PROBE_TOKEN ? read_token_data(&r) : read_sequence_data(&r);
  if (st != BERTCL_OK) goto done;
  if (bc_mkdirs(r.o.output_dir) != 0) {
    st = bc_fail(r.err, BERTCL_ERR_IO, "cannot create %s: %s", r.o.output_dir, strerror(errno));
    goto done;
  }
  st = bertcl_encoder_create(&enc, ctx, model);
  if (st != BERTCL_OK) {
    bc_fail(r.err, st, "%s", bertcl_last_error(NULL));
    goto done;
  }
  res.train_rows = r.ntrain;
  res.eval_rows = r.nev;
  res.num_labels = r.K;
  st = r.o.task == BERTCL_PROBE_TOKEN ? run_token(&r, enc, &res.extract_seconds, &res.fit_seconds)
                                      : run_sequence(&r, enc, &res.extract_seconds, &res.fit_seconds);
  if (st != BERTCL_OK) goto done;
  res.cells = r.cells;
  res.ncells = r.ncells;
  res.best = r.best;
  if ((st = write_table(&r, &res)) != BERTCL_OK) goto done;
  if ((st = write_plot(&r, &res)) != BERTCL_OK) goto done;
  if ((st = write_best(&r)) != BERTCL_OK) goto done;
  {
    const bertcl_probe_cell *b = &r.cells[r.best];
    bertcl_progress p = {.event = BERTCL_EVENT_DONE, .metrics = &b->metrics};
    emit(&r, &p,
         "best: hidden state %s, %s: eval %s %.4f; extraction %.1f s, %zu probes %.1f s; "
         "written to %s",
         b->row, b->col, r.o.task == BERTCL_PROBE_TOKEN ? "entity F1" : "accuracy", b->score,
         res.extract_seconds, r.ncells, res.fit_seconds, r.o.output_dir);
  }
  if (result) {
    *result = res;
    r.cells = NULL; /* owned by the result now */
  }
done:
  bertcl_encoder_free(enc);
  run_free(&r);
  return st;
}

/* ---- prediction with a saved probe -------------------------------------------------------- */

int bertcl_probe_dir_is_probe(const char *dir) {
  if (!dir) return 0;
  char path[4096];
  snprintf(path, sizeof path, "%s/probe_config.json", dir);
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static const float *st_f32(bc_err *err, const bc_st_file *f, const char *path, const char *name,
                           size_t numel, int *st) {
  const bc_st_tensor *t = bc_st_find(f, name);
  if (!t || t->dtype != BC_DT_F32 || t->numel != numel) {
    *st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor '%s' missing or not F32 of %zu values",
                  path, name, numel);
    return NULL;
  }
  return (const float *)t->data;
}

/* A probe loaded from its directory: the features, the classifier and the labels. */
typedef struct {
  json_t *cfg;
  int token;              /* token task */
  feat_spec spec;
  int K;
  char **names;           /* (K) */
  size_t max_length;
  bc_st_file *sf;
  bc_logreg m;            /* points into sf */
  bertcl_model *model;
  bertcl_tokenizer *tok;
  bertcl_encoder *enc;
} saved_probe;

static void saved_free(saved_probe *p) {
  if (p->names)
    for (int k = 0; k < p->K; k++) free(p->names[k]);
  free(p->names);
  bertcl_encoder_free(p->enc);
  bertcl_tokenizer_free(p->tok);
  bertcl_model_free(p->model);
  bc_st_close(p->sf);
  json_decref(p->cfg);
}

static int saved_load(bertcl_ctx *ctx, const char *dir, saved_probe *p) {
  bc_err *err = &ctx->err;
  char path[4096], stpath[4096];
  snprintf(path, sizeof path, "%s/probe_config.json", dir);
  snprintf(stpath, sizeof stpath, "%s/probe.safetensors", dir);
  json_error_t je;
  if (!(p->cfg = json_load_file(path, 0, &je)))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: %s (line %d)", path, je.text, je.line);
  json_t *c = p->cfg;
  const char *fmt = json_string_value(json_object_get(c, "format"));
  const char *mdir = json_string_value(json_object_get(c, "model"));
  const char *task = json_string_value(json_object_get(c, "task"));
  const char *pool = json_string_value(json_object_get(c, "pool"));
  const char *words = json_string_value(json_object_get(c, "words"));
  const char *comb = json_string_value(json_object_get(c, "combine"));
  json_t *jl = json_object_get(c, "layers"), *jlab = json_object_get(c, "labels");
  p->token = task && !strcmp(task, "token");
  if (p->token) p->spec.words = words && !strcmp(words, "mean") ? 2 : 1;
  if (!fmt || strcmp(fmt, PROBE_FORMAT) || !mdir || !task ||
      (!p->token && !pool_from_name(pool, &p->spec.pool)) || (p->token && !words) || !comb ||
      !json_is_array(jl) || json_array_size(jl) < 1 || json_array_size(jl) > MAX_LAYERS ||
      !json_is_array(jlab) || json_array_size(jlab) < 2 || json_array_size(jlab) > 512)
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: not a %s file (format, model, task, pool or words, combine, layers and "
                   "labels needed)",
                   path, PROBE_FORMAT);
  p->spec.kind = !strcmp(comb, "concat") ? FEAT_CONCAT
                 : !strcmp(comb, "mean") ? FEAT_MEAN
                 : !strcmp(comb, "mix")  ? FEAT_MIX
                                         : FEAT_SINGLE;
  p->spec.n = (int)json_array_size(jl);
  for (int i = 0; i < p->spec.n; i++)
    p->spec.layers[i] = (int)json_integer_value(json_array_get(jl, (size_t)i));
  p->max_length = (size_t)json_integer_value(json_object_get(c, "max_length"));
  p->K = (int)json_array_size(jlab);
  if (!(p->names = calloc((size_t)p->K, sizeof *p->names)))
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  for (int k = 0; k < p->K; k++) {
    const char *s = json_string_value(json_array_get(jlab, (size_t)k));
    if (!s || !(p->names[k] = strdup(s)))
      return bc_fail(err, s ? BERTCL_ERR_NOMEM : BERTCL_ERR_FORMAT, "%s: labels[%d]", path, k);
  }
  int st;
  if ((st = bertcl_model_load(&p->model, mdir)) != BERTCL_OK ||
      (st = bertcl_tokenizer_load(&p->tok, mdir)) != BERTCL_OK)
    return bc_fail(err, st, "the probe's encoder %s: %s", mdir, bertcl_last_error(NULL));
  const bc_config *mc = bc_model_config(p->model);
  for (int i = 0; i < p->spec.n; i++)
    if (p->spec.layers[i] < 0 || p->spec.layers[i] > mc->num_layers)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: layer %d is not in %s (0..%d)", path,
                     p->spec.layers[i], mdir, mc->num_layers);
  int C = mc->hidden_size, KW = p->K == 2 ? 1 : p->K;
  bc_logreg *m = &p->m;
  m->K = p->K;
  m->in_dim = p->spec.kind == FEAT_MEAN ? C : p->spec.n * C;
  m->D = p->spec.kind == FEAT_MIX ? C : m->in_dim;
  m->mix_blocks = p->spec.kind == FEAT_MIX ? p->spec.n : 0;
  if ((st = bc_st_open(err, stpath, &p->sf)) != BERTCL_OK) return st;
  st = BERTCL_OK;
  m->mean = (float *)st_f32(err, p->sf, stpath, "mean", (size_t)m->in_dim, &st);
  if (m->mean) m->scale = (float *)st_f32(err, p->sf, stpath, "scale", (size_t)m->in_dim, &st);
  if (m->scale) m->W = (float *)st_f32(err, p->sf, stpath, "weight", (size_t)KW * m->D, &st);
  if (m->W) m->b = (float *)st_f32(err, p->sf, stpath, "bias", (size_t)KW, &st);
  if (m->b && m->mix_blocks)
    m->mix = (float *)st_f32(err, p->sf, stpath, "mix", (size_t)m->mix_blocks, &st);
  if (st != BERTCL_OK) return st;
  if ((st = bertcl_encoder_create(&p->enc, ctx, p->model)) != BERTCL_OK)
    return bc_fail(err, st, "%s", bertcl_last_error(NULL));
  return BERTCL_OK;
}

/* Output lines, to a durable file or standard output. */
typedef struct {
  bc_afile f;
  int to_file;
} sink;

static int sink_put(bc_err *err, sink *o, const char *text) {
  if (o->to_file) return bc_afile_write(err, &o->f, text, strlen(text));
  if (fputs(text, stdout) < 0) return bc_fail(err, BERTCL_ERR_IO, "write failed: %s", strerror(errno));
  return BERTCL_OK;
}

/* Class probabilities pr (n, K) of a probe's design matrix X (n, in_dim). */
static int classify_rows(bertcl_ctx *ctx, const saved_probe *p, const float *X, size_t n,
                         float **pr) {
  *pr = malloc((n ? n : 1) * (size_t)p->K * sizeof **pr);
  if (!*pr) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  return n ? bc_logreg_predict(ctx, &p->m, X, n, *pr) : BERTCL_OK;
}

static int predict_sequence(bertcl_ctx *ctx, saved_probe *p, const bertcl_predict_options *opt,
                            sink *out) {
  bc_err *err = &ctx->err;
  bc_text_data d = {0};
  bertcl_features *feats = NULL;
  float *X = NULL, *pr = NULL;
  bc_text_columns cols = {opt->text_column, opt->pair_column, NULL};
  int st = bc_text_data_read(err, opt->input_file, &cols, BC_DATA_PLAIN_OK, &d);
  if (st != BERTCL_OK) return st;
  int any_pair = 0, C = bc_model_config(p->model)->hidden_size, D = 0;
  for (size_t i = 0; i < d.n; i++) any_pair |= d.pair[i] != NULL;
  if (d.n) {
    bertcl_extract_options xo = {.pools = (unsigned)p->spec.pool, .layers = p->spec.layers,
                                 .nlayers = p->spec.n, .combine = BERTCL_COMBINE_CONCAT,
                                 .normalize = BERTCL_NORMALIZE_OFF, .max_length = p->max_length,
                                 .batch_size = opt->batch_size, .strict = 1};
    st = bertcl_extract(p->enc, p->tok, (const char *const *)d.text,
                        any_pair ? (const char *const *)d.pair : NULL, d.n, &xo, &feats);
    if (st != BERTCL_OK) {
      bc_fail(err, st, "%s", bertcl_last_error(p->enc));
      goto done;
    }
    size_t width = 0;
    const float *F = bertcl_features_pooled(feats, p->spec.pool, &width);
    X = F ? cell_matrix(&p->spec, F, d.n, p->spec.layers, p->spec.n, C, &D) : NULL;
    if (!X || D != p->m.in_dim) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      goto done;
    }
  }
  if ((st = classify_rows(ctx, p, X, d.n, &pr)) != BERTCL_OK) goto done;
  for (size_t i = 0; i < d.n && st == BERTCL_OK; i++) {
    const float *q = pr + i * (size_t)p->K;
    int bk = 0;
    for (int k = 1; k < p->K; k++)
      if (q[k] > q[bk]) bk = k;
    json_t *o = json_object(), *jp = json_object();
    json_object_set_new(o, "label", json_string(p->names[bk]));
    for (int k = 0; k < p->K; k++) json_object_set_new(jp, p->names[k], json_real(q[k]));
    json_object_set_new(o, "probabilities", jp);
    char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!js) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      break;
    }
    st = sink_put(err, out, js);
    if (st == BERTCL_OK) st = sink_put(err, out, "\n");
    free(js);
  }
done:
  free(X);
  free(pr);
  bertcl_features_free(feats);
  bc_text_data_free(&d);
  return st;
}

/* Token probes: CoNLL in, the input's lines with the predicted tag appended out (what conlleval
 * reads); JSONL words in, {"tokens": [...], "tags": [...]} a line out. */
static int predict_tokens(bertcl_ctx *ctx, saved_probe *p, const bertcl_predict_options *opt,
                          sink *out) {
  bc_err *err = &ctx->err;
  bc_word_data d = {0};
  bc_word_columns cols = {.tag_column = -1};
  float *F = NULL, *X = NULL, *pr = NULL;
  unsigned char *no_tok = NULL;
  int st = bc_words_read(err, opt->input_file, &cols, 0, &d);
  if (st != BERTCL_OK) return st;
  const bc_config *mc = bc_model_config(p->model);
  int C = mc->hidden_size, D = 0;
  size_t nw = d.start[d.n], window = p->max_length ? p->max_length
                                                  : bertcl_tokenizer_max_length(p->tok);
  if (window > (size_t)mc->max_position) window = (size_t)mc->max_position;
  bertcl_ctx *ectx = NULL;
  bc_encoder *enc = bc_encoder_unwrap(p->enc, &ectx);
  F = malloc((nw ? nw : 1) * (size_t)p->spec.n * C * sizeof *F);
  no_tok = calloc(nw ? nw : 1, 1);
  if (!F || !no_tok) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (nw)
    st = word_features(err, enc, p->tok, &d, window, p->spec.words, opt->batch_size,
                       p->spec.layers, p->spec.n, C, F, 0, no_tok);
  if (st == BERTCL_OK && nw) {
    X = cell_matrix(&p->spec, F, nw, p->spec.layers, p->spec.n, C, &D);
    if (!X) st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  if (st == BERTCL_OK) st = classify_rows(ctx, p, X, nw, &pr);
  int fallback = 0;
  for (int k = 0; k < p->K; k++)
    if (!strcmp(p->names[k], "O")) fallback = k;
  for (size_t s = 0; s < d.n && st == BERTCL_OK; s++) {
    json_t *o = d.raw ? NULL : json_object(), *jw = NULL, *jt = NULL;
    if (o) {
      json_object_set_new(o, "tokens", jw = json_array());
      json_object_set_new(o, "tags", jt = json_array());
    }
    for (size_t w = d.start[s]; w < d.start[s + 1] && st == BERTCL_OK; w++) {
      const float *q = pr + w * (size_t)p->K;
      int bk = 0;
      for (int k = 1; k < p->K; k++)
        if (q[k] > q[bk]) bk = k;
      if (no_tok[w]) bk = fallback;
      if (o) {
        json_array_append_new(jw, json_string(d.words[w]));
        json_array_append_new(jt, json_string(p->names[bk]));
      } else {
        st = sink_put(err, out, d.raw[w]);
        if (st == BERTCL_OK) st = sink_put(err, out, " ");
        if (st == BERTCL_OK) st = sink_put(err, out, p->names[bk]);
        if (st == BERTCL_OK) st = sink_put(err, out, "\n");
      }
    }
    if (o) {
      char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
      json_decref(o);
      if (!js) {
        st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        break;
      }
      st = sink_put(err, out, js);
      free(js);
    }
    if (st == BERTCL_OK) st = sink_put(err, out, "\n");
  }
done:
  free(F);
  free(X);
  free(pr);
  free(no_tok);
  bc_word_data_free(&d);
  return st;
}

int bertcl_probe_predict(bertcl_ctx *ctx, const char *probe_dir, const bertcl_predict_options *opt,
                         bertcl_progress_fn progress, void *user) {
  (void)progress, (void)user;
  if (!ctx) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_probe_predict: ctx is NULL");
  bc_err *err = &ctx->err;
  if (!probe_dir || !opt || !opt->input_file)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bertcl_probe_predict: NULL argument");
  saved_probe p = {0};
  sink out = {.f = {.fd = -1}};
  int st = saved_load(ctx, probe_dir, &p);
  if (st == BERTCL_OK && opt->output_file && strcmp(opt->output_file, "-")) {
    st = bc_afile_open(err, &out.f, opt->output_file);
    out.to_file = st == BERTCL_OK;
  }
  if (st == BERTCL_OK)
    st = p.token ? predict_tokens(ctx, &p, opt, &out) : predict_sequence(ctx, &p, opt, &out);
  if (out.to_file) { /* complete: renamed into place; not: the temporary file goes */
    if (st == BERTCL_OK)
      st = bc_afile_commit(err, &out.f);
    else
      bc_afile_abort(&out.f);
  }
  saved_free(&p);
  return st;
}
