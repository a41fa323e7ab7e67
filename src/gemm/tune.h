/* The encoder's GEMM shapes, timing them through bc_gemm with profiling events, and the search
 * over CLBlast's GEMM parameters behind bertcl tune (parameters stored by gemm/tuning.h). */
#ifndef BC_TUNE_H
#define BC_TUNE_H

#include "gemm/gemm.h"
#include "model/model.h"
#include "gemm/tuning.h"

#define BC_ENCODER_NSHAPES 6

/* One matrix product of an encoder layer, as the encoder calls bc_gemm (row-major). */
typedef struct {
  const char *name; /* qkv, attn_out, ffn_up, ffn_down, attn_scores, attn_context */
  int trans_a, trans_b;
  size_t m, n, k;
  size_t batch; /* 1, or B*NH for the attention products */
  size_t b_off; /* offset of B (floats): the encoder's weights sit inside one buffer, which makes
                   CLBlast's indirect path copy them; timing at offset 0 would hide that */
} bc_gemm_shape;

/* The six products of one layer for a (B, T) batch. */
void bc_encoder_gemm_shapes(const bc_config *c, int B, int T, bc_gemm_shape out[BC_ENCODER_NSHAPES]);
double bc_gemm_shape_flops(const bc_gemm_shape *s); /* 2*m*n*k*batch */

/* Statistics of repeated timings (milliseconds). */
typedef struct {
  int n;
  double median, min, max, q1, q3, mean;
} bc_stats;
void bc_stats_compute(double *v, int n, bc_stats *out); /* sorts v */

/* Buffers for timing a set of shapes: A, B, C sized for the largest, A and B random. */
typedef struct {
  cl_mem a, b, c;
  size_t a_n, b_n, c_n; /* floats */
} bc_gemm_bufs;
int bc_gemm_bufs_alloc(bertcl_ctx *ctx, const bc_gemm_shape *s, int n, bc_gemm_bufs *out);
void bc_gemm_bufs_free(bc_gemm_bufs *b);

typedef struct {
  double first_ms;  /* wall time of the first call of this shape in this measurement (includes
                       CLBlast's program build when it is the first of its routine) */
  bc_stats device;  /* per call, from profiling events: a marker before the call to the end of
                       CLBlast's last kernel (so pad/transpose kernels are included) */
  double wall_ms;   /* per call: `repeat` calls then clFinish, wall clock / repeat */
  int from_events;  /* 1: device from events; 0: the device gave no usable marker timestamps
                       and device holds per-call wall times */
} bc_gemm_timing;

/* Times one shape: warmup calls, then repeat timed calls. When result is not NULL it receives C
 * (m*n*batch floats) for checking against another parameter set. */
int bc_gemm_time(bertcl_ctx *ctx, const bc_gemm_bufs *bufs, const bc_gemm_shape *s, int warmup,
                 int repeat, bc_gemm_timing *out, float *result);

/* HGEMM (CLBlastHgemm) of an m x n x k product, device time per call; the result is checked on
 * a sample of C (BERTCL_ERR_CLBLAST when wrong). BERTCL_ERR_UNSUPPORTED when the device lacks
 * cl_khr_fp16. Outside bc_gemm on purpose: the encoder computes in fp32, this only measures what
 * the device's half-precision path could reach. */
int bc_hgemm_time(bertcl_ctx *ctx, size_t m, size_t n, size_t k, int warmup, int repeat,
                  bc_gemm_timing *out);

typedef struct {
  const char *config;  /* name recorded in the files */
  const bc_config *cfg;
  int batch, seq;      /* shapes tuned for */
  double budget_s;     /* wall-clock budget, checked before each candidate */
  int max_candidates;  /* 0 = no limit */
  int repeat;          /* timed calls per shape */
  int restart;         /* ignore the progress file */
  void (*log)(void *user, const char *line);
  void *user;
} bc_tune_opts;

typedef struct {
  char params_path[1100], progress_path[1100];
  double baseline_ms;      /* this run: sum over the layer's shapes, CLBlast defaults */
  double best_ms;          /* best so far (all runs) */
  bc_gemm_params best;     /* its parameters (none set: defaults) */
  int evaluated_total;     /* candidates measured over all runs */
  int evaluated_now, rejected_now;
  int resumed;
  int complete;            /* every candidate measured */
  int remaining;
} bc_tune_result;

/* Runs (or resumes) the search on ctx's device. Must run before any other GEMM in the process
 * (the first measurement is CLBlast's defaults). Writes the parameter file after the baseline and
 * after every improvement, and the progress file after every candidate. */
int bc_tune(bertcl_ctx *ctx, const bc_tune_opts *o, bc_tune_result *r);

#endif
