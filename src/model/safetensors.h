/* safetensors reader (mmap) with the reference implementation's validation plus ours
 * (duplicate keys rejected, all size arithmetic overflow-checked). */
#ifndef BC_SAFETENSORS_H
#define BC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum {
  BC_DT_F32, BC_DT_F16, BC_DT_BF16, BC_DT_F64, BC_DT_I64, BC_DT_I32, BC_DT_I16, BC_DT_I8,
  BC_DT_U8, BC_DT_BOOL, BC_DT_OTHER
} bc_dtype;

#define BC_ST_MAX_DIMS 8

typedef struct {
  const char *name;   /* points into the file object */
  char dtype_name[16]; /* as written in the header, e.g. "F32", "I64" */
  bc_dtype dtype;
  int ndim;
  int64_t shape[BC_ST_MAX_DIMS];
  size_t numel;
  const void *data;   /* mmap'd bytes (little-endian) */
  size_t nbytes;
} bc_st_tensor;

typedef struct bc_st_file bc_st_file;

/* Opens and validates path; on error *out is NULL and err says which file and what is wrong. */
int bc_st_open(bc_err *err, const char *path, bc_st_file **out);
/* The same validation over bytes in memory (not copied: data must outlive the file object);
 * name is used in messages. */
int bc_st_open_mem(bc_err *err, const char *name, const void *data, size_t len, bc_st_file **out);
void bc_st_close(bc_st_file *f);
/* The path (or name) the file was opened with. */
const char *bc_st_path(const bc_st_file *f);
size_t bc_st_count(const bc_st_file *f);
const bc_st_tensor *bc_st_at(const bc_st_file *f, size_t i);
/* NULL when absent. */
const bc_st_tensor *bc_st_find(const bc_st_file *f, const char *name);
/* The __metadata__ value for key, or NULL. */
const char *bc_st_metadata(const bc_st_file *f, const char *key);
/* Converts a F32/F16/BF16 tensor to fp32 into dst (n = numel); other dtypes are an error
 * naming the dtype. */
int bc_st_read_f32(bc_err *err, const bc_st_tensor *t, float *dst, size_t n);

#endif
