/* Tokenized training examples and the padded (B, T) batches the trainer takes. Every example
 * is tokenized once, up front; a batch gathers rows by index and pads them to its longest. */
#ifndef BC_TRAIN_EXAMPLES_H
#define BC_TRAIN_EXAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "bertcl.h"
#include "common.h"
#include "train/data.h"

typedef struct {
  size_t n;              /* examples */
  size_t *start;         /* (n + 1) example i holds tokens [start[i], start[i+1]) */
  int32_t *ids, *types;  /* (start[n]) token ids and token type ids */
  int32_t *label;        /* (n) class ids (sequence classification), or NULL */
  float *target;         /* (n) regression targets, or NULL */
  /* token classification (train/align.h): examples are windows of sentences */
  int32_t *tok_label;    /* (start[n]) tag id of each token, -100 = not trained on, or NULL */
  int32_t *tok_word;     /* (start[n]) the word (index in its sentence) whose first subword the
                            token is, else -1: where a word's prediction is read */
  size_t *sentence;      /* (n) the sentence of each window */
} bc_examples;

void bc_examples_free(bc_examples *x);
/* Tokenizes d's texts (and pairs) with opt (truncation to opt->max_length). Labels and targets
 * are left NULL for the caller to fill. */
int bc_examples_from_text(bc_err *err, bc_examples *x, const bertcl_tokenizer *tok,
                          const bc_text_data *d, const bertcl_tokenize_options *opt);

/* The tokenizer's padding id and padding type id (what bertcl_tokenizer_encode_batch pads
 * with). */
int bc_tokenizer_pad(bc_err *err, const bertcl_tokenizer *tok, int32_t *pad_id,
                     int32_t *pad_type_id);

/* A padded batch; buffers grow as needed and are reused. */
typedef struct {
  int B, T;
  int32_t *ids, *types, *mask; /* (B, T) */
  int32_t *tok_labels;         /* (B, T) token classification: -100 on padding */
  int32_t *labels;             /* (B) */
  float *targets;              /* (B) */
  size_t cap_cells, cap_rows;
} bc_batch_buf;

void bc_batch_buf_free(bc_batch_buf *b);
/* Rows idx[0..n) of x, right-padded with pad_id / pad_type_id, mask 1 on real tokens; token
 * labels (when x has them) -100 on padding. */
int bc_examples_batch(bc_err *err, bc_batch_buf *b, const bc_examples *x, const size_t *idx,
                      size_t n, int32_t pad_id, int32_t pad_type_id);

#endif
