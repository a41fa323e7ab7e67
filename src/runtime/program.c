/* Kernel sources (embedded or from $BERTCL_KERNEL_DIR), program builds, and the on-disk cache of
 * compiled program binaries.
 *
 * Cache file layout (little-endian, written to a temp file and renamed):
 *   magic "BERTCLPB" | u32 format version | u32 key length | u64 binary length |
 *   u64 FNV-1a of the binary | key text | binary
 * The file name is the FNV-1a hash of the key; the full key text is stored and compared, so a
 * hash collision is a miss, not a wrong program. Any problem reading or using a cache file
 * (missing, truncated, corrupt, rejected by the driver, unwritable directory) falls back to a
 * source build and never fails the call. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/durable.h"
#include "runtime.h"
#include "runtime/cpuinfo.h"

typedef struct {
  const char *name;
  const char *data;
  size_t len;
} bc_embedded_source;
extern const bc_embedded_source bc_embedded_sources[];

#define CACHE_MAGIC "BERTCLPB"
#define CACHE_VERSION 1u
#define CACHE_HEADER (8 + 4 + 4 + 8 + 8)

int bc_kernel_source(bc_err *err, const char *file, char **src, size_t *len) {
  *src = NULL;
  *len = 0;
  const char *dir = getenv("BERTCL_KERNEL_DIR");
  if (dir && *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return bc_read_file(err, path, src, len);
  }
  for (const bc_embedded_source *s = bc_embedded_sources; s->name; s++) {
    if (strcmp(s->name, file) == 0) {
      char *copy = malloc(s->len + 1);
      if (!copy) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      memcpy(copy, s->data, s->len);
      copy[s->len] = '\0';
      *src = copy;
      *len = s->len;
      return BERTCL_OK;
    }
  }
  return bc_fail(err, BERTCL_ERR_MISSING, "kernel source %s is not embedded in this build", file);
}

/* Key text: everything a compiled binary depends on. */
static char *cache_key(const bertcl_ctx *ctx, const char *src, size_t len, const char *options,
                       size_t *keylen) {
  uint64_t h = bc_fnv1a64(BC_FNV_INIT, src, len);
  const bertcl_device_info *d = &ctx->info;
  size_t cap = 1024 + strlen(options);
  char *key = malloc(cap);
  if (!key) return NULL;
  int n = snprintf(key, cap,
                   "bertcl %s\nsource fnv1a64 %016llx len %zu\noptions %s\ndevice %s\nvendor %s\n"
                   "device version %s\ndriver %s\nplatform %s\nplatform version %s\n",
                   BERTCL_VERSION_STRING, (unsigned long long)h, len, options, d->name,
                   d->vendor, d->version, d->driver_version, d->platform_name,
                   d->platform_version);
  if (n < 0 || (size_t)n >= cap) {
    free(key);
    return NULL;
  }
  *keylen = (size_t)n;
  return key;
}

int bc_program_cache_path(const bertcl_ctx *ctx, const char *src, size_t len, const char *options,
                          char *path, size_t pathlen) {
  if (!ctx->cache_dir[0]) return BERTCL_ERR_INVALID_ARG;
  size_t keylen = 0;
  char *key = cache_key(ctx, src, len, options ? options : "", &keylen);
  if (!key) return BERTCL_ERR_NOMEM;
  uint64_t h = bc_fnv1a64(BC_FNV_INIT, key, keylen);
  free(key);
  int n = snprintf(path, pathlen, "%s/%016llx.clbin", ctx->cache_dir, (unsigned long long)h);
  return (n < 0 || (size_t)n >= pathlen) ? BERTCL_ERR_INVALID_ARG : BERTCL_OK;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Tries the cache; returns a built program or NULL (any reason). */
static cl_program cache_load(bertcl_ctx *ctx, const char *path, const char *key, size_t keylen,
                             const char *options) {
  char *data = NULL;
  size_t len = 0;
  bc_err scratch;
  if (bc_read_file(&scratch, path, &data, &len) != BERTCL_OK) return NULL;
  cl_program prog = NULL;
  const unsigned char *p = (const unsigned char *)data;
  if (len < CACHE_HEADER || memcmp(p, CACHE_MAGIC, 8) != 0 || get_u32(p + 8) != CACHE_VERSION)
    goto reject;
  uint32_t kl = get_u32(p + 12);
  uint64_t bl = get_u64(p + 16);
  uint64_t sum = get_u64(p + 24);
  if (kl != keylen || bl == 0 || bl > len || len - CACHE_HEADER - kl != bl) goto reject;
  if (memcmp(p + CACHE_HEADER, key, keylen) != 0) goto reject;
  const unsigned char *bin = p + CACHE_HEADER + kl;
  if (bc_fnv1a64(BC_FNV_INIT, bin, (size_t)bl) != sum) goto reject;
  size_t binlen = (size_t)bl;
  cl_int rc = CL_SUCCESS, binrc = CL_SUCCESS;
  prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &binlen, &bin, &binrc, &rc);
  if (rc != CL_SUCCESS || binrc != CL_SUCCESS || !prog) goto reject;
  if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) goto reject;
  free(data);
  ctx->stats.cache_hits++;
  return prog;
