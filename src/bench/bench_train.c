/* bertcl_bench: the time of one fine-tuning step. See bench.h. */
#define _POSIX_C_SOURCE 200809L
#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/layout.h"
#include "train/recipe.h"
#include "train/trainer.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static uint64_t next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

int bc_bench_train_steps(bertcl_ctx *ctx, const bc_config *cfg, int B, int T, int warmup,
                         int repeat, double *first_ms, double *step_ms, double *fwd_bwd_ms) {
  int st = BERTCL_OK;
  bc_layout lay;
  memset(&lay, 0, sizeof lay);
  bc_trainer *tr = NULL;
  float *flat = NULL;
  int32_t *ids = NULL, *labels = NULL;
  if (B <= 0 || T <= 0 || T > cfg->max_position || repeat <= 0 || warmup < 0)
    return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "fine-tuning step shape B=%d T=%d (at most %d positions)", B, T,
                   cfg->max_position);
  if ((st = bc_layout_init(&lay, cfg, 2, 1)) != BERTCL_OK) {
    ctx->err = *bc_thread_err();
    return st;
  }
  flat = malloc(lay.total * sizeof *flat);
  ids = malloc((size_t)B * T * sizeof *ids);
  labels = malloc((size_t)B * sizeof *labels);
  if (!flat || !ids || !labels) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  /* small uniform values: the step's time does not depend on them */
  uint64_t s = 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < lay.total; i++)
    flat[i] = ((float)(next(&s) >> 40) / (float)(1 << 24) - 0.5f) * 0.04f;
  for (size_t i = 0; i < (size_t)B * T; i++)
    ids[i] = 1 + (int32_t)(next(&s) % (uint64_t)(cfg->vocab_size - 1));
  for (int b = 0; b < B; b++) labels[b] = (int32_t)(next(&s) & 1);
  if ((st = bc_trainer_create(ctx, cfg, BC_HEAD_SEQUENCE, 2, flat, 0, &tr)) != BERTCL_OK) goto done;
  /* transformers' defaults for BertForSequenceClassification.train(): dropout 0.1 everywhere,
   * AdamW (0.9, 0.999, 1e-8), weight decay 0.01 here so the decay path runs, clip to norm 1 */
  bc_dropout_cfg drop = {.hidden_p = 0.1f, .attn_p = 0.1f, .cls_p = 0.1f, .seed = 42};
  bc_adamw_cfg opt = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
  for (int r = -1; r < warmup + repeat; r++) {
    double t0 = now_ms(), loss = 0, norm = 0;
    drop.step = (uint32_t)(r + 1);
    st = bc_trainer_zero_grad(tr);
    /* the loss is read back: the forward and backward are complete when this returns */
    if (st == BERTCL_OK)
      st = bc_trainer_fwd_bwd(tr, ids, NULL, NULL, labels, NULL, B, T, &drop, 1.0f, 1, &loss,
                              NULL);
    double t1 = now_ms();
    if (st == BERTCL_OK) st = bc_trainer_step(tr, &opt, 2e-5f, 1.0f, r + 2, &norm);
    if (st == BERTCL_OK && clFinish(ctx->queue) != CL_SUCCESS)
      st = bc_fail(&ctx->err, BERTCL_ERR_OPENCL, "clFinish failed after a training step");
    if (st != BERTCL_OK) goto done;
    double t2 = now_ms();
    if (r < 0) {
      *first_ms = t2 - t0;
    } else if (r >= warmup) {
      step_ms[r - warmup] = t2 - t0;
      fwd_bwd_ms[r - warmup] = t1 - t0;
    }
  }
done:
  bc_trainer_free(tr);
  bc_layout_free(&lay);
  free(flat);
  free(ids);
  free(labels);
  return st;
}
