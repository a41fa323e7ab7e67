/* bertcl_finetune: the fine-tuning loop (include/bertcl.h). Reads and tokenizes the data, builds
 * the label map and the parameters (a missing head initialised as transformers does), then runs
 * the Trainer's schedule on the OpenCL trainer (train/trainer.h): a deterministic order per
 * epoch, micro-batches accumulated into optimizer steps, evaluation, export of the best model
 * (train/export.h) and checkpoints (train/checkpoint.h) that --resume continues bit for bit. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bertcl.h"
#include "model/model.h"
#include "runtime/runtime.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/examples.h"
#include "train/export.h"
#include "train/labels.h"
#include "train/layout.h"
#include "train/metrics.h"
#include "train/recipe.h"
#include "train/trainer.h"

void bertcl_finetune_options_init(bertcl_finetune_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->epochs = 3;
  o->lr = 2e-5;
  o->batch_size = 32;
  o->grad_accum = 1;
  o->max_length = 128;
  o->max_grad_norm = 1.0;
  o->seed = 42;
  o->log_every = 10;
}

/* splitmix64: data order and initialisation */
static uint64_t sm64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
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
    double u1 = ((sm64(s) >> 11) + 1.0) / 9007199254740993.0,
           u2 = (sm64(s) >> 11) / 9007199254740992.0;
    x[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
}

