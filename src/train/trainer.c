/* OpenCL fine-tuning step of every encoder family: the buffers, the encoder's backward and the
 * optimizer; the forward is encoder/forward.h's bc_forward (the one extraction runs), asked to
 * keep its activations and apply dropout; the task heads are in heads.c. See trainer.h.
 * Backward, per layer l from the last (as ref_task_fwd_bwd, src/ref/ref_task.c):
 *   h' = LN2(xin2): dxin2; dh1 = dxin2 + (dropout_bwd(dxin2) Wout) through act_bwd, Wi
 *   h1 = LN1(xin1): dxin1; dh = dxin1; dctx = dropout_bwd(dxin1) Wo
 *   heads in place (the forward's (B*T, 3C) qkv): dprobs = dctx v^T, dv = dropout(probs)^T dctx,
 *   dz = softmax_bwd(dropout_bwd(dprobs)) (MPNet: the relative bias table's gradient from dz),
 *   dq = scale dz k, dk = scale dz^T q; dh += dqkv Wqkv
 *   embeddings: dropout_bwd, LN_bwd, rows of the word, position (the forward's position ids)
 *   and token-type tables. */
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

int bc_tr_linear_bwd(bc_trainer *tr, cl_mem dx, float beta, cl_mem db, size_t w_off, cl_mem dy,
                     cl_mem x, int N, int in, int out) {
  int st = BERTCL_OK;
  BC_TRY(bc_op_colsum_bwd(tr->ctx, &tr->tops, db, dy, N, out));
  BC_TRY(bc_tr_gemm(tr, 1, 0, (size_t)out, (size_t)in, (size_t)N, 1.0f, dy, 0, (size_t)out, x, 0,
                    (size_t)in, tr->buf[BC_TR_GRADS], w_off, (size_t)in));
  if (dx)
    BC_TRY(bc_tr_gemm(tr, 0, 0, (size_t)N, (size_t)in, (size_t)out, beta, dy, 0, (size_t)out,
                      tr->buf[BC_TR_PARAMS], w_off, (size_t)in, dx, 0, (size_t)in));
  return BERTCL_OK;
fail:
  return st;
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
  cl_mem *ms[] = {&tr->ids,     &tr->tts,      &tr->mask,    &tr->pos,      &tr->bias,
                  &tr->ones,    &tr->pdrop,    &tr->xin_e,   &tr->proj,     &tr->dH,
                  &tr->dh,      &tr->dh1,      &tr->dt,      &tr->dqkv,     &tr->dact,
                  &tr->dprobs,  &tr->stats,    &tr->ddiag,   &tr->head_x,   &tr->head_pre,
                  &tr->pooled,  &tr->pooled_d, &tr->dpooled, &tr->head_dx,  &tr->logits,
                  &tr->dlogits};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
    if (*ms[i]) clReleaseMemObject(*ms[i]), *ms[i] = NULL;
  int L = tr->cfg.num_layers;
  if (tr->h)
    for (int l = 0; l <= L; l++)
      if (tr->h[l]) clReleaseMemObject(tr->h[l]), tr->h[l] = NULL;
  if (tr->la)
    for (int l = 0; l < L; l++) {
      bc_fwd_layer *a = &tr->la[l];
      cl_mem *lm[] = {&a->qkv, &a->probs, &a->ctx, &a->xin1, &a->h1, &a->pre, &a->act, &a->xin2};
      for (size_t i = 0; i < sizeof lm / sizeof lm[0]; i++)
        if (*lm[i]) clReleaseMemObject(*lm[i]), *lm[i] = NULL;
    }
  free(tr->host_logits);
  free(tr->host_pos);
  tr->host_logits = NULL;
  tr->host_pos = NULL;
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
  free(tr->pw.layers);
  free(tr->gw.layers);
  free(tr->doff);
  free(tr->glen);
  bc_layout_free(&tr->lay);
  free(tr);
}

/* Device placement: every group starts at an offset aligned for a sub-buffer; the Q, K and V
 * weights (and biases) of a layer are packed one after the other inside one group, the (3C, C)
 * weight and (3C) bias the forward reads. */
