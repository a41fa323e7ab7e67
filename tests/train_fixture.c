#define _POSIX_C_SOURCE 200809L
#include "train_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tiny_recipe_read(tiny *t, tiny_recipe *r) {
  const char *betas = strstr(bc_st_metadata(t->fx, "adamw"), "\"betas\": [");
  assert_non_null(betas);
  char *endp;
  float b1 = strtof(betas + 10, &endp), b2 = strtof(endp + 1, NULL);
  r->adamw = (bc_adamw_cfg){b1, b2, (float)tiny_meta_num(t, "eps"),
                            (float)tiny_meta_num(t, "weight_decay")};
  r->lr = (float)tiny_meta_num(t, "lr");
  r->max_norm = (float)tiny_meta_num(t, "max_grad_norm");
  r->warmup = (int)tiny_meta_num(t, "warmup_steps");
  r->total = (int)tiny_meta_num(t, "total_steps");
  r->accum = (int)tiny_meta_num(t, "grad_accum");
  assert_true(r->total == 3 && r->accum >= 1 && t->B % r->accum == 0);
}

float *zeros_f(size_t n) {
  float *x = calloc(n ? n : 1, sizeof(float));
  assert_non_null(x);
  return x;
}

static void open_fixture(tiny *t, const char *file) {
  memset(t, 0, sizeof *t);
  char dir[1024], path[1200];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  if (bertcl_model_load(&t->m, dir) != BERTCL_OK)
    fail_msg("bertcl_model_load %s: %s", dir, bertcl_last_error(NULL));
  t->cfg = *bc_model_config(t->m);
  t->fx = bc_test_fixture_open(file);
  /* the fixture was made from this model file */
  const char *want = bc_st_metadata(t->fx, "model_fnv1a64");
  assert_non_null(want);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  char *data = NULL, got[17];
  size_t len = 0;
  bc_err err = {0};
  if (bc_read_file(&err, path, &data, &len) != BERTCL_OK) fail_msg("%s", err.msg);
  snprintf(got, sizeof got, "%016llx", (unsigned long long)bc_fnv1a64(BC_FNV_INIT, data, len));
  free(data);
  if (strcmp(got, want))
    fail_msg("%s (FNV-1a %s) is not the model %s was made from (%s): rerun its generator "
             "(tests/gen/gen_train_fixtures.py, gen_token_fixtures.py)",
             path, got, file, want);
  int64_t shape[2];
  t->ids = bc_test_fixture_i32(t->fx, "input_ids", 0, shape);
  t->B = (int)shape[0];
  t->T = (int)shape[1];
  size_t BT = (size_t)t->B * t->T;
  t->types = bc_test_fixture_i32(t->fx, "token_type_ids", BT, NULL);
  t->mask = bc_test_fixture_i32(t->fx, "attention_mask", BT, NULL);
  if (bc_st_find(t->fx, "labels")) {
    t->labels = bc_test_fixture_i32(t->fx, "labels", (size_t)t->B, NULL);
    t->targets = bc_test_fixture_f32(t->fx, "reg.labels", (size_t)t->B);
  }
  if (bc_st_find(t->fx, "tok.labels"))
    t->tok_labels = bc_test_fixture_i32(t->fx, "tok.labels", BT, NULL);
}

void tiny_open(tiny *t) { open_fixture(t, "tiny-train-ref.safetensors"); }
void tiny_open_token(tiny *t) { open_fixture(t, "tiny-token-ref.safetensors"); }

void tiny_close(tiny *t) {
  free(t->ids), free(t->types), free(t->mask), free(t->labels), free(t->targets);
  free(t->tok_labels);
  if (t->fx) bc_test_fixture_close(t->fx);
  bertcl_model_free(t->m);
}