static double jnum(json_t *cfg, const char *key, double dflt) {
  json_t *v = json_object_get(cfg, key);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

/* ---- the run ---------------------------------------------------------------------------- */

typedef struct {
  bertcl_ctx *ctx;
  bc_err *err;
  const bertcl_model *model;
  const bertcl_tokenizer *tok;
  bertcl_finetune_options o;
  bertcl_progress_fn fn;
  void *user;
  int stop;           /* the callback asked to stop */
  int reg, K;         /* regression; labels */
  bc_labelmap lm;
  bc_text_data train, ev;
  bc_examples xtrain, xev;
  int32_t pad_id, pad_type;
  bc_layout lay;
  float *flat, *m, *v; /* (lay.total) each */
  bc_trainer *tr;
  bc_batch_buf bb;
  int C;
  float *ftrain, *feval; /* frozen encoder: cached h_L[:, 0] (n, C) of train and eval */
  char *src_cfg_text;
  json_t *src_cfg;
  char msg[1024];
} run;

/* Sends an event whose message is printf-formatted. */
__attribute__((format(printf, 3, 4))) static void emit(run *r, bertcl_progress *p,
                                                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  p->message = r->msg;
  if (r->fn && r->fn(p, r->user)) r->stop = 1;
}

static void info(run *r, const char *text) {
  bertcl_progress p = {.event = BERTCL_EVENT_INFO};
  emit(r, &p, "%s", text);
}

/* --freeze-encoder: the encoder runs once per example; the head trains on these features. */
static int compute_features(run *r, const bc_examples *x, float *feats) {
  size_t B = r->o.batch_size;
  size_t *idx = malloc(B * sizeof *idx);
  if (!idx) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  int st = BERTCL_OK;
  for (size_t s = 0; s < x->n && st == BERTCL_OK; s += B) {
    size_t nb = x->n - s < B ? x->n - s : B;
    for (size_t i = 0; i < nb; i++) idx[i] = s + i;
    st = bc_examples_batch(r->err, &r->bb, x, idx, nb, r->pad_id, r->pad_type);
    if (st == BERTCL_OK)
      st = bc_trainer_features(r->tr, r->bb.ids, r->bb.types, r->bb.mask, r->bb.B, r->bb.T,
                               feats + s * (size_t)r->C);
  }
  free(idx);
  return st;
}

/* The metrics of the eval set. */
static int evaluate(run *r, bertcl_metrics *mt) {
  const bc_examples *x = &r->xev;
  size_t n = x->n, B = r->o.batch_size;
  int K = r->K, st = BERTCL_OK;
  int32_t *pred = malloc(n * sizeof *pred);
  double *yp = K == 1 ? malloc(n * sizeof *yp) : NULL, *yg = K == 1 ? malloc(n * sizeof *yg) : NULL;
  size_t *idx = malloc(B * sizeof *idx);
  float *logits = malloc(B * (size_t)K * sizeof *logits);
  bc_metrics_clear(mt);
  if (!pred || !idx || !logits || (K == 1 && (!yp || !yg))) {
    st = bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory for the evaluation");
    goto done;
  }
  for (size_t s = 0; s < n; s += B) {
    size_t nb = n - s < B ? n - s : B;
    for (size_t i = 0; i < nb; i++) idx[i] = s + i;
    if (r->feval) {
      st = bc_trainer_head_fwd_bwd(r->tr, r->feval + s * (size_t)r->C, NULL, NULL, (int)nb, NULL,
                                   1.0f, 0, NULL, logits);
    } else {
      st = bc_examples_batch(r->err, &r->bb, x, idx, nb, r->pad_id, r->pad_type);
      if (st == BERTCL_OK)
        st = bc_trainer_fwd_bwd(r->tr, r->bb.ids, r->bb.types, r->bb.mask, NULL, NULL, r->bb.B,
                                r->bb.T, NULL, 1.0f, 0, NULL, logits);
    }
    if (st != BERTCL_OK) goto done;
    for (size_t i = 0; i < nb; i++) {
      int best = 0;
      for (int k = 1; k < K; k++)
        if (logits[i * K + k] > logits[i * K + best]) best = k;
      pred[s + i] = best;
      if (K == 1) yp[s + i] = logits[i], yg[s + i] = x->target[s + i];
    }
  }
  if (K == 1) {
    if (bc_score_regression(mt, yg, yp, n) != BERTCL_OK)
      st = bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory for the evaluation");
  } else {
    bc_score_classes(mt, x->label, pred, n, K);
  }
done:
  free(pred), free(idx), free(logits), free(yp), free(yg);
  return st;
}

/* The checkpoint's run signature: a resumed run must use the same recipe and data. */
static char *signature(const run *r) {
  const bertcl_finetune_options *o = &r->o;
  char buf[1024 + 4096];
  snprintf(buf, sizeof buf,
           "{\"train\": \"%s\", \"n\": %zu, \"K\": %d, \"epochs\": %d, \"lr\": %.9g, "
           "\"batch\": %zu, \"accum\": %d, \"max_len\": %zu, \"warmup_ratio\": %.9g, "
           "\"wd\": %.9g, \"max_norm\": %.9g, \"seed\": %llu, \"freeze\": %d}",
           o->train_file, r->train.n, r->K, o->epochs, o->lr, o->batch_size, o->grad_accum,
           o->max_length, o->warmup_ratio, o->weight_decay, o->max_grad_norm,
           (unsigned long long)o->seed, o->freeze_encoder);
  return bc_strdup(buf);
}

static int check_options(bc_err *err, const bertcl_finetune_options *o) {
  if (!o->train_file || !o->output_dir)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "finetune: train_file and output_dir are required");
  if (o->epochs < 1 || !(o->lr >= 0) || o->batch_size < 1 || o->grad_accum < 1 ||
      o->max_length < 3 || !(o->warmup_ratio >= 0 && o->warmup_ratio <= 1) ||
      !(o->weight_decay >= 0) || !(o->max_grad_norm >= 0) || o->eval_every < 0 ||
      o->save_every < 0 || o->log_every < 1 || o->num_labels < 0 || o->batch_size > INT32_MAX)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "finetune: bad options (epochs %d, lr %g, batch %zu, accum %d, max length %zu, "
                   "warm-up ratio %g, weight decay %g, max grad norm %g, eval/save/log every "
                   "%ld/%ld/%ld, num_labels %d); start from bertcl_finetune_options_init",
                   o->epochs, o->lr, o->batch_size, o->grad_accum, o->max_length, o->warmup_ratio,
                   o->weight_decay, o->max_grad_norm, o->eval_every, o->save_every, o->log_every,
                   o->num_labels);
  if (o->task < BERTCL_TASK_AUTO || o->task > BERTCL_TASK_REGRESSION)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "finetune: unknown task %d", (int)o->task);
  if ((o->task == BERTCL_TASK_CLASSIFICATION && o->num_labels == 1) ||
      (o->task == BERTCL_TASK_REGRESSION && o->num_labels > 1))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "finetune: the task contradicts num_labels %d (1 is regression)",
                   o->num_labels);
  return BERTCL_OK;
}