static int place(bc_trainer *tr, size_t align_f) {
  const bc_layout *lay = &tr->lay;
  size_t at = 0;
  for (int i = 0; i < lay->count; i++) {
    const bc_tensor *t = &lay->t[i];
    int l = t->layer;
    if (l >= 0 && (t->slot == BC_LAYER_SLOT(k_w) || t->slot == BC_LAYER_SLOT(v_w) ||
                   t->slot == BC_LAYER_SLOT(k_b) || t->slot == BC_LAYER_SLOT(v_b)))
      continue; /* packed below */
    at = (at + align_f - 1) / align_f * align_f;
    tr->doff[i] = at;
    size_t n = t->numel;
    if (l >= 0 && (t->slot == BC_LAYER_SLOT(q_w) || t->slot == BC_LAYER_SLOT(q_b))) {
      int w = t->slot == BC_LAYER_SLOT(q_w);
      int ki = bc_layout_slot(lay, l, w ? BC_LAYER_SLOT(k_w) : BC_LAYER_SLOT(k_b));
      int vi = bc_layout_slot(lay, l, w ? BC_LAYER_SLOT(v_w) : BC_LAYER_SLOT(v_b));
      if (ki < 0 || vi < 0 || lay->t[ki].numel != n || lay->t[vi].numel != n) return -1;
      tr->doff[ki] = at + n;
      tr->doff[vi] = at + 2 * n;
      n *= 3;
    }
    tr->glen[i] = n;
    at += n;
  }
  tr->dev_total = (at + align_f - 1) / align_f * align_f;
  return 0;
}

/* The forward's view of buffer s (0 parameters, 1 gradients): tensor i as (base, offset, sub). */
static bc_dev_tensor dev_tensor(bc_trainer *tr, int s, int i) {
  bc_dev_tensor d = {0};
  if (i < 0) return d;
  d.base = tr->buf[s];
  d.off = tr->doff[i];
  d.n = tr->glen[i] ? tr->glen[i] : tr->lay.t[i].numel;
  d.sub = tr->sub[s][i];
  return d;
}

