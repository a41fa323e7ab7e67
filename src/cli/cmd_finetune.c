/* bertcl finetune: BertForSequenceClassification fine-tuning on the OpenCL device
 * (src/train/trainer.h), checkpoints and --resume, export that transformers loads;
 * bertcl predict: labels and probabilities of a fine-tuned model. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/durable.h"
#include "bertcl.h"
#include "cli.h"
#include "encoder/encoder.h"
#include "io/writers.h"
#include "job/job.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "ref/ref_train.h"
#include "runtime/runtime.h"
#include "train/trainer.h"

void bc_cmd_finetune_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl finetune -m MODEL_DIR --train FILE -o OUT_DIR [--eval FILE]\n"
          "                       [--epochs 3] [--lr 2e-5] [--batch-size 32] [--max-len 128]\n"
          "                       [--warmup-ratio 0] [--weight-decay 0] [--grad-accum 1]\n"
          "                       [--max-grad-norm 1] [--seed 42] [--eval-every N]\n"
          "                       [--save-every N] [--freeze-encoder] [--resume] [--device D]\n"
          "                       [--task auto|classification|regression] [--num-labels N]\n\n"
          "Fine-tunes a BERT encoder with a sequence-classification head (pooler -> dropout ->\n"
          "linear, as transformers' BertForSequenceClassification) on labelled text, on the\n"
          "OpenCL device: cross-entropy (classification) or MSE (regression, num_labels 1),\n"
          "AdamW (no decay on biases and LayerNorm weights),\n"
          "linear warm-up and decay, clipping by global norm, gradient accumulation, dropout\n"
          "from config.json with a counter-based RNG (a seed reproduces a run exactly).\n\n"
          "Input: JSONL lines {\"text\": ..., \"text_pair\": ..., \"label\": ...}, or TSV/CSV with\n"
          "a header (.tsv: tab-separated; .csv: comma-separated, double quotes). Labels are\n"
          "strings or integers (classification; the mapping is saved as id2label/label2id), or\n"
          "numbers (regression: when every label is a number and at least one is written as a\n"
          "non-integer, 3.8 or 5.0 or a JSON float, as a float column in datasets; or when the\n"
          "model is already a regression model; or with --task regression / --num-labels 1).\n"
          "Regression saves num_labels 1 and problem_type \"regression\" in config.json.\n\n"
          "OUT_DIR: config.json (BertForSequenceClassification), model.safetensors (Hugging Face\n"
          "names), the tokenizer files: AutoModelForSequenceClassification.from_pretrained loads\n"
          "it. With --eval it holds the checkpoint of best eval accuracy (regression: lowest\n"
          "eval MSE). OUT_DIR/checkpoint.\n"
          "safetensors (parameters, AdamW moments, step; written to a temporary file and\n"
          "renamed) lets --resume continue exactly where a run stopped.\n\n"
          "options:\n"
          "  -m, --model DIR        model directory (BERT; a classifier of the same size is\n"
          "                         reused, else initialised as transformers does)\n"
          "  --train FILE           training data\n"
          "  --eval FILE            evaluation data: accuracy, macro-F1 (F1 of label 1 when\n"
          "                         binary); regression: MSE, Pearson and Spearman\n"
          "                         correlation; after each epoch, or every --eval-every steps\n"
          "  -o, --output DIR       output directory\n"
          "  --text-column NAME     text field/column (default text; TSV/CSV: text, else\n"
          "                         sentence, else the first column)\n"
          "  --pair-column NAME     second text (default text_pair when present)\n"
          "  --label-column NAME    label field/column (default label)\n"
          "  --task T               auto (default: regression for float labels, see above),\n"
          "                         classification (float labels are names) or regression\n"
          "  --num-labels N         1: regression; N > 1: classification with N labels\n"
          "                         (integer labels 0..N-1; default: from the data)\n"
          "  --epochs N             passes over the data (default 3)\n"
          "  --lr X                 peak learning rate (default 2e-5)\n"
          "  --batch-size N         examples per micro-batch (default 32)\n"
          "  --grad-accum N         micro-batches per optimizer step (default 1)\n"
          "  --max-len N            tokens per example with [CLS]/[SEP] (default 128)\n"
          "  --warmup-ratio X       fraction of the steps with linear warm-up (default 0)\n"
          "  --weight-decay X       AdamW weight decay (default 0)\n"
          "  --max-grad-norm X      clip the global gradient norm (default 1; 0 = off)\n"
          "  --seed N               data order, dropout and head initialisation (default 42)\n"
          "  --eval-every N         evaluate every N optimizer steps (default: each epoch)\n"
          "  --save-every N         checkpoint every N optimizer steps (default: each epoch)\n"
          "  --log-every N          progress line every N steps (default 10)\n"
          "  --freeze-encoder       train only the pooler and classifier: the encoder runs\n"
          "                         once per example (no encoder dropout), features cached\n"
          "  --resume               continue from OUT_DIR/checkpoint.safetensors\n"
          "  --device D             OpenCL device (see bertcl devices)\n"
          "  --gemm auto|clblast|blas  matrix products (default $BERTCL_GEMM, else auto)\n"
          "  -q, --quiet            no progress lines\n"
          "  -h, --help             this text\n");
}

void bc_cmd_predict_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl predict -m MODEL_DIR -i FILE [-o OUT] [--batch-size 32] [--max-len N]\n"
          "                      [--text-column NAME] [--pair-column NAME] [--device D]\n"
          "                      [--gemm auto|clblast|blas]\n\n"
          "Classifies texts with a fine-tuned model (bertcl finetune's OUT_DIR, or any\n"
          "BertForSequenceClassification directory). Input as for finetune (JSONL, TSV, CSV;\n"
          "a label column is not needed), or plain text, one text a line. Output (OUT or stdout):\n"
          "one JSON object a line, {\"label\": NAME, \"probabilities\": {NAME: p, ...}}\n"
          "(regression models, num_labels 1: {\"score\": x}).\n");
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int num_l(const char *v, long lo, long *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || end == v || x < lo) return -1;
  *out = x;
  return 0;
}

static int num_f(const char *v, double lo, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || *end || end == v || !(x >= lo)) return -1;
  *out = x;
  return 0;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* splitmix64: data order and initialisation */
static uint64_t sm64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* ---- data ------------------------------------------------------------------------------- */

typedef struct {
  size_t n, cap;
  char **text, **pair, **label; /* (n); pair/label entries may be NULL */
} dataset;

static void dataset_free(dataset *d) {
  for (size_t i = 0; i < d->n; i++) {
    free(d->text[i]);
    free(d->pair[i]);
    free(d->label[i]);
  }
  free(d->text);
  free(d->pair);
  free(d->label);
  memset(d, 0, sizeof *d);
}

static int dataset_add(dataset *d, char *text, char *pair, char *label) {
  if (d->n == d->cap) {
    size_t nc = d->cap ? 2 * d->cap : 256;
    char **a = realloc(d->text, nc * sizeof *a);
    if (a) d->text = a;
    char **b = realloc(d->pair, nc * sizeof *b);
    if (b) d->pair = b;
    char **c = realloc(d->label, nc * sizeof *c);
    if (c) d->label = c;
    if (!a || !b || !c) return -1;
    d->cap = nc;
  }
  d->text[d->n] = text;
  d->pair[d->n] = pair;
  d->label[d->n] = label;
  d->n++;
  return 0;
}

typedef struct {
  const char *text_col, *pair_col, *label_col;
} columns;

