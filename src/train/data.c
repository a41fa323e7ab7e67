/* Text example readers. See data.h. */
#include "train/data.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *bc_strdup(const char *s) {
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

int bc_grow_arrays(size_t cap, int n, ...) {
  va_list ap;
  va_start(ap, n);
  int rc = 0;
  for (int i = 0; i < n; i++) {
    void *where = va_arg(ap, void *); /* the address of a T * (copied, not aliased) */
    size_t elem = va_arg(ap, size_t), bytes;
    void *old;
    memcpy(&old, where, sizeof old);
    void *q = bc_mul_size(cap ? cap : 1, elem, &bytes) ? NULL : realloc(old, bytes);
    if (q) memcpy(where, &q, sizeof q);
    else rc = -1;
  }
  va_end(ap);
  return rc;
}

int bc_check_no_nul(bc_err *err, const char *name, const char *data, size_t len) {
  const char *nul = len ? memchr(data, 0, len) : NULL;
  if (!nul) return BERTCL_OK;
  size_t line = 1;
  for (const char *q = data; q < nul; q++) line += *q == '\n';
  return bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: a NUL byte (not a text file?)", name, line);
}

size_t bc_bom_len(const char *data, size_t len) {
  return len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
                 (unsigned char)data[2] == 0xBF
             ? 3
             : 0;
}

int bc_ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

void bc_text_data_free(bc_text_data *d) {
  if (!d) return;
  for (size_t i = 0; i < d->n; i++) {
    free(d->text[i]);
    free(d->pair[i]);
    free(d->label[i]);
  }
  free(d->text);
  free(d->pair);
  free(d->label);
  free(d->line);
  memset(d, 0, sizeof *d);
}

static int data_add(bc_text_data *d, char *text, char *pair, char *label, size_t line) {
  if (d->n == d->cap) {
    size_t nc = d->cap ? 2 * d->cap : 256;
    if (bc_grow_arrays(nc, 4, (void *)&d->text, sizeof *d->text, (void *)&d->pair,
                       sizeof *d->pair, (void *)&d->label, sizeof *d->label,
                       (void *)&d->line, sizeof *d->line))
      return -1;
    d->cap = nc;
  }
  d->text[d->n] = text;
  d->pair[d->n] = pair;
  d->label[d->n] = label;
  d->line[d->n] = line;
  d->n++;
  return 0;
}

/* The end of the CSV record that starts at p (RFC 4180): the first newline outside a quoted
 * field, or NULL at the end of the text. A field is quoted when it starts with '"'; inside it
 * '""' is a quote and a newline is part of the field. *inner counts the newlines inside quoted
 * fields; *open is set when the text ends inside one. */
static char *csv_record_end(char *p, size_t *inner, int *open) {
  int quoted = 0, field_start = 1;
  for (; *p; p++) {
    if (quoted) {
      if (*p == '"') {
        if (p[1] == '"') p++;
        else quoted = 0;
      } else if (*p == '\n') {
        (*inner)++;
      }
      continue;
    }
    if (*p == '\n') return p;
    if (field_start && *p == '"') quoted = 1;
    field_start = *p == ',';
  }
  *open = quoted;
  return NULL;
}

int bc_split_fields(char *line, char sep, char **f, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return n;
    if (sep == ',' && *p == '"') {
      char *w = ++p, *start = p;
      for (;;) {
        if (!*p) break;
        if (*p == '"') {
          if (p[1] == '"') {
            *w++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *w++ = *p++;
      }
      char *after = p;
      *w = 0;
      f[n++] = start;
      while (*after && *after != sep) after++;
      if (!*after) return n;
      p = after + 1;
    } else {
      f[n++] = p;
      char *e = strchr(p, sep);
      if (!e) return n;
      *e = 0;
      p = e + 1;
    }
  }
}

/* A JSON label as text: strings as they are, integers and booleans as digits, a float as the
 * shortest text that reads back the same double, written as a non-integer as the JSON float was
 * (5.0 stays "5.0": a float label). NULL for other values. */
static char *label_of_json(json_t *v) {
  char buf[64];
  if (json_is_string(v)) return bc_strdup(json_string_value(v));
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    return bc_strdup(buf);
  }
  if (json_is_boolean(v)) return bc_strdup(json_is_true(v) ? "1" : "0");
  if (json_is_real(v) && isfinite(json_real_value(v))) {
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, json_real_value(v));
      if (strtod(buf, NULL) == json_real_value(v)) break;
    }
    if (!strpbrk(buf, ".eE")) strcat(buf, ".0");
    return bc_strdup(buf);
  }
  return NULL;
}

