/* bertcl bench: device facts, bandwidth, GEMM on the encoder's shapes, encoder throughput, with
 * CLBlast's defaults and with the tuned parameters side by side; a table and a JSON report. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "io/durable.h"
#include "bertcl.h"
#include "bench_train.h"
#include "cli.h"
#include "encoder/encoder.h"
#include "gemm/tune.h"
#include "model/model.h"
#include "model/random.h"
#include "gemm/tuning.h"

#define SCHEMA_ID "bertcl-bench/1"
#define MAX_GRID 16

void bc_cmd_bench_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl bench [--device D|all] [--model DIR | --config base|large|minilm|tiny]\n"
          "                    [--batch 1,8,32,128] [--seq 128,512] [--json FILE]\n"
          "                    [--compare OLD.json] [--warmup N] [--repeat N] [--bw-mib N]\n"
          "                    [--finetune BxT|none] [--gemm auto|clblast|blas]\n\n"
          "Measures each device: its facts (name, driver, OpenCL and CLBlast versions, compute\n"
          "units, clock, memory), bandwidth (device copy; host to device and back, pageable\n"
          "and pinned), SGEMM (HGEMM where cl_khr_fp16 exists) on the encoder's own products\n"
          "with the theoretical peak where the device's facts give it, and the encoder's\n"
          "forward pass in sequences/s and tokens/s over the batch x sequence grid (random\n"
          "weights of the named configuration when no model is given). Kernel times come from\n"
          "OpenCL profiling events, pass times from the wall clock; after warm-up the median\n"
          "and spread (min, max, quartiles) of the repeats are reported, first calls (program\n"
          "builds, weight upload) apart. CLBlast's defaults are measured first, then the\n"
          "parameters stored by bertcl tune, side by side. Last, one fine-tuning step\n"
          "(BertForSequenceClassification with 2 labels: dropout 0.1, forward, loss,\n"
          "backward, clipping, AdamW) is timed on one batch shape. On a CPU device that can\n"
          "run the host BLAS, its backend is measured too, first, in the same run (GEMM per\n"
          "shape as %% of the fp32 peak, the forward pass, the fine-tuning step).\n\n"
          "options:\n"
          "  --device D|all     device selector, or every device (default: the default one)\n"
          "  --config NAME      base, large, minilm or tiny (default base)\n"
          "  --model DIR        a model directory instead (its weights, its configuration)\n"
          "  --batch LIST       batch sizes (default 1,8,32,128)\n"
          "  --seq LIST         sequence lengths (default 128,512; capped by the model)\n"
          "  --warmup N         untimed runs before timing (default 2)\n"
          "  --repeat N         timed runs (default 10)\n"
          "  --bw-mib N         bandwidth test size in MiB (default 64)\n"
          "  --finetune BxT     fine-tuning step shape (default 32x128, capped by the\n"
          "                     model's positions); none to skip it\n"
          "  --gemm G           auto (both backends where the host BLAS runs), clblast or blas\n"
          "  --json FILE        write every figure as JSON (schema: bench/bench.schema.json)\n"
          "  --compare OLD      print ratios against an earlier --json report\n");
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int parse_list(const char *opt, const char *s, int *out, int *n, int hi) {
  *n = 0;
  const char *p = s;
  while (*p) {
    char *end = NULL;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > hi || *n == MAX_GRID || (*end && *end != ',')) {
      bc_cli_error("bench: %s wants a comma-separated list of integers in [1, %d], got '%s'",
                   opt, hi, s);
      return 0;
    }
    out[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  }
  if (*n == 0) {
    bc_cli_error("bench: %s is empty", opt);
    return 0;
  }
  return 1;
}

static json_t *stats_json(const bc_stats *s) {
  return json_pack("{s:f, s:f, s:f, s:f, s:f, s:i}", "median", s->median, "min", s->min, "max",
                   s->max, "q1", s->q1, "q3", s->q3, "n", s->n);
}

static json_t *num_or_null(double v, int ok) { return ok ? json_real(v) : json_null(); }

/* ---- bandwidth ----------------------------------------------------------------------------- */

static double ev_ms(cl_event e) {
  cl_ulong a = 0, b = 0;
  if (clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL) != CL_SUCCESS ||
      clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL) != CL_SUCCESS ||
      b <= a)
    return -1;
  return (double)(b - a) * 1e-6;
}

