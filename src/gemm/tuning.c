/* Tuned CLBlast GEMM parameters: file format, per-device key, applying them once per process. */
#define _POSIX_C_SOURCE 200809L
#include "io/durable.h"
#include "gemm/tuning.h"

#include <clblast_c.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BERTCL_CLBLAST_VERSION
#define BERTCL_CLBLAST_VERSION "unknown"
#endif

#define FORMAT_NAME "bertcl-clblast-tuning/1"

const char *const bc_xgemm_names[BC_XGEMM_NPARAMS] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
const char *const bc_xgemm_direct_names[BC_XGEMM_DIRECT_NPARAMS] = {
    "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND", "WGD"};

const char *bc_clblast_version(void) { return BERTCL_CLBLAST_VERSION; }

static void params_group(char *out, size_t n, size_t *o, const char *kernel,
                         const char *const *names, const size_t *vals, size_t count) {
  int w = snprintf(out + *o, n - *o, "%s%s{", *o ? " " : "", kernel);
  if (w > 0) *o = *o + (size_t)w < n ? *o + (size_t)w : n - 1;
  for (size_t i = 0; i < count; i++) {
    w = snprintf(out + *o, n - *o, "%s%s=%zu", i ? " " : "", names[i], vals[i]);
    if (w > 0) *o = *o + (size_t)w < n ? *o + (size_t)w : n - 1;
  }
  w = snprintf(out + *o, n - *o, "}");
  if (w > 0) *o = *o + (size_t)w < n ? *o + (size_t)w : n - 1;
}

void bc_gemm_params_str(const bc_gemm_params *p, char *out, size_t n) {
  size_t o = 0;
  if (n == 0) return;
  out[0] = '\0';
  if (p->has_xgemm) params_group(out, n, &o, "Xgemm", bc_xgemm_names, p->xgemm, BC_XGEMM_NPARAMS);
  if (p->has_direct)
    params_group(out, n, &o, "XgemmDirect", bc_xgemm_direct_names, p->direct,
                 BC_XGEMM_DIRECT_NPARAMS);
  if (p->has_routine) {
    const char *rn[1] = {BC_GEMM_ROUTINE_NAME};
    params_group(out, n, &o, "GemmRoutine", rn, &p->min_indirect, 1);
  }
  if (o == 0) snprintf(out, n, "defaults");
}

int bc_tuning_override(bertcl_ctx *ctx, const bc_gemm_params *p) {
  struct {
    int on;
    const char *kernel;
    size_t count;
    const char *const *names;
    const size_t *vals;
  } k[3] = {{p->has_xgemm, "Xgemm", BC_XGEMM_NPARAMS, bc_xgemm_names, p->xgemm},
            {p->has_direct, "XgemmDirect", BC_XGEMM_DIRECT_NPARAMS, bc_xgemm_direct_names,
             p->direct},
            {p->has_routine, "GemmRoutine", 1, NULL, &p->min_indirect}};
  const char *rn[1] = {BC_GEMM_ROUTINE_NAME};
  for (int i = 0; i < 3; i++) {
    if (!k[i].on) continue;
    const char **names = (const char **)(k[i].names ? k[i].names : rn);
    CLBlastStatusCode s = CLBlastOverrideParameters(ctx->device, k[i].kernel,
                                                    CLBlastPrecisionSingle, k[i].count, names,
                                                    k[i].vals);
    if (s != CLBlastSuccess)
      return bc_fail(&ctx->err, BERTCL_ERR_CLBLAST,
                     "CLBlastOverrideParameters(%s) -> %d%s on %s", k[i].kernel, (int)s,
                     s == CLBlastMissingOverrideParameter
                         ? " (CLBlastMissingOverrideParameter: this CLBlast names other "
                           "parameters)"
                         : s == CLBlastInvalidOverrideKernel ? " (CLBlastInvalidOverrideKernel)"
                                                             : "",
                     ctx->info.name);
  }
  return BERTCL_OK;
}

/* ---- per-device file names --------------------------------------------------------------- */

