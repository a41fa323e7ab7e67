/* Output writers: .npy (numpy format 1.0/2.0) and safetensors, both written to a temporary file
 * in the destination directory, fsynced, then renamed over the destination (readers never see
 * a partial file). Data is fp32 in host memory, C order; it is stored little-endian as '<f4' /
 * F32, or converted to IEEE half ('<f2' / F16) with round-to-nearest-even. */
#ifndef BC_WRITERS_H
#define BC_WRITERS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum { BC_OUT_F32 = 0, BC_OUT_F16 = 1 } bc_out_dtype;

#define BC_OUT_MAX_DIMS 8

/* fp32 -> IEEE binary16 bits, round to nearest even; overflow -> inf, NaN stays NaN. */
uint16_t bc_f32_to_f16(float x);
/* IEEE binary16 bits -> fp32 (exact: every half is a float). */
float bc_f16_to_f32(uint16_t h);

/* The .npy header for shape[ndim] (ndim 0..BC_OUT_MAX_DIMS) into out (cap bytes):
 * magic, version, header length, dict, space padding and '\n', total a multiple of 64.
 * version: 1 or 2, or 0 = 1.0 when the dict fits a 16-bit length, else 2.0. */
int bc_npy_header(bc_err *err, char *out, size_t cap, size_t *len, int ndim, const size_t *shape,
                  bc_out_dtype dtype, int version);
/* Writes data (prod(shape) floats) to path as .npy; version as for bc_npy_header. */
int bc_npy_write(bc_err *err, const char *path, const float *data, int ndim, const size_t *shape,
                 bc_out_dtype dtype, int version);

typedef struct {
  const char *name;  /* UTF-8, unique */
  const float *data; /* (prod(shape)) fp32, C order */
  int ndim;
  size_t shape[BC_OUT_MAX_DIMS];
  bc_out_dtype dtype;
} bc_st_out_tensor;

typedef struct {
  const char *key, *value; /* __metadata__ entry, UTF-8 strings */
} bc_st_meta;

/* Writes a safetensors file: header {"__metadata__": {...}, name: {dtype, shape, data_offsets}}
 * in the given tensor order, padded with spaces to a multiple of 8 bytes, then the data.
 * Record model, pooling and layers in meta (e.g. {"model", dir}, {"pooling", "mean"},
 * {"layers", "-1"}). */
int bc_st_write(bc_err *err, const char *path, const bc_st_out_tensor *tensors, size_t n,
                const bc_st_meta *meta, size_t nmeta);

#endif
