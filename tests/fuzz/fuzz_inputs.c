/* libFuzzer target over the readers of input text:
 *   - the extraction job's reader (plain lines, JSONL, TSV by column index or header name;
 *     src/job/reader.c), with its byte-range K/N split and its skip (the resume path);
 *   - the fine-tuning / prediction dataset reader (JSONL, CSV, TSV, plain; src/train/data.c)
 *     and what is built from its labels (label maps, regression targets; src/train/labels.c);
 *   - the token-classification readers (CoNLL columns, word JSONL; src/train/words.c) and what
 *     is built from their tags (scheme, entities, the entity score; src/train/entity.c).
 *
 * Input: byte 0 = flags, byte 1 = options (bit 7 clear: extraction reader; bit 7 set and
 * byte 0 bit 7 clear: dataset reader; both set: word reader), then the input bytes.
 *   extraction: byte 0 bits 0-1 kind (plain/JSONL/TSV); bit 2 TSV column by header name "text",
 *     else index (byte 1 & 3); bits 3-4: N-1 for the split check; bits 5-7: records to skip in
 *     the skip check.
 *   dataset: byte 1 bits 0-1 the file name's extension (.jsonl, .csv, .tsv, .txt), bits 2-4
 *     the reader flags (need a label, plain lines allowed, every line plain), bit 5 columns
 *     named a/b/c instead of the defaults.
 *   words: byte 0 bits 0-2 the CoNLL tag column (7: the last), bit 3 tags required, bit 4 JSONL
 *     keys "words"/"ner_tags" instead of the defaults; byte 1 bits 0-1 the file name's extension
 *     (.conll, .txt, .jsonl, .iob).
 *
 * Invariants (a broken one traps): extraction: every record is either good (text valid UTF-8,
 * no NUL inside for plain and TSV) or bad with no text; offsets grow and stay inside the input;
 * the N ranges of a K/N split together give exactly the records of the whole input, in order; a
 * reader that skips m records then gives the records from m on. Dataset: every example has a
 * text, lines grow, a label when one is required; every label gets an id below K of a map whose
 * names are valid UTF-8 (they go to config.json); regression targets are finite. Words: sentence
 * offsets rise from 0 to the word count, no sentence is empty, every word is a non-empty string
 * with a line, tags when required; the tag map's names are UTF-8 and hold every tag; entities lie
 * inside their sequence; the tags scored against themselves give F1 1 (0 without entities).
 *
 *   build-fuzz/tests/fuzz/fuzz_inputs -max_total_time=60 tests/fuzz/corpus_inputs
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job/job.h"
#include "train/data.h"
#include "train/entity.h"
#include "train/labels.h"
#include "train/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond) __builtin_trap();
}

/* What a record is, for comparing two reads of the same input. */
typedef struct {
  uint64_t h;
  int bad;
} rec_sig;

typedef struct {
  rec_sig *v;
  size_t n, cap;
  int status; /* open status */
} sigs;

static void sigs_push(sigs *s, const bc_record *r) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    check(s->v != NULL);
  }
  uint64_t h = BC_FNV_INIT;
  if (r->text) h = bc_fnv1a64(h, r->text, strlen(r->text) + 1);
  if (r->pair) h = bc_fnv1a64(h, r->pair, strlen(r->pair) + 1);
  s->v[s->n++] = (rec_sig){h, r->bad};
}

static void check_record(const bc_record *r, bc_input_kind kind) {
  if (r->bad) {
    check(r->text == NULL && r->pair == NULL);
    check(r->bad >= BC_BAD_UTF8 && r->bad <= BC_BAD_NUL);
    return;
  }
  check(r->text != NULL);
  size_t n = strlen(r->text);
  check(bc_utf8_valid_prefix((const unsigned char *)r->text, n) == n);
  if (r->pair) {
    size_t m = strlen(r->pair);
    check(bc_utf8_valid_prefix((const unsigned char *)r->pair, m) == m);
  }
  if (kind != BC_IN_JSONL) check(r->pair == NULL);
}

