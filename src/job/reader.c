/* Streaming input for batch jobs: one record at a time, a byte-range 1/N split, a hash of what
 * was read, and bad lines reported (never dropped: row numbers do not shift). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "job/job.h"

const char *bc_bad_kind_str(int kind) {
  switch (kind) {
    case BC_BAD_NONE:
      return "ok";
    case BC_BAD_UTF8:
      return "invalid UTF-8";
    case BC_BAD_JSON:
      return "not a JSON object with a \"text\" string";
    case BC_BAD_COLUMN:
      return "missing TSV column";
    case BC_BAD_NUL:
      return "NUL byte in the line";
    default:
      return "bad line";
  }
}

void bc_record_clear(bc_record *r) {
  free(r->text);
  free(r->pair);
  memset(r, 0, sizeof *r);
}

struct bc_reader {
  FILE *f;
  const char *const *texts, *const *pairs; /* in memory (bc_reader_open_texts): ntexts texts */
  size_t ntexts;
  const char *path;
  bc_input_kind kind;
  int col;
  uint64_t size, start, end, off, lineno;
  uint64_t hash;
  char *line;
  size_t cap;
};

/* Reads one raw line (without the newline) into r->line; returns its length, -1 at EOF. */
static long read_line(bc_reader *r, int *err_out) {
  errno = 0;
  ssize_t len = getline(&r->line, &r->cap, r->f);
  if (len < 0) {
    *err_out = ferror(r->f) ? errno : 0;
    return -1;
  }
  r->hash = bc_fnv1a64(r->hash, r->line, (size_t)len);
  r->off += (uint64_t)len;
  r->lineno++;
  while (len > 0 && (r->line[len - 1] == '\n' || r->line[len - 1] == '\r')) r->line[--len] = '\0';
  return (long)len;
}

static char *tsv_field(const char *line, size_t len, int col, size_t *flen) {
  const char *p = line, *e = line + len;
  for (int i = 0; i < col; i++) {
    p = memchr(p, '\t', (size_t)(e - p));
    if (!p) return NULL;
    p++;
  }
  const char *end = memchr(p, '\t', (size_t)(e - p));
  size_t n = end ? (size_t)(end - p) : (size_t)(e - p);
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = '\0';
    *flen = n;
  }
  return s;
}

/* The part of opening shared by files and memory: r->f, r->size (0 = unknown) are set. */
static int reader_start(bc_err *err, bc_reader *r, const char *column, int shard_k,
                        int shard_n) {
  const char *path = r->path;
  int e = 0;
  r->end = UINT64_MAX;
  if (r->kind == BC_IN_TSV) {
    char *endp = NULL;
    long v = column ? strtol(column, &endp, 10) : -1;
    if (column && *column && *endp == '\0' && v >= 0 && v < 1 << 20) {
      r->col = (int)v;
    } else {
      long len = read_line(r, &e);
      if (len < 0)
        return bc_fail(err, BERTCL_ERR_FORMAT, "%s: no header line to find column '%s'", path,
                       column ? column : "");
      size_t fl;
      for (int i = 0;; i++) {
        char *name = tsv_field(r->line, (size_t)len, i, &fl);
        if (!name) break;
        int hit = column && strcmp(name, column) == 0;
        free(name);
        if (hit) {
          r->col = i;
          break;
        }
      }
      if (r->col < 0)
        return bc_fail(err, BERTCL_ERR_INVALID_ARG, "%s: no column named '%s' in the header line",
                       path, column ? column : "");
    }
  }
  if (shard_n > 1) {
    uint64_t s = r->size * (uint64_t)shard_k / (uint64_t)shard_n;
    uint64_t en = r->size * (uint64_t)(shard_k + 1) / (uint64_t)shard_n;
    /* the first line that starts at or after s (and after the header) */
    if (s > r->off) {
      if (fseeko(r->f, (off_t)(s - 1), SEEK_SET) != 0)
        return bc_fail(err, BERTCL_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
      int c = fgetc(r->f);
      uint64_t pos = s;
      while (c != EOF && c != '\n') {
        c = fgetc(r->f);
        pos++;
      }
      /* pos: the offset after the newline that ends the line holding byte s-1 */
      if (c == EOF) pos = r->size;
      r->off = pos;
      if (fseeko(r->f, (off_t)pos, SEEK_SET) != 0)
        return bc_fail(err, BERTCL_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
      r->lineno = 0; /* unknown: line numbers of a K>0 range count from its start */
    }
    r->end = en;
  }
  r->start = r->off;
  return BERTCL_OK;
}

static bc_reader *reader_new(const char *path, bc_input_kind kind) {
  bc_reader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->path = path;
  r->kind = kind;
  r->col = -1;
  r->hash = BC_FNV_INIT;
  return r;
}

static int check_split(bc_err *err, int shard_k, int shard_n) {
  if (shard_n < 1 || shard_k < 0 || shard_k >= shard_n)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "--shard %d/%d: K must be in 0..N-1", shard_k,
                   shard_n);
  return BERTCL_OK;
}

int bc_reader_open(bc_err *err, const char *path, bc_input_kind kind, const char *column,
                   int shard_k, int shard_n, bc_reader **out) {
  *out = NULL;
  int st = check_split(err, shard_k, shard_n);
  if (st) return st;
  int is_stdin = strcmp(path, "-") == 0;
  if (is_stdin && shard_n > 1)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "--shard K/N needs a regular input file, not stdin");
  bc_reader *r = reader_new(path, kind);
  if (!r) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  r->f = is_stdin ? stdin : fopen(path, "rb");
  if (!r->f) {
    st = bc_fail(err, BERTCL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    goto fail;
  }
  if (!is_stdin) {
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
      if (shard_n > 1) {
        st = bc_fail(err, BERTCL_ERR_INVALID_ARG, "%s: --shard K/N needs a regular file", path);
        goto fail;
      }
    } else {
      r->size = (uint64_t)sb.st_size;
    }
  }
  if ((st = reader_start(err, r, column, shard_k, shard_n))) goto fail;
  *out = r;
  return BERTCL_OK;
fail:
  bc_reader_close(r);
  return st;
}

