/* bertcl_bench (include/bertcl.h): device facts, bandwidth, GEMM on the encoder's shapes,
 * encoder throughput and one fine-tuning step, with CLBlast's defaults and with the tuned
 * parameters side by side (the host BLAS first on CPU devices); the tables as progress events
 * and a JSON report. */
#define _POSIX_C_SOURCE 200809L
#include "bench/bench.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "encoder/encoder.h"
#include "gemm/tune.h"
#include "gemm/tuning.h"
#include "model/random.h"

#define MAX_GRID BERTCL_BENCH_MAX_GRID

/* ---- output: the lines bertcl bench prints, as progress events ----------------------------- */

static void send(bc_bench_out *o, bertcl_event ev, const char *msg) {
  if (!o->fn) return;
  bertcl_progress p;
  memset(&p, 0, sizeof p);
  p.event = ev;
  p.message = msg;
  (void)o->fn(&p, o->user);
}

void bc_bench_printf(bc_bench_out *o, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  for (const char *c = buf; *c; c++) {
    if (*c == '\n') {
      o->line[o->len] = '\0';
      send(o, BERTCL_EVENT_INFO, o->line);
      o->len = 0;
    } else if (o->len + 1 < sizeof o->line) {
      o->line[o->len++] = *c;
    }
  }
}

