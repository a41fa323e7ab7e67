/* The OpenCL fine-tuning step (src/train/trainer.h) on the tiny model:
 * - dropout off: loss, logits and EVERY parameter gradient against transformers
 *   (tests/data/tiny-train-ref.safetensors, tolerances as test_ref_bwd's) and against the C
 *   reference, for classification (cross-entropy) and regression (MSE);
 * - three AdamW steps with micro-batch accumulation, clipping and the linear schedule: the
 *   parameters against transformers';
 * - dropout on: the step equals ref_cls_fwd_bwd with the same seed (same Philox masks);
 * - frozen encoder: only the head gets gradients and moves; cached features give the same step;
 * - the token head (BertForTokenClassification): loss, logits and every gradient against
 *   transformers (tests/data/tiny-token-ref.safetensors) and ref_tok_fwd_bwd, three AdamW
 *   steps, dropout against the reference with the same seed, a frozen encoder.
 * Failures print tensor, index, expected, got. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "train_fixture.h"

#include "model/model.h"
#include "model/safetensors.h"
#include "ref/ref_train.h"
#include "runtime/runtime.h"
#include "train/trainer.h"


/* The shared tiny fixture (tok: the token head's) plus a device; 0 when there is none (the
 * caller skips). */
static int trainer_tiny_open_head(tiny *t, int tok) {
  if (tok)
    tiny_open_token(t);
  else
    tiny_open(t);
  t->ctx = bc_test_ctx();
  if (!t->ctx) tiny_close(t);
  return t->ctx != NULL;
}

static int trainer_tiny_open(tiny *t) { return trainer_tiny_open_head(t, 0); }

static void trainer_tiny_close(tiny *t) {
  bertcl_ctx_free(t->ctx);
  tiny_close(t);
}

static bc_trainer *make_trainer_head(tiny *t, bc_head_kind head, int K, const float *flat,
                                     int freeze) {
  bc_trainer *tr = NULL;
  if (bc_trainer_create(t->ctx, &t->cfg, head, K, flat, freeze, &tr) != BERTCL_OK)
    fail_msg("bc_trainer_create: %s", bertcl_last_error(t->ctx));
  return tr;
}

static bc_trainer *make_trainer(tiny *t, int K, const float *flat) {
  return make_trainer_head(t, BC_HEAD_SEQUENCE, K, flat, 0);
}