/* kind: 0 device copy, 1 H2D pageable, 2 D2H pageable, 3 H2D pinned, 4 D2H pinned */
static int bandwidth(bertcl_ctx *ctx, size_t bytes, int warmup, int repeat, json_t *out,
                     double med[5]) {
  int st = BERTCL_OK;
  static const char *const names[5] = {"device_copy", "h2d_pageable", "d2h_pageable",
                                       "h2d_pinned", "d2h_pinned"};
  cl_mem src = NULL, dst = NULL, pin = NULL;
  void *host = NULL, *pinned = NULL;
  double *wall = calloc((size_t)repeat, sizeof *wall), *evt = calloc((size_t)repeat, sizeof *evt);
  if (!wall || !evt || !(host = malloc(bytes))) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of host memory for %zu bytes", bytes);
    goto fail;
  }
  memset(host, 1, bytes);
  BC_CL_OBJ(&ctx->err, src, clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, BC_RC));
  BC_CL_OBJ(&ctx->err, dst, clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, BC_RC));
  BC_CL_OBJ(&ctx->err, pin,
            clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL,
                           BC_RC));
  BC_CL_OBJ(&ctx->err, pinned,
            clEnqueueMapBuffer(ctx->queue, pin, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0,
                               NULL, NULL, BC_RC));
  memset(pinned, 2, bytes);
  BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, src, CL_TRUE, 0, bytes, host, 0, NULL, NULL));
  for (int kind = 0; kind < 5; kind++) {
    int ok_events = 1;
    for (int r = -warmup; r < repeat; r++) {
      cl_event e = NULL;
      double t0 = now_s();
      void *h = kind >= 3 ? pinned : host;
      if (kind == 0)
        BC_CL(&ctx->err, clEnqueueCopyBuffer(ctx->queue, src, dst, 0, 0, bytes, 0, NULL, &e));
      else if (kind == 1 || kind == 3)
        BC_CL(&ctx->err, clEnqueueWriteBuffer(ctx->queue, dst, CL_TRUE, 0, bytes, h, 0, NULL, &e));
      else
        BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, src, CL_TRUE, 0, bytes, h, 0, NULL, &e));
      cl_int fr = clFinish(ctx->queue);
      double w = (now_s() - t0) * 1e3;
      double em = ev_ms(e);
      clReleaseEvent(e);
      BC_CL(&ctx->err, fr);
      if (r < 0) continue;
      wall[r] = w;
      evt[r] = em;
      if (em <= 0) ok_events = 0;
    }
    /* the device copy reads and writes every byte; a transfer moves each once */
    double moved = (kind == 0 ? 2.0 : 1.0) * (double)bytes / 1e9;
    double *g = calloc((size_t)repeat, sizeof *g);
    if (!g) {
      st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
      goto fail;
    }
    bc_stats sw, se;
    for (int r = 0; r < repeat; r++) g[r] = moved / (wall[r] / 1e3);
    bc_stats_compute(g, repeat, &sw);
    if (ok_events) {
      for (int r = 0; r < repeat; r++) g[r] = moved / (evt[r] / 1e3);
      bc_stats_compute(g, repeat, &se);
    }
    free(g);
    /* a device copy is a device operation: its figure is the event-timed one */
    med[kind] = (kind == 0 && ok_events) ? se.median : sw.median;
    json_object_set_new(out, names[kind],
                        json_pack("{s:o, s:o, s:s}", "gbs_wall",
                                  stats_json(&sw), "gbs_events",
                                  ok_events ? stats_json(&se) : json_null(), "figure",
                                  (kind == 0 && ok_events) ? "gbs_events" : "gbs_wall"));
  }
fail:
  if (pinned) clEnqueueUnmapMemObject(ctx->queue, pin, pinned, 0, NULL, NULL);
  clFinish(ctx->queue);
  if (src) clReleaseMemObject(src);
  if (dst) clReleaseMemObject(dst);
  if (pin) clReleaseMemObject(pin);
  free(host);
  free(wall);
  free(evt);
  return st;
}

/* ---- one variant (CLBlast defaults or tuned) ------------------------------------------------ */

typedef struct {
  int nb, ns;
  int batches[MAX_GRID], seqs[MAX_GRID];
  int warmup, repeat;
} grid;

typedef struct {
  /* for the table: [grid point][shape] medians and encoder medians */
  double gemm_ms[MAX_GRID * MAX_GRID][BC_ENCODER_NSHAPES];
  double layer_ms[MAX_GRID * MAX_GRID];
  double enc_ms[MAX_GRID * MAX_GRID], enc_first[MAX_GRID * MAX_GRID];
  int ok[MAX_GRID * MAX_GRID];
  int enc_ok[MAX_GRID * MAX_GRID];
} variant_result;


/* One forward pass, waited for: the pass itself returns once enqueued. */
static int forward_wait(bc_encoder *enc, const int32_t *ids, const int32_t *mask, int B, int T) {
  int st = bc_encoder_forward(enc, ids, NULL, mask, B, T, NULL, 0);
  return st == BERTCL_OK ? bc_encoder_finish(enc) : st;
}
static int run_variant(bertcl_ctx *ctx, bc_encoder *enc, const bc_config *cfg, const grid *g,
                       double peak_tflops, json_t *jrun, variant_result *vr) {
  json_t *jg = json_array(), *je = json_array();
  json_object_set_new(jrun, "gemm", jg);
  json_object_set_new(jrun, "encoder", je);
  double first_calls = 0;
  int first_point = 1;
  int32_t *ids = NULL, *mask = NULL;
  for (int bi = 0; bi < g->nb; bi++) {
    for (int si = 0; si < g->ns; si++) {
      int B = g->batches[bi], T = g->seqs[si], p = bi * g->ns + si;
      vr->ok[p] = vr->enc_ok[p] = 0;
      bc_gemm_shape shapes[BC_ENCODER_NSHAPES];
      bc_encoder_gemm_shapes(cfg, B, T, shapes);
      bc_gemm_bufs bufs;
      int st = bc_gemm_bufs_alloc(ctx, shapes, BC_ENCODER_NSHAPES, &bufs);
      double layer = 0;
      for (int i = 0; st == BERTCL_OK && i < BC_ENCODER_NSHAPES; i++) {
        bc_gemm_timing tm;
        st = bc_gemm_time(ctx, &bufs, &shapes[i], g->warmup, g->repeat, &tm, NULL);
        if (st != BERTCL_OK) break;
        double fl = bc_gemm_shape_flops(&shapes[i]);
        double tf = fl / (tm.device.median * 1e-3) / 1e12;
        vr->gemm_ms[p][i] = tm.device.median;
        layer += tm.device.median;
        if (first_point) first_calls += tm.first_ms;
        json_array_append_new(
            jg, json_pack("{s:i, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:f, s:f, s:o, "
                          "s:f, s:s, s:f, s:o}",
                          "batch", B, "seq", T, "shape", shapes[i].name, "m", (int)shapes[i].m,
                          "n", (int)shapes[i].n, "k", (int)shapes[i].k, "batch_count",
                          (int)shapes[i].batch, "b_offset", (int)shapes[i].b_off, "trans_a",
                          shapes[i].trans_a, "trans_b",
                          shapes[i].trans_b, "flops", fl, "first_ms", tm.first_ms, "device_ms",
                          stats_json(&tm.device), "wall_ms", tm.wall_ms, "timing",
                          tm.from_events ? "events" : "wall", "tflops", tf, "peak_fraction",
                          num_or_null(tf / peak_tflops, peak_tflops > 0)));
      }
      bc_gemm_bufs_free(&bufs);
      if (st != BERTCL_OK) {
        json_array_append_new(jg, json_pack("{s:i, s:i, s:s}", "batch", B, "seq", T, "error",
                                            bertcl_last_error(ctx)));
        fprintf(stderr, "bertcl: bench: GEMM B=%d T=%d: %s\n", B, T, bertcl_last_error(ctx));
      } else {
        vr->ok[p] = 1;
        vr->layer_ms[p] = layer;
      }
      first_point = 0;

      /* the encoder's forward pass, all layers, no hidden state kept but the last */
      size_t N = (size_t)B * T;
      ids = malloc(N * sizeof *ids);
      mask = malloc(N * sizeof *mask);
      if (!ids || !mask) {
        free(ids);
        free(mask);
        return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
      }
      uint64_t s = 0x9E3779B97F4A7C15ULL;
      for (size_t i = 0; i < N; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        ids[i] = 1 + (int32_t)((s * 0x2545F4914F6CDD1DULL >> 33) % (uint64_t)(cfg->vocab_size - 1));
        mask[i] = 1;
      }
      double *w = calloc((size_t)g->repeat, sizeof *w);
      double t0 = now_s();
      st = w ? forward_wait(enc, ids, mask, B, T) : BERTCL_ERR_NOMEM;
      double first = (now_s() - t0) * 1e3;
      for (int r = 0; st == BERTCL_OK && r < g->warmup; r++)
        st = forward_wait(enc, ids, mask, B, T);
      for (int r = 0; st == BERTCL_OK && r < g->repeat; r++) {
        t0 = now_s();
        st = forward_wait(enc, ids, mask, B, T);
        w[r] = (now_s() - t0) * 1e3;
      }
      if (st != BERTCL_OK) {
        const char *msg = w ? bertcl_last_error(ctx) : "out of memory";
        json_array_append_new(je, json_pack("{s:i, s:i, s:s}", "batch", B, "seq", T, "error", msg));
        fprintf(stderr, "bertcl: bench: encoder B=%d T=%d: %s\n", B, T, msg);
      } else {
        bc_stats ws;
        bc_stats_compute(w, g->repeat, &ws);
        vr->enc_ok[p] = 1;
        vr->enc_ms[p] = ws.median;
        vr->enc_first[p] = first;
        json_array_append_new(
            je, json_pack("{s:i, s:i, s:f, s:o, s:f, s:f, s:o}", "batch", B, "seq", T,
                          "first_ms", first, "wall_ms", stats_json(&ws), "seqs_per_s",
                          B / (ws.median * 1e-3), "tokens_per_s", (double)N / (ws.median * 1e-3),
                          "gemm_ms_per_forward",
                          num_or_null(vr->layer_ms[p] * cfg->num_layers, vr->ok[p])));
      }
      free(w);
      free(ids);
      free(mask);
      ids = mask = NULL;
    }
  }
  json_object_set_new(jrun, "first_gemm_calls_ms", json_real(first_calls));
  return BERTCL_OK;
}

