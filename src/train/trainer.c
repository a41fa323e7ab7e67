/* OpenCL fine-tuning step: the encoder's forward and backward, the buffers and the optimizer;
 * the task heads are in heads.c. See trainer.h.
 * Schedule (forward as encoder.c, keeping the LayerNorm inputs; backward as ref_cls_fwd_bwd):
 *   xin_e = word + type + pos; h0 = dropout(LN(xin_e))
 *   layer l: qkv = h Wqkv^T; q, k, v = split_heads(qkv + b); probs = softmax(q k^T * s + mask)
 *            ctx = merge(dropout(probs) v); xin1 = dropout(ctx Wao^T + bao) + h; h1 = LN1(xin1)
 *            pre = h1 Wi^T; act = gelu(pre + bi); xin2 = dropout(act Wo^T + bo) + h1; h' = LN2(xin2)
 *   head (heads.c): h_L -> logits; loss; the head's backward leaves dH = d loss / d h_L. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "encoder/ops.h"
#include "train/train_ops.h"
#include "train/trainer_impl.h"

const bc_layout *bc_trainer_layout(const bc_trainer *tr) { return &tr->lay; }


/* ---- small launchers -------------------------------------------------------------------- */

int bc_tr_gemm(bc_trainer *tr, int ta, int tb, size_t m, size_t n, size_t k, float beta,
                cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, cl_mem c,
                size_t c_off, size_t ldc) {
  bc_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = 1.0f,
                    .beta = beta, .a = a, .a_off = a_off, .lda = lda, .b = b, .b_off = b_off,
                    .ldb = ldb, .c = c, .c_off = c_off, .ldc = ldc, .batch = 1};
  return bc_gemm(tr->ctx, &g);
}

/* strided-batched over B*NH heads: A (m, k) or transposed, etc., strides in floats */
static int gemm_heads(bc_trainer *tr, int ta, int tb, size_t m, size_t n, size_t k, cl_mem a,
                      size_t lda, size_t sa, cl_mem b, size_t ldb, size_t sb, cl_mem c,
                      size_t ldc, size_t sc, size_t batch) {
  bc_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = 1.0f,
                    .beta = 0.0f, .a = a, .lda = lda, .a_stride = sa, .b = b, .ldb = ldb,
                    .b_stride = sb, .c = c, .ldc = ldc, .c_stride = sc, .batch = batch};
  return bc_gemm(tr->ctx, &g);
}

static int k_layernorm(bc_trainer *tr, cl_mem out, cl_mem x, cl_mem w, cl_mem b, int N) {
  return bc_op_layernorm_fwd(tr->ctx, &tr->tops, out, x, w, b, tr->cfg.layer_norm_eps, N,
                             tr->cfg.hidden_size);
}

/* out = dropout(x + bias) (+ res) for site id; drop NULL or p == 0: no dropout. */
int bc_tr_bias_dropout_res(bc_trainer *tr, cl_mem out, cl_mem x, cl_mem bias, cl_mem res,
                              const bc_dropout_cfg *drop, float p, uint32_t id, int N, int C) {
  return bc_op_bias_dropout_residual(tr->ctx, &tr->tops, out, x, bias, res, drop ? p : 0.0f,
                                     drop ? drop->seed : 0, drop ? drop->step : 0, id, N, C);
}

/* In place dropout (forward, and its own backward) when active. */
int bc_tr_dropout(bc_trainer *tr, cl_mem x, const bc_dropout_cfg *drop, float p, uint32_t id,
                   size_t n) {
  if (!drop || p <= 0.0f) return BERTCL_OK;
  return bc_op_dropout(tr->ctx, &tr->tops, x, x, p, drop->seed, drop->step, id, n);
}

int bc_tr_copy(bc_trainer *tr, cl_mem dst, cl_mem src, size_t n) {
  int st = BERTCL_OK;
  BC_CL(&tr->ctx->err, clEnqueueCopyBuffer(tr->ctx->queue, src, dst, 0, 0, n * 4, 0, NULL, NULL));
  return BERTCL_OK;
fail:
  return st;
}

int bc_tr_fill0(bc_trainer *tr, cl_mem m, size_t n) {
  int st = BERTCL_OK;
  float z = 0.0f;
  BC_CL(&tr->ctx->err,
        clEnqueueFillBuffer(tr->ctx->queue, m, &z, sizeof z, 0, n * 4, 0, NULL, NULL));
  return BERTCL_OK;
fail:
  return st;
}

/* ---- create / free ---------------------------------------------------------------------- */