static uint64_t device_key(const bertcl_ctx *ctx) {
  const bertcl_device_info *d = &ctx->info;
  const char *parts[] = {d->platform_name, d->platform_version, d->name, d->vendor,
                         d->version,       d->driver_version,   bc_clblast_version()};
  uint64_t h = BC_FNV_INIT;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    h = bc_fnv1a64(h, parts[i], strlen(parts[i]) + 1);
  return h;
}

int bc_tuning_paths(bertcl_ctx *ctx, char *params, size_t np, char *progress, size_t nq) {
  if (!ctx->cache_dir[0])
    return bc_fail(&ctx->err, BERTCL_ERR_IO,
                   "the cache directory is disabled (BERTCL_CACHE_DIR=off): tuned parameters "
                   "have nowhere to live");
  unsigned long long k = (unsigned long long)device_key(ctx);
  int a = params ? snprintf(params, np, "%s/tuning/clblast-%016llx.json", ctx->cache_dir, k) : 0;
  int b = progress
              ? snprintf(progress, nq, "%s/tuning/clblast-%016llx.progress.json", ctx->cache_dir, k)
              : 0;
  if (a < 0 || (params && (size_t)a >= np) || b < 0 || (progress && (size_t)b >= nq))
    return bc_fail(&ctx->err, BERTCL_ERR_IO, "cache directory path too long: %s", ctx->cache_dir);
  return BERTCL_OK;
}

/* ---- file format --------------------------------------------------------------------------- */

static json_t *group_json(const char *const *names, const size_t *vals, size_t count) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < count; i++)
    json_object_set_new(o, names[i], json_integer((json_int_t)vals[i]));
  return o;
}

static int group_read(bc_err *err, const char *path, json_t *kernels, const char *kernel,
                      const char *const *names, size_t count, size_t *vals, int *has) {
  json_t *g = json_object_get(kernels, kernel);
  *has = 0;
  if (!g || json_is_null(g)) return BERTCL_OK;
  if (!json_is_object(g))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: kernels.%s is not an object", path, kernel);
  if (json_object_size(g) != count)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: kernels.%s has %zu parameters, CLBlast %s needs %zu",
                   path, kernel, json_object_size(g), bc_clblast_version(), count);
  for (size_t i = 0; i < count; i++) {
    json_t *v = json_object_get(g, names[i]);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1 << 20)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: kernels.%s.%s missing or not a small integer",
                     path, kernel, names[i]);
    vals[i] = (size_t)json_integer_value(v);
  }
  *has = 1;
  return BERTCL_OK;
}

int bc_tuning_save(bertcl_ctx *ctx, const char *path, const bc_gemm_params *p,
                   const bc_tuning_meta *meta) {
  const bertcl_device_info *d = &ctx->info;
  const char *rn[1] = {BC_GEMM_ROUTINE_NAME};
  json_t *kernels = json_object();
  if (p->has_xgemm)
    json_object_set_new(kernels, "Xgemm", group_json(bc_xgemm_names, p->xgemm, BC_XGEMM_NPARAMS));
  if (p->has_direct)
    json_object_set_new(kernels, "XgemmDirect",
                        group_json(bc_xgemm_direct_names, p->direct, BC_XGEMM_DIRECT_NPARAMS));
  if (p->has_routine) json_object_set_new(kernels, "GemmRoutine", group_json(rn, &p->min_indirect, 1));
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:i}, s:f, s:f, s:i, s:s, s:o}",
      "format", FORMAT_NAME, "platform", d->platform_name, "platform_version",
      d->platform_version, "device", d->name, "vendor", d->vendor, "device_version", d->version,
      "driver", d->driver_version, "clblast", bc_clblast_version(), "tuned_for", "config",
      meta->config, "batch", meta->batch, "seq", meta->seq, "baseline_ms", meta->baseline_ms,
      "best_ms", meta->best_ms, "candidates_evaluated", meta->evaluated, "date", meta->date,
      "kernels", kernels);
  if (!o) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory building %s", path);
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!text) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory writing %s", path);
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/tuning", ctx->cache_dir);
  int st = bc_mkdirs(dir) == 0 ? BERTCL_OK
                               : bc_fail(&ctx->err, BERTCL_ERR_IO, "cannot create %s", dir);
  if (st == BERTCL_OK) st = bc_write_file_atomic(&ctx->err, path, text, strlen(text));
  free(text);
  return st;
}