/* Reads range k of n (skipping `skip` records first); appends signatures to out. */
static void read_all(const uint8_t *d, size_t len, bc_input_kind kind, const char *col, int k,
                     int n, uint64_t skip, sigs *out) {
  bc_err err;
  bc_err_clear(&err);
  bc_reader *r = NULL;
  out->status = bc_reader_open_mem(&err, "fuzz", d, len, kind, col, k, n, &r);
  if (out->status != BERTCL_OK) {
    check(r == NULL);
    return;
  }
  check(bc_reader_range_start(r) <= len);
  if (skip) {
    uint64_t skipped = 0;
    check(bc_reader_skip(r, skip, &skipped) == BERTCL_OK);
    check(skipped <= skip);
  }
  uint64_t last_off = bc_reader_offset(r), last_line = 0;
  bc_record rec;
  int got;
  while ((got = bc_reader_next(r, &rec)) == 1) {
    check_record(&rec, kind);
    check(bc_reader_offset(r) > last_off && bc_reader_offset(r) <= len);
    if (k == 0) check(rec.lineno > last_line);
    last_off = bc_reader_offset(r);
    last_line = rec.lineno;
    sigs_push(out, &rec);
    bc_record_clear(&rec);
  }
  check(got == 0); /* memory never fails to read */
  bc_reader_close(r);
}

static void fuzz_dataset(uint8_t g, const uint8_t *data, size_t size) {
  static const char *const names[4] = {"train.jsonl", "train.csv", "train.tsv", "train.txt"};
  int flags = (g >> 2) & 7;
  bc_text_columns named = {"a", "b", "c"}, *cols = (g & 32) ? &named : NULL;
  bc_err err;
  bc_err_clear(&err);
  bc_text_data d;
  memset(&d, 0, sizeof d);
  if (bc_text_data_parse(&err, names[g & 3], (const char *)data, size, cols, flags, &d) !=
      BERTCL_OK) {
    check(err.msg[0] != '\0');
    bc_text_data_free(&d);
    return;
  }
  const char **labels = malloc((d.n ? d.n : 1) * sizeof *labels);
  check(labels != NULL);
  size_t nl = 0;
  for (size_t i = 0; i < d.n; i++) {
    check(d.text[i] != NULL);
    check(d.line[i] >= 1 && (i == 0 || d.line[i] > d.line[i - 1]));
    if (flags & BC_DATA_NEED_LABEL) check(d.label[i] != NULL);
    if (d.label[i]) labels[nl++] = d.label[i];
  }
  if (nl == d.n && nl > 0) {
    if (bc_labels_are_regression(labels, nl, 0)) {
      float *t = malloc(nl * sizeof *t);
      check(t != NULL);
      if (bc_labels_targets(&err, names[g & 3], labels, d.line, nl, t) == BERTCL_OK)
        for (size_t i = 0; i < nl; i++) check(t[i] == t[i] && t[i] - t[i] == 0.0f);
      free(t);
    } else {
      bc_labelmap m;
      if (bc_labelmap_build(&err, &m, labels, nl, NULL, 0) == BERTCL_OK) {
        check(m.K >= 2);
        for (int k = 0; k < m.K; k++) {
          size_t len = strlen(m.names[k]);
          check(bc_utf8_valid_prefix((const unsigned char *)m.names[k], len) == len);
        }
        for (size_t i = 0; i < nl; i++) {
          int id = bc_labelmap_id(&m, labels[i]);
          check(id >= 0 && id < m.K);
        }
        bc_labelmap_free(&m);
      }
    }
  }
  free(labels);
  bc_text_data_free(&d);
}