static void release_arena(bc_trainer *tr) {
  cl_mem *ms[] = {&tr->ids,  &tr->tts,   &tr->mask,     &tr->xin_e,  &tr->qkv,    &tr->proj,
                  &tr->ctxh, &tr->pd,    &tr->dH,       &tr->dh,     &tr->dh1,    &tr->dt,
                  &tr->dctxh, &tr->dq,   &tr->dk,       &tr->dv,     &tr->dqkv,   &tr->dact,
                  &tr->dprobs, &tr->stats, &tr->pooled, &tr->pooled_d, &tr->logits,
                  &tr->dlogits, &tr->dpooled};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
    if (*ms[i]) clReleaseMemObject(*ms[i]), *ms[i] = NULL;
  int L = tr->cfg.num_layers;
  if (tr->h)
    for (int l = 0; l <= L; l++)
      if (tr->h[l]) clReleaseMemObject(tr->h[l]), tr->h[l] = NULL;
  if (tr->la)
    for (int l = 0; l < L; l++) {
      layer_acts *a = &tr->la[l];
      cl_mem *lm[] = {&a->q, &a->k, &a->v, &a->probs, &a->ctx, &a->xin1, &a->h1, &a->pre,
                      &a->act, &a->xin2};
      for (size_t i = 0; i < sizeof lm / sizeof lm[0]; i++)
        if (*lm[i]) clReleaseMemObject(*lm[i]), *lm[i] = NULL;
    }
  free(tr->host_logits);
  tr->host_logits = NULL;
  tr->cap_B = tr->cap_T = 0;
}

void bc_trainer_free(bc_trainer *tr) {
  if (!tr) return;
  if (tr->ctx && tr->ctx->queue) clFinish(tr->ctx->queue);
  release_arena(tr);
  free(tr->h);
  free(tr->la);
  for (int s = 0; s < 2; s++) {
    if (tr->sub[s])
      for (int i = 0; i < tr->lay.count; i++)
        if (tr->sub[s][i]) clReleaseMemObject(tr->sub[s][i]);
    free(tr->sub[s]);
  }
  for (int b = 0; b < 4; b++)
    if (tr->buf[b]) clReleaseMemObject(tr->buf[b]);
  bc_ops_free(&tr->ops);
  bc_train_ops_free(&tr->tops);
  free(tr->doff);
  free(tr->glen);
  bc_layout_free(&tr->lay);
  free(tr);
}

static int layer_base(int l) { return 5 + T_PER_LAYER * l; }
int bc_tr_head_base(const bc_trainer *tr) { return bc_layout_head_index(&tr->lay); }

/* Device placement: every group starts at an offset aligned for a sub-buffer; Q, K, V weights
 * (and biases) of a layer are packed one after the other inside one group. */
static void place(bc_trainer *tr, size_t align_f) {
  const bc_layout *lay = &tr->lay;
  size_t at = 0;
  for (int i = 0; i < lay->count; i++) {
    int rel = i >= 5 && i < bc_tr_head_base(tr) ? (i - 5) % T_PER_LAYER : -1;
    if (rel == T_KW || rel == T_VW || rel == T_KB || rel == T_VB) continue; /* packed below */
    at = (at + align_f - 1) / align_f * align_f;
    tr->doff[i] = at;
    size_t n = lay->t[i].numel;
    if (rel == T_QW || rel == T_QB) {
      tr->doff[i + 2] = at + n;
      tr->doff[i + 4] = at + 2 * n;
      n *= 3;
    }
    tr->glen[i] = n;
    at += n;
  }
  tr->dev_total = (at + align_f - 1) / align_f * align_f;
}

