/* OpenCL encoder forward: weight upload, arena, schedule, pooling. See encoder.h. */
#define _POSIX_C_SOURCE 200809L
#include "encoder/encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/forward.h"
#include "gemm/gemm.h"

#define MAX_CHUNKS 16

struct bc_encoder {
  bertcl_ctx *ctx;
  bc_config cfg;
  bc_ops ops;
  cl_mem chunks[MAX_CHUNKS];
  int nchunks;
  bc_dev_weights w;              /* the encoder's tensors (forward.h) */
  bc_dev_tensor pool_w, pool_b; /* BERT's pooler, when the model has one */
  uint64_t mem_cap;
  /* arena, planned for (cap_B, cap_T) */
  int cap_B, cap_T;
  cl_mem ids, tts, mask, pos, bias, x[2], a1, proj, qkv, ones, scores, attn, inter, cls, pooled,
      feat;
  cl_mem kept[64];
  int cap_kept;
  /* the last forward */
  int B, T, nkept, kept_layers[64];
  int *lengths; /* (cap_B) real tokens per row of the last forward */
  cl_mem last; /* hidden state of the last layer */
};

const bc_config *bc_encoder_config(const bc_encoder *enc) { return &enc->cfg; }
void bc_encoder_set_mem_cap(bc_encoder *enc, uint64_t bytes) { enc->mem_cap = bytes; }

/* ---- weights --------------------------------------------------------------------------- */

typedef struct {
  const float *src;  /* host data, or NULL when parts are concatenated */
  const float *parts[3];
  size_t part_n;
  size_t n;
  bc_dev_tensor *dst;
} upload_item;

static int add_item(upload_item *items, int *count, int cap, const float *src, size_t n,
                    bc_dev_tensor *dst) {
  if (*count >= cap) return -1;
  items[*count] = (upload_item){.src = src, .n = n, .dst = dst};
  (*count)++;
  return 0;
}