/* Splits one CSV/TSV line into fields (in place). CSV honours double quotes. */
static int split_fields(char *line, char sep, char **f, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return n;
    if (sep == ',' && *p == '"') {
      char *w = ++p, *start = p;
      for (;;) {
        if (!*p) break;
        if (*p == '"') {
          if (p[1] == '"') {
            *w++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *w++ = *p++;
      }
      char *after = p;
      *w = 0;
      f[n++] = start;
      while (*after && *after != sep) after++;
      if (!*after) return n;
      p = after + 1;
    } else {
      f[n++] = p;
      char *e = strchr(p, sep);
      if (!e) return n;
      *e = 0;
      p = e + 1;
    }
  }
}

static char *label_of_json(json_t *v) {
  char buf[64];
  if (json_is_string(v)) return xstrdup(json_string_value(v));
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    return xstrdup(buf);
  }
  if (json_is_boolean(v)) return xstrdup(json_is_true(v) ? "1" : "0");
  if (json_is_real(v) && isfinite(json_real_value(v))) {
    /* the shortest text that reads back the same double, written as a non-integer as the
     * JSON float was: 5.0 stays "5.0" (a float label) */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, json_real_value(v));
      if (strtod(buf, NULL) == json_real_value(v)) break;
    }
    if (!strpbrk(buf, ".eE")) strcat(buf, ".0");
    return xstrdup(buf);
  }
  return NULL;
}

/* Reads JSONL, TSV or CSV (or plain text lines when plain_ok and nothing else fits).
 * need_label: every row must have a label. */
static int dataset_read(const char *path, const columns *cols, int need_label, int plain_ok,
                        dataset *d) {
  memset(d, 0, sizeof *d);
  char *data = NULL;
  size_t len = 0;
  bc_err err = {0};
  if (bc_read_file(&err, path, &data, &len) != BERTCL_OK) {
    bc_cli_error("%s", err.msg);
    return -1;
  }
  char *p = data;
  if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
      (unsigned char)p[2] == 0xBF)
    p += 3;
  const char *first = p;
  while (*first == ' ' || *first == '\n' || *first == '\r' || *first == '\t') first++;
  int kind = *first == '{' ? 0 : ends_with(path, ".csv") ? 2 : 1; /* 0 jsonl 1 tsv 2 csv */
  if (kind == 1 && plain_ok && !ends_with(path, ".tsv") && !strchr(first, '\t')) kind = 3;
  char sep = kind == 2 ? ',' : '\t';
  int tcol = -1, pcol = -1, lcol = -1, ncols = 0, rc = 0;
  size_t lineno = 0;
  enum { MAXF = 256 };
  char *f[MAXF];
  while (*p) {
    char *e = strchr(p, '\n');
    char *next = e ? e + 1 : p + strlen(p);
    if (e) *e = 0;
    size_t l = strlen(p);
    if (l && p[l - 1] == '\r') p[--l] = 0;
    lineno++;
    char *line = p;
    p = next;
    if (!l) continue;
    char *text = NULL, *pair = NULL, *label = NULL;
    if (kind == 0) {
      json_error_t je;
      json_t *o = json_loads(line, 0, &je);
      if (!json_is_object(o)) {
        bc_cli_error("%s:%zu: not a JSON object (%s)", path, lineno, je.text);
        json_decref(o);
        rc = -1;
        break;
      }
      json_t *t = json_object_get(o, cols->text_col ? cols->text_col : "text");
      json_t *q = json_object_get(o, cols->pair_col ? cols->pair_col : "text_pair");
      json_t *y = json_object_get(o, cols->label_col ? cols->label_col : "label");
      if (!json_is_string(t)) {
        bc_cli_error("%s:%zu: no \"%s\" string", path, lineno,
                     cols->text_col ? cols->text_col : "text");
        json_decref(o);
        rc = -1;
        break;
      }
      text = xstrdup(json_string_value(t));
      if (json_is_string(q)) pair = xstrdup(json_string_value(q));
      if (y && !json_is_null(y)) {
        label = label_of_json(y);
        if (!label) {
          bc_cli_error("%s:%zu: the label must be a string or a number", path, lineno);
          json_decref(o);
          free(text), free(pair);
          rc = -1;
          break;
        }
      }
      json_decref(o);
    } else if (kind == 3) {
      text = xstrdup(line);
    } else {
      int n = split_fields(line, sep, f, MAXF);
      if (ncols == 0) { /* header */
        ncols = n;
        for (int i = 0; i < n; i++) {
          if (cols->text_col ? !strcmp(f[i], cols->text_col) : !strcmp(f[i], "text")) tcol = i;
          if (cols->pair_col ? !strcmp(f[i], cols->pair_col) : !strcmp(f[i], "text_pair"))
            pcol = i;
          if (!strcmp(f[i], cols->label_col ? cols->label_col : "label")) lcol = i;
        }
        if (tcol < 0 && !cols->text_col)
          for (int i = 0; i < n; i++)
            if (!strcmp(f[i], "sentence")) tcol = i;
        if (tcol < 0 && !cols->text_col) tcol = 0;
        if (tcol < 0 || (cols->pair_col && pcol < 0) || (need_label && lcol < 0)) {
          bc_cli_error("%s: the header lacks the %s column '%s' (use --%s-column)", path,
                       tcol < 0 ? "text" : (cols->pair_col && pcol < 0) ? "pair" : "label",
                       tcol < 0 ? cols->text_col
                       : (cols->pair_col && pcol < 0) ? cols->pair_col
                       : cols->label_col ? cols->label_col : "label",
                       tcol < 0 ? "text" : (cols->pair_col && pcol < 0) ? "pair" : "label");
          rc = -1;
          break;
        }
        continue;
      }
      if (n <= tcol || (pcol >= 0 && n <= pcol) || (lcol >= 0 && n <= lcol)) {
        bc_cli_error("%s:%zu: %d fields, the header has %d", path, lineno, n, ncols);
        rc = -1;
        break;
      }
      text = xstrdup(f[tcol]);
      if (pcol >= 0) pair = xstrdup(f[pcol]);
      if (lcol >= 0 && *f[lcol]) label = xstrdup(f[lcol]);
    }
    if (!text) {
      bc_cli_error("out of memory");
      rc = -1;
      break;
    }
    if (need_label && !label) {
      bc_cli_error("%s:%zu: no label", path, lineno);
      free(text), free(pair);
      rc = -1;
      break;
    }
    if (dataset_add(d, text, pair, label) != 0) {
      bc_cli_error("out of memory");
      free(text), free(pair), free(label);
      rc = -1;
      break;
    }
  }
  free(data);
  if (rc == 0 && d->n == 0) {
    bc_cli_error("%s: no examples", path);
    rc = -1;
  }
  if (rc != 0) dataset_free(d);
  return rc;
}

/* ---- labels ----------------------------------------------------------------------------- */

typedef struct {
  int K;
  char **names; /* (K) */
} labelmap;

static void labelmap_free(labelmap *m) {
  for (int i = 0; i < m->K; i++) free(m->names[i]);
  free(m->names);
  memset(m, 0, sizeof *m);
}

static int label_id(const labelmap *m, const char *s) {
  for (int i = 0; i < m->K; i++)
    if (!strcmp(m->names[i], s)) return i;
  return -1;
}

static int is_uint(const char *s, long *v) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (errno || *end || end == s || x < 0 || x > 100000 || s[0] == '+' || s[0] == ' ') return 0;
  *v = x;
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Integer labels 0..max keep their values ("0", "1", ...); other strings are sorted. A model
 * whose id2label names every label keeps its mapping. */