int bc_trainer_create(bertcl_ctx *ctx, const bc_config *cfg, bc_head_kind head, int num_labels,
                      const float *params, int freeze_encoder, bc_trainer **out) {
  const bc_head_desc *hd = bc_head_describe(head);
  if (!ctx || !cfg || !params || !out || !hd || num_labels < hd->min_labels)
    return bc_fail(ctx ? &ctx->err : NULL, BERTCL_ERR_INVALID_ARG,
                   "bc_trainer_create: NULL argument, head %d or num_labels %d", (int)head,
                   num_labels);
  *out = NULL;
  int st = BERTCL_OK;
  const bc_config *c = cfg;
  if (c->hidden_size <= 0 || c->num_heads <= 0 || c->hidden_size % c->num_heads ||
      c->num_layers <= 0 || c->intermediate_size <= 0)
    return bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED,
                   "unsupported shape: hidden %d, heads %d, layers %d", c->hidden_size,
                   c->num_heads, c->num_layers);
  if ((st = bc_config_require_bert(&ctx->err, c, "trainer")) != BERTCL_OK) return st;
  bc_trainer *tr = calloc(1, sizeof *tr);
  if (!tr) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  tr->ctx = ctx;
  tr->cfg = *cfg;
  tr->K = num_labels;
  tr->head = head;
  tr->freeze = freeze_encoder != 0;
  int L = c->num_layers;
  if ((st = bc_layout_init(&tr->lay, cfg, num_labels, hd->seq_dense)) != BERTCL_OK) {
    bc_fail(&ctx->err, st, "%s", bertcl_last_error(NULL));
    goto fail;
  }
  if (tr->lay.count != 5 + T_PER_LAYER * L + (hd->seq_dense ? 2 : 0) + 2) {
    st = bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "layout has %d tensors", tr->lay.count);
    goto fail;
  }
  tr->doff = calloc((size_t)tr->lay.count, sizeof *tr->doff);
  tr->glen = calloc((size_t)tr->lay.count, sizeof *tr->glen);
  tr->sub[0] = calloc((size_t)tr->lay.count, sizeof(cl_mem));
  tr->sub[1] = calloc((size_t)tr->lay.count, sizeof(cl_mem));
  tr->h = calloc((size_t)L + 1, sizeof *tr->h);
  tr->la = calloc((size_t)L, sizeof *tr->la);
  if (!tr->doff || !tr->glen || !tr->sub[0] || !tr->sub[1] || !tr->h || !tr->la) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  cl_uint align_bits = 0;
  clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits,
                  NULL);
  size_t align = align_bits / 8 > 256 ? align_bits / 8 : 256;
  place(tr, align / 4);
  size_t bytes = tr->dev_total * 4;
  if (ctx->info.max_alloc_bytes && bytes > ctx->info.max_alloc_bytes) {
    st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                 "the parameters (%.1f MiB) exceed the device's largest allocation (%.1f MiB)",
                 bytes / 1048576.0, ctx->info.max_alloc_bytes / 1048576.0);
    goto fail;
  }
  for (int b = 0; b < 4; b++) {
    tr->buf[b] = bc_buffer_create(ctx, bytes, NULL, &st);
    if (!tr->buf[b]) goto fail;
    BC_TRY(bc_tr_fill0(tr, tr->buf[b], tr->dev_total));
  }
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < tr->lay.count; i++) {
      if (!tr->glen[i]) continue;
      cl_buffer_region region = {tr->doff[i] * 4, tr->glen[i] * 4};
      BC_CL_OBJ(&ctx->err, tr->sub[s][i],
                clCreateSubBuffer(tr->buf[s], 0, CL_BUFFER_CREATE_TYPE_REGION, &region, BC_RC));
    }
  BC_TRY(bc_ops_init(ctx, &tr->ops));
  BC_TRY(bc_train_ops_init(ctx, &tr->tops));
  BC_TRY(bc_trainer_write(tr, BC_TR_PARAMS, params));
  *out = tr;
  return BERTCL_OK;
fail:
  bc_trainer_free(tr);
  return st;
}

/* ---- host transfers --------------------------------------------------------------------- */

/* Copies every tensor of buffer `which` between the device (aligned groups) and a host flat
 * buffer (bc_layout offsets), in the direction `write`. */
static int transfer(bc_trainer *tr, int which, float *flat, int write, const char *fn) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  if (which < 0 || which > 3 || !flat)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "%s: which %d", fn, which);
  for (int i = 0; i < tr->lay.count; i++) {
    size_t off = OFF(i) * 4, bytes = tr->lay.t[i].numel * 4;
    float *host = flat + tr->lay.t[i].offset;
    if (write)
      BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, tr->buf[which], CL_FALSE, off, bytes,
                                            host, 0, NULL, NULL));
    else
      BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, tr->buf[which], CL_FALSE, off, bytes, host,
                                           0, NULL, NULL));
  }
  BC_CL(&ctx->err, clFinish(ctx->queue));
  return BERTCL_OK;
fail:
  clFinish(ctx->queue);
  return st;
}

int bc_trainer_read(bc_trainer *tr, int which, float *flat) {
  return transfer(tr, which, flat, 0, "bc_trainer_read");
}

int bc_trainer_write(bc_trainer *tr, int which, const float *flat) {
  /* the host data is only read on this path */
  return transfer(tr, which, (float *)flat, 1, "bc_trainer_write");
}

int bc_trainer_zero_grad(bc_trainer *tr) { return bc_tr_fill0(tr, tr->buf[BC_TR_GRADS], tr->dev_total); }

/* ---- arena ------------------------------------------------------------------------------ */

static int plan_arena(bc_trainer *tr, int B, int T) {
  if (B <= tr->cap_B && T <= tr->cap_T && tr->ids) return BERTCL_OK;
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  int nb = B > tr->cap_B ? B : tr->cap_B, nt = T > tr->cap_T ? T : tr->cap_T;
  release_arena(tr);
  const bc_config *c = &tr->cfg;
  size_t N = (size_t)nb * nt, C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
  size_t PR = N * (size_t)c->num_heads * nt, K = (size_t)tr->K, L = (size_t)c->num_layers;
  uint64_t total = (uint64_t)(L * (8 * N * C + 2 * N * I + PR) + (L + 1) * N * C + 16 * N * C +
                              N * I + 2 * PR + 6 * N + nb * C + 2 * N * K) * 4;
  if (ctx->info.global_mem_bytes && total + tr->dev_total * 16 > ctx->info.global_mem_bytes) {
    st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                 "training batch %d x %d needs %.1f MiB of activations and %.1f MiB of "
                 "parameters, gradients and AdamW state; the device has %.1f MiB; try a smaller "
                 "--batch-size (with --grad-accum) or --max-len", nb, nt, total / 1048576.0,
                 tr->dev_total * 16 / 1048576.0, ctx->info.global_mem_bytes / 1048576.0);
    goto fail;
  }
  tr->host_logits = malloc(N * K * sizeof(float));
  if (!tr->host_logits) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