/* Labels of the data: the label map, class ids or regression targets of both sets. */
static int prepare_labels(run *r, const bc_config *cfg, const bc_weights *w0) {
  const bertcl_finetune_options *o = &r->o;
  int model_K = w0->cls_w ? cfg->num_labels : 0, st;
  const char *const *tl = (const char *const *)r->train.label;
  const char *const *el = (const char *const *)r->ev.label;
  r->reg = o->task == BERTCL_TASK_REGRESSION || o->num_labels == 1 ||
           (o->task == BERTCL_TASK_AUTO && !o->num_labels &&
            bc_labels_are_regression(tl, r->train.n, model_K));
  if (r->reg) {
    const char *nm = model_K == 1 ? bertcl_model_label(r->model, 0) : NULL;
    const char *names[1] = {nm ? nm : "LABEL_0"};
    if ((st = bc_labelmap_from_names(r->err, &r->lm, names, 1)) != BERTCL_OK) return st;
    r->xtrain.target = malloc(r->train.n * sizeof(float));
    r->xev.target = malloc((r->ev.n ? r->ev.n : 1) * sizeof(float));
    if (!r->xtrain.target || !r->xev.target)
      return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    if ((st = bc_labels_targets(r->err, o->train_file, tl, r->train.line, r->train.n,
                                r->xtrain.target)) != BERTCL_OK)
      return st;
    if (r->ev.n && (st = bc_labels_targets(r->err, o->eval_file, el, r->ev.line, r->ev.n,
                                           r->xev.target)) != BERTCL_OK)
      return st;
    r->K = 1;
    return BERTCL_OK;
  }
  const char **mnames = NULL;
  if (model_K > 1) {
    mnames = calloc((size_t)model_K, sizeof *mnames);
    if (!mnames) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < model_K; k++) mnames[k] = bertcl_model_label(r->model, k);
  }
  st = bc_labelmap_build(r->err, &r->lm, tl, r->train.n, mnames, model_K);
  free(mnames);
  if (st != BERTCL_OK) return st;
  if (o->num_labels > 1 && (st = bc_labelmap_pad_ints(r->err, &r->lm, o->num_labels)))
    return st;
  r->K = r->lm.K;
  r->xtrain.label = malloc(r->train.n * sizeof(int32_t));
  r->xev.label = malloc((r->ev.n ? r->ev.n : 1) * sizeof(int32_t));
  if (!r->xtrain.label || !r->xev.label) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < r->train.n; i++) {
    r->xtrain.label[i] = bc_labelmap_id(&r->lm, tl[i]);
    if (r->xtrain.label[i] < 0) /* the model's own id2label names every label; defensive */
      return bc_fail(r->err, BERTCL_ERR_INTERNAL, "%s:%zu: the label '%s' has no id",
                     o->train_file, r->train.line[i], tl[i]);
  }
  for (size_t i = 0; i < r->ev.n; i++) {
    r->xev.label[i] = bc_labelmap_id(&r->lm, el[i]);
    if (r->xev.label[i] < 0)
      return bc_fail(r->err, BERTCL_ERR_FORMAT,
                     "%s:%zu: the label '%s' is not one the training data has", o->eval_file,
                     r->ev.line[i], el[i]);
  }
  return BERTCL_OK;
}

/* The parameters: the model's; a missing pooler or classifier initialised as transformers does
 * (normal(0, initializer_range), zero bias). */