int bc_reader_open_texts(bc_err *err, const char *const *texts, const char *const *pairs, size_t n,
                         bc_reader **out) {
  *out = NULL;
  if (n && !texts) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "texts is NULL");
  bc_reader *r = reader_new("texts", BC_IN_PLAIN);
  if (!r) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  r->texts = texts;
  r->pairs = pairs;
  r->ntexts = n;
  for (size_t i = 0; i < n; i++) {
    if (!texts[i]) {
      bc_reader_close(r);
      return bc_fail(err, BERTCL_ERR_INVALID_ARG, "texts[%zu] is NULL", i);
    }
    r->size += strlen(texts[i]) + (pairs && pairs[i] ? strlen(pairs[i]) : 0);
  }
  r->end = r->size;
  *out = r;
  return BERTCL_OK;
}

int bc_reader_open_mem(bc_err *err, const char *name, const void *data, size_t len,
                       bc_input_kind kind, const char *column, int shard_k, int shard_n,
                       bc_reader **out) {
  *out = NULL;
  int st = check_split(err, shard_k, shard_n);
  if (st) return st;
  bc_reader *r = reader_new(name, kind);
  if (!r) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  /* fmemopen of 0 bytes is refused by some C libraries: an empty input reads as one empty
   * stream of a 1-byte buffer limited to nothing */
  static const char empty[1] = {0};
  r->f = fmemopen(len ? (void *)data : (void *)empty, len ? len : 1, "rb");
  if (!r->f) {
    bc_reader_close(r);
    return bc_fail(err, BERTCL_ERR_NOMEM, "%s: fmemopen failed: %s", name, strerror(errno));
  }
  if (!len) {
    fgetc(r->f); /* consume the placeholder byte: the stream is at its end */
  }
  r->size = len;
  if ((st = reader_start(err, r, column, shard_k, shard_n))) {
    bc_reader_close(r);
    return st;
  }
  *out = r;
  return BERTCL_OK;
}

void bc_reader_close(bc_reader *r) {
  if (!r) return;
  if (r->f && r->f != stdin) fclose(r->f);
  free(r->line);
  free(r);
}

uint64_t bc_reader_size(const bc_reader *r) { return r->size; }
uint64_t bc_reader_range_start(const bc_reader *r) { return r->start; }
uint64_t bc_reader_range_end(const bc_reader *r) { return r->end == UINT64_MAX ? r->size : r->end; }
uint64_t bc_reader_offset(const bc_reader *r) { return r->off; }
uint64_t bc_reader_hash(const bc_reader *r) { return r->hash; }