#define MK(m, n)                                          \
  do {                                                    \
    (m) = bc_buffer_create(ctx, (n) * 4, NULL, &st);      \
    if (!(m)) goto fail;                                  \
  } while (0)
  MK(tr->ids, N);
  MK(tr->tts, N);
  MK(tr->mask, N);
  MK(tr->xin_e, N * C);
  for (size_t l = 0; l <= L; l++) MK(tr->h[l], N * C);
  for (size_t l = 0; l < L; l++) {
    layer_acts *a = &tr->la[l];
    MK(a->q, N * C);
    MK(a->k, N * C);
    MK(a->v, N * C);
    MK(a->probs, PR);
    MK(a->ctx, N * C);
    MK(a->xin1, N * C);
    MK(a->h1, N * C);
    MK(a->pre, N * I);
    MK(a->act, N * I);
    MK(a->xin2, N * C);
  }
  MK(tr->qkv, 3 * N * C);
  MK(tr->proj, N * C);
  MK(tr->ctxh, N * C);
  MK(tr->pd, PR);
  MK(tr->dH, N * C);
  MK(tr->dh, N * C);
  MK(tr->dh1, N * C);
  MK(tr->dt, N * C);
  MK(tr->dctxh, N * C);
  MK(tr->dq, N * C);
  MK(tr->dk, N * C);
  MK(tr->dv, N * C);
  MK(tr->dqkv, 3 * N * C);
  MK(tr->dact, N * I);
  MK(tr->dprobs, PR);
  MK(tr->stats, 2 * N);
  MK(tr->pooled, nb * C);
  MK(tr->pooled_d, N * C);
  MK(tr->dpooled, N * C);
  MK(tr->logits, N * K);
  MK(tr->dlogits, N * K);
#undef MK
  tr->cap_B = nb;
  tr->cap_T = nt;
  return BERTCL_OK;
fail:
  release_arena(tr);
  return st;
}

/* ---- forward + backward ----------------------------------------------------------------- */

static int forward_encoder(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  const bc_config *c = &tr->cfg;
  int st = BERTCL_OK;
  int L = c->num_layers, C = c->hidden_size, NH = c->num_heads, HS = C / NH,
      I = c->intermediate_size;
  int N = B * T;
  float hp = drop ? drop->hidden_p : 0.0f, ap = drop ? drop->attn_p : 0.0f;
  BC_TRY(bc_op_embedding_sum(ctx, &tr->tops, tr->xin_e, tr->ids, tr->tts, P(0), P(1), P(2), N,
                             T, C));
  BC_TRY(k_layernorm(tr, tr->h[0], tr->xin_e, P(3), P(4), N));
  BC_TRY(bc_tr_dropout(tr, tr->h[0], drop, hp, bc_dropout_id(-1, BC_DROP_EMB), (size_t)N * C));
  float scale = 1.0f / sqrtf((float)HS);
  size_t sTH = (size_t)T * HS, sTT = (size_t)T * T, BNH = (size_t)B * NH;
  for (int l = 0; l < L; l++) {
    int lb = layer_base(l);
    layer_acts *a = &tr->la[l];
    cl_mem h = tr->h[l];
    /* qkv (N, 3C) = h @ Wqkv^T */
    BC_TRY(bc_linear(ctx, tr->qkv, 0, h, 0, tr->buf[0], OFF(lb + T_QW), (size_t)N, (size_t)C,
                     3 * (size_t)C));
    BC_TRY(bc_op_split_heads(ctx, &tr->ops, a->q, a->k, a->v, tr->qkv, P(lb + T_QB), B, T, C,
                             NH));
    BC_TRY(gemm_heads(tr, 0, 1, T, T, HS, a->q, HS, sTH, a->k, HS, sTH, a->probs, T, sTT, BNH));
    BC_TRY(bc_op_softmax(ctx, &tr->ops, a->probs, tr->mask, NULL, scale, B, NH, T));
    cl_mem pr = a->probs;
    if (drop && ap > 0.0f) {
      BC_TRY(bc_op_dropout(ctx, &tr->tops, tr->pd, a->probs, ap, drop->seed, drop->step,
                           bc_dropout_id(l, BC_DROP_ATTN), BNH * sTT));
      pr = tr->pd;
    }
    BC_TRY(gemm_heads(tr, 0, 0, T, HS, T, pr, T, sTT, a->v, HS, sTH, tr->ctxh, HS, sTH, BNH));
    BC_TRY(bc_op_merge_heads(ctx, &tr->ops, a->ctx, tr->ctxh, B, T, C, NH));
    BC_TRY(bc_linear(ctx, tr->proj, 0, a->ctx, 0, tr->buf[0], OFF(lb + T_AOW), (size_t)N,
                     (size_t)C, (size_t)C));
    BC_TRY(bc_tr_bias_dropout_res(tr, a->xin1, tr->proj, P(lb + T_AOB), h, drop, hp,
                              bc_dropout_id(l, BC_DROP_ATTN_OUT), N, C));
    BC_TRY(k_layernorm(tr, a->h1, a->xin1, P(lb + T_LN1W), P(lb + T_LN1B), N));
    BC_TRY(bc_linear(ctx, a->pre, 0, a->h1, 0, tr->buf[0], OFF(lb + T_IW), (size_t)N, (size_t)C,
                     (size_t)I));
    BC_TRY(bc_tr_copy(tr, a->act, a->pre, (size_t)N * I));
    BC_TRY(bc_op_bias_act(ctx, &tr->ops, a->act, P(lb + T_IB), (int)c->act, N, I));
    BC_TRY(bc_linear(ctx, tr->proj, 0, a->act, 0, tr->buf[0], OFF(lb + T_OW), (size_t)N,
                     (size_t)I, (size_t)C));
    BC_TRY(bc_tr_bias_dropout_res(tr, a->xin2, tr->proj, P(lb + T_OB), a->h1, drop, hp,
                              bc_dropout_id(l, BC_DROP_FFN_OUT), N, C));
    BC_TRY(k_layernorm(tr, tr->h[l + 1], a->xin2, P(lb + T_LN2W), P(lb + T_LN2B), N));
  }
  return BERTCL_OK;
fail:
  return st;
}