#define TR_OK(call)                                                                    \
  do {                                                                                 \
    if ((call) != BERTCL_OK) fail_msg("%s: %s", #call, bertcl_last_error(t.ctx));      \
  } while (0)

static void grad_case(int K, const char *prefix) {
  tiny t;
  if (!trainer_tiny_open(&t)) skip();
  bc_layout lay;
  float *flat = tiny_params(&t, &lay, K, prefix);
  bc_trainer *tr = make_trainer(&t, K, flat);
  float *grad = zeros_f(lay.total), *logits = zeros_f((size_t)t.B * K);
  double loss = 0;
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, K > 1 ? t.labels : NULL,
                           K == 1 ? t.targets : NULL, t.B, t.T, NULL, 1.0f, 1, &loss, logits));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, grad));
  char name[64], what[128];
  snprintf(name, sizeof name, "%s.loss", prefix);
  float *want_loss = bc_test_fixture_f32(t.fx, name, 1);
  snprintf(name, sizeof name, "%s.logits", prefix);
  float *want_logits = bc_test_fixture_f32(t.fx, name, (size_t)t.B * K);
  printf("  %s: loss %.9g transformers %.9g (|diff| %.3g); logits max |diff| %.3g\n", prefix,
         loss, (double)want_loss[0], fabs(loss - want_loss[0]),
         bc_max_abs_diff(logits, want_logits, (size_t)t.B * K));
  int ok = 1;
  float lossf = (float)loss;
  snprintf(what, sizeof what, "trainer %s loss vs transformers", prefix);
  ok &= bc_check_close(what, &lossf, want_loss, 1, 2e-6f, 1e-6f, 0);
  snprintf(what, sizeof what, "trainer %s logits (%d,%d) vs transformers", prefix, t.B, K);
  ok &= bc_check_close(what, logits, want_logits, (size_t)t.B * K, 2e-6f, 0, 0);
  ok &= tiny_check_grads(&t, &lay, grad, prefix, NULL, 2e-5, 1e-4f, "trainer", "transformers", NULL);
  /* and against the C reference on the same inputs */
  float *rgrad = zeros_f(lay.total);
  bc_weights w;
  bc_grads g;
  assert_int_equal(bc_weights_bind(&w, &lay, flat), BERTCL_OK);
  assert_int_equal(bc_grads_bind(&g, &lay, rgrad), BERTCL_OK);
  assert_int_equal(ref_cls_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask,
                                   K > 1 ? t.labels : NULL, K == 1 ? t.targets : NULL, t.B, t.T,
                                   NULL, 1.0f, &g, NULL, NULL),
                   BERTCL_OK);
  ok &= tiny_check_grads(&t, &lay, grad, prefix, rgrad, 2e-5, 1e-4f, "trainer", "ref_cls_fwd_bwd", NULL);
  bc_grads_unbind(&g);
  bc_weights_unbind(&w);
  free(rgrad);
  free(want_loss), free(want_logits);
  bc_trainer_free(tr);
  free(flat), free(grad), free(logits);
  bc_layout_free(&lay);
  trainer_tiny_close(&t);
  assert_true(ok);
}

static void test_trainer_cls_grads(void **state) {
  (void)state;
  grad_case(3, "cls");
}

static void test_trainer_reg_grads(void **state) {
  (void)state;
  grad_case(1, "reg");
}


/* The parameters after the fixture's three AdamW steps (`pre`.<name>) against the trainer's
 * flat (the bounds of test_ref_bwd). Returns 1 when all pass. */
static int check_after_adamw(tiny *t, const bc_layout *lay, const float *flat, const char *pre) {
  int ok = 1;
  double worst = 0.0;
  const char *worst_name = "";
  for (int i = 0; i < lay->count; i++) {
    const bc_tensor *tt = &lay->t[i];
    char name[200], what[300];
    snprintf(name, sizeof name, "%s.%s", pre, tt->name);
    float *want = bc_test_fixture_f32(t->fx, name, tt->numel);
    double d = bc_max_abs_diff(flat + tt->offset, want, tt->numel);
    snprintf(what, sizeof what, "trainer %s after 3 AdamW steps vs transformers", tt->name);
    if (strstr(tt->name, "attention.self.key.bias")) {
      /* gradient zero in exact arithmetic: Adam turns rounding noise into +-lr steps; only the
       * size of the move can be checked (sum of the learning rates), as test_ref_bwd does */
      printf("  %s: gradient is rounding noise; |got - transformers| = %.3g (bound 3e-3)\n",
             tt->name, d);
      if (!bc_check_close(what, flat + tt->offset, want, tt->numel, 3e-3f, 0, 0)) ok = 0;
      free(want);
      continue;
    }
    if (d > worst) worst = d, worst_name = tt->name;
    /* at most 1 in 1000 elements (gradient below its own rounding error) may be off by up to
     * one step; every other one within 4e-6 + 1e-5 |want| (test_ref_bwd's bound) */
    size_t loose = 0, bad = 0;
    for (size_t e = 0; e < tt->numel; e++) {
      double de = fabs((double)flat[tt->offset + e] - want[e]);
      if (de <= 4e-6 + 1e-5 * fabs(want[e])) continue;
      if (de <= 1.5e-3) loose++; else bad++;
    }
    if (loose)
      printf("  %s: %zu of %zu elements beyond the tight bound, within one step\n", tt->name,
             loose, tt->numel);
    if (bad || loose * 1000 > tt->numel) {
      bc_check_close(what, flat + tt->offset, want, tt->numel, 4e-6f, 1e-5f, 0);
      ok = 0;
    }
    free(want);
  }
  printf("  %s after 3 AdamW steps: max |trainer - transformers| = %.3g (%s)\n", pre, worst,
         worst_name);
  return ok;
}

