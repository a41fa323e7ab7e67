/* Plain-C fp32 training reference: the backward of every op in ref.h, dropout with a
 * counter-based RNG, the classification losses, BertForSequenceClassification forward+backward,
 * and AdamW with transformers' schedule and gradient clipping. The oracle for the OpenCL
 * backward kernels and optimizer (tests/test_ref_bwd.c checks it against central finite
 * differences and against transformers).
 *
 * Conventions (llm.c style):
 * - Layouts as ref.h: token-major (B*T, C), Linear weights (out, in) as PyTorch.
 * - Every gradient output ACCUMULATES (+=): zero it before the first call. This is what residual
 *   connections, shared inputs (q, k, v read the same hidden state) and gradient accumulation
 *   over micro-batches need. Exceptions say "written" and may alias their input gradient.
 * - Sums over a batch or a reduction dimension run in double and are rounded once.
 * - A gradient pointer may be NULL when that gradient is not wanted (documented per function). */
#ifndef BC_REF_TRAIN_H
#define BC_REF_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "train/layout.h"
#include "train/recipe.h"

/* ------------------------------------------------------------------------------------------ */
/* Dropout with a counter-based RNG                                                            */

/* Philox-4x32-10 (Salmon et al., SC'11; the Random123 / cuRAND generator): out = the four
 * 32-bit words for counter ctr under key. */
void ref_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

/* One dropout site of one training step. Element i of the tensor is kept when
 * u = (philox(ctr = {i lo, i hi, id, step}, key = {seed lo, seed hi})[0] >> 8) * 2^-24 >= p,
 * so a (seed, step, id) triple reproduces the mask exactly, in any order, on any device; the
 * backward regenerates it instead of storing it. Kept elements are scaled by 1 / (1 - p) (torch's
 * inverted dropout). p = 0 is the identity; p >= 1 drops everything. */
typedef struct {
  float p;       /* drop probability */
  uint64_t seed; /* run seed */
  uint32_t step; /* optimizer step (or micro-batch counter) */
  uint32_t id;   /* dropout site, see bc_dropout_id */
} ref_dropout;

/* Site ids: bc_dropout_id (train/recipe.h). */

/* 1 when element i is kept. */
int ref_dropout_keep(const ref_dropout *d, uint64_t i);
/* out = x * keep(i) / (1 - p); out may equal x. d NULL or d->p == 0: a copy. */
void ref_dropout_fwd(float *out, const float *x, size_t n, const ref_dropout *d);
/* dx = dout * keep(i) / (1 - p), written; dx may equal dout. */
void ref_dropout_bwd(float *dx, const float *dout, size_t n, const ref_dropout *d);

/* ------------------------------------------------------------------------------------------ */
/* Backward of each forward op of ref.h (same argument order: outputs, inputs, sizes)          */

/* ref_linear_fwd: out = x @ w^T + bias.
 * dx += dout @ w, dw += dout^T @ x, db += sum_n dout. Any of dx, dw, db may be NULL. */
void ref_linear_bwd(float *dx,         /* (N, IC) */
                    float *dw,         /* (OC, IC) */
                    float *db,         /* (OC) */
                    const float *dout, /* (N, OC) */
                    const float *x,    /* (N, IC) */
                    const float *w,    /* (OC, IC) */
                    int N, int IC, int OC);

/* ref_layernorm_fwd (statistics recomputed from x in double).
 * dx += d LN / dx, dw += sum_n dout * xhat, db += sum_n dout. dx, dw, db may be NULL. */
void ref_layernorm_bwd(float *dx,             /* (N, C) */
                       float *dw, float *db,  /* (C), (C) */
                       const float *dout,     /* (N, C) */
                       const float *x,        /* (N, C) the forward input */
                       const float *w,        /* (C) */
                       float eps, int N, int C);

/* ref_bias_residual_layernorm_fwd: out = LN((x + bias) + residual).
 * With dy the gradient at the LayerNorm input: dx += dy, dbias += sum_n dy, dresidual += dy,
 * dw/db as ref_layernorm_bwd. bias may be NULL (then dbias is ignored); any gradient may be NULL;
 * dx may equal dresidual (then it receives 2 dy). */
void ref_bias_residual_layernorm_bwd(float *dx,            /* (N, C) */
                                     float *dbias,         /* (C) */
                                     float *dresidual,     /* (N, C) */
                                     float *dw, float *db, /* (C), (C) LayerNorm */
                                     const float *dout,    /* (N, C) */
                                     const float *x,       /* (N, C) */
                                     const float *bias,    /* (C) or NULL */
                                     const float *residual, /* (N, C) */
                                     const float *w, float eps, int N, int C);