static int labelmap_build(labelmap *m, const dataset *d, const bertcl_model *model,
                          int model_K) {
  memset(m, 0, sizeof *m);
  if (model_K > 1) {
    int all = 1;
    for (size_t i = 0; i < d->n && all; i++) {
      int found = 0;
      for (int k = 0; k < model_K && !found; k++) {
        const char *nm = bertcl_model_label(model, k);
        found = nm && !strcmp(nm, d->label[i]);
      }
      all = found;
    }
    if (all) {
      m->K = model_K;
      m->names = calloc((size_t)model_K, sizeof *m->names);
      if (!m->names) return -1;
      for (int k = 0; k < model_K; k++) m->names[k] = xstrdup(bertcl_model_label(model, k));
      return 0;
    }
  }
  int ints = 1;
  long mx = -1, v;
  for (size_t i = 0; i < d->n; i++) {
    if (!is_uint(d->label[i], &v)) {
      ints = 0;
      break;
    }
    if (v > mx) mx = v;
  }
  if (ints) {
    m->K = mx + 1 < 2 ? 2 : (int)mx + 1;
    m->names = calloc((size_t)m->K, sizeof *m->names);
    if (!m->names) return -1;
    for (int k = 0; k < m->K; k++) {
      char buf[32];
      snprintf(buf, sizeof buf, "%d", k);
      m->names[k] = xstrdup(buf);
    }
    return 0;
  }
  char **all = malloc(d->n * sizeof *all);
  if (!all) return -1;
  memcpy(all, d->label, d->n * sizeof *all);
  qsort(all, d->n, sizeof *all, cmp_str);
  m->names = calloc(d->n, sizeof *m->names);
  if (!m->names) {
    free(all);
    return -1;
  }
  for (size_t i = 0; i < d->n; i++)
    if (i == 0 || strcmp(all[i], all[i - 1])) m->names[m->K++] = xstrdup(all[i]);
  free(all);
  if (m->K < 2) {
    bc_cli_error("finetune: the training data has a single label ('%s'); a classifier needs two "
                 "or more", m->names[0]);
    labelmap_free(m);
    return -1;
  }
  return 0;
}

/* ---- regression labels ------------------------------------------------------------------ */

/* A label that strtod reads whole as a finite number. */
static int is_number(const char *s, double *v) {
  char *end;
  errno = 0;
  if (!*s || *s == ' ' || *s == '\t') return 0;
  double x = strtod(s, &end);
  if (end == s || *end || errno == ERANGE || !isfinite(x)) return 0;
  if (v) *v = x;
  return 1;
}

/* Written as an integer: an optional sign, then digits. */
static int is_int_text(const char *s) {
  if (*s == '-' || *s == '+') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* --task auto: regression when every label is a number and one of them is written as a
 * non-integer ("3.8", "5.0", a JSON float: the column datasets would type as float, which is
 * what transformers' run_glue calls regression), or when every label is a number and the model
 * is already a regressor (a classifier with num_labels 1). */
static int labels_are_regression(const dataset *d, int model_K) {
  int frac = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (!is_number(d->label[i], NULL)) return 0;
    frac |= !is_int_text(d->label[i]);
  }
  return frac || model_K == 1;
}

/* Regression targets (n) of d's labels. */
static int targets_of(const dataset *d, const char *path, float *t) {
  for (size_t i = 0; i < d->n; i++) {
    double v;
    if (!is_number(d->label[i], &v)) {
      bc_cli_error("%s: row %zu has label '%s', which is not a number (regression)", path, i + 1,
                   d->label[i]);
      return -1;
    }
    t[i] = (float)v;
  }
  return 0;
}

/* ---- export ----------------------------------------------------------------------------- */

static int copy_file(const char *src, const char *dst) {
  char *data = NULL;
  size_t len = 0;
  bc_err err = {0};
  if (bc_read_file(&err, src, &data, &len) != BERTCL_OK) return 1; /* absent: skipped */
  int rc = bc_write_file_atomic(&err, dst, data, len);
  free(data);
  if (rc != BERTCL_OK) {
    bc_cli_error("%s", err.msg);
    return -1;
  }
  return 0;
}

/* config.json of MODEL_DIR with the classification fields, model.safetensors (HF names),
 * the tokenizer files. */
static int export_model(const char *out_dir, const char *model_dir, json_t *src_cfg,
                        const labelmap *lm, const ref_layout *lay, const float *params,
                        const char *meta_json) {
  char path[4096];
  json_t *cfg = json_deep_copy(src_cfg);
  json_t *id2 = json_object(), *l2i = json_object();
  for (int k = 0; k < lm->K; k++) {
    char key[32];
    snprintf(key, sizeof key, "%d", k);
    json_object_set_new(id2, key, json_string(lm->names[k]));
    json_object_set_new(l2i, lm->names[k], json_integer(k));
  }
  json_object_set_new(cfg, "architectures", json_pack("[s]", "BertForSequenceClassification"));
  json_object_set_new(cfg, "id2label", id2);
  json_object_set_new(cfg, "label2id", l2i);
  json_object_set_new(cfg, "num_labels", json_integer(lm->K));
  json_object_set_new(cfg, "problem_type",
                      json_string(lm->K == 1 ? "regression" : "single_label_classification"));
  char *js = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
  json_decref(cfg);
  bc_err err = {0};
  snprintf(path, sizeof path, "%s/config.json", out_dir);
  int rc = js ? bc_write_file_atomic(&err, path, js, strlen(js)) : BERTCL_ERR_NOMEM;
  free(js);
  if (rc != BERTCL_OK) {
    bc_cli_error("%s", err.msg[0] ? err.msg : "out of memory");
    return -1;
  }
  bc_st_out_tensor *ts = calloc((size_t)lay->count, sizeof *ts);
  if (!ts) return -1;
  for (int i = 0; i < lay->count; i++) {
    ts[i].name = lay->t[i].name;
    ts[i].data = params + lay->t[i].offset;
    ts[i].ndim = lay->t[i].ndim;
    ts[i].shape[0] = (size_t)lay->t[i].shape[0];
    ts[i].shape[1] = (size_t)lay->t[i].shape[1];
    ts[i].dtype = BC_OUT_F32;
  }
  bc_st_meta meta[] = {{"format", "pt"}, {"bertcl_finetune", meta_json}};
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  rc = bc_st_write(&err, path, ts, (size_t)lay->count, meta, 2);
  free(ts);
  if (rc != BERTCL_OK) {
    bc_cli_error("%s", err.msg);
    return -1;
  }
  static const char *const tok_files[] = {"vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                          "special_tokens_map.json"};
  for (size_t i = 0; i < sizeof tok_files / sizeof tok_files[0]; i++) {
    char src[4096];
    snprintf(src, sizeof src, "%s/%s", model_dir, tok_files[i]);
    snprintf(path, sizeof path, "%s/%s", out_dir, tok_files[i]);
    if (copy_file(src, path) < 0) return -1;
  }
  return 0;
}

/* ---- evaluation ------------------------------------------------------------------------- */

typedef struct {
  double acc, macro_f1, f1; /* f1: of label 1 when binary, else macro */
  double mse, pearson, spearman; /* regression (num_labels 1) */
} metrics;

static metrics score(const int32_t *gold, const int32_t *pred, size_t n, int K) {
  metrics r = {0};
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) ok += gold[i] == pred[i];
  r.acc = n ? (double)ok / n : 0;
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
    if (K == 2 && k == 1) r.f1 = f;
  }
  r.macro_f1 = classes ? sum / classes : 0;
  if (K != 2) r.f1 = r.macro_f1;
  return r;
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

static const double *rank_key;
static int cmp_rank(const void *a, const void *b) {
  double x = rank_key[*(const size_t *)a], y = rank_key[*(const size_t *)b];
  return x < y ? -1 : x > y;
}

/* Ranks 1..n of x, ties sharing their mean rank (scipy's rankdata "average"). */
static int ranks(const double *x, size_t n, double *rk) {
  size_t *ix = malloc(n * sizeof *ix);
  if (!ix) return -1;
  for (size_t i = 0; i < n; i++) ix[i] = i;
  rank_key = x;
  qsort(ix, n, sizeof *ix, cmp_rank);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && x[ix[j + 1]] == x[ix[i]]) j++;
    for (size_t k = i; k <= j; k++) rk[ix[k]] = 0.5 * (double)(i + j) + 1.0;
    i = j + 1;
  }
  free(ix);
  return 0;
}