static float *params_of(tiny *t, bc_layout *lay, int K, const char *prefix, int has_pooler) {
  assert_int_equal(bc_layout_init(lay, &t->cfg, K, has_pooler), BERTCL_OK);
  char name[96];
  snprintf(name, sizeof name, "%s.classifier.weight", prefix);
  float *cw = bc_test_fixture_f32(t->fx, name, (size_t)K * t->cfg.hidden_size);
  snprintf(name, sizeof name, "%s.classifier.bias", prefix);
  float *cb = bc_test_fixture_f32(t->fx, name, (size_t)K);
  bc_weights w = *bc_model_weights(t->m);
  assert_non_null(w.pool_w);
  if (!has_pooler) w.pool_w = w.pool_b = NULL;
  w.cls_w = cw;
  w.cls_b = cb;
  float *flat = zeros_f(lay->total);
  assert_int_equal(bc_weights_gather(flat, lay, &w), BERTCL_OK);
  free(cw);
  free(cb);
  return flat;
}

float *tiny_params(tiny *t, bc_layout *lay, int K, const char *prefix) {
  return params_of(t, lay, K, prefix, 1);
}

float *tiny_params_nopool(tiny *t, bc_layout *lay, int K, const char *prefix) {
  return params_of(t, lay, K, prefix, 0);
}

double tiny_meta_num(tiny *t, const char *key) {
  const char *js = bc_st_metadata(t->fx, "adamw");
  assert_non_null(js);
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(js, pat);
  if (!p) fail_msg("adamw metadata lacks %s: %s", key, js);
  p += strlen(pat);
  while (*p == ' ' || *p == '[') p++;
  return strtod(p, NULL);
}

int tiny_check_grads(tiny *t, const bc_layout *lay, const float *grad, const char *prefix,
                     const float *ref_flat, double a_rel, float rtol, const char *who,
                     const char *against, double *worst_rel_out) {
  int ok = 1;
  double worst_rel = 0.0, gmax = 0.0;
  const char *worst_name = "";
  float **want = calloc((size_t)lay->count, sizeof *want);
  assert_non_null(want);
  for (int i = 0; i < lay->count; i++) {
    char name[200];
    snprintf(name, sizeof name, "%s.grad.%s", prefix, lay->t[i].name);
    if (ref_flat) {
      want[i] = zeros_f(lay->t[i].numel);
      memcpy(want[i], ref_flat + lay->t[i].offset, lay->t[i].numel * sizeof(float));
    } else {
      want[i] = bc_test_fixture_f32(t->fx, name, lay->t[i].numel);
    }
    for (size_t e = 0; e < lay->t[i].numel; e++)
      if (fabs(want[i][e]) > gmax) gmax = fabs(want[i][e]);
  }
  double floor_atol = 1e-7 * gmax;
  for (int i = 0; i < lay->count; i++) {
    const bc_tensor *tt = &lay->t[i];
    char what[256];
    double mx = 0.0;
    for (size_t e = 0; e < tt->numel; e++)
      if (fabs(want[i][e]) > mx) mx = fabs(want[i][e]);
    double d = bc_max_abs_diff(grad + tt->offset, want[i], tt->numel);
    double rel = mx > 0 ? d / mx : d;
    if (mx > floor_atol && rel > worst_rel) worst_rel = rel, worst_name = tt->name;
    if (mx <= floor_atol)
      printf("  %s.%s: max |grad| %.3g (zero in exact arithmetic), |diff| %.3g\n", prefix,
             tt->name, mx, d);
    snprintf(what, sizeof what, "%s %s.grad.%s (%lld,%lld) vs %s", who, prefix, tt->name,
             (long long)tt->shape[0], (long long)tt->shape[1], against);
    if (!bc_check_close(what, grad + tt->offset, want[i], tt->numel,
                        (float)(a_rel * mx + floor_atol), rtol, 0))
      ok = 0;
    free(want[i]);
  }
  free(want);
  printf("  %s vs %s: %d gradients, max over tensors of max |diff| / max |grad| = %.3g (%s)\n",
         prefix, against, lay->count, worst_rel, worst_name);
  if (worst_rel_out) *worst_rel_out = worst_rel;
  return ok;
}
