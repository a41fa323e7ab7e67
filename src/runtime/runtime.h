/* OpenCL runtime layer: checked calls, device enumeration, context, programs and their cache. */
#ifndef BC_RUNTIME_H
#define BC_RUNTIME_H

#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include "common.h"

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *bc_cl_errname(cl_int code);

/* Checked OpenCL call: on error record call text, error name, code, file:line in `err`, set `st`
 * and jump to `fail`. CL_MEM_OBJECT_ALLOCATION_FAILURE / CL_OUT_OF_RESOURCES map to
 * BERTCL_ERR_DEVICE_OOM so callers can shrink a batch and retry. */
#define BC_CL(err, call)                                                                       \
  do {                                                                                         \
    cl_int bc_cl_rc_ = (call);                                                                 \
    if (bc_cl_rc_ != CL_SUCCESS) {                                                             \
      st = bc_fail((err), bc_cl_status(bc_cl_rc_), "%s -> %s (%d)", #call,                     \
                   bc_cl_errname(bc_cl_rc_), (int)bc_cl_rc_);                                  \
      goto fail;                                                                               \
    }                                                                                          \
  } while (0)

/* Same, for calls that return an object and report through an errcode_ret out-parameter. */
#define BC_CL_OBJ(err, lhs, call_with_rc)                                                       \
  do {                                                                                         \
    cl_int bc_cl_rc_ = CL_SUCCESS;                                                             \
    lhs = call_with_rc;                                                                        \
    if (bc_cl_rc_ != CL_SUCCESS) {                                                             \
      st = bc_fail((err), bc_cl_status(bc_cl_rc_), "%s -> %s (%d)", #call_with_rc,             \
                   bc_cl_errname(bc_cl_rc_), (int)bc_cl_rc_);                                  \
      goto fail;                                                                               \
    }                                                                                          \
  } while (0)
/* Inside BC_CL_OBJ the errcode_ret argument is spelled BC_RC. */
#define BC_RC (&bc_cl_rc_)

static inline int bc_cl_status(cl_int rc) {
  return (rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES ||
          rc == CL_OUT_OF_HOST_MEMORY || rc == CL_INVALID_BUFFER_SIZE)
             ? BERTCL_ERR_DEVICE_OOM
             : BERTCL_ERR_OPENCL;
}

typedef struct {
  uint64_t source_builds; /* programs compiled from source */
  uint64_t cache_hits;    /* programs created from a cached binary */
  uint64_t cache_rejects; /* cache files present but unusable (corrupt, truncated, rejected) */
  uint64_t cache_writes;  /* binaries written to the cache */
} bc_program_stats;

/* Which shape of bertcl's own kernels a device runs (the op tables in encoder/ops.c and
 * train/train_ops.c decide per op what this means; cl/common.cl sees it as -DKSET):
 *   GPU: a work-group per row with local-memory reductions, the OpenCL builtins (erf, exp);
 *   CPU: a work-item per row with vector loads and no barriers, and branch-free erf/exp/Philox,
 *        shapes that CPU OpenCL compilers (PoCL, Intel's runtime) vectorise.
 * Chosen at context creation: $BERTCL_KERNEL_SET = auto (default: CPU devices get cpu, all
 * others gpu), cpu or gpu (forces a set on any device; the tests run both on PoCL). */
typedef enum { BC_KSET_GPU = 0, BC_KSET_CPU = 1 } bc_kset;
const char *bc_kset_name(bc_kset k);
/* The set "auto" picks for a device (what `bertcl devices` can print beside it). */
bc_kset bc_kset_auto(const bertcl_device_info *d);

/* Per-kernel device time of our kernels, on when $BERTCL_KERNEL_PROFILE is set at context
 * creation (which also turns on queue profiling): bc_kernel_run hands each launch's event to
 * bc_kprof_track; bertcl_ctx_free prints the table (bc_kprof_report_free). */
typedef struct bc_kprof bc_kprof;
bc_kprof *bc_kprof_new(void);
void bc_kprof_track(bc_kprof *p, cl_event ev, const char *name); /* takes the event */
void bc_kprof_report_free(bc_kprof *p, const char *device);

struct bertcl_ctx {
  bc_err err; /* first member: bertcl_last_error(ctx) reads it */
  bertcl_device_info info;
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  int profiling;
  char cache_dir[1024]; /* "" = cache disabled */
  int cache_default;    /* cache_dir is the default location (not named by option or env) */
  char gemm_request[16]; /* "auto", "clblast" or "blas": bertcl_ctx_options.gemm / $BERTCL_GEMM */
  bc_kset kset;          /* our kernels' shape on this device ($BERTCL_KERNEL_SET) */
  bc_kprof *kprof;       /* NULL unless $BERTCL_KERNEL_PROFILE */
  bc_program_stats stats;
  /* matrix products (gemm/gemm.h): the backend bc_gemm_ctx_init chose */
  const struct bc_gemm_backend *gemm;
  int host_buffers;        /* 1: bc_buffer_new places buffers in host memory the BLAS backend
                              addresses directly (CL_MEM_USE_HOST_PTR) */
  char gemm_reason[256];   /* why "auto" chose CLBlast on a CPU device ("" otherwise) */
};

