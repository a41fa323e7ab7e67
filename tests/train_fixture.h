/* The tiny model's training fixtures (tests/gen/gen_train_fixtures.py: the sequence heads;
 * tests/gen/gen_token_fixtures.py: the token head), shared by the training reference's tests
 * (test_ref_bwd) and the OpenCL trainer's (test_trainer). */
#ifndef BC_TRAIN_FIXTURE_H
#define BC_TRAIN_FIXTURE_H

#include "model/safetensors.h"
#include "ref/ref_train.h"
#include "testutil.h"

typedef struct {
  bertcl_model *m; /* tests/data/tiny-bert */
  bc_config cfg;
  bc_st_file *fx;  /* tests/data/tiny-train-ref.safetensors */
  int B, T;
  int32_t *ids, *types, *mask, *labels; /* (B, T) x 3, (B) */
  float *targets;                      /* (B) regression labels */
  int32_t *tok_labels;                 /* (B*T) token tags (token fixture), else NULL */
  bertcl_ctx *ctx;                     /* for tests on a device: theirs to create and free */
} tiny;

/* Loads both and checks the fixture was made from this model file (FNV-1a recorded in it). */
void tiny_open(tiny *t);
/* The same with the token-head fixture tests/data/tiny-token-ref.safetensors. */
void tiny_open_token(tiny *t);
void tiny_close(tiny *t);
/* Flat parameters (bc_layout order) of the tiny model with the fixture's classifier
 * `prefix`.classifier.* for K labels. */
float *tiny_params(tiny *t, bc_layout *lay, int K, const char *prefix);
/* The same for a head without the pooler (BertForTokenClassification). */
float *tiny_params_nopool(tiny *t, bc_layout *lay, int K, const char *prefix);
/* A number from the fixture's "adamw" metadata (the training recipe). */
double tiny_meta_num(tiny *t, const char *key);
/* The fixture's training recipe (its "adamw" metadata): `total` (3) optimizer steps, each over
 * `accum` micro-batches of the batch, clipping at max_norm, linear warm-up and decay of lr. */
typedef struct {
  bc_adamw_cfg adamw; /* betas, eps, weight decay */
  float lr, max_norm;
  int warmup, total, accum;
} tiny_recipe;
void tiny_recipe_read(tiny *t, tiny_recipe *r);
float *zeros_f(size_t n);

/* Every gradient against want (`prefix`.grad.<name> in the fixture, or a flat reference when
 * ref_flat is set): |got - want| <= atol + rtol |want| with atol = a_rel * max |want| over the
 * tensor + 1e-7 * max |want| over all tensors (the fp32 rounding floor: all that a gradient
 * which is zero in exact arithmetic, the attention key bias's, holds). `who` and `against` name
 * the two sides in messages. Returns 1 when all pass; *worst_rel (may be NULL) gets the largest
 * max |diff| / max |grad| over tensors with a real gradient. */
int tiny_check_grads(tiny *t, const bc_layout *lay, const float *grad, const char *prefix,
                     const float *ref_flat, double a_rel, float rtol, const char *who,
                     const char *against, double *worst_rel);

#endif