/* The fixture's recipe: three optimizer steps, each over `grad_accum` micro-batches, clipping,
 * warm-up and decay; parameters after them against transformers' with test_ref_bwd's bounds.
 * tok: the token head (tiny-token-ref.safetensors, "tok_adamw.*"), else the sequence head. */
static void adamw_case(int tok) {
  tiny t;
  if (!trainer_tiny_open_head(&t, tok)) skip();
  const int K = tok ? 5 : 3;
  const char *pre = tok ? "tok_adamw" : "adamw";
  char name[64];
  bc_layout lay;
  float *flat = tok ? tiny_params_nopool(&t, &lay, K, "tok") : tiny_params(&t, &lay, K, "cls");
  bc_trainer *tr = make_trainer_head(&t, tok ? BC_HEAD_TOKEN : BC_HEAD_SEQUENCE, K, flat, 0);
  tiny_recipe r;
  tiny_recipe_read(&t, &r);
  snprintf(name, sizeof name, "%s.loss", pre);
  float *want_loss = bc_test_fixture_f32(t.fx, name, 3);
  snprintf(name, sizeof name, "%s.grad_norm", pre);
  float *want_norm = bc_test_fixture_f32(t.fx, name, 3);
  int mb = t.B / r.accum, ok = 1;
  for (int s = 0; s < r.total; s++) {
    TR_OK(bc_trainer_zero_grad(tr));
    double step_loss = 0.0;
    for (int j = 0; j < r.accum; j++) {
      size_t r0 = (size_t)j * mb * t.T;
      double l = 0.0;
      /* each micro-batch's mean loss / accum, as the fixture's recipe */
      TR_OK(bc_trainer_fwd_bwd(tr, t.ids + r0, t.types + r0, t.mask + r0,
                               tok ? t.tok_labels + r0 : t.labels + (size_t)j * mb, NULL, mb, t.T,
                               NULL, 1.0f / r.accum, 1, &l, NULL));
      step_loss += l / r.accum;
    }
    double nrm = 0;
    float lr_s = bc_lr_linear(s, r.warmup, r.total, r.lr);
    TR_OK(bc_trainer_step(tr, &r.adamw, lr_s, r.max_norm, s + 1, &nrm));
    printf("  step %d: loss %.9g (transformers %.9g), grad norm %.9g (%.9g), lr %g\n", s + 1,
           step_loss, (double)want_loss[s], nrm, (double)want_norm[s], (double)lr_s);
    if (fabs(step_loss - want_loss[s]) > 2e-6 || fabs(nrm - want_norm[s]) > 1e-5 * want_norm[s]) {
      printf("FAIL trainer %s step %d: loss or grad norm differs from transformers\n", pre, s + 1);
      ok = 0;
    }
  }
  TR_OK(bc_trainer_read(tr, BC_TR_PARAMS, flat));
  ok &= check_after_adamw(&t, &lay, flat, pre);
  free(want_loss), free(want_norm);
  bc_trainer_free(tr);
  free(flat);
  bc_layout_free(&lay);
  trainer_tiny_close(&t);
  assert_true(ok);
}

static void test_trainer_adamw_steps(void **state) {
  (void)state;
  adamw_case(0);
}

/* Dropout on (every site, p = 0.1 .. 0.2): the OpenCL step equals the C reference's with the
 * same seed and step, loss, logits and every gradient. */
