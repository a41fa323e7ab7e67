/* Public extraction API (include/bertcl.h, "Extraction"): bertcl extract's job pipeline over
 * texts in memory (bc_job_run_mem), with the CLI's defaults. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bertcl.h"
#include "encoder/encoder.h"
#include "job/job.h"
#include "model/model.h"

struct bertcl_features {
  bc_err err; /* first member: bertcl_last_error(f) */
  bc_job_mem mem;
  bertcl_extract_stats stats;
};

static const bertcl_pool job_pools[BC_JOB_NPOOL] = {BERTCL_POOL_CLS, BERTCL_POOL_MEAN,
                                                    BERTCL_POOL_MAX, BERTCL_POOL_POOLER};

/* Options -> job options, with bertcl extract's defaults for everything left 0. */
static int job_options(bc_err *err, const bc_encoder *enc, const bertcl_tokenizer *tok,
                       const bertcl_extract_options *o, bc_job_opts *jo) {
  const bc_config *cfg = bc_encoder_config(enc);
  memset(jo, 0, sizeof *jo);
  unsigned known = BERTCL_POOL_CLS | BERTCL_POOL_MEAN | BERTCL_POOL_MAX | BERTCL_POOL_POOLER;
  if (o->pools & ~(known | BERTCL_EXTRACT_NO_POOL) ||
      ((o->pools & BERTCL_EXTRACT_NO_POOL) && (o->pools & known)))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "pools 0x%x: an OR of BERTCL_POOL_CLS, _MEAN, _MAX, _POOLER, or "
                   "BERTCL_EXTRACT_NO_POOL alone",
                   o->pools);
  if (o->pools & known) {
    for (int k = 0; k < BC_JOB_NPOOL; k++) jo->want[k] = (o->pools & job_pools[k]) != 0;
  } else if (!o->pools) {
    if (cfg->st_pooling)
      for (int k = 0; k < BC_JOB_NPOOL; k++) jo->want[k] = (cfg->st_pooling & job_pools[k]) != 0;
    else
      jo->want[BC_JOB_CLS] = 1;
  }
  jo->nlayers = bc_encoder_resolve_layers(enc, o->layers, o->nlayers, jo->layers);
  if (jo->nlayers < 0)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "bad layer list: indices run from %d to %d (0 = embeddings, negative from the "
                   "end), at most 64 of them",
                   -(cfg->num_layers + 1), cfg->num_layers);
  if ((unsigned)o->combine > BERTCL_COMBINE_SUM)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "combine %d: concat, mean or sum", o->combine);
  jo->combine = (int)o->combine;
  if ((unsigned)o->normalize > BERTCL_NORMALIZE_OFF)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "normalize %d: auto, on or off", o->normalize);
  jo->normalize = o->normalize == BERTCL_NORMALIZE_AUTO ? cfg->st_normalize != 0
                                                        : o->normalize == BERTCL_NORMALIZE_ON;
  jo->tokens = o->tokens != 0;
  if (o->words < 0 || o->words > 2)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "words %d: 0 (none), 1 (first) or 2 (mean)",
                   o->words);
  jo->words = o->words;
  int nout = jo->want[0] + jo->want[1] + jo->want[2] + jo->want[3] + jo->tokens + (jo->words > 0);
  if (nout == 0)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "nothing to extract (BERTCL_EXTRACT_NO_POOL without tokens or words)");
  size_t tmax = bertcl_tokenizer_max_length(tok);
  size_t ml = o->max_length ? o->max_length
                            : (tmax < (size_t)cfg->max_position ? tmax : (size_t)cfg->max_position);
  if (ml > (size_t)cfg->max_position || ml < 3)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "max_length %zu: between 3 and the model's %d positions", ml, cfg->max_position);
  jo->max_len = (int)ml;
  if (o->stride < 0 || (o->stride && o->stride > jo->max_len - 3))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "stride %d must be between 0 and max_length - 3 (%d)",
                   o->stride, jo->max_len - 3);
  if (o->stride && !(jo->tokens || jo->words))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "stride windows are for token or word features");
  jo->stride = o->stride;
  jo->f16 = o->f16 != 0;
  size_t bs = o->batch_size ? o->batch_size : 128;
  jo->max_batch = (int)(bs > 1 << 20 ? 1 << 20 : bs);
  jo->max_tokens = o->max_tokens ? o->max_tokens : 8192;
  jo->window = o->window ? o->window : 10000;
  jo->bucket = !o->no_bucket;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  jo->threads = o->threads > 0 ? (o->threads > 64 ? 64 : o->threads)
                               : (int)(ncpu / 2 < 1 ? 1 : ncpu / 2 > 4 ? 4 : ncpu / 2);
  jo->strict = o->strict != 0;
  jo->quiet = !o->progress;
  jo->progress_tty = isatty(2);
  jo->progress_every = 5.0;
  return BERTCL_OK;
}

