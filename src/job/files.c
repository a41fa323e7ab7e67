/* Atomic streaming files, checksums, the safetensors header, and manifest.json. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job/job.h"

int bc_file_checksum(bc_err *err, const char *path, uint64_t *hash, uint64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return bc_fail(err, BERTCL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  char *buf = malloc(1 << 20);
  if (!buf) {
    fclose(f);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  uint64_t h = BC_FNV_INIT, n = 0;
  size_t r;
  while ((r = fread(buf, 1, 1 << 20, f)) > 0) {
    h = bc_fnv1a64(h, buf, r);
    n += r;
  }
  int bad = ferror(f);
  fclose(f);
  free(buf);
  if (bad) return bc_fail(err, BERTCL_ERR_IO, "read of %s failed", path);
  *hash = h;
  *size = n;
  return BERTCL_OK;
}

/* ---- safetensors header ----------------------------------------------------------------- */

size_t bc_dtype_size(const char *dtype) {
  if (!strcmp(dtype, "F32")) return 4;
  if (!strcmp(dtype, "F16")) return 2;
  if (!strcmp(dtype, "I64")) return 8;
  return 0;
}

int bc_st_header(bc_err *err, const bc_st_desc *t, size_t n, const char *const *meta_kv,
                 size_t nmeta, char **hdr, size_t *len) {
  *hdr = NULL;
  json_t *root = json_object();
  if (!root) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  int st = BERTCL_OK;
  if (nmeta) {
    json_t *m = json_object();
    json_object_set_new(root, "__metadata__", m);
    for (size_t i = 0; i < nmeta; i++)
      json_object_set_new(m, meta_kv[2 * i], json_string(meta_kv[2 * i + 1]));
  }
  uint64_t off = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t numel = 1;
    json_t *shape = json_array();
    for (int d = 0; d < t[i].ndim; d++) {
      numel *= t[i].shape[d];
      json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
    }
    uint64_t end = off + numel * bc_dtype_size(t[i].dtype);
    json_object_set_new(root, t[i].name,
                        json_pack("{s:s, s:o, s:[I, I]}", "dtype", t[i].dtype, "shape", shape,
                                  "data_offsets", (json_int_t)off, (json_int_t)end));
    off = end;
  }
  char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  if (!text) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory (safetensors header)");
  size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
  char *h = malloc(8 + padded);
  if (!h) {
    free(text);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  uint64_t hl = padded;
  for (int i = 0; i < 8; i++) h[i] = (char)((hl >> (8 * i)) & 0xff);
  memcpy(h + 8, text, tl);
  memset(h + 8 + tl, ' ', padded - tl);
  free(text);
  *hdr = h;
  *len = 8 + padded;
  return st;
}

/* ---- manifest --------------------------------------------------------------------------- */

void bc_manifest_name(char *out, size_t n, int k, int nn) {
  if (nn > 1)
    snprintf(out, n, "manifest-%d-of-%d.json", k, nn);
  else
    snprintf(out, n, "manifest.json");
}

void bc_shard_file_name(char *out, size_t n, int k, int nn, size_t index) {
  if (nn > 1)
    snprintf(out, n, "shard-%d-of-%d-%05zu.safetensors", k, nn, index);
  else
    snprintf(out, n, "shard-%05zu.safetensors", index);
}

/* The format tag and the fields every reader relies on. */
static int manifest_checked(bc_err *err, const char *name, json_t *m, json_t **out) {
  const char *fmt = json_string_value(json_object_get(m, "format"));
  if (!fmt || strcmp(fmt, BC_MANIFEST_FORMAT) != 0 ||
      !json_is_array(json_object_get(m, "shards"))) {
    json_decref(m);
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not a bertcl job manifest (format %s)", name,
                   BC_MANIFEST_FORMAT);
  }
  *out = m;
  return BERTCL_OK;
}

int bc_manifest_load(bc_err *err, const char *path, json_t **out) {
  json_error_t je;
  *out = NULL;
  json_t *m = json_load_file(path, 0, &je);
  if (!m)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", path, je.text,
                   je.line);
  return manifest_checked(err, path, m, out);
}

int bc_manifest_parse(bc_err *err, const char *name, const char *text, size_t len,
                      json_t **out) {
  json_error_t je;
  *out = NULL;
  json_t *m = json_loadb(text, len, 0, &je);
  if (!m)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", name, je.text,
                   je.line);
  return manifest_checked(err, name, m, out);
}

int bc_manifest_save(bc_err *err, const char *path, const json_t *m) {
  char *text = json_dumps(m, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  if (!text) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory (manifest)");
  size_t n = strlen(text);
  text[n] = '\n'; /* json_dumps leaves room for its NUL: reuse it for a final newline */
  int st = bc_write_file_atomic(err, path, text, n + 1);
  free(text);
  return st;
}

static void diff_objects(char *msg, size_t cap, const char *what, const json_t *old,
                         const json_t *now) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)now, key, v) {
    json_t *o = json_object_get(old, key);
    if (o && json_equal(o, v)) continue;
    char *a = o ? json_dumps(o, JSON_ENCODE_ANY | JSON_COMPACT) : strdup("(absent)");
    char *b = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    size_t l = strlen(msg);
    snprintf(msg + l, cap - l, "\n  %s.%s: manifest has %s, this run has %s", what, key,
             a ? a : "?", b ? b : "?");
    free(a);
    free(b);
  }
  json_object_foreach((json_t *)old, key, v) {
    if (json_object_get(now, key)) continue;
    size_t l = strlen(msg);
    snprintf(msg + l, cap - l, "\n  %s.%s: in the manifest, not in this run", what, key);
  }
}

int bc_manifest_check(bc_err *err, const json_t *m, const json_t *input, const json_t *model,
                      const json_t *options) {
  char msg[3000] = "";
  diff_objects(msg, sizeof msg, "input", json_object_get(m, "input_id"), input);
  diff_objects(msg, sizeof msg, "model", json_object_get(m, "model"), model);
  diff_objects(msg, sizeof msg, "options", json_object_get(m, "options"), options);
  if (!msg[0]) return BERTCL_OK;
  return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                 "cannot resume: this run differs from the job in the output directory:%s\n"
                 "rerun with the job's options, or write to a new output directory",
                 msg);
}

int bc_job_meta(const json_t *m, const char **kv) {
  const json_t *o = json_object_get(m, "options");
  const char *keys[] = {"pooling", "pool",    "layers", "layers",
                        "combine", "combine", "dtype",  "dtype"};
  size_t n = 0;
  kv[2 * n] = "model";
  kv[2 * n++ + 1] = json_string_value(json_object_get(json_object_get(m, "model"), "dir"));
  for (int i = 0; i < 4; i++) {
    kv[2 * n] = keys[2 * i];
    kv[2 * n++ + 1] = json_string_value(json_object_get(o, keys[2 * i + 1]));
  }
  kv[2 * n] = "normalize";
  kv[2 * n++ + 1] = json_is_true(json_object_get(o, "normalize")) ? "true" : "false";
  kv[2 * n] = "generator";
  kv[2 * n++ + 1] = json_string_value(json_object_get(m, "generator"));
  for (size_t i = 0; i < n; i++)
    if (!kv[2 * i + 1]) kv[2 * i + 1] = "";
  return (int)n;
}