/* Builds (or loads from the binary cache) the program made of the named files in cl/ (embedded
 * at build time, or read from $BERTCL_KERNEL_DIR), concatenated in order. */
int bc_program_build(bertcl_ctx *ctx, const char *const *files, size_t nfiles,
                     const char *options, cl_program *out);
/* Same, from a source text. `label` names it in messages. */
int bc_program_build_source(bertcl_ctx *ctx, const char *label, const char *src, size_t len,
                            const char *options, cl_program *out);
/* Path of the cache file a (source, options) pair maps to on this context's device. */
int bc_program_cache_path(const bertcl_ctx *ctx, const char *src, size_t len, const char *options,
                          char *path, size_t pathlen);

/* One kernel argument: its size and a pointer to its value (KARG(v) for a variable v). */
typedef struct {
  size_t size;
  const void *ptr;
} bc_karg;
#define KARG(v) \
  { sizeof(v), &(v) }

/* Sets k's arguments in order and enqueues it over `global` items (rounded up to a multiple of
 * `local`) on ctx's queue without waiting; `name` labels errors. global 0 enqueues nothing. */
int bc_kernel_run(bertcl_ctx *ctx, cl_kernel k, const char *name, const bc_karg *args,
                  int nargs, size_t global, size_t local);
#define BC_KERNEL_RUN(ctx, k, name, global, local, ...)                                  \
  do {                                                                                   \
    const bc_karg bc_args_[] = {__VA_ARGS__};                                            \
    return bc_kernel_run((ctx), (k), (name), bc_args_,                                   \
                         (int)(sizeof bc_args_ / sizeof bc_args_[0]), (global), (local)); \
  } while (0)

/* A read-write buffer of `bytes` (at least 4), filled from init when not NULL. On failure
 * returns NULL and sets *st (BERTCL_ERR_DEVICE_OOM for allocation failures). */
cl_mem bc_buffer_create(bertcl_ctx *ctx, size_t bytes, const void *init, int *st);
/* The same with memory flags (CL_MEM_READ_ONLY, ...). Every buffer a matrix product may touch
 * is made here: on a context whose GEMM backend is the host BLAS (ctx->host_buffers), the
 * buffer wraps page-aligned host memory (CL_MEM_USE_HOST_PTR, freed when the runtime destroys
 * the buffer), so bc_buffer_host_ptr finds it and sub-buffers at parent + origin. */
cl_mem bc_buffer_new(bertcl_ctx *ctx, cl_mem_flags flags, size_t bytes, const void *init,
                     int *st);
/* Host address of a buffer (or sub-buffer) made by bc_buffer_new on a host-buffer context;
 * NULL for any other buffer. */
void *bc_buffer_host_ptr(cl_mem m);

/* Work-group size of the row kernels (-DWG): a power of two, at most 128 and the device's
 * limit. */
size_t bc_row_work_group(const bertcl_ctx *ctx);

/* Lanes of the CPU set's vector code (-DVW): 16 on a CPU device whose host has AVX-512, else 8;
 * $BERTCL_CPU_VECTOR_WIDTH (8 or 16) overrides it, for measurements. */
int bc_cpu_vector_width(const bertcl_ctx *ctx);

/* Build options every bertcl program gets: -DWG (bc_row_work_group), the kernel set
 * (-DKSET, -DKSET_GPU, -DKSET_CPU from bc_kset), -DVW (bc_cpu_vector_width) and
 * -cl-std=CL1.2. */
void bc_kernel_options(const bertcl_ctx *ctx, bc_kset kset, char *buf, size_t n);

/* Launch shape of a row kernel (one row of a matrix per work-group or work-item) over `rows`
 * rows in kernel set `kset`: GPU, a work-group of wg items per row; CPU, one item per row in
 * groups of BC_CPU_ROWS_LOCAL (the kernel checks row < rows). */
#define BC_CPU_ROWS_LOCAL 16
void bc_rows_launch(bc_kset kset, size_t wg, size_t rows, size_t *global, size_t *local);

/* Source text of an embedded (or $BERTCL_KERNEL_DIR) cl/ file; caller frees. */
int bc_kernel_source(bc_err *err, const char *file, char **src, size_t *len);

#endif /* BC_RUNTIME_H */