void bc_bench_warn(bc_bench_out *o, const char *fmt, ...) {
  char buf[BC_ERR_MSG_MAX + 256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  send(o, BERTCL_EVENT_WARNING, buf);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
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
static int run_variant(bc_bench_out *out, bertcl_ctx *ctx, bc_encoder *enc, const bc_config *cfg,
                       const grid *g, double peak_tflops, json_t *jrun, variant_result *vr) {
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
        bc_bench_warn(out, "GEMM B=%d T=%d: %s", B, T, bertcl_last_error(ctx));
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
        bc_bench_warn(out, "encoder B=%d T=%d: %s", B, T, msg);
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
  int ft_batch, ft_seq;  /* fine-tuning step shape; ft_batch 0 = not measured */
  const char *gemm;      /* NULL/"auto": every backend the device runs; "clblast"; "blas" */
  const char *cache_dir;
  bc_bench_out out;
  int fail_status;       /* the first device failure: its status and message */
  char fail_msg[BC_ERR_MSG_MAX];
} bench_opts;

/* Records a device's failure: the first one is bertcl_bench's status and message. */
static void device_failed(bench_opts *bo, int st, const char *msg) {
  if (bo->fail_status != BERTCL_OK) return;
  bo->fail_status = st != BERTCL_OK ? st : BERTCL_ERR_INTERNAL;
  snprintf(bo->fail_msg, sizeof bo->fail_msg, "%s", msg);
}

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
static json_t *finetune_step(variant *v, const bc_config *cfg, bench_opts *bo, int B,
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
    bc_bench_warn(&bo->out, "fine-tuning step B=%d T=%d (%s): %s", B, T, bertcl_ctx_gemm(ctx),
                  bertcl_last_error(ctx));
    v->ft_state = -1;
  }
  free(sv);
  free(fv);
  return j;
}

static void print_rule(bench_opts *bo) {
  bc_bench_printf(
      &bo->out,
      "----------------------------------------------------------------------------------\n");
}

/* The tables bertcl bench prints: one column group per variant. peak in TFLOP/s, 0: unknown;
 * ftv as in bench_device. */
static void print_tables(bench_opts *bo, const bc_config *cfg, variant *v, int nv, double peak,
                         variant *ftv[2], int ft_B, int ft_T) {
  int known_peak = peak > 0;
  bc_bench_printf(&bo->out, "\nGEMM per call (device time, median; %% of the fp32 peak)\n");
  bc_bench_printf(&bo->out, "   B    T shape              m      n      k batch");
  for (int i = 0; i < nv; i++) bc_bench_printf(&bo->out, " | %-25s", v[i].name);
  bc_bench_printf(&bo->out, "\n%49s", "");
  for (int i = 0; i < nv; i++)
    bc_bench_printf(&bo->out, " | %8s %8s %6s ", "ms", "TFLOP/s", "%peak");
  bc_bench_printf(&bo->out, "\n");
  static const char *const sn[BC_ENCODER_NSHAPES] = {"qkv",      "attn_out",    "ffn_up",
                                                     "ffn_down", "attn_scores", "attn_context"};
  for (int bi = 0; bi < bo->g.nb; bi++)
    for (int si = 0; si < bo->g.ns; si++) {
      int p = bi * bo->g.ns + si, B = bo->g.batches[bi], T = bo->g.seqs[si];
      bc_gemm_shape sh[BC_ENCODER_NSHAPES];
      bc_encoder_gemm_shapes(cfg, B, T, sh);
      for (int k = 0; k < BC_ENCODER_NSHAPES; k++) {
        bc_bench_printf(&bo->out, "%4d %4d %-12s %6zu %6zu %6zu %5zu", B, T, sn[k], sh[k].m,
                        sh[k].n, sh[k].k, sh[k].batch);
        for (int i = 0; i < nv; i++) {
          if (!v[i].vr->ok[p]) {
            bc_bench_printf(&bo->out, " | %25s", "(failed; see above)");
            continue;
          }
          double ms = v[i].vr->gemm_ms[p][k];
          double tf = bc_gemm_shape_flops(&sh[k]) / (ms * 1e-3) / 1e12;
          char pk[16] = "     -";
          if (known_peak) snprintf(pk, sizeof pk, "%6.1f", 100 * tf / peak);
          bc_bench_printf(&bo->out, " | %8.3f %8.3f %s ", ms, tf, pk);
        }
        bc_bench_printf(&bo->out, "\n");
      }
      bc_bench_printf(&bo->out, "%4d %4d %-12s %27s", B, T, "layer total", "");
      for (int i = 0; i < nv; i++)
        if (v[i].vr->ok[p])
          bc_bench_printf(&bo->out, " | %8.3f %17s", v[i].vr->layer_ms[p], "");
        else
          bc_bench_printf(&bo->out, " | %25s", "-");
      bc_bench_printf(&bo->out, "\n");
    }
  bc_bench_printf(&bo->out, "\nencoder forward (%d layers, wall clock, median of %d)\n",
                  cfg->num_layers, bo->g.repeat);
  bc_bench_printf(&bo->out, "   B    T");
  for (int i = 0; i < nv; i++) bc_bench_printf(&bo->out, " | %-38s", v[i].name);
  bc_bench_printf(&bo->out, "\n%9s", "");
  for (int i = 0; i < nv; i++)
    bc_bench_printf(&bo->out, " | %8s %8s %9s %10s", "first ms", "ms", "seqs/s", "tokens/s");
  bc_bench_printf(&bo->out, "\n");
  for (int bi = 0; bi < bo->g.nb; bi++)
    for (int si = 0; si < bo->g.ns; si++) {
      int p = bi * bo->g.ns + si, B = bo->g.batches[bi], T = bo->g.seqs[si];
      bc_bench_printf(&bo->out, "%4d %4d", B, T);
      for (int i = 0; i < nv; i++) {
        if (!v[i].vr->enc_ok[p]) {
          bc_bench_printf(&bo->out, " | %38s", "(failed; see above)");
          continue;
        }
        double ms = v[i].vr->enc_ms[p];
        bc_bench_printf(&bo->out, " | %8.1f %8.2f %9.1f %10.0f", v[i].vr->enc_first[p], ms,
                        B / (ms * 1e-3), B * T / (ms * 1e-3));
      }
      bc_bench_printf(&bo->out, "\n");
    }
  if (ft_B > 0) {
    bc_bench_printf(
        &bo->out,
        "\nfine-tuning step (BertForSequenceClassification, dropout 0.1, AdamW, wall clock)\n"
        "   B    T backend |  first ms  step ms  fwd+bwd ms  examples/s\n");
    for (int f = 1; f >= 0; f--) {
      variant *x = ftv[f];
      if (!x) continue;
      if (x->ft_state == 1)
        bc_bench_printf(&bo->out, "%4d %4d %-7s | %9.1f %8.2f %11.2f %11.1f\n", ft_B, ft_T,
                        bertcl_ctx_gemm(x->ctx), x->ft_first, x->fts.median, x->fbs.median,
                        ft_B / (x->fts.median * 1e-3));
      else
        bc_bench_printf(&bo->out, "%4d %4d %-7s | failed (see above)\n", ft_B, ft_T,
                        bertcl_ctx_gemm(x->ctx));
    }
  } else {
    bc_bench_printf(&bo->out, "\nfine-tuning step: not measured (--finetune none)\n");
  }
}

static json_t *bench_device(const char *selector, bench_opts *bo) {
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
  int st = BERTCL_OK;
  int only_blas = bo->gemm && !strcmp(bo->gemm, "blas");
  int both = !bo->gemm || !strcmp(bo->gemm, "auto");
  /* the main context runs CLBlast (defaults, then stored tuning) unless --gemm blas */
  bertcl_ctx_options copt = {.device = selector, .profiling = 1, .cache_dir = bo->cache_dir,
                             .gemm = only_blas ? "blas" : "clblast"};
  if (!vrs[0] || !vrs[1] || !vrs[2]) {
    json_object_set_new(jd, "error", json_string("out of memory"));
    device_failed(bo, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = bertcl_ctx_create(&ctx, &copt)) != BERTCL_OK) {
    json_object_set_new(jd, "error", json_string(bertcl_last_error(NULL)));
    bc_bench_warn(&bo->out, "%s", bertcl_last_error(NULL));
    device_failed(bo, st, bertcl_last_error(NULL));
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
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:b}", "name",
                d->name, "vendor", d->vendor, "platform", d->platform_name, "platform_version",
                d->platform_version, "opencl_version", d->version, "driver", d->driver_version,
                "clblast", bc_clblast_version(), "type",
                d->type == BERTCL_DEVICE_GPU   ? "gpu"
                : d->type == BERTCL_DEVICE_CPU ? "cpu"
                                               : "other",
                "compute_units", (int)d->compute_units, "max_clock_mhz", (int)d->max_clock_mhz,
                "global_mem_bytes", (json_int_t)d->global_mem_bytes, "local_mem_bytes",
                (json_int_t)d->local_mem_bytes, "max_alloc_bytes", (json_int_t)d->max_alloc_bytes,
                "fp16", d->fp16));
  json_object_set_new(jd, "peak",
                      json_pack("{s:o, s:o, s:s}", "fp32_tflops", num_or_null(peak, known_peak),
                                "fp16_tflops", json_null(), "basis", basis));
  print_rule(bo);
  bc_bench_printf(&bo->out, "device   %s | %s | %s | driver %s | CLBlast %s\n", d->name,
                  d->platform_name, d->version, d->driver_version, bc_clblast_version());
  bc_bench_printf(&bo->out,
                  "         %u compute units, %u MHz, %.1f GiB, local %llu KiB, fp16 %s\n",
                  d->compute_units, d->max_clock_mhz, d->global_mem_bytes / 1073741824.0,
                  (unsigned long long)(d->local_mem_bytes / 1024), d->fp16 ? "yes" : "no");
  if (known_peak)
    bc_bench_printf(&bo->out, "peak     fp32 %.2f TFLOP/s (%s)\n", peak, basis);
  else
    bc_bench_printf(&bo->out, "peak     fp32 unknown (%s)\n", basis);
  {
    char line[1024];
    json_t *jb = json_array();
    bertcl_ctx *cs[2] = {bctx, ctx};
    for (int c = 0; c < 2; c++) {
      if (!cs[c]) continue;
      bertcl_ctx_gemm_info(cs[c], line, sizeof line);
      bc_bench_printf(&bo->out, "gemm     %s\n", line);
      json_array_append_new(jb, json_string(line));
    }
    if (gemm_why[0]) {
      bc_bench_printf(&bo->out, "gemm     no host BLAS backend: %s\n", gemm_why);
      json_array_append_new(jb, json_sprintf("no host BLAS backend: %s", gemm_why));
    }
    json_object_set_new(jd, "gemm_backends", jb);
  }

  /* bandwidth */
  json_t *jbw = json_object();
  json_object_set_new(jbw, "bytes", json_integer((json_int_t)bo->bw_bytes));
  double bw[5] = {0};
  if ((st = bandwidth(ctx, bo->bw_bytes, 1, bo->g.repeat, jbw, bw)) != BERTCL_OK) {
    json_object_set_new(jbw, "error", json_string(bertcl_last_error(ctx)));
    bc_bench_warn(&bo->out, "bandwidth: %s", bertcl_last_error(ctx));
    device_failed(bo, st, bertcl_last_error(ctx));
    json_object_set_new(jd, "bandwidth", jbw);
    goto done;
  }
  json_object_set_new(jd, "bandwidth", jbw);
  bc_bench_printf(&bo->out,
                  "GB/s     device copy %.1f | H2D pageable %.2f, pinned %.2f | D2H pageable %.2f, "
                  "pinned %.2f  (%zu MiB, median)\n",
                  bw[0], bw[1], bw[3], bw[2], bw[4], bo->bw_bytes >> 20);

  /* model and encoder: first-call costs */
  bc_err err = {0};
  double t0 = now_s();
  st = bo->model_dir ? bertcl_model_load(&model, bo->model_dir)
                     : bc_model_random(&err, bo->config, 42, &model);
  double model_ms = (now_s() - t0) * 1e3;
  if (st != BERTCL_OK) {
    const char *m = bo->model_dir ? bertcl_last_error(NULL) : err.msg;
    json_object_set_new(jd, "error", json_string(m));
    bc_bench_warn(&bo->out, "%s", m);
    device_failed(bo, st, m);
    goto done;
  }
  const bc_config *cfg = bc_model_config(model);
  bc_program_stats before = ctx->stats;
  t0 = now_s();
  if ((st = bc_encoder_create(ctx, model, &enc)) != BERTCL_OK) {
    json_object_set_new(jd, "error", json_string(bertcl_last_error(ctx)));
    bc_bench_warn(&bo->out, "%s", bertcl_last_error(ctx));
    device_failed(bo, st, bertcl_last_error(ctx));
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
  bc_bench_printf(
      &bo->out,
      "setup    %s %.0f ms; encoder create (programs %llu built, %llu cached; %.0f MB of "
      "weights uploaded) %.0f ms\n",
      bo->model_dir ? "model load" : "random weights", model_ms,
      (unsigned long long)(ctx->stats.source_builds - before.source_builds),
      (unsigned long long)(ctx->stats.cache_hits - before.cache_hits), mi.num_params * 4 / 1e6,
      enc_ms);
  if (bctx && bc_encoder_create(bctx, model, &benc) != BERTCL_OK) {
    bc_bench_warn(&bo->out, "host BLAS context: %s", bertcl_last_error(bctx));
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
      bc_bench_printf(&bo->out, "HGEMM    ffn_up %zux%zux%zu: %.3f ms, %.2f TFLOP/s\n", sh[2].m,
                      sh[2].n, sh[2].k, tm.device.median, tf);
    } else {
      json_object_set_new(jd, "hgemm", json_pack("{s:s}", "error", bertcl_last_error(ctx)));
      bc_bench_printf(&bo->out, "HGEMM    failed: %s\n", bertcl_last_error(ctx));
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
    if ((st = run_variant(&bo->out, v[i].ctx, v[i].enc, cfg, &bo->g, known_peak ? peak : 0, r,
                          v[i].vr)) != BERTCL_OK) {
      json_object_set_new(jd, "error", json_string(bertcl_last_error(v[i].ctx)));
      bc_bench_warn(&bo->out, "%s", bertcl_last_error(v[i].ctx));
      device_failed(bo, st, bertcl_last_error(v[i].ctx));
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
      if ((st = run_variant(&bo->out, ctx, enc, cfg, &bo->g, known_peak ? peak : 0, r1,
                            v[nv].vr)) != BERTCL_OK) {
        json_object_set_new(jd, "error", json_string(bertcl_last_error(ctx)));
        bc_bench_warn(&bo->out, "%s", bertcl_last_error(ctx));
        device_failed(bo, st, bertcl_last_error(ctx));
        goto done;
      }
      nv++;
      bc_bench_printf(&bo->out, "tuning   applied %s\n         (tuned for %s B=%d T=%d, %s)\n",
                      desc, ts.meta.config, ts.meta.batch, ts.meta.seq, ts.meta.date);
    } else {
      bc_bench_printf(&bo->out, "tuning   %s: %s\n", bc_tuning_state_name(ts.state),
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

  print_tables(bo, cfg, v, nv, known_peak ? peak : 0, ftv, ft_B, ft_T);
done:
  bc_encoder_free(benc);
  bc_encoder_free(enc);
  bertcl_model_free(model);
  bertcl_ctx_free(bctx);
  bertcl_ctx_free(ctx);
  for (int i = 0; i < MAX_VARIANTS; i++) free(vrs[i]);
  return jd;
}

/* ---- entry --------------------------------------------------------------------------------- */

void bertcl_bench_options_init(bertcl_bench_options *opt) {
  if (!opt) return;
  memset(opt, 0, sizeof *opt);
  opt->warmup = 2;
  opt->repeat = 10;
  opt->bw_bytes = (size_t)64 << 20;
  opt->finetune_batch = 32;
  opt->finetune_seq = 128;
}

/* The grid, the shapes and the backend of opt, checked, into bo. */
static int bench_setup(const bertcl_bench_options *opt, bench_opts *bo) {
  static const int def_batches[] = {1, 8, 32, 128}, def_seqs[] = {128, 512};
  const int *lists[2] = {opt->batches ? opt->batches : def_batches,
                         opt->seqs ? opt->seqs : def_seqs};
  int counts[2] = {opt->batches ? opt->nbatches : 4, opt->seqs ? opt->nseqs : 2};
  int *dst[2] = {bo->g.batches, bo->g.seqs};
  static const char *const what[2] = {"batch sizes", "sequence lengths"};
  for (int l = 0; l < 2; l++) {
    if (counts[l] < 1 || counts[l] > MAX_GRID)
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bench: %d %s (1 to %d)", counts[l], what[l],
                     MAX_GRID);
    for (int i = 0; i < counts[l]; i++) {
      if (lists[l][i] < 1 || lists[l][i] > 1 << 16)
        return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bench: %s must lie in [1, 65536], not %d",
                       what[l], lists[l][i]);
      dst[l][i] = lists[l][i];
    }
  }
  bo->g.nb = counts[0];
  bo->g.ns = counts[1];
  bo->g.warmup = opt->warmup;
  bo->g.repeat = opt->repeat;
  if (opt->warmup < 0 || opt->repeat < 1 || opt->bw_bytes < 1)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "bench: warmup %d (>= 0), repeat %d (>= 1), bandwidth bytes %zu (>= 1)",
                   opt->warmup, opt->repeat, opt->bw_bytes);
  if (opt->finetune_batch < 0 || (opt->finetune_batch > 0 && opt->finetune_seq < 1))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bench: fine-tuning step shape %d x %d",
                   opt->finetune_batch, opt->finetune_seq);
  if (opt->gemm && strcmp(opt->gemm, "auto") && strcmp(opt->gemm, "clblast") &&
      strcmp(opt->gemm, "blas"))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "bench: gemm takes auto, clblast or blas, not '%s'", opt->gemm);
  if (opt->config && opt->model_dir)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bench: give config or model_dir, not both");
  bo->model_dir = opt->model_dir;
  bo->config = opt->model_dir ? NULL : opt->config ? opt->config : "base";
  bo->bw_bytes = opt->bw_bytes;
  bo->ft_batch = opt->finetune_batch;
  bo->ft_seq = opt->finetune_seq;
  bo->gemm = opt->gemm;
  bo->cache_dir = opt->cache_dir;
  return BERTCL_OK;
}