static int backward_encoder(bc_trainer *tr, const int32_t *ids, int B, int T,
                            const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  const bc_config *c = &tr->cfg;
  int st = BERTCL_OK;
  int L = c->num_layers, C = c->hidden_size, NH = c->num_heads, HS = C / NH,
      I = c->intermediate_size;
  int N = B * T;
  size_t NC = (size_t)N * C;
  float hp = drop ? drop->hidden_p : 0.0f, ap = drop ? drop->attn_p : 0.0f;
  float eps = c->layer_norm_eps;
  cl_mem gb = tr->buf[BC_TR_GRADS], pbuf = tr->buf[BC_TR_PARAMS];
  /* dH (N, C): the head's gradient at the last hidden state */
  float scale = 1.0f / sqrtf((float)HS);
  size_t sTH = (size_t)T * HS, sTT = (size_t)T * T, BNH = (size_t)B * NH;
  for (int l = L - 1; l >= 0; l--) {
    int lb = layer_base(l);
    layer_acts *a = &tr->la[l];
    cl_mem h = tr->h[l];
    /* h' = LN2(xin2): dt = dLN, dh1 = dt (residual), dt through dropout */
    BC_TRY(bc_op_layernorm_bwd(ctx, &tr->tops, tr->dt, tr->stats, G(lb + T_LN2W),
                               G(lb + T_LN2B), tr->dH, a->xin2, P(lb + T_LN2W), eps, N, C));
    BC_TRY(bc_tr_copy(tr, tr->dh1, tr->dt, NC));
    BC_TRY(bc_tr_dropout(tr, tr->dt, drop, hp, bc_dropout_id(l, BC_DROP_FFN_OUT), NC));
    BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(lb + T_OB), tr->dt, N, C));
    BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)C, (size_t)I, (size_t)N, 1.0f, tr->dt, 0, (size_t)C, a->act, 0,
                (size_t)I, gb, OFF(lb + T_OW), (size_t)I));
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)N, (size_t)I, (size_t)C, 0.0f, tr->dt, 0, (size_t)C, pbuf,
                OFF(lb + T_OW), (size_t)I, tr->dact, 0, (size_t)I));
    BC_TRY(bc_op_bias_act_bwd(ctx, &tr->tops, tr->dact, tr->dact, a->pre, P(lb + T_IB),
                              (int)c->act, N, I));
    BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(lb + T_IB), tr->dact, N, I));
    BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)I, (size_t)C, (size_t)N, 1.0f, tr->dact, 0, (size_t)I, a->h1, 0,
                (size_t)C, gb, OFF(lb + T_IW), (size_t)C));
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)N, (size_t)C, (size_t)I, 1.0f, tr->dact, 0, (size_t)I, pbuf,
                OFF(lb + T_IW), (size_t)C, tr->dh1, 0, (size_t)C));
    /* h1 = LN1(xin1): dt = dLN, dh = dt (residual) */
    BC_TRY(bc_op_layernorm_bwd(ctx, &tr->tops, tr->dt, tr->stats, G(lb + T_LN1W),
                               G(lb + T_LN1B), tr->dh1, a->xin1, P(lb + T_LN1W), eps, N, C));
    BC_TRY(bc_tr_copy(tr, tr->dh, tr->dt, NC));
    BC_TRY(bc_tr_dropout(tr, tr->dt, drop, hp, bc_dropout_id(l, BC_DROP_ATTN_OUT), NC));
    BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(lb + T_AOB), tr->dt, N, C));
    BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)C, (size_t)C, (size_t)N, 1.0f, tr->dt, 0, (size_t)C, a->ctx, 0,
                (size_t)C, gb, OFF(lb + T_AOW), (size_t)C));
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)N, (size_t)C, (size_t)C, 0.0f, tr->dt, 0, (size_t)C, pbuf,
                OFF(lb + T_AOW), (size_t)C, tr->proj, 0, (size_t)C));
    BC_TRY(bc_op_split_heads_one(ctx, &tr->tops, tr->dctxh, tr->proj, B, T, C, NH));
    /* attention: ctx = dropout(probs) v per head */
    cl_mem pr = a->probs;
    uint32_t aid = bc_dropout_id(l, BC_DROP_ATTN);
    if (drop && ap > 0.0f) {
      BC_TRY(bc_op_dropout(ctx, &tr->tops, tr->pd, a->probs, ap, drop->seed, drop->step, aid,
                           BNH * sTT));
      pr = tr->pd;
    }
    /* dprobs (T, T) = dctx (T, HS) v^T; dv (T, HS) = pr^T dctx */
    BC_TRY(gemm_heads(tr, 0, 1, T, T, HS, tr->dctxh, HS, sTH, a->v, HS, sTH, tr->dprobs, T, sTT,
                      BNH));
    BC_TRY(gemm_heads(tr, 1, 0, T, HS, T, pr, T, sTT, tr->dctxh, HS, sTH, tr->dv, HS, sTH, BNH));
    BC_TRY(bc_tr_dropout(tr, tr->dprobs, drop, ap, aid, BNH * sTT));
    BC_TRY(bc_op_softmax_bwd(ctx, &tr->tops, tr->dprobs, tr->dprobs, a->probs, scale,
                             (int)(BNH * T), T));
    /* dq = ds k; dk = ds^T q */
    BC_TRY(gemm_heads(tr, 0, 0, T, HS, T, tr->dprobs, T, sTT, a->k, HS, sTH, tr->dq, HS, sTH,
                      BNH));
    BC_TRY(gemm_heads(tr, 1, 0, T, HS, T, tr->dprobs, T, sTT, a->q, HS, sTH, tr->dk, HS, sTH,
                      BNH));
    BC_TRY(bc_op_split_heads_bwd(ctx, &tr->tops, tr->dqkv, tr->dq, tr->dk, tr->dv, B, T, C, NH));
    int C3 = 3 * C;
    BC_TRY(bc_op_colsum_bwd(ctx, &tr->tops, G(lb + T_QB), tr->dqkv, N, C3));
    BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)C3, (size_t)C, (size_t)N, 1.0f, tr->dqkv, 0, (size_t)C3, h, 0,
                (size_t)C, gb, OFF(lb + T_QW), (size_t)C));
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)N, (size_t)C, (size_t)C3, 1.0f, tr->dqkv, 0, (size_t)C3, pbuf,
                OFF(lb + T_QW), (size_t)C, tr->dh, 0, (size_t)C));
    cl_mem tmp = tr->dH;
    tr->dH = tr->dh;
    tr->dh = tmp;
  }
  /* h0 = dropout(LN(xin_e)) */
  BC_TRY(bc_tr_dropout(tr, tr->dH, drop, hp, bc_dropout_id(-1, BC_DROP_EMB), NC));
  BC_TRY(bc_op_layernorm_bwd(ctx, &tr->tops, tr->dt, tr->stats, G(3), G(4), tr->dH, tr->xin_e,
                             P(3), eps, N, C));
  BC_TRY(bc_op_embedding_bwd(ctx, &tr->tops, G(0), G(1), G(2), tr->dt, ids, tr->tts, B, T,
                             c->type_vocab_size, C));
  return BERTCL_OK;
