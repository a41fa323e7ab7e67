/* bertcl merge: one output file from the shards of a job (or of N --shard K/N jobs). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/writers.h"
#include "job/job.h"
#include "model/safetensors.h"

typedef struct {
  json_t **man;
  int nman;
  bc_st_file **sh;
  size_t nsh;
} merge_set;

static void set_free(merge_set *s) {
  for (int i = 0; i < s->nman; i++) json_decref(s->man[i]);
  for (size_t i = 0; i < s->nsh; i++) bc_st_close(s->sh[i]);
  free(s->man);
  free(s->sh);
}

/* Loads the manifests of dir and checks they form one complete job. */
static int load_set(bc_err *err, const char *dir, merge_set *s) {
  char path[8192];
  int st = BERTCL_OK;
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  if (access(path, F_OK) == 0) {
    s->man = calloc(1, sizeof *s->man);
    if (!s->man) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    if ((st = bc_manifest_load(err, path, &s->man[0]))) return st;
    s->nman = 1;
  } else {
    DIR *d = opendir(dir);
    if (!d) return bc_fail(err, BERTCL_ERR_IO, "cannot open the job directory %s", dir);
    int N = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
      int k, n, used = 0;
      if (sscanf(de->d_name, "manifest-%d-of-%d.json%n", &k, &n, &used) == 2 &&
          de->d_name[used] == '\0') {
        if (N && n != N) {
          closedir(d);
          return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                         "%s holds manifests of different splits (of %d and of %d)", dir, N, n);
        }
        N = n;
      }
    }
    closedir(d);
    if (N < 1)
      return bc_fail(err, BERTCL_ERR_MISSING, "%s has no manifest.json nor manifest-K-of-N.json",
                     dir);
    s->man = calloc((size_t)N, sizeof *s->man);
    if (!s->man) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    s->nman = N;
    for (int k = 0; k < N; k++) {
      char name[64];
      bc_manifest_name(name, sizeof name, k, N);
      snprintf(path, sizeof path, "%s/%s", dir, name);
      if (access(path, F_OK) != 0)
        return bc_fail(err, BERTCL_ERR_MISSING,
                       "%s: %s is missing: run bertcl extract --shard %d/%d first", dir, name, k,
                       N);
      if ((st = bc_manifest_load(err, path, &s->man[k]))) return st;
    }
  }
  for (int k = 0; k < s->nman; k++) {
    json_t *m = s->man[k];
    if (!json_is_true(json_object_get(m, "complete")))
      return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                     "%s: job %d/%d is not complete (%lld rows done); finish it with bertcl "
                     "extract --resume and the same options",
                     dir, k, s->nman,
                     (long long)json_integer_value(json_object_get(m, "rows_completed")));
    if (k == 0) continue;
    json_t *o0 = json_deep_copy(json_object_get(s->man[0], "options"));
    json_t *ok = json_deep_copy(json_object_get(m, "options"));
    json_object_del(o0, "shard");
    json_object_del(ok, "shard");
    int same = json_equal(o0, ok) &&
               json_equal(json_object_get(s->man[0], "model"), json_object_get(m, "model")) &&
               json_equal(json_object_get(json_object_get(s->man[0], "input_id"), "size"),
                          json_object_get(json_object_get(m, "input_id"), "size"));
    json_decref(o0);
    json_decref(ok);
    if (!same)
      return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                     "%s: the manifests of shard 0 and shard %d differ in model, options or "
                     "input; they are not parts of one job",
                     dir, k);
  }
  /* open and verify every shard */
  size_t total = 0;
  for (int k = 0; k < s->nman; k++) total += json_array_size(json_object_get(s->man[k], "shards"));
  s->sh = calloc(total ? total : 1, sizeof *s->sh);
  if (!s->sh) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  for (int k = 0; k < s->nman; k++) {
    json_t *shards = json_object_get(s->man[k], "shards");
    for (size_t i = 0; i < json_array_size(shards); i++) {
      json_t *e = json_array_get(shards, i);
      const char *file = json_string_value(json_object_get(e, "file"));
      const char *sum = json_string_value(json_object_get(e, "checksum"));
      if (!file || !*file || file[0] == '.' || strchr(file, '/'))
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: manifest %d lists shard %zu as '%s', not a file name in the job "
                       "directory",
                       dir, k, i, file ? file : "(none)");
      for (int k2 = 0; k2 <= k; k2++) {
        json_t *sh2 = json_object_get(s->man[k2], "shards");
        for (size_t i2 = 0; i2 < (k2 < k ? json_array_size(sh2) : i); i2++)
          if (!strcmp(file, json_string_value(json_object_get(json_array_get(sh2, i2), "file"))))
            return bc_fail(err, BERTCL_ERR_FORMAT, "%s: the manifests list %s twice", dir, file);
      }
      snprintf(path, sizeof path, "%s/%s", dir, file);
      uint64_t h = 0, size = 0;
      if ((st = bc_file_checksum(err, path, &h, &size))) return st;
      char hx[17];
      snprintf(hx, sizeof hx, "%016llx", (unsigned long long)h);
      if (!sum || strcmp(sum, hx) != 0)
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: checksum %s does not match the manifest's %s; the shard was changed "
                       "or damaged (bertcl extract --resume recomputes it)",
                       path, hx, sum ? sum : "-");
      if ((st = bc_st_open(err, path, &s->sh[s->nsh]))) return st;
      s->nsh++;
    }
  }
  return BERTCL_OK;
}

