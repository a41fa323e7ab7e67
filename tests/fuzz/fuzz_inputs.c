/* libFuzzer target over the readers of input text: the extraction job's reader (plain lines,
 * JSONL, TSV by column index or header name; src/job/reader.c), with its byte-range K/N split
 * and its skip (the resume path).
 *
 * Input: byte 0 = flags (bits 0-1 kind: plain/JSONL/TSV; bit 2 TSV column by header name
 * "text", else index (byte 1 & 3); bits 3-4: N-1 for the split check; bits 5-7: records to
 * skip in the skip check), byte 1 = more options, then the input bytes.
 *
 * Invariants (a broken one traps): every record is either good (text valid UTF-8, no NUL
 * inside for plain and TSV) or bad with no text; offsets grow and stay inside the input; the N
 * ranges of a K/N split together give exactly the records of the whole input, in order; a
 * reader that skips m records then gives the records from m on.
 *
 *   build-fuzz/tests/fuzz/fuzz_inputs -max_total_time=60 tests/fuzz/corpus_inputs
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job/job.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t f = data[0], g = data[1];
  data += 2;
  size -= 2;
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
