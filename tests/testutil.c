#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

bertcl_ctx *bc_test_ctx(void) {
  const char *dev = getenv("BERTCL_TEST_DEVICE");
  bertcl_ctx_options opt = {0};
  bertcl_ctx *ctx = NULL;
  opt.device = (dev && *dev) ? dev : "pocl";
  if (bertcl_ctx_create(&ctx, &opt) == BERTCL_OK) return ctx;
  if (dev && *dev) {
    fprintf(stderr, "BERTCL_TEST_DEVICE=%s: %s\n", dev, bertcl_last_error(NULL));
    return NULL;
  }
  opt.device = NULL;
  if (bertcl_ctx_create(&ctx, &opt) == BERTCL_OK) return ctx;
  fprintf(stderr, "no OpenCL device: %s\n", bertcl_last_error(NULL));
  return NULL;
}

void bc_rng_seed(bc_rng *r, uint64_t seed) { r->s = seed ? seed : 0x9E3779B97F4A7C15ULL; }

uint32_t bc_rng_u32(bc_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return (uint32_t)((r->s * 0x2545F4914F6CDD1DULL) >> 32);
}

float bc_rng_uniform(bc_rng *r, float lo, float hi) {
  return lo + (hi - lo) * ((float)(bc_rng_u32(r) >> 8) / 16777216.0f);
}

void bc_rng_fill(bc_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = bc_rng_uniform(r, lo, hi);
}

double bc_max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
  }
  return m;
}

int bc_check_close(const char *what, const float *got, const float *ref, size_t n, float atol,
                   float rtol, uint64_t seed) {
  double num = 0, den = 0, maxd = 0;
  size_t bad = 0, first = (size_t)-1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)ref[i]);
    num += d * d;
    den += (double)ref[i] * ref[i];
    if (d > maxd) maxd = d;
    if (isnan(got[i]) || isnan(ref[i]) || d > atol + rtol * fabs((double)ref[i])) {
      if (first == (size_t)-1) first = i;
      bad++;
    }
  }
  if (bad) {
    fprintf(stderr,
            "MISMATCH %s: %zu of %zu values out of tolerance (atol %g, rtol %g); first at index "
            "%zu: expected %.9g got %.9g; max |diff| %.3g; NMSE %.3g; seed %llu\n",
            what, bad, n, atol, rtol, first, ref[first], got[first], maxd,
            den > 0 ? num / den : num, (unsigned long long)seed);
    return 0;
  }
  return 1;
}

void bc_test_data_path(char *out, size_t n, const char *rel) {
  snprintf(out, n, "%s/%s", BERTCL_TEST_DATA, rel);
}

int bc_test_tmpdir(char *out, size_t n) {
  const char *base = getenv("TMPDIR");
  snprintf(out, n, "%s/bertcl-test-XXXXXX", (base && *base) ? base : "/tmp");
  return mkdtemp(out) ? 0 : -1;
}

int bc_test_run(const char *cmd, char **out) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    pclose(p);
    return -1;
  }
  size_t r;
  while ((r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += r;
    if (cap - len < 1024) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) break;
      buf = nb;
      cap *= 2;
    }
  }
  buf[len] = '\0';
  int status = pclose(p);
  if (out)
    *out = buf;
  else
    free(buf);
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