fail:
  return st;
}

static int loss_logits(bc_trainer *tr, const int32_t *labels, const float *targets, int B,
                       float grad_scale, int backward_on, double *loss, float *logits);

/* Validates and uploads a (B, T) batch (type_ids NULL = 0, mask NULL = all real). */
static int upload_batch(bc_trainer *tr, const int32_t *ids, const int32_t *type_ids,
                        const int32_t *mask, int B, int T) {
  bertcl_ctx *ctx = tr->ctx;
  const bc_config *c = &tr->cfg;
  int st = BERTCL_OK;
  int32_t *tmp = NULL;
  if (!ids || B <= 0 || T <= 0)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "bad batch: B=%d T=%d", B, T);
  if ((size_t)B * T > (size_t)INT32_MAX / (size_t)(c->intermediate_size > 3 * c->hidden_size
                                                        ? c->intermediate_size
                                                        : 3 * c->hidden_size))
    return bc_fail(&ctx->err, BERTCL_ERR_OVERFLOW, "batch %d x %d is too large", B, T);
  size_t N = (size_t)B * T;
  st = bc_config_check_batch(&ctx->err, c, ids, type_ids, B, T);
  if (st != BERTCL_OK) return st;
  BC_TRY(plan_arena(tr, B, T));
  if (!type_ids || !mask) {
    tmp = malloc(2 * N * sizeof *tmp);
    if (!tmp) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < N; i++) tmp[i] = 0, tmp[N + i] = 1;
  }
  BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, tr->ids, CL_FALSE, 0, N * 4, ids, 0, NULL,
                                        NULL));
  BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, tr->tts, CL_FALSE, 0, N * 4,
                                        type_ids ? type_ids : tmp, 0, NULL, NULL));
  BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, tr->mask, CL_FALSE, 0, N * 4,
                                        mask ? mask : tmp + N, 0, NULL, NULL));
  BC_CL(&ctx->err, clFinish(ctx->queue)); /* tmp is released below */
