/* safetensors reader: mmap the file, validate the header exactly as the reference implementation
 * (huggingface/safetensors) does, plus duplicate-key rejection and overflow-checked sizes.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON header, then the data
 * section. Header: {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ...}, offsets relative to the data section. */
#define _POSIX_C_SOURCE 200809L
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/writers.h"

#define BC_ST_MAX_HEADER 100000000ULL

typedef struct name_idx_ {
  const char *name;
  size_t i;
} name_idx;

struct bc_st_file {
  char *path;
  void *map; /* mmap'd file (NULL for an empty file or bytes in memory) */
  size_t map_len;
  const uint8_t *bytes; /* whole file */
  size_t len;
  bc_st_tensor *tensors; /* sorted by data offset */
  size_t n;
  struct name_idx_ *by_name; /* sorted by name */
  char **meta_keys, **meta_vals;
  size_t nmeta;
};

typedef struct {
  const char *name;
  bc_dtype dtype;
  unsigned bits;
} dtype_desc;

/* Every dtype the reference implementation knows; anything else is an unknown dtype. */
static const dtype_desc dtypes[] = {
    {"F32", BC_DT_F32, 32},      {"F16", BC_DT_F16, 16},      {"BF16", BC_DT_BF16, 16},
    {"F64", BC_DT_F64, 64},      {"I64", BC_DT_I64, 64},      {"I32", BC_DT_I32, 32},
    {"I16", BC_DT_I16, 16},      {"I8", BC_DT_I8, 8},         {"U8", BC_DT_U8, 8},
    {"BOOL", BC_DT_BOOL, 8},     {"U16", BC_DT_OTHER, 16},    {"U32", BC_DT_OTHER, 32},
    {"U64", BC_DT_OTHER, 64},    {"F8_E5M2", BC_DT_OTHER, 8}, {"F8_E4M3", BC_DT_OTHER, 8},
    {"F8_E8M0", BC_DT_OTHER, 8}, {"C64", BC_DT_OTHER, 64},    {"F4", BC_DT_OTHER, 4},
    {"F6_E2M3", BC_DT_OTHER, 6}, {"F6_E3M2", BC_DT_OTHER, 6},
};

static const dtype_desc *find_dtype(const char *s) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (strcmp(dtypes[i].name, s) == 0) return &dtypes[i];
  return NULL;
}

