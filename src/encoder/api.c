/* Public encoder API (include/bertcl.h) over bc_encoder. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "encoder/encoder.h"

struct bertcl_encoder {
  bc_err err; /* first member: bertcl_last_error(enc) */
  bertcl_ctx *ctx;
  bc_encoder *enc;
};

/* Copies the context's message into the handle after a failed call. */
static int fail_from_ctx(bertcl_encoder *e, int st) {
  e->err = e->ctx->err;
  e->err.status = st;
  bc_err_to_thread(&e->err);
  return st;
}

int bertcl_encoder_create(bertcl_encoder **out, bertcl_ctx *ctx, const bertcl_model *model) {
  if (!out || !ctx || !model)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_encoder_create: NULL argument");
  *out = NULL;
  bertcl_encoder *e = calloc(1, sizeof *e);
  if (!e) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  e->ctx = ctx;
  int st = bc_encoder_create(ctx, model, &e->enc);
  if (st != BERTCL_OK) {
    bc_err_to_thread(&ctx->err);
    free(e);
    return st;
  }
  *out = e;
  return BERTCL_OK;
}

void bertcl_encoder_free(bertcl_encoder *e) {
  if (!e) return;
  bc_encoder_free(e->enc);
  free(e);
}

bc_encoder *bc_encoder_unwrap(bertcl_encoder *e, bertcl_ctx **ctx) {
  if (ctx) *ctx = e->ctx;
  return e->enc;
}

int bc_encoder_resolve_layers(const bc_encoder *enc, const int *layers, int n, int *out) {
  int L = bc_encoder_config(enc)->num_layers;
  if (!layers || n <= 0) {
    out[0] = L;
    return 1;
  }
  if (n > 64) return -1;
  for (int i = 0; i < n; i++) {
    int l = layers[i] < 0 ? layers[i] + L + 1 : layers[i];
    if (l < 0 || l > L) return -1;
    out[i] = l;
  }
  return n;
}

static int resolve_layers(bertcl_encoder *e, const int *layers, int n, int *out) {
  return bc_encoder_resolve_layers(e->enc, layers, n, out);
}

size_t bertcl_encode_width(const bertcl_encoder *e, const bertcl_encode_options *opt) {
  if (!e) return 0;
  size_t C = (size_t)bc_encoder_config(e->enc)->hidden_size;
  if (!opt || opt->pool == BERTCL_POOL_POOLER || opt->combine != BERTCL_COMBINE_CONCAT) return C;
  return C * (size_t)(opt->layers && opt->nlayers > 0 ? opt->nlayers : 1);
}

/* One device batch: forward, then the pooled features into out (B, width). */
static int run_batch(bertcl_encoder *e, const int32_t *ids, const int32_t *tt, const int32_t *mask,
                     int B, int T, const int *layers, int nl, const bertcl_encode_options *opt,
                     float *out) {
  int st = bc_encoder_forward(e->enc, ids, tt, mask, B, T, layers, nl);
  if (st != BERTCL_OK) return st;
  int pool = opt->pool ? (int)opt->pool : BERTCL_POOL_CLS;
  if (pool == BERTCL_POOL_POOLER) {
    st = bc_encoder_read_pooler(e->enc, out);
    if (st == BERTCL_OK && opt->normalize) {
      int C = bc_encoder_config(e->enc)->hidden_size;
      for (int b = 0; b < B; b++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)out[(size_t)b * C + c] * out[(size_t)b * C + c];
        double d = s > 1e-24 ? 1.0 / __builtin_sqrt(s) : 1e12;
        for (int c = 0; c < C; c++) out[(size_t)b * C + c] = (float)(out[(size_t)b * C + c] * d);
      }
    }
    return st;
  }
  return bc_encoder_read_pooled(e->enc, pool, (int)opt->combine, opt->normalize, out);
}