fail:
  free(tmp);
  return st;
}

/* Rows of logits and labels of a (B, T) batch: B, or B*T for a per-token head. */
static int head_rows(const bc_trainer *tr, int B, int T) {
  return bc_head_describe(tr->head)->per_token ? B * T : B;
}

static int check_labels(bc_trainer *tr, const int32_t *labels, int R) {
  if (labels && tr->K > 1)
    for (int b = 0; b < R; b++)
      if (labels[b] != -100 && (labels[b] < 0 || labels[b] >= tr->K))
        return bc_fail(&tr->ctx->err, BERTCL_ERR_INVALID_ARG,
                       "label %d of row %d not in [0, %d)", (int)labels[b], b, tr->K);
  return BERTCL_OK;
}

static int need_sequence_head(bc_trainer *tr, const char *fn) {
  if (tr->head == BC_HEAD_SEQUENCE) return BERTCL_OK;
  return bc_fail(&tr->ctx->err, BERTCL_ERR_UNSUPPORTED,
                 "%s: cached features are for the sequence head (this trainer has the %s head)",
                 fn, bc_head_describe(tr->head)->name);
}

int bc_trainer_features(bc_trainer *tr, const int32_t *ids, const int32_t *type_ids,
                        const int32_t *mask, int B, int T, float *feats) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK, C = tr->cfg.hidden_size;
  if (!feats) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "bc_trainer_features: NULL");
  BC_TRY(need_sequence_head(tr, "bc_trainer_features"));
  BC_TRY(upload_batch(tr, ids, type_ids, mask, B, T));
  BC_TRY(forward_encoder(tr, B, T, NULL));
  BC_TRY(bc_op_gather_cls(ctx, &tr->ops, tr->pooled, tr->h[tr->cfg.num_layers], B, T, C));
  BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, tr->pooled, CL_TRUE, 0, (size_t)B * C * 4,
                                       feats, 0, NULL, NULL));
  return BERTCL_OK;
fail:
  clFinish(ctx->queue);
  return st;
}

int bc_trainer_head_fwd_bwd(bc_trainer *tr, const float *feats, const int32_t *labels,
                            const float *targets, int B, const bc_dropout_cfg *drop,
                            float grad_scale, int backward_on, double *loss, float *logits) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK, K = tr->K, C = tr->cfg.hidden_size;
  if (!tr->freeze)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "bc_trainer_head_fwd_bwd needs a trainer created with freeze_encoder");
  BC_TRY(need_sequence_head(tr, "bc_trainer_head_fwd_bwd"));
  if (!feats || B <= 0 || (backward_on && K > 1 && !labels) ||
      (backward_on && K == 1 && !targets))
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "bc_trainer_head_fwd_bwd: B=%d, or no features/labels/targets", B);
  BC_TRY(check_labels(tr, labels, B));
  BC_TRY(plan_arena(tr, B, 1));
  cl_mem hL = tr->h[tr->cfg.num_layers]; /* (B*1, C): the features as h_L with T = 1 */
  BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, hL, CL_TRUE, 0, (size_t)B * C * 4, feats, 0,
                                        NULL, NULL));
  BC_TRY(bc_head_table[tr->head].forward(tr, B, 1, drop));
  BC_TRY(loss_logits(tr, labels, targets, B, grad_scale, backward_on, loss, logits));
  if (backward_on) BC_TRY(bc_head_table[tr->head].backward(tr, B, 1, drop, 0));
  BC_CL(&ctx->err, clFinish(ctx->queue));
  return BERTCL_OK;