/* ---- one device ---------------------------------------------------------------------------- */

typedef struct {
  const char *config, *model_dir;
  grid g;
  size_t bw_bytes;
  int ft_batch, ft_seq; /* fine-tuning step shape; ft_batch 0 = not measured */
  const char *gemm;     /* NULL/"auto": every backend the device runs; "clblast"; "blas" */
} bench_opts;

/* One column of the tables: a backend (and CLBlast's parameters) on its own context. */
typedef struct {
  const char *name; /* "blas", "untuned", "tuned" */
  bertcl_ctx *ctx;
  bc_encoder *enc;
  variant_result *vr;
  int ft_state;     /* 0 not measured, 1 measured, -1 failed */
  double ft_first;
  bc_stats fts, fbs;
} variant;
enum { MAX_VARIANTS = 3 };

/* The fine-tuning step on v's context, into v and (when j is not NULL) as JSON. */
static json_t *finetune_step(variant *v, const bc_config *cfg, const bench_opts *bo, int B,
                             int T) {
  if (B <= 0) return json_null();
  bertcl_ctx *ctx = v->ctx;
  double *sv = calloc((size_t)bo->g.repeat, sizeof *sv);
  double *fv = calloc((size_t)bo->g.repeat, sizeof *fv);
  int fst = sv && fv ? bc_bench_train_steps(ctx, cfg, B, T, bo->g.warmup, bo->g.repeat,
                                            &v->ft_first, sv, fv)
                     : bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  json_t *j;
  if (fst == BERTCL_OK) {
    bc_stats_compute(sv, bo->g.repeat, &v->fts);
    bc_stats_compute(fv, bo->g.repeat, &v->fbs);
    j = json_pack("{s:i, s:i, s:i, s:f, s:s, s:f, s:o, s:o, s:f, s:s}", "batch", B, "seq", T,
                  "num_labels", 2, "dropout", 0.1, "optimizer", "adamw, clip 1.0", "first_ms",
                  v->ft_first, "step_ms", stats_json(&v->fts), "fwd_bwd_ms",
                  stats_json(&v->fbs), "examples_per_s", B / (v->fts.median * 1e-3), "backend",
                  bertcl_ctx_gemm(ctx));
    v->ft_state = 1;
  } else {
    j = json_pack("{s:i, s:i, s:s}", "batch", B, "seq", T, "error", bertcl_last_error(ctx));
    fprintf(stderr, "bertcl: bench: fine-tuning step B=%d T=%d (%s): %s\n", B, T,
            bertcl_ctx_gemm(ctx), bertcl_last_error(ctx));
    v->ft_state = -1;
  }
  free(sv);
  free(fv);
  return j;
}

static void print_rule(void) {
  printf("----------------------------------------------------------------------------------\n");
}