static int upload_weights(bc_encoder *enc, const bc_weights *w) {
  bertcl_ctx *ctx = enc->ctx;
  const bc_config *c = &enc->cfg;
  int st = BERTCL_OK;
  size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, V = (size_t)c->vocab_size;
  int L = c->num_layers;
  int cap = 16 + 16 * L, n = 0;
  upload_item *items = calloc((size_t)cap, sizeof *items);
  float *staging = NULL;
  if (!items) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  uint64_t max_alloc = ctx->info.max_alloc_bytes ? ctx->info.max_alloc_bytes : (1ull << 30);
  /* a vocabulary table above the device's largest allocation is split in two row ranges */
  enc->w.split = (int)V;
  if (V * C * 4 > max_alloc) {
    enc->w.split = (int)(V / 2);
    if ((V - (size_t)enc->w.split) * C * 4 > max_alloc) {
      st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                   "word embedding (%zu x %zu floats) exceeds twice the device's largest "
                   "allocation (%llu bytes)", V, C, (unsigned long long)max_alloc);
      goto fail;
    }
  }
  add_item(items, &n, cap, w->word_emb, (size_t)enc->w.split * C, &enc->w.wte0);
  add_item(items, &n, cap, w->word_emb + (size_t)enc->w.split * C,
           (V - (size_t)enc->w.split) * C, &enc->w.wte1);
  add_item(items, &n, cap, w->pos_emb, (size_t)bc_config_position_rows(c) * C, &enc->w.wpe);
  if (c->type_vocab_size > 0)
    add_item(items, &n, cap, w->type_emb, (size_t)c->type_vocab_size * C, &enc->w.wtt);
  if (c->rel_buckets > 0)
    add_item(items, &n, cap, w->rel_bias, (size_t)c->rel_buckets * c->num_heads, &enc->w.rel_bias);
  add_item(items, &n, cap, w->emb_ln_w, C, &enc->w.eln_w);
  add_item(items, &n, cap, w->emb_ln_b, C, &enc->w.eln_b);
  for (int l = 0; l < L; l++) {
    const bc_layer_weights *lw = &w->layers[l];
    bc_dev_layer *dl = &enc->w.layers[l];
    upload_item *it = &items[n];
    add_item(items, &n, cap, NULL, 3 * C * C, &dl->qkv_w);
    it->parts[0] = lw->q_w, it->parts[1] = lw->k_w, it->parts[2] = lw->v_w, it->part_n = C * C;
    it = &items[n];
    add_item(items, &n, cap, NULL, 3 * C, &dl->qkv_b);
    it->parts[0] = lw->q_b, it->parts[1] = lw->k_b, it->parts[2] = lw->v_b, it->part_n = C;
    add_item(items, &n, cap, lw->ao_w, C * C, &dl->ao_w);
    add_item(items, &n, cap, lw->ao_b, C, &dl->ao_b);
    add_item(items, &n, cap, lw->ln1_w, C, &dl->ln1_w);
    add_item(items, &n, cap, lw->ln1_b, C, &dl->ln1_b);
    add_item(items, &n, cap, lw->inter_w, I * C, &dl->i_w);
    add_item(items, &n, cap, lw->inter_b, I, &dl->i_b);
    add_item(items, &n, cap, lw->out_w, C * I, &dl->o_w);
    add_item(items, &n, cap, lw->out_b, C, &dl->o_b);
    add_item(items, &n, cap, lw->ln2_w, C, &dl->ln2_w);
    add_item(items, &n, cap, lw->ln2_b, C, &dl->ln2_b);
  }
  if (w->pool_w && w->pool_b) {
    add_item(items, &n, cap, w->pool_w, C * C, &enc->pool_w);
    add_item(items, &n, cap, w->pool_b, C, &enc->pool_b);
  }
  /* place tensors in chunks of at most max_alloc bytes, offsets aligned for sub-buffers */
  cl_uint align_bits = 0;
  clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits,
                  NULL);
  size_t align = align_bits / 8 > 256 ? align_bits / 8 : 256; /* bytes */
  size_t chunk_bytes[MAX_CHUNKS] = {0}, offs[1024];
  int chunk_of[1024];
  if (n > 1024) {
    st = bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED, "too many layers (%d)", L);
    goto fail;
  }
  int cur = 0;
  for (int i = 0; i < n; i++) {
    size_t bytes = items[i].n * 4;
    size_t at = (chunk_bytes[cur] + align - 1) / align * align;
    if (at + bytes > max_alloc) {
      if (++cur >= MAX_CHUNKS) {
        st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM, "model too large for the device");
        goto fail;
      }
      at = 0;
    }
    offs[i] = at;
    chunk_of[i] = cur;
    chunk_bytes[cur] = at + bytes;
  }
  enc->nchunks = cur + 1;
  for (int ch = 0; ch < enc->nchunks; ch++)
    if (!(enc->chunks[ch] = bc_buffer_new(ctx, CL_MEM_READ_ONLY, chunk_bytes[ch], NULL, &st)))
      goto fail;
  size_t staging_n = 3 * C * C > 3 * C ? 3 * C * C : 3 * C;
  staging = malloc(staging_n * sizeof *staging);
  if (!staging) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    upload_item *it = &items[i];
    const float *src = it->src;
    if (!src) {
      for (int p = 0; p < 3; p++) memcpy(staging + p * it->part_n, it->parts[p], it->part_n * 4);
      src = staging;
    }
    cl_mem base = enc->chunks[chunk_of[i]];
    if (it->n > 0)
      BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, base, CL_TRUE, offs[i], it->n * 4, src,
                                            0, NULL, NULL));
    it->dst->base = base;
    it->dst->off = offs[i] / 4;
    it->dst->n = it->n;
    cl_buffer_region region = {offs[i], it->n ? it->n * 4 : 4};
    if (it->n == 0) region.origin = 0;
    BC_CL_OBJ(&ctx->err, it->dst->sub,
              clCreateSubBuffer(base, 0, CL_BUFFER_CREATE_TYPE_REGION, &region, BC_RC));
  }
  free(staging);
  free(items);
  return BERTCL_OK;
fail:
  free(staging);
  free(items);
  return st;
}

static void release_tensor(bc_dev_tensor *t) {
  if (t->sub) clReleaseMemObject(t->sub);
  t->sub = NULL;
}

