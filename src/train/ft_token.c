/* bertcl_finetune's token classification (BertForTokenClassification): words and tags from
 * CoNLL or JSONL, run_ner.py's alignment, windows, entity metrics. See finetune_impl.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/finetune_impl.h"
#include "train/metrics.h"

void ft_token_free(ft_run *r) {
  bc_word_data_free(&r->wtrain);
  bc_word_data_free(&r->wev);
  free(r->wev_gold);
  free(r->b_to_i);
  free(r->win_labelled);
  bc_entity_report_free(&r->rep);
  bc_entity_report_free(&r->best_rep);
}

void ft_token_signature(const ft_run *r, char *buf, size_t cap) {
  snprintf(buf, cap, ", \"task\": \"token\", \"label_all_tokens\": %d, \"tag_column\": %d",
           r->o.label_all_tokens, r->o.tag_column);
}

/* Every tag of d fits the scheme; else an error naming the file and line. */
static int check_scheme(ft_run *r, const bc_word_data *d, const char *file) {
  size_t bad = 0;
  if (bc_tags_fit_scheme((const char *const *)d->tags, d->start[d->n], r->scheme, &bad))
    return BERTCL_OK;
  return bc_fail(r->err, BERTCL_ERR_FORMAT,
                 "%s:%zu: the tag '%s' is not one of the %s scheme (O, %s); set the scheme "
                 "(--scheme) or fix the tag",
                 file, d->line[bad], d->tags[bad], bc_scheme_name(r->scheme),
                 r->scheme == BERTCL_SCHEME_IOBES ? "B-, I-, E-, S-" : "B-, I-");
}

/* The alignment of a word set into examples, and its summary line. */
static int align(ft_run *r, const bc_word_data *d, const int32_t *labels, bc_examples *x,
                 const char *what) {
  const bc_config *cfg = bc_model_config(r->model);
  size_t max_len = r->o.max_length < (size_t)cfg->max_position ? r->o.max_length
                                                                : (size_t)cfg->max_position;
  bc_align_options ao = {max_len, r->o.label_all_tokens, r->b_to_i};
  bc_align_stats s;
  int st = bc_examples_from_words(r->err, x, r->tok, d, labels, &ao, &s);
  if (st != BERTCL_OK) return st;
  char extra[256] = "";
  size_t len = 0;
  if (s.cut_words)
    len += (size_t)snprintf(extra + len, sizeof extra - len,
                            "; %zu word%s longer than a window kept %zu subwords",
                            s.cut_words, s.cut_words == 1 ? "" : "s", max_len - 2);
  if (s.empty_words)
    snprintf(extra + len, sizeof extra - len, "; %zu word%s without tokens predicted %s",
             s.empty_words, s.empty_words == 1 ? "" : "s", r->lm.names[r->empty_label]);
  char split[160];
  if (s.split_sentences)
    snprintf(split, sizeof split, "%zu sentence%s longer than %zu tokens split into windows, %zu "
             "windows in all", s.split_sentences, s.split_sentences == 1 ? "" : "s", max_len,
             s.windows);
  else
    snprintf(split, sizeof split, "every sentence fits in %zu tokens", max_len);
  bertcl_progress p = {.event = BERTCL_EVENT_INFO};
  ft_emit(r, &p, "%s: %zu sentences, %zu words, %zu subwords (longest %zu); %s%s", what,
          s.sentences, s.words, s.tokens, s.longest, split, extra);
  return BERTCL_OK;
}

