/* Plain-C fp32 reference of every encoder op: the oracle for the OpenCL kernels.
 * In the style of llm.c: plain loops, one function per op, a shape comment on every buffer,
 * nothing clever, built without fast-math; sums that matter accumulate in double.
 * Token-major layouts: a (B*T, C) buffer holds token t of sequence b at row b*T + t.
 * mask: (B, T) int32, 1 for real tokens, 0 for padding. */
#ifndef BC_REF_H
#define BC_REF_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* out = LayerNorm(word_emb[ids] + pos_emb[t] + type_emb[type_ids]) */
void ref_embedding_fwd(float *out,               /* (B*T, C) */
                       const int32_t *ids,       /* (B*T) */
                       const int32_t *type_ids,  /* (B*T) or NULL (all 0) */
                       const float *word_emb,    /* (V, C) */
                       const float *pos_emb,     /* (P, C) */
                       const float *type_emb,    /* (TT, C) */
                       const float *ln_w, const float *ln_b, /* (C) */
                       float eps, int B, int T, int C);
/* out = LayerNorm(x) over the last dimension (biased variance, as torch). out may equal x. */
void ref_layernorm_fwd(float *out, const float *x, /* (N, C) */
                       const float *w, const float *b, float eps, int N, int C);
/* out = LayerNorm(x + bias + residual): the post-LN step after a projection. */
void ref_bias_residual_layernorm_fwd(float *out,            /* (N, C) */
                                     const float *x,        /* (N, C) GEMM output, no bias */
                                     const float *bias,     /* (C) */
                                     const float *residual, /* (N, C) */
                                     const float *w, const float *b, float eps, int N, int C);
/* out = x @ w^T + bias (PyTorch Linear). bias may be NULL. */
void ref_linear_fwd(float *out,      /* (N, OC) */
                    const float *x,  /* (N, IC) */
                    const float *w,  /* (OC, IC) */
                    const float *bias, /* (OC) */
                    int N, int IC, int OC);
/* In place: x = act(x + bias) */
void ref_bias_act_fwd(float *x, /* (N, C) */ const float *bias, /* (C) */ bc_act act, int N, int C);
float ref_act(float x, bc_act act);
/* Scaled dot-product attention with the padding mask as transformers applies it
 * (additive large negative on masked keys, softmax over keys). q, k, v are (B*T, C) with heads
 * interleaved as transformers: head h uses columns [h*HS, (h+1)*HS). */
void ref_attention_fwd(float *out,         /* (B*T, C) context */
                       float *probs,       /* (B, NH, T, T) attention probabilities, or NULL */
                       const float *q, const float *k, const float *v, /* (B*T, C) each */
                       const int32_t *mask, /* (B, T) */
                       int B, int T, int C, int NH);
/* Masked softmax in place over the last dimension of scores (B, NH, T, T) after scaling:
 * s = s * scale + (mask[b, j] ? 0 : -FLT_MAX-ish), then softmax over j.
 * The reference adds exactly -FLT_MAX (torch.finfo(float32).min, transformers' eager mask):
 * a masked key gets probability 0 exactly; a row whose keys are all masked (a sequence with no
 * real token) comes out uniform, 1/T for every key, never NaN. (transformers' default sdpa path
 * gives such a row a zero context instead; no real input has one.) mask may be NULL (all real). */
void ref_softmax_fwd(float *scores, const int32_t *mask, float scale, int B, int NH, int T);
/* pooler: out = tanh(h[b, 0, :] @ w^T + bias) */
void ref_pooler_fwd(float *out, /* (B, C) */ const float *h, /* (B*T, C) */ const float *w,
                    const float *bias, int B, int T, int C);
/* Sentence pooling over the attention mask, as sentence-transformers computes it.
 * mode: BC_POOL_CLS (token 0), BC_POOL_MEAN (sum of real tokens / max(count, 1e-9)),
 * BC_POOL_MAX (masked positions set to -1e9 before the max). A sequence with no real token gives
 * 0 (mean) and -1e9 (max). (sentence-transformers 6.x masks with -inf for max and takes the first
 * real token for cls; identical for right-padded input with at least one real token.)
 * Any other mode fills out with NaN. */
void ref_pool_fwd(float *out, /* (B, C) */ const float *h, /* (B*T, C) */
                  const int32_t *mask, /* (B, T) */ int mode, int B, int T, int C);
/* out = x / max(||x||_2, 1e-12) per row (torch.nn.functional.normalize). out may equal x. */
void ref_l2norm_fwd(float *out, const float *x, /* (N, C) */ int N, int C);

/* Whole BertModel forward. hidden receives every layer's hidden state:
 * (L+1, B*T, C), index 0 = embedding output, as transformers' output_hidden_states.
 * pooled (B, C) receives the pooler output (may be NULL, or is left untouched when the model has
 * no pooler). Returns BERTCL_OK or an error (bad sizes, out of memory). */
int ref_bert_fwd(const bc_config *cfg, const bc_weights *w,
                 const int32_t *ids,      /* (B*T) */
                 const int32_t *type_ids, /* (B*T) or NULL */
                 const int32_t *mask,     /* (B, T) or NULL (all real) */
                 int B, int T,
                 float *hidden,           /* (L+1, B*T, C) */
                 float *pooled);          /* (B, C) or NULL */

#endif /* BC_REF_H */