static void release_arena(bc_encoder *enc) {
  cl_mem *ms[] = {&enc->ids,  &enc->tts,    &enc->mask,   &enc->pos,  &enc->bias,
                  &enc->x[0], &enc->x[1],
                  &enc->a1,   &enc->proj,   &enc->qkv,    &enc->ones, &enc->scores,
                  &enc->attn, &enc->inter,
                  &enc->cls,  &enc->pooled, &enc->feat};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
    if (*ms[i]) {
      clReleaseMemObject(*ms[i]);
      *ms[i] = NULL;
    }
  for (int i = 0; i < enc->cap_kept; i++)
    if (enc->kept[i]) {
      clReleaseMemObject(enc->kept[i]);
      enc->kept[i] = NULL;
    }
  enc->cap_B = enc->cap_T = enc->cap_kept = 0;
  enc->last = NULL;
}

void bc_encoder_free(bc_encoder *enc) {
  if (!enc) return;
  if (enc->ctx && enc->ctx->queue) clFinish(enc->ctx->queue);
  release_arena(enc);
  bc_dev_tensor *ts[] = {&enc->w.wte0,  &enc->w.wte1,  &enc->w.wpe,    &enc->w.wtt,     &enc->w.eln_w,
                      &enc->w.eln_b, &enc->pool_w, &enc->pool_b, &enc->w.rel_bias};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) release_tensor(ts[i]);
  if (enc->w.layers)
    for (int l = 0; l < enc->cfg.num_layers; l++) {
      bc_dev_layer *d = &enc->w.layers[l];
      bc_dev_tensor *lt[] = {&d->qkv_w, &d->qkv_b, &d->ao_w, &d->ao_b, &d->ln1_w, &d->ln1_b,
                          &d->i_w,   &d->i_b,   &d->o_w,  &d->o_b,  &d->ln2_w, &d->ln2_b};
      for (size_t i = 0; i < sizeof lt / sizeof lt[0]; i++) release_tensor(lt[i]);
    }
  for (int i = 0; i < enc->nchunks; i++)
    if (enc->chunks[i]) clReleaseMemObject(enc->chunks[i]);
  bc_ops_free(&enc->ops);
  free(enc->w.layers);
  free(enc->lengths);
  free(enc);
}

int bc_encoder_create(bertcl_ctx *ctx, const struct bertcl_model *model, bc_encoder **out) {
  if (!ctx || !model || !out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  int st = BERTCL_OK;
  bc_encoder *enc = calloc(1, sizeof *enc);
  if (!enc) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  enc->ctx = ctx;
  enc->cfg = *bc_model_config(model);
  /* BERTCL_DEVICE_MEM_CAP (bytes): pretend the device has only this much memory for
   * activations, to exercise the out-of-memory paths (tests, or to leave room for others) */
  const char *cap = getenv("BERTCL_DEVICE_MEM_CAP");
  if (cap && *cap) enc->mem_cap = strtoull(cap, NULL, 10);
  const bc_config *c = &enc->cfg;
  if (c->hidden_size <= 0 || c->num_heads <= 0 || c->hidden_size % c->num_heads != 0 ||
      c->num_layers <= 0 || c->num_layers > 62) {
    st = bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED,
                 "unsupported shape: hidden %d, heads %d, layers %d", c->hidden_size,
                 c->num_heads, c->num_layers);
    goto fail;
  }
  enc->w.layers = calloc((size_t)c->num_layers, sizeof *enc->w.layers);
  if (!enc->w.layers) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  BC_TRY(bc_ops_init(ctx, &enc->ops));
  BC_TRY(upload_weights(enc, bc_model_weights(model)));
  BC_CL(&ctx->err, clFinish(ctx->queue));
  *out = enc;
  return BERTCL_OK;
fail:
  bc_encoder_free(enc);
  return st;
}

/* ---- arena ----------------------------------------------------------------------------- */

