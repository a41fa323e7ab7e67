/* bertcl_bench and bertcl_bench_compare (include/bertcl.h): what bertcl bench measures and
 * prints. bench.c runs the devices and builds the report, compare.c sets a report against an
 * earlier one, bench_train.c times one fine-tuning step. Every line bertcl bench prints reaches
 * the caller as a progress event. */
#ifndef BC_BENCH_H
#define BC_BENCH_H

#include <stddef.h>

#include "bertcl.h"
#include "model/model.h"
#include "runtime/runtime.h"

#define BC_BENCH_SCHEMA "bertcl-bench/1"

/* Where bench's text goes: gathered as printf would write it; each completed line becomes one
 * BERTCL_EVENT_INFO (without its newline). */
typedef struct {
  bertcl_progress_fn fn;
  void *user;
  size_t len;
  char line[8192];
} bc_bench_out;

/* Appends formatted text; every '\n' ends the current line and sends it. */
void bc_bench_printf(bc_bench_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One BERTCL_EVENT_WARNING: a failure the run continues past (bertcl prints it on stderr). */
void bc_bench_warn(bc_bench_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The time of one fine-tuning step of BertForSequenceClassification (2 labels, random weights
 * of the configuration: the time does not depend on the values) on a (B, T) batch of random
 * token ids, as transformers trains it by default: dropout 0.1, forward, cross-entropy,
 * backward, clipping to norm 1, AdamW.
 * One untimed first step (program builds, first allocations: *first_ms), `warmup` untimed
 * steps, then `repeat` timed ones: step_ms[i] (zero grad to the end of AdamW, wall clock) and
 * fwd_bwd_ms[i] (its forward and backward part). */
int bc_bench_train_steps(bertcl_ctx *ctx, const bc_config *cfg, int B, int T, int warmup,
                         int repeat, double *first_ms, double *step_ms, double *fwd_bwd_ms);

#endif
