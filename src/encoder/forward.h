/* The one device forward of every encoder family (BERT, RoBERTa / XLM-R / CamemBERT, DistilBERT,
 * MPNet), run by extraction (encoder.c) and by training (train/trainer.c). What differs between
 * families is data in bc_config (positions, token types, the relative position bias); what
 * differs between the two callers is which activations they hand in:
 *   extraction: one scratch set shared by every layer, nothing kept, no dropout; the LayerNorms
 *               run fused with their residual sums (bias_residual_layernorm_fwd, embedding_fwd);
 *   training:   one set per layer, the LayerNorm inputs kept for the backward (so the sums and
 *               the LayerNorms run as two kernels), dropout at the recipe's sites.
 * Schedule, per layer l (h = hidden state l, (B*T, C)):
 *   qkv = h Wqkv^T + bqkv (N, 3C); scores = q k^T per head, read in place from qkv
 *   probs = softmax(scores * scale [+ rel bias] + mask); ctx = dropout(probs) v (heads merged)
 *   h1 = LN1(dropout(ctx Wo^T + bo) + h); act = act(h1 Wi^T + bi)
 *   h' = LN2(dropout(act Wout^T + bout) + h1)
 * Twin: ref_encoder_fwd (src/ref/ref.c). */
#ifndef BC_ENCODER_FORWARD_H
#define BC_ENCODER_FORWARD_H

#include "encoder/ops.h"
#include "model/model.h"
#include "train/recipe.h"
#include "train/train_ops.h"

/* A tensor on the device: (base, off) as a GEMM operand, sub (a sub-buffer over the same bytes)
 * as a kernel argument. */
typedef struct {
  cl_mem base;
  size_t off; /* floats */
  size_t n;   /* floats */
  cl_mem sub;
} bc_dev_tensor;

typedef struct {
  bc_dev_tensor qkv_w, qkv_b; /* (3C, C), (3C): Q, K and V one after the other */
  bc_dev_tensor ao_w, ao_b, ln1_w, ln1_b, i_w, i_b, o_w, o_b, ln2_w, ln2_b;
} bc_dev_layer;

typedef struct {
  bc_dev_tensor wte0, wte1; /* word rows [0, split) and [split, V) */
  int split;
  bc_dev_tensor wpe;        /* (position rows, C) */
  bc_dev_tensor wtt;        /* (TT, C); unused without token types */
  bc_dev_tensor eln_w, eln_b;
  bc_dev_tensor rel_bias;   /* (NB, NH) MPNet's table; unused without it */
  bc_dev_layer *layers;     /* (L) */
} bc_dev_weights;

/* One layer's activations. */
typedef struct {
  cl_mem qkv;   /* (B*T, 3C) q, k, v with their biases (heads read in place) */
  cl_mem probs; /* (B, NH, T, T) softmax before dropout */
  cl_mem ctx;   /* (B*T, C) probs v, heads merged */
  cl_mem xin1;  /* (B*T, C) LayerNorm 1's input, kept; NULL: not kept (fused) */
  cl_mem h1;    /* (B*T, C) */
  cl_mem pre;   /* (B*T, I) h1 Wi^T before its bias, kept; NULL: not kept */
  cl_mem act;   /* (B*T, I) */
  cl_mem xin2;  /* (B*T, C) LayerNorm 2's input, kept; NULL: not kept (fused) */
} bc_fwd_layer;

typedef struct {
  cl_mem ids, types, mask; /* (B*T) int32 inputs (types: unread without token types) */
  cl_mem pos;              /* (B*T) int32, written: the family's position ids */
  cl_mem bias;             /* (NH, T, T), written when the family has a relative bias */
  cl_mem ones;             /* (B*T) floats 1.0: the QKV bias as a rank-1 product */
  cl_mem proj;             /* (B*T, C) scratch */
  cl_mem pdrop;            /* (B, NH, T, T) scratch: dropped probabilities (dropout only) */
  cl_mem xin_e;            /* (B*T, C) the embeddings' LayerNorm input, kept; NULL: not kept */
  cl_mem *h;               /* (L+1) hidden states, (B*T, C) each; entries may repeat */
  bc_fwd_layer *layer;     /* (L) per layer when keep, else one set used by every layer */
  int keep;                /* 1: the training form (xin_e, xin1, pre, xin2 kept per layer) */
} bc_fwd_bufs;

/* Enqueues the forward of a (B, T) batch whose ids, types and mask are on the device. drop:
 * dropout at the recipe's sites (train/recipe.h), only with keep; NULL: none. tops: the training
 * program (needed when keep). Returns without waiting for the device. */
int bc_forward(bertcl_ctx *ctx, bc_ops *ops, bc_train_ops *tops, const bc_config *c,
               const bc_dev_weights *w, const bc_fwd_bufs *a, int B, int T,
               const bc_dropout_cfg *drop);

#endif /* BC_ENCODER_FORWARD_H */