typedef struct {
  char name[32];
  char dtype[8];
  uint64_t rows, width;
  int offsets;
} out_tensor;

static int64_t rd_i64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return (int64_t)v;
}

/* Every shard holds what its manifest entry says: row ranges that follow each other from 0 in
 * each manifest, that many rows in every pooled tensor, and for ragged features (tokens,
 * words) an offsets tensor of rows + 1 entries rising from 0 to the feature rows. The merge
 * copies bytes by these counts, so nothing it writes or reads can disagree with them. */
static int check_rows(bc_err *err, const merge_set *s, const out_tensor *t, size_t nt) {
  size_t i = 0;
  for (int k = 0; k < s->nman; k++) {
    json_t *shards = json_object_get(s->man[k], "shards");
    json_int_t next = 0;
    for (size_t e = 0; e < json_array_size(shards); e++, i++) {
      const bc_st_file *f = s->sh[i];
      json_t *r = json_object_get(json_array_get(shards, e), "rows");
      json_t *r0 = json_array_get(r, 0), *r1 = json_array_get(r, 1);
      if (!json_is_integer(r0) || !json_is_integer(r1) || json_integer_value(r0) != next ||
          json_integer_value(r1) < next || json_integer_value(r1) - next > ((json_int_t)1 << 40))
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: the manifest's row range of this shard is not [%lld, n) with n >= "
                       "%lld",
                       bc_st_path(f), (long long)next, (long long)next);
      uint64_t rows = (uint64_t)(json_integer_value(r1) - next);
      next = json_integer_value(r1);
      for (size_t q = 0; q < nt; q++) {
        const bc_st_tensor *x = bc_st_find(f, t[q].name);
        if (t[q].offsets) continue;
        int ragged = q + 1 < nt && t[q + 1].offsets;
        if (!ragged) {
          if ((uint64_t)x->shape[0] != rows)
            return bc_fail(err, BERTCL_ERR_FORMAT,
                           "%s: tensor %s has %lld rows, the manifest says %llu",
                           bc_st_path(f), t[q].name, (long long)x->shape[0],
                           (unsigned long long)rows);
          continue;
        }
        const bc_st_tensor *o = bc_st_find(f, t[q + 1].name);
        if ((uint64_t)o->numel != rows + 1)
          return bc_fail(err, BERTCL_ERR_FORMAT,
                         "%s: tensor %s has %llu entries, %llu rows need %llu", bc_st_path(f),
                         t[q + 1].name, (unsigned long long)o->numel, (unsigned long long)rows,
                         (unsigned long long)rows + 1);
        const unsigned char *p = o->data;
        int64_t prev = 0;
        for (uint64_t j = 0; j <= rows; j++) {
          int64_t v = rd_i64(p + 8 * j);
          if ((j == 0 && v != 0) || v < prev || v > x->shape[0] ||
              (j == rows && v != x->shape[0]))
            return bc_fail(err, BERTCL_ERR_FORMAT,
                           "%s: tensor %s entry %llu (%lld) is not an offset into the %lld rows "
                           "of %s (they rise from 0 to the row count)",
                           bc_st_path(f), t[q + 1].name, (unsigned long long)j, (long long)v,
                           (long long)x->shape[0], t[q].name);
          prev = v;
        }
      }
    }
  }
  return BERTCL_OK;
}