static int plan_arena(bc_encoder *enc, int B, int T, int nkept) {
  if (B <= enc->cap_B && T <= enc->cap_T && nkept <= enc->cap_kept && enc->ids) return BERTCL_OK;
  bertcl_ctx *ctx = enc->ctx;
  int st = BERTCL_OK;
  int nb = B > enc->cap_B ? B : enc->cap_B, nt = T > enc->cap_T ? T : enc->cap_T;
  int nk = nkept > enc->cap_kept ? nkept : enc->cap_kept;
  release_arena(enc);
  const bc_config *c = &enc->cfg;
  size_t N = (size_t)nb * nt, C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size,
         NH = (size_t)c->num_heads;
  size_t feat = (size_t)nb * C * (size_t)(nk > 0 ? nk : 1);
  struct {
    cl_mem *m;
    size_t bytes;
  } plan[] = {
      {&enc->ids, N * 4},        {&enc->tts, N * 4},         {&enc->mask, N * 4},
      {&enc->pos, N * 4},        {&enc->bias, (c->rel_buckets > 0 ? NH * nt * nt : 1) * 4},
      {&enc->x[0], N * C * 4},   {&enc->x[1], N * C * 4},    {&enc->a1, N * C * 4},
      {&enc->proj, N * C * 4},   {&enc->qkv, N * 3 * C * 4}, {&enc->ones, N * 4},
      {&enc->scores, N * NH * nt * 4}, {&enc->attn, N * C * 4}, {&enc->inter, N * I * 4},
      {&enc->cls, nb * C * 4},   {&enc->pooled, nb * C * 4}, {&enc->feat, feat * 4},
  };
  uint64_t total = (uint64_t)nk * N * C * 4;
  for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) total += plan[i].bytes;
  uint64_t cap = enc->mem_cap ? enc->mem_cap : ctx->info.global_mem_bytes;
  if (cap && total > cap) {
    st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                 "batch %d x %d needs %.1f MiB of activations, the device allows %.1f MiB; "
                 "try a smaller --batch-size", nb, nt, total / 1048576.0, cap / 1048576.0);
    goto fail;
  }
  for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
    if (plan[i].bytes > ctx->info.max_alloc_bytes && ctx->info.max_alloc_bytes) {
      st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                   "batch %d x %d needs a %.1f MiB buffer, above the device's largest "
                   "allocation (%.1f MiB); try a smaller --batch-size", nb, nt,
                   plan[i].bytes / 1048576.0, ctx->info.max_alloc_bytes / 1048576.0);
      goto fail;
    }
    if (!(*plan[i].m = bc_buffer_new(ctx, CL_MEM_READ_WRITE, plan[i].bytes, NULL, &st)))
      goto fail;
  }
  for (int i = 0; i < nk; i++)
    if (!(enc->kept[i] = bc_buffer_new(ctx, CL_MEM_READ_WRITE, N * C * 4, NULL, &st))) goto fail;
  /* Drivers allocate device memory lazily, at a buffer's first use, and may then report a full
   * device only when a later command fails. Touching every buffer now makes the failure come
   * here, synchronously, as BERTCL_ERR_DEVICE_OOM, where the caller can halve the batch. Runs
   * only when the arena grows. */
  {
    const cl_uint zero = 0;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++)
      BC_CL(&ctx->err, clEnqueueFillBuffer(ctx->queue, *plan[i].m, &zero, sizeof zero, 0,
                                           plan[i].bytes, 0, NULL, NULL));
    for (int i = 0; i < nk; i++)
      BC_CL(&ctx->err, clEnqueueFillBuffer(ctx->queue, enc->kept[i], &zero, sizeof zero, 0,
                                           N * C * 4, 0, NULL, NULL));
    const float one = 1.0f; /* (N, 1) column of ones: the QKV bias as a rank-1 product */
    BC_CL(&ctx->err, clEnqueueFillBuffer(ctx->queue, enc->ones, &one, sizeof one, 0, N * 4, 0,
                                         NULL, NULL));
    BC_CL(&ctx->err, clFinish(ctx->queue));
  }
  enc->cap_B = nb;
  enc->cap_T = nt;
  enc->cap_kept = nk;
  return BERTCL_OK;
fail:
  enc->cap_kept = nk; /* release what was made */
  release_arena(enc);
  return st;
}

/* ---- forward --------------------------------------------------------------------------- */