reject:
  if (prog) clReleaseProgram(prog);
  free(data);
  ctx->stats.cache_rejects++;
  return NULL;
}

static void cache_store(bertcl_ctx *ctx, cl_program prog, const char *path, const char *key,
                        size_t keylen) {
  size_t binlen = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof binlen, &binlen, NULL) !=
          CL_SUCCESS ||
      binlen == 0)
    return;
  size_t total = CACHE_HEADER + keylen + binlen;
  unsigned char *buf = malloc(total);
  if (!buf) return;
  unsigned char *bin = buf + CACHE_HEADER + keylen;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
    free(buf);
    return;
  }
  memcpy(buf, CACHE_MAGIC, 8);
  put_u32(buf + 8, CACHE_VERSION);
  put_u32(buf + 12, (uint32_t)keylen);
  put_u64(buf + 16, binlen);
  put_u64(buf + 24, bc_fnv1a64(BC_FNV_INIT, bin, binlen));
  memcpy(buf + CACHE_HEADER, key, keylen);
  bc_err scratch;
  if (bc_mkdirs(ctx->cache_dir) == 0 &&
      bc_write_file_atomic(&scratch, path, buf, total) == BERTCL_OK)
    ctx->stats.cache_writes++;
  free(buf);
}

/* PoCL keeps compiled programs in a cache of its own (~/.cache/pocl, keyed by the source), and
 * exporting a PoCL binary (CL_PROGRAM_BINARIES) compiles every kernel of the program for any
 * work-group size on top of the ones a run uses: on a first run that doubles the compile time
 * (measured: 2.2-2.4 s of CPU without bertcl's copy, 4.8-5.5 s with it, MiniLM extract on 2
 * cores). So the default cache location is not used on PoCL unless PoCL's own cache is off
 * (POCL_KERNEL_CACHE=0); a directory named by the option or $BERTCL_CACHE_DIR always is. */
static int runtime_caches_itself(const bertcl_ctx *ctx) {
  if (!ctx->cache_default) return 0;
  if (!bc_icontains(ctx->info.platform_name, "Portable Computing Language") &&
      !bc_icontains(ctx->info.platform_version, "pocl"))
    return 0;
  const char *pc = getenv("POCL_KERNEL_CACHE");
  return !(pc && !strcmp(pc, "0"));
}

