/* Internals of bertcl_finetune shared by the loop (finetune.c) and the task-specific parts:
 * sequence classification and regression (ft_sequence.c), token classification
 * (ft_token.c). Each task reads its data, builds the label map and the tokenized examples, and
 * evaluates; the loop, the parameters, checkpoints and export are common. */
#ifndef BC_TRAIN_FINETUNE_IMPL_H
#define BC_TRAIN_FINETUNE_IMPL_H

#include <jansson.h>

#include "bertcl.h"
#include "train/align.h"
#include "train/data.h"
#include "train/entity.h"
#include "train/examples.h"
#include "train/labels.h"
#include "train/layout.h"
#include "train/trainer.h"
#include "train/words.h"

typedef struct {
  bertcl_ctx *ctx;
  bc_err *err;
  const bertcl_model *model;
  const bertcl_tokenizer *tok;
  bertcl_finetune_options o;
  bertcl_progress_fn fn;
  void *user;
  int stop;             /* the callback asked to stop */
  bertcl_task task;     /* classification, regression or token classification */
  bc_head_kind head;
  int K;
  bc_labelmap lm;
  size_t n_train_items; /* texts or sentences of the training file (the run's signature) */
  bc_examples xtrain, xev; /* examples: texts, or windows of sentences */
  int32_t pad_id, pad_type;
  bc_layout lay;
  float *flat, *m, *v;  /* (lay.total) each */
  bc_trainer *tr;
  bc_batch_buf bb;
  int C;
  char *src_cfg_text;   /* the model's config.json */
  json_t *src_cfg;
  char msg[1024];
  /* sequence tasks */
  bc_text_data train, ev;
  float *ftrain, *feval; /* frozen encoder: cached h_L[:, 0] (n, C) of train and eval */
  /* token classification */
  bc_word_data wtrain, wev;
  int32_t *wev_gold;       /* (words of wev) gold label ids */
  int32_t *b_to_i;         /* (K) */
  int32_t *win_labelled;   /* (xtrain.n) labelled tokens of each training window */
  bertcl_tag_scheme scheme;
  int32_t empty_label;     /* what a word without tokens is predicted: O, else label 0 */
  bc_entity_report rep, best_rep; /* the last evaluation's, the best one's */
} ft_run;

/* Sends an event whose message is printf-formatted (the callback may ask to stop). */
void ft_emit(ft_run *r, bertcl_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
double ft_json_num(json_t *cfg, const char *key, double dflt);

/* Sequence tasks: reads the data (train_data/len: the training file's bytes), builds the label
 * map (classification) or targets (regression) and the examples; sets task, head, K. */
int ft_sequence_prepare(ft_run *r, const char *train_data, size_t train_len);
/* Eval metrics; *key: higher is better (accuracy, or -MSE). line: the EVAL message. */
int ft_sequence_evaluate(ft_run *r, bertcl_metrics *m, double *key, char *line, size_t cap);

/* Token classification: reads CoNLL or JSONL words, builds the label map from the tags, checks
 * the scheme, aligns and windows; sets task, head, K. */
int ft_token_prepare(ft_run *r, const char *train_data, size_t train_len);
/* Eval metrics over every word; *key: entity F1 (word accuracy without a scheme). */
int ft_token_evaluate(ft_run *r, bertcl_metrics *m, double *key, char *line, size_t cap);
/* The task's extra signature fields (appended to the checkpoint's run signature). */
void ft_token_signature(const ft_run *r, char *buf, size_t cap);
void ft_token_free(ft_run *r);

#endif
