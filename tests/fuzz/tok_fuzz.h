/* Shared body of the tokenizer fuzz targets (fuzz_tokenizer.c: WordPiece, fuzz_tok_unigram.c,
 * fuzz_tok_bpe.c): each target fuzzes the text of its model type through fixed tokenizers of
 * tests/data/tokenizer, and tokenizer.json itself (parser, then the pipeline it describes).
 * Invariants are checked on every encoding (ids in range with a token, offsets ordered and
 * inside the text, word ids non-decreasing, lengths within max_length) and trap when broken.
 *
 * Input: byte 0 = flags: bits 0-1 tokenizer (with bit 7 of byte 1: one of up to 8), bit 2 pair,
 * bit 3 split special tokens, bit 4 no special tokens, bit 5 batch API, bit 6 truncate
 * (strategy byte 2 % 3), bit 7 tokenizer.json mode; byte 1 bits 0-6 = max_length; byte 2 =
 * where the pair starts (proportion of the text). Text mode: the rest is the text. JSON mode:
 * the rest is tokenizer.json text up to a NUL byte, then the text (or, with no NUL, a few
 * fixed texts). Tokenizers come from tests/data/tokenizer (or $BERTCL_FUZZ_TOKENIZER_DIR).
 */
#ifndef BC_TOK_FUZZ_H
#define BC_TOK_FUZZ_H

#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "tokenizer/tokenizer.h"

#define TOK_FUZZ_MAX 8
static bertcl_tokenizer *fz_toks[TOK_FUZZ_MAX];
static size_t fz_ntoks;

static void fz_check(int cond) {
  if (!cond) __builtin_trap();
}

/* Loads the named tokenizers (NULL-terminated) once. */
static void fz_load(const char *const *names) {
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
  for (fz_ntoks = 0; names[fz_ntoks] && fz_ntoks < TOK_FUZZ_MAX; fz_ntoks++) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", base, names[fz_ntoks]);
    if (bertcl_tokenizer_load(&fz_toks[fz_ntoks], dir) != BERTCL_OK) {
      fprintf(stderr, "tokenizer fuzzer: %s\n", bertcl_last_error(NULL));
      exit(1);
    }
  }
}

static void fz_check_encoding(const bertcl_tokenizer *tok, const bertcl_encoding *e, size_t len_a,
                              size_t len_b, const bertcl_tokenize_options *o) {
  int32_t last_word[2] = {-1, -1};
  size_t bound = bertcl_tokenizer_id_bound(tok);
  for (size_t i = 0; i < e->n; i++) {
    fz_check(e->ids[i] >= 0 && (size_t)e->ids[i] < bound);
    fz_check(bertcl_tokenizer_id_to_token(tok, e->ids[i]) != NULL);
    fz_check(e->tokens[i] != NULL);
    int32_t s = e->offsets[2 * i], t = e->offsets[2 * i + 1];
    int seq = e->seq_ids[i];
    fz_check(seq >= -1 && seq <= 1);
    if (seq < 0) {
      fz_check(s == 0 && t == 0 && e->word_ids[i] == -1);
      continue;
    }
    /* every character takes at least one byte: byte counts bound the offsets (offset
     * trimming and empty alignments give empty ranges) */
    size_t limit = seq ? len_b : len_a;
    fz_check(s >= 0 && s <= t && (size_t)t <= limit);
    fz_check(e->word_ids[i] >= last_word[seq]);
    last_word[seq] = e->word_ids[i];
  }
  size_t ml = o->max_length;
  if (o->truncation != BERTCL_TRUNC_NONE && ml >= 6) fz_check(e->n <= ml);
}