int bc_encoder_forward(bc_encoder *enc, const int32_t *ids, const int32_t *type_ids,
                       const int32_t *mask, int B, int T, const int *layers, int nlayers) {
  bertcl_ctx *ctx = enc->ctx;
  const bc_config *c = &enc->cfg;
  int st = BERTCL_OK;
  int32_t *staging = NULL;
  cl_mem up = NULL;
  int L = c->num_layers;
  if (B <= 0 || T <= 0 || !ids || nlayers < 0 || nlayers > 64 || (nlayers && !layers))
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "bad batch: B=%d T=%d layers=%d", B, T,
                   nlayers);
  size_t N = (size_t)B * T;
  st = bc_config_check_batch(&ctx->err, c, ids, type_ids, B, T);
  if (st != BERTCL_OK) return st;
  int slot_of[65];
  for (int l = 0; l <= L; l++) slot_of[l] = -1;
  for (int j = 0; j < nlayers; j++) {
    if (layers[j] < 0 || layers[j] > L)
      return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "layer %d does not exist (0..%d)",
                     layers[j], L);
    if (slot_of[layers[j]] < 0) slot_of[layers[j]] = j;
  }
  if (mask)
    for (int b = 0; b < B; b++)
      for (int t = 1; t < T; t++)
        if (mask[(size_t)b * T + t] && !mask[(size_t)b * T + t - 1])
          return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                         "row %d of the attention mask is not right-padded (1...1 0...0)", b);
  BC_TRY(plan_arena(enc, B, T, nlayers));
  int *lens = realloc(enc->lengths, (size_t)B * sizeof *lens);
  if (!lens) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  enc->lengths = lens;
  for (int b = 0; b < B; b++) {
    int n = 0;
    for (int t = 0; t < T; t++) n += mask ? mask[(size_t)b * T + t] != 0 : 1;
    lens[b] = n;
  }
  /* ids, type ids and mask go up through one staging buffer that copies them at creation, so
   * the caller's arrays are free as soon as this returns and the host need not wait for the
   * device (the job pipeline packs the next batch meanwhile) */
  staging = malloc(3 * N * 4);
  if (!staging) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  memcpy(staging, ids, N * 4);
  for (size_t i = 0; i < N; i++) {
    staging[N + i] = type_ids ? type_ids[i] : 0;
    staging[2 * N + i] = mask ? mask[i] : 1;
  }
  up = bc_buffer_create(ctx, 3 * N * 4, staging, &st);
  if (st != BERTCL_OK) goto fail;
  BC_CL(&ctx->err, clEnqueueCopyBuffer(ctx->queue, up, enc->ids, 0, 0, N * 4, 0, NULL, NULL));
  BC_CL(&ctx->err,
        clEnqueueCopyBuffer(ctx->queue, up, enc->tts, N * 4, 0, N * 4, 0, NULL, NULL));
  BC_CL(&ctx->err,
        clEnqueueCopyBuffer(ctx->queue, up, enc->mask, 2 * N * 4, 0, N * 4, 0, NULL, NULL));
  enc->B = B;
  enc->T = T;
  enc->nkept = nlayers;
  for (int j = 0; j < nlayers; j++) enc->kept_layers[j] = layers[j];
  /* hidden state l lives in its kept buffer, else in scratch x[l % 2]; one scratch set of
   * activations serves every layer */
  cl_mem hid[65];
  for (int l = 0; l <= L; l++) hid[l] = slot_of[l] >= 0 ? enc->kept[slot_of[l]] : enc->x[l % 2];
  bc_fwd_layer acts = {.qkv = enc->qkv, .probs = enc->scores, .ctx = enc->attn, .h1 = enc->a1,
                       .act = enc->inter};
  bc_fwd_bufs bufs = {.ids = enc->ids, .types = enc->tts, .mask = enc->mask, .pos = enc->pos,
                      .bias = enc->bias, .ones = enc->ones, .proj = enc->proj, .h = hid,
                      .layer = &acts};
  BC_TRY(bc_forward(ctx, &enc->ops, NULL, c, &enc->w, &bufs, B, T, NULL));
  cl_mem h = hid[L];
  enc->last = h;
  BC_CL(&ctx->err, clFlush(ctx->queue)); /* start the device; nothing here waits for it */
  clReleaseMemObject(up);
  free(staging);
  return BERTCL_OK;
fail:
  clFinish(ctx->queue);
  if (up) clReleaseMemObject(up);
  free(staging);
  return st;
}