/* ref_embedding_fwd: out = LN(word[ids] + type[type_ids] + pos[t]).
 * The gradient at the LayerNorm input is scattered: dword[ids[bt]] += dy, dpos[t] += dy,
 * dtype[type_ids[bt]] += dy (rows hit several times accumulate, in (b, t) order).
 * Any table gradient may be NULL; type_ids NULL means all 0. */
void ref_embedding_bwd(float *dword,             /* (V, C) */
                       float *dpos,              /* (P, C) */
                       float *dtype,             /* (TT, C) */
                       float *dln_w, float *dln_b, /* (C), (C) */
                       const float *dout,        /* (B*T, C) */
                       const int32_t *ids,       /* (B*T) */
                       const int32_t *type_ids,  /* (B*T) or NULL */
                       const float *word_emb,    /* (V, C) */
                       const float *pos_emb,     /* (P, C) */
                       const float *type_emb,    /* (TT, C) */
                       const float *ln_w,        /* (C) */
                       float eps, int B, int T, int C);
/* The same with the family's positions and token types: pos_ids (B*T) (NULL: t), type_emb NULL
 * when the family has no token types (dtype then untouched); the LayerNorm input in
 * ref_embedding_pos_fwd's order. */
void ref_embedding_pos_bwd(float *dword, float *dpos, float *dtype, float *dln_w, float *dln_b,
                           const float *dout, const int32_t *ids, const int32_t *pos_ids,
                           const int32_t *type_ids, const float *word_emb, const float *pos_emb,
                           const float *type_emb, const float *ln_w, float eps, int B, int T,
                           int C);

/* d act(x) / dx in double: erf GELU, tanh GELU, ReLU (0 at x == 0, as torch). */
double ref_act_grad(double x, bc_act act);
/* ref_bias_act_fwd: y = act(x + bias). dx = dout * act'(x + bias), WRITTEN (dx may equal
 * dout); dbias += sum_n dx (may be NULL). x is the forward input before the bias. */
void ref_bias_act_bwd(float *dx,          /* (N, C) */
                      float *dbias,       /* (C) */
                      const float *dout,  /* (N, C) */
                      const float *x,     /* (N, C) */
                      const float *bias,  /* (C) or NULL */
                      bc_act act, int N, int C);
/* y = tanh(x): dx = dout * (1 - y^2), WRITTEN (dx may equal dout); y is the forward output. */
void ref_tanh_bwd(float *dx, const float *dout, const float *y, size_t n);

/* ref_softmax_fwd (p = softmax(s * scale + mask)): ds = scale * p * (dp - sum_j p dp), WRITTEN
 * (dscores may equal dprobs). Masked keys have p = 0 and get 0. A fully masked row (uniform p)
 * gets the softmax Jacobian of its uniform p, as torch's autograd gives through the additive
 * mask. */
void ref_softmax_bwd(float *dscores,      /* (B, NH, T, T) */
                     const float *dprobs, /* (B, NH, T, T) */
                     const float *probs,  /* (B, NH, T, T) the forward output */
                     float scale, int B, int NH, int T);

/* ref_attention_fwd with dropout on the probabilities (transformers' attention_probs_dropout):
 * ctx = dropout(softmax(q k^T * scale + mask)) v. probs receives the softmax output BEFORE
 * dropout (what the backward needs). drop NULL or p == 0: identical to ref_attention_fwd.
 * Element (b, h, i, j) of the probabilities is dropout element ((b*NH + h)*T + i)*T + j. */
void ref_attention_dropout_fwd(float *out,   /* (B*T, C) */
                               float *probs, /* (B, NH, T, T) */
                               const float *q, const float *k, const float *v, /* (B*T, C) */
                               const int32_t *mask, /* (B, T) or NULL */
                               const ref_dropout *drop, int B, int T, int C, int NH);
/* Backward of ref_attention_dropout_fwd: dq, dk, dv += (all three required). */
void ref_attention_bwd(float *dq, float *dk, float *dv, /* (B*T, C) each */
                       const float *dout,               /* (B*T, C) */
                       const float *q, const float *k, const float *v, /* (B*T, C) */
                       const float *probs,              /* (B, NH, T, T) pre-dropout */
                       const ref_dropout *drop, int B, int T, int C, int NH);

/* ref_pooler_fwd: pooled = tanh(h[b, 0] @ w^T + bias).
 * dh[b, 0, :] += (dz @ w) for token 0 only, dw += dz^T h0, db += sum_b dz, with
 * dz = dpooled * (1 - pooled^2). dh, dw, db may be NULL. */
void ref_pooler_bwd(float *dh,              /* (B*T, C) */
                    float *dw, float *db,   /* (C, C), (C) */
                    const float *dpooled,   /* (B, C) */
                    const float *h,         /* (B*T, C) */
                    const float *pooled,    /* (B, C) the forward output */
                    const float *w, int B, int T, int C);

