/* Task models of every encoder family on the plain-C reference: ref_encoder_fwd (ref.h) keeping
 * its activations, the family's sequence-classification head (bc_config.seq_head) or a
 * token-classification head, the loss, and the backward to every parameter. The training oracle
 * of RobertaForSequenceClassification, DistilBertForSequenceClassification,
 * MPNetForSequenceClassification, their *ForTokenClassification, and BERT's, with one schedule:
 * what differs between families is the data ref_encoder_fwd already reads (positions, token
 * types, the relative position bias) and the head's shape.
 *
 * Gradients ACCUMULATE (+=) into g, a bc_weights whose fields point at writable float buffers
 * shaped as the weights (bc_family_params lists them): zero them first. */
#ifndef BC_REF_TASK_H
#define BC_REF_TASK_H

#include "ref/ref.h"

typedef enum {
  REF_TASK_SEQUENCE = 0, /* the family's sequence head on token 0; cross-entropy (K > 1, labels
                          * (B), -100 ignored) or MSE (K == 1, targets (B)) */
  REF_TASK_TOKEN = 1     /* dropout and the classifier on every token; cross-entropy over the
                          * labelled tokens (labels (B*T), -100 ignored) */
} ref_task;

/* Dropout of one micro-batch, as ref_dropout sites (NULL members: none). */
typedef struct {
  const ref_dropout *enc;      /* REF_FWD_DROP_SITES(L) sites of ref_encoder_fwd, or NULL */
  const ref_dropout *head_in;  /* sequence head: on token 0 before the dense layer (where the
                                * family's head has it) */
  const ref_dropout *head_out; /* sequence head: after the activation; token head: before the
                                * classifier */
} ref_task_dropout;

/* One forward and backward pass. w needs the task's head: cls_w/cls_b (K rows) and, for a
 * sequence head, head_w/head_b. grad_scale multiplies the loss's gradient (1/accum for
 * accumulation over micro-batches). g NULL: forward only. loss, logits ((B, K) or (B*T, K)) may
 * be NULL. Returns BERTCL_OK or an error (bad arguments, out of memory). */
int ref_task_fwd_bwd(const bc_config *cfg, const bc_weights *w, ref_task task, int K,
                     const int32_t *ids,      /* (B*T) */
                     const int32_t *type_ids, /* (B*T) or NULL */
                     const int32_t *mask,     /* (B, T) or NULL */
                     const int32_t *labels,   /* (B) or (B*T); NULL for MSE */
                     const float *targets,    /* (B) for K == 1 sequence tasks */
                     int B, int T, const ref_task_dropout *drop, float grad_scale,
                     bc_weights *g, double *loss, float *logits);

#endif /* BC_REF_TASK_H */
