/* Evaluation metrics of sequence tasks: accuracy and F1 as scikit-learn computes them, MSE and
 * Pearson / Spearman correlation as GLUE's STS-B (scipy). Entity-level metrics of token
 * classification: train/entity.h. */
#ifndef BC_TRAIN_METRICS_H
#define BC_TRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bertcl.h"

/* Accuracy, macro-F1 over labels present in gold or pred, and (K == 2) the F1 of label 1
 * (K != 2: f1 = macro-F1), into m (other fields untouched). */
void bc_score_classes(bertcl_metrics *m, const int32_t *gold, const int32_t *pred, size_t n,
                      int K);
/* MSE, Pearson and Spearman correlation (ties get their mean rank; NaN when either side is
 * constant) of predictions p against gold g (n). BERTCL_ERR_NOMEM or BERTCL_OK. */
int bc_score_regression(bertcl_metrics *m, const double *g, const double *p, size_t n);
/* Every field NaN, counts 0. */
void bc_metrics_clear(bertcl_metrics *m);

#endif
