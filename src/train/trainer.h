/* Fine-tuning of every family's *For{Sequence,Token}Classification on the OpenCL device (BERT,
 * RoBERTa / XLM-R / CamemBERT, DistilBERT, MPNet): parameters, gradients and AdamW moments as
 * flat device buffers (tensors in bc_layout order and names, each group at an offset aligned for
 * sub-buffers; Q, K and V of a layer packed as one (3C, C) weight and one (3C) bias, as the
 * inference encoder uploads them), the forward of encoder/forward.h (extraction's) keeping what
 * the backward needs, the backward through bc_gemm and the kernels of train/train_ops.h, a task
 * head from train/head.h's table (heads.c) in the family's shape, cross-entropy (num_labels > 1;
 * per token for the token head) or MSE (num_labels == 1), gradient accumulation, clipping by
 * global norm and AdamW with transformers' no-decay group. Dropout uses the Philox sites of
 * train/recipe.h, so a (seed, step) reproduces the reference exactly. Twin: src/ref/ref_task.c. */
#ifndef BC_TRAINER_H
#define BC_TRAINER_H

#include "model/model.h"
#include "train/head.h"
#include "train/layout.h"
#include "train/recipe.h"
#include "runtime/runtime.h"

typedef struct bc_trainer bc_trainer;

/* Uploads params (lay->total floats in the layout's order: bc_layout_init(cfg, num_labels,
 * the head's seq_dense)); gradients and moments start at zero. freeze_encoder: the encoder runs
 * without dropout, the backward stops at the head and only the head's parameters are updated. */
int bc_trainer_create(bertcl_ctx *ctx, const bc_config *cfg, bc_head_kind head, int num_labels,
                      const float *params, int freeze_encoder, bc_trainer **out);
void bc_trainer_free(bc_trainer *tr);
const bc_layout *bc_trainer_layout(const bc_trainer *tr);

/* Zeroes the gradient buffer (call before the first micro-batch of an optimizer step). */
int bc_trainer_zero_grad(bc_trainer *tr);

/* One micro-batch: forward, loss and backward; gradients of loss * grad_scale ACCUMULATE.
 * ids/type_ids/mask (B, T) host int32 (type_ids NULL = 0, mask NULL = all real, right-padded);
 * labels (R) for num_labels > 1 (-100 ignored), targets (B) for num_labels == 1 (sequence head
 * only), with R = B rows for the sequence head and B*T for the token head. drop NULL: dropout
 * off. backward 0: forward only (evaluation). loss, logits (R, K) may be NULL. */
int bc_trainer_fwd_bwd(bc_trainer *tr, const int32_t *ids, const int32_t *type_ids,
                       const int32_t *mask, const int32_t *labels, const float *targets, int B,
                       int T, const bc_dropout_cfg *drop, float grad_scale, int backward,
                       double *loss, float *logits);

/* Frozen encoder, sequence head: the features the head reads, h_L[:, 0] (B, C), of a batch
 * (dropout off), and a head-only step on such features (needs freeze_encoder; arguments as
 * bc_trainer_fwd_bwd). */
int bc_trainer_features(bc_trainer *tr, const int32_t *ids, const int32_t *type_ids,
                        const int32_t *mask, int B, int T, float *feats);
int bc_trainer_head_fwd_bwd(bc_trainer *tr, const float *feats, const int32_t *labels,
                            const float *targets, int B, const bc_dropout_cfg *drop,
                            float grad_scale, int backward_on, double *loss, float *logits);

/* Clip the accumulated gradients to max_norm (<= 0: no clipping; *norm receives the norm before
 * clipping, may be NULL) and apply AdamW step t (>= 1) with learning rate lr. */
int bc_trainer_step(bc_trainer *tr, const bc_adamw_cfg *cfg, float lr, float max_norm, int t,
                    double *norm);

/* Host copies in the layout's order (lay->total floats each). which: 0 params, 1 grads, 2 m,
 * 3 v. */
enum { BC_TR_PARAMS = 0, BC_TR_GRADS = 1, BC_TR_M = 2, BC_TR_V = 3 };
int bc_trainer_read(bc_trainer *tr, int which, float *flat);
int bc_trainer_write(bc_trainer *tr, int which, const float *flat);

#endif
