/* Word-level example readers. See words.h. */
#include "train/words.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/data.h"

void bc_word_data_free(bc_word_data *d) {
  if (!d) return;
  size_t nw = d->start ? d->start[d->n] : 0;
  for (size_t i = 0; i < nw; i++) {
    free(d->words[i]);
    if (d->tags) free(d->tags[i]);
    if (d->raw) free(d->raw[i]);
  }
  free(d->words), free(d->tags), free(d->raw), free(d->line), free(d->start), free(d->docs);
  free(d->doc_line);
  memset(d, 0, sizeof *d);
}

/* Appends a word (taking ownership of word, tag and raw); -1 when out of memory. */
static int add_word(bc_word_data *d, char *word, char *tag, char *raw, size_t line) {
  size_t nw = d->start[d->n + 1]; /* words so far, the open sentence included */
  if (nw == d->cap_words) {
    size_t nc = d->cap_words ? 2 * d->cap_words : 1024;
    if (bc_grow_arrays(nc, 4, (void *)&d->words, sizeof *d->words, (void *)&d->tags,
                       sizeof *d->tags, (void *)&d->raw, sizeof *d->raw, (void *)&d->line,
                       sizeof *d->line))
      return -1;
    d->cap_words = nc;
  }
  d->words[nw] = word;
  d->tags[nw] = tag;
  d->raw[nw] = raw;
  d->line[nw] = line;
  d->start[d->n + 1] = nw + 1;
  return 0;
}

/* Closes the open sentence when it has words; a new open sentence follows. */
static int end_sentence(bc_word_data *d, size_t *pending_docs) {
  if (d->start[d->n + 1] == d->start[d->n]) return 0;
  if (d->n + 2 >= d->cap_sents) {
    size_t nc = d->cap_sents ? 2 * d->cap_sents : 256;
    if (bc_grow_arrays(nc + 1, 2, (void *)&d->start, sizeof *d->start, (void *)&d->docs,
                       sizeof *d->docs))
      return -1;
    d->cap_sents = nc;
  }
  d->docs[d->n] = *pending_docs;
  *pending_docs = 0;
  d->n++;
  d->start[d->n + 1] = d->start[d->n];
  return 0;
}

/* Frees the words of the open (unfinished) sentence: a reader that fails mid-sentence calls
 * this before bc_word_data_free, which frees the finished sentences only. */
static void drop_open_sentence(bc_word_data *d) {
  if (!d->start) return;
  for (size_t i = d->start[d->n]; i < d->start[d->n + 1]; i++) {
    free(d->words[i]);
    if (d->tags) free(d->tags[i]);
    if (d->raw) free(d->raw[i]);
  }
  d->start[d->n + 1] = d->start[d->n];
}

static int init_data(bc_word_data *d) {
  memset(d, 0, sizeof *d);
  d->cap_sents = 256;
  d->start = calloc(d->cap_sents + 1, sizeof *d->start);
  d->docs = calloc(d->cap_sents, sizeof *d->docs);
  return d->start && d->docs ? 0 : -1;
}

/* A parser's first steps: data must have no NUL byte; d starts empty. */
static int begin_parse(bc_err *err, const char *name, const char *data, size_t len,
                       bc_word_data *d) {
  int st = bc_check_no_nul(err, name, data, len);
  if (st != BERTCL_OK) return st;
  if (init_data(d)) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
  return BERTCL_OK;
}

/* Drops the tag and raw arrays when unused (JSONL without tags, one-column CoNLL). */
static void finish(bc_word_data *d, int has_tags, int keep_raw) {
  size_t nw = d->start[d->n];
  if (!has_tags && d->tags) {
    for (size_t i = 0; i < nw; i++) free(d->tags[i]);
    free(d->tags);
    d->tags = NULL;
  }
  if (!keep_raw && d->raw) {
    for (size_t i = 0; i < nw; i++) free(d->raw[i]);
    free(d->raw);
    d->raw = NULL;
  }
}

/* Splits a line at spaces and tabs, in place; returns the column count (up to max). */
static int split_ws(char *line, char **f, int max) {
  int n = 0;
  char *p = line;
  while (*p) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) break;
    if (n == max) return max + 1;
    f[n++] = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (*p) *p++ = 0;
  }
  return n;
}

