/* .npy and safetensors writers; see writers.h. */
#define _POSIX_C_SOURCE 200809L
#include "io/writers.h"

#include "io/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint16_t bc_f32_to_f16(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | (uint16_t)((a >> 13) & 0x3FFu); /* NaN */
  if (a >= 0x477FF000u) return sign | 0x7C00u; /* >= 65520 rounds to inf (and inf) */
  if (a < 0x38800000u) {                       /* below 2^-14: half subnormal or zero */
    if (a < 0x33000000u) return sign;          /* <= 2^-25 rounds to (even) zero */
    uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return sign | (uint16_t)r;
  }
  uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3FFu);
  uint32_t rem = a & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return sign | (uint16_t)h;
}

float bc_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    float v = (float)mant * 5.9604644775390625e-8f; /* 2^-24: zero or subnormal */
    return sign ? -v : v;
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Writes n floats as F32 or F16 little-endian, in chunks. */
static int write_values(bc_err *err, bc_afile *f, const float *data, size_t n, bc_out_dtype dt) {
  unsigned char buf[16384];
  size_t per = dt == BC_OUT_F16 ? 2 : 4, chunk = sizeof buf / per;
  for (size_t i = 0; i < n; i += chunk) {
    size_t m = n - i < chunk ? n - i : chunk;
    for (size_t k = 0; k < m; k++) {
      if (dt == BC_OUT_F16) {
        uint16_t h = bc_f32_to_f16(data[i + k]);
        buf[2 * k] = (unsigned char)(h & 0xFF);
        buf[2 * k + 1] = (unsigned char)(h >> 8);
      } else {
        uint32_t u;
        memcpy(&u, &data[i + k], sizeof u);
        for (int b = 0; b < 4; b++) buf[4 * k + (size_t)b] = (unsigned char)(u >> (8 * b));
      }
    }
    int st = bc_afile_write(err, f, buf, m * per);
    if (st) return st;
  }
  return BERTCL_OK;
}

static int count_elems(bc_err *err, int ndim, const size_t *shape, size_t *numel, size_t *nbytes,
                       bc_out_dtype dt) {
  if (ndim < 0 || ndim > BC_OUT_MAX_DIMS || (ndim > 0 && !shape))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "%d dimensions (0..%d)", ndim, BC_OUT_MAX_DIMS);
  if (dt != BC_OUT_F32 && dt != BC_OUT_F16)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "unknown output dtype %d", (int)dt);
  size_t n = 1;
  for (int d = 0; d < ndim; d++)
    if (bc_mul_size(n, shape[d], &n))
      return bc_fail(err, BERTCL_ERR_OVERFLOW, "shape product overflows");
  if (bc_mul_size(n, dt == BC_OUT_F16 ? 2 : 4, nbytes))
    return bc_fail(err, BERTCL_ERR_OVERFLOW, "byte size overflows");
  *numel = n;
  return BERTCL_OK;
}

/* ---- .npy ---------------------------------------------------------------------------------- */

int bc_npy_header(bc_err *err, char *out, size_t cap, size_t *len, int ndim, const size_t *shape,
                  bc_out_dtype dtype, int version) {
  size_t numel, nbytes;
  int st = count_elems(err, ndim, shape, &numel, &nbytes, dtype);
  if (st) return st;
  if (version < 0 || version > 2)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "npy version %d (0 = auto, 1, 2)", version);
  char dict[512];
  size_t o =
      (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       dtype == BC_OUT_F16 ? "<f2" : "<f4");
  for (int d = 0; d < ndim; d++)
    o += (size_t)snprintf(dict + o, sizeof dict - o, "%s%zu", d ? ", " : "", shape[d]);
  o += (size_t)snprintf(dict + o, sizeof dict - o, "%s), }", ndim == 1 ? "," : "");
  if (o >= sizeof dict) return bc_fail(err, BERTCL_ERR_INTERNAL, "npy header too long");
  if (version == 0) version = (o + 1 + 10 + 63) / 64 * 64 - 10 <= 65535 ? 1 : 2;
  size_t prefix = version == 1 ? 10 : 12;
  size_t total = (prefix + o + 1 + 63) / 64 * 64; /* dict + '\n', padded to 64 */
  size_t hlen = total - prefix;
  if (cap < total) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "npy header needs %zu bytes", total);
  memcpy(out, "\x93NUMPY", 6);
  out[6] = (char)version;
  out[7] = 0;
  if (version == 1) {
    out[8] = (char)(hlen & 0xFF);
    out[9] = (char)(hlen >> 8);
  } else {
    for (int b = 0; b < 4; b++) out[8 + b] = (char)((hlen >> (8 * b)) & 0xFF);
  }
  memcpy(out + prefix, dict, o);
  memset(out + prefix + o, ' ', total - prefix - o - 1);
  out[total - 1] = '\n';
  *len = total;
  return BERTCL_OK;
}