static int prepare_params(run *r, const bc_config *cfg, const bc_weights *w0) {
  int K = r->K, st;
  if ((st = bc_layout_init(&r->lay, cfg, K, 1)) != BERTCL_OK) return st;
  r->flat = calloc(r->lay.total, sizeof *r->flat);
  r->m = calloc(r->lay.total, sizeof *r->m);
  r->v = calloc(r->lay.total, sizeof *r->v);
  if (!r->flat || !r->m || !r->v)
    return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory for %zu parameters", r->lay.total);
  bc_weights w = *w0;
  size_t C = (size_t)cfg->hidden_size;
  double std = jnum(r->src_cfg, "initializer_range", 0.02);
  uint64_t s = r->o.seed ^ 0x5eedULL;
  float *init_pool = NULL, *init_cls = NULL;
  if (!w.pool_w || !w.pool_b) {
    init_pool = calloc(C * C + C, sizeof *init_pool);
    if (!init_pool) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    normal_fill(init_pool, C * C, std, &s);
    w.pool_w = init_pool;
    w.pool_b = init_pool + C * C;
    info(r, "the model has no pooler; initialised it");
  }
  if (!w.cls_w || cfg->num_labels != K) {
    init_cls = calloc((size_t)K * C + (size_t)K, sizeof *init_cls);
    if (!init_cls) {
      free(init_pool);
      return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    }
    normal_fill(init_cls, (size_t)K * C, std, &s);
    w.cls_w = init_cls;
    w.cls_b = init_cls + (size_t)K * C;
  }
  st = bc_weights_gather(r->flat, &r->lay, &w);
  if (st != BERTCL_OK) *r->err = *bc_thread_err();
  free(init_pool);
  free(init_cls);
  return st;
}