fail:
  clFinish(ctx->queue);
  return st;
}

int bc_trainer_fwd_bwd(bc_trainer *tr, const int32_t *ids, const int32_t *type_ids,
                       const int32_t *mask, const int32_t *labels, const float *targets, int B,
                       int T, const bc_dropout_cfg *drop, float grad_scale, int backward_on,
                       double *loss, float *logits) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK, K = tr->K;
  if ((backward_on && K > 1 && !labels) || (backward_on && K == 1 && !targets))
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "bc_trainer_fwd_bwd: no labels/targets for the loss");
  if (K == 1 && tr->head != BC_HEAD_SEQUENCE)
    return bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "bc_trainer_fwd_bwd: MSE is for sequences");
  const bc_head_ops *head = &bc_head_table[tr->head];
  BC_TRY(upload_batch(tr, ids, type_ids, mask, B, T));
  int R = head_rows(tr, B, T);
  BC_TRY(check_labels(tr, labels, R));
  /* a frozen encoder runs as in evaluation: no dropout inside it */
  BC_TRY(forward_encoder(tr, B, T, tr->freeze ? NULL : drop));
  BC_TRY(head->forward(tr, B, T, drop));
  BC_TRY(loss_logits(tr, labels, targets, R, grad_scale, backward_on, loss, logits));
  if (backward_on) BC_TRY(head->backward(tr, B, T, drop, !tr->freeze));
  if (backward_on && !tr->freeze) BC_TRY(backward_encoder(tr, ids, B, T, drop));
  BC_CL(&ctx->err, clFinish(ctx->queue));
  return BERTCL_OK;
fail:
  clFinish(ctx->queue);
  return st;
}

/* Loss and dlogits of R rows (cross-entropy on the device, MSE on the host), logits read
 * back. */
static int loss_logits(bc_trainer *tr, const int32_t *labels, const float *targets, int B,
                       float grad_scale, int backward_on, double *loss, float *logits) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK, K = tr->K;
  double lv = NAN;
  if (K > 1 && labels) {
    if (backward_on || loss)
      BC_TRY(bc_op_cross_entropy(ctx, &tr->tops, tr->dlogits, tr->logits, labels, B, K,
                                 grad_scale, &lv));
    if (logits || !backward_on)
      BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, tr->logits, CL_TRUE, 0,
                                           (size_t)B * K * 4, tr->host_logits, 0, NULL, NULL));
  } else {
    /* MSE (num_labels = 1) on the host: B values */
    BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, tr->logits, CL_TRUE, 0, (size_t)B * K * 4,
                                         tr->host_logits, 0, NULL, NULL));
    if (K == 1 && targets) {
      float *dl = malloc((size_t)B * sizeof *dl);
      if (!dl) {
        st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
        goto fail;
      }
      lv = bc_mse_fwd_bwd(dl, tr->host_logits, targets, B, grad_scale);
      cl_int rc = clEnqueueWriteBuffer(ctx->queue, tr->dlogits, CL_TRUE, 0, (size_t)B * 4, dl, 0,
                                       NULL, NULL);
      free(dl);
      BC_CL(&ctx->err, rc);
    }
  }
  if (loss) *loss = lv;
  if (logits) memcpy(logits, tr->host_logits, (size_t)B * K * sizeof(float));
  return BERTCL_OK;
fail:
  return st;
}

int bc_trainer_step(bc_trainer *tr, const bc_adamw_cfg *cfg, float lr, float max_norm, int t,
                    double *norm) {
  bertcl_ctx *ctx = tr->ctx;
  int st = BERTCL_OK;
  if (!cfg || t < 1) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "bc_trainer_step: t=%d", t);
  double total = 0.0;
  BC_TRY(bc_op_grad_norm(ctx, &tr->tops, tr->buf[BC_TR_GRADS], tr->dev_total, &total));
  if (norm) *norm = total;
  float gscale = 1.0f;
  if (max_norm > 0.0f) {
    double coef = (double)max_norm / (total + 1e-6);
    if (coef < 1.0) gscale = (float)coef;
  }
  int first = tr->freeze ? bc_tr_head_base(tr) : 0;
  for (int i = first; i < tr->lay.count; i++) {
    const bc_tensor *tt = &tr->lay.t[i];
    BC_TRY(bc_op_adamw(ctx, &tr->tops, tr->buf[0], tr->buf[2], tr->buf[3], tr->buf[1], OFF(i),
                       tt->numel, gscale, lr, cfg->beta1, cfg->beta2, cfg->eps,
                       tt->decay ? cfg->weight_decay : 0.0f, t));
  }
  BC_CL(&ctx->err, clFinish(ctx->queue));
  return BERTCL_OK;
fail:
  clFinish(ctx->queue);
  return st;
}