static json_t *bench_device(const char *selector, const bench_opts *bo, int *failed) {
  json_t *jd = json_object();
  bertcl_ctx *ctx = NULL, *bctx = NULL;
  bertcl_model *model = NULL;
  bc_encoder *enc = NULL, *benc = NULL;
  variant v[MAX_VARIANTS];
  int nv = 0;
  memset(v, 0, sizeof v);
  variant_result *vrs[MAX_VARIANTS] = {calloc(1, sizeof(variant_result)),
                                       calloc(1, sizeof(variant_result)),
                                       calloc(1, sizeof(variant_result))};
  *failed = 1;
  int only_blas = bo->gemm && !strcmp(bo->gemm, "blas");
  int both = !bo->gemm || !strcmp(bo->gemm, "auto");
  /* the main context runs CLBlast (defaults, then stored tuning) unless --gemm blas */
  bertcl_ctx_options copt = {.device = selector, .profiling = 1,
                             .gemm = only_blas ? "blas" : "clblast"};
  if (!vrs[0] || !vrs[1] || !vrs[2]) {
    json_object_set_new(jd, "error", json_string("out of memory"));
    goto done;
  }
  if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    json_object_set_new(jd, "error", json_string(bertcl_last_error(NULL)));
    fprintf(stderr, "bertcl: bench: %s\n", bertcl_last_error(NULL));
    goto done;
  }
  const bertcl_device_info *d = bertcl_ctx_device(ctx);
  char gemm_why[1024] = "";
  if (both && d->type == BERTCL_DEVICE_CPU) { /* the host BLAS beside CLBlast, same device */
    bertcl_ctx_options bopt = copt;
    bopt.gemm = "blas";
    if (bertcl_ctx_create(&bctx, &bopt) != BERTCL_OK)
      snprintf(gemm_why, sizeof gemm_why, "%s", bertcl_last_error(NULL));
  }
  const char *basis = d->peak_basis;
  double peak = d->fp32_peak_gflops / 1e3; /* TFLOP/s */
  int known_peak = peak > 0;
  json_object_set_new(
      jd, "facts",
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:b}",
                "name", d->name, "vendor", d->vendor, "platform", d->platform_name,
                "platform_version", d->platform_version, "opencl_version", d->version,
                "driver", d->driver_version, "clblast", bc_clblast_version(), "type",
                d->type == BERTCL_DEVICE_GPU ? "gpu" : d->type == BERTCL_DEVICE_CPU ? "cpu" : "other",
                "compute_units", (int)d->compute_units, "max_clock_mhz", (int)d->max_clock_mhz,
                "global_mem_bytes", (json_int_t)d->global_mem_bytes, "local_mem_bytes",
                (json_int_t)d->local_mem_bytes, "max_alloc_bytes", (json_int_t)d->max_alloc_bytes,
                "fp16", d->fp16));
  json_object_set_new(jd, "peak",
                      json_pack("{s:o, s:o, s:s}", "fp32_tflops", num_or_null(peak, known_peak),
                                "fp16_tflops", json_null(), "basis", basis));
  print_rule();
  printf("device   %s | %s | %s | driver %s | CLBlast %s\n", d->name, d->platform_name,
         d->version, d->driver_version, bc_clblast_version());
  printf("         %u compute units, %u MHz, %.1f GiB, local %llu KiB, fp16 %s\n",
         d->compute_units, d->max_clock_mhz, d->global_mem_bytes / 1073741824.0,
         (unsigned long long)(d->local_mem_bytes / 1024), d->fp16 ? "yes" : "no");
  if (known_peak)
    printf("peak     fp32 %.2f TFLOP/s (%s)\n", peak, basis);
  else
    printf("peak     fp32 unknown (%s)\n", basis);
  {
    char line[1024];
    json_t *jb = json_array();
    bertcl_ctx *cs[2] = {bctx, ctx};
    for (int c = 0; c < 2; c++) {
      if (!cs[c]) continue;
      bertcl_ctx_gemm_info(cs[c], line, sizeof line);
      printf("gemm     %s\n", line);
      json_array_append_new(jb, json_string(line));
    }
    if (gemm_why[0]) {
      printf("gemm     no host BLAS backend: %s\n", gemm_why);
      json_array_append_new(jb, json_sprintf("no host BLAS backend: %s", gemm_why));
    }
    json_object_set_new(jd, "gemm_backends", jb);
  }

  /* bandwidth */
  json_t *jbw = json_object();
  json_object_set_new(jbw, "bytes", json_integer((json_int_t)bo->bw_bytes));
  double bw[5] = {0};
  if (bandwidth(ctx, bo->bw_bytes, 1, bo->g.repeat, jbw, bw) != BERTCL_OK) {
    json_object_set_new(jbw, "error", json_string(bertcl_last_error(ctx)));
    fprintf(stderr, "bertcl: bench: bandwidth: %s\n", bertcl_last_error(ctx));
    json_object_set_new(jd, "bandwidth", jbw);
    goto done;
  }
  json_object_set_new(jd, "bandwidth", jbw);
  printf("GB/s     device copy %.1f | H2D pageable %.2f, pinned %.2f | D2H pageable %.2f, "
         "pinned %.2f  (%zu MiB, median)\n",
         bw[0], bw[1], bw[3], bw[2], bw[4], bo->bw_bytes >> 20);

  /* model and encoder: first-call costs */
  bc_err err = {0};
  double t0 = now_s();
  int st = bo->model_dir ? bertcl_model_load(&model, bo->model_dir)
                         : bc_model_random(&err, bo->config, 42, &model);
  double model_ms = (now_s() - t0) * 1e3;
  if (st != BERTCL_OK) {
    const char *m = bo->model_dir ? bertcl_last_error(NULL) : err.msg;
    json_object_set_new(jd, "error", json_string(m));
    fprintf(stderr, "bertcl: bench: %s\n", m);
    goto done;
  }
  const bc_config *cfg = bc_model_config(model);
  bc_program_stats before = ctx->stats;
  t0 = now_s();
  if (bc_encoder_create(ctx, model, &enc) != BERTCL_OK) {
    json_object_set_new(jd, "error", json_string(bertcl_last_error(ctx)));
    fprintf(stderr, "bertcl: bench: %s\n", bertcl_last_error(ctx));
    goto done;
  }
  double enc_ms = (now_s() - t0) * 1e3;
  bertcl_model_info mi;
  bertcl_model_get_info(model, &mi);
  json_object_set_new(
      jd, "setup",
      json_pack("{s:f, s:f, s:I, s:i, s:i}", "model_ms", model_ms, "encoder_create_ms", enc_ms,
                "weight_bytes", (json_int_t)(mi.num_params * 4), "programs_built",
                (int)(ctx->stats.source_builds - before.source_builds), "programs_from_cache",
                (int)(ctx->stats.cache_hits - before.cache_hits)));
  printf("setup    %s %.0f ms; encoder create (programs %llu built, %llu cached; %.0f MB of "
         "weights uploaded) %.0f ms\n",
         bo->model_dir ? "model load" : "random weights", model_ms,
         (unsigned long long)(ctx->stats.source_builds - before.source_builds),
         (unsigned long long)(ctx->stats.cache_hits - before.cache_hits),
         mi.num_params * 4 / 1e6, enc_ms);
  if (bctx && bc_encoder_create(bctx, model, &benc) != BERTCL_OK) {
    fprintf(stderr, "bertcl: bench: host BLAS context: %s\n", bertcl_last_error(bctx));
    bertcl_ctx_free(bctx);
    bctx = NULL;
  }

  /* HGEMM: where the device has half precision (on the largest FFN shape of the grid) */
  if (d->fp16) {
    bc_gemm_shape sh[BC_ENCODER_NSHAPES];
    bc_encoder_gemm_shapes(cfg, bo->g.batches[bo->g.nb - 1], bo->g.seqs[bo->g.ns - 1], sh);
    bc_gemm_timing tm;
    if (bc_hgemm_time(ctx, sh[2].m, sh[2].n, sh[2].k, bo->g.warmup, bo->g.repeat, &tm) ==
        BERTCL_OK) {
      double tf = bc_gemm_shape_flops(&sh[2]) / (tm.device.median * 1e-3) / 1e12;
      json_object_set_new(jd, "hgemm",
                          json_pack("{s:s, s:i, s:i, s:i, s:o, s:f}", "shape", "ffn_up", "m",
                                    (int)sh[2].m, "n", (int)sh[2].n, "k", (int)sh[2].k,
                                    "device_ms", stats_json(&tm.device), "tflops", tf));
      printf("HGEMM    ffn_up %zux%zux%zu: %.3f ms, %.2f TFLOP/s\n", sh[2].m, sh[2].n, sh[2].k,
             tm.device.median, tf);
    } else {
      json_object_set_new(jd, "hgemm", json_pack("{s:s}", "error", bertcl_last_error(ctx)));
      printf("HGEMM    failed: %s\n", bertcl_last_error(ctx));
    }
  } else {
    json_object_set_new(jd, "hgemm", json_null());
  }

  /* the host BLAS (CPU devices), then CLBlast's defaults, then its stored tuned parameters */
  json_t *runs = json_array();
  json_object_set_new(jd, "runs", runs);
  if (bctx) {
    v[nv] = (variant){.name = "blas", .ctx = bctx, .enc = benc, .vr = vrs[nv]};
    nv++;
  }
  v[nv] = (variant){.name = only_blas ? "blas" : "untuned", .ctx = ctx, .enc = enc, .vr = vrs[nv]};
  nv++;
  for (int i = 0; i < nv; i++) {
    json_t *r = json_pack("{s:s, s:s}", "variant", v[i].name, "backend",
                          bertcl_ctx_gemm(v[i].ctx));
    json_array_append_new(runs, r);
    if (run_variant(v[i].ctx, v[i].enc, cfg, &bo->g, known_peak ? peak : 0, r, v[i].vr) !=
        BERTCL_OK) {
      json_object_set_new(jd, "error", json_string(bertcl_last_error(v[i].ctx)));
      goto done;
    }
  }
  if (!only_blas) {
    bc_tuning_apply_stored(ctx);
    bc_tuning_status ts;
    bc_tuning_status_get(ctx, &ts);
    char desc[1024];
    bc_gemm_params_str(&ts.params, desc, sizeof desc);
    json_t *jt = json_pack("{s:s, s:s, s:s, s:s}", "state", bc_tuning_state_name(ts.state),
                           "file", ts.path, "reason", ts.reason, "parameters", desc);
    if (ts.state == BC_TUNING_APPLIED || ts.state == BC_TUNING_DEFAULTS_BEST)
      json_object_set_new(
          jt, "tuned_for",
          json_pack("{s:s, s:i, s:i, s:s, s:i, s:f, s:f}", "config", ts.meta.config, "batch",
                    ts.meta.batch, "seq", ts.meta.seq, "date", ts.meta.date, "candidates",
                    ts.meta.evaluated, "baseline_ms", ts.meta.baseline_ms, "best_ms",
                    ts.meta.best_ms));
    else
      json_object_set_new(jt, "tuned_for", json_null());
    json_object_set_new(jd, "tuning", jt);
    if (ts.state == BC_TUNING_APPLIED) {
      v[nv] = (variant){.name = "tuned", .ctx = ctx, .enc = enc, .vr = vrs[nv]};
      json_t *r1 = json_pack("{s:s, s:s}", "variant", "tuned", "backend", "clblast");
      json_array_append_new(runs, r1);
      if (run_variant(ctx, enc, cfg, &bo->g, known_peak ? peak : 0, r1, v[nv].vr) != BERTCL_OK) {
        json_object_set_new(jd, "error", json_string(bertcl_last_error(ctx)));
        goto done;
      }
      nv++;
      printf("tuning   applied %s\n         (tuned for %s B=%d T=%d, %s)\n", desc, ts.meta.config,
             ts.meta.batch, ts.meta.seq, ts.meta.date);
    } else {
      printf("tuning   %s: %s\n", bc_tuning_state_name(ts.state),
             ts.state == BC_TUNING_DEFAULTS_BEST ? "stored search found CLBlast's defaults best"
                                                  : ts.reason);
    }
  } else {
    json_object_set_new(jd, "tuning", json_pack("{s:s, s:s, s:s, s:s, s:n}", "state", "disabled",
                                                "file", "", "reason", "--gemm blas",
                                                "parameters", "", "tuned_for"));
  }
  /* fine-tuning: one optimizer step of BertForSequenceClassification per backend (CLBlast
   * with the stored tuning applied) */
  int ft_B = bo->ft_batch, ft_T = bo->ft_seq < cfg->max_position ? bo->ft_seq : cfg->max_position;
  variant *ftv[2] = {NULL, NULL}; /* [0] the main context's, [1] the host BLAS context's */
  ftv[0] = &v[nv - 1];
  if (bctx) ftv[1] = &v[0];
  json_object_set_new(jd, "finetune", finetune_step(ftv[0], cfg, bo, ft_B, ft_T));
  if (ftv[1]) json_object_set_new(jd, "finetune_blas", finetune_step(ftv[1], cfg, bo, ft_B, ft_T));

  /* the tables: one column group per variant */
  printf("\nGEMM per call (device time, median; %% of the fp32 peak)\n");
  printf("   B    T shape              m      n      k batch");
  for (int i = 0; i < nv; i++) printf(" | %-25s", v[i].name);
  printf("\n%49s", "");
  for (int i = 0; i < nv; i++) printf(" | %8s %8s %6s ", "ms", "TFLOP/s", "%peak");
  printf("\n");
  static const char *const sn[BC_ENCODER_NSHAPES] = {"qkv", "attn_out", "ffn_up", "ffn_down",
                                                     "attn_scores", "attn_context"};
  for (int bi = 0; bi < bo->g.nb; bi++)
    for (int si = 0; si < bo->g.ns; si++) {
      int p = bi * bo->g.ns + si, B = bo->g.batches[bi], T = bo->g.seqs[si];
      bc_gemm_shape sh[BC_ENCODER_NSHAPES];
      bc_encoder_gemm_shapes(cfg, B, T, sh);
      for (int k = 0; k < BC_ENCODER_NSHAPES; k++) {
        printf("%4d %4d %-12s %6zu %6zu %6zu %5zu", B, T, sn[k], sh[k].m, sh[k].n, sh[k].k,
               sh[k].batch);
        for (int i = 0; i < nv; i++) {
          if (!v[i].vr->ok[p]) {
            printf(" | %25s", "(failed; see above)");
            continue;
          }
          double ms = v[i].vr->gemm_ms[p][k];
          double tf = bc_gemm_shape_flops(&sh[k]) / (ms * 1e-3) / 1e12;
          char pk[16] = "     -";
          if (known_peak) snprintf(pk, sizeof pk, "%6.1f", 100 * tf / peak);
          printf(" | %8.3f %8.3f %s ", ms, tf, pk);
        }
        printf("\n");
      }
      printf("%4d %4d %-12s %27s", B, T, "layer total", "");
      for (int i = 0; i < nv; i++)
        if (v[i].vr->ok[p])
          printf(" | %8.3f %17s", v[i].vr->layer_ms[p], "");
        else
          printf(" | %25s", "-");
      printf("\n");
    }
  printf("\nencoder forward (%d layers, wall clock, median of %d)\n", cfg->num_layers,
         bo->g.repeat);
  printf("   B    T");
  for (int i = 0; i < nv; i++) printf(" | %-38s", v[i].name);
  printf("\n%9s", "");
  for (int i = 0; i < nv; i++) printf(" | %8s %8s %9s %10s", "first ms", "ms", "seqs/s", "tokens/s");
  printf("\n");
  for (int bi = 0; bi < bo->g.nb; bi++)
    for (int si = 0; si < bo->g.ns; si++) {
      int p = bi * bo->g.ns + si, B = bo->g.batches[bi], T = bo->g.seqs[si];
      printf("%4d %4d", B, T);
      for (int i = 0; i < nv; i++) {
        if (!v[i].vr->enc_ok[p]) {
          printf(" | %38s", "(failed; see above)");
          continue;
        }
        double ms = v[i].vr->enc_ms[p];
        printf(" | %8.1f %8.2f %9.1f %10.0f", v[i].vr->enc_first[p], ms, B / (ms * 1e-3),
               B * T / (ms * 1e-3));
      }
      printf("\n");
    }
  if (ft_B > 0) {
    printf("\nfine-tuning step (BertForSequenceClassification, dropout 0.1, AdamW, wall clock)\n"
           "   B    T backend |  first ms  step ms  fwd+bwd ms  examples/s\n");
    for (int f = 1; f >= 0; f--) {
      variant *x = ftv[f];
      if (!x) continue;
      if (x->ft_state == 1)
        printf("%4d %4d %-7s | %9.1f %8.2f %11.2f %11.1f\n", ft_B, ft_T, bertcl_ctx_gemm(x->ctx),
               x->ft_first, x->fts.median, x->fbs.median, ft_B / (x->fts.median * 1e-3));
      else
        printf("%4d %4d %-7s | failed (see above)\n", ft_B, ft_T, bertcl_ctx_gemm(x->ctx));
    }
  } else {
    printf("\nfine-tuning step: not measured (--finetune none)\n");
  }
  *failed = 0;
