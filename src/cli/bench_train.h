/* bertcl bench: the time of one fine-tuning step of BertForSequenceClassification (2 labels,
 * random weights of the configuration: the time does not depend on the values) on a (B, T)
 * batch of random token ids, as transformers trains it by default: dropout 0.1, forward,
 * cross-entropy, backward, clipping to norm 1, AdamW. */
#ifndef BC_BENCH_TRAIN_H
#define BC_BENCH_TRAIN_H

#include "model/model.h"
#include "runtime/runtime.h"

/* One untimed first step (program builds, first allocations: *first_ms), `warmup` untimed
 * steps, then `repeat` timed ones: step_ms[i] (zero grad to the end of AdamW, wall clock) and
 * fwd_bwd_ms[i] (its forward and backward part). */
int bc_bench_train_steps(bertcl_ctx *ctx, const bc_config *cfg, int B, int T, int warmup,
                         int repeat, double *first_ms, double *step_ms, double *fwd_bwd_ms);

#endif