int bc_encoder_read_hidden(bc_encoder *enc, int i, float *out) {
  bertcl_ctx *ctx = enc->ctx;
  int st = BERTCL_OK;
  if (i < 0 || i >= enc->nkept)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "kept layer %d of %d", i, enc->nkept);
  size_t bytes = (size_t)enc->B * enc->T * enc->cfg.hidden_size * 4;
  BC_CL(&ctx->err,
        clEnqueueReadBuffer(ctx->queue, enc->kept[i], CL_TRUE, 0, bytes, out, 0, NULL, NULL));
  return BERTCL_OK;
fail:
  return st;
}

/* dst must hold `bytes`: a short buffer would be written past its end. */
static int check_dst(bc_encoder *enc, cl_mem dst, size_t bytes) {
  size_t have = 0;
  if (!dst || clGetMemObjectInfo(dst, CL_MEM_SIZE, sizeof have, &have, NULL) != CL_SUCCESS)
    return bc_fail(&enc->ctx->err, BERTCL_ERR_INVALID_ARG, "no destination buffer");
  if (have < bytes)
    return bc_fail(&enc->ctx->err, BERTCL_ERR_INVALID_ARG,
                   "destination buffer holds %zu bytes, the features need %zu", have, bytes);
  return BERTCL_OK;
}

/* Blocking read of `bytes` from the start of src (the in-order queue runs everything enqueued
 * before it first). */
static int read_back(bc_encoder *enc, cl_mem src, size_t bytes, float *out) {
  int st = BERTCL_OK;
  if (bytes)
    BC_CL(&enc->ctx->err,
          clEnqueueReadBuffer(enc->ctx->queue, src, CL_TRUE, 0, bytes, out, 0, NULL, NULL));
fail:
  return st;
}

int bc_encoder_finish(bc_encoder *enc) {
  int st = BERTCL_OK;
  BC_CL(&enc->ctx->err, clFinish(enc->ctx->queue));
fail:
  return st;
}

static int feature_width(const bc_encoder *enc, int combine) {
  return combine == BC_COMBINE_CONCAT ? enc->nkept * enc->cfg.hidden_size : enc->cfg.hidden_size;
}

int bc_encoder_to_half(bc_encoder *enc, cl_mem dst, cl_mem src, size_t n) {
  if (n == 0) return BERTCL_OK;
  if (n > 0x7FFFFFFF)
    return bc_fail(&enc->ctx->err, BERTCL_ERR_INVALID_ARG, "%zu values to narrow at once", n);
  int st = check_dst(enc, dst, n * 2);
  if (st == BERTCL_OK) st = bc_op_to_half(enc->ctx, &enc->ops, dst, src, (int)n);
  return st;
}

int bc_encoder_pooler_to(bc_encoder *enc, cl_mem dst) {
  bertcl_ctx *ctx = enc->ctx;
  int st = BERTCL_OK;
  if (!enc->pool_w.sub)
    return bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED,
                   "this model has no pooler weights (pooler.dense); use --pool cls or mean");
  if (!enc->last) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "no forward pass yet");
  int B = enc->B, T = enc->T, C = enc->cfg.hidden_size;
  BC_TRY(check_dst(enc, dst, (size_t)B * C * 4));
  BC_TRY(bc_op_gather_cls(ctx, &enc->ops, enc->cls, enc->last, B, T, C));
  BC_TRY(bc_linear(ctx, dst, 0, enc->cls, 0, enc->pool_w.base, enc->pool_w.off, (size_t)B,
                   (size_t)C, (size_t)C));
  BC_TRY(bc_op_bias_act(ctx, &enc->ops, dst, enc->pool_b.sub, BC_ACT_TANH_, B, C));
fail:
  return st;
}

int bc_encoder_read_pooler(bc_encoder *enc, float *out) {
  int st = bc_encoder_pooler_to(enc, enc->pooled);
  if (st == BERTCL_OK)
    st = read_back(enc, enc->pooled, (size_t)enc->B * enc->cfg.hidden_size * 4, out);
  return st;
}

