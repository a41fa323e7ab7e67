/* Plain-C fp32 reference of every encoder op, and the one host forward schedule of every family
 * (BERT, RoBERTa / XLM-RoBERTa / CamemBERT, DistilBERT, MPNet): the oracle for the OpenCL kernels
 * and schedules. The families differ only by data in bc_config and bc_weights (positions, token
 * types, relative attention bias, head); ref_encoder_fwd has no per-family branch.
 * In the style of llm.c: plain loops, one function per op, a shape comment on every buffer,
 * nothing clever, built without fast-math; sums that matter accumulate in double.
 * Token-major layouts: a (B*T, C) buffer holds token t of sequence b at row b*T + t.
 * mask: (B, T) int32, 1 for real tokens, 0 for padding. */
#ifndef BC_REF_H
#define BC_REF_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "ref/ref_train.h" /* ref_dropout */

/* Position ids as the family computes them (bc_config.pos_kind): t (BC_POS_ARANGE), or
 * padding_idx + the count of non-padding ids up to t, padding_idx for a padding id
 * (BC_POS_PADDED, transformers' create_position_ids_from_input_ids). */
void ref_position_ids(int32_t *pos,       /* (B*T) */
                      const int32_t *ids, /* (B*T) */
                      const bc_config *cfg, int B, int T);

/* out = LayerNorm((word_emb[ids] + type_emb[type_ids]) + pos_emb[pos_ids]), in transformers'
 * fp32 order; without token types (type_emb NULL: DistilBERT, MPNet) word_emb[ids] +
 * pos_emb[pos_ids]. type_ids NULL: all 0. */
void ref_embedding_pos_fwd(float *out,              /* (B*T, C) */
                           const int32_t *ids,      /* (B*T) */
                           const int32_t *pos_ids,  /* (B*T) */
                           const int32_t *type_ids, /* (B*T) or NULL */
                           const float *word_emb,   /* (V, C) */
                           const float *pos_emb,    /* (P, C) */
                           const float *type_emb,   /* (TT, C) or NULL */
                           const float *ln_w, const float *ln_b, /* (C) */
                           float eps, int B, int T, int C);
/* ref_embedding_pos_fwd with position t for token t (BERT). */
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
/* MPNet's relative position bias, shared by every layer and sequence:
 * bias[h, i, j] = table[bc_rel_position_bucket(j - i), h] (model/family.h). */
void ref_rel_position_bias_fwd(float *bias,        /* (NH, T, T) */
                               const float *table, /* (NB, NH) relative_attention_bias */
                               int NH, int T);
/* Gradient of the relative position bias table: the bias enters every sequence's scores, so
 * dtable[bucket(j - i), h] += sum over b, i, j of dz[b, h, i, j], with dz the gradient at the
 * scaled scores (softmax's input; ref_softmax_bwd's dscores / scale). ACCUMULATES: call once per
 * layer, zero dtable first. Adjoint of ref_rel_position_bias_fwd summed over the batch. */
void ref_rel_position_bias_bwd(float *dtable,    /* (NB, NH) */
                               const float *dz,  /* (B, NH, T, T) */
                               int B, int NH, int T);
/* The general attention: scores = q k^T * scale (+ pos_bias[h] when given) + the padding mask,
 * softmax over keys (probs receives it before dropout, may be NULL), dropout on the
 * probabilities (drop NULL or p 0: none; element (b, h, i, j) is dropout element
 * ((b*NH + h)*T + i)*T + j), out = probs v. transformers' order: MPNet adds its position bias to
 * the scaled scores, then the mask. */
void ref_attention_bias_fwd(float *out,                /* (B*T, C) */
                            float *probs,              /* (B, NH, T, T) or NULL */
                            const float *q, const float *k, const float *v, /* (B*T, C) each */
                            const int32_t *mask,       /* (B, T) or NULL */
                            const float *pos_bias,     /* (NH, T, T) or NULL */
                            const ref_dropout *drop,   /* or NULL */
                            int B, int T, int C, int NH);
/* Masked softmax with an additive position bias: s = s * scale + bias[h, i, j] + mask term
 * (bias NULL: ref_softmax_fwd). */
void ref_softmax_bias_fwd(float *scores,        /* (B, NH, T, T) */
                          const float *pos_bias, /* (NH, T, T) or NULL */
                          const int32_t *mask, float scale, int B, int NH, int T);
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

/* ------------------------------------------------------------------------------------------ */
/* The forward schedule                                                                        */

/* Activations of one encoder layer, what the backward needs (see ref_encoder_fwd). */
typedef struct {
  float *q, *k, *v; /* (B*T, C) each, biases added */
  float *probs;     /* (B, NH, T, T) attention probabilities before dropout */
  float *ctx;       /* (B*T, C) attention context */
  float *t1;        /* (B*T, C) dropout(ctx @ ao_w^T + ao_b): LayerNorm 1's input minus h */
  float *h1;        /* (B*T, C) LayerNorm 1 output: the attention block's output */
  float *pre;       /* (B*T, I) h1 @ inter_w^T, before the bias */
  float *act;       /* (B*T, I) act(pre + inter_b) */
  float *t2;        /* (B*T, C) dropout(act @ out_w^T + out_b): LayerNorm 2's input minus h1 */
} ref_layer_acts;