int bertcl_encode_ids(bertcl_encoder *e, const int32_t *ids, const int32_t *type_ids,
                      const int32_t *mask, size_t B, size_t T, const bertcl_encode_options *opt,
                      float *out, size_t out_len) {
  if (!e || !ids || !out)
    return bc_fail(e ? &e->err : NULL, BERTCL_ERR_INVALID_ARG, "bertcl_encode_ids: NULL argument");
  bertcl_encode_options defaults = {0};
  if (!opt) opt = &defaults;
  int layers[64];
  int nl = resolve_layers(e, opt->layers, opt->nlayers, layers);
  if (nl < 0) return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG, "bad layer list");
  int pool = opt->pool ? (int)opt->pool : BERTCL_POOL_CLS;
  if (pool != BERTCL_POOL_CLS && pool != BERTCL_POOL_MEAN && pool != BERTCL_POOL_MAX &&
      pool != BERTCL_POOL_POOLER)
    return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG, "pool must be exactly one bertcl_pool mode");
  size_t width = bertcl_encode_width(e, opt);
  if (B > 0 && out_len / B < width)
    return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG,
                   "output buffer holds %zu floats, %zu x %zu needed", out_len, B, width);
  if (T == 0 || T > 1 << 20 || B > 1u << 30)
    return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG, "bad batch shape %zu x %zu", B, T);
  size_t bs = opt->batch_size ? opt->batch_size : 32;
  for (size_t b0 = 0; b0 < B;) {
    size_t nb = B - b0 < bs ? B - b0 : bs;
    int st = run_batch(e, ids + b0 * T, type_ids ? type_ids + b0 * T : NULL,
                       mask ? mask + b0 * T : NULL, (int)nb, (int)T, layers, nl, opt,
                       out + b0 * width);
    if (st == BERTCL_ERR_DEVICE_OOM && bs > 1) {
      bs /= 2; /* the device is full: halve the batch and retry */
      continue;
    }
    if (st != BERTCL_OK) return fail_from_ctx(e, st);
    b0 += nb;
  }
  return BERTCL_OK;
}

int bertcl_encode(bertcl_encoder *e, const bertcl_tokenizer *tok, const char *const *texts,
                  const char *const *pairs, size_t n, const bertcl_encode_options *opt,
                  float *out, size_t out_len) {
  if (!e || !tok || (!texts && n) || !out)
    return bc_fail(e ? &e->err : NULL, BERTCL_ERR_INVALID_ARG, "bertcl_encode: NULL argument");
  bertcl_encode_options o = opt ? *opt : (bertcl_encode_options){0};
  size_t width = bertcl_encode_width(e, &o);
  if (n > 0 && out_len / n < width)
    return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG,
                   "output buffer holds %zu floats, %zu x %zu needed", out_len, n, width);
  size_t bs = o.batch_size ? o.batch_size : 32;
  bertcl_tokenize_options topt = {.max_length = o.max_length};
  for (size_t i = 0; i < n;) {
    size_t nb = n - i < bs ? n - i : bs;
    bertcl_batch *b = NULL;
    int st = bertcl_tokenizer_encode_batch(tok, texts + i, pairs ? pairs + i : NULL, nb, &topt, &b);
    if (st != BERTCL_OK) {
      e->err = *bc_thread_err();
      return st;
    }
    o.batch_size = nb; /* bertcl_encode_ids halves it on out-of-memory */
    st = bertcl_encode_ids(e, b->ids, b->type_ids, b->mask, b->batch, b->seq, &o, out + i * width,
                           (n - i) * width);
    bertcl_batch_free(b);
    if (st != BERTCL_OK) return st;
    i += nb;
  }
  return BERTCL_OK;
}

int bertcl_encode_hidden(bertcl_encoder *e, const int32_t *ids, const int32_t *type_ids,
                         const int32_t *mask, size_t B, size_t T, const int *layers, int nlayers,
                         float *out, size_t out_len) {
  if (!e || !ids || !out)
    return bc_fail(e ? &e->err : NULL, BERTCL_ERR_INVALID_ARG,
                   "bertcl_encode_hidden: NULL argument");
  int ls[64];
  int nl = resolve_layers(e, layers, nlayers, ls);
  if (nl < 0) return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG, "bad layer list");
  size_t C = (size_t)bc_encoder_config(e->enc)->hidden_size, per = B * T * C;
  if (B == 0 || T == 0 || per / B / T != C || out_len / (size_t)nl < per)
    return bc_fail(&e->err, BERTCL_ERR_INVALID_ARG,
                   "output buffer holds %zu floats, %d x %zu x %zu x %zu needed", out_len, nl, B, T,
                   C);
  int st = bc_encoder_forward(e->enc, ids, type_ids, mask, (int)B, (int)T, ls, nl);
  for (int j = 0; j < nl && st == BERTCL_OK; j++)
    st = bc_encoder_read_hidden(e->enc, j, out + (size_t)j * per);
  return st == BERTCL_OK ? BERTCL_OK : fail_from_ctx(e, st);
}