int bc_npy_write(bc_err *err, const char *path, const float *data, int ndim, const size_t *shape,
                 bc_out_dtype dtype, int version) {
  if (!path) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_npy_write: path is NULL");
  char hdr[640];
  size_t hlen, numel, nbytes;
  int st = bc_npy_header(err, hdr, sizeof hdr, &hlen, ndim, shape, dtype, version);
  if (st) return st;
  if ((st = count_elems(err, ndim, shape, &numel, &nbytes, dtype))) return st;
  if (numel && !data) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_npy_write: data is NULL");
  bc_afile f;
  if ((st = bc_afile_open(err, &f, path))) return st;
  if ((st = bc_afile_write(err, &f, hdr, hlen)) || (st = write_values(err, &f, data, numel, dtype))) {
    bc_afile_abort(&f);
    return st;
  }
  return bc_afile_commit(err, &f);
}

/* ---- safetensors --------------------------------------------------------------------------- */

int bc_st_write(bc_err *err, const char *path, const bc_st_out_tensor *tensors, size_t n,
                const bc_st_meta *meta, size_t nmeta) {
  if (!path || (n && !tensors) || (nmeta && !meta))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_st_write: NULL argument");
  int st = BERTCL_OK;
  char *text = NULL, *hdr = NULL;
  json_t *root = json_object();
  if (!root) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  if (nmeta) {
    json_t *m = json_object();
    if (!m || json_object_set_new(root, "__metadata__", m) != 0) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      goto done;
    }
    for (size_t i = 0; i < nmeta; i++) {
      json_t *v = meta[i].value ? json_string(meta[i].value) : NULL;
      int bad = !meta[i].key || !v || json_object_get(m, meta[i].key);
      if (bad) json_decref(v);
      /* json_object_set_new releases v itself when it fails (invalid UTF-8 key) */
      if (bad || json_object_set_new(m, meta[i].key, v) != 0) {
        st = bc_fail(err, BERTCL_ERR_INVALID_ARG,
                     "%s: metadata entry %zu: NULL, duplicate or invalid UTF-8", path, i);
        goto done;
      }
    }
  }
  size_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    const bc_st_out_tensor *t = &tensors[i];
    size_t numel, nbytes, end;
    if ((st = count_elems(err, t->ndim, t->shape, &numel, &nbytes, t->dtype))) goto done;
    if (!t->name || strcmp(t->name, "__metadata__") == 0 || json_object_get(root, t->name)) {
      st = bc_fail(err, BERTCL_ERR_INVALID_ARG, "%s: tensor %zu: NULL, reserved or duplicate name",
                   path, i);
      goto done;
    }
    if (numel && !t->data) {
      st = bc_fail(err, BERTCL_ERR_INVALID_ARG, "%s: tensor '%s' has no data", path, t->name);
      goto done;
    }
    if (bc_add_size(offset, nbytes, &end)) {
      st = bc_fail(err, BERTCL_ERR_OVERFLOW, "%s: data size overflows", path);
      goto done;
    }
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->ndim; d++)
      json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", t->dtype == BC_OUT_F16 ? "F16" : "F32",
                          "shape", shape, "data_offsets", (json_int_t)offset, (json_int_t)end);
    json_t *key_ok = json_string(t->name); /* NULL for invalid UTF-8 */
    if (!e || !key_ok || json_object_set_new(root, t->name, e) != 0) {
      json_decref(key_ok);
      if (!key_ok) json_decref(e);
      st = bc_fail(err, BERTCL_ERR_INVALID_ARG, "%s: tensor %zu: name is not valid UTF-8", path, i);
      goto done;
    }
    json_decref(key_ok);
    offset = end;
  }
  text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (!text) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
  hdr = malloc(8 + padded);
  if (!hdr) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int b = 0; b < 8; b++) hdr[b] = (char)(((uint64_t)padded >> (8 * b)) & 0xFF);
  memcpy(hdr + 8, text, tl);
  memset(hdr + 8 + tl, ' ', padded - tl);
  bc_afile f;
  if ((st = bc_afile_open(err, &f, path))) goto done;
  st = bc_afile_write(err, &f, hdr, 8 + padded);
  for (size_t i = 0; st == BERTCL_OK && i < n; i++) {
    size_t numel = 1;
    for (int d = 0; d < tensors[i].ndim; d++) numel *= tensors[i].shape[d];
    st = write_values(err, &f, tensors[i].data, numel, tensors[i].dtype);
  }
  if (st) {
    bc_afile_abort(&f);
    goto done;
  }
  st = bc_afile_commit(err, &f);
done:
  free(hdr);
  free(text);
  json_decref(root);
  return st;
}
