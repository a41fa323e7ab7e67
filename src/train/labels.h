/* Label maps: names <-> ids of a classifier's outputs (config.json id2label / label2id), built
 * from the training labels as transformers' scripts do, and regression targets. */
#ifndef BC_TRAIN_LABELS_H
#define BC_TRAIN_LABELS_H

#include <stddef.h>

#include "common.h"

typedef struct {
  int K;
  char **names; /* (K) */
} bc_labelmap;

void bc_labelmap_free(bc_labelmap *m);
/* Id of name, -1 when absent. */
int bc_labelmap_id(const bc_labelmap *m, const char *name);
/* A map of the given names, in order (copied). */
int bc_labelmap_from_names(bc_err *err, bc_labelmap *m, const char *const *names, int K);

/* Sequence classification. The model's id2label when it names every label of the data
 * (model_names, model_K > 1; model_names[k] may be NULL); else integer labels "0".."max" keep
 * their values (K = max + 1, at least 2); else the distinct strings sorted (at least 2). */
int bc_labelmap_build(bc_err *err, bc_labelmap *m, const char *const *labels, size_t n,
                      const char *const *model_names, int model_K);
/* Every distinct label, sorted (byte order): run_ner.py's label list for string tags. */
int bc_labelmap_sorted(bc_err *err, bc_labelmap *m, const char *const *labels, size_t n);
/* Grows a map of integer names "0".."K-1" to num_labels entries (--num-labels N larger than
 * the data's); an error when the names are not those integers. */
int bc_labelmap_pad_ints(bc_err *err, bc_labelmap *m, int num_labels);

/* A label that strtod reads whole as a finite number. */
int bc_label_is_number(const char *s, double *v);
/* Regression when every label is a number and one is written as a non-integer ("3.8", "5.0",
 * a JSON float: the column `datasets` would type as float, what run_glue calls regression), or
 * every label is a number and the model is already a regressor (model_K == 1). */
int bc_labels_are_regression(const char *const *labels, size_t n, int model_K);
/* Regression targets t (n) of labels; lines (n, may be NULL) name the offender's line. */
int bc_labels_targets(bc_err *err, const char *name, const char *const *labels,
                      const size_t *lines, size_t n, float *t);

#endif