done:
  bc_encoder_free(benc);
  bc_encoder_free(enc);
  bertcl_model_free(model);
  bertcl_ctx_free(bctx);
  bertcl_ctx_free(ctx);
  for (int i = 0; i < MAX_VARIANTS; i++) free(vrs[i]);
  return jd;
}

/* ---- --compare ----------------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static json_t *find_entry(json_t *arr, json_t *like, const char *key_name) {
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    if (json_integer_value(json_object_get(e, "batch")) ==
            json_integer_value(json_object_get(like, "batch")) &&
        json_integer_value(json_object_get(e, "seq")) ==
            json_integer_value(json_object_get(like, "seq")) &&
        (!key_name || strcmp(jstr(e, key_name), jstr(like, key_name)) == 0))
      return e;
  }
  return NULL;
}

static json_t *find_run(json_t *dev, const char *variant) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(dev, "runs"), i, r) {
    if (strcmp(jstr(r, "variant"), variant) == 0) return r;
  }
  return NULL;
}

static double med(json_t *o, const char *k) {
  return json_number_value(json_object_get(json_object_get(o, k), "median"));
}

static int compare(json_t *now, const char *path) {
  json_error_t je;
  json_t *old = json_load_file(path, 0, &je);
  if (!old) {
    bc_cli_error("bench: --compare %s: line %d: %s", path, je.line, je.text);
    return 1;
  }
  if (strcmp(jstr(old, "schema"), SCHEMA_ID) != 0) {
    bc_cli_error("bench: --compare %s: not a %s report", path, SCHEMA_ID);
    json_decref(old);
    return 1;
  }
  printf("\ncompared with %s (%s); ratios > 1: faster now\n", path, jstr(old, "date"));
  int matched = 0;
  size_t i, j;
  json_t *dn, *dold;
  json_array_foreach(json_object_get(now, "devices"), i, dn) {
    json_t *fn = json_object_get(dn, "facts");
    json_array_foreach(json_object_get(old, "devices"), j, dold) {
      json_t *fo = json_object_get(dold, "facts");
      if (strcmp(jstr(fn, "name"), jstr(fo, "name")) != 0) continue;
      matched++;
      printf("device %s (driver now %s, then %s)\n", jstr(fn, "name"), jstr(fn, "driver"),
             jstr(fo, "driver"));
      static const char *const bwk[] = {"device_copy", "h2d_pageable", "d2h_pageable",
                                        "h2d_pinned", "d2h_pinned"};
      for (int k = 0; k < 5; k++) {
        json_t *a = json_object_get(json_object_get(dn, "bandwidth"), bwk[k]);
        json_t *b = json_object_get(json_object_get(dold, "bandwidth"), bwk[k]);
        const char *fig = jstr(a, "figure");
        if (a && b && *fig && med(b, fig) > 0)
          printf("  bandwidth %-13s %8.2f GB/s now, %8.2f then: %6.2fx\n", bwk[k], med(a, fig),
                 med(b, fig), med(a, fig) / med(b, fig));
      }
      json_t *ftn = json_object_get(dn, "finetune"), *fto = json_object_get(dold, "finetune");
      if (json_object_get(ftn, "step_ms") && json_object_get(fto, "step_ms")) {
        double a = med(ftn, "step_ms"), b = med(fto, "step_ms");
        printf("  fine-tuning step B=%-4lld T=%-4lld %9.2f ms now, %9.2f then: %6.2fx\n",
               json_integer_value(json_object_get(ftn, "batch")),
               json_integer_value(json_object_get(ftn, "seq")), a, b, b / a);
      }
      static const char *const variants[] = {"untuned", "tuned"};
      for (int v = 0; v < 2; v++) {
        json_t *rn = find_run(dn, variants[v]), *ro = find_run(dold, variants[v]);
        if (!rn || !ro) continue;
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(rn, "gemm"), k, e) {
          json_t *o = find_entry(json_object_get(ro, "gemm"), e, "shape");
          if (!o || !json_object_get(e, "device_ms") || !json_object_get(o, "device_ms")) continue;
          double a = med(e, "device_ms"), b = med(o, "device_ms");
          printf("  %-7s gemm   B=%-4lld T=%-4lld %-12s %9.3f ms now, %9.3f then: %6.2fx\n",
                 variants[v], json_integer_value(json_object_get(e, "batch")),
                 json_integer_value(json_object_get(e, "seq")), jstr(e, "shape"), a, b, b / a);
        }
        json_array_foreach(json_object_get(rn, "encoder"), k, e) {
          json_t *o = find_entry(json_object_get(ro, "encoder"), e, NULL);
          if (!o || !json_object_get(e, "seqs_per_s") || !json_object_get(o, "seqs_per_s"))
            continue;
          double a = json_number_value(json_object_get(e, "seqs_per_s"));
          double b = json_number_value(json_object_get(o, "seqs_per_s"));
          printf("  %-7s encoder B=%-4lld T=%-4lld %10.1f seqs/s now, %10.1f then: %6.2fx\n",
                 variants[v], json_integer_value(json_object_get(e, "batch")),
                 json_integer_value(json_object_get(e, "seq")), a, b, a / b);
        }
      }
    }
  }
  if (!matched) printf("no device of this report is in %s\n", path);
  json_decref(old);
  return 0;
}

/* ---- entry --------------------------------------------------------------------------------- */

