/* libFuzzer target: the tokenizer on arbitrary bytes, single texts, pairs, batches, every
 * option. Checks invariants (ids in range, offsets inside the decoded text and ordered, word ids
 * non-decreasing, lengths within max_length when truncating) and traps when one breaks.
 *
 * Input: byte 0 = flags (bit 0-1 tokenizer: uncased/cased/toy, bit 2 pair, bit 3 split special
 * tokens, bit 4 no special tokens, bit 5 batch API, bit 6-7 truncation), byte 1 = max_length
 * (0 = none), byte 2 = where the pair starts (proportion of the rest), then the text bytes.
 * Tokenizers come from tests/data/tokenizer (or $BERTCL_FUZZ_TOKENIZER_DIR/<name>).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"

static bertcl_tokenizer *toks[3];

static void check(int cond) {
  if (!cond) __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const char *const names[3] = {"uncased", "cased", "toy"};
  char base[1024];
  const char *env = getenv("BERTCL_FUZZ_TOKENIZER_DIR");
  if (env) {
    snprintf(base, sizeof base, "%s", env);
  } else {
    snprintf(base, sizeof base, "%s", __FILE__);
    char *slash = strrchr(base, '/');
    if (slash)
      snprintf(slash, sizeof base - (size_t)(slash - base), "/../data/tokenizer");
    else
      snprintf(base, sizeof base, "tests/data/tokenizer");
  }
  for (int i = 0; i < 3; i++) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", base, names[i]);
    if (bertcl_tokenizer_load(&toks[i], dir) != BERTCL_OK) {
      fprintf(stderr, "fuzz_tokenizer: %s\n", bertcl_last_error(NULL));
      exit(1);
    }
  }
  return 0;
}

static void check_encoding(const bertcl_tokenizer *tok, const bertcl_encoding *e, size_t len_a,
                           size_t len_b, const bertcl_tokenize_options *o) {
  int32_t last_word[2] = {-1, -1};
  for (size_t i = 0; i < e->n; i++) {
    check(bertcl_tokenizer_id_to_token(tok, e->ids[i]) != NULL);
    check(e->tokens[i] != NULL);
    int32_t s = e->offsets[2 * i], t = e->offsets[2 * i + 1];
    int seq = e->seq_ids[i];
    check(seq >= -1 && seq <= 1);
    if (seq < 0) {
      check(s == 0 && t == 0 && e->word_ids[i] == -1);
      continue;
    }
    size_t limit = seq ? len_b : len_a;
    check(s >= 0 && s < t && (size_t)t <= limit);
    check(e->word_ids[i] >= last_word[seq]);
    last_word[seq] = e->word_ids[i];
  }
  size_t ml = o->max_length;
  if (o->truncation != BERTCL_TRUNC_NONE && ml >= 3) check(e->n <= ml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  uint8_t flags = data[0];
  bertcl_tokenizer *tok = toks[(flags & 3) % 3];
  bertcl_tokenize_options o = {0};
  o.split_special_tokens = (flags >> 3) & 1;
  o.no_special_tokens = (flags >> 4) & 1;
  o.max_length = data[1];
  o.truncation = data[1] ? (bertcl_truncation)((flags >> 6) & 3) : BERTCL_TRUNC_NONE;
  const char *text = (const char *)data + 3;
  size_t n = size - 3, na = n, nb = 0;
  const char *pair = NULL;
  if (flags & 4) {
    na = n * data[2] / 256;
    pair = text + na;
    nb = n - na;
  }
  if (flags & 32) {
    /* batch API: NUL-terminated copies, split on NUL bytes into several rows */
    char *copy = malloc(n + 1);
    if (!copy) return 0;
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *rows[64];
    size_t nrows = 0;
    for (size_t i = 0; i <= n && nrows < 64;) {
      rows[nrows++] = copy + i;
      i += strlen(copy + i) + 1;
    }
    const char *pairs[64];
    for (size_t r = 0; r < nrows; r++) pairs[r] = (flags & 4) ? rows[nrows - 1 - r] : NULL;
    o.pad_to_max_length = (data[2] & 1);
    bertcl_batch *b = NULL;
    int st = bertcl_tokenizer_encode_batch(tok, rows, pairs, nrows, &o, &b);
    if (st == BERTCL_OK) {
      check(b->batch == nrows);
      for (size_t r = 0; r < nrows; r++) {
        check(b->lengths[r] <= b->seq);
        for (size_t t = 0; t < b->seq; t++) check(b->mask[r * b->seq + t] == (t < b->lengths[r]));
      }
    } else {
      check(st == BERTCL_ERR_INVALID_ARG && b == NULL);
    }
    bertcl_batch_free(b);
    free(copy);
    return 0;
  }
  bertcl_encoding *e = NULL;
  int st = bertcl_tokenizer_encode(tok, text, na, pair, nb, &o, &e);
  if (st == BERTCL_OK) {
    /* every character takes at least one byte: byte counts bound the offsets */
    check_encoding(tok, e, na, nb, &o);
    bertcl_encoding_free(e);
  } else {
    check(st == BERTCL_ERR_INVALID_ARG && e == NULL);
  }
  return 0;
}
