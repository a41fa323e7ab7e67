#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>

/* BERTCL_TEST_FILTER=test_x (cmocka's wildcards * and ?) runs only the matching tests of a test
 * executable: cmocka itself reads no such variable. */
__attribute__((constructor)) static void bc_test_filter_from_env(void) {
  const char *f = getenv("BERTCL_TEST_FILTER");
  if (f && *f) cmocka_set_test_filter(f);
}

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

float *bc_rng_alloc(bc_rng *r, size_t n, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  assert_non_null(x);
  bc_rng_fill(r, x, n, lo, hi);
  return x;
}

cl_mem bc_test_upload(bertcl_ctx *ctx, const void *data, size_t bytes) {
  int st = BERTCL_OK;
  cl_mem m = bc_buffer_create(ctx, bytes, data, &st);
  if (!m) fail_msg("bc_test_upload: %s", bertcl_last_error(ctx));
  return m;
}

void bc_test_download(bertcl_ctx *ctx, cl_mem m, void *data, size_t bytes) {
  assert_int_equal(clEnqueueReadBuffer(ctx->queue, m, CL_TRUE, 0, bytes, data, 0, NULL, NULL),
                   CL_SUCCESS);
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

float *bc_sweep_alloc(float lim, int shift, size_t *n) {
  uint32_t top;
  memcpy(&top, &lim, 4);
  size_t grid = (size_t)(2.0 * lim * 1024.0) + 1, bits = (size_t)(top >> shift) + 1;
  float *x = malloc((grid + 2 * bits + 2) * sizeof *x);
  assert_non_null(x);
  size_t k = 0;
  for (size_t i = 0; i < grid; i++) x[k++] = -lim + (float)i / 1024.0f;
  for (uint32_t u = 0; u <= top && (u >> shift) < bits; u += (uint32_t)1 << shift) {
    float v;
    memcpy(&v, &u, 4);
    x[k++] = v;
    x[k++] = -v;
  }
  x[k++] = 0.0f;
  x[k++] = -0.0f;
  *n = k;
  return x;
}

bc_err_stats bc_error_stats(const char *what, const float *x, const float *got, const float *ref,
                            const float *scale, size_t n) {
  bc_err_stats s = {0, 0};
  size_t ia = 0, iu = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)ref[i]);
    if (isnan(got[i]) != isnan(ref[i])) d = INFINITY;
    if (isnan(d)) d = 0; /* both NaN */
    int e;
    frexp(fmax(fabs((double)(scale ? scale[i] : ref[i])), 1.17549435e-38), &e);
    double ulp = ldexp(1.0, e - 24), u = d / ulp;
    if (d > s.max_abs) s.max_abs = d, ia = i;
    if (u > s.max_ulp) s.max_ulp = u, iu = i;
  }
  fprintf(stderr, "%s: max |err| %.3g at x = %.9g, max error %.2f ulp at x = %.9g (%zu values)\n",
          what, s.max_abs, n ? (double)x[ia] : 0.0, s.max_ulp, n ? (double)x[iu] : 0.0, n);
  return s;
}

void bc_test_data_path(char *out, size_t n, const char *rel) {
  /* BERTCL_TEST_DATA_DIR: the fixtures of a checkout that moved since the build (the test
   * binaries run on the GPU machine from another path) */
  const char *env = getenv("BERTCL_TEST_DATA_DIR");
  snprintf(out, n, "%s/%s", env && *env ? env : BERTCL_TEST_DATA, rel);
}

int bc_test_tmpdir(char *out, size_t n) {
  const char *base = getenv("TMPDIR");
  snprintf(out, n, "%s/bertcl-test-XXXXXX", (base && *base) ? base : "/tmp");
  return mkdtemp(out) ? 0 : -1;
}

int bc_test_count_tmp(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".tmp.")) n++;
  closedir(d);
  return n;
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

#include "model/safetensors.h"

struct bc_st_file *bc_test_fixture_open(const char *rel) {
  char path[1024];
  bc_err err = {0};
  bc_st_file *f = NULL;
  bc_test_data_path(path, sizeof path, rel);
  if (bc_st_open(&err, path, &f) != BERTCL_OK) fail_msg("fixture %s: %s", path, err.msg);
  return f;
}

void bc_test_fixture_close(struct bc_st_file *f) { bc_st_close(f); }

static const bc_st_tensor *fixture_tensor(bc_st_file *f, const char *name, bc_dtype dt,
                                          size_t numel) {
  const bc_st_tensor *t = bc_st_find(f, name);
  if (!t) fail_msg("fixture has no tensor %s", name);
  if (t->dtype != dt) fail_msg("fixture tensor %s has dtype %s", name, t->dtype_name);
  if (numel && t->numel != numel)
    fail_msg("fixture tensor %s has %zu values, want %zu", name, t->numel, numel);
  return t;
}

float *bc_test_fixture_f32(struct bc_st_file *f, const char *name, size_t numel) {
  const bc_st_tensor *t = fixture_tensor(f, name, BC_DT_F32, numel);
  float *x = malloc((t->numel ? t->numel : 1) * sizeof(float));
  assert_non_null(x);
  bc_err err = {0};
  if (bc_st_read_f32(&err, t, x, t->numel) != BERTCL_OK) fail_msg("%s: %s", name, err.msg);
  return x;
}

int32_t *bc_test_fixture_i32(struct bc_st_file *f, const char *name, size_t numel,
                             int64_t shape[2]) {
  const bc_st_tensor *t = fixture_tensor(f, name, BC_DT_I32, numel);
  int32_t *x = malloc((t->numel ? t->numel : 1) * sizeof(int32_t));
  assert_non_null(x);
  memcpy(x, t->data, t->numel * sizeof(int32_t)); /* little-endian hosts only */
  if (shape) {
    assert_int_equal(t->ndim, 2);
    shape[0] = t->shape[0];
    shape[1] = t->shape[1];
  }
  return x;
}

int bc_test_minilm_dir(char *dir, size_t n) {
  const char *env = getenv("BERTCL_MINILM_DIR");
  if (env && *env)
    snprintf(dir, n, "%s", env);
  else
    snprintf(dir, n, "%s/../../models/all-MiniLM-L6-v2", BERTCL_TEST_DATA);
  char path[1200];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("all-MiniLM-L6-v2 not found at %s (run scripts/fetch-model.sh or set "
           "BERTCL_MINILM_DIR): skipped\n", dir);
    return 0;
  }
  fclose(f);
  return 1;
}

int bc_test_e2e_setup(bc_test_e2e *x) {
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) return 0;
  snprintf(x->dev, sizeof x->dev, "%s", bertcl_ctx_device(ctx)->name);
  bertcl_ctx_free(ctx);
  assert_int_equal(bc_test_tmpdir(x->dir, sizeof x->dir), 0);
  bc_test_data_path(x->model, sizeof x->model, "tiny-bert");
  return 1;
}

void bc_test_e2e_done(bc_test_e2e *x) {
  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}
