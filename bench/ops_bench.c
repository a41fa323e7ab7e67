/* ops_bench: time of each of our own kernels (not the GEMMs) in both kernel sets, GPU-shaped and
 * CPU-shaped (bc_kset), on one device, at an encoder's shapes (MiniLM by default: C 384, 12
 * heads, I 1536). The two sets run back to back, round after round, in one process, so their
 * ratio holds on a loaded machine. Each figure is the wall time of `calls` launches followed by
 * clFinish, per launch: the minimum over rounds (the least disturbed round on a shared machine)
 * and the median; and the CPU time the process spent per launch (all threads, minimum over
 * rounds), which counts work rather than waiting on a shared machine.
 *
 *   ops_bench [--device D] [--batch B] [--seq T] [--rounds R] [--calls K] [--only NAME]
 *             [--hidden C --heads NH --inter I] [--params N]
 * (--params: the length AdamW and the gradient norm run over; default MiniLM's 22.7M)
 *
 * One JSON object per op on stdout: {"op", "device", "B", "T", "gpu_ms", "cpu_ms", "speedup",
 * "gpu_median_ms", "cpu_median_ms", "gpu_cputime_ms", "cpu_cputime_ms"} (minimums;
 * speedup = gpu_ms / cpu_ms); a table on stderr with both speedups, of wall time and of CPU
 * time (the steadier one on a shared machine). bench/cpu_kernels.sh runs it on PoCL and
 * Intel's runtime. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "encoder/ops.h"
#include "train/train_ops.h"

typedef struct {
  bertcl_ctx *ctx;
  bc_ops ops[2];
  bc_train_ops tops[2];
  int B, T, C, NH, I, N;
  size_t params; /* AdamW's and the gradient norm's length */
  cl_mem h, h2, res, inter, scores, probs, mask, ids, pos, tts, wte, wpe, wtt, lnw, lnb, bias,
      ibias, dinter, dh, stats, dw, db, pp, pm, pv, pg;
} bench;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the whole process (all threads: the OpenCL runtime's workers too), in ms: on a
 * CPU device shared with other jobs it counts the work, not the waiting. */
static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static cl_mem buf(bench *b, size_t n, float lo, float hi, int *st) {
  float *x = malloc((n ? n : 1) * 4);
  if (!x) {
    *st = BERTCL_ERR_NOMEM;
    return NULL;
  }
  uint64_t s = 0x9E3779B97F4A7C15ull ^ n;
  for (size_t i = 0; i < n; i++) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    x[i] = lo + (hi - lo) * (float)((s * 2685821657736338717ull) >> 40) / 16777216.0f;
  }
  cl_mem m = bc_buffer_create(b->ctx, n * 4, x, st);
  free(x);
  return m;
}

static cl_mem ibuf(bench *b, size_t n, int mod, int *st) {
  int32_t *x = malloc((n ? n : 1) * 4);
  if (!x) {
    *st = BERTCL_ERR_NOMEM;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) x[i] = mod ? (int32_t)((i * 7919u) % (unsigned)mod) : 1;
  cl_mem m = bc_buffer_create(b->ctx, n * 4, x, st);
  free(x);
  return m;
}

/* one launch of op `name` in kernel set k */
typedef int (*op_fn)(bench *b, int k);

