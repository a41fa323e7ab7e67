/* bertcl: BERT-family encoders on any OpenCL device.
 *
 * The one public header. Handles are opaque; a user needs no OpenCL types.
 * Every function that can fail returns a bertcl_status (0 = BERTCL_OK, negative = error) and
 * leaves a human-readable message in the handle it was given (bertcl_last_error(handle)), or in
 * a thread-local slot for functions that have no handle yet (bertcl_last_error(NULL)).
 * The library never calls exit() or abort(). Every _free(NULL) is a no-op.
 */
#ifndef BERTCL_H
#define BERTCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTCL_VERSION_MAJOR 0
#define BERTCL_VERSION_MINOR 1
#define BERTCL_VERSION_PATCH 0
#define BERTCL_VERSION_STRING "0.1.0"

/* One table generates the status enum and its strings (libuv's UV_ERRNO_MAP idea). */
#define BERTCL_STATUS_MAP(X)                                                               \
  X(OK, 0, "success")                                                                      \
  X(ERR_INVALID_ARG, -1, "invalid argument")                                               \
  X(ERR_NOMEM, -2, "out of host memory")                                                   \
  X(ERR_IO, -3, "file input/output error")                                                 \
  X(ERR_NO_PLATFORM, -4, "no OpenCL platform found")                                       \
  X(ERR_NO_DEVICE, -5, "requested OpenCL device not found")                                \
  X(ERR_OPENCL, -6, "OpenCL call failed")                                                  \
  X(ERR_BUILD, -7, "OpenCL program build failed")                                          \
  X(ERR_CLBLAST, -8, "CLBlast call failed")                                                \
  X(ERR_DEVICE_OOM, -9, "device out of memory")                                            \
  X(ERR_FORMAT, -10, "invalid or corrupt file")                                            \
  X(ERR_UNSUPPORTED, -11, "unsupported model, file or option")                             \
  X(ERR_UTF8, -12, "invalid UTF-8 text")                                                   \
  X(ERR_MISSING, -13, "required file or tensor missing")                                   \
  X(ERR_SHAPE, -14, "tensor shape does not match the model configuration")                 \
  X(ERR_OVERFLOW, -15, "size arithmetic overflow")                                         \
  X(ERR_INTERNAL, -16, "internal error")

typedef enum {
#define BERTCL_STATUS_ENUM_(name, code, text) BERTCL_##name = code,
  BERTCL_STATUS_MAP(BERTCL_STATUS_ENUM_)
#undef BERTCL_STATUS_ENUM_
} bertcl_status;

/* Static text of a status ("invalid argument"); never NULL. */
const char *bertcl_status_str(int status);
/* Symbolic name of a status ("BERTCL_ERR_INVALID_ARG"); never NULL. */
const char *bertcl_status_name(int status);
/* Library version string, e.g. "0.1.0". */
const char *bertcl_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Devices                                                                                    */

typedef enum {
  BERTCL_DEVICE_CPU = 1,
  BERTCL_DEVICE_GPU = 2,
  BERTCL_DEVICE_ACCELERATOR = 4,
  BERTCL_DEVICE_OTHER = 8
} bertcl_device_type;

typedef struct {
  int platform_index;        /* index of the platform in enumeration order */
  int device_index;          /* index of the device inside its platform */
  char platform_name[128];
  char platform_version[128];
  char name[128];
  char vendor[128];
  char version[128];         /* CL_DEVICE_VERSION, e.g. "OpenCL 3.0 CUDA" */
  char driver_version[128];
  bertcl_device_type type;
  uint32_t compute_units;
  uint32_t max_clock_mhz;
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes;
  uint64_t local_mem_bytes;
  size_t max_work_group_size;
  int fp16;                  /* cl_khr_fp16 */
  int subgroups;             /* cl_khr_subgroups, cl_intel_subgroups or OpenCL 3.0 subgroups */
  int is_default;            /* the device chosen when no selector is given */
} bertcl_device_info;

/* Lists every device of every platform. *out is allocated by the library; release it with
 * bertcl_devices_free. With no platform at all this returns BERTCL_OK and *count = 0. */
int bertcl_devices_list(bertcl_device_info **out, size_t *count);
void bertcl_devices_free(bertcl_device_info *list);

/* Resolves a device selector to an index into the bertcl_devices_list() array.
 * selector: NULL or "" (then $BERTCL_DEVICE, then the default: first GPU, else first device),
 * "P:D" (platform P, device D), "N" (N-th device overall), "gpu" / "cpu" / "accelerator",
 * or a case-insensitive substring of the device name, vendor or platform name ("nvidia", "pocl").
 * Returns BERTCL_ERR_NO_DEVICE with a message listing the devices that exist. */
int bertcl_device_select(const bertcl_device_info *list, size_t count, const char *selector,
                         size_t *index);

/* ------------------------------------------------------------------------------------------ */
/* Context: one device, its queue, its program cache                                          */

typedef struct bertcl_ctx bertcl_ctx;

typedef struct {
  const char *device;  /* selector as for bertcl_device_select; NULL = $BERTCL_DEVICE / default */
  int profiling;       /* non-zero: the queue records profiling events */
  const char *cache_dir; /* NULL: $BERTCL_CACHE_DIR, else $XDG_CACHE_HOME/bertcl, else
                            ~/.cache/bertcl; "off" disables the program cache */
} bertcl_ctx_options;

/* opt may be NULL for all defaults. On failure *out is NULL and bertcl_last_error(NULL) says why. */
int bertcl_ctx_create(bertcl_ctx **out, const bertcl_ctx_options *opt);
void bertcl_ctx_free(bertcl_ctx *ctx);
/* The device the context runs on. */
const bertcl_device_info *bertcl_ctx_device(const bertcl_ctx *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Models: a Hugging Face model directory loaded to host memory                               */

typedef struct bertcl_model bertcl_model;

/* Loads config.json, model.safetensors (or a sharded index) and the sentence-transformers module
 * files of a model directory, validating everything. On failure *out is NULL and
 * bertcl_last_error(NULL) names the file and what is wrong. */
int bertcl_model_load(bertcl_model **out, const char *dir);
void bertcl_model_free(bertcl_model *model);

/* Last error message of a handle (any bertcl handle pointer), or of the calling thread when
 * handle is NULL. Never NULL; "" when there was none. */
const char *bertcl_last_error(const void *handle);

#ifdef __cplusplus
}
#endif
#endif /* BERTCL_H */