/* MSE, Pearson and Spearman correlation of predictions p against gold g (n), as GLUE's STS-B. */
static int score_regression(const double *g, const double *p, size_t n, metrics *m) {
  double se = 0;
  for (size_t i = 0; i < n; i++) se += (p[i] - g[i]) * (p[i] - g[i]);
  m->mse = n ? se / (double)n : 0;
  m->pearson = pearson(g, p, n);
  double *rg = malloc(n * sizeof *rg), *rp = malloc(n * sizeof *rp);
  if (!rg || !rp || ranks(g, n, rg) || ranks(p, n, rp)) {
    free(rg), free(rp);
    return -1;
  }
  m->spearman = pearson(rg, rp, n);
  free(rg), free(rp);
  return 0;
}

/* ---- the run ---------------------------------------------------------------------------- */

typedef struct {
  const char *model, *train, *eval, *out, *device, *gemm, *task;
  columns cols;
  long num_labels; /* 0: from the data and --task */
  long epochs, batch, accum, max_len, seed, eval_every, save_every, log_every;
  double lr, warmup_ratio, wd, max_norm;
  int freeze, resume, quiet;
} ft_opts;

typedef struct {
  bertcl_tokenizer *tok;
  bertcl_tokenize_options topt;
  bc_trainer *tr;
  labelmap lm;
  ft_opts *o;
  int C;
  float *ftrain, *feval; /* --freeze-encoder: cached h_L[:, 0] (n, C) of train and eval */
} ft_run;