static int same_str(json_t *o, const char *key, const char *want) {
  const char *v = json_string_value(json_object_get(o, key));
  return v && strcmp(v, want) == 0;
}

int bc_tuning_load(bertcl_ctx *ctx, const char *path, bc_gemm_params *p, bc_tuning_meta *meta) {
  bc_err *err = &ctx->err;
  memset(p, 0, sizeof *p);
  memset(meta, 0, sizeof *meta);
  json_error_t je;
  json_t *o = json_load_file(path, 0, &je);
  if (!o) return bc_fail(err, BERTCL_ERR_FORMAT, "%s: line %d: %s", path, je.line, je.text);
  int st = BERTCL_OK;
  const bertcl_device_info *d = &ctx->info;
  if (!json_is_object(o) || !same_str(o, "format", FORMAT_NAME)) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: not a %s file", path, FORMAT_NAME);
    goto done;
  }
  if (!same_str(o, "device", d->name) || !same_str(o, "driver", d->driver_version) ||
      !same_str(o, "platform_version", d->platform_version) ||
      !same_str(o, "clblast", bc_clblast_version())) {
    st = bc_fail(err, BERTCL_ERR_FORMAT,
                 "%s: made for another device, driver or CLBlast (this is %s, driver %s, "
                 "CLBlast %s); run bertcl tune again",
                 path, d->name, d->driver_version, bc_clblast_version());
    goto done;
  }
  json_t *kernels = json_object_get(o, "kernels");
  if (!json_is_object(kernels)) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: no kernels object", path);
    goto done;
  }
  const char *rn[1] = {BC_GEMM_ROUTINE_NAME};
  st = group_read(err, path, kernels, "Xgemm", bc_xgemm_names, BC_XGEMM_NPARAMS, p->xgemm,
                  &p->has_xgemm);
  if (st == BERTCL_OK)
    st = group_read(err, path, kernels, "XgemmDirect", bc_xgemm_direct_names,
                    BC_XGEMM_DIRECT_NPARAMS, p->direct, &p->has_direct);
  if (st == BERTCL_OK)
    st = group_read(err, path, kernels, "GemmRoutine", rn, 1, &p->min_indirect, &p->has_routine);
  if (st != BERTCL_OK) goto done;
  json_t *tf = json_object_get(o, "tuned_for");
  const char *cfg = json_string_value(json_object_get(tf, "config"));
  snprintf(meta->config, sizeof meta->config, "%s", cfg ? cfg : "");
  meta->batch = (int)json_integer_value(json_object_get(tf, "batch"));
  meta->seq = (int)json_integer_value(json_object_get(tf, "seq"));
  meta->baseline_ms = json_number_value(json_object_get(o, "baseline_ms"));
  meta->best_ms = json_number_value(json_object_get(o, "best_ms"));
  meta->evaluated = (int)json_integer_value(json_object_get(o, "candidates_evaluated"));
  const char *date = json_string_value(json_object_get(o, "date"));
  snprintf(meta->date, sizeof meta->date, "%s", date ? date : "");
done:
  json_decref(o);
  return st;
}

/* ---- once per device per process ----------------------------------------------------------- */

#define MAX_DEVICES 64
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_auto = 1;
static struct {
  cl_device_id dev;
  bc_tuning_status status;
} g_dev[MAX_DEVICES];
static int g_ndev;

const char *bc_tuning_state_name(bc_tuning_state s) {
  switch (s) {
    case BC_TUNING_UNCHECKED: return "unchecked";
    case BC_TUNING_NONE: return "none";
    case BC_TUNING_APPLIED: return "applied";
    case BC_TUNING_DEFAULTS_BEST: return "defaults-best";
    case BC_TUNING_REJECTED: return "rejected";
    case BC_TUNING_DISABLED: return "disabled";
  }
  return "unknown";
}

/* Slot of a device (created when absent); NULL when the table is full. Holds g_lock. */
static bc_tuning_status *slot(cl_device_id dev, int create) {
  for (int i = 0; i < g_ndev; i++)
    if (g_dev[i].dev == dev) return &g_dev[i].status;
  if (!create || g_ndev == MAX_DEVICES) return NULL;
  g_dev[g_ndev].dev = dev;
  memset(&g_dev[g_ndev].status, 0, sizeof g_dev[g_ndev].status);
  return &g_dev[g_ndev++].status;
}