static void run_free(run *r) {
  bc_trainer_free(r->tr);
  bc_labelmap_free(&r->lm);
  bc_text_data_free(&r->train);
  bc_text_data_free(&r->ev);
  bc_examples_free(&r->xtrain);
  bc_examples_free(&r->xev);
  bc_layout_free(&r->lay);
  bc_batch_buf_free(&r->bb);
  free(r->flat), free(r->m), free(r->v), free(r->ftrain), free(r->feval);
  free(r->src_cfg_text);
  json_decref(r->src_cfg);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

static int train_loop(run *r, bertcl_finetune_result *res) {
  const bertcl_finetune_options *o = &r->o;
  bc_err *err = r->err;
  int st = BERTCL_OK, K = r->K, reg = r->reg;
  char ckpt[4096], *sig = NULL;
  size_t *perm = NULL;
  float *fbatch = NULL;
  bertcl_metrics mt, best_mt;
  bc_metrics_clear(&best_mt);
  size_t ntrain = r->xtrain.n, B = o->batch_size;
  /* schedule, as transformers' Trainer: micro-batches per epoch, optimizer steps per epoch */
  long nb = (long)((ntrain + B - 1) / B);
  long accum = o->grad_accum, spe = (nb + accum - 1) / accum, total = spe * o->epochs;
  long warmup = (long)ceil(o->warmup_ratio * (double)total);
  float hp = (float)jnum(r->src_cfg, "hidden_dropout_prob", 0.1);
  float ap = (float)jnum(r->src_cfg, "attention_probs_dropout_prob", 0.1);
  float cp = (float)jnum(r->src_cfg, "classifier_dropout", hp);
  if (!(sig = signature(r))) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  if (bc_mkdirs(o->output_dir) != 0) {
    st = bc_fail(err, BERTCL_ERR_IO, "cannot create %s: %s", o->output_dir, strerror(errno));
    goto done;
  }
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", o->output_dir);
  bc_ckpt_state cs = {0, reg ? -INFINITY : -1.0, -1}; /* best: accuracy; regression: -MSE */
  float *const bufs[3] = {r->flat, r->m, r->v};
  if (o->resume) {
    struct stat sb;
    if (stat(ckpt, &sb) != 0) {
      bertcl_progress p = {.event = BERTCL_EVENT_INFO};
      emit(r, &p, "no checkpoint in %s; starting afresh", o->output_dir);
    } else {
      if ((st = bc_checkpoint_load(err, ckpt, r->lay.total, bufs, total, &cs, sig)) != BERTCL_OK)
        goto done;
      bertcl_progress p = {.event = BERTCL_EVENT_INFO, .step = cs.step, .total_steps = total};
      emit(r, &p, "resuming at step %ld of %ld", cs.step, total);
    }
  }
  BC_TRY(bc_trainer_create(r->ctx, bc_model_config(r->model), BC_HEAD_SEQUENCE, K, r->flat, o->freeze_encoder,
                           &r->tr));
  BC_TRY(bc_trainer_write(r->tr, BC_TR_M, r->m));
  BC_TRY(bc_trainer_write(r->tr, BC_TR_V, r->v));
  {
    bertcl_progress p = {.event = BERTCL_EVENT_INFO, .total_steps = total};
    emit(r, &p,
         "%zu examples, %d label%s%s, %d epochs x %ld steps (batch %zu x %d accum), warm-up %ld, "
         "on %s",
         ntrain, K, K == 1 ? "" : "s", reg ? " (regression, MSE)" : "", o->epochs, spe, B,
         o->grad_accum, warmup, bertcl_ctx_device(r->ctx)->name);
  }
  perm = malloc(ntrain * sizeof *perm);
  if (!perm) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  r->C = bc_model_config(r->model)->hidden_size;
  if (o->freeze_encoder) {
    r->ftrain = malloc(ntrain * (size_t)r->C * sizeof(float));
    r->feval = r->xev.n ? malloc(r->xev.n * (size_t)r->C * sizeof(float)) : NULL;
    /* (B, C) features, then (B) labels and (B) targets */
    fbatch = malloc(B * ((size_t)r->C + 2) * sizeof(float));
    if (!r->ftrain || (r->xev.n && !r->feval) || !fbatch) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for the cached features");
      goto done;
    }
    BC_TRY(compute_features(r, &r->xtrain, r->ftrain));
    if (r->xev.n) BC_TRY(compute_features(r, &r->xev, r->feval));
    bertcl_progress p = {.event = BERTCL_EVENT_INFO};
    emit(r, &p, "encoder frozen; features of %zu examples cached", ntrain + r->xev.n);
  }
  bc_adamw_cfg ac = {0.9f, 0.999f, 1e-8f, (float)o->weight_decay};
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long steps_run = 0, loss_n = 0, step = cs.step;
  double loss_sum = 0;
  size_t ex_run = 0;
  while (step < total && !r->stop) {
    long epoch = step / spe, s_in = step % spe;
    epoch_order(perm, ntrain, o->seed, epoch);
    BC_TRY(bc_trainer_zero_grad(r->tr));
    long mb0 = s_in * accum, mb1 = mb0 + accum < nb ? mb0 + accum : nb;
    size_t step_rows = 0;
    for (long j = mb0; j < mb1; j++)
      step_rows += j == nb - 1 ? ntrain - (size_t)j * B : B;
    double step_loss = 0;
    for (long j = mb0; j < mb1; j++) {
      size_t r0 = (size_t)j * B, n = ntrain - r0 < B ? ntrain - r0 : B;
      bc_dropout_cfg drop = {hp, ap, cp, o->seed, (uint32_t)(epoch * nb + j)};
      double l = 0;
      /* the micro-batch's mean loss weighted by its share of the step's examples */
      float scale = (float)((double)n / (double)step_rows);
      if (o->freeze_encoder) {
        int32_t *lab = (int32_t *)(fbatch + B * (size_t)r->C);
        float *tgt = (float *)(lab + B);
        for (size_t i = 0; i < n; i++) {
          size_t e = perm[r0 + i];
          memcpy(fbatch + i * (size_t)r->C, r->ftrain + e * (size_t)r->C,
                 (size_t)r->C * sizeof(float));
          if (reg) tgt[i] = r->xtrain.target[e];
          else lab[i] = r->xtrain.label[e];
        }
        BC_TRY(bc_trainer_head_fwd_bwd(r->tr, fbatch, reg ? NULL : lab, reg ? tgt : NULL, (int)n,
                                       &drop, scale, 1, &l, NULL));
      } else {
        BC_TRY(bc_examples_batch(err, &r->bb, &r->xtrain, perm + r0, n, r->pad_id, r->pad_type));
        BC_TRY(bc_trainer_fwd_bwd(r->tr, r->bb.ids, r->bb.types, r->bb.mask,
                                  reg ? NULL : r->bb.labels, reg ? r->bb.targets : NULL, r->bb.B,
                                  r->bb.T, &drop, scale, 1, &l, NULL));
      }
      step_loss += l * scale;
    }
    float lr = bc_lr_linear((int)step, (int)warmup, (int)total, (float)o->lr);
    double norm = 0;
    BC_TRY(bc_trainer_step(r->tr, &ac, lr, (float)o->max_grad_norm, (int)step + 1, &norm));
    step++;
    steps_run++;
    ex_run += step_rows;
    loss_sum += step_loss;
    loss_n++;
    int epoch_end = step % spe == 0;
    if (step % o->log_every == 0 || step == total) {
      double el = seconds_since(&t0);
      double eta = steps_run ? el / steps_run * (double)(total - step) : 0;
      bertcl_progress p = {.event = BERTCL_EVENT_LOG, .step = step, .total_steps = total,
                           .epoch = (int)epoch + 1, .loss = loss_sum / loss_n, .lr = lr,
                           .grad_norm = norm, .examples_per_s = el > 0 ? ex_run / el : 0.0,
                           .eta_s = eta};
      emit(r, &p,
           "epoch %ld step %ld/%ld loss %.4f lr %.3g grad-norm %.3g %.1f examples/s ETA "
           "%ld:%02ld",
           epoch + 1, step, total, p.loss, (double)lr, norm, p.examples_per_s, (long)eta / 60,
           (long)eta % 60);
      loss_sum = 0;
      loss_n = 0;
    }
    int do_eval = r->xev.n && (o->eval_every ? step % o->eval_every == 0 || step == total
                                             : epoch_end);
    int improved = 0;
    if (do_eval) {
      BC_TRY(evaluate(r, &mt));
      double key = reg ? -mt.mse : mt.accuracy; /* higher is better */
      improved = key > cs.best;
      if (improved) cs.best = key, cs.best_step = step, best_mt = mt;
      bertcl_progress p = {.event = BERTCL_EVENT_EVAL, .step = step, .total_steps = total,
                           .epoch = (int)epoch + 1, .metrics = &mt, .improved = improved};
      if (reg) {
        emit(r, &p, "eval step %ld (epoch %ld): mse %.4f pearson %.4f spearman %.4f%s", step,
             epoch + 1, mt.mse, mt.pearson, mt.spearman, improved ? " (best)" : "");
      } else {
        char f1[32] = ""; /* binary tasks: the F1 of label 1 as well */
        if (K == 2) snprintf(f1, sizeof f1, " F1 %.4f", mt.f1);
        emit(r, &p, "eval step %ld (epoch %ld): accuracy %.4f macro-F1 %.4f%s%s", step,
             epoch + 1, mt.accuracy, mt.macro_f1, f1, improved ? " (best)" : "");
      }
    }
    int do_save = o->save_every ? step % o->save_every == 0 || step == total : epoch_end;
    /* pass 0: this step's export and checkpoint, then the STEP event; pass 1: what a stop
     * request (from any event of this step) still needs */
    int exported = 0, saved = 0;
    for (int pass = 0; pass < 2; pass++) {
      int do_export = pass == 0 ? improved || (!r->xev.n && step == total)
                                : r->stop && !r->xev.n && !exported;
      int do_ckpt = pass == 0 ? do_save : r->stop && !saved;
      if (do_export || do_ckpt) BC_TRY(bc_trainer_read(r->tr, BC_TR_PARAMS, r->flat));
      if (do_export) {
        char meta[256];
        if (reg)
          snprintf(meta, sizeof meta, "{\"step\": %ld, \"eval_mse\": %.6g}", step,
                   improved ? -cs.best : -1.0);
        else
          snprintf(meta, sizeof meta, "{\"step\": %ld, \"eval_accuracy\": %.6g}", step,
                   improved ? cs.best : -1.0);
        bc_export_head head = {"BertForSequenceClassification",
                               K == 1 ? "regression" : "single_label_classification"};
        BC_TRY(bc_export_model(err, o->output_dir, bc_model_dir(r->model), r->src_cfg_text,
                               &head, &r->lm, &r->lay, r->flat, meta));
        exported = 1;
      }
      if (do_ckpt) {
        BC_TRY(bc_trainer_read(r->tr, BC_TR_M, r->m));
        BC_TRY(bc_trainer_read(r->tr, BC_TR_V, r->v));
        cs.step = step;
        BC_TRY(bc_checkpoint_save(err, ckpt, r->lay.total, (const float *const *)bufs, &cs,
                                  sig));
        saved = 1;
      }
      if (pass == 0) {
        bertcl_progress p = {.event = BERTCL_EVENT_STEP, .step = step, .total_steps = total,
                             .epoch = (int)epoch + 1};
        emit(r, &p, "step %ld done", step);
      }
    }
  }
  if (res) {
    res->steps = step;
    res->best_step = cs.best_step;
    res->best_metric = cs.best_step < 0 ? NAN : reg ? -cs.best : cs.best;
    res->stopped = r->stop;
  }
  bertcl_progress p = {.event = BERTCL_EVENT_DONE, .step = step, .total_steps = total,
                       .metrics = cs.best_step >= 0 ? &best_mt : NULL};
  if (r->xev.n && reg)
    emit(r, &p, "done; best eval mse %.4f at step %ld saved in %s", -cs.best, cs.best_step,
         o->output_dir);
  else if (r->xev.n)
    emit(r, &p, "done; best eval accuracy %.4f at step %ld saved in %s", cs.best, cs.best_step,
         o->output_dir);
  else
    emit(r, &p, "done; model saved in %s", o->output_dir);
done:
  free(sig);
  free(perm);
  free(fbatch);
  return st;
fail:
  goto done;
}