/* Returns the offset of the first invalid byte, or len when s[0..len) is valid UTF-8
 * (no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_invalid_at(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      need = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      need = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      need = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (len - i <= need) return i;
    for (size_t k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += need + 1;
  }
  return len;
}

static void free_file(bc_st_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
  free(f->tensors);
  free(f->by_name);
  for (size_t i = 0; i < f->nmeta; i++) {
    free(f->meta_keys[i]);
    free(f->meta_vals[i]);
  }
  free(f->meta_keys);
  free(f->meta_vals);
  if (f->map) munmap(f->map, f->map_len);
  free(f->path);
  free(f);
}

void bc_st_close(bc_st_file *f) { free_file(f); }

typedef struct {
  uint64_t b, e;
  size_t i;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->b != y->b) return x->b < y->b ? -1 : 1;
  if (x->e != y->e) return x->e < y->e ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

static void shape_str(char *out, size_t n, const bc_st_tensor *t) {
  size_t o = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < t->ndim && o < n; d++)
    o += (size_t)snprintf(out + o, n - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  if (o < n) snprintf(out + o, n - o, "]");
}

/* Fills t from one header entry; begin/end are the raw data_offsets. */
static int parse_tensor(bc_err *err, const char *path, const char *name, json_t *v, bc_st_tensor *t,
                        uint64_t *begin, uint64_t *end) {
  if (!json_is_object(v))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: header entry '%s' is not an object", path, name);
  json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
         *offs = json_object_get(v, "data_offsets");
  if (!json_is_string(dt))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor '%s' has no \"dtype\" string", path, name);
  if (!json_is_array(shape))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor '%s' has no \"shape\" array", path, name);
  if (!json_is_array(offs) || json_array_size(offs) != 2 ||
      !json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)))
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: tensor '%s' has no \"data_offsets\" pair of integers", path, name);
  const char *dts = json_string_value(dt);
  const dtype_desc *d = find_dtype(dts);
  if (!d)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.32s'", path, name,
                   dts);
  snprintf(t->dtype_name, sizeof t->dtype_name, "%s", d->name);
  t->dtype = d->dtype;
  size_t nd = json_array_size(shape);
  if (nd > BC_ST_MAX_DIMS)
    return bc_fail(err, BERTCL_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)",
                   path, name, nd, BC_ST_MAX_DIMS);
  t->ndim = (int)nd;
  size_t numel = 1;
  for (size_t i = 0; i < nd; i++) {
    json_t *e = json_array_get(shape, i);
    if (!json_is_integer(e) || json_integer_value(e) < 0)
      return bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s: tensor '%s' shape entry %zu is not a non-negative integer", path, name,
                     i);
    json_int_t dim = json_integer_value(e);
    t->shape[i] = (int64_t)dim;
    if ((uint64_t)dim > SIZE_MAX || bc_mul_size(numel, (size_t)dim, &numel))
      return bc_fail(err, BERTCL_ERR_OVERFLOW,
                     "%s: tensor '%s': the product of its shape overflows", path, name);
  }
  t->numel = numel;
  size_t bits;
  if (bc_mul_size(numel, d->bits, &bits))
    return bc_fail(err, BERTCL_ERR_OVERFLOW,
                   "%s: tensor '%s': %zu elements of %s overflow the byte size", path, name, numel,
                   d->name);
  if (bits % 8 != 0)
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: tensor '%s': %zu elements of %s do not fill whole bytes", path, name, numel,
                   d->name);
  t->nbytes = bits / 8;
  json_int_t b = json_integer_value(json_array_get(offs, 0));
  json_int_t e = json_integer_value(json_array_get(offs, 1));
  if (b < 0 || e < 0)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor '%s' has negative data_offsets", path, name);
  *begin = (uint64_t)b;
  *end = (uint64_t)e;
  return BERTCL_OK;
}

static int parse_metadata(bc_err *err, bc_st_file *f, json_t *meta) {
  if (json_is_null(meta)) return BERTCL_OK;
  if (!json_is_object(meta))
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"__metadata__\" is not an object", f->path);
  size_t n = json_object_size(meta);
  f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
  f->meta_vals = calloc(n ? n : 1, sizeof *f->meta_vals);
  if (!f->meta_keys || !f->meta_vals) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v) {
    if (!json_is_string(v))
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: \"__metadata__\" value of '%s' is not a string",
                     f->path, k);
    f->meta_keys[f->nmeta] = strdup(k);
    f->meta_vals[f->nmeta] = strdup(json_string_value(v));
    f->nmeta++;
    if (!f->meta_keys[f->nmeta - 1] || !f->meta_vals[f->nmeta - 1])
      return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  return BERTCL_OK;
}

