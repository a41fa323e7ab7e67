/* Shared helpers for the cmocka tests. Include after <cmocka.h>'s prerequisites. */
#ifndef BC_TESTUTIL_H
#define BC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bertcl.h"
#include "runtime/runtime.h"

/* Creates a context on $BERTCL_TEST_DEVICE (default "pocl", then any device). Returns NULL when
 * no OpenCL device exists: the caller then calls skip(), so the test is reported as skipped. */
bertcl_ctx *bc_test_ctx(void);

/* Deterministic RNG (xorshift64*) for test inputs; seed printed on failure by the caller. */
typedef struct { uint64_t s; } bc_rng;
void bc_rng_seed(bc_rng *r, uint64_t seed);
uint32_t bc_rng_u32(bc_rng *r);
float bc_rng_uniform(bc_rng *r, float lo, float hi);
void bc_rng_fill(bc_rng *r, float *x, size_t n, float lo, float hi);

/* malloc'd n floats uniform in [lo, hi). */
float *bc_rng_alloc(bc_rng *r, size_t n, float lo, float hi);
/* Device buffer holding a copy of `bytes` of host data (fails the test on error); and reading one
 * back (blocking). */
cl_mem bc_test_upload(bertcl_ctx *ctx, const void *data, size_t bytes);
void bc_test_download(bertcl_ctx *ctx, cl_mem m, void *data, size_t bytes);

/* Compares got with ref: passes when every |got-ref| <= atol + rtol*|ref| (NaN fails).
 * On failure prints what (op, shape), index, expected, got, the seed and the max error, and
 * returns 0. Also prints NMSE. */
int bc_check_close(const char *what, const float *got, const float *ref, size_t n, float atol,
                   float rtol, uint64_t seed);
/* Max |a-b|. */
double bc_max_abs_diff(const float *a, const float *b, size_t n);

/* A dense sweep of floats in [-lim, lim] for accuracy proofs of math kernels: a uniform grid of
 * step 2^-10, then every 2^shift-th float bit pattern of magnitude <= lim (every binade, down to
 * the subnormals), both signs, and +-0. malloc'd; *n set. */
float *bc_sweep_alloc(float lim, int shift, size_t *n);
/* Largest errors of got against ref over n values: absolute, and in units in the last place
 * of a float of magnitude scale[i] (NULL: |ref[i]|; at least the smallest normal's ulp). A sum
 * of terms that cancel is judged by the ulp of its largest term. Printed as
 * "what: max |err| A at x X, max error U ulp at x Y (n values)" with x[] the inputs. */
typedef struct {
  double max_abs, max_ulp;
} bc_err_stats;
bc_err_stats bc_error_stats(const char *what, const float *x, const float *got, const float *ref,
                            const float *scale, size_t n);

/* Path helpers: tests/data/<rel> in the source tree; a fresh temporary directory. */
void bc_test_data_path(char *out, size_t n, const char *rel);
int bc_test_tmpdir(char *out, size_t n);
/* Files in directory dir whose names start with prefix and hold ".tmp." (the durable writer's
 * temporary files, io/durable.h): a failed or killed write must leave none. */
int bc_test_count_tmp(const char *dir, const char *prefix);
/* Runs a shell command, returns its exit status (or -1), capturing stdout+stderr into a
 * malloc'd string when out is non-NULL. */
int bc_test_run(const char *cmd, char **out);

/* End-to-end tests through the command-line program: a fresh temporary directory, the tiny
 * model's directory and the test device's name (for --device). Returns 0 when there is no
 * OpenCL device (the caller then skips). _done removes the directory. */
typedef struct {
  char dir[512], model[1024], dev[256];
} bc_test_e2e;
int bc_test_e2e_setup(bc_test_e2e *x);
void bc_test_e2e_done(bc_test_e2e *x);


/* Fixtures written by the tests/gen scripts as safetensors files under tests/data. */
struct bc_st_file;
struct bc_st_file *bc_test_fixture_open(const char *rel); /* fails the test when missing */
void bc_test_fixture_close(struct bc_st_file *f);
/* Tensor `name` as a malloc'd copy, checked to hold numel values (0 = any); shape (2 dims)
 * returned when non-NULL. Fails the test when absent or of another dtype. */
float *bc_test_fixture_f32(struct bc_st_file *f, const char *name, size_t numel);
int32_t *bc_test_fixture_i32(struct bc_st_file *f, const char *name, size_t numel,
                             int64_t shape[2]);
/* all-MiniLM-L6-v2 from $BERTCL_MINILM_DIR, else <source>/models/all-MiniLM-L6-v2
 * (scripts/fetch-model.sh). Returns 0 (and says so) when absent: the caller then skips. */
int bc_test_minilm_dir(char *dir, size_t n);

#endif