/* What a forward keeps for the backward: every layer's activations, the positions and the
 * relative position bias it used. Sized for one (B, T) by ref_fwd_acts_alloc. */
typedef struct {
  int B, T, L;
  int32_t *pos_ids;       /* (B*T) */
  float *pos_bias;        /* (NH, T, T); NULL when the family has no relative bias */
  ref_layer_acts *layer;  /* (L) */
  float *arena;
} ref_fwd_acts;

int ref_fwd_acts_alloc(ref_fwd_acts *a, const bc_config *cfg, int B, int T);
void ref_fwd_acts_free(ref_fwd_acts *a); /* NULL and a zeroed struct are no-ops */

/* Dropout sites of ref_encoder_fwd, an array of REF_FWD_DROP_SITES(L) ref_dropout: the
 * embeddings' output, then for layer l the attention probabilities, the attention output and
 * the FFN output. The caller fills in p, seed, step and each site's id (its training recipe's
 * numbering), so the forward needs no vocabulary of its own. */
#define REF_FWD_DROP_SITES(L) (1 + 3 * (L))
enum { REF_FWD_DROP_ATTN = 0, REF_FWD_DROP_ATTN_OUT = 1, REF_FWD_DROP_FFN_OUT = 2 };
static inline int ref_fwd_drop_site(int layer, int site) { return 1 + 3 * layer + site; }

/* The encoder forward of every family, as transformers computes it:
 *   positions (ref_position_ids), embeddings (+ token types when the family has them),
 *   dropout; the relative position bias (MPNet) once; each layer: q, k, v, attention with the
 *   padding mask (+ bias) and dropout on the probabilities, output projection + bias, dropout,
 *   post-LayerNorm with the residual, FFN (act from config), dropout, post-LayerNorm.
 * hidden receives every layer's hidden state, (L+1, B*T, C), index 0 = the embeddings' output
 * (after dropout), as output_hidden_states. drop: NULL (eval) or REF_FWD_DROP_SITES(L) sites.
 * acts: NULL (nothing kept), or allocated for (B, T) by ref_fwd_acts_alloc: receives every
 * layer's activations for the backward. Type ids are ignored when the family has no token
 * types. Returns BERTCL_OK or an error (bad sizes or ids, out of memory). */
int ref_encoder_fwd(const bc_config *cfg, const bc_weights *w,
                    const int32_t *ids,      /* (B*T) */
                    const int32_t *type_ids, /* (B*T) or NULL */
                    const int32_t *mask,     /* (B, T) or NULL (all real) */
                    int B, int T,
                    const ref_dropout *drop, /* (REF_FWD_DROP_SITES(L)) or NULL */
                    float *hidden,           /* (L+1, B*T, C) */
                    ref_fwd_acts *acts);

/* ref_encoder_fwd in eval mode, and the pooler output (B, C) of the last layer when pooled is
 * not NULL and the model has a pooler (pooled is left untouched otherwise). */
int ref_model_fwd(const bc_config *cfg, const bc_weights *w,
                  const int32_t *ids,      /* (B*T) */
                  const int32_t *type_ids, /* (B*T) or NULL */
                  const int32_t *mask,     /* (B, T) or NULL (all real) */
                  int B, int T,
                  float *hidden,           /* (L+1, B*T, C) */
                  float *pooled);          /* (B, C) or NULL */

/* Activations of the sequence-classification head, for the backward. */
typedef struct {
  float *x;  /* (B, C) h[:, 0] after the input dropout (RoBERTa, MPNet) */
  float *z;  /* (B, C) act(x @ head_w^T + head_b): tanh (BERT's pooler, RoBERTa, MPNet) or ReLU
              * (DistilBERT) */
  float *zd; /* (B, C) z after the head's dropout: the classifier's input */
} ref_head_acts;

/* The sequence-classification head of bc_config.head on the last hidden state h:
 * logits (B, K) = cls(dropout(act(dense(dropout_in(h[:, 0]))))). d_in applies only where the
 * family's head has an input dropout (BC_CLS_HEAD_DENSE_TANH); d_in, d_out NULL: eval. w needs
 * head_w/head_b (the pooler for BERT) and cls_w/cls_b with K rows. acts (may be NULL) receives
 * x, z, zd: three (B, C) caller buffers. */
int ref_seq_head_fwd(float *logits,            /* (B, K) */
                     ref_head_acts *acts,
                     const bc_config *cfg, const bc_weights *w,
                     const float *h,           /* (B*T, C) last hidden state */
                     int B, int T, int K, const ref_dropout *d_in, const ref_dropout *d_out);

#endif /* BC_REF_H */