/* Encodes text (and pair) with tok through the single and the batch API. */
static void fz_encode(const bertcl_tokenizer *tok, const char *text, size_t na, const char *pair,
                      size_t nb, bertcl_tokenize_options *o, int batch) {
  if (batch) {
    /* NUL-terminated copies, split on NUL bytes into several rows */
    size_t n = na + (pair ? nb : 0);
    char *copy = malloc(n + 1);
    if (!copy) return;
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *rows[64], *pairs[64];
    size_t nrows = 0;
    for (size_t i = 0; i <= n && nrows < 64;) {
      rows[nrows++] = copy + i;
      i += strlen(copy + i) + 1;
    }
    for (size_t r = 0; r < nrows; r++) pairs[r] = pair ? rows[nrows - 1 - r] : NULL;
    bertcl_batch *b = NULL;
    int st = bertcl_tokenizer_encode_batch(tok, rows, pairs, nrows, o, &b);
    if (st == BERTCL_OK) {
      fz_check(b->batch == nrows);
      for (size_t r = 0; r < nrows; r++) {
        fz_check(b->lengths[r] <= b->seq);
        for (size_t t = 0; t < b->seq; t++) fz_check(b->mask[r * b->seq + t] == (t < b->lengths[r]));
      }
    } else {
      /* raised where tokenizers raises: truncation, an unknown character without unk, a
       * regex over its match limit */
      fz_check((st == BERTCL_ERR_INVALID_ARG || st == BERTCL_ERR_UNSUPPORTED) && b == NULL);
    }
    bertcl_batch_free(b);
    free(copy);
    return;
  }
  bertcl_encoding *e = NULL;
  int st = bertcl_tokenizer_encode(tok, text, na, pair, nb, o, &e);
  if (st == BERTCL_OK) {
    fz_check_encoding(tok, e, na, nb, o);
    bertcl_encoding_free(e);
  } else {
    fz_check((st == BERTCL_ERR_INVALID_ARG || st == BERTCL_ERR_UNSUPPORTED) && e == NULL);
  }
}

static int fz_run(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  uint8_t flags = data[0];
  bertcl_tokenize_options o = {0};
  o.split_special_tokens = (flags >> 3) & 1;
  o.no_special_tokens = (flags >> 4) & 1;
  o.max_length = data[1] & 0x7F;
  o.truncation = (flags & 64) && o.max_length ? (bertcl_truncation)(data[2] % 3) : BERTCL_TRUNC_NONE;
  o.pad_to_max_length = data[2] & 1;
  int batch = (flags >> 5) & 1;
  const char *rest = (const char *)data + 3;
  size_t n = size - 3;
  const bertcl_tokenizer *tok = NULL;
  bertcl_tokenizer *own = NULL;
  if (flags & 0x80) {
    const char *nul = memchr(rest, '\0', n);
    size_t jl = nul ? (size_t)(nul - rest) : n;
    if (bc_tok_load_json_text(&own, rest, jl) != BERTCL_OK) return 0;
    fz_check(bertcl_tokenizer_describe(own, BERTCL_STAGE_MODEL) != NULL);
    tok = own;
    if (nul) {
      rest = nul + 1;
      n -= jl + 1;
    } else {
      static const char *const texts[] = {"Hello, World! H\xc3\xa9llo  na\xc3\xafve <s> [SEP] x",
                                          " \t\xe2\x96\x81" "a \xef\xbd\x86\xef\xbd\x95\xef\xbd\x8c "
                                          "\xe4\xb8\xad\xe6\x96\x87 12345 \xf0\x9f\x98\x80",
                                          ""};
      for (size_t k = 0; k < 3; k++)
        fz_encode(tok, texts[k], strlen(texts[k]), k ? texts[k - 1] : NULL,
                  k ? strlen(texts[k - 1]) : 0, &o, 0);
      bertcl_tokenizer_free(own);
      return 0;
    }
  } else {
    size_t k = ((flags & 3) | ((data[1] & 0x80) >> 5)) % fz_ntoks;
    tok = fz_toks[k];
  }
  size_t na = n, nb = 0;
  const char *pair = NULL;
  if (flags & 4) {
    na = n * data[2] / 256;
    pair = rest + na;
    nb = n - na;
  }
  fz_encode(tok, rest, na, pair, nb, &o, batch);
  bertcl_tokenizer_free(own);
  return 0;
}

#endif