int bc_encoder_pooled_to(bc_encoder *enc, int mode, int combine, int normalize, cl_mem dst) {
  bertcl_ctx *ctx = enc->ctx;
  int st = BERTCL_OK;
  int B = enc->B, T = enc->T, C = enc->cfg.hidden_size, n = enc->nkept;
  if (n <= 0) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "no layer kept to pool");
  if (mode != BC_POOL_CLS && mode != BC_POOL_MEAN && mode != BC_POOL_MAX)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "pool mode %d", mode);
  int width = feature_width(enc, combine);
  BC_TRY(check_dst(enc, dst, (size_t)B * width * 4));
  for (int j = 0; j < n; j++) {
    if (combine == BC_COMBINE_CONCAT) {
      BC_TRY(bc_op_pool(ctx, &enc->ops, dst, enc->kept[j], enc->mask, mode, B, T, C, width,
                        j * C));
    } else {
      BC_TRY(bc_op_pool(ctx, &enc->ops, enc->cls, enc->kept[j], enc->mask, mode, B, T, C, C, 0));
      float alpha = combine == BC_COMBINE_MEAN ? 1.0f / (float)n : 1.0f;
      BC_TRY(bc_op_scale_add(ctx, &enc->ops, dst, enc->cls, alpha, j == 0 ? 0.0f : 1.0f, B, C, C,
                             0));
    }
  }
  if (normalize) BC_TRY(bc_op_l2norm(ctx, &enc->ops, dst, B, width));
fail:
  return st;
}

int bc_encoder_read_pooled(bc_encoder *enc, int mode, int combine, int normalize, float *out) {
  int st = bc_encoder_pooled_to(enc, mode, combine, normalize, enc->feat);
  if (st == BERTCL_OK)
    st = read_back(enc, enc->feat, (size_t)enc->B * feature_width(enc, combine) * 4, out);
  return st;
}

/* How kept layer j of n joins the output: concat places it at column j*C, mean/sum add it. */
static void combine_step(int combine, int j, int n, int C, float *alpha, float *beta, int *col0) {
  *col0 = combine == BC_COMBINE_CONCAT ? j * C : 0;
  *alpha = combine == BC_COMBINE_MEAN ? 1.0f / (float)n : 1.0f;
  *beta = (combine == BC_COMBINE_CONCAT || j == 0) ? 0.0f : 1.0f;
}

int bc_encoder_tokens_to(bc_encoder *enc, int combine, cl_mem dst) {
  bertcl_ctx *ctx = enc->ctx;
  int st = BERTCL_OK;
  int B = enc->B, T = enc->T, C = enc->cfg.hidden_size, n = enc->nkept;
  if (n <= 0) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "no layer kept");
  int width = feature_width(enc, combine);
  size_t total = bc_encoder_token_count(enc);
  if (!total) return BERTCL_OK;
  BC_TRY(check_dst(enc, dst, total * (size_t)width * 4));
  int32_t *off = malloc(((size_t)B + 1) * sizeof *off);
  cl_mem doff = NULL;
  if (!off) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  off[0] = 0;
  for (int b = 0; b < B; b++) off[b + 1] = off[b] + enc->lengths[b];
  /* copied at creation: the host array may go at once; the release waits for the kernels */
  doff = bc_buffer_create(ctx, ((size_t)B + 1) * 4, off, &st);
  for (int j = 0; j < n && st == BERTCL_OK; j++) {
    float alpha, beta;
    int col0;
    combine_step(combine, j, n, C, &alpha, &beta, &col0);
    st = bc_op_gather_tokens(ctx, &enc->ops, dst, enc->kept[j], doff, alpha, beta, B, T, C,
                             width, col0);
  }
  if (doff) clReleaseMemObject(doff);
  free(off);
fail:
  return st;
}

size_t bc_encoder_token_count(const bc_encoder *enc) {
  size_t n = 0;
  for (int b = 0; b < enc->B; b++) n += (size_t)enc->lengths[b];
  return n;
}

/* A temporary device buffer for `rows` feature rows (freed by the caller), and its size. */
static cl_mem rows_buffer(bc_encoder *enc, size_t rows, int combine, size_t *bytes, int *st) {
  *bytes = rows * (size_t)feature_width(enc, combine) * 4;
  return bc_buffer_create(enc->ctx, *bytes, NULL, st);
}