static int op_embedding(bench *b, int k) {
  return bc_op_embedding(b->ctx, &b->ops[k], b->h, b->ids, b->pos, b->tts, b->wte, b->wte, b->wpe,
                         b->wtt, b->lnw, b->lnb, 1e-12f, b->B, b->T, b->C, 1000, 1000, b->T, 2);
}
static int op_brln(bench *b, int k) {
  return bc_op_bias_residual_layernorm(b->ctx, &b->ops[k], b->h, b->h, b->bias, b->res, b->lnw,
                                       b->lnb, 1e-12f, b->N, b->C);
}
static int op_gelu(bench *b, int k) {
  return bc_op_bias_act(b->ctx, &b->ops[k], b->inter, b->ibias, BC_ACT_GELU, b->N, b->I);
}
static int op_softmax(bench *b, int k) {
  return bc_op_softmax(b->ctx, &b->ops[k], b->scores, b->mask, NULL, 0.125f, b->B, b->NH, b->T);
}
static int op_split(bench *b, int k) {
  (void)k;
  return bc_op_split_heads(b->ctx, &b->ops[0], b->h, b->h2, b->res, b->inter, b->ibias, b->B,
                           b->T, b->C, b->NH);
}
static int op_merge(bench *b, int k) {
  (void)k;
  return bc_op_merge_heads(b->ctx, &b->ops[0], b->h2, b->h, b->B, b->T, b->C, b->NH);
}
static int op_dropout_probs(bench *b, int k) {
  return bc_op_dropout(b->ctx, &b->tops[k], b->probs, b->scores, 0.1f, 42, 3, 17,
                       (size_t)b->B * b->NH * b->T * b->T);
}
static int op_bdr(bench *b, int k) {
  return bc_op_bias_dropout_residual(b->ctx, &b->tops[k], b->h2, b->h, b->bias, b->res, 0.1f, 42,
                                     3, 18, b->N, b->C);
}
static int op_layernorm_fwd(bench *b, int k) {
  return bc_op_layernorm_fwd(b->ctx, &b->tops[k], b->h2, b->h, b->lnw, b->lnb, 1e-12f, b->N,
                             b->C);
}
static int op_layernorm_bwd(bench *b, int k) {
  return bc_op_layernorm_bwd(b->ctx, &b->tops[k], b->dh, b->stats, b->dw, b->db, b->h2, b->h,
                             b->lnw, 1e-12f, b->N, b->C);
}
static int op_colsum_bwd(bench *b, int k) {
  return bc_op_colsum_bwd(b->ctx, &b->tops[k], b->ibias, b->dinter, b->N, b->I);
}
static int op_adamw(bench *b, int k) {
  return bc_op_adamw(b->ctx, &b->tops[k], b->pp, b->pm, b->pv, b->pg, 0, b->params, 0.5f, 1e-5f,
                     0.9f, 0.999f, 1e-8f, 0.01f, 3);
}
static int op_grad_norm(bench *b, int k) {
  double norm;
  return bc_op_grad_norm(b->ctx, &b->tops[k], b->pg, b->params, &norm);
}
static int op_softmax_bwd(bench *b, int k) {
  return bc_op_softmax_bwd(b->ctx, &b->tops[k], b->probs, b->probs, b->scores, 0.125f,
                           b->B * b->NH * b->T, b->T);
}
static int op_gelu_bwd(bench *b, int k) {
  return bc_op_bias_act_bwd(b->ctx, &b->tops[k], b->dinter, b->dinter, b->inter, b->ibias,
                            BC_ACT_GELU, b->N, b->I);
}