int bertcl_bench(const bertcl_bench_options *opt, bertcl_progress_fn progress, void *user,
                 char **report_json) {
  if (report_json) *report_json = NULL;
  if (!opt) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_bench: opt is NULL");
  bench_opts *bo = calloc(1, sizeof *bo);
  if (!bo) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  bo->out.fn = progress;
  bo->out.user = user;
  json_t *root = NULL;
  bc_config cfg;
  bc_err err = {0};
  int st = bench_setup(opt, bo);
  if (st == BERTCL_OK && !bo->model_dir &&
      (st = bc_random_config(&err, bo->config, &cfg)) != BERTCL_OK)
    bc_err_to_thread(&err);
  if (st != BERTCL_OK) goto fail;
  if (!bo->model_dir) { /* sequence lengths beyond the model's positions are dropped */
    int n = 0;
    for (int i = 0; i < bo->g.ns; i++)
      if (bo->g.seqs[i] <= cfg.max_position) bo->g.seqs[n++] = bo->g.seqs[i];
    if (n < bo->g.ns)
      bc_bench_warn(&bo->out, "sequence lengths above %d (the model's positions) %s",
                    cfg.max_position, opt->seqs ? "dropped" : "dropped from the default grid");
    if (n == 0) {
      if (opt->seqs) {
        st = bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "no sequence length fits %s (at most %d)",
                     bo->config, cfg.max_position);
        goto fail;
      }
      bo->g.seqs[n++] = cfg.max_position;
    }
    bo->g.ns = n;
  }

  time_t tt = time(NULL);
  struct tm tmv;
  char date[32];
  gmtime_r(&tt, &tmv);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  json_t *jb = json_array(), *js = json_array();
  for (int i = 0; i < bo->g.nb; i++) json_array_append_new(jb, json_integer(bo->g.batches[i]));
  for (int i = 0; i < bo->g.ns; i++) json_array_append_new(js, json_integer(bo->g.seqs[i]));
  root = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:o, s:o, s:i, s:i}, s:[]}", "schema",
                   BC_BENCH_SCHEMA, "bertcl_version", bertcl_version(), "date", date, "command",
                   opt->command ? opt->command : "", "model", "source",
                   bo->model_dir ? "directory" : "random", "name",
                   bo->model_dir ? bo->model_dir : bo->config, "settings", "batches", jb, "seqs",
                   js, "warmup", bo->g.warmup, "repeat", bo->g.repeat, "devices");
  if (!root) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  json_t *devs = json_object_get(root, "devices");
  /* CLBlast's defaults are measured first; bench applies the stored parameters itself */
  int auto_was = bc_tuning_set_auto(0);
  if (opt->device && strcmp(opt->device, "all") == 0) {
    bertcl_device_info *list = NULL;
    size_t count = 0;
    if ((st = bertcl_devices_list(&list, &count)) != BERTCL_OK) {
      bc_tuning_set_auto(auto_was);
      goto fail;
    }
    for (size_t i = 0; i < count; i++) {
      char sel[32];
      snprintf(sel, sizeof sel, "%d:%d", list[i].platform_index, list[i].device_index);
      json_array_append_new(devs, bench_device(sel, bo));
    }
    bertcl_devices_free(list);
    if (count == 0) {
      bc_bench_warn(&bo->out, "no OpenCL device");
      device_failed(bo, BERTCL_ERR_NO_DEVICE, "no OpenCL device");
    }
  } else {
    json_array_append_new(devs, bench_device(opt->device, bo));
  }
  bc_tuning_set_auto(auto_was);
  /* the model description (from the configuration actually run) */
  if (!bo->model_dir) {
    json_t *m = json_object_get(root, "model");
    json_object_set_new(m, "layers", json_integer(cfg.num_layers));
    json_object_set_new(m, "hidden", json_integer(cfg.hidden_size));
    json_object_set_new(m, "heads", json_integer(cfg.num_heads));
    json_object_set_new(m, "intermediate", json_integer(cfg.intermediate_size));
    json_object_set_new(m, "vocab", json_integer(cfg.vocab_size));
  }
  if (report_json) {
    *report_json = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    if (!*report_json) {
      st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory for the report");
      goto fail;
    }
  }
  st = bo->fail_status;
  if (st != BERTCL_OK) {
    bc_err e = {.status = st};
    snprintf(e.msg, sizeof e.msg, "%s", bo->fail_msg);
    bc_err_to_thread(&e);
  }
fail:
  json_decref(root);
  free(bo);
  return st;
}
