/* bertcl_finetune's sequence tasks: classification and regression of texts and text pairs
 * (BertForSequenceClassification). See finetune_impl.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/finetune_impl.h"
#include "train/metrics.h"

/* Labels of the data: the label map, class ids or regression targets of both sets. */
static int prepare_labels(ft_run *r, const bc_config *cfg, const bc_weights *w0) {
  const bertcl_finetune_options *o = &r->o;
  int model_K = w0->cls_w ? cfg->num_labels : 0, st;
  const char *const *tl = (const char *const *)r->train.label;
  const char *const *el = (const char *const *)r->ev.label;
  int reg = o->task == BERTCL_TASK_REGRESSION || o->num_labels == 1 ||
            (o->task == BERTCL_TASK_AUTO && !o->num_labels &&
             bc_labels_are_regression(tl, r->train.n, model_K));
  r->task = reg ? BERTCL_TASK_REGRESSION : BERTCL_TASK_CLASSIFICATION;
  if (reg) {
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

int ft_sequence_prepare(ft_run *r, const char *train_data, size_t train_len) {
  const bertcl_finetune_options *o = &r->o;
  const bc_config *cfg = bc_model_config(r->model);
  int st;
  r->head = BC_HEAD_SEQUENCE;
  bc_text_columns cols = {o->text_column, o->pair_column, o->label_column};
  if ((st = bc_text_data_parse(r->err, o->train_file, train_data, train_len, &cols,
                               BC_DATA_NEED_LABEL, &r->train)) != BERTCL_OK)
    return st;
  if (o->eval_file && (st = bc_text_data_read(r->err, o->eval_file, &cols, BC_DATA_NEED_LABEL,
                                              &r->ev)) != BERTCL_OK)
    return st;
  r->n_train_items = r->train.n;
  bertcl_tokenize_options topt = {.max_length = o->max_length};
  if (topt.max_length > (size_t)cfg->max_position) topt.max_length = (size_t)cfg->max_position;
  if ((st = bc_examples_from_text(r->err, &r->xtrain, r->tok, &r->train, &topt)) != BERTCL_OK)
    return st;
  if (r->ev.n && (st = bc_examples_from_text(r->err, &r->xev, r->tok, &r->ev, &topt)))
    return st;
  return prepare_labels(r, cfg, bc_model_weights(r->model));
}

int ft_sequence_evaluate(ft_run *r, bertcl_metrics *mt, double *key, char *line, size_t cap) {
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
    *key = -mt->mse;
    snprintf(line, cap, "mse %.4f pearson %.4f spearman %.4f", mt->mse, mt->pearson,
             mt->spearman);
  } else {
    bc_score_classes(mt, x->label, pred, n, K);
    *key = mt->accuracy;
    char f1[32] = ""; /* binary tasks: the F1 of label 1 as well */
    if (K == 2) snprintf(f1, sizeof f1, " F1 %.4f", mt->f1);
    snprintf(line, cap, "accuracy %.4f macro-F1 %.4f%s", mt->accuracy, mt->macro_f1, f1);
  }
done:
  free(pred), free(idx), free(logits), free(yp), free(yg);
  return st;
}