static const struct {
  const char *name;
  op_fn fn;
} op_table[] = {
    {"embedding_fwd", op_embedding},
    {"bias_residual_layernorm_fwd", op_brln},
    {"bias_act_fwd (gelu)", op_gelu},
    {"softmax_fwd", op_softmax},
    {"split_heads_fwd (same kernel)", op_split},
    {"merge_heads_fwd (same kernel)", op_merge},
    {"dropout_fwd (probs)", op_dropout_probs},
    {"bias_dropout_residual_fwd", op_bdr},
    {"layernorm_fwd", op_layernorm_fwd},
    {"layernorm_bwd (+params)", op_layernorm_bwd},
    {"colsum_bwd (N, I)", op_colsum_bwd},
    {"softmax_bwd", op_softmax_bwd},
    {"bias_act_bwd (gelu)", op_gelu_bwd},
    {"adamw_step (params)", op_adamw},
    {"sumsq_partial (grad norm)", op_grad_norm},
};

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *device = NULL, *only = NULL;
  int B = 32, T = 128, rounds = 7, calls = 5, C = 384, NH = 12, I = 1536;
  size_t params = 22713216;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "ops_bench: %s needs a value\n", a);
      return 2;
    }
    if (!strcmp(a, "--device")) device = v;
    else if (!strcmp(a, "--batch")) B = atoi(v);
    else if (!strcmp(a, "--seq")) T = atoi(v);
    else if (!strcmp(a, "--rounds")) rounds = atoi(v);
    else if (!strcmp(a, "--calls")) calls = atoi(v);
    else if (!strcmp(a, "--only")) only = v;
    else if (!strcmp(a, "--hidden")) C = atoi(v);
    else if (!strcmp(a, "--heads")) NH = atoi(v);
    else if (!strcmp(a, "--inter")) I = atoi(v);
    else if (!strcmp(a, "--params")) params = (size_t)atoll(v);
    else {
      fprintf(stderr, "ops_bench: unknown option %s (see the comment at the top of "
                      "bench/ops_bench.c)\n", a);
      return 2;
    }
    i++;
  }
  if (B < 1 || T < 1 || rounds < 1 || calls < 1 || C < 1 || NH < 1 || C % NH || I < 1) {
    fprintf(stderr, "ops_bench: bad sizes\n");
    return 2;
  }
  bench b = {.B = B, .T = T, .C = C, .NH = NH, .I = I, .N = B * T, .params = params};
  bertcl_ctx_options copt = {.device = device};
  if (bertcl_ctx_create(&b.ctx, &copt) != BERTCL_OK) {
    fprintf(stderr, "ops_bench: %s\n", bertcl_last_error(NULL));
    return 1;
  }
  int st = BERTCL_OK;
  for (int k = 0; k < 2 && st == BERTCL_OK; k++) {
    b.ctx->kset = k == 0 ? BC_KSET_GPU : BC_KSET_CPU;
    st = bc_ops_init(b.ctx, &b.ops[k]);
    if (st == BERTCL_OK) st = bc_train_ops_init(b.ctx, &b.tops[k]);
  }
  size_t N = (size_t)b.N, S = (size_t)B * NH * T * T;
  if (st == BERTCL_OK) {
    b.h = buf(&b, N * C, -2, 2, &st);
    b.h2 = buf(&b, N * C, -2, 2, &st);
    b.res = buf(&b, N * C, -2, 2, &st);
    b.dh = buf(&b, N * C, -1, 1, &st);
    b.inter = buf(&b, N * I, -4, 4, &st);
    b.dinter = buf(&b, N * I, -1, 1, &st);
    b.scores = buf(&b, S, -8, 8, &st);
    b.probs = buf(&b, S, 0, 1, &st);
    b.mask = ibuf(&b, (size_t)B * T, 0, &st);
    b.ids = ibuf(&b, N, 1000, &st);
    b.pos = ibuf(&b, N, T, &st);
    b.tts = ibuf(&b, N, 2, &st);
    b.wte = buf(&b, (size_t)1000 * C, -1, 1, &st);
    b.wpe = buf(&b, (size_t)T * C, -1, 1, &st);
    b.wtt = buf(&b, (size_t)2 * C, -1, 1, &st);
    b.lnw = buf(&b, C, 0.5f, 1.5f, &st);
    b.lnb = buf(&b, C, -0.5f, 0.5f, &st);
    b.bias = buf(&b, C, -1, 1, &st);
    b.ibias = buf(&b, (size_t)3 * C > (size_t)I ? (size_t)3 * C : (size_t)I, -1, 1, &st);
    b.stats = buf(&b, N * 2, 0, 1, &st);
    b.dw = buf(&b, C, 0, 0, &st);
    b.db = buf(&b, C, 0, 0, &st);
    b.pp = buf(&b, params, -1, 1, &st);
    b.pm = buf(&b, params, -0.01f, 0.01f, &st);
    b.pv = buf(&b, params, 0, 0.001f, &st);
    b.pg = buf(&b, params, -0.1f, 0.1f, &st);
  }
  if (st != BERTCL_OK) {
    fprintf(stderr, "ops_bench: setup: %s\n", bertcl_last_error(b.ctx));
    return 1;
  }
  const bertcl_device_info *d = bertcl_ctx_device(b.ctx);
  fprintf(stderr, "ops_bench on %s (%s, driver %s): B=%d T=%d C=%d NH=%d I=%d, %d rounds x %d "
          "calls (ms per launch: wall minimum over rounds, median in brackets, process CPU time)\n"
          "%-32s %30s %30s %17s\n", d->name, d->platform_name, d->driver_version, B, T, C, NH,
          I, rounds, calls, "op", "gpu set", "cpu set", "speedup wall/cpu");
  double *t[2] = {malloc(sizeof(double) * rounds), malloc(sizeof(double) * rounds)};
  double *u[2] = {malloc(sizeof(double) * rounds), malloc(sizeof(double) * rounds)};
  for (size_t o = 0; o < sizeof op_table / sizeof op_table[0] && st == BERTCL_OK; o++) {
    if (only && !strstr(op_table[o].name, only)) continue;
    for (int k = 0; k < 2 && st == BERTCL_OK; k++) st = op_table[o].fn(&b, k); /* warm-up */
    clFinish(b.ctx->queue);
    for (int r = 0; r < rounds && st == BERTCL_OK; r++)
      for (int k = 0; k < 2 && st == BERTCL_OK; k++) {
        double t0 = now_ms(), u0 = cpu_ms();
        for (int c = 0; c < calls && st == BERTCL_OK; c++) st = op_table[o].fn(&b, k);
        clFinish(b.ctx->queue);
        t[k][r] = (now_ms() - t0) / calls;
        u[k][r] = (cpu_ms() - u0) / calls;
      }
    if (st != BERTCL_OK) break;
    qsort(t[0], rounds, sizeof(double), cmp_d);
    qsort(t[1], rounds, sizeof(double), cmp_d);
    qsort(u[0], rounds, sizeof(double), cmp_d);
    qsort(u[1], rounds, sizeof(double), cmp_d);
    double g = t[0][0], c = t[1][0], gm = t[0][rounds / 2], cm = t[1][rounds / 2];
    fprintf(stderr, "%-32s %9.3f (%8.3f) %9.3f %9.3f (%8.3f) %9.3f %7.2fx %7.2fx\n",
            op_table[o].name, g, gm, u[0][0], c, cm, u[1][0], g / c,
            u[1][0] > 0 ? u[0][0] / u[1][0] : 0.0);
    printf("{\"op\": \"%s\", \"device\": \"%s\", \"B\": %d, \"T\": %d, \"gpu_ms\": %.4f, "
           "\"cpu_ms\": %.4f, \"speedup\": %.3f, \"gpu_median_ms\": %.4f, "
           "\"cpu_median_ms\": %.4f, \"gpu_cputime_ms\": %.4f, \"cpu_cputime_ms\": %.4f}\n",
           op_table[o].name, d->name, B, T, g, c, g / c, gm, cm, u[0][0], u[1][0]);
  }
  if (st != BERTCL_OK) fprintf(stderr, "ops_bench: %s\n", bertcl_last_error(b.ctx));
  free(t[0]);
  free(t[1]);
  free(u[0]);
  free(u[1]);
  cl_mem ms[] = {b.h,    b.h2,  b.res, b.dh,  b.inter, b.dinter, b.scores, b.probs,
                 b.mask, b.ids, b.pos, b.tts, b.wte, b.wpe,   b.wtt,    b.lnw,    b.lnb,
                 b.bias, b.ibias, b.stats, b.dw, b.db, b.pp, b.pm, b.pv, b.pg};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
    if (ms[i]) clReleaseMemObject(ms[i]);
  for (int k = 0; k < 2; k++) {
    bc_ops_free(&b.ops[k]);
    bc_train_ops_free(&b.tops[k]);
  }
  bertcl_ctx_free(b.ctx);
  return st == BERTCL_OK ? 0 : 1;
}