static void test_trainer_dropout_matches_ref(void **state) {
  (void)state;
  tiny t;
  if (!trainer_tiny_open(&t)) skip();
  bc_layout lay;
  const int K = 3;
  float *flat = tiny_params(&t, &lay, K, "cls");
  bc_trainer *tr = make_trainer(&t, K, flat);
  float *grad = zeros_f(lay.total), *rgrad = zeros_f(lay.total);
  float *logits = zeros_f((size_t)t.B * K), *rlogits = zeros_f((size_t)t.B * K);
  bc_dropout_cfg drop = {0.1f, 0.2f, 0.15f, 0x0123456789abcdefULL, 7};
  double loss = 0, rloss = 0;
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, t.labels, NULL, t.B, t.T, &drop, 0.5f, 1,
                           &loss, logits));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, grad));
  bc_weights w;
  bc_grads g;
  assert_int_equal(bc_weights_bind(&w, &lay, flat), BERTCL_OK);
  assert_int_equal(bc_grads_bind(&g, &lay, rgrad), BERTCL_OK);
  assert_int_equal(ref_cls_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.labels, NULL, t.B,
                                   t.T, &drop, 0.5f, &g, &rloss, rlogits),
                   BERTCL_OK);
  /* dropout actually changed the step: the loss differs from the dropout-off loss */
  double loss0 = 0;
  assert_int_equal(ref_cls_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.labels, NULL, t.B,
                                   t.T, NULL, 1.0f, NULL, &loss0, NULL),
                   BERTCL_OK);
  printf("  dropout on: loss %.9g ref %.9g (|diff| %.3g; dropout off %.9g)\n", loss, rloss,
         fabs(loss - rloss), loss0);
  int ok = fabs(loss - rloss) <= 2e-6 * fabs(rloss) + 1e-7 && fabs(loss0 - rloss) > 1e-4;
  if (!ok) printf("FAIL trainer dropout loss\n");
  ok &= bc_check_close("trainer dropout logits vs ref", logits, rlogits, (size_t)t.B * K, 2e-6f,
                       1e-5f, 0);
  ok &= tiny_check_grads(&t, &lay, grad, "dropout", rgrad, 1e-5, 1e-4f, "trainer", "ref_cls_fwd_bwd (same seed)", NULL);
  bc_grads_unbind(&g);
  bc_weights_unbind(&w);
  bc_trainer_free(tr);
  free(flat), free(grad), free(rgrad), free(logits), free(rlogits);
  bc_layout_free(&lay);
  trainer_tiny_close(&t);
  assert_true(ok);
}

/* Frozen encoder: only the pooler and classifier get gradients and move; the head step on cached
 * features (h_L[:, 0]) equals the full step's head. */