/* The output tensors: from the manifest's options (so an empty job still has them), sizes
 * summed over the shards. */
static int plan_tensors(bc_err *err, const merge_set *s, out_tensor *t, size_t *nt,
                        uint64_t *nrows) {
  const json_t *m = s->man[0], *o = json_object_get(m, "options");
  const json_t *md = json_object_get(m, "model");
  int C = (int)json_integer_value(json_object_get(md, "hidden_size"));
  const char *layers = json_string_value(json_object_get(o, "layers"));
  const char *combine = json_string_value(json_object_get(o, "combine"));
  const char *dtype = json_string_value(json_object_get(o, "dtype"));
  const char *pool = json_string_value(json_object_get(o, "pool"));
  if (!layers || !combine || !dtype || !pool || C <= 0)
    return bc_fail(err, BERTCL_ERR_FORMAT, "manifest options are incomplete");
  int nl = 1;
  for (const char *p = layers; *p; p++) nl += *p == ',';
  uint64_t width = strcmp(combine, "concat") == 0 ? (uint64_t)nl * C : (uint64_t)C;
  const char *fd = strcmp(dtype, "f16") == 0 ? "F16" : "F32";
  *nt = 0;
  uint64_t rows = 0;
  for (int k = 0; k < s->nman; k++) {
    json_t *sh = json_object_get(s->man[k], "shards");
    for (size_t i = 0; i < json_array_size(sh); i++) {
      json_t *r = json_object_get(json_array_get(sh, i), "rows");
      rows += (uint64_t)(json_integer_value(json_array_get(r, 1)) -
                         json_integer_value(json_array_get(r, 0)));
    }
  }
  *nrows = rows;
  const char *names[] = {"cls", "mean", "max", "pooler"};
  if (strcmp(pool, "none") != 0) {
    for (int k = 0; k < 4; k++) {
      /* pool is a comma list in canonical order */
      const char *p = strstr(pool, names[k]);
      size_t l = strlen(names[k]);
      if (!p || (p != pool && p[-1] != ',') || (p[l] && p[l] != ',')) continue;
      out_tensor *x = &t[(*nt)++];
      snprintf(x->name, sizeof x->name, "%s", names[k]);
      snprintf(x->dtype, sizeof x->dtype, "%s", fd);
      x->rows = rows;
      x->width = k == 3 ? (uint64_t)C : width;
      x->offsets = 0;
    }
  }
  const char *rag[2] = {"tokens", "words"};
  int on[2] = {json_is_true(json_object_get(o, "tokens")),
               strcmp(json_string_value(json_object_get(o, "words"))
                          ? json_string_value(json_object_get(o, "words"))
                          : "none",
                      "none") != 0};
  for (int q = 0; q < 2; q++) {
    if (!on[q]) continue;
    out_tensor *x = &t[(*nt)++];
    snprintf(x->name, sizeof x->name, "%s", rag[q]);
    snprintf(x->dtype, sizeof x->dtype, "%s", fd);
    x->width = width;
    x->rows = 0;
    x->offsets = 0;
    for (size_t i = 0; i < s->nsh; i++) {
      const bc_st_tensor *st = bc_st_find(s->sh[i], rag[q]);
      if (!st)
        return bc_fail(err, BERTCL_ERR_FORMAT, "%s has no tensor %s", bc_st_path(s->sh[i]), rag[q]);
      x->rows += (uint64_t)st->shape[0];
    }
    out_tensor *y = &t[(*nt)++];
    snprintf(y->name, sizeof y->name, "%s.offsets", rag[q]);
    snprintf(y->dtype, sizeof y->dtype, "I64");
    y->rows = rows + 1;
    y->width = 0;
    y->offsets = 1;
  }
  /* every shard must carry each tensor with the expected dtype and width */
  for (size_t i = 0; i < s->nsh; i++)
    for (size_t q = 0; q < *nt; q++) {
      const bc_st_tensor *st = bc_st_find(s->sh[i], t[q].name);
      if (!st || strcmp(st->dtype_name, t[q].dtype) != 0 ||
          (!t[q].offsets && (st->ndim != 2 || (uint64_t)st->shape[1] != t[q].width)) ||
          (t[q].offsets && st->ndim != 1))
        return bc_fail(err, BERTCL_ERR_FORMAT, "%s: tensor %s is missing or not %s (.., %llu)",
                       bc_st_path(s->sh[i]), t[q].name, t[q].dtype, (unsigned long long)t[q].width);
    }
  return check_rows(err, s, t, *nt);
}

