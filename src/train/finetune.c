/* bertcl_finetune: the fine-tuning loop (include/bertcl.h). The task (ft_sequence.c,
 * ft_token.c) reads and tokenizes the data and builds the label map; here the parameters (a
 * missing head initialised as transformers does) and the Trainer's schedule on the OpenCL
 * trainer (train/trainer.h): a deterministic order per epoch, micro-batches accumulated into
 * optimizer steps, evaluation, export of the best model (train/export.h) and checkpoints
 * (train/checkpoint.h) that a resumed run continues bit for bit. */
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
#include "model/family.h"
#include "model/model.h"
#include "runtime/runtime.h"
#include "train/checkpoint.h"
#include "train/export.h"
#include "train/finetune_impl.h"
#include "train/head.h"
#include "train/metrics.h"
#include "train/recipe.h"

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
  o->tag_column = -1;
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

double ft_json_num(json_t *cfg, const char *key, double dflt) {
  json_t *v = json_object_get(cfg, key);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

/* ---- the run ---------------------------------------------------------------------------- */

void ft_emit(ft_run *r, bertcl_progress *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  p->message = r->msg;
  if (r->fn && r->fn(p, r->user)) r->stop = 1;
}

static void info(ft_run *r, const char *text) {
  bertcl_progress p = {.event = BERTCL_EVENT_INFO};
  ft_emit(r, &p, "%s", text);
}

/* --freeze-encoder: the encoder runs once per example; the head trains on these features. */
static int compute_features(ft_run *r, const bc_examples *x, float *feats) {
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

/* The checkpoint's run signature: a resumed run must use the same recipe and data. */
static char *signature(const ft_run *r) {
  const bertcl_finetune_options *o = &r->o;
  char buf[1024 + 4096], task[256] = "";
  if (r->task == BERTCL_TASK_TOKEN_CLASSIFICATION) ft_token_signature(r, task, sizeof task);
  snprintf(buf, sizeof buf,
           "{\"train\": \"%s\", \"n\": %zu, \"K\": %d, \"epochs\": %d, \"lr\": %.9g, "
           "\"batch\": %zu, \"accum\": %d, \"max_len\": %zu, \"warmup_ratio\": %.9g, "
           "\"wd\": %.9g, \"max_norm\": %.9g, \"seed\": %llu, \"freeze\": %d%s}",
           o->train_file, r->n_train_items, r->K, o->epochs, o->lr, o->batch_size,
           o->grad_accum, o->max_length, o->warmup_ratio, o->weight_decay, o->max_grad_norm,
           (unsigned long long)o->seed, o->freeze_encoder, task);
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
  if (o->task < BERTCL_TASK_AUTO || o->task > BERTCL_TASK_TOKEN_CLASSIFICATION)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "finetune: unknown task %d", (int)o->task);
  if (o->scheme < BERTCL_SCHEME_AUTO || o->scheme > BERTCL_SCHEME_NONE)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "finetune: unknown tag scheme %d",
                   (int)o->scheme);
  if (((o->task == BERTCL_TASK_CLASSIFICATION || o->task == BERTCL_TASK_TOKEN_CLASSIFICATION) &&
       o->num_labels == 1) ||
      (o->task == BERTCL_TASK_REGRESSION && o->num_labels > 1))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "finetune: the task contradicts num_labels %d (1 is regression)",
                   o->num_labels);
  return BERTCL_OK;
}

/* The parameters: the model's; a missing head dense layer (BERT's pooler, RoBERTa's
 * classifier.dense, DistilBERT's pre_classifier) or classifier initialised as transformers does
 * (normal(0, initializer_range), zero bias). */
static int prepare_params(ft_run *r, const bc_config *cfg, const bc_weights *w0) {
  int K = r->K, st, dense = bc_head_describe(r->head)->seq_dense;
  if ((st = bc_layout_init(&r->lay, cfg, K, dense)) != BERTCL_OK) return st;
  r->flat = calloc(r->lay.total, sizeof *r->flat);
  r->m = calloc(r->lay.total, sizeof *r->m);
  r->v = calloc(r->lay.total, sizeof *r->v);
  if (!r->flat || !r->m || !r->v)
    return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory for %zu parameters", r->lay.total);
  bc_weights w = *w0;
  size_t C = (size_t)cfg->hidden_size;
  double std = ft_json_num(r->src_cfg, "initializer_range", 0.02);
  uint64_t s = r->o.seed ^ 0x5eedULL;
  float *init_dense = NULL, *init_cls = NULL;
  int pooler = cfg->head == BC_CLS_HEAD_POOLER;
  const float **dw = pooler ? &w.pool_w : &w.head_w, **db = pooler ? &w.pool_b : &w.head_b;
  if (dense && (!*dw || !*db)) {
    init_dense = calloc(C * C + C, sizeof *init_dense);
    if (!init_dense) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    normal_fill(init_dense, C * C, std, &s);
    *dw = init_dense;
    *db = init_dense + C * C;
    char msg[160];
    snprintf(msg, sizeof msg, "the model has no %s; initialised it",
             pooler ? "pooler" : bc_family_get(cfg->family)->names.head_w);
    info(r, msg);
  }
  if (!w.cls_w || cfg->num_labels != K) {
    init_cls = calloc((size_t)K * C + (size_t)K, sizeof *init_cls);
    if (!init_cls) {
      free(init_dense);
      return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    }
    normal_fill(init_cls, (size_t)K * C, std, &s);
    w.cls_w = init_cls;
    w.cls_b = init_cls + (size_t)K * C;
  }
  st = bc_weights_gather(r->flat, &r->lay, &w);
  if (st != BERTCL_OK) *r->err = *bc_thread_err();
  free(init_dense);
  free(init_cls);
  return st;
}