int bc_cmd_bench(int argc, char **argv) {
  const char *device = NULL, *json_path = NULL, *compare_path = NULL;
  bench_opts bo = {
      .config = NULL, .model_dir = NULL, .bw_bytes = 64u << 20, .ft_batch = 32, .ft_seq = 128};
  bo.g.warmup = 2;
  bo.g.repeat = 10;
  bo.g.nb = 4;
  bo.g.batches[0] = 1, bo.g.batches[1] = 8, bo.g.batches[2] = 32, bo.g.batches[3] = 128;
  bo.g.ns = 2;
  bo.g.seqs[0] = 128, bo.g.seqs[1] = 512;
  int seq_given = 0;
  for (int i = 1; i < argc; i += 2) { /* every option takes a value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      bc_cli_error("bench: unknown option or missing value '%s' (see bertcl bench --help)", a);
      return 2;
    }
    long x = 0;
    char *end = NULL;
    if (strcmp(a, "--device") == 0) {
      device = v;
    } else if (strcmp(a, "--gemm") == 0) {
      if (strcmp(v, "auto") && strcmp(v, "clblast") && strcmp(v, "blas")) {
        bc_cli_error("bench: --gemm takes auto, clblast or blas, not '%s'", v);
        return 2;
      }
      bo.gemm = v;
    } else if (strcmp(a, "--config") == 0) {
      bo.config = v;
    } else if (strcmp(a, "--model") == 0 || strcmp(a, "-m") == 0) {
      bo.model_dir = v;
    } else if (strcmp(a, "--batch") == 0) {
      if (!parse_list(a, v, bo.g.batches, &bo.g.nb, 1 << 16)) return 2;
    } else if (strcmp(a, "--seq") == 0) {
      if (!parse_list(a, v, bo.g.seqs, &bo.g.ns, 1 << 16)) return 2;
      seq_given = 1;
    } else if (strcmp(a, "--finetune") == 0) {
      char tail = 0;
      if (strcmp(v, "none") == 0) {
        bo.ft_batch = 0;
      } else if (sscanf(v, "%dx%d%c", &bo.ft_batch, &bo.ft_seq, &tail) != 2 || bo.ft_batch < 1 ||
                 bo.ft_seq < 1 || bo.ft_batch > 4096 || bo.ft_seq > 65536) {
        bc_cli_error("bench: --finetune takes BxT (e.g. 32x128) or none, not '%s'", v);
        return 2;
      }
    } else if (strcmp(a, "--json") == 0) {
      json_path = v;
    } else if (strcmp(a, "--compare") == 0) {
      compare_path = v;
    } else if (strcmp(a, "--warmup") == 0 || strcmp(a, "--repeat") == 0 ||
               strcmp(a, "--bw-mib") == 0) {
      x = strtol(v, &end, 10);
      int lo = strcmp(a, "--warmup") == 0 ? 0 : 1;
      if (!*v || *end || x < lo || x > 100000) {
        bc_cli_error("bench: %s wants an integer >= %d, got '%s'", a, lo, v);
        return 2;
      }
      if (a[2] == 'w') bo.g.warmup = (int)x;
      else if (a[2] == 'r') bo.g.repeat = (int)x;
      else bo.bw_bytes = (size_t)x << 20;
    } else {
      bc_cli_error("bench: unknown option '%s' (see bertcl bench --help)", a);
      return 2;
    }
  }
  if (bo.config && bo.model_dir) {
    bc_cli_error("bench: give --config or --model, not both");
    return 2;
  }
  if (!bo.model_dir && !bo.config) bo.config = "base";
  bc_config cfg;
  bc_err err = {0};
  if (!bo.model_dir && bc_random_config(&err, bo.config, &cfg) != BERTCL_OK) {
    bc_cli_error("bench: %s", err.msg);
    return 2;
  }
  if (!bo.model_dir) { /* sequence lengths beyond the model's positions are dropped */
    int n = 0;
    for (int i = 0; i < bo.g.ns; i++)
      if (bo.g.seqs[i] <= cfg.max_position) bo.g.seqs[n++] = bo.g.seqs[i];
    if (n < bo.g.ns)
      fprintf(stderr, "bertcl: bench: sequence lengths above %d (the model's positions) %s\n",
              cfg.max_position, seq_given ? "dropped" : "dropped from the default grid");
    if (n == 0) {
      if (seq_given) {
        bc_cli_error("bench: no sequence length fits %s (at most %d)", bo.config, cfg.max_position);
        return 2;
      }
      bo.g.seqs[n++] = cfg.max_position;
    }
    bo.g.ns = n;
  }
  /* CLBlast's defaults are measured first; bench applies the stored parameters itself */
  bc_tuning_set_auto(0);

  time_t tt = time(NULL);
  struct tm tmv;
  char date[32];
  gmtime_r(&tt, &tmv);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  char cmd[2048] = "bertcl";
  for (int i = 0; i < argc; i++) {
    size_t o = strlen(cmd);
    snprintf(cmd + o, sizeof cmd - o, " %s", argv[i]);
  }
  json_t *jb = json_array(), *js = json_array();
  for (int i = 0; i < bo.g.nb; i++) json_array_append_new(jb, json_integer(bo.g.batches[i]));
  for (int i = 0; i < bo.g.ns; i++) json_array_append_new(js, json_integer(bo.g.seqs[i]));
  json_t *root = json_pack(
      "{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:o, s:o, s:i, s:i}, s:[]}", "schema", SCHEMA_ID,
      "bertcl_version", bertcl_version(), "date", date, "command", cmd, "model", "source",
      bo.model_dir ? "directory" : "random", "name", bo.model_dir ? bo.model_dir : bo.config,
      "settings", "batches", jb, "seqs", js, "warmup", bo.g.warmup, "repeat", bo.g.repeat,
      "devices");
  json_t *devs = json_object_get(root, "devices");
  int failures = 0, ndev = 0;
  if (device && strcmp(device, "all") == 0) {
    bertcl_device_info *list = NULL;
    size_t count = 0;
    if (bertcl_devices_list(&list, &count) != BERTCL_OK) {
      bc_cli_error("bench: %s", bertcl_last_error(NULL));
      json_decref(root);
      return 1;
    }
    for (size_t i = 0; i < count; i++) {
      char sel[32];
      snprintf(sel, sizeof sel, "%d:%d", list[i].platform_index, list[i].device_index);
      int f;
      json_array_append_new(devs, bench_device(sel, &bo, &f));
      failures += f;
      ndev++;
    }
    bertcl_devices_free(list);
    if (count == 0) {
      bc_cli_error("bench: no OpenCL device");
      failures++;
    }
  } else {
    int f;
    json_array_append_new(devs, bench_device(device, &bo, &f));
    failures += f;
    ndev++;
  }
  /* the model description (from the configuration actually run) */
  if (!bo.model_dir) {
    json_t *m = json_object_get(root, "model");
    json_object_set_new(m, "layers", json_integer(cfg.num_layers));
    json_object_set_new(m, "hidden", json_integer(cfg.hidden_size));
    json_object_set_new(m, "heads", json_integer(cfg.num_heads));
    json_object_set_new(m, "intermediate", json_integer(cfg.intermediate_size));
    json_object_set_new(m, "vocab", json_integer(cfg.vocab_size));
  }
  int rc = failures ? 1 : 0;
  if (json_path) {
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    if (!text || bc_write_file_atomic(&err, json_path, text, strlen(text)) != BERTCL_OK) {
      bc_cli_error("bench: %s", text ? err.msg : "out of memory");
      rc = 1;
    } else {
      printf("\nJSON report: %s\n", json_path);
    }
    free(text);
  }
  if (compare_path && compare(root, compare_path) != 0) rc = 1;
  json_decref(root);
  (void)ndev;
  return rc;
}