static int bind_dev(bc_trainer *tr, int s, bc_dev_weights *w) {
  const bc_layout *lay = &tr->lay;
  int L = tr->cfg.num_layers;
  memset(w, 0, sizeof *w);
  w->layers = calloc((size_t)L, sizeof *w->layers);
  if (!w->layers) return -1;
#define TOP(f) dev_tensor(tr, s, bc_layout_slot(lay, -1, BC_SLOT(f)))
#define LAY(f) dev_tensor(tr, s, bc_layout_slot(lay, l, BC_LAYER_SLOT(f)))
  w->wte0 = w->wte1 = TOP(word_emb);
  w->split = tr->cfg.vocab_size;
  w->wpe = TOP(pos_emb);
  w->wtt = TOP(type_emb);
  w->eln_w = TOP(emb_ln_w);
  w->eln_b = TOP(emb_ln_b);
  w->rel_bias = TOP(rel_bias);
  for (int l = 0; l < L; l++) {
    bc_dev_layer *d = &w->layers[l];
    d->qkv_w = LAY(q_w), d->qkv_b = LAY(q_b), d->ao_w = LAY(ao_w), d->ao_b = LAY(ao_b);
    d->ln1_w = LAY(ln1_w), d->ln1_b = LAY(ln1_b), d->i_w = LAY(inter_w), d->i_b = LAY(inter_b);
    d->o_w = LAY(out_w), d->o_b = LAY(out_b), d->ln2_w = LAY(ln2_w), d->ln2_b = LAY(ln2_b);
    if (!d->qkv_w.sub || !d->qkv_b.sub || !d->ln2_b.sub) return -1;
  }
#undef TOP
#undef LAY
  return w->wte0.sub && w->wpe.sub && w->eln_w.sub ? 0 : -1;
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
  const bc_layout *lay = &tr->lay;
  int pooler = cfg->head == BC_CLS_HEAD_POOLER;
  tr->i_dw = bc_layout_slot(lay, -1, pooler ? BC_SLOT(pool_w) : BC_SLOT(head_w));
  tr->i_db = bc_layout_slot(lay, -1, pooler ? BC_SLOT(pool_b) : BC_SLOT(head_b));
  tr->i_cw = bc_layout_slot(lay, -1, BC_SLOT(cls_w));
  tr->i_cb = bc_layout_slot(lay, -1, BC_SLOT(cls_b));
  tr->i_rel = bc_layout_slot(lay, -1, BC_SLOT(rel_bias));
  if (tr->i_cw < 0 || tr->i_cb < 0 || (hd->seq_dense && (tr->i_dw < 0 || tr->i_db < 0))) {
    st = bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "the %s head's tensors are not in the layout",
                 hd->name);
    goto fail;
  }
  tr->doff = calloc((size_t)lay->count, sizeof *tr->doff);
  tr->glen = calloc((size_t)lay->count, sizeof *tr->glen);
  tr->sub[0] = calloc((size_t)lay->count, sizeof(cl_mem));
  tr->sub[1] = calloc((size_t)lay->count, sizeof(cl_mem));
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
  if (place(tr, align / 4) != 0) {
    st = bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "layout: a layer lacks Q, K or V");
    goto fail;
  }
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
    for (int i = 0; i < lay->count; i++) {
      if (!tr->glen[i]) continue;
      cl_buffer_region region = {tr->doff[i] * 4, tr->glen[i] * 4};
      BC_CL_OBJ(&ctx->err, tr->sub[s][i],
                clCreateSubBuffer(tr->buf[s], 0, CL_BUFFER_CREATE_TYPE_REGION, &region, BC_RC));
    }
  if (bind_dev(tr, 0, &tr->pw) != 0 || bind_dev(tr, 1, &tr->gw) != 0) {
    st = bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "layout: the encoder's tensors are incomplete");
    goto fail;
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
  size_t NH = (size_t)c->num_heads, PR = N * NH * nt, K = (size_t)tr->K,
         L = (size_t)c->num_layers;
  uint64_t total = (uint64_t)(L * (8 * N * C + 2 * N * I + PR) + (L + 1) * N * C + 12 * N * C +
                              N * I + 2 * PR + NH * nt * nt + 8 * N + 6 * nb * C + 2 * N * K) *
                   4;
  if (ctx->info.global_mem_bytes && total + tr->dev_total * 16 > ctx->info.global_mem_bytes) {
    st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                 "training batch %d x %d needs %.1f MiB of activations and %.1f MiB of "
                 "parameters, gradients and AdamW state; the device has %.1f MiB; try a smaller "
                 "--batch-size (with --grad-accum) or --max-len", nb, nt, total / 1048576.0,
                 tr->dev_total * 16 / 1048576.0, ctx->info.global_mem_bytes / 1048576.0);
    goto fail;
  }
  tr->host_logits = malloc(N * K * sizeof(float));
  tr->host_pos = malloc(N * sizeof(int32_t));
  if (!tr->host_logits || !tr->host_pos) {
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
  MK(tr->pos, N);
  MK(tr->bias, c->rel_buckets > 0 ? NH * nt * nt : 1);
  MK(tr->ones, N);
  MK(tr->pdrop, PR);
  MK(tr->xin_e, N * C);
  for (size_t l = 0; l <= L; l++) MK(tr->h[l], N * C);
  for (size_t l = 0; l < L; l++) {
    bc_fwd_layer *a = &tr->la[l];
    MK(a->qkv, 3 * N * C);
    MK(a->probs, PR);
    MK(a->ctx, N * C);
    MK(a->xin1, N * C);
    MK(a->h1, N * C);
    MK(a->pre, N * I);
    MK(a->act, N * I);
    MK(a->xin2, N * C);
  }
  MK(tr->proj, N * C);
  MK(tr->dH, N * C);
  MK(tr->dh, N * C);
  MK(tr->dh1, N * C);
  MK(tr->dt, N * C);
  MK(tr->dqkv, 3 * N * C);
  MK(tr->dact, N * I);
  MK(tr->dprobs, PR);
  MK(tr->stats, 2 * N);
  MK(tr->ddiag, NH * (2 * nt - 1));
  MK(tr->head_x, nb * C);
  MK(tr->head_pre, nb * C);
  MK(tr->pooled, nb * C);
  MK(tr->head_dx, nb * C);
  MK(tr->pooled_d, N * C);
  MK(tr->dpooled, N * C);
  MK(tr->logits, N * K);
  MK(tr->dlogits, N * K);
#undef MK
  {
    const float one = 1.0f; /* (N) ones: the QKV bias as a rank-1 product (forward.h) */
    BC_CL(&ctx->err, clEnqueueFillBuffer(ctx->queue, tr->ones, &one, sizeof one, 0, N * 4, 0,
                                         NULL, NULL));
  }
  tr->cap_B = nb;
  tr->cap_T = nt;
  return BERTCL_OK;
fail:
  release_arena(tr);
  return st;
}

/* ---- forward + backward ----------------------------------------------------------------- */