static void test_trainer_frozen_head(void **state) {
  (void)state;
  tiny t;
  if (!trainer_tiny_open(&t)) skip();
  bc_layout lay;
  const int K = 3, C = t.cfg.hidden_size;
  float *flat = tiny_params(&t, &lay, K, "cls");
  bc_trainer *tr = NULL;
  if (bc_trainer_create(t.ctx, &t.cfg, BC_HEAD_SEQUENCE, K, flat, 1, &tr) != BERTCL_OK)
    fail_msg("bc_trainer_create: %s", bertcl_last_error(t.ctx));
  float *grad = zeros_f(lay.total), *grad2 = zeros_f(lay.total), *rgrad = zeros_f(lay.total);
  float *feats = zeros_f((size_t)t.B * C), *after = zeros_f(lay.total);
  double loss = 0, loss2 = 0;
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, t.labels, NULL, t.B, t.T, NULL, 1.0f, 1,
                           &loss, NULL));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, grad));
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_features(tr, t.ids, t.types, t.mask, t.B, t.T, feats));
  TR_OK(bc_trainer_head_fwd_bwd(tr, feats, t.labels, NULL, t.B, NULL, 1.0f, 1, &loss2, NULL));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, grad2));
  bc_weights w;
  bc_grads g;
  assert_int_equal(bc_weights_bind(&w, &lay, flat), BERTCL_OK);
  assert_int_equal(bc_grads_bind(&g, &lay, rgrad), BERTCL_OK);
  assert_int_equal(ref_cls_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.labels, NULL, t.B,
                                   t.T, NULL, 1.0f, &g, NULL, NULL),
                   BERTCL_OK);
  int ok = fabs(loss - loss2) <= 1e-6;
  printf("  frozen: loss %.9g, on cached features %.9g\n", loss, loss2);
  int head0 = bc_layout_find(&lay, "bert.pooler.dense.weight");
  assert_true(head0 > 0);
  size_t h0 = lay.t[head0].offset;
  for (size_t e = 0; e < h0; e++)
    if (grad[e] != 0.0f || grad2[e] != 0.0f) {
      printf("FAIL frozen encoder: gradient element %zu is %g / %g, expected 0\n", e,
             (double)grad[e], (double)grad2[e]);
      ok = 0;
      break;
    }
  for (int i = head0; i < lay.count; i++) {
    char what[300];
    const bc_tensor *tt = &lay.t[i];
    snprintf(what, sizeof what, "frozen head grad %s vs ref_cls_fwd_bwd", tt->name);
    ok &= bc_check_close(what, grad + tt->offset, rgrad + tt->offset, tt->numel, 1e-6f, 1e-4f, 0);
    snprintf(what, sizeof what, "frozen head grad %s on cached features vs full step", tt->name);
    ok &= bc_check_close(what, grad2 + tt->offset, grad + tt->offset, tt->numel, 1e-6f, 1e-5f, 0);
  }
  bc_adamw_cfg ac = {0.9f, 0.999f, 1e-8f, 0.01f};
  TR_OK(bc_trainer_step(tr, &ac, 1e-3f, 1.0f, 1, NULL));
  TR_OK(bc_trainer_read(tr, BC_TR_PARAMS, after));
  if (memcmp(after, flat, h0 * sizeof(float))) {
    printf("FAIL frozen encoder: encoder parameters moved\n");
    ok = 0;
  }
  if (!memcmp(after + h0, flat + h0, (lay.total - h0) * sizeof(float))) {
    printf("FAIL frozen encoder: the head did not move\n");
    ok = 0;
  }
  bc_grads_unbind(&g);
  bc_weights_unbind(&w);
  bc_trainer_free(tr);
  free(flat), free(grad), free(grad2), free(rgrad), free(feats), free(after);
  bc_layout_free(&lay);
  trainer_tiny_close(&t);
  assert_true(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* The token head (BertForTokenClassification, tests/gen/gen_token_fixtures.py)                */

/* Dropout off: loss, every token's logits and every gradient against transformers and against
 * ref_tok_fwd_bwd. */
static void test_trainer_tok_grads(void **state) {
  (void)state;
  tiny t;
  if (!trainer_tiny_open_head(&t, 1)) skip();
  const int K = 5;
  size_t R = (size_t)t.B * t.T;
  bc_layout lay;
  float *flat = tiny_params_nopool(&t, &lay, K, "tok");
  bc_trainer *tr = make_trainer_head(&t, BC_HEAD_TOKEN, K, flat, 0);
  assert_int_equal(bc_trainer_layout(tr)->count, lay.count);
  float *grad = zeros_f(lay.total), *logits = zeros_f(R * K);
  double loss = 0;
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, t.tok_labels, NULL, t.B, t.T, NULL, 1.0f,
                           1, &loss, logits));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, grad));
  float *want_loss = bc_test_fixture_f32(t.fx, "tok.loss", 1);
  float *want_logits = bc_test_fixture_f32(t.fx, "tok.logits", R * K);
  printf("  tok: loss %.9g transformers %.9g (|diff| %.3g); logits max |diff| %.3g\n", loss,
         (double)want_loss[0], fabs(loss - want_loss[0]), bc_max_abs_diff(logits, want_logits, R * K));
  int ok = 1;
  float lossf = (float)loss;
  ok &= bc_check_close("trainer tok loss vs transformers", &lossf, want_loss, 1, 2e-6f, 1e-6f, 0);
  ok &= bc_check_close("trainer tok logits (B*T, K) vs transformers", logits, want_logits, R * K,
                       2e-6f, 2e-6f, 0);
  ok &= tiny_check_grads(&t, &lay, grad, "tok", NULL, 2e-5, 1e-4f, "trainer", "transformers", NULL);
  float *rgrad = zeros_f(lay.total);
  bc_weights w;
  bc_grads g;
  assert_int_equal(bc_weights_bind(&w, &lay, flat), BERTCL_OK);
  assert_int_equal(bc_grads_bind(&g, &lay, rgrad), BERTCL_OK);
  assert_int_equal(ref_tok_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.tok_labels, t.B, t.T,
                                   NULL, 1.0f, &g, NULL, NULL),
                   BERTCL_OK);
  ok &= tiny_check_grads(&t, &lay, grad, "tok", rgrad, 2e-5, 1e-4f, "trainer", "ref_tok_fwd_bwd", NULL);
  /* a label out of range is refused */
  int32_t *bad = malloc(R * sizeof *bad);
  assert_non_null(bad);
  memcpy(bad, t.tok_labels, R * sizeof *bad);
  bad[R - 1] = K;
  assert_int_equal(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, bad, NULL, t.B, t.T, NULL,
                                      1.0f, 1, NULL, NULL),
                   BERTCL_ERR_INVALID_ARG);
  free(bad);
  bc_grads_unbind(&g);
  bc_weights_unbind(&w);
  free(rgrad), free(want_loss), free(want_logits);
  bc_trainer_free(tr);
  free(flat), free(grad), free(logits);
  bc_layout_free(&lay);
  trainer_tiny_close(&t);
  assert_true(ok);
}