static int write_offsets(bc_err *err, bc_afile *f, const merge_set *s, const char *name) {
  int64_t base = 0;
  int64_t buf[1024];
  size_t nb = 0;
  int st = BERTCL_OK;
  for (size_t i = 0; i < s->nsh && st == BERTCL_OK; i++) {
    const bc_st_tensor *t = bc_st_find(s->sh[i], name);
    const unsigned char *p = t->data;
    for (size_t r = i == 0 ? 0 : 1; r < t->numel; r++) {
      buf[nb++] = base + rd_i64(p + 8 * r);
      if (nb == 1024) {
        if ((st = bc_afile_write(err, f, buf, sizeof buf))) return st;
        nb = 0;
      }
    }
    base += rd_i64(p + 8 * (t->numel - 1));
  }
  if (s->nsh == 0) buf[nb++] = 0;
  if (nb) st = bc_afile_write(err, f, buf, nb * 8);
  return st;
}

static int merge_st(bc_err *err, const merge_set *s, const out_tensor *t, size_t nt, bc_afile *f) {
  bc_st_desc d[8];
  for (size_t q = 0; q < nt; q++)
    d[q] = (bc_st_desc){t[q].name, t[q].dtype, t[q].offsets ? 1 : 2, {t[q].rows, t[q].width}};
  const char *meta[14];
  int nmeta = bc_job_meta(s->man[0], meta);
  char *hdr = NULL;
  size_t hl = 0;
  int st = bc_st_header(err, d, nt, meta, (size_t)nmeta, &hdr, &hl);
  if (st) return st;
  st = bc_afile_write(err, f, hdr, hl);
  free(hdr);
  for (size_t q = 0; q < nt && st == BERTCL_OK; q++) {
    if (t[q].offsets) {
      st = write_offsets(err, f, s, t[q].name);
      continue;
    }
    for (size_t i = 0; i < s->nsh && st == BERTCL_OK; i++) {
      const bc_st_tensor *x = bc_st_find(s->sh[i], t[q].name);
      st = bc_afile_write(err, f, x->data, x->nbytes);
    }
  }
  return st;
}

static int merge_npy(bc_err *err, const merge_set *s, const out_tensor *t, size_t nt, bc_afile *f) {
  if (nt != 1 || t[0].offsets)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   ".npy holds one array and this job has %zu outputs%s; merge to .safetensors", nt,
                   nt == 1 ? "" : " (or ragged token/word features)");
  char hdr[4096];
  size_t hl = 0, shape[2] = {(size_t)t[0].rows, (size_t)t[0].width};
  int st = bc_npy_header(err, hdr, sizeof hdr, &hl, 2, shape,
                         strcmp(t[0].dtype, "F16") == 0 ? BC_OUT_F16 : BC_OUT_F32, 0);
  if (st) return st;
  st = bc_afile_write(err, f, hdr, hl);
  for (size_t i = 0; i < s->nsh && st == BERTCL_OK; i++) {
    const bc_st_tensor *x = bc_st_find(s->sh[i], t[0].name);
    st = bc_afile_write(err, f, x->data, x->nbytes);
  }
  return st;
}