/* The one forward (encoder/forward.h) with this trainer's parameters and kept activations. */
static int forward_encoder(bc_trainer *tr, int B, int T, const bc_dropout_cfg *drop) {
  bc_fwd_bufs a = {.ids = tr->ids, .types = tr->tts, .mask = tr->mask, .pos = tr->pos,
                   .bias = tr->bias, .ones = tr->ones, .proj = tr->proj, .pdrop = tr->pdrop,
                   .xin_e = tr->xin_e, .h = tr->h, .layer = tr->la, .keep = 1};
  return bc_forward(tr->ctx, &tr->ops, &tr->tops, &tr->cfg, &tr->pw, &a, B, T, drop);
}

/* Strided-batched product over the (B, NH) heads: operand X of head (b, h) at x_off + b*x2 +
 * h*x1 with leading dimension ldx (forward.h's in-place heads). */
typedef struct {
  cl_mem m;
  size_t off, ld, s1, s2;
} head_operand;

static int gemm_heads(bc_trainer *tr, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                      head_operand a, head_operand b, head_operand c, int B, int NH) {
  bc_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = alpha,
                    .beta = 0.0f, .a = a.m, .a_off = a.off, .lda = a.ld, .a_stride = a.s1,
                    .a_stride2 = a.s2, .b = b.m, .b_off = b.off, .ldb = b.ld, .b_stride = b.s1,
                    .b_stride2 = b.s2, .c = c.m, .c_off = c.off, .ldc = c.ld, .c_stride = c.s1,
                    .c_stride2 = c.s2, .batch = (size_t)NH, .batch2 = (size_t)B};
  return bc_gemm(tr->ctx, &g);
}