/* Parses and validates f->bytes[0..f->len). */
static int parse(bc_err *err, bc_st_file *f) {
  const char *path = f->path;
  if (f->len == 0)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: file is empty (not a safetensors file)", path);
  if (f->len < 8)
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: file is %zu bytes, too short for the 8-byte header length", path, f->len);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->bytes[i];
  if (hlen > BC_ST_MAX_HEADER)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes",
                   path, (unsigned long long)hlen, BC_ST_MAX_HEADER);
  if (hlen > f->len - 8)
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                   (unsigned long long)hlen, f->len);
  const uint8_t *hdr = f->bytes + 8;
  size_t bad = utf8_invalid_at(hdr, (size_t)hlen);
  if (bad != hlen)
    return bc_fail(err, BERTCL_ERR_UTF8, "%s: header is not valid UTF-8 (byte %zu of the header)",
                   path, bad);
  if (hlen == 0 || hdr[0] != '{')
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: header is not valid JSON: it must start with '{'",
                   path);
  json_error_t jerr;
  json_t *root = json_loadb((const char *)hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    if (json_error_code(&jerr) == json_error_duplicate_key)
      return bc_fail(err, BERTCL_ERR_FORMAT, "%s: header has a duplicate key: %s", path, jerr.text);
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: header is not valid JSON: %s (column %d)", path,
                   jerr.text, jerr.column);
  }
  int st = BERTCL_OK;
  size_t data_len = f->len - 8 - (size_t)hlen;
  const uint8_t *data = hdr + hlen;
  uint64_t *begins = NULL, *ends = NULL;
  span *spans = NULL;
  bc_st_tensor *sorted = NULL;
  if (!json_is_object(root)) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: header is not a JSON object", path);
    goto fail;
  }
  size_t cap = json_object_size(root);
  f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
  begins = calloc(cap ? cap : 1, sizeof *begins);
  ends = calloc(cap ? cap : 1, sizeof *ends);
  if (!f->tensors || !begins || !ends) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", path);
    goto fail;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "__metadata__") == 0) {
      BC_TRY(parse_metadata(err, f, val));
      continue;
    }
    bc_st_tensor *t = &f->tensors[f->n];
    t->name = strdup(key);
    if (!t->name) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", path);
      goto fail;
    }
    f->n++;
    BC_TRY(parse_tensor(err, path, key, val, t, &begins[f->n - 1], &ends[f->n - 1]));
  }
  /* Validate the data layout in offset order: contiguous from 0, no overlap, no gap, each
   * range exactly the tensor's size, the last one ending at the end of the file. */
  spans = malloc((f->n ? f->n : 1) * sizeof *spans);
  if (!spans) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", path);
    goto fail;
  }
  for (size_t i = 0; i < f->n; i++) {
    const bc_st_tensor *t = &f->tensors[i];
    if (ends[i] < begins[i]) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: tensor '%s' data_offsets [%llu, %llu] end before they begin", path, t->name,
                   (unsigned long long)begins[i], (unsigned long long)ends[i]);
      goto fail;
    }
    if (ends[i] > data_len) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: tensor '%s' data_offsets [%llu, %llu] run past the end of the data "
                   "section (%zu bytes)",
                   path, t->name, (unsigned long long)begins[i], (unsigned long long)ends[i],
                   data_len);
      goto fail;
    }
    spans[i] = (span){begins[i], ends[i], i};
  }
  qsort(spans, f->n, sizeof *spans, cmp_span);
  uint64_t cursor = 0;
  for (size_t k = 0; k < f->n; k++) {
    const bc_st_tensor *t = &f->tensors[spans[k].i];
    uint64_t b = spans[k].b, e = spans[k].e;
    if (b < cursor) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: tensor '%s' data_offsets [%llu, %llu] overlap the previous tensor '%s'",
                   path, t->name, (unsigned long long)b, (unsigned long long)e,
                   f->tensors[spans[k - 1].i].name);
      goto fail;
    }
    if (b > cursor) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: gap of %llu unused bytes before tensor '%s' (data_offsets [%llu, %llu])",
                   path, (unsigned long long)(b - cursor), t->name, (unsigned long long)b,
                   (unsigned long long)e);
      goto fail;
    }
    if (e - b != t->nbytes) {
      char shp[200];
      shape_str(shp, sizeof shp, t);
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: tensor '%s' shape %s x %s is %zu bytes but its data_offsets [%llu, %llu] "
                   "cover %llu bytes",
                   path, t->name, shp, t->dtype_name, t->nbytes, (unsigned long long)b,
                   (unsigned long long)e, (unsigned long long)(e - b));
      goto fail;
    }
    cursor = e;
  }
  if (cursor != data_len) {
    st = bc_fail(err, BERTCL_ERR_FORMAT,
                 "%s: %llu trailing bytes after the last tensor (the data section is %zu bytes, "
                 "the tensors end at %llu)",
                 path, (unsigned long long)(data_len - cursor), data_len,
                 (unsigned long long)cursor);
    goto fail;
  }
  /* keep the tensors in offset order, with their data pointers */
  sorted = malloc((f->n ? f->n : 1) * sizeof *sorted);
  f->by_name = malloc((f->n ? f->n : 1) * sizeof *f->by_name);
  if (!sorted || !f->by_name) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", path);
    goto fail;
  }
  for (size_t k = 0; k < f->n; k++) {
    sorted[k] = f->tensors[spans[k].i];
    sorted[k].data = data + spans[k].b;
    f->by_name[k] = (name_idx){sorted[k].name, k};
  }
  free(f->tensors);
  f->tensors = sorted;
  sorted = NULL;
  qsort(f->by_name, f->n, sizeof *f->by_name, cmp_name);