int bc_conll_parse(bc_err *err, const char *name, const char *data, size_t len,
                   const bc_word_columns *cols, int flags, bc_word_data *d) {
  int st = begin_parse(err, name, data, len, d);
  if (st != BERTCL_OK) return st;
  char *buf = malloc(len + 1);
  if (!buf) {
    bc_word_data_free(d);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
  }
  if (len) memcpy(buf, data, len);
  buf[len] = 0;
  int ncols = 0, tagc = -1;
  size_t lineno = 0, first_line = 0, docs = 0;
  enum { MAXC = 64 };
  char *f[MAXC + 1];
  char *p = buf + bc_bom_len(buf, len);
  while (*p && st == BERTCL_OK) {
    char *e = strchr(p, '\n');
    char *next = e ? e + 1 : p + strlen(p);
    if (e) *e = 0;
    size_t l = strlen(p);
    if (l && p[l - 1] == '\r') p[--l] = 0;
    lineno++;
    char *line = p;
    p = next;
    char *rawcopy = bc_strdup(line);
    if (!rawcopy) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
      break;
    }
    int n = split_ws(line, f, MAXC);
    if (n == 0) { /* blank: a sentence ends */
      free(rawcopy);
      if (end_sentence(d, &docs)) st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      continue;
    }
    if (!strcmp(f[0], "-DOCSTART-")) { /* a document boundary, not a word */
      if (!d->doc_line) d->doc_line = rawcopy;
      else free(rawcopy);
      if (end_sentence(d, &docs)) st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      docs++;
      continue;
    }
    if (n > MAXC) {
      free(rawcopy);
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: more than %d columns", name, lineno, MAXC);
      break;
    }
    if (!ncols) {
      ncols = n;
      first_line = lineno;
      if (ncols >= 2) {
        tagc = cols->tag_column < 0 ? ncols - 1 : cols->tag_column;
        if (tagc == 0 || tagc >= ncols) {
          free(rawcopy);
          st = bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s:%zu: %d columns; the tag column %d is not one of columns 1..%d (the "
                       "word is column 0)",
                       name, lineno, ncols, tagc, ncols - 1);
          break;
        }
      } else if (flags & BC_WORDS_NEED_TAGS) {
        free(rawcopy);
        st = bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s:%zu: one column; a training file needs a word and a tag a line", name,
                     lineno);
        break;
      }
    } else if (n != ncols) {
      free(rawcopy);
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: %d columns, line %zu has %d", name, lineno,
                   n, first_line, ncols);
      break;
    }
    /* tags become config.json's id2label: JSON text, so UTF-8 (words may be anything: the
     * tokenizer replaces invalid sequences) */
    if (tagc > 0) {
      size_t bad = bc_utf8_valid_prefix((const unsigned char *)f[tagc], strlen(f[tagc]));
      if (f[tagc][bad]) {
        free(rawcopy);
        st = bc_fail(err, BERTCL_ERR_UTF8, "%s:%zu: the tag is not valid UTF-8 (byte %zu)", name,
                     lineno, bad + 1);
        break;
      }
    }
    char *word = bc_strdup(f[0]), *tag = tagc > 0 ? bc_strdup(f[tagc]) : NULL;
    if (!word || (tagc > 0 && !tag) || add_word(d, word, tag, rawcopy, lineno)) {
      free(word), free(tag), free(rawcopy);
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
    }
  }
  if (st == BERTCL_OK && end_sentence(d, &docs))
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
  free(buf);
  if (st == BERTCL_OK && d->n == 0) st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: no sentences", name);
  if (st != BERTCL_OK) {
    drop_open_sentence(d);
    bc_word_data_free(d);
    return st;
  }
  finish(d, tagc > 0, 1);
  return BERTCL_OK;
}

static char *tag_of_json(json_t *v) {
  char buf[32];
  if (json_is_string(v)) return bc_strdup(json_string_value(v));
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    return bc_strdup(buf);
  }
  return NULL;
}