/* Three AdamW steps with two accumulated micro-batches: parameters against transformers'. */
static void test_trainer_tok_adamw_steps(void **state) {
  (void)state;
  adamw_case(1);
}

/* Dropout on at every site: the step equals ref_tok_fwd_bwd's with the same seed; a frozen
 * encoder moves only the classifier. */
static void test_trainer_tok_dropout_frozen(void **state) {
  (void)state;
  tiny t;
  if (!trainer_tiny_open_head(&t, 1)) skip();
  const int K = 5;
  size_t R = (size_t)t.B * t.T;
  bc_layout lay;
  float *flat = tiny_params_nopool(&t, &lay, K, "tok");
  bc_trainer *tr = make_trainer_head(&t, BC_HEAD_TOKEN, K, flat, 0);
  float *grad = zeros_f(lay.total), *rgrad = zeros_f(lay.total);
  float *logits = zeros_f(R * K), *rlogits = zeros_f(R * K);
  bc_dropout_cfg drop = {0.1f, 0.2f, 0.15f, 0x0123456789abcdefULL, 9};
  double loss = 0, rloss = 0;
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, t.tok_labels, NULL, t.B, t.T, &drop, 0.5f,
                           1, &loss, logits));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, grad));
  bc_weights w;
  bc_grads g;
  assert_int_equal(bc_weights_bind(&w, &lay, flat), BERTCL_OK);
  assert_int_equal(bc_grads_bind(&g, &lay, rgrad), BERTCL_OK);
  assert_int_equal(ref_tok_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.tok_labels, t.B, t.T,
                                   &drop, 0.5f, &g, &rloss, rlogits),
                   BERTCL_OK);
  double loss0 = 0;
  assert_int_equal(ref_tok_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.tok_labels, t.B, t.T,
                                   NULL, 1.0f, NULL, &loss0, NULL),
                   BERTCL_OK);
  printf("  tok dropout on: loss %.9g ref %.9g (|diff| %.3g; dropout off %.9g)\n", loss, rloss,
         fabs(loss - rloss), loss0);
  int ok = fabs(loss - rloss) <= 2e-6 * fabs(rloss) + 1e-7 && fabs(loss0 - rloss) > 1e-4;
  if (!ok) printf("FAIL trainer tok dropout loss\n");
  ok &= bc_check_close("trainer tok dropout logits vs ref", logits, rlogits, R * K, 2e-6f, 1e-5f,
                       0);
  ok &= tiny_check_grads(&t, &lay, grad, "tok", rgrad, 1e-5, 1e-4f, "trainer (dropout)",
                         "ref_tok_fwd_bwd (same seed)", NULL);
  bc_trainer_free(tr);
  /* frozen encoder: the classifier's gradients are the full step's, nothing else moves */
  tr = make_trainer_head(&t, BC_HEAD_TOKEN, K, flat, 1);
  float *fgrad = zeros_f(lay.total), *after = zeros_f(lay.total);
  TR_OK(bc_trainer_zero_grad(tr));
  TR_OK(bc_trainer_fwd_bwd(tr, t.ids, t.types, t.mask, t.tok_labels, NULL, t.B, t.T, NULL, 1.0f,
                           1, NULL, NULL));
  TR_OK(bc_trainer_read(tr, BC_TR_GRADS, fgrad));
  memset(rgrad, 0, lay.total * sizeof(float));
  assert_int_equal(ref_tok_fwd_bwd(&t.cfg, &w, K, t.ids, t.types, t.mask, t.tok_labels, t.B, t.T,
                                   NULL, 1.0f, &g, NULL, NULL),
                   BERTCL_OK);
  int hb = bc_layout_head_index(&lay);
  size_t h0 = lay.t[hb].offset;
  for (size_t e = 0; e < h0; e++)
    if (fgrad[e] != 0.0f) {
      printf("FAIL frozen token head: encoder gradient element %zu is %g\n", e, (double)fgrad[e]);
      ok = 0;
      break;
    }
  ok &= bc_check_close("frozen token head: classifier gradients vs ref_tok_fwd_bwd", fgrad + h0,
                       rgrad + h0, lay.total - h0, 1e-6f, 1e-4f, 0);
  bc_adamw_cfg ac = {0.9f, 0.999f, 1e-8f, 0.01f};
  TR_OK(bc_trainer_step(tr, &ac, 1e-3f, 1.0f, 1, NULL));
  TR_OK(bc_trainer_read(tr, BC_TR_PARAMS, after));
  if (memcmp(after, flat, h0 * sizeof(float)) || !memcmp(after + h0, flat + h0, (lay.total - h0) * 4)) {
    printf("FAIL frozen token head: the encoder moved or the classifier did not\n");
    ok = 0;
  }
  /* cached features are the sequence head's */
  assert_int_equal(bc_trainer_features(tr, t.ids, t.types, t.mask, t.B, t.T, after),
                   BERTCL_ERR_UNSUPPORTED);
  bc_grads_unbind(&g);
  bc_weights_unbind(&w);
  bc_trainer_free(tr);
  free(flat), free(grad), free(rgrad), free(logits), free(rlogits), free(fgrad), free(after);
  bc_layout_free(&lay);
  trainer_tiny_close(&t);
  assert_true(ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trainer_cls_grads),
      cmocka_unit_test(test_trainer_reg_grads),
      cmocka_unit_test(test_trainer_adamw_steps),
      cmocka_unit_test(test_trainer_dropout_matches_ref),
      cmocka_unit_test(test_trainer_frozen_head),
      cmocka_unit_test(test_trainer_tok_grads),
      cmocka_unit_test(test_trainer_tok_adamw_steps),
      cmocka_unit_test(test_trainer_tok_dropout_frozen),
  };
  return cmocka_run_group_tests_name("trainer", tests, NULL, NULL);
}
