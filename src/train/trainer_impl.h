/* Internals of the OpenCL trainer shared by trainer.c (the buffers, the encoder's backward, the
 * optimizer) and heads.c (the task heads). The encoder's forward is encoder/forward.h's, the one
 * extraction runs. Not for use outside src/train. */
#ifndef BC_TRAIN_TRAINER_IMPL_H
#define BC_TRAIN_TRAINER_IMPL_H

#include "encoder/forward.h"
#include "encoder/ops.h"
#include "train/head.h"
#include "train/train_ops.h"
#include "train/trainer.h"

struct bc_trainer {
  bertcl_ctx *ctx;
  bc_config cfg;
  int K, freeze;
  bc_head_kind head;
  bc_layout lay;
  size_t *doff;      /* (count) device offset of each tensor, in floats */
  size_t *glen;      /* (count) floats of the group a tensor heads; 0 for a packed member */
  size_t dev_total;  /* floats of each flat device buffer */
  cl_mem buf[4];     /* params, grads, m, v: (dev_total) each */
  cl_mem *sub[2];    /* (count) sub-buffers of params and grads over each group, or NULL */
  bc_dev_weights pw, gw; /* the encoder's parameters and gradients as forward.h's tensors */
  /* layout indices of the head's tensors (-1: absent): its dense layer (BERT's pooler,
   * RoBERTa's and MPNet's classifier.dense, DistilBERT's pre_classifier), the classifier */
  int i_dw, i_db, i_cw, i_cb;
  int i_rel; /* MPNet's relative attention bias, or -1 */
  bc_ops ops;
  bc_train_ops tops;
  /* arena for (cap_B, cap_T) */
  int cap_B, cap_T;
  cl_mem ids, tts, mask, pos, bias, ones, pdrop, xin_e, *h; /* h: (L+1) hidden states (B*T, C) */
  bc_fwd_layer *la;                                         /* (L) kept activations */
  cl_mem proj, dH, dh, dh1, dt, dqkv, dact, dprobs, stats, ddiag;
  /* the head's: head_x (B, C) its input (token 0, after the head's input dropout), head_pre
   * (B, C) the dense layer's product before its bias, pooled (B, C) after the activation,
   * pooled_d (B*T, C) the classifier's input after dropout, dpooled (B*T, C) its gradient,
   * head_dx (B, C) the gradient at head_x; logits and dlogits (B*T, K) */
  cl_mem head_x, head_pre, pooled, pooled_d, dpooled, head_dx, logits, dlogits;
  float *host_logits; /* (cap_B * cap_T * K) */
  int32_t *host_pos;  /* (cap_B * cap_T) the forward's position ids, for the backward */
};

#define P(i) (tr->sub[0][(i)])
#define G(i) (tr->sub[1][(i)])
#define OFF(i) (tr->doff[(i)])

/* C (m, n) = alpha A B + beta C through bc_gemm; ta/tb transpose A/B; offsets in floats. */
int bc_tr_gemm(bc_trainer *tr, int ta, int tb, size_t m, size_t n, size_t k, float beta, cl_mem a,
               size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, cl_mem c,
               size_t c_off, size_t ldc);
/* out = dropout(x + bias) (+ res) for dropout site id; drop NULL or p == 0: no dropout. */
int bc_tr_bias_dropout_res(bc_trainer *tr, cl_mem out, cl_mem x, cl_mem bias, cl_mem res,
                           const bc_dropout_cfg *drop, float p, uint32_t id, int N, int C);
/* In place dropout of n floats (forward, and its own backward) when active. */
int bc_tr_dropout(bc_trainer *tr, cl_mem x, const bc_dropout_cfg *drop, float p, uint32_t id,
                  size_t n);
/* The backward of y (N, out) = x (N, in) W^T + b, W (out, in) at float offset w_off of the
 * parameters, its gradient at w_off of the gradients: db (out) += colsum(dy), dW += dy^T x, and,
 * dx not NULL, dx (N, in) = dy W + beta dx. As ref_linear_bwd. */
int bc_tr_linear_bwd(bc_trainer *tr, cl_mem dx, float beta, cl_mem db, size_t w_off, cl_mem dy,
                     cl_mem x, int N, int in, int out);
int bc_tr_copy(bc_trainer *tr, cl_mem dst, cl_mem src, size_t n);
int bc_tr_fill0(bc_trainer *tr, cl_mem m, size_t n);

/* A head's device work. forward: h_L (B*T, C) -> tr->logits (rows, K). backward: tr->dlogits
 * -> the head's parameter gradients (accumulated) and, when to_encoder, tr->dH (B*T, C), the
 * gradient at h_L (written). */
typedef struct {
  int (*forward)(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop);
  int (*backward)(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop, int to_encoder);
} bc_head_ops;

extern const bc_head_ops bc_head_table[BC_HEAD_COUNT];

#endif