int bc_encoder_read_tokens(bc_encoder *enc, int combine, float *out, size_t *nrows) {
  if (enc->nkept <= 0) return bc_fail(&enc->ctx->err, BERTCL_ERR_INVALID_ARG, "no layer kept");
  int st = BERTCL_OK;
  size_t bytes;
  *nrows = bc_encoder_token_count(enc);
  cl_mem d = rows_buffer(enc, *nrows, combine, &bytes, &st);
  if (!d) return st;
  st = bc_encoder_tokens_to(enc, combine, d);
  if (st == BERTCL_OK) st = read_back(enc, d, bytes, out);
  clReleaseMemObject(d);
  return st;
}

int bc_encoder_words_to(bc_encoder *enc, const int32_t *word_ids, int mode, int combine,
                        cl_mem dst) {
  bertcl_ctx *ctx = enc->ctx;
  int st = BERTCL_OK;
  int B = enc->B, T = enc->T, C = enc->cfg.hidden_size, n = enc->nkept;
  if (n <= 0) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "no layer kept");
  if (mode != 1 && mode != 2)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "word mode %d (1 first, 2 mean)", mode);
  int width = feature_width(enc, combine);
  size_t total = bc_encoder_word_count(enc, word_ids);
  if (!total) return BERTCL_OK;
  BC_TRY(check_dst(enc, dst, total * (size_t)width * 4));
  int32_t *wb = malloc(total * 4), *ww = malloc(total * 4);
  cl_mem dids = NULL, dwb = NULL, dww = NULL;
  if (!wb || !ww) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  size_t r = 0;
  for (int b = 0; b < B; b++) {
    int mx = -1;
    for (int t = 0; t < enc->lengths[b]; t++)
      if (word_ids[(size_t)b * T + t] > mx) mx = word_ids[(size_t)b * T + t];
    for (int w = 0; w <= mx; w++, r++) wb[r] = b, ww[r] = w;
  }
  /* copied at creation: the host arrays may go at once; the releases wait for the kernels */
  dids = bc_buffer_create(ctx, (size_t)B * T * 4, word_ids, &st);
  if (st == BERTCL_OK) dwb = bc_buffer_create(ctx, total * 4, wb, &st);
  if (st == BERTCL_OK) dww = bc_buffer_create(ctx, total * 4, ww, &st);
  for (int j = 0; j < n && st == BERTCL_OK; j++) {
    float alpha, beta;
    int col0;
    combine_step(combine, j, n, C, &alpha, &beta, &col0);
    st = bc_op_word_pool(ctx, &enc->ops, dst, enc->kept[j], dids, dwb, dww, mode, alpha, beta,
                         (int)total, T, C, width, col0);
  }
done:
  if (dids) clReleaseMemObject(dids);
  if (dwb) clReleaseMemObject(dwb);
  if (dww) clReleaseMemObject(dww);
  free(wb);
  free(ww);
fail:
  return st;
}

int bc_encoder_read_words(bc_encoder *enc, const int32_t *word_ids, int mode, int combine,
                          float *out, size_t *nrows) {
  if (enc->nkept <= 0) return bc_fail(&enc->ctx->err, BERTCL_ERR_INVALID_ARG, "no layer kept");
  if (mode != 1 && mode != 2)
    return bc_fail(&enc->ctx->err, BERTCL_ERR_INVALID_ARG, "word mode %d (1 first, 2 mean)",
                   mode);
  int st = BERTCL_OK;
  size_t bytes;
  *nrows = bc_encoder_word_count(enc, word_ids);
  cl_mem d = rows_buffer(enc, *nrows, combine, &bytes, &st);
  if (!d) return st;
  st = bc_encoder_words_to(enc, word_ids, mode, combine, d);
  if (st == BERTCL_OK) st = read_back(enc, d, bytes, out);
  clReleaseMemObject(d);
  return st;
}

size_t bc_encoder_word_count(const bc_encoder *enc, const int32_t *word_ids) {
  size_t total = 0;
  for (int b = 0; b < enc->B; b++) {
    int mx = -1;
    for (int t = 0; t < enc->lengths[b]; t++)
      if (word_ids[(size_t)b * enc->T + t] > mx) mx = word_ids[(size_t)b * enc->T + t];
    total += (size_t)(mx + 1);
  }
  return total;
}