static void copy_str(char *dst, size_t n, const char *src) {
  size_t l = strlen(src);
  if (l >= n) l = n - 1;
  memcpy(dst, src, l);
  dst[l] = '\0';
}

/* Loads and applies the stored file into *s. Holds g_lock. */
static int apply_locked(bertcl_ctx *ctx, bc_tuning_status *s) {
  char path[1100];
  memset(s, 0, sizeof *s);
  int st = bc_tuning_paths(ctx, path, sizeof path, NULL, 0);
  if (st != BERTCL_OK) {
    s->state = BC_TUNING_DISABLED;
    copy_str(s->reason, sizeof s->reason, ctx->err.msg);
    return st;
  }
  copy_str(s->path, sizeof s->path, path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    s->state = BC_TUNING_NONE;
    snprintf(s->reason, sizeof s->reason, "no tuned parameters for this device (bertcl tune)");
    return bc_fail(&ctx->err, BERTCL_ERR_MISSING, "%s: no tuned parameters for %s (run bertcl tune)",
                   path, ctx->info.name);
  }
  fclose(f);
  st = bc_tuning_load(ctx, path, &s->params, &s->meta);
  if (st == BERTCL_OK) st = bc_tuning_override(ctx, &s->params);
  if (st != BERTCL_OK) {
    s->state = BC_TUNING_REJECTED;
    copy_str(s->reason, sizeof s->reason, ctx->err.msg);
    return st;
  }
  s->state = (s->params.has_xgemm || s->params.has_direct || s->params.has_routine)
                 ? BC_TUNING_APPLIED
                 : BC_TUNING_DEFAULTS_BEST;
  return BERTCL_OK;
}

void bc_tuning_ensure(bertcl_ctx *ctx) {
  pthread_mutex_lock(&g_lock);
  bc_tuning_status *s = slot(ctx->device, 1);
  if (s && s->state == BC_TUNING_UNCHECKED) {
    const char *env = getenv("BERTCL_TUNING");
    if (env && strcmp(env, "off") == 0) {
      s->state = BC_TUNING_DISABLED;
      snprintf(s->reason, sizeof s->reason, "BERTCL_TUNING=off");
    } else if (!g_auto) {
      /* left unchecked: whoever switched auto off applies (or not) explicitly */
    } else {
      bc_err saved = ctx->err; /* a missing or bad file is not this GEMM's error */
      apply_locked(ctx, s);
      ctx->err = saved;
    }
  }
  pthread_mutex_unlock(&g_lock);
}

int bc_tuning_set_auto(int on) {
  pthread_mutex_lock(&g_lock);
  int was = g_auto;
  g_auto = on != 0;
  pthread_mutex_unlock(&g_lock);
  return was;
}

int bc_tuning_apply_stored(bertcl_ctx *ctx) {
  pthread_mutex_lock(&g_lock);
  bc_tuning_status *s = slot(ctx->device, 1);
  const char *env = getenv("BERTCL_TUNING");
  int st;
  if (!s) {
    st = bc_fail(&ctx->err, BERTCL_ERR_INTERNAL, "more than %d devices", MAX_DEVICES);
  } else if (env && strcmp(env, "off") == 0) {
    memset(s, 0, sizeof *s);
    s->state = BC_TUNING_DISABLED;
    snprintf(s->reason, sizeof s->reason, "BERTCL_TUNING=off");
    st = bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED, "BERTCL_TUNING=off: stored parameters not applied");
  } else {
    st = apply_locked(ctx, s);
  }
  pthread_mutex_unlock(&g_lock);
  return st;
}

void bc_tuning_status_get(const bertcl_ctx *ctx, bc_tuning_status *out) {
  pthread_mutex_lock(&g_lock);
  bc_tuning_status *s = slot(ctx->device, 0);
  if (s)
    *out = *s;
  else
    memset(out, 0, sizeof *out);
  pthread_mutex_unlock(&g_lock);
}