int bc_text_data_parse(bc_err *err, const char *name, const char *data, size_t len,
                       const bc_text_columns *cols, int flags, bc_text_data *d) {
  memset(d, 0, sizeof *d);
  if (!name || (!data && len) || !cols)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_text_data_parse: NULL argument");
  int st = bc_check_no_nul(err, name, data, len);
  if (st != BERTCL_OK) return st;
  char *buf = malloc(len + 1);
  if (!buf) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
  if (len) memcpy(buf, data, len);
  buf[len] = 0;
  int need_label = (flags & BC_DATA_NEED_LABEL) != 0;
  char *p = buf + bc_bom_len(buf, len);
  const char *first = p;
  while (*first == ' ' || *first == '\n' || *first == '\r' || *first == '\t') first++;
  int kind = *first == '{' ? 0 : bc_ends_with(name, ".csv") ? 2 : 1; /* 0 jsonl 1 tsv 2 csv */
  if (kind == 1 && (flags & BC_DATA_PLAIN_OK) && !bc_ends_with(name, ".tsv") &&
      !strchr(first, '\t'))
    kind = 3;
  if (flags & BC_DATA_FORCE_PLAIN) kind = 3;
  const char *text_name = cols->text_col ? cols->text_col : "text";
  const char *pair_name = cols->pair_col ? cols->pair_col : "text_pair";
  const char *label_name = cols->label_col ? cols->label_col : "label";
  char sep = kind == 2 ? ',' : '\t';
  int tcol = -1, pcol = -1, lcol = -1, ncols = 0;
  size_t lineno = 0, inner = 0; /* inner: CSV newlines inside the last record's quoted fields */
  enum { MAXF = 256 };
  char *f[MAXF];
  while (*p) {
    lineno += inner; /* lineno: the first line of the record read below */
    inner = 0;
    int open = 0;
    char *e = kind == 2 ? csv_record_end(p, &inner, &open) : strchr(p, '\n');
    if (open) {
      st = bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s:%zu: a quoted field is not closed (a '\"' inside a quoted field is written "
                   "'\"\"')", name, lineno + 1);
      break;
    }
    char *next = e ? e + 1 : p + strlen(p);
    if (e) *e = 0;
    size_t l = strlen(p);
    if (l && p[l - 1] == '\r') p[--l] = 0;
    lineno++;
    char *line = p;
    p = next;
    if (!l) continue;
    char *text = NULL, *pair = NULL, *label = NULL;
    if (kind == 0) {
      json_error_t je;
      json_t *o = json_loads(line, 0, &je);
      if (!json_is_object(o)) {
        st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: not a JSON object (%s)", name, lineno,
                     o ? "another JSON value" : je.text);
        json_decref(o);
        break;
      }
      json_t *t = json_object_get(o, text_name);
      json_t *q = json_object_get(o, pair_name);
      json_t *y = json_object_get(o, label_name);
      if (!json_is_string(t)) {
        st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: no \"%s\" string", name, lineno, text_name);
        json_decref(o);
        break;
      }
      text = bc_strdup(json_string_value(t));
      if (json_is_string(q)) pair = bc_strdup(json_string_value(q));
      if (y && !json_is_null(y)) {
        label = label_of_json(y);
        if (!label) {
          st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: the label must be a string or a number",
                       name, lineno);
          json_decref(o);
          free(text), free(pair);
          break;
        }
      }
      json_decref(o);
    } else if (kind == 3) {
      text = bc_strdup(line);
    } else {
      int n = bc_split_fields(line, sep, f, MAXF);
      if (ncols == 0) { /* header */
        ncols = n;
        for (int i = 0; i < n; i++) {
          if (!strcmp(f[i], text_name)) tcol = i;
          if (!strcmp(f[i], pair_name)) pcol = i;
          if (!strcmp(f[i], label_name)) lcol = i;
        }
        if (tcol < 0 && !cols->text_col)
          for (int i = 0; i < n; i++)
            if (!strcmp(f[i], "sentence")) tcol = i;
        if (tcol < 0 && !cols->text_col) tcol = 0;
        if (tcol < 0 || (cols->pair_col && pcol < 0) || (need_label && lcol < 0)) {
          const char *what = tcol < 0 ? "text" : (cols->pair_col && pcol < 0) ? "pair" : "label";
          const char *col = tcol < 0 ? text_name : (cols->pair_col && pcol < 0) ? pair_name
                                                                                : label_name;
          st = bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s: the header lacks the %s column '%s' (use --%s-column)", name, what,
                       col, what);
          break;
        }
        continue;
      }
      if (n <= tcol || (pcol >= 0 && n <= pcol) || (lcol >= 0 && n <= lcol)) {
        st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: %d fields, the header has %d", name,
                     lineno, n, ncols);
        break;
      }
      text = bc_strdup(f[tcol]);
      if (pcol >= 0) pair = bc_strdup(f[pcol]);
      if (lcol >= 0 && *f[lcol]) label = bc_strdup(f[lcol]);
    }
    if (!text) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
      free(pair), free(label);
      break;
    }
    if (need_label && !label) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: no label", name, lineno);
      free(text), free(pair);
      break;
    }
    /* labels become config.json's id2label / label2id: JSON text, so UTF-8 (texts may be
     * anything: the tokenizer replaces invalid sequences) */
    size_t bad = label ? bc_utf8_valid_prefix((const unsigned char *)label, strlen(label)) : 0;
    if (label && label[bad]) {
      st = bc_fail(err, BERTCL_ERR_UTF8, "%s:%zu: the label is not valid UTF-8 (byte %zu)", name,
                   lineno, bad + 1);
      free(text), free(pair), free(label);
      break;
    }
    if (data_add(d, text, pair, label, lineno) != 0) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
      free(text), free(pair), free(label);
      break;
    }
  }
  free(buf);
  if (st == BERTCL_OK && d->n == 0) st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: no examples", name);
  if (st != BERTCL_OK) bc_text_data_free(d);
  return st;
}

int bc_text_data_read(bc_err *err, const char *path, const bc_text_columns *cols, int flags,
                      bc_text_data *out) {
  memset(out, 0, sizeof *out);
  char *data = NULL;
  size_t len = 0;
  int st = bc_read_file(err, path, &data, &len);
  if (st != BERTCL_OK) return st;
  st = bc_text_data_parse(err, path, data, len, cols, flags, out);
  free(data);
  return st;
}