/* Tokenizes rows idx[0..n) of d into a padded batch. */
static int make_batch(ft_run *r, const dataset *d, const size_t *idx, size_t n,
                      bertcl_batch **out) {
  const char **texts = malloc(n * sizeof *texts), **pairs = malloc(n * sizeof *pairs);
  int any_pair = 0, rc;
  if (!texts || !pairs) {
    free(texts), free(pairs);
    bc_cli_error("out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    texts[i] = d->text[idx[i]];
    pairs[i] = d->pair[idx[i]];
    any_pair |= pairs[i] != NULL;
  }
  rc = bertcl_tokenizer_encode_batch(r->tok, texts, any_pair ? pairs : NULL, n, &r->topt, out);
  free(texts), free(pairs);
  if (rc != BERTCL_OK) {
    bc_cli_error("tokenize: %s", bertcl_last_error(NULL));
    return -1;
  }
  return 0;
}

/* --freeze-encoder: the encoder runs once per example; the head trains on these features. */
static int compute_features(ft_run *r, const dataset *d, float *feats) {
  size_t B = (size_t)r->o->batch;
  size_t *idx = malloc(B * sizeof *idx);
  if (!idx) {
    bc_cli_error("out of memory");
    return -1;
  }
  for (size_t s = 0; s < d->n; s += B) {
    size_t nb = d->n - s < B ? d->n - s : B;
    for (size_t i = 0; i < nb; i++) idx[i] = s + i;
    bertcl_batch *b = NULL;
    if (make_batch(r, d, idx, nb, &b)) {
      free(idx);
      return -1;
    }
    int st = bc_trainer_features(r->tr, b->ids, b->type_ids, b->mask, (int)b->batch, (int)b->seq,
                                 feats + s * (size_t)r->C);
    bertcl_batch_free(b);
    if (st != BERTCL_OK) {
      bc_cli_error("features: %s", bertcl_last_error(NULL));
      free(idx);
      return -1;
    }
  }
  free(idx);
  return 0;
}

/* gold (n) labels, or targets (n) when num_labels is 1 */
static int evaluate(ft_run *r, const dataset *d, const int32_t *gold, const float *targets,
                    metrics *m) {
  size_t n = d->n, B = (size_t)r->o->batch;
  int K = r->lm.K;
  int32_t *pred = malloc(n * sizeof *pred);
  double *yp = K == 1 ? malloc(n * sizeof *yp) : NULL, *yg = K == 1 ? malloc(n * sizeof *yg) : NULL;
  size_t *idx = malloc(B * sizeof *idx);
  float *logits = malloc(B * (size_t)K * sizeof *logits);
  int rc = 0;
  if (!pred || !idx || !logits || (K == 1 && (!yp || !yg))) {
    bc_cli_error("out of memory");
    rc = -1;
    goto done;
  }
  for (size_t s = 0; s < n; s += B) {
    size_t nb = n - s < B ? n - s : B;
    for (size_t i = 0; i < nb; i++) idx[i] = s + i;
    int st;
    if (r->feval) {
      st = bc_trainer_head_fwd_bwd(r->tr, r->feval + s * (size_t)r->C, NULL, NULL, (int)nb, NULL,
                                   1.0f, 0, NULL, logits);
    } else {
      bertcl_batch *b = NULL;
      if (make_batch(r, d, idx, nb, &b)) {
        rc = -1;
        goto done;
      }
      st = bc_trainer_fwd_bwd(r->tr, b->ids, b->type_ids, b->mask, NULL, NULL, (int)b->batch,
                              (int)b->seq, NULL, 1.0f, 0, NULL, logits);
      bertcl_batch_free(b);
    }
    if (st != BERTCL_OK) {
      bc_cli_error("evaluation: %s", bertcl_last_error(NULL));
      rc = -1;
      goto done;
    }
    for (size_t i = 0; i < nb; i++) {
      int best = 0;
      for (int k = 1; k < K; k++)
        if (logits[i * K + k] > logits[i * K + best]) best = k;
      pred[s + i] = best;
      if (K == 1) yp[s + i] = logits[i], yg[s + i] = targets[s + i];
    }
  }
  if (K == 1) {
    memset(m, 0, sizeof *m);
    if (score_regression(yg, yp, n, m)) {
      bc_cli_error("out of memory");
      rc = -1;
    }
  } else {
    *m = score(gold, pred, n, K);
  }
done:
  free(pred), free(idx), free(logits), free(yp), free(yg);
  return rc;
}

/* Deterministic order of epoch e: Fisher-Yates with splitmix64 seeded by (seed, e). */
static void epoch_order(size_t *perm, size_t n, uint64_t seed, long epoch) {
  for (size_t i = 0; i < n; i++) perm[i] = i;
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)epoch + 1;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(sm64(&s) % i);
    size_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

/* N(0, std) by Box-Muller (transformers' _init_weights for Linear layers). */
static void normal_fill(float *x, size_t n, double std, uint64_t *s) {
  for (size_t i = 0; i < n; i++) {
    double u1 = ((sm64(s) >> 11) + 1.0) / 9007199254740993.0, u2 = (sm64(s) >> 11) / 9007199254740992.0;
    x[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
}

static double jnum(json_t *cfg, const char *key, double dflt) {
  json_t *v = json_object_get(cfg, key);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The checkpoint's run signature: a resumed run must use the same recipe and data. */
static char *signature(const ft_opts *o, size_t ntrain, int K) {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"train\": \"%s\", \"n\": %zu, \"K\": %d, \"epochs\": %ld, \"lr\": %.9g, "
           "\"batch\": %ld, \"accum\": %ld, \"max_len\": %ld, \"warmup_ratio\": %.9g, "
           "\"wd\": %.9g, \"max_norm\": %.9g, \"seed\": %ld, \"freeze\": %d}",
           o->train, ntrain, K, o->epochs, o->lr, o->batch, o->accum, o->max_len,
           o->warmup_ratio, o->wd, o->max_norm, o->seed, o->freeze);
  return xstrdup(buf);
}

static int save_checkpoint(const char *path, const ref_layout *lay, float *const bufs[3],
                           long step, double best, long best_step, const char *sig) {
  bc_st_out_tensor ts[3];
  static const char *const names[3] = {"params", "adam_m", "adam_v"};
  for (int i = 0; i < 3; i++)
    ts[i] = (bc_st_out_tensor){.name = names[i], .data = bufs[i], .ndim = 1,
                               .shape = {lay->total}, .dtype = BC_OUT_F32};
  char st[128], bs[64], bst[64];
  snprintf(st, sizeof st, "%ld", step);
  snprintf(bs, sizeof bs, "%.17g", best);
  snprintf(bst, sizeof bst, "%ld", best_step);
  bc_st_meta meta[] = {{"step", st}, {"best_metric", bs}, {"best_step", bst}, {"run", sig}};
  bc_err err = {0};
  if (bc_st_write(&err, path, ts, 3, meta, 4) != BERTCL_OK) {
    bc_cli_error("checkpoint: %s", err.msg);
    return -1;
  }
  return 0;
}

static int load_checkpoint(const char *path, const ref_layout *lay, float *const bufs[3],
                           long *step, double *best, long *best_step, const char *sig) {
  bc_err err = {0};
  bc_st_file *f = NULL;
  if (bc_st_open(&err, path, &f) != BERTCL_OK) {
    bc_cli_error("--resume: %s", err.msg);
    return -1;
  }
  int rc = -1;
  const char *run = bc_st_metadata(f, "run"), *st = bc_st_metadata(f, "step");
  const char *bm = bc_st_metadata(f, "best_metric"), *bs = bc_st_metadata(f, "best_step");
  if (!run || !st || !bm || !bs) {
    bc_cli_error("--resume: %s is not a bertcl finetune checkpoint", path);
    goto done;
  }
  if (strcmp(run, sig)) {
    bc_cli_error("--resume: %s was written by another run:\n  %s\nthis run:\n  %s", path, run,
                 sig);
    goto done;
  }
  static const char *const names[3] = {"params", "adam_m", "adam_v"};
  for (int i = 0; i < 3; i++) {
    const bc_st_tensor *t = bc_st_find(f, names[i]);
    if (!t || bc_st_read_f32(&err, t, bufs[i], lay->total) != BERTCL_OK) {
      bc_cli_error("--resume: %s: %s", path, t ? err.msg : "missing tensor");
      goto done;
    }
  }
  *step = strtol(st, NULL, 10);
  *best = strtod(bm, NULL);
  *best_step = strtol(bs, NULL, 10);
  rc = 0;
done:
  bc_st_close(f);
  return rc;
}

int bc_cmd_finetune(int argc, char **argv) {
  ft_opts o = {.epochs = 3, .batch = 32, .accum = 1, .max_len = 128, .seed = 42,
               .log_every = 10, .lr = 2e-5, .max_norm = 1.0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define STR(flag, field)                                                     \
  if (!strcmp(a, flag)) {                                                    \
    if (!v) return bc_cli_error("finetune: %s needs a value", flag), 2;      \
    o.field = v;                                                             \
    i++;                                                                     \
    continue;                                                                \
  }
#define LNG(flag, field, lo)                                                           \
  if (!strcmp(a, flag)) {                                                              \
    if (!v || num_l(v, lo, &o.field))                                                  \
      return bc_cli_error("finetune: bad %s '%s' (an integer >= %d)", flag, v ? v : "", \
                          lo), 2;                                                      \
    i++;                                                                               \
    continue;                                                                          \
  }
#define DBL(flag, field, lo)                                                           \
  if (!strcmp(a, flag)) {                                                              \
    if (!v || num_f(v, lo, &o.field))                                                  \
      return bc_cli_error("finetune: bad %s '%s' (a number >= %g)", flag, v ? v : "",  \
                          (double)lo), 2;                                              \
    i++;                                                                               \
    continue;                                                                          \
  }
    STR("-m", model) STR("--model", model) STR("--train", train) STR("--eval", eval)
    STR("-o", out) STR("--output", out) STR("--device", device) STR("--gemm", gemm)
    STR("--text-column", cols.text_col) STR("--pair-column", cols.pair_col)
    STR("--label-column", cols.label_col) STR("--task", task)
    LNG("--num-labels", num_labels, 1)
    LNG("--epochs", epochs, 1) LNG("--batch-size", batch, 1) LNG("--grad-accum", accum, 1)
    LNG("--max-len", max_len, 3) LNG("--seed", seed, 0) LNG("--eval-every", eval_every, 1)
    LNG("--save-every", save_every, 1) LNG("--log-every", log_every, 1)
    DBL("--lr", lr, 0) DBL("--warmup-ratio", warmup_ratio, 0) DBL("--weight-decay", wd, 0)
    DBL("--max-grad-norm", max_norm, 0)
#undef STR
#undef LNG
#undef DBL
    if (!strcmp(a, "--freeze-encoder")) o.freeze = 1;
    else if (!strcmp(a, "--resume")) o.resume = 1;
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o.quiet = 1;
    else return bc_cli_error("finetune: unknown option '%s' (see bertcl finetune --help)", a), 2;
  }
  if (!o.model || !o.train || !o.out)
    return bc_cli_error("finetune: -m MODEL_DIR, --train FILE and -o OUT_DIR are required"), 2;
  if (o.warmup_ratio > 1) return bc_cli_error("finetune: --warmup-ratio must be in [0, 1]"), 2;
  if (o.task && strcmp(o.task, "auto") && strcmp(o.task, "classification") &&
      strcmp(o.task, "regression"))
    return bc_cli_error("finetune: bad --task '%s' (auto, classification or regression)",
                        o.task), 2;
  int want_cls = o.task && !strcmp(o.task, "classification");
  int want_reg = o.task && !strcmp(o.task, "regression");
  if ((want_cls && o.num_labels == 1) || (want_reg && o.num_labels > 1))
    return bc_cli_error("finetune: --task %s contradicts --num-labels %ld (1 is regression)",
                        o.task, o.num_labels), 2;

  int ret = 1;
  bertcl_model *model = NULL;
  bertcl_ctx *ctx = NULL;
  json_t *src_cfg = NULL;
  dataset train = {0}, ev = {0};
  ft_run r = {0};
  r.o = &o;
  ref_layout lay = {0};
  float *flat = NULL, *m = NULL, *vv = NULL, *init_pool = NULL, *init_cls = NULL;
  int32_t *ytrain = NULL, *yeval = NULL;
  float *ttrain = NULL, *teval = NULL, *tgt = NULL; /* regression targets (n), (n), (batch) */
  size_t *perm = NULL;
  float *fbatch = NULL;
  char *sig = NULL;
  char path[4096], ckpt[4096];

  if (bertcl_model_load(&model, o.model) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  const bc_config *cfg = bc_model_config(model);
  snprintf(path, sizeof path, "%s/config.json", o.model);
  json_error_t je;
  src_cfg = json_load_file(path, 0, &je);
  if (!json_is_object(src_cfg)) {
    bc_cli_error("%s: %s", path, je.text);
    goto done;
  }
  if (bertcl_tokenizer_load(&r.tok, o.model) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  r.topt.max_length = (size_t)o.max_len;
  if ((size_t)o.max_len > (size_t)cfg->max_position) r.topt.max_length = (size_t)cfg->max_position;
  if (dataset_read(o.train, &o.cols, 1, 0, &train)) goto done;
  if (o.eval && dataset_read(o.eval, &o.cols, 1, 0, &ev)) goto done;
  const bc_weights *w0 = bc_model_weights(model);
  int model_K = w0->cls_w ? cfg->num_labels : 0;
  /* regression (num_labels 1, MSE) or classification (cross-entropy): an explicit --task or
   * --num-labels wins, else the labels decide (labels_are_regression) */
  int reg = want_reg || o.num_labels == 1 ||
            (!want_cls && !o.num_labels && labels_are_regression(&train, model_K));
  if (reg) {
    const char *nm = model_K == 1 ? bertcl_model_label(model, 0) : NULL;
    r.lm.names = calloc(1, sizeof *r.lm.names);
    if (!r.lm.names || !(r.lm.names[0] = xstrdup(nm ? nm : "LABEL_0"))) goto oom;
    r.lm.K = 1;
    ttrain = malloc(train.n * sizeof *ttrain);
    teval = malloc((ev.n ? ev.n : 1) * sizeof *teval);
    tgt = malloc((size_t)o.batch * sizeof *tgt);
    if (!ttrain || !teval || !tgt) goto oom;
    if (targets_of(&train, o.train, ttrain) || (ev.n && targets_of(&ev, o.eval, teval)))
      goto done;
  } else {
    if (labelmap_build(&r.lm, &train, model, model_K)) goto done;
    if (o.num_labels > 1 && r.lm.K != o.num_labels) {
      /* integer labels 0..K-1 with K < N: the head has N rows, as num_labels N in transformers */
      int ints = r.lm.K < o.num_labels;
      for (int k = 0; k < r.lm.K && ints; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", k);
        ints = !strcmp(r.lm.names[k], buf);
      }
      if (!ints) {
        bc_cli_error("finetune: --num-labels %ld, but the training data has %d labels%s",
                     o.num_labels, r.lm.K,
                     r.lm.K < o.num_labels ? " that are not integers 0..N-1" : "");
        goto done;
      }
      char **nn = realloc(r.lm.names, (size_t)o.num_labels * sizeof *nn);
      if (!nn) goto oom;
      r.lm.names = nn;
      for (int k = r.lm.K; k < o.num_labels; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", k);
        nn[k] = xstrdup(buf);
        if (!nn[k]) goto oom;
        r.lm.K = k + 1;
      }
    }
  }
  int K = r.lm.K;
  ytrain = malloc(train.n * sizeof *ytrain);
  yeval = malloc((ev.n ? ev.n : 1) * sizeof *yeval);
  if (!ytrain || !yeval) goto oom;
  for (size_t i = 0; i < train.n && !reg; i++) ytrain[i] = label_id(&r.lm, train.label[i]);
  for (size_t i = 0; i < ev.n && !reg; i++) {
    yeval[i] = label_id(&r.lm, ev.label[i]);
    if (yeval[i] < 0) {
      bc_cli_error("%s: row %zu has label '%s', which the training data does not have", o.eval,
                   i + 1, ev.label[i]);
      goto done;
    }
  }
  /* parameters: the model's; a missing pooler or classifier initialised as transformers does
   * (normal(0, initializer_range), zero bias) */
  if (ref_layout_init(&lay, cfg, K, 1) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  flat = calloc(lay.total, sizeof *flat);
  m = calloc(lay.total, sizeof *m);
  vv = calloc(lay.total, sizeof *vv);
  if (!flat || !m || !vv) goto oom;
  {
    bc_weights w = *w0;
    size_t C = (size_t)cfg->hidden_size;
    double std = jnum(src_cfg, "initializer_range", 0.02);
    uint64_t s = (uint64_t)o.seed ^ 0x5eedULL;
    if (!w.pool_w || !w.pool_b) {
      init_pool = calloc(C * C + C, sizeof *init_pool);
      if (!init_pool) goto oom;
      normal_fill(init_pool, C * C, std, &s);
      w.pool_w = init_pool;
      w.pool_b = init_pool + C * C;
      if (!o.quiet) fprintf(stderr, "finetune: the model has no pooler; initialised it\n");
    }
    if (!w.cls_w || cfg->num_labels != K) {
      init_cls = calloc((size_t)K * C + (size_t)K, sizeof *init_cls);
      if (!init_cls) goto oom;
      normal_fill(init_cls, (size_t)K * C, std, &s);
      w.cls_w = init_cls;
      w.cls_b = init_cls + (size_t)K * C;
    }
    if (ref_weights_gather(flat, &lay, &w) != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(NULL));
      goto done;
    }
  }
  /* schedule, as transformers' Trainer: micro-batches per epoch, optimizer steps per epoch */
  long nb = (long)((train.n + (size_t)o.batch - 1) / (size_t)o.batch);
  long spe = (nb + o.accum - 1) / o.accum, total = spe * o.epochs;
  long warmup = (long)ceil(o.warmup_ratio * (double)total);
  float hp = (float)jnum(src_cfg, "hidden_dropout_prob", 0.1);
  float ap = (float)jnum(src_cfg, "attention_probs_dropout_prob", 0.1);
  float cp = (float)jnum(src_cfg, "classifier_dropout", hp);
  sig = signature(&o, train.n, K);
  if (!sig) goto oom;
  if (bc_mkdirs(o.out) != 0) {
    bc_cli_error("cannot create %s: %s", o.out, strerror(errno));
    goto done;
  }
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", o.out);
  long step = 0, best_step = -1;
  double best = reg ? -INFINITY : -1.0; /* the best eval accuracy; regression: -MSE */
  float *const bufs[3] = {flat, m, vv};
  if (o.resume) {
    struct stat sb;
    if (stat(ckpt, &sb) != 0) {
      if (!o.quiet) fprintf(stderr, "finetune: no checkpoint in %s; starting afresh\n", o.out);
    } else if (load_checkpoint(ckpt, &lay, bufs, &step, &best, &best_step, sig)) {
      goto done;
    } else if (!o.quiet) {
      fprintf(stderr, "finetune: resuming at step %ld of %ld\n", step, total);
    }
  }
  bertcl_ctx_options copt = {.device = o.device, .gemm = o.gemm};
  if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  if (bc_trainer_create(ctx, cfg, K, flat, o.freeze, &r.tr) != BERTCL_OK ||
      bc_trainer_write(r.tr, BC_TR_M, m) != BERTCL_OK ||
      bc_trainer_write(r.tr, BC_TR_V, vv) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  if (!o.quiet)
    fprintf(stderr,
            "finetune: %zu examples, %d label%s%s, %ld epochs x %ld steps (batch %ld x %ld "
            "accum), warm-up %ld, on %s (gemm %s)\n",
            train.n, K, K == 1 ? "" : "s", reg ? " (regression, MSE)" : "", o.epochs, spe,
            o.batch, o.accum, warmup, bertcl_ctx_device(ctx)->name, bertcl_ctx_gemm(ctx));
  perm = malloc(train.n * sizeof *perm);
  if (!perm) goto oom;
  r.C = cfg->hidden_size;
  if (o.freeze) {
    r.ftrain = malloc(train.n * (size_t)r.C * sizeof(float));
    r.feval = ev.n ? malloc(ev.n * (size_t)r.C * sizeof(float)) : NULL;
    fbatch = malloc((size_t)o.batch * (size_t)r.C * sizeof(float));
    if (!r.ftrain || (ev.n && !r.feval) || !fbatch) goto oom;
    if (compute_features(&r, &train, r.ftrain) || (ev.n && compute_features(&r, &ev, r.feval)))
      goto done;
    if (!o.quiet)
      fprintf(stderr, "finetune: encoder frozen; features of %zu examples cached\n",
              train.n + ev.n);
  }
  ref_adamw_cfg ac = {0.9f, 0.999f, 1e-8f, (float)o.wd};
  const char *kill_at = getenv("BERTCL_TEST_KILL_AT_STEP"); /* test hook: SIGKILL after step N */
  long kill_step = kill_at ? strtol(kill_at, NULL, 10) : -1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long steps_run = 0;
  double loss_sum = 0;
  long loss_n = 0;
  size_t ex_run = 0;
  int32_t *lab = malloc((size_t)o.batch * sizeof *lab);
  if (!lab) goto oom;
  while (step < total) {
    long epoch = step / spe, s_in = step % spe;
    epoch_order(perm, train.n, (uint64_t)o.seed, epoch);
    if (bc_trainer_zero_grad(r.tr) != BERTCL_OK) goto cl_fail;
    long mb0 = s_in * o.accum, mb1 = mb0 + o.accum < nb ? mb0 + o.accum : nb;
    size_t step_rows = 0;
    for (long j = mb0; j < mb1; j++)
      step_rows += (size_t)(j == nb - 1 ? (long)train.n - j * o.batch : o.batch);
    double step_loss = 0;
    for (long j = mb0; j < mb1; j++) {
      size_t r0 = (size_t)j * (size_t)o.batch;
      size_t n = train.n - r0 < (size_t)o.batch ? train.n - r0 : (size_t)o.batch;
      for (size_t i = 0; i < n; i++) {
        if (reg)
          tgt[i] = ttrain[perm[r0 + i]];
        else
          lab[i] = ytrain[perm[r0 + i]];
      }
      ref_dropout_cfg drop = {hp, ap, cp, (uint64_t)o.seed, (uint32_t)(epoch * nb + j)};
      double l = 0;
      /* the micro-batch's mean loss weighted by its share of the step's examples */
      float scale = (float)((double)n / (double)step_rows);
      int st;
      if (o.freeze) {
        for (size_t i = 0; i < n; i++)
          memcpy(fbatch + i * (size_t)r.C, r.ftrain + perm[r0 + i] * (size_t)r.C,
                 (size_t)r.C * sizeof(float));
        st = bc_trainer_head_fwd_bwd(r.tr, fbatch, reg ? NULL : lab, reg ? tgt : NULL, (int)n,
                                     &drop, scale, 1, &l, NULL);
      } else {
        bertcl_batch *b = NULL;
        if (make_batch(&r, &train, perm + r0, n, &b)) {
          free(lab);
          goto done;
        }
        st = bc_trainer_fwd_bwd(r.tr, b->ids, b->type_ids, b->mask, reg ? NULL : lab,
                                reg ? tgt : NULL, (int)b->batch, (int)b->seq, &drop, scale, 1,
                                &l, NULL);
        bertcl_batch_free(b);
      }
      if (st != BERTCL_OK) {
        free(lab);
        goto cl_fail;
      }
      step_loss += l * scale;
    }
    float lr = ref_lr_linear((int)step, (int)warmup, (int)total, (float)o.lr);
    double norm = 0;
    if (bc_trainer_step(r.tr, &ac, lr, (float)o.max_norm, (int)step + 1, &norm) != BERTCL_OK) {
      free(lab);
      goto cl_fail;
    }
    step++;
    steps_run++;
    ex_run += step_rows;
    loss_sum += step_loss;
    loss_n++;
    int epoch_end = step % spe == 0;
    if (!o.quiet && (step % o.log_every == 0 || step == total)) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
      double eta = steps_run ? el / steps_run * (double)(total - step) : 0;
      fprintf(stderr,
              "epoch %ld step %ld/%ld loss %.4f lr %.3g grad-norm %.3g %.1f examples/s ETA "
              "%ld:%02ld\n",
              epoch + 1, step, total, loss_sum / loss_n, (double)lr, norm,
              el > 0 ? ex_run / el : 0.0, (long)eta / 60, (long)eta % 60);
      loss_sum = 0;
      loss_n = 0;
    }
    int do_eval = ev.n && (o.eval_every ? step % o.eval_every == 0 || step == total : epoch_end);
    int improved = 0;
    if (do_eval) {
      metrics mt;
      if (evaluate(&r, &ev, yeval, teval, &mt)) {
        free(lab);
        goto done;
      }
      double key = reg ? -mt.mse : mt.acc; /* higher is better */
      improved = key > best;
      if (reg)
        fprintf(stderr, "eval step %ld (epoch %ld): mse %.4f pearson %.4f spearman %.4f%s\n",
                step, epoch + 1, mt.mse, mt.pearson, mt.spearman, improved ? " (best)" : "");
      else {
        char f1[32] = ""; /* binary tasks: the F1 of label 1 as well */
        if (K == 2) snprintf(f1, sizeof f1, " F1 %.4f", mt.f1);
        fprintf(stderr, "eval step %ld (epoch %ld): accuracy %.4f macro-F1 %.4f%s%s\n", step,
                epoch + 1, mt.acc, mt.macro_f1, f1, improved ? " (best)" : "");
      }
      if (improved) best = key, best_step = step;
    }
    int do_save = o.save_every ? step % o.save_every == 0 || step == total : epoch_end;
    if (improved || (!ev.n && step == total) || do_save) {
      if (bc_trainer_read(r.tr, BC_TR_PARAMS, flat) != BERTCL_OK) {
        free(lab);
        goto cl_fail;
      }
    }
    if (improved || (!ev.n && step == total)) {
      char meta[256];
      if (reg)
        snprintf(meta, sizeof meta, "{\"step\": %ld, \"eval_mse\": %.6g}", step,
                 improved ? -best : -1.0);
      else
        snprintf(meta, sizeof meta, "{\"step\": %ld, \"eval_accuracy\": %.6g}", step,
                 improved ? best : -1.0);
      if (export_model(o.out, o.model, src_cfg, &r.lm, &lay, flat, meta)) {
        free(lab);
        goto done;
      }
    }
    if (do_save) {
      if (bc_trainer_read(r.tr, BC_TR_M, m) != BERTCL_OK ||
          bc_trainer_read(r.tr, BC_TR_V, vv) != BERTCL_OK) {
        free(lab);
        goto cl_fail;
      }
      if (save_checkpoint(ckpt, &lay, bufs, step, best, best_step, sig)) {
        free(lab);
        goto done;
      }
    }
    if (step == kill_step) raise(SIGKILL);
  }
  free(lab);
  if (!o.quiet) {
    if (ev.n && reg)
      fprintf(stderr, "finetune: done; best eval mse %.4f at step %ld saved in %s\n", -best,
              best_step, o.out);
    else if (ev.n)
      fprintf(stderr, "finetune: done; best eval accuracy %.4f at step %ld saved in %s\n", best,
              best_step, o.out);
    else
      fprintf(stderr, "finetune: done; model saved in %s\n", o.out);
  }
  ret = 0;
  goto done;
oom:
  bc_cli_error("out of memory");
  goto done;
cl_fail:
  bc_cli_error("%s", bertcl_last_error(ctx));
done:
  bc_trainer_free(r.tr);
  bertcl_ctx_free(ctx);
  bertcl_tokenizer_free(r.tok);
  labelmap_free(&r.lm);
  dataset_free(&train);
  dataset_free(&ev);
  ref_layout_free(&lay);
  free(flat), free(m), free(vv), free(init_pool), free(init_cls);
  free(ytrain), free(yeval), free(ttrain), free(teval), free(tgt), free(perm), free(sig);
  free(fbatch), free(r.ftrain), free(r.feval);
  json_decref(src_cfg);
  bertcl_model_free(model);
  return ret;
}

/* ---- predict ---------------------------------------------------------------------------- */

int bc_cmd_predict(int argc, char **argv) {
  const char *model_dir = NULL, *in = NULL, *outp = NULL, *device = NULL, *gemm = NULL;
  columns cols = {0};
  long batch = 32, max_len = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")    ? &model_dir
                       : !strcmp(a, "-i") || !strcmp(a, "--input")   ? &in
                       : !strcmp(a, "-o") || !strcmp(a, "--output")  ? &outp
                       : !strcmp(a, "--device")                      ? &device
                       : !strcmp(a, "--gemm")                        ? &gemm
                       : !strcmp(a, "--text-column")                 ? &cols.text_col
                       : !strcmp(a, "--pair-column")                 ? &cols.pair_col
                                                                     : NULL;
    if (dst) {
      if (!v) return bc_cli_error("predict: %s needs a value", a), 2;
      *dst = v;
      i++;
    } else if (!strcmp(a, "--batch-size") || !strcmp(a, "--max-len")) {
      long *d = !strcmp(a, "--batch-size") ? &batch : &max_len;
      if (!v || num_l(v, !strcmp(a, "--batch-size") ? 1 : 3, d))
        return bc_cli_error("predict: bad %s '%s'", a, v ? v : ""), 2;
      i++;
    } else {
      return bc_cli_error("predict: unknown option '%s' (see bertcl predict --help)", a), 2;
    }
  }
  if (!model_dir || !in)
    return bc_cli_error("predict: -m MODEL_DIR and -i FILE are required"), 2;
  int ret = 1;
  bertcl_model *model = NULL;
  bertcl_ctx *ctx = NULL;
  bertcl_tokenizer *tok = NULL;
  bc_encoder *enc = NULL;
  dataset d = {0};
  bc_afile out = {.fd = -1}; /* -o: a temporary file renamed into place once complete */
  int to_file = 0;
  bc_err ferr = {0};
  float *pooled = NULL;
  const char **texts = NULL, **pairs = NULL;
  if (bertcl_model_load(&model, model_dir) != BERTCL_OK ||
      bertcl_tokenizer_load(&tok, model_dir) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  const bc_config *cfg = bc_model_config(model);
  const bc_weights *w = bc_model_weights(model);
  int K = cfg->num_labels, C = cfg->hidden_size;
  if (!w->cls_w || K < 1 || !w->pool_w) {
    bc_cli_error("predict: %s has no classifier (classifier.weight) and pooler; train one with "
                 "bertcl finetune", model_dir);
    goto done;
  }
  if (dataset_read(in, &cols, 0, 1, &d)) goto done;
  bertcl_ctx_options copt = {.device = device, .gemm = gemm};
  if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  if (bc_encoder_create(ctx, model, &enc) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  if (outp) {
    if (bc_afile_open(&ferr, &out, outp) != BERTCL_OK) {
      bc_cli_error("%s", ferr.msg);
      goto done;
    }
    to_file = 1;
  }
  bertcl_tokenize_options topt = {.max_length = (size_t)max_len};
  pooled = malloc((size_t)batch * C * sizeof *pooled);
  texts = malloc((size_t)batch * sizeof *texts);
  pairs = malloc((size_t)batch * sizeof *pairs);
  if (!pooled || !texts || !pairs) {
    bc_cli_error("out of memory");
    goto done;
  }
  double *z = malloc((size_t)K * sizeof *z);
  if (!z) {
    bc_cli_error("out of memory");
    goto done;
  }
  for (size_t s = 0; s < d.n; s += (size_t)batch) {
    size_t n = d.n - s < (size_t)batch ? d.n - s : (size_t)batch;
    int any_pair = 0;
    for (size_t i = 0; i < n; i++) {
      texts[i] = d.text[s + i];
      pairs[i] = d.pair[s + i];
      any_pair |= pairs[i] != NULL;
    }
    bertcl_batch *b = NULL;
    if (bertcl_tokenizer_encode_batch(tok, texts, any_pair ? pairs : NULL, n, &topt, &b) !=
        BERTCL_OK) {
      bc_cli_error("tokenize: %s", bertcl_last_error(NULL));
      free(z);
      goto done;
    }
    int st = bc_encoder_forward(enc, b->ids, b->type_ids, b->mask, (int)b->batch, (int)b->seq,
                                NULL, 0);
    if (st == BERTCL_OK) st = bc_encoder_read_pooler(enc, pooled);
    bertcl_batch_free(b);
    if (st != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(ctx));
      free(z);
      goto done;
    }
    for (size_t i = 0; i < n; i++) {
      double mx = -INFINITY;
      for (int k = 0; k < K; k++) {
        double acc = w->cls_b[k];
        for (int c = 0; c < C; c++)
          acc += (double)pooled[i * C + c] * w->cls_w[(size_t)k * C + c];
        z[k] = acc;
        if (acc > mx) mx = acc;
      }
      json_t *o = json_object();
      if (K == 1) {
        json_object_set_new(o, "score", json_real(z[0]));
      } else {
        double sum = 0;
        int best = 0;
        for (int k = 0; k < K; k++) {
          sum += exp(z[k] - mx);
          if (z[k] > z[best]) best = k;
        }
        char buf[32];
        const char *nm = bertcl_model_label(model, best);
        snprintf(buf, sizeof buf, "LABEL_%d", best);
        json_object_set_new(o, "label", json_string(nm ? nm : buf));
        json_t *pr = json_object();
        for (int k = 0; k < K; k++) {
          nm = bertcl_model_label(model, k);
          snprintf(buf, sizeof buf, "LABEL_%d", k);
          json_object_set_new(pr, nm ? nm : buf, json_real(exp(z[k] - mx) / sum));
        }
        json_object_set_new(o, "probabilities", pr);
      }
      char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
      json_decref(o);
      int wrc = !js ? -1
                : to_file ? (bc_afile_write(&ferr, &out, js, strlen(js)) == BERTCL_OK &&
                             bc_afile_write(&ferr, &out, "\n", 1) == BERTCL_OK)
                                ? 0
                                : -1
                          : (fprintf(stdout, "%s\n", js) < 0 ? -1 : 0);
      free(js);
      if (wrc != 0) {
        bc_cli_error("write failed: %s", to_file && ferr.msg[0] ? ferr.msg : strerror(errno));
        free(z);
        goto done;
      }
    }
  }
  free(z);
  ret = 0;
done:
  if (to_file) { /* complete: renamed into place; not: the temporary file goes */
    if (ret == 0 && bc_afile_commit(&ferr, &out) != BERTCL_OK) {
      bc_cli_error("%s", ferr.msg);
      ret = 1;
    } else if (ret != 0) {
      bc_afile_abort(&out);
    }
  }
  free(pooled), free(texts), free(pairs);
  dataset_free(&d);
  bc_encoder_free(enc);
  bertcl_ctx_free(ctx);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  return ret;
}