int bc_words_jsonl_parse(bc_err *err, const char *name, const char *data, size_t len,
                         const bc_word_columns *cols, int flags, bc_word_data *d) {
  int st = begin_parse(err, name, data, len, d);
  if (st != BERTCL_OK) return st;
  const char *wkey = cols->words_key ? cols->words_key : "tokens";
  int any_tags = 0, all_tags = 1;
  size_t lineno = 0, docs = 0;
  const char *p = data + bc_bom_len(data, len), *end = data + len;
  while (p < end && st == BERTCL_OK) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    const char *le = e ? e : end;
    lineno++;
    const char *line = p;
    p = e ? e + 1 : end;
    size_t l = (size_t)(le - line);
    while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) l--;
    if (!l) continue;
    json_error_t je;
    json_t *o = json_loadb(line, l, 0, &je);
    json_t *w = json_object_get(o, wkey), *t = NULL;
    if (!json_is_object(o)) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: not a JSON object (%s)", name, lineno,
                   o ? "another JSON value" : je.text);
    } else if (!json_is_array(w)) {
      st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: no \"%s\" array of words", name, lineno,
                   wkey);
    } else {
      t = cols->tags_key ? json_object_get(o, cols->tags_key) : json_object_get(o, "tags");
      if (!t && !cols->tags_key) t = json_object_get(o, "ner_tags");
      if (t && json_is_null(t)) t = NULL;
      size_t nw = json_array_size(w);
      if (nw == 0) {
        st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: an empty sentence (no words)", name,
                     lineno);
      } else if (t && (!json_is_array(t) || json_array_size(t) != nw)) {
        st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: %zu words but %s tags", name, lineno, nw,
                     json_is_array(t) ? "another number of" : "no array of");
      } else if (!t && (flags & BC_WORDS_NEED_TAGS)) {
        st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: no \"%s\" array of tags", name, lineno,
                     cols->tags_key ? cols->tags_key : "tags");
      }
      any_tags |= t != NULL;
      all_tags &= t != NULL;
      for (size_t i = 0; i < nw && st == BERTCL_OK; i++) {
        json_t *wi = json_array_get(w, i);
        const char *ws = json_string_value(wi);
        size_t k = 0;
        while (ws && (ws[k] == ' ' || ws[k] == '\t' || ws[k] == '\n' || ws[k] == '\r')) k++;
        if (!ws || !ws[k]) {
          st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: word %zu is %s", name, lineno, i,
                       ws ? "empty" : "not a string");
          break;
        }
        char *word = bc_strdup(ws), *tag = NULL;
        if (t && !(tag = tag_of_json(json_array_get(t, i)))) {
          free(word);
          st = bc_fail(err, BERTCL_ERR_FORMAT, "%s:%zu: tag %zu is not a string or an integer",
                       name, lineno, i);
          break;
        }
        if (!word || add_word(d, word, tag, NULL, lineno)) {
          free(word), free(tag);
          st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
        }
      }
      if (st == BERTCL_OK && end_sentence(d, &docs))
        st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", name);
    }
    json_decref(o);
  }
  if (st == BERTCL_OK && d->n == 0) st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: no sentences", name);
  if (st == BERTCL_OK && any_tags && !all_tags)
    st = bc_fail(err, BERTCL_ERR_FORMAT, "%s: some sentences have tags and others not", name);
  if (st != BERTCL_OK) {
    drop_open_sentence(d);
    bc_word_data_free(d);
    return st;
  }
  finish(d, any_tags, 0);
  return BERTCL_OK;
}

static const char *skip_blank(const char *data, size_t len) {
  const char *p = data + bc_bom_len(data, len), *end = data + len;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

int bc_words_parse(bc_err *err, const char *name, const char *data, size_t len,
                   const bc_word_columns *cols, int flags, bc_word_data *out) {
  const char *p = skip_blank(data, len);
  if (p < data + len && *p == '{')
    return bc_words_jsonl_parse(err, name, data, len, cols, flags, out);
  return bc_conll_parse(err, name, data, len, cols, flags, out);
}

int bc_words_read(bc_err *err, const char *path, const bc_word_columns *cols, int flags,
                  bc_word_data *out) {
  memset(out, 0, sizeof *out);
  char *data = NULL;
  size_t len = 0;
  int st = bc_read_file(err, path, &data, &len);
  if (st != BERTCL_OK) return st;
  st = bc_words_parse(err, path, data, len, cols, flags, out);
  free(data);
  return st;
}

int bc_looks_like_conll(const char *name, const char *data, size_t len) {
  const char *p = skip_blank(data, len), *end = data + len;
  if (p >= end || *p == '{') return 0;
  if ((size_t)(end - p) >= 10 && !memcmp(p, "-DOCSTART-", 10)) return 1;
  static const char *const exts[] = {".conll", ".conllu", ".iob", ".iob2", ".bio", ".bioes"};
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (bc_ends_with(name, exts[i])) return 1;
  const char *eol = memchr(p, '\n', (size_t)(end - p));
  if (!eol) eol = end;
  int fields = 0, in = 0;
  for (const char *q = p; q < eol; q++) {
    if (*q == '\t') return 0;
    int ws = *q == ' ' || *q == '\r';
    if (!ws && !in) fields++;
    in = !ws;
  }
  if (fields < 2) return 0;
  /* a blank line with a non-blank line after it */
  for (const char *q = eol; q < end; q++) {
    if (*q != '\n') continue;
    const char *r = q + 1;
    while (r < end && (*r == ' ' || *r == '\t' || *r == '\r')) r++;
    if (r < end && *r == '\n') {
      while (r < end && (*r == '\n' || *r == ' ' || *r == '\t' || *r == '\r')) r++;
      if (r < end) return 1;
    }
  }
  return 0;
}

int bc_looks_like_word_jsonl(const char *data, size_t len, const char *words_key) {
  const char *p = skip_blank(data, len), *end = data + len;
  if (p >= end || *p != '{') return 0;
  const char *eol = memchr(p, '\n', (size_t)(end - p));
  json_error_t je;
  json_t *o = json_loadb(p, (size_t)((eol ? eol : end) - p), 0, &je);
  int yes = json_is_array(json_object_get(o, words_key ? words_key : "tokens"));
  json_decref(o);
  return yes;
}