/* ------------------------------------------------------------------------------------------ */
/* Losses (torch.nn.CrossEntropyLoss / MSELoss, reduction mean)                                */

/* Cross-entropy of logits (B, K) against labels (B); labels == -100 are ignored (torch's
 * ignore_index), the mean runs over the others. Returns the loss in double (NaN when no label
 * counts). dlogits (may be NULL) receives, WRITTEN, scale * (softmax - onehot) / count. */
double ref_cross_entropy_fwd_bwd(float *dlogits, const float *logits, const int32_t *labels,
                                 int B, int K, float scale);
/* MSE (regression): bc_mse_fwd_bwd (train/recipe.h). */

/* Parameters and gradients as one flat buffer: bc_layout, bc_grads and the bind/gather
 * functions of train/layout.h. */

/* ------------------------------------------------------------------------------------------ */
/* Heads: BertForSequenceClassification (encoder -> pooler -> dropout -> classifier -> loss)   */
/* and BertForTokenClassification (encoder -> dropout -> classifier on every token -> loss)    */

/* Dropout rates and key: bc_dropout_cfg (train/recipe.h). */

/* Both heads run the training schedule of every family, ref_task_fwd_bwd (ref_task.h): the
 * model's family decides positions, token types, the relative position bias and the sequence
 * head's shape (BERT's pooler, RoBERTa's and MPNet's dense + tanh with an input dropout at site
 * BC_DROP_HEAD_IN, DistilBERT's pre_classifier + ReLU); the names below are BERT's.
 *
 * One forward and backward pass. w must have a pooler and a classifier (K = num_labels rows);
 * another family's sequence head needs its head_w/head_b (g's are then its pool_w/pool_b).
 * K > 1: cross-entropy against labels (B) (-100 ignored); K == 1: MSE against targets (B).
 * drop NULL: dropout off (eval mode). g NULL: forward only. Gradients of the loss times
 * grad_scale ACCUMULATE into g (pass 1/accum for gradient accumulation over micro-batches).
 * loss (double) and logits (B, K) may be NULL. The activations the backward needs are kept
 * internally for the duration of the call. Returns BERTCL_OK or an error (bad arguments,
 * out of memory). */
int ref_cls_fwd_bwd(const bc_config *cfg, const bc_weights *w, int K,
                    const int32_t *ids,      /* (B*T) */
                    const int32_t *type_ids, /* (B*T) or NULL */
                    const int32_t *mask,     /* (B, T) or NULL */
                    const int32_t *labels,   /* (B) when K > 1 */
                    const float *targets,    /* (B) when K == 1 */
                    int B, int T, const bc_dropout_cfg *drop, float grad_scale,
                    bc_grads *g, double *loss, float *logits /* (B, K) */);

/* BertForTokenClassification: encoder -> dropout (the classifier site, every token) ->
 * classifier on every token -> cross-entropy over the labelled tokens (labels (B*T), -100
 * ignored: special tokens, padding, later subwords). w needs a classifier (K >= 2 rows); a
 * pooler is not used. Otherwise as ref_cls_fwd_bwd; logits are (B*T, K). */
int ref_tok_fwd_bwd(const bc_config *cfg, const bc_weights *w, int K,
                    const int32_t *ids,      /* (B*T) */
                    const int32_t *type_ids, /* (B*T) or NULL */
                    const int32_t *mask,     /* (B, T) or NULL */
                    const int32_t *labels,   /* (B*T) */
                    int B, int T, const bc_dropout_cfg *drop, float grad_scale,
                    bc_grads *g, double *loss, float *logits /* (B*T, K) */);

/* ------------------------------------------------------------------------------------------ */
/* Optimizer                                                                                   */

/* torch.nn.utils.clip_grad_norm_(params, max_norm): total = ||all gradients||_2 (one norm over
 * every element of g, computed in double); when max_norm > 0 every gradient is multiplied by
 * min(1, max_norm / (total + 1e-6)). Returns total (before clipping). */
double ref_clip_grad_norm(float *g, size_t n, float max_norm);

/* The schedule (bc_lr_linear) and the AdamW settings (bc_adamw_cfg): train/recipe.h. */

/* torch.optim.AdamW on one tensor, step t >= 1 (the count after this step), as torch orders it:
 * p *= 1 - lr * wd; m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
 * p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps). */
void ref_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int t);
/* ref_adamw_update over every tensor of the flat buffers, wd only where lay->t[i].decay. */
void ref_adamw_step(float *params, const float *grads, float *m, float *v, const bc_layout *lay,
                    const bc_adamw_cfg *cfg, float lr, int t);

#endif /* BC_REF_TRAIN_H */