static int backward_encoder(bc_trainer *tr, const int32_t *ids, int B, int T,
                            const bc_dropout_cfg *drop) {
  bertcl_ctx *ctx = tr->ctx;
  const bc_config *c = &tr->cfg;
  int st = BERTCL_OK;
  int L = c->num_layers, C = c->hidden_size, NH = c->num_heads, HS = C / NH,
      I = c->intermediate_size, C3 = 3 * C;
  int N = B * T;
  size_t NC = (size_t)N * C, sTT = (size_t)T * T, PR = (size_t)B * NH * sTT;
  float hp = drop ? drop->hidden_p : 0.0f, ap = drop ? drop->attn_p : 0.0f;
  float eps = c->layer_norm_eps, scale = 1.0f / sqrtf((float)HS);
  /* the heads' views: probabilities (B, NH, T, T); q, k, v in the (B*T, 3C) projections;
   * a merged (B*T, C) context */
  const size_t ldq = (size_t)C3, sq2 = (size_t)T * C3, sc2 = (size_t)T * C;
  /* dH (N, C): the head's gradient at the last hidden state */
  for (int l = L - 1; l >= 0; l--) {
    const bc_dev_layer *pw = &tr->pw.layers[l], *gw = &tr->gw.layers[l];
    bc_fwd_layer *a = &tr->la[l];
    cl_mem h = tr->h[l];
    /* h' = LN2(xin2): dt = dLN, dh1 = dt (residual), dt through dropout */
    BC_TRY(bc_op_layernorm_bwd(ctx, &tr->tops, tr->dt, tr->stats, gw->ln2_w.sub, gw->ln2_b.sub,
                               tr->dH, a->xin2, pw->ln2_w.sub, eps, N, C));
    BC_TRY(bc_tr_copy(tr, tr->dh1, tr->dt, NC));
    BC_TRY(bc_tr_dropout(tr, tr->dt, drop, hp, bc_dropout_id(l, BC_DROP_FFN_OUT), NC));
    BC_TRY(bc_tr_linear_bwd(tr, tr->dact, 0.0f, gw->o_b.sub, gw->o_w.off, tr->dt, a->act, N, I,
                            C));
    BC_TRY(bc_op_bias_act_bwd(ctx, &tr->tops, tr->dact, tr->dact, a->pre, pw->i_b.sub,
                              (int)c->act, N, I));
    BC_TRY(bc_tr_linear_bwd(tr, tr->dh1, 1.0f, gw->i_b.sub, gw->i_w.off, tr->dact, a->h1, N, C,
                            I));
    /* h1 = LN1(xin1): dt = dLN, dh = dt (residual) */
    BC_TRY(bc_op_layernorm_bwd(ctx, &tr->tops, tr->dt, tr->stats, gw->ln1_w.sub, gw->ln1_b.sub,
                               tr->dh1, a->xin1, pw->ln1_w.sub, eps, N, C));
    BC_TRY(bc_tr_copy(tr, tr->dh, tr->dt, NC));
    BC_TRY(bc_tr_dropout(tr, tr->dt, drop, hp, bc_dropout_id(l, BC_DROP_ATTN_OUT), NC));
    /* dctx (N, C) in proj, heads merged as the forward wrote the context */
    BC_TRY(bc_tr_linear_bwd(tr, tr->proj, 0.0f, gw->ao_b.sub, gw->ao_w.off, tr->dt, a->ctx, N, C,
                            C));
    /* attention: ctx = dropout(probs) v per head */
    cl_mem pr = a->probs;
    uint32_t aid = bc_dropout_id(l, BC_DROP_ATTN);
    if (drop && ap > 0.0f) {
      BC_TRY(bc_op_dropout(ctx, &tr->tops, tr->pdrop, a->probs, ap, drop->seed, drop->step, aid,
                           PR));
      pr = tr->pdrop;
    }
    head_operand dctx = {tr->proj, 0, (size_t)C, (size_t)HS, sc2};
    head_operand q = {a->qkv, 0, ldq, (size_t)HS, sq2}, k = {a->qkv, (size_t)C, ldq, (size_t)HS, sq2},
                 v = {a->qkv, 2 * (size_t)C, ldq, (size_t)HS, sq2};
    head_operand dq = {tr->dqkv, 0, ldq, (size_t)HS, sq2},
                 dk = {tr->dqkv, (size_t)C, ldq, (size_t)HS, sq2},
                 dv = {tr->dqkv, 2 * (size_t)C, ldq, (size_t)HS, sq2};
    head_operand P_ = {pr, 0, (size_t)T, sTT, (size_t)NH * sTT},
                 dP = {tr->dprobs, 0, (size_t)T, sTT, (size_t)NH * sTT};
    /* dprobs (T, T) = dctx (T, HS) v^T; dv (T, HS) = pr^T dctx */
    BC_TRY(gemm_heads(tr, 0, 1, (size_t)T, (size_t)T, (size_t)HS, 1.0f, dctx, v, dP, B, NH));
    BC_TRY(gemm_heads(tr, 1, 0, (size_t)T, (size_t)HS, (size_t)T, 1.0f, P_, dctx, dv, B, NH));
    BC_TRY(bc_tr_dropout(tr, tr->dprobs, drop, ap, aid, PR));
    /* dz, the gradient at softmax's input s * scale (+ bias): the relative bias table's
     * gradient, and the scores' once scaled */
    BC_TRY(bc_op_softmax_bwd(ctx, &tr->tops, tr->dprobs, tr->dprobs, a->probs, 1.0f, B * NH * T,
                             T));
    if (tr->i_rel >= 0)
      BC_TRY(bc_op_rel_position_bias_bwd(ctx, &tr->ops, G(tr->i_rel), tr->ddiag, tr->dprobs, B,
                                         NH, T));
    /* dq = scale dz k; dk = scale dz^T q, into the (N, 3C) projection gradient */
    BC_TRY(gemm_heads(tr, 0, 0, (size_t)T, (size_t)HS, (size_t)T, scale, dP, k, dq, B, NH));
    BC_TRY(gemm_heads(tr, 1, 0, (size_t)T, (size_t)HS, (size_t)T, scale, dP, q, dk, B, NH));
    BC_TRY(bc_tr_linear_bwd(tr, tr->dh, 1.0f, gw->qkv_b.sub, gw->qkv_w.off, tr->dqkv, h, N, C,
                            C3));
    cl_mem tmp = tr->dH;
    tr->dH = tr->dh;
    tr->dh = tmp;
  }
  /* h0 = dropout(LN(xin_e)); the rows of the tables the forward read */
  BC_TRY(bc_tr_dropout(tr, tr->dH, drop, hp, bc_dropout_id(-1, BC_DROP_EMB), NC));
  BC_TRY(bc_op_layernorm_bwd(ctx, &tr->tops, tr->dt, tr->stats, tr->gw.eln_w.sub,
                             tr->gw.eln_b.sub, tr->dH, tr->xin_e, tr->pw.eln_w.sub, eps, N, C));
  BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, tr->pos, CL_TRUE, 0, (size_t)N * 4,
                                       tr->host_pos, 0, NULL, NULL));
  BC_TRY(bc_op_embedding_bwd(ctx, &tr->tops, tr->gw.wte0.sub, tr->gw.wpe.sub,
                             c->type_vocab_size > 0 ? tr->gw.wtt.sub : NULL, tr->dt, ids,
                             tr->host_pos, tr->tts, B, T, c->type_vocab_size, C));
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
  int first = tr->freeze ? bc_layout_head_index(&tr->lay) : 0;
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