static int bad_utf8(bc_record *rec, const char *s, size_t n) {
  size_t v = bc_utf8_valid_prefix((const unsigned char *)s, n);
  if (v == n) return 0;
  rec->bad = BC_BAD_UTF8;
  rec->bad_at = v;
  return 1;
}

/* The next text in memory: copied, checked as a plain line is (text and pair). */
static int next_text(bc_reader *r, bc_record *rec) {
  if (r->lineno >= r->ntexts) return 0;
  const char *t = r->texts[r->lineno];
  const char *p = r->pairs && r->pairs[r->lineno] && r->pairs[r->lineno][0] ? r->pairs[r->lineno]
                                                                          : NULL;
  size_t tn = strlen(t), pn = p ? strlen(p) : 0;
  r->hash = bc_fnv1a64(r->hash, t, tn);
  if (p) r->hash = bc_fnv1a64(r->hash, p, pn);
  r->off += tn + pn;
  rec->lineno = ++r->lineno;
  if (bad_utf8(rec, t, tn) || (p && bad_utf8(rec, p, pn))) return 1;
  rec->text = strdup(t);
  rec->pair = p ? strdup(p) : NULL;
  if (!rec->text || (p && !rec->pair)) {
    bc_record_clear(rec);
    return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  }
  return 1;
}

int bc_reader_next(bc_reader *r, bc_record *rec) {
  memset(rec, 0, sizeof *rec);
  if (r->texts) return next_text(r, rec);
  if (r->off >= r->end) return 0;
  int e = 0;
  long len = read_line(r, &e);
  if (len < 0) {
    if (e) return bc_fail(NULL, BERTCL_ERR_IO, "%s: read failed: %s", r->path, strerror(e));
    return 0;
  }
  rec->lineno = r->lineno;
  const char *line = r->line;
  size_t n = (size_t)len;
  if (r->kind == BC_IN_JSONL) {
    json_error_t je;
    json_t *obj = json_loadb(line, n, 0, &je);
    json_t *tx = obj ? json_object_get(obj, "text") : NULL;
    json_t *px = obj ? json_object_get(obj, "text_pair") : NULL;
    if (!json_is_string(tx) || (px && !json_is_string(px) && !json_is_null(px))) {
      rec->bad = BC_BAD_JSON;
      if (bad_utf8(rec, line, n)) rec->bad = BC_BAD_UTF8; /* jansson rejects invalid UTF-8 */
    } else {
      rec->text = strdup(json_string_value(tx));
      if (json_is_string(px)) rec->pair = strdup(json_string_value(px));
      if (!rec->text || (json_is_string(px) && !rec->pair)) {
        json_decref(obj);
        bc_record_clear(rec);
        return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
      }
    }
    json_decref(obj);
    return 1;
  }
  if (memchr(line, '\0', n)) {
    rec->bad = BC_BAD_NUL;
    rec->bad_at = (size_t)((const char *)memchr(line, '\0', n) - line);
    return 1;
  }
  if (bad_utf8(rec, line, n)) return 1;
  if (r->kind == BC_IN_TSV) {
    size_t fl;
    rec->text = tsv_field(line, n, r->col, &fl);
    if (!rec->text) rec->bad = BC_BAD_COLUMN;
    return 1;
  }
  rec->text = malloc(n + 1);
  if (!rec->text) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  memcpy(rec->text, line, n);
  rec->text[n] = '\0';
  return 1;
}

int bc_reader_skip(bc_reader *r, uint64_t n, uint64_t *skipped) {
  *skipped = 0;
  if (r->texts) {
    bc_record rec;
    while (*skipped < n && next_text(r, &rec) == 1) {
      bc_record_clear(&rec);
      (*skipped)++;
    }
    return BERTCL_OK;
  }
  while (*skipped < n && r->off < r->end) {
    int e = 0;
    if (read_line(r, &e) < 0) {
      if (e) return bc_fail(NULL, BERTCL_ERR_IO, "%s: read failed: %s", r->path, strerror(e));
      break;
    }
    (*skipped)++;
  }
  return BERTCL_OK;
}
