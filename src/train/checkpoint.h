/* Fine-tuning checkpoints: one safetensors file with the flat parameters and both AdamW moments
 * (F32, the layout's total floats each) and, in its metadata, the optimizer step, the best
 * evaluation so far and the run's signature (recipe and data; a resumed run must match it).
 * Written durably (io/durable.h): a killed run leaves the previous checkpoint whole. */
#ifndef BC_TRAIN_CHECKPOINT_H
#define BC_TRAIN_CHECKPOINT_H

#include <stddef.h>

#include "common.h"

typedef struct {
  long step;      /* optimizer steps done */
  double best;    /* best evaluation key so far (higher is better) */
  long best_step; /* its step, -1 when none */
} bc_ckpt_state;

/* bufs: params, adam_m, adam_v, `total` floats each. */
int bc_checkpoint_save(bc_err *err, const char *path, size_t total, const float *const bufs[3],
                       const bc_ckpt_state *s, const char *signature);
/* Reads a checkpoint into bufs and *s after checking it: the three tensors of `total` floats,
 * a step in [0, max_step], the signature equal to this run's. */
int bc_checkpoint_load(bc_err *err, const char *path, size_t total, float *const bufs[3],
                       long max_step, bc_ckpt_state *s, const char *signature);
/* The same from bytes in memory (name in messages). */
int bc_checkpoint_parse(bc_err *err, const char *name, const void *data, size_t len,
                        size_t total, float *const bufs[3], long max_step, bc_ckpt_state *s,
                        const char *signature);

#endif
