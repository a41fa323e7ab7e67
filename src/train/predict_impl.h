/* Internals of prediction shared by predict.c (the classifier, sequence classification,
 * bertcl_predict) and tagger.c (token classification). */
#ifndef BC_TRAIN_PREDICT_IMPL_H
#define BC_TRAIN_PREDICT_IMPL_H

#include "bertcl.h"
#include "encoder/encoder.h"
#include "io/durable.h"
#include "train/words.h"

struct bertcl_classifier {
  bc_err err; /* first member: bertcl_last_error(cls) */
  bertcl_ctx *ctx;
  bc_encoder *enc;
  bertcl_task task;
  int K, C, L;
  int max_position;
  float *w, *b;     /* (K, C), (K) the classifier */
  float *dw, *db;   /* (C, C), (C) the family's head dense layer on the first token (RoBERTa's
                     * and MPNet's classifier.dense, DistilBERT's pre_classifier), run on the
                     * host; NULL for BERT, whose pooler runs on the device */
  int dense_act;    /* bc_act of that layer: BC_ACT_RELU (DistilBERT), else tanh */
  float *scratch;   /* (rows, C) hidden states read back */
  size_t scratch_rows;
  char **names;     /* (K) label names */
  int empty_label;  /* what a word without tokens gets: O, else 0 */
  int has_entities; /* the label names form an IOB/IOBES scheme */
};

/* Where prediction lines go: a durable file, or standard output. */
typedef struct {
  bc_afile f;
  int to_file;
} bc_sink;

int bc_sink_line(bc_err *err, bc_sink *o, const char *text);

/* z (K) = the classifier on one row, in double; softmax in place. */
void bc_cls_head_row(const bertcl_classifier *c, const float *x, double *z);
void bc_softmax(double *z, int K);

/* Tags (and their probabilities) of every word of d's sentences (words without tokens get
 * c->empty_label, probability 0); windows (d->n, may be NULL) counts each sentence's windows. */
int bc_tag_sentences(bertcl_classifier *c, const bertcl_tokenizer *tok, const bc_word_data *d,
                     size_t max_length, size_t batch, int32_t *tags, float *probs,
                     size_t *windows);

/* bertcl_predict for token classifiers; *sentences and *words count what was tagged. */
int bc_predict_tokens(bertcl_classifier *c, const bertcl_tokenizer *tok,
                      const bertcl_predict_options *opt, bc_sink *out, size_t *sentences,
                      size_t *words);

#endif