static json_t *vec_json(const float *v, uint64_t n) {
  for (uint64_t c = 0; c < n; c++)
    if (!isfinite(v[c])) return json_null(); /* a bad input line: NaN row */
  json_t *a = json_array();
  for (uint64_t c = 0; c < n; c++) json_array_append_new(a, json_real(v[c]));
  return a;
}

static int merge_jsonl(bc_err *err, const merge_set *s, const out_tensor *t, size_t nt,
                       bc_afile *f) {
  int st = BERTCL_OK;
  for (size_t i = 0; i < s->nsh && st == BERTCL_OK; i++) {
    float *v[8] = {0};
    const int64_t *off[8] = {0};
    int64_t *offb[8] = {0};
    uint64_t rows = 0;
    for (size_t q = 0; q < nt && st == BERTCL_OK; q++) {
      const bc_st_tensor *x = bc_st_find(s->sh[i], t[q].name);
      if (t[q].offsets) {
        offb[q] = malloc(x->numel * 8);
        if (!offb[q])
          st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        else
          for (size_t r = 0; r < x->numel; r++)
            offb[q][r] = rd_i64((const unsigned char *)x->data + 8 * r);
        off[q] = offb[q];
        rows = x->numel - 1;
      } else {
        v[q] = malloc((x->numel ? x->numel : 1) * 4);
        if (!v[q])
          st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        else
          st = bc_st_read_f32(err, x, v[q], x->numel);
        if (!(q + 1 < nt && t[q + 1].offsets)) rows = (uint64_t)x->shape[0];
      }
    }
    for (uint64_t r = 0; r < rows && st == BERTCL_OK; r++) {
      json_t *obj = json_object();
      for (size_t q = 0; q < nt; q++) {
        if (t[q].offsets) continue;
        uint64_t w = t[q].width;
        if (q + 1 < nt && t[q + 1].offsets) {
          json_t *arr = json_array();
          for (int64_t k = off[q + 1][r]; k < off[q + 1][r + 1]; k++)
            json_array_append_new(arr, vec_json(v[q] + (uint64_t)k * w, w));
          json_object_set_new(obj, t[q].name, arr);
        } else {
          json_object_set_new(obj, t[q].name, vec_json(v[q] + r * w, w));
        }
      }
      char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
      json_decref(obj);
      if (!line) {
        st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        break;
      }
      size_t l = strlen(line);
      line[l] = '\n';
      st = bc_afile_write(err, f, line, l + 1);
      free(line);
    }
    for (size_t q = 0; q < 8; q++) {
      free(v[q]);
      free(offb[q]);
    }
  }
  return st;
}

int bc_job_merge(bc_err *err, const char *dir, const char *out, bc_merge_format format,
                 uint64_t *rows_out) {
  merge_set s = {0};
  out_tensor t[8] = {0};
  size_t nt = 0;
  bc_afile f = {.fd = -1};
  int st = load_set(err, dir, &s);
  uint64_t rows = 0;
  if (st == BERTCL_OK) st = plan_tensors(err, &s, t, &nt, &rows);
  if (st == BERTCL_OK) st = bc_afile_open(err, &f, out);
  if (st == BERTCL_OK) {
    size_t l = strlen(out);
    if (format == BC_MERGE_AUTO)
      format = (l >= 4 && strcmp(out + l - 4, ".npy") == 0)      ? BC_MERGE_NPY
               : (l >= 6 && strcmp(out + l - 6, ".jsonl") == 0) ? BC_MERGE_JSONL
                                                                : BC_MERGE_SAFETENSORS;
    if (format == BC_MERGE_NPY)
      st = merge_npy(err, &s, t, nt, &f);
    else if (format == BC_MERGE_JSONL)
      st = merge_jsonl(err, &s, t, nt, &f);
    else
      st = merge_st(err, &s, t, nt, &f);
    if (st == BERTCL_OK)
      st = bc_afile_commit(err, &f);
    else
      bc_afile_abort(&f);
  }
  if (st == BERTCL_OK && rows_out) *rows_out = rows;
  set_free(&s);
  return st;
}
