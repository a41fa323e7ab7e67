/* Internals of the OpenCL trainer shared by trainer.c (the encoder's forward and backward, the
 * buffers, the optimizer) and heads.c (the task heads). Not for use outside src/train. */
#ifndef BC_TRAIN_TRAINER_IMPL_H
#define BC_TRAIN_TRAINER_IMPL_H

#include "encoder/ops.h"
#include "train/head.h"
#include "train/train_ops.h"
#include "train/trainer.h"

/* per-layer tensor index offsets from the layer's first tensor (train/layout.c's table order) */
enum {
  T_QW = 0, T_QB, T_KW, T_KB, T_VW, T_VB, T_AOW, T_AOB, T_LN1W, T_LN1B,
  T_IW, T_IB, T_OW, T_OB, T_LN2W, T_LN2B, T_PER_LAYER
};

typedef struct {
  cl_mem q, k, v;  /* (B, NH, T, HS) each, bias added */
  cl_mem probs;    /* (B, NH, T, T) softmax before dropout */
  cl_mem ctx;      /* (B*T, C) merged context */
  cl_mem xin1, h1; /* (B*T, C) LayerNorm 1 input, output */
  cl_mem pre, act; /* (B*T, I) before bias, after activation */
  cl_mem xin2;     /* (B*T, C) LayerNorm 2 input */
} layer_acts;

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
  bc_ops ops;
  bc_train_ops tops;
  /* arena for (cap_B, cap_T) */
  int cap_B, cap_T;
  cl_mem ids, tts, mask, xin_e, *h; /* h: (L+1) hidden states (B*T, C) */
  layer_acts *la;                   /* (L) */
  cl_mem qkv, proj, ctxh, pd, dH, dh, dh1, dt, dctxh, dq, dk, dv, dqkv, dact, dprobs, stats;
  /* the head's: pooled (B, C) (sequence head: tanh output), pooled_d (B*T, C) its input after
   * dropout, dpooled (B*T, C) its gradient; logits and dlogits (B*T, K) */
  cl_mem pooled, pooled_d, dpooled, logits, dlogits;
  float *host_logits; /* (cap_B * cap_T * K) */
};

#define P(i) (tr->sub[0][(i)])
#define G(i) (tr->sub[1][(i)])
#define OFF(i) (tr->doff[(i)])

/* Index of the head's first tensor in the layout (the pooler's or the classifier's). */
int bc_tr_head_base(const bc_trainer *tr);

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
