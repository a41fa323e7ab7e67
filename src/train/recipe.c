/* See recipe.h. */
#include "train/recipe.h"

uint32_t bc_dropout_id(int layer, int site) {
  if (layer < 0) return (uint32_t)site;
  return 16u + 4u * (uint32_t)layer + (uint32_t)site;
}

float bc_lr_linear(int step, int warmup, int total, float base) {
  double f;
  if (step < warmup)
    f = (double)step / (double)(warmup > 1 ? warmup : 1);
  else {
    int den = total - warmup > 1 ? total - warmup : 1;
    f = (double)(total - step) / (double)den;
    if (f < 0.0) f = 0.0;
  }
  return (float)(base * f);
}

double bc_mse_fwd_bwd(float *dlogits, const float *logits, const float *targets, int B,
                      float scale) {
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    double d = (double)logits[b] - targets[b];
    total += d * d;
    if (dlogits) dlogits[b] = (float)(2.0 * d / B * scale);
  }
  return total / B;
}