/* A compile that outlasts a second says so on stderr (once per process): a first run on a
 * CPU device compiles for seconds, which should not look like a hang. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  const char *device;
} build_watch;

static int notice_given;

static void *watch_build(void *p) {
  build_watch *w = p;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 1;
  pthread_mutex_lock(&w->mu);
  int rc = 0;
  while (!w->done && rc == 0) rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
  if (!w->done && !__atomic_exchange_n(&notice_given, 1, __ATOMIC_SEQ_CST) &&
      !getenv("BERTCL_QUIET"))
    fprintf(stderr, "bertcl: compiling kernels for %s, first run only\n", w->device);
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int bc_program_build_source(bertcl_ctx *ctx, const char *label, const char *src, size_t len,
                            const char *options, cl_program *out) {
  *out = NULL;
  if (!options) options = "";
  int st = BERTCL_OK;
  char path[2048];
  char *key = NULL;
  size_t keylen = 0;
  int use_cache = ctx->cache_dir[0] != '\0' && !runtime_caches_itself(ctx);
  if (use_cache) {
    key = cache_key(ctx, src, len, options, &keylen);
    if (!key || bc_program_cache_path(ctx, src, len, options, path, sizeof path) != BERTCL_OK)
      use_cache = 0;
  }
  if (use_cache) {
    cl_program cached = cache_load(ctx, path, key, keylen, options);
    if (cached) {
      free(key);
      *out = cached;
      return BERTCL_OK;
    }
  }
  cl_program prog = NULL;
  BC_CL_OBJ(&ctx->err, prog, clCreateProgramWithSource(ctx->context, 1, &src, &len, BC_RC));
  build_watch w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, ctx->info.name};
  pthread_t watcher;
  int watching = !__atomic_load_n(&notice_given, __ATOMIC_SEQ_CST) &&
                 pthread_create(&watcher, NULL, watch_build, &w) == 0;
  cl_int rc = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
  if (use_cache && rc == CL_SUCCESS) cache_store(ctx, prog, path, key, keylen);
  if (watching) {
    pthread_mutex_lock(&w.mu);
    w.done = 1;
    pthread_cond_signal(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(watcher, NULL);
  }
  ctx->stats.source_builds++;
  if (rc != CL_SUCCESS) {
    size_t loglen = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &loglen) ==
            CL_SUCCESS &&
        loglen > 0 && (log = malloc(loglen + 1)) != NULL) {
      if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, loglen, log, NULL) !=
          CL_SUCCESS)
        log[0] = '\0';
      log[loglen] = '\0';
    }
    st = bc_fail(&ctx->err, BERTCL_ERR_BUILD,
                 "clBuildProgram(%s, \"%s\") -> %s (%d) on %s; compiler log:\n%s", label, options,
                 bc_cl_errname(rc), (int)rc, ctx->info.name, log ? log : "(no log)");
    free(log);
    goto fail;
  }
  free(key);
  *out = prog;
  return BERTCL_OK;
fail:
  if (prog) clReleaseProgram(prog);
  free(key);
  return st;
}

int bc_program_build(bertcl_ctx *ctx, const char *const *files, size_t nfiles,
                     const char *options, cl_program *out) {
  *out = NULL;
  char *all = NULL;
  size_t total = 0;
  char label[512];
  label[0] = '\0';
  for (size_t i = 0; i < nfiles; i++) {
    char *src = NULL;
    size_t len = 0;
    int st = bc_kernel_source(&ctx->err, files[i], &src, &len);
    if (st != BERTCL_OK) {
      free(all);
      return st;
    }
    char *grown = realloc(all, total + len + 2);
    if (!grown) {
      free(src);
      free(all);
      return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    }
    all = grown;
    memcpy(all + total, src, len);
    total += len;
    all[total++] = '\n';
    all[total] = '\0';
    free(src);
    size_t ll = strlen(label);
    snprintf(label + ll, sizeof label - ll, "%s%s", i ? "+" : "", files[i]);
  }
  if (!all) return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "no kernel source files given");
  int st = bc_program_build_source(ctx, label, all, total, options, out);
  free(all);
  return st;
}

int bc_kernel_run(bertcl_ctx *ctx, cl_kernel k, const char *name, const bc_karg *args,
                  int nargs, size_t global, size_t local) {
  int st = BERTCL_OK;
  for (int i = 0; i < nargs; i++)
    BC_CL(&ctx->err, clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr));
  if (global == 0) return BERTCL_OK;
  if (local) global = (global + local - 1) / local * local;
  cl_event ev = NULL;
  cl_int rc = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, local ? &local : NULL, 0,
                                     NULL, ctx->kprof ? &ev : NULL);
  if (ev) bc_kprof_track(ctx->kprof, ev, name);
  if (rc != CL_SUCCESS)
    st = bc_fail(&ctx->err, bc_cl_status(rc), "clEnqueueNDRangeKernel(%s, global %zu) -> %s (%d)",
                 name, global, bc_cl_errname(rc), (int)rc);
fail:
  return st;
}

size_t bc_row_work_group(const bertcl_ctx *ctx) {
  size_t wg = 128;
  while (wg > ctx->info.max_work_group_size && wg > 1) wg /= 2;
  return wg;
}

const char *bc_kset_name(bc_kset k) { return k == BC_KSET_CPU ? "cpu" : "gpu"; }

bc_kset bc_kset_auto(const bertcl_device_info *d) {
  return d->type == BERTCL_DEVICE_CPU ? BC_KSET_CPU : BC_KSET_GPU;
}

int bc_cpu_vector_width(const bertcl_ctx *ctx) {
  const char *v = getenv("BERTCL_CPU_VECTOR_WIDTH");
  if (v && (strcmp(v, "8") == 0 || strcmp(v, "16") == 0)) return atoi(v);
  if (ctx->info.type != BERTCL_DEVICE_CPU) return 8;
  bc_cpu_info ci;
  bc_cpu_info_get(&ci);
  return ci.simd_bits >= 512 ? 16 : 8;
}

void bc_kernel_options(const bertcl_ctx *ctx, bc_kset kset, char *buf, size_t n) {
  snprintf(buf, n, "-DWG=%zu -DKSET=%d -DKSET_GPU=%d -DKSET_CPU=%d -DVW=%d -cl-std=CL1.2",
           bc_row_work_group(ctx), (int)kset, (int)BC_KSET_GPU, (int)BC_KSET_CPU,
           bc_cpu_vector_width(ctx));
}

void bc_rows_launch(bc_kset kset, size_t wg, size_t rows, size_t *global, size_t *local) {
  if (kset == BC_KSET_CPU) {
    *global = rows;
    *local = BC_CPU_ROWS_LOCAL;
  } else {
    *global = rows * wg;
    *local = wg;
  }
}

static void CL_CALLBACK free_host_memory(cl_mem m, void *p) {
  (void)m;
  free(p);
}

cl_mem bc_buffer_new(bertcl_ctx *ctx, cl_mem_flags flags, size_t bytes, const void *init,
                     int *st) {
  cl_int rc = CL_SUCCESS;
  cl_mem m = NULL;
  if (bytes == 0) bytes = 4;
  if (ctx->host_buffers) {
    /* page-aligned and a whole number of pages: PoCL and Intel's CPU runtime then use the
     * memory itself (zero copy), which bc_gemm_ctx_init checks once per context */
    size_t rounded = (bytes + 4095) / 4096 * 4096;
    void *host = rounded >= bytes ? aligned_alloc(4096, rounded) : NULL;
    if (!host) {
      *st = bc_fail(&ctx->err, BERTCL_ERR_DEVICE_OOM,
                    "host allocation of %zu bytes for a device buffer failed", bytes);
      return NULL;
    }
    if (init) memcpy(host, init, bytes);
    m = clCreateBuffer(ctx->context, flags | CL_MEM_USE_HOST_PTR, rounded, host, &rc);
    if (rc == CL_SUCCESS) rc = clSetMemObjectDestructorCallback(m, free_host_memory, host);
    if (rc != CL_SUCCESS) {
      if (m) clReleaseMemObject(m); /* the callback, when set, frees host */
      else free(host);
      m = NULL;
    }
  } else {
    m = clCreateBuffer(ctx->context, flags | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                       (void *)init, &rc);
  }
  if (rc != CL_SUCCESS) {
    *st = bc_fail(&ctx->err, bc_cl_status(rc), "clCreateBuffer(%zu bytes) -> %s (%d)", bytes,
                  bc_cl_errname(rc), (int)rc);
    return NULL;
  }
  return m;
}

cl_mem bc_buffer_create(bertcl_ctx *ctx, size_t bytes, const void *init, int *st) {
  return bc_buffer_new(ctx, CL_MEM_READ_WRITE, bytes, init, st);
}

void *bc_buffer_host_ptr(cl_mem m) {
  void *p = NULL;
  /* NULL unless the buffer (or a sub-buffer's parent) was made with CL_MEM_USE_HOST_PTR; a
   * sub-buffer reports its parent's pointer + origin (OpenCL 1.2, clGetMemObjectInfo) */
  if (!m || clGetMemObjectInfo(m, CL_MEM_HOST_PTR, sizeof p, &p, NULL) != CL_SUCCESS) return NULL;
  return p;
}