int ft_token_prepare(ft_run *r, const char *train_data, size_t train_len) {
  const bertcl_finetune_options *o = &r->o;
  const bc_config *cfg = bc_model_config(r->model);
  const bc_weights *w0 = bc_model_weights(r->model);
  int st;
  r->task = BERTCL_TASK_TOKEN_CLASSIFICATION;
  r->head = BC_HEAD_TOKEN;
  bc_word_columns cols = {o->tag_column, o->text_column, o->label_column};
  if ((st = bc_words_parse(r->err, o->train_file, train_data, train_len, &cols,
                           BC_WORDS_NEED_TAGS, &r->wtrain)) != BERTCL_OK)
    return st;
  if (o->eval_file && (st = bc_words_read(r->err, o->eval_file, &cols, BC_WORDS_NEED_TAGS,
                                          &r->wev)) != BERTCL_OK)
    return st;
  r->n_train_items = r->wtrain.n;
  size_t nw = r->wtrain.start[r->wtrain.n];
  const char *const *tags = (const char *const *)r->wtrain.tags;
  /* the label map: the model's id2label when it names every tag, else the tags sorted
   * (run_ner.py's get_label_list), integers in their order */
  int model_K = w0->cls_w ? cfg->num_labels : 0;
  const char **mnames = NULL;
  if (model_K > 1) {
    mnames = calloc((size_t)model_K, sizeof *mnames);
    if (!mnames) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < model_K; k++) mnames[k] = bertcl_model_label(r->model, k);
  }
  st = bc_labelmap_build(r->err, &r->lm, tags, nw, mnames, model_K);
  free(mnames);
  if (st != BERTCL_OK) return st;
  if (o->num_labels > 1 && (st = bc_labelmap_pad_ints(r->err, &r->lm, o->num_labels)))
    return st;
  r->K = r->lm.K;
  int o_id = bc_labelmap_id(&r->lm, "O");
  r->empty_label = o_id >= 0 ? o_id : 0;
  /* the scheme: given, or what the training tags use; every tag must fit it */
  bertcl_tag_scheme detected = bc_detect_scheme(tags, r->wtrain.start, r->wtrain.n);
  r->scheme = o->scheme != BERTCL_SCHEME_AUTO ? o->scheme : detected;
  if ((st = check_scheme(r, &r->wtrain, o->train_file)) != BERTCL_OK) return st;
  if (r->wev.n && (st = check_scheme(r, &r->wev, o->eval_file)) != BERTCL_OK) return st;
  {
    bertcl_progress p = {.event = BERTCL_EVENT_INFO};
    ft_emit(r, &p, "tags: %d labels, scheme %s%s%s", r->K, bc_scheme_name(r->scheme),
            o->scheme != BERTCL_SCHEME_AUTO ? "" : " (detected)",
            r->scheme == BERTCL_SCHEME_NONE ? "; word accuracy picks the best checkpoint"
                                            : "; entity F1 picks the best checkpoint");
  }
  int32_t *wl = malloc((nw ? nw : 1) * sizeof *wl);
  r->b_to_i = malloc((size_t)r->K * sizeof *r->b_to_i);
  size_t nev = r->wev.n ? r->wev.start[r->wev.n] : 0;
  r->wev_gold = malloc((nev ? nev : 1) * sizeof *r->wev_gold);
  if (!wl || !r->b_to_i || !r->wev_gold) {
    free(wl);
    return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < nw; i++)
    if ((wl[i] = bc_labelmap_id(&r->lm, tags[i])) < 0) { /* defensive: the map has every tag */
      free(wl);
      return bc_fail(r->err, BERTCL_ERR_INTERNAL, "%s:%zu: the tag '%s' has no id",
                     o->train_file, r->wtrain.line[i], tags[i]);
    }
  for (size_t i = 0; i < nev; i++) {
    r->wev_gold[i] = bc_labelmap_id(&r->lm, r->wev.tags[i]);
    if (r->wev_gold[i] < 0) {
      free(wl);
      return bc_fail(r->err, BERTCL_ERR_FORMAT,
                     "%s:%zu: the tag '%s' is not one the training data has", o->eval_file,
                     r->wev.line[i], r->wev.tags[i]);
    }
  }
  bc_b_to_i(&r->lm, r->b_to_i);
  st = align(r, &r->wtrain, wl, &r->xtrain, "train");
  free(wl);
  if (st != BERTCL_OK) return st;
  if (r->wev.n && (st = align(r, &r->wev, r->wev_gold, &r->xev, "eval")) != BERTCL_OK) return st;
  if (!r->xtrain.n)
    return bc_fail(r->err, BERTCL_ERR_FORMAT, "%s: no word the tokenizer makes a token of",
                   o->train_file);
  r->win_labelled = malloc(r->xtrain.n * sizeof *r->win_labelled);
  if (!r->win_labelled) return bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory");
  for (size_t j = 0; j < r->xtrain.n; j++) {
    int32_t c = 0;
    for (size_t i = r->xtrain.start[j]; i < r->xtrain.start[j + 1]; i++)
      c += r->xtrain.tok_label[i] != -100;
    r->win_labelled[j] = c;
  }
  return BERTCL_OK;
}