int bertcl_extract(bertcl_encoder *enc, const bertcl_tokenizer *tok, const char *const *texts,
                   const char *const *pairs, size_t n, const bertcl_extract_options *opt,
                   bertcl_features **out) {
  bc_err *herr = (bc_err *)enc; /* every public handle starts with its bc_err */
  if (out) *out = NULL;
  if (!enc || !tok || !out || (n && !texts))
    return bc_fail(herr, BERTCL_ERR_INVALID_ARG, "bertcl_extract: NULL argument");
  bertcl_ctx *ctx = NULL;
  bc_encoder *e = bc_encoder_unwrap(enc, &ctx);
  bertcl_extract_options defaults = {0};
  bc_job_opts jo;
  int st = job_options(herr, e, tok, opt ? opt : &defaults, &jo);
  if (st != BERTCL_OK) {
    bc_err_to_thread(herr);
    return st;
  }
  jo.texts = texts;
  jo.pairs = pairs;
  jo.ntexts = n;
  bertcl_features *f = calloc(1, sizeof *f);
  if (!f) {
    st = bc_fail(herr, BERTCL_ERR_NOMEM, "out of memory");
    bc_err_to_thread(herr);
    return st;
  }
  bc_job_stats js;
  bc_err err = {0};
  st = bc_job_run_mem(&err, &jo, tok, ctx, e, &js, &f->mem);
  if (st != BERTCL_OK) {
    *herr = err;
    herr->status = st;
    bc_err_to_thread(herr);
    free(f);
    return st;
  }
  f->stats = (bertcl_extract_stats){.rows = js.rows,
                                    .tokens = js.tokens,
                                    .truncated = js.truncated,
                                    .bad = js.bad,
                                    .windows_split = js.windows_split,
                                    .batches = js.batches,
                                    .readback_bytes = js.readback_bytes,
                                    .seconds = js.seconds};
  *out = f;
  return BERTCL_OK;
}

void bertcl_features_free(bertcl_features *f) {
  if (!f) return;
  bc_job_mem_free(&f->mem);
  free(f);
}

size_t bertcl_features_rows(const bertcl_features *f) { return f ? f->mem.rows : 0; }

const bertcl_extract_stats *bertcl_features_stats(const bertcl_features *f) {
  return f ? &f->stats : NULL;
}

const float *bertcl_features_pooled(const bertcl_features *f, bertcl_pool pool, size_t *width) {
  if (width) *width = 0;
  if (!f) return NULL;
  for (int k = 0; k < BC_JOB_NPOOL; k++)
    if (job_pools[k] == pool && f->mem.pooled[k]) {
      if (width) *width = (size_t)f->mem.poolw[k];
      return f->mem.pooled[k];
    }
  return NULL;
}

static const float *ragged(const bc_job_mem *m, const float *x, const int64_t *off, size_t total,
                           const int64_t **offsets, size_t *ptotal, size_t *width) {
  if (offsets) *offsets = x ? off : NULL;
  if (ptotal) *ptotal = x ? total : 0;
  if (width) *width = x ? (size_t)m->width : 0;
  return x;
}

const float *bertcl_features_tokens(const bertcl_features *f, const int64_t **offsets,
                                    size_t *total, size_t *width) {
  static const bc_job_mem none;
  const bc_job_mem *m = f ? &f->mem : &none;
  return ragged(m, m->tokens, m->tok_off, m->ntokens, offsets, total, width);
}

const float *bertcl_features_words(const bertcl_features *f, const int64_t **offsets,
                                   size_t *total, size_t *width) {
  static const bc_job_mem none;
  const bc_job_mem *m = f ? &f->mem : &none;
  return ragged(m, m->words, m->word_off, m->nwords, offsets, total, width);
}
