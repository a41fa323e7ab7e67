/* The training recipe's shared vocabulary: dropout sites and rates, AdamW settings, the learning
 * rate schedule and the host-side loss. Used by the OpenCL trainer, the fine-tuning loop and the
 * plain-C reference (src/ref), so a (seed, step) means the same masks everywhere. */
#ifndef BC_TRAIN_RECIPE_H
#define BC_TRAIN_RECIPE_H

#include <stddef.h>
#include <stdint.h>

/* Dropout of one micro-batch: rates from config.json and the Philox key and counter. Element i
 * of dropout site `id` is kept when philox(ctr = {i lo, i hi, id, step}, key = {seed lo,
 * seed hi})[0] >> 8, times 2^-24, is >= p (cl/backward.cl and src/ref/ref_bwd.c). */
typedef struct {
  float hidden_p; /* hidden_dropout_prob: embeddings, attention output, FFN output */
  float attn_p;   /* attention_probs_dropout_prob */
  float cls_p;    /* classifier_dropout (transformers: hidden_dropout_prob when null) */
  uint64_t seed;
  uint32_t step;  /* counter: use a fresh value for every micro-batch */
} bc_dropout_cfg;

/* Site ids: bc_dropout_id(-1, site) = site for the sites outside the encoder layers (embeddings
 * output 0, classifier input 1, the head's dense layer's input 2 where the family's head has
 * that dropout: RoBERTa's and MPNet's classifier.dense); bc_dropout_id(l, site) = 16 + 4*l +
 * site inside layer l (attention probabilities 0, attention output 1, FFN output 2). */
enum { BC_DROP_EMB = 0, BC_DROP_CLS = 1, BC_DROP_HEAD_IN = 2 };     /* layer -1 */
enum { BC_DROP_ATTN = 0, BC_DROP_ATTN_OUT = 1, BC_DROP_FFN_OUT = 2 }; /* layer l >= 0 */
uint32_t bc_dropout_id(int layer, int site);

typedef struct {
  float beta1, beta2, eps, weight_decay; /* torch defaults 0.9, 0.999, 1e-8; Trainer's wd 0.0 */
} bc_adamw_cfg;

/* transformers.get_linear_schedule_with_warmup: the learning rate of optimizer step `step`
 * (0-based: the first step uses step = 0) is base * step / warmup while step < warmup, then
 * base * max(0, (total - step) / max(1, total - warmup)). */
float bc_lr_linear(int step, int warmup, int total, float base);

/* torch.nn.MSELoss (mean) of logits (B) (num_labels = 1) against targets (B):
 * loss = mean (logit - target)^2, dlogits = scale * 2 (logit - target) / B, WRITTEN (may be
 * NULL). */
double bc_mse_fwd_bwd(float *dlogits, const float *logits, const float *targets, int B,
                      float scale);

#endif /* BC_TRAIN_RECIPE_H */