int ft_token_evaluate(ft_run *r, bertcl_metrics *mt, double *key, char *line, size_t cap) {
  const bc_examples *x = &r->xev;
  const bc_word_data *d = &r->wev;
  size_t nw = d->start[d->n], B = r->o.batch_size;
  int K = r->K, st = BERTCL_OK;
  size_t *idx = malloc(B * sizeof *idx);
  int32_t *pred = malloc((nw ? nw : 1) * sizeof *pred);
  const char **names = malloc((nw ? nw : 1) * sizeof *names);
  float *logits = NULL;
  size_t cap_logits = 0;
  bc_metrics_clear(mt);
  bc_entity_report_free(&r->rep);
  if (!idx || !pred || !names) {
    st = bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory for the evaluation");
    goto done;
  }
  for (size_t i = 0; i < nw; i++) pred[i] = r->empty_label;
  for (size_t s = 0; s < x->n; s += B) {
    size_t nb = x->n - s < B ? x->n - s : B;
    for (size_t i = 0; i < nb; i++) idx[i] = s + i;
    st = bc_examples_batch(r->err, &r->bb, x, idx, nb, r->pad_id, r->pad_type);
    if (st != BERTCL_OK) goto done;
    size_t T = (size_t)r->bb.T, need = nb * T * (size_t)K;
    if (need > cap_logits) {
      float *l = realloc(logits, need * sizeof *l);
      if (!l) {
        st = bc_fail(r->err, BERTCL_ERR_NOMEM, "out of memory for the evaluation");
        goto done;
      }
      logits = l;
      cap_logits = need;
    }
    st = bc_trainer_fwd_bwd(r->tr, r->bb.ids, r->bb.types, r->bb.mask, NULL, NULL, r->bb.B,
                            r->bb.T, NULL, 1.0f, 0, NULL, logits);
    if (st != BERTCL_OK) goto done;
    for (size_t i = 0; i < nb; i++) {
      size_t j = s + i, base = d->start[x->sentence[j]];
      for (size_t t = 0; t < x->start[j + 1] - x->start[j]; t++) {
        int32_t w = x->tok_word[x->start[j] + t];
        if (w < 0) continue;
        const float *z = logits + (i * T + t) * (size_t)K;
        int best = 0;
        for (int k = 1; k < K; k++)
          if (z[k] > z[best]) best = k;
        pred[base + (size_t)w] = best;
      }
    }
  }
  for (size_t i = 0; i < nw; i++) names[i] = r->lm.names[pred[i]];
  st = bc_entity_score(r->err, (const char *const *)d->tags, names, d->start, d->n, &r->rep);
  if (st != BERTCL_OK) goto done;
  bc_entity_report_to_metrics(&r->rep, mt);
  if (r->scheme == BERTCL_SCHEME_NONE) {
    *key = mt->accuracy;
    snprintf(line, cap, "accuracy %.4f over %zu words", mt->accuracy, nw);
  } else {
    *key = mt->entity_f1;
    snprintf(line, cap, "precision %.4f recall %.4f F1 %.4f accuracy %.4f (%zu entities)",
             mt->precision, mt->recall, mt->entity_f1, mt->accuracy, r->rep.gold_entities);
  }
done:
  free(idx), free(pred), free(names), free(logits);
  return st;
}