static void run_free(ft_run *r) {
  ft_token_free(r);
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

static int train_loop(ft_run *r, bertcl_finetune_result *res) {
  const bertcl_finetune_options *o = &r->o;
  bc_err *err = r->err;
  int st = BERTCL_OK, K = r->K, reg = r->task == BERTCL_TASK_REGRESSION;
  int tokens = r->task == BERTCL_TASK_TOKEN_CLASSIFICATION;
  int cached = o->freeze_encoder && r->head == BC_HEAD_SEQUENCE; /* features cached */
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
  /* the family's rates, read from its config.json keys at load (DistilBERT's dropout,
   * attention_dropout, seq_classif_dropout; classifier_dropout null: the hidden rate) */
  const bc_config *mc = bc_model_config(r->model);
  float hp = mc->hidden_dropout, ap = mc->attn_dropout, cp = mc->cls_dropout;
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
      ft_emit(r, &p, "no checkpoint in %s; starting afresh", o->output_dir);
    } else {
      if ((st = bc_checkpoint_load(err, ckpt, r->lay.total, bufs, total, &cs, sig)) != BERTCL_OK)
        goto done;
      bertcl_progress p = {.event = BERTCL_EVENT_INFO, .step = cs.step, .total_steps = total};
      ft_emit(r, &p, "resuming at step %ld of %ld", cs.step, total);
    }
  }
  BC_TRY(bc_trainer_create(r->ctx, bc_model_config(r->model), r->head, K, r->flat,
                           o->freeze_encoder, &r->tr));
  BC_TRY(bc_trainer_write(r->tr, BC_TR_M, r->m));
  BC_TRY(bc_trainer_write(r->tr, BC_TR_V, r->v));
  {
    bertcl_progress p = {.event = BERTCL_EVENT_INFO, .total_steps = total};
    ft_emit(r, &p,
            "%zu %s, %d label%s%s, %d epochs x %ld steps (batch %zu x %d accum), warm-up %ld, "
            "on %s (gemm %s)",
            ntrain, tokens ? "windows" : "examples", K, K == 1 ? "" : "s",
            reg ? " (regression, MSE)" : tokens ? " (token classification)" : "", o->epochs, spe,
            B, o->grad_accum, warmup, bertcl_ctx_device(r->ctx)->name, bertcl_ctx_gemm(r->ctx));
  }
  perm = malloc(ntrain * sizeof *perm);
  if (!perm) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  r->C = bc_model_config(r->model)->hidden_size;
  if (cached) {
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
    ft_emit(r, &p, "encoder frozen; features of %zu examples cached", ntrain + r->xev.n);
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
    size_t step_rows = 0, step_labelled = 0;
    for (long j = mb0; j < mb1; j++)
      step_rows += j == nb - 1 ? ntrain - (size_t)j * B : B;
    if (tokens)
      for (size_t i = (size_t)mb0 * B; i < (size_t)mb0 * B + step_rows; i++)
        step_labelled += (size_t)r->win_labelled[perm[i]];
    double step_loss = 0;
    for (long j = mb0; j < mb1; j++) {
      size_t r0 = (size_t)j * B, n = ntrain - r0 < B ? ntrain - r0 : B;
      bc_dropout_cfg drop = {hp, ap, cp, o->seed, (uint32_t)(epoch * nb + j)};
      double l = 0;
      /* the micro-batch's mean loss weighted by its share of the step's examples (tokens: of
       * its labelled tokens, so the step's loss is the mean over all of them) */
      float scale = (float)((double)n / (double)step_rows);
      if (tokens) {
        size_t lab = 0;
        for (size_t i = 0; i < n; i++) lab += (size_t)r->win_labelled[perm[r0 + i]];
        scale = (float)((double)lab / (double)(step_labelled ? step_labelled : 1));
        if (!lab) continue; /* nothing to learn from (cannot happen: every window has a word) */
      }
      if (cached) {
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
                                  reg ? NULL : tokens ? r->bb.tok_labels : r->bb.labels,
                                  reg ? r->bb.targets : NULL, r->bb.B, r->bb.T, &drop, scale, 1,
                                  &l, NULL));
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
      ft_emit(r, &p,
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
      double key = 0; /* higher is better: accuracy, -MSE, entity F1 */
      char line[256];
      if (tokens)
        BC_TRY(ft_token_evaluate(r, &mt, &key, line, sizeof line));
      else
        BC_TRY(ft_sequence_evaluate(r, &mt, &key, line, sizeof line));
      improved = key > cs.best;
      if (improved) {
        cs.best = key, cs.best_step = step, best_mt = mt;
        if (tokens) { /* keep the report best_mt points into */
          bc_entity_report_free(&r->best_rep);
          r->best_rep = r->rep;
          memset(&r->rep, 0, sizeof r->rep);
        }
      }
      bertcl_progress p = {.event = BERTCL_EVENT_EVAL, .step = step, .total_steps = total,
                           .epoch = (int)epoch + 1, .metrics = &mt, .improved = improved};
      ft_emit(r, &p, "eval step %ld (epoch %ld): %s%s", step, epoch + 1, line,
              improved ? " (best)" : "");
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
          snprintf(meta, sizeof meta, "{\"step\": %ld, \"eval_%s\": %.6g}", step,
                   tokens && r->scheme != BERTCL_SCHEME_NONE ? "f1" : "accuracy",
                   improved ? cs.best : -1.0);
        /* the family's class: RobertaForSequenceClassification, XLMRobertaForTokenClassif... */
        bertcl_model_info mi;
        char arch[96];
        const bc_model_type *mt = bertcl_model_get_info(r->model, &mi) == BERTCL_OK
                                      ? bc_model_type_find(mi.model_type)
                                      : NULL;
        snprintf(arch, sizeof arch, "%s%s", mt ? mt->arch_prefix : "Bert",
                 bc_head_describe(r->head)->arch_suffix);
        bc_export_head head = {arch,
                               tokens   ? NULL
                               : K == 1 ? "regression"
                                        : "single_label_classification"};
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
        ft_emit(r, &p, "step %ld done", step);
      }
    }
  }
  if (res) {
    res->steps = step;
    res->best_step = cs.best_step;
    res->best_metric = cs.best_step < 0 ? NAN : reg ? -cs.best : cs.best;
    res->stopped = r->stop;
  }
  if (tokens && cs.best_step >= 0 && r->best_rep.ntypes) { /* the per-type table */
    char *table = bc_entity_report_table(&r->best_rep);
    if (!table) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      goto done;
    }
    bertcl_progress p = {.event = BERTCL_EVENT_INFO, .step = cs.best_step};
    ft_emit(r, &p, "entities of the best evaluation (step %ld):", cs.best_step);
    for (char *ln = strtok(table, "\n"); ln; ln = strtok(NULL, "\n")) ft_emit(r, &p, "%s", ln);
    free(table);
  }
  bertcl_progress p = {.event = BERTCL_EVENT_DONE, .step = step, .total_steps = total,
                       .metrics = cs.best_step >= 0 ? &best_mt : NULL};
  if (r->xev.n && tokens)
    ft_emit(r, &p, "done; best eval %s %.4f at step %ld saved in %s",
            r->scheme == BERTCL_SCHEME_NONE ? "accuracy" : "F1", cs.best, cs.best_step,
            o->output_dir);
  else if (r->xev.n && reg)
    ft_emit(r, &p, "done; best eval mse %.4f at step %ld saved in %s", -cs.best, cs.best_step,
         o->output_dir);
  else if (r->xev.n)
    ft_emit(r, &p, "done; best eval accuracy %.4f at step %ld saved in %s", cs.best, cs.best_step,
         o->output_dir);
  else
    ft_emit(r, &p, "done; model saved in %s", o->output_dir);
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
  ft_run r;
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
  char path[4096], *train = NULL;
  size_t len = 0, train_len = 0;
  snprintf(path, sizeof path, "%s/config.json", bc_model_dir(model));
  BC_TRY(bc_read_file(r.err, path, &r.src_cfg_text, &len));
  json_error_t je;
  r.src_cfg = json_loads(r.src_cfg_text, 0, &je);
  if (!json_is_object(r.src_cfg)) {
    st = bc_fail(r.err, BERTCL_ERR_FORMAT, "%s: %s", path, je.text);
    goto fail;
  }
  /* the task: given, or token classification for CoNLL columns and JSONL with word lists */
  BC_TRY(bc_read_file(r.err, opt->train_file, &train, &train_len));
  int token_task = opt->task == BERTCL_TASK_TOKEN_CLASSIFICATION ||
                   (opt->task == BERTCL_TASK_AUTO &&
                    (bc_looks_like_word_jsonl(train, train_len, opt->text_column) ||
                     bc_looks_like_conll(opt->train_file, train, train_len)));
  st = token_task ? ft_token_prepare(&r, train, train_len)
                  : ft_sequence_prepare(&r, train, train_len);
  free(train);
  if (st != BERTCL_OK) goto fail;
  BC_TRY(bc_tokenizer_pad(r.err, tok, &r.pad_id, &r.pad_type));
  BC_TRY(prepare_params(&r, cfg, bc_model_weights(model)));
  if (result) {
    result->task = r.task;
    result->num_labels = r.K;
  }
  st = train_loop(&r, result);
fail:
  run_free(&r);
  return st;
}