int bertcl_finetune(bertcl_ctx *ctx, const bertcl_model *model, const bertcl_tokenizer *tok,
                    const bertcl_finetune_options *opt, bertcl_progress_fn progress, void *user,
                    bertcl_finetune_result *result) {
  if (!ctx) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_finetune: ctx is NULL");
  if (!model || !tok || !opt)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "bertcl_finetune: NULL argument");
  int st = check_options(&ctx->err, opt);
  if (st != BERTCL_OK) return st;
  run r;
  memset(&r, 0, sizeof r);
  r.ctx = ctx;
  r.err = &ctx->err;
  r.model = model;
  r.tok = tok;
  r.o = *opt;
  r.fn = progress;
  r.user = user;
  if (result) {
    memset(result, 0, sizeof *result);
    result->best_step = -1;
    result->best_metric = NAN;
  }
  const bc_config *cfg = bc_model_config(model);
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", bc_model_dir(model));
  size_t len = 0;
  BC_TRY(bc_read_file(r.err, path, &r.src_cfg_text, &len));
  json_error_t je;
  r.src_cfg = json_loads(r.src_cfg_text, 0, &je);
  if (!json_is_object(r.src_cfg)) {
    st = bc_fail(r.err, BERTCL_ERR_FORMAT, "%s: %s", path, je.text);
    goto fail;
  }
  bc_text_columns cols = {opt->text_column, opt->pair_column, opt->label_column};
  BC_TRY(bc_text_data_read(r.err, opt->train_file, &cols, BC_DATA_NEED_LABEL, &r.train));
  if (opt->eval_file)
    BC_TRY(bc_text_data_read(r.err, opt->eval_file, &cols, BC_DATA_NEED_LABEL, &r.ev));
  bertcl_tokenize_options topt = {.max_length = opt->max_length};
  if (topt.max_length > (size_t)cfg->max_position) topt.max_length = (size_t)cfg->max_position;
  BC_TRY(bc_tokenizer_pad(r.err, tok, &r.pad_id, &r.pad_type));
  BC_TRY(bc_examples_from_text(r.err, &r.xtrain, tok, &r.train, &topt));
  if (r.ev.n) BC_TRY(bc_examples_from_text(r.err, &r.xev, tok, &r.ev, &topt));
  const bc_weights *w0 = bc_model_weights(model);
  BC_TRY(prepare_labels(&r, cfg, w0));
  BC_TRY(prepare_params(&r, cfg, w0));
  if (result) {
    result->task = r.reg ? BERTCL_TASK_REGRESSION : BERTCL_TASK_CLASSIFICATION;
    result->num_labels = r.K;
  }
  st = train_loop(&r, result);
fail:
  run_free(&r);
  return st;
}