static void fuzz_words(uint8_t f, uint8_t g, const uint8_t *data, size_t size) {
  static const char *const names[4] = {"train.conll", "train.txt", "train.jsonl", "train.iob"};
  bc_word_columns cols = {(f & 7) == 7 ? -1 : (int)(f & 7), (f & 16) ? "words" : NULL,
                          (f & 16) ? "ner_tags" : NULL};
  int flags = (f & 8) ? BC_WORDS_NEED_TAGS : 0;
  const char *name = names[g & 3];
  (void)bc_looks_like_conll(name, (const char *)data, size);
  (void)bc_looks_like_word_jsonl((const char *)data, size, cols.words_key);
  bc_err err;
  bc_err_clear(&err);
  bc_word_data d;
  memset(&d, 0, sizeof d);
  if (bc_words_parse(&err, name, (const char *)data, size, &cols, flags, &d) != BERTCL_OK) {
    check(err.msg[0] != '\0');
    bc_word_data_free(&d);
    return;
  }
  size_t nw = d.start[d.n];
  check(d.start[0] == 0);
  for (size_t i = 0; i < d.n; i++) check(d.start[i + 1] > d.start[i]);
  for (size_t w = 0; w < nw; w++) {
    check(d.words[w] != NULL && d.words[w][0] != '\0');
    check(d.line[w] >= 1);
    if (flags & BC_WORDS_NEED_TAGS) check(d.tags != NULL && d.tags[w] != NULL);
  }
  if (d.tags) {
    const char *const *tags = (const char *const *)d.tags;
    bc_labelmap m;
    if (bc_labelmap_sorted(&err, &m, tags, nw) == BERTCL_OK) {
      for (int k = 0; k < m.K; k++) {
        size_t len = strlen(m.names[k]);
        check(bc_utf8_valid_prefix((const unsigned char *)m.names[k], len) == len);
      }
      for (size_t w = 0; w < nw; w++) check(bc_labelmap_id(&m, tags[w]) >= 0);
      bc_labelmap_free(&m);
    }
    bertcl_tag_scheme sc = bc_detect_scheme(tags, d.start, d.n);
    size_t bad = 0;
    if (bc_tags_fit_scheme(tags, nw, sc, &bad) != BERTCL_OK) check(bad < nw);
    bc_entity *ents = NULL;
    char **types = NULL;
    size_t count = 0, cap = 0;
    int ntypes = 0;
    check(bc_entities(tags, nw, &ents, &count, &cap, &types, &ntypes) == BERTCL_OK);
    for (size_t e = 0; e < count; e++)
      check(ents[e].start <= ents[e].end && ents[e].end < nw && ents[e].type >= 0 &&
            ents[e].type < ntypes);
    free(ents);
    for (int t = 0; t < ntypes; t++) free(types[t]);
    free(types);
    bc_entity_report r;
    if (bc_entity_score(&err, tags, tags, d.start, d.n, &r) == BERTCL_OK) {
      check(r.words == nw && r.correct == r.gold_entities && r.gold_entities == r.pred_entities);
      check(r.f1 == (r.gold_entities ? 1.0 : 0.0) && r.accuracy == 1.0);
      bc_entity_report_free(&r);
    }
  }
  bc_word_data_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t f = data[0], g = data[1];
  data += 2;
  size -= 2;
  if ((g & 0x80) && (f & 0x80)) {
    fuzz_words(f, g, data, size);
    return 0;
  }
  if (g & 0x80) {
    fuzz_dataset(g, data, size);
    return 0;
  }
  bc_input_kind kind = (bc_input_kind)((f & 3) % 3);
  char idx[4] = {(char)('0' + (g & 3)), 0};
  const char *col = kind != BC_IN_TSV ? NULL : (f & 4) ? "text" : idx;
  int n = 1 + ((f >> 3) & 3);
  uint64_t skip = (f >> 5) & 7;

  sigs whole = {0};
  read_all(data, size, kind, col, 0, 1, 0, &whole);
  if (whole.status == BERTCL_OK) {
    /* the K/N split covers every record once, in order */
    if (n > 1) {
      sigs parts = {0};
      for (int k = 0; k < n; k++) {
        read_all(data, size, kind, col, k, n, 0, &parts);
        check(parts.status == BERTCL_OK);
      }
      check(parts.n == whole.n);
      for (size_t i = 0; i < whole.n; i++)
        check(parts.v[i].h == whole.v[i].h && parts.v[i].bad == whole.v[i].bad);
      free(parts.v);
    }
    /* skip m, then read: the records from m on */
    if (skip) {
      sigs rest = {0};
      read_all(data, size, kind, col, 0, 1, skip, &rest);
      check(rest.status == BERTCL_OK);
      size_t from = skip < whole.n ? (size_t)skip : whole.n;
      check(rest.n == whole.n - from);
      for (size_t i = 0; i < rest.n; i++) check(rest.v[i].h == whole.v[from + i].h);
      free(rest.v);
    }
  }
  free(whole.v);
  return 0;
}