fail:
  free(sorted);
  free(spans);
  free(begins);
  free(ends);
  json_decref(root);
  return st;
}

static int finish_open(bc_err *err, bc_st_file *f, bc_st_file **out) {
  int st = parse(err, f);
  if (st != BERTCL_OK) {
    free_file(f);
    return st;
  }
  *out = f;
  return BERTCL_OK;
}

int bc_st_open(bc_err *err, const char *path, bc_st_file **out) {
  if (!out) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_st_open: out is NULL");
  *out = NULL;
  if (!path) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_st_open: path is NULL");
  bc_st_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory opening %s", path);
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int st = bc_fail(err, errno == ENOENT ? BERTCL_ERR_MISSING : BERTCL_ERR_IO,
                     "cannot open %s: %s", path, strerror(errno));
    free_file(f);
    return st;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    int st = bc_fail(err, BERTCL_ERR_IO, "%s: not a regular file", path);
    close(fd);
    free_file(f);
    return st;
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    close(fd);
    free_file(f);
    return bc_fail(err, BERTCL_ERR_OVERFLOW, "%s: file too large to map", path);
  }
  f->len = (size_t)sb.st_size;
  if (f->len > 0) {
    void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int st = bc_fail(err, BERTCL_ERR_IO, "cannot mmap %s: %s", path, strerror(errno));
      close(fd);
      free_file(f);
      return st;
    }
    f->map = m;
    f->map_len = f->len;
    f->bytes = m;
  }
  close(fd);
  return finish_open(err, f, out);
}

int bc_st_open_mem(bc_err *err, const char *name, const void *data, size_t len, bc_st_file **out) {
  if (!out) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_st_open_mem: out is NULL");
  *out = NULL;
  if (!data && len) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_st_open_mem: data is NULL");
  bc_st_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(name ? name : "<memory>"))) {
    free(f);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  f->bytes = data;
  f->len = len;
  return finish_open(err, f, out);
}

const char *bc_st_path(const bc_st_file *f) { return f ? f->path : ""; }
size_t bc_st_count(const bc_st_file *f) { return f ? f->n : 0; }

const bc_st_tensor *bc_st_at(const bc_st_file *f, size_t i) {
  return f && i < f->n ? &f->tensors[i] : NULL;
}

const bc_st_tensor *bc_st_find(const bc_st_file *f, const char *name) {
  if (!f || !name || f->n == 0) return NULL;
  name_idx key = {name, 0};
  const name_idx *hit = bsearch(&key, f->by_name, f->n, sizeof *f->by_name, cmp_name);
  return hit ? &f->tensors[hit->i] : NULL;
}

const char *bc_st_metadata(const bc_st_file *f, const char *key) {
  if (!f || !key) return NULL;
  for (size_t i = 0; i < f->nmeta; i++)
    if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
  return NULL;
}

static int host_is_little_endian(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

int bc_st_read_f32(bc_err *err, const bc_st_tensor *t, float *dst, size_t n) {
  if (!t || (!dst && n))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_st_read_f32: NULL tensor or destination");
  if (n != t->numel)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "bc_st_read_f32: tensor '%s' has %zu elements, destination %zu", t->name,
                   t->numel, n);
  const uint8_t *p = t->data;
  switch (t->dtype) {
    case BC_DT_F32:
      if (host_is_little_endian()) {
        memcpy(dst, p, n * sizeof *dst);
        return BERTCL_OK;
      }
      for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&dst[i], &u, sizeof u);
      }
      return BERTCL_OK;
    case BC_DT_F16:
      for (size_t i = 0; i < n; i++)
        dst[i] = bc_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
      return BERTCL_OK;
    case BC_DT_BF16:
      for (size_t i = 0; i < n; i++) {
        uint32_t u = ((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8) << 16;
        memcpy(&dst[i], &u, sizeof u);
      }
      return BERTCL_OK;
    default:
      return bc_fail(err, BERTCL_ERR_UNSUPPORTED,
                     "tensor '%s' has dtype %s; only F32, F16 and BF16 weights can be loaded",
                     t->name, t->dtype_name);
  }
}
