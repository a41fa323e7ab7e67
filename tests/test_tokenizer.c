/* Tokenizer tests: golden files written by tests/gen/gen_tokenizer_golden.py with transformers'
 * fast tokenizer (three tokenizers: uncased all-MiniLM-L6-v2, a cased vocabulary, the toy
 * vocabulary of transformers' BERT tests), each loaded from tokenizer.json and from
 * vocab.txt + tokenizer_config.json; the batch API; the documented slow-vs-fast differences;
 * invalid UTF-8; errors; the CLI.
 *
 * Known differences between transformers' slow BertTokenizer (Python) and the fast one (Rust),
 * which is our reference; each has a test below (test_fast_*):
 *  1. Unicode tables: the Rust crate's categories predate Unicode 11; Python's unicodedata is
 *     newer. U+061D (Po since Unicode 14) is not punctuation for the fast tokenizer, so
 *     "a\u061Db" stays one word; the slow one splits it.
 *  2. Format characters new since then (U+0890, Cf) are kept by the fast cleaner, removed by the
 *     slow one; new nonspacing marks (U+1AC1) are not stripped by the fast tokenizer.
 *  3. Whitespace: the fast tokenizer uses Rust's White_Space (U+2028, U+2029, U+0085 ...);
 *     the slow one only " ", \t, \n, \r and Zs. "a\u2028b" is two words for the fast one.
 *  4. Lowercase is per character in Rust: final sigma is not applied ("ΟΔΟΣ" -> "οδοσ"),
 *     whereas Python's str.lower() gives "οδος".
 *  5. U+0130 lowercases to "i\u0307" (two characters, both aligned to the original one), so
 *     without accent stripping a word of 51 'İ' is 102 characters, over the 100-character limit.
 *  6. Offsets: only the fast tokenizer has them; ours are characters of the original text.
 */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <zlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bertcl.h"
#include "common.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"

static const char *const NAMES[] = {"uncased", "cased", "toy"};

static bertcl_tokenizer *load_dir(const char *name) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tokenizer/%s", BERTCL_TEST_DATA, name);
  bertcl_tokenizer *tok = NULL;
  int st = bertcl_tokenizer_load(&tok, dir);
  if (st) fprintf(stderr, "load %s: %s\n", dir, bertcl_last_error(NULL));
  assert_int_equal(st, BERTCL_OK);
  return tok;
}

/* The vocab.txt + tokenizer_config.json path (tokenizer.json ignored). */
static bertcl_tokenizer *load_vocab(const char *name) {
  char p[4][1024];
  const char *f[4] = {"vocab.txt", "tokenizer_config.json", "config.json",
                      "sentence_bert_config.json"};
  for (int i = 0; i < 4; i++)
    snprintf(p[i], sizeof p[i], "%s/tokenizer/%s/%s", BERTCL_TEST_DATA, name, f[i]);
  bertcl_tokenizer *tok = NULL;
  int st = bc_tok_load_files(&tok, NULL, p[0], p[1], p[2], p[3]);
  if (st) fprintf(stderr, "load %s: %s\n", p[0], bertcl_last_error(NULL));
  assert_int_equal(st, BERTCL_OK);
  return tok;
}

typedef struct {
  char *text, *pair;
  size_t text_len, pair_len;
  bertcl_tokenize_options opt;
  json_t *row;
} gcase;

static int hexval(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses one golden line into c (strings malloc'd). */
static void parse_case(json_t *row, gcase *c) {
  memset(c, 0, sizeof *c);
  c->row = row;
  json_t *t = json_object_get(row, "text");
  if (t) {
    c->text_len = json_string_length(t);
    c->text = malloc(c->text_len + 1);
    memcpy(c->text, json_string_value(t), c->text_len + 1);
  } else {
    const char *hex = json_string_value(json_object_get(row, "text_hex"));
    assert_non_null(hex);
    size_t n = strlen(hex) / 2;
    c->text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
      c->text[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    c->text[n] = '\0';
    c->text_len = n;
  }
  json_t *p = json_object_get(row, "pair");
  if (json_is_string(p)) {
    c->pair_len = json_string_length(p);
    c->pair = malloc(c->pair_len + 1);
    memcpy(c->pair, json_string_value(p), c->pair_len + 1);
  }
  json_int_t ml = json_integer_value(json_object_get(row, "max_length"));
  c->opt.max_length = ml ? (size_t)ml : 0;
  const char *tr = json_string_value(json_object_get(row, "truncation"));
  c->opt.truncation = !ml                          ? BERTCL_TRUNC_NONE
                      : !strcmp(tr, "only_first")  ? BERTCL_TRUNC_ONLY_FIRST
                      : !strcmp(tr, "only_second") ? BERTCL_TRUNC_ONLY_SECOND
                                                   : BERTCL_TRUNC_LONGEST_FIRST;
  c->opt.no_special_tokens = !json_is_true(json_object_get(row, "special"));
  c->opt.split_special_tokens = json_is_true(json_object_get(row, "split"));
}

static void free_case(gcase *c) {
  free(c->text);
  free(c->pair);
}

/* Compares an int32 array with a golden JSON list; prints the first difference. */
static int same_ints(const char *what, const int32_t *got, size_t n, json_t *exp, size_t lineno) {
  size_t en = json_array_size(exp);
  if (en != n) {
    fprintf(stderr, "  line %zu: %s: %zu values, expected %zu\n", lineno, what, n, en);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    json_int_t e = json_integer_value(json_array_get(exp, i));
    if (got[i] != e) {
      fprintf(stderr, "  line %zu: %s[%zu] = %d, expected %lld\n", lineno, what, i, (int)got[i],
              (long long)e);
      return 0;
    }
  }
  return 1;
}

/* Reads golden_<name>.jsonl, or golden_<name>.jsonl.gz. */
static char *read_golden_file(const char *name, size_t *len, char *path, size_t path_size) {
  snprintf(path, path_size, "%s/tokenizer/golden_%s.jsonl", BERTCL_TEST_DATA, name);
  char *data = NULL;
  if (access(path, R_OK) == 0) {
    int st = bc_read_file(NULL, path, &data, len);
    if (st) fprintf(stderr, "%s\n", bertcl_last_error(NULL));
    assert_int_equal(st, BERTCL_OK);
    return data;
  }
  snprintf(path, path_size, "%s/tokenizer/golden_%s.jsonl.gz", BERTCL_TEST_DATA, name);
  gzFile gz = gzopen(path, "rb");
  if (!gz) fprintf(stderr, "cannot open %s\n", path);
  assert_non_null(gz);
  size_t cap = 1 << 20, n = 0;
  data = malloc(cap);
  for (;;) {
    if (n + 65536 > cap) data = realloc(data, cap *= 2);
    int k = gzread(gz, data + n, 65536);
    assert_true(k >= 0);
    if (k == 0) break;
    n += (size_t)k;
  }
  gzclose(gz);
  *len = n;
  return data;
}

static json_t **read_golden(const char *name, size_t *count) {
  char path[1024];
  size_t len = 0;
  char *data = read_golden_file(name, &len, path, sizeof path);
  size_t cap = 4096, n = 0;
  json_t **rows = malloc(cap * sizeof *rows);
  for (char *p = data; p < data + len;) {
    char *e = memchr(p, '\n', (size_t)(data + len - p));
    if (!e) e = data + len;
    if (e > p) {
      json_error_t je;
      json_t *row = json_loadb(p, (size_t)(e - p), JSON_ALLOW_NUL, &je);
      if (!row) fprintf(stderr, "%s:%zu: %s\n", path, n + 1, je.text);
      assert_non_null(row);
      if (n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
      rows[n++] = row;
    }
    p = e + 1;
  }
  free(data);
  *count = n;
  return rows;
}

static void free_golden(json_t **rows, size_t n) {
  for (size_t i = 0; i < n; i++) json_decref(rows[i]);
  free(rows);
}

/* Every golden line: ids, type ids, word ids, offsets, overflow; errors where HF raised. */
static void run_golden(const char *name, int vocab_mode) {
  bertcl_tokenizer *tok = vocab_mode ? load_vocab(name) : load_dir(name);
  size_t n = 0, bad = 0, errors = 0;
  json_t **rows = read_golden(name, &n);
  assert_true(n >= 1000);
  for (size_t i = 0; i < n; i++) {
    gcase c;
    parse_case(rows[i], &c);
    bertcl_encoding *e = NULL;
    int st = bertcl_tokenizer_encode(tok, c.text, c.text_len, c.pair, c.pair_len, &c.opt, &e);
    int ok = 1;
    if (json_is_true(json_object_get(c.row, "error"))) {
      errors++;
      if (st == BERTCL_OK) {
        fprintf(stderr, "  line %zu: transformers raised, we returned %zu tokens\n", i + 1, e->n);
        ok = 0;
      }
    } else if (st != BERTCL_OK) {
      fprintf(stderr, "  line %zu: %s\n", i + 1, bertcl_last_error(NULL));
      ok = 0;
    } else {
      json_t *ov = json_object_get(c.row, "overflow");
      int32_t got_ov[2] = {(int32_t)e->overflow[0], (int32_t)e->overflow[1]};
      ok = same_ints("ids", e->ids, e->n, json_object_get(c.row, "ids"), i + 1) &&
           same_ints("type_ids", e->type_ids, e->n, json_object_get(c.row, "type_ids"), i + 1) &&
           same_ints("word_ids", e->word_ids, e->n, json_object_get(c.row, "word_ids"), i + 1) &&
           same_ints("offsets", e->offsets, 2 * e->n, json_object_get(c.row, "offsets"), i + 1) &&
           same_ints("overflow", got_ov, 2, ov, i + 1);
      for (size_t k = 0; ok && k < e->n; k++)
        if (!e->tokens[k] || strcmp(e->tokens[k], bertcl_tokenizer_id_to_token(tok, e->ids[k])) ||
            (size_t)e->ids[k] >= bertcl_tokenizer_id_bound(tok))
          ok = 0;
    }
    if (!ok) {
      char *s = json_dumps(c.row, JSON_COMPACT);
      if (bad < 10) fprintf(stderr, "  golden_%s line %zu: %.400s\n", name, i + 1, s);
      free(s);
      bad++;
    }
    bertcl_encoding_free(e);
    free_case(&c);
  }
  fprintf(stderr, "golden_%s (%s): %zu cases (%zu expected errors), %zu mismatches\n", name,
          vocab_mode ? "vocab.txt" : "tokenizer.json", n, errors, bad);
  free_golden(rows, n);
  bertcl_tokenizer_free(tok);
  assert_int_equal(bad, 0);
}

static void test_golden_uncased_json(void **state) {
  (void)state;
  run_golden("uncased", 0);
}
static void test_golden_uncased_vocab(void **state) {
  (void)state;
  run_golden("uncased", 1);
}
static void test_golden_cased_json(void **state) {
  (void)state;
  run_golden("cased", 0);
}
static void test_golden_cased_vocab(void **state) {
  (void)state;
  run_golden("cased", 1);
}
static void test_golden_toy_json(void **state) {
  (void)state;
  run_golden("toy", 0);
}
static void test_golden_toy_vocab(void **state) {
  (void)state;
  run_golden("toy", 1);
}

/* The tokenizer.json pipelines of gen_tokenizer_pipelines.py: three main tokenizers (XLM-R
 * style Unigram, RoBERTa style byte-level BPE, all-mpnet-base-v2's WordPiece) and a zoo. */
static const char *const PIPELINES[] = {"xlmr",        "roberta",      "mpnet",
                                        "xlmr-legacy", "unigram-cf",   "llama3",
                                        "bpe-classic", "bpe-fallback", "wordlevel",
                                        "nfx",         "unigram-ties"};

static void test_golden_xlmr(void **state) {
  (void)state;
  run_golden("xlmr", 0);
}
static void test_golden_roberta(void **state) {
  (void)state;
  run_golden("roberta", 0);
}
static void test_golden_mpnet(void **state) {
  (void)state;
  run_golden("mpnet", 0);
}
static void test_golden_zoo(void **state) {
  (void)state;
  for (size_t i = 3; i < sizeof PIPELINES / sizeof *PIPELINES; i++) run_golden(PIPELINES[i], 0);
}

/* The batch API gives the golden rows, padded, for every case without truncation. */
static void test_batch_matches_golden(void **state) {
  (void)state;
  for (int v = 0; v < 3; v++) {
    bertcl_tokenizer *tok = load_dir(NAMES[v]);
    size_t n = 0;
    json_t **rows = read_golden(NAMES[v], &n);
    const char **texts = calloc(n, sizeof *texts), **pairs = calloc(n, sizeof *pairs);
    gcase *cs = calloc(n, sizeof *cs);
    size_t *idx = calloc(n, sizeof *idx), m = 0;
    for (size_t i = 0; i < n; i++) {
      gcase c;
      parse_case(rows[i], &c);
      /* batches take NUL-terminated strings: skip texts with NUL bytes and errors */
      if (c.opt.max_length || c.opt.no_special_tokens || c.opt.split_special_tokens ||
          strlen(c.text) != c.text_len || (c.pair && strlen(c.pair) != c.pair_len) ||
          json_object_get(c.row, "error")) {
        free_case(&c);
        continue;
      }
      cs[m] = c;
      texts[m] = c.text;
      pairs[m] = c.pair;
      idx[m++] = i;
    }
    assert_true(m > 1000);
    bertcl_tokenize_options opt = {0};
    opt.truncation = BERTCL_TRUNC_NONE;
    bertcl_batch *b = NULL;
    assert_int_equal(bertcl_tokenizer_encode_batch(tok, texts, pairs, m, &opt, &b), BERTCL_OK);
    assert_int_equal(b->batch, m);
    size_t maxlen = 0;
    for (size_t r = 0; r < m; r++) {
      json_t *ids = json_object_get(cs[r].row, "ids");
      size_t len = json_array_size(ids);
      if (len > maxlen) maxlen = len;
      assert_int_equal(b->lengths[r], len);
      assert_true(same_ints("batch ids", b->ids + r * b->seq, len, ids, idx[r] + 1));
      assert_true(same_ints("batch type_ids", b->type_ids + r * b->seq, len,
                            json_object_get(cs[r].row, "type_ids"), idx[r] + 1));
      assert_true(same_ints("batch word_ids", b->word_ids + r * b->seq, len,
                            json_object_get(cs[r].row, "word_ids"), idx[r] + 1));
      for (size_t t = 0; t < b->seq; t++) {
        assert_int_equal(b->mask[r * b->seq + t], t < len);
        if (t >= len) {
          assert_int_equal(b->ids[r * b->seq + t], bertcl_tokenizer_token_to_id(tok, "[PAD]"));
          assert_int_equal(b->word_ids[r * b->seq + t], -1);
        }
      }
    }
    assert_int_equal(b->seq, maxlen);
    bertcl_batch_free(b);
    /* padded to max_length, with truncation to it */
    opt.truncation = BERTCL_TRUNC_LONGEST_FIRST;
    opt.max_length = 16;
    opt.pad_to_max_length = 1;
    assert_int_equal(bertcl_tokenizer_encode_batch(tok, texts, pairs, m, &opt, &b), BERTCL_OK);
    assert_int_equal(b->seq, 16);
    for (size_t r = 0; r < m; r++) {
      size_t full = json_array_size(json_object_get(cs[r].row, "ids"));
      /* below the template size tokenizers does not truncate (see encode.c) */
      size_t expect = full > 16 ? 16 : full;
      if (full > 16 || b->lengths[r] <= 16) assert_int_equal(b->lengths[r], expect);
      assert_int_equal(b->overflow[2 * r] + b->overflow[2 * r + 1], full - b->lengths[r]);
    }
    bertcl_batch_free(b);
    for (size_t r = 0; r < m; r++) free_case(&cs[r]);
    free(cs);
    free(idx);
    free(texts);
    free(pairs);
    free_golden(rows, n);
    bertcl_tokenizer_free(tok);
  }
}

/* One tokenizer shared by 4 threads, each encoding every golden case (the tokenizer is
 * read-only after loading; scratch space is per call). */
typedef struct {
  const bertcl_tokenizer *tok;
  json_t **rows;
  size_t n, start, bad;
} thread_job;

static void *thread_run(void *arg) {
  thread_job *j = arg;
  for (size_t i = 0; i < j->n; i++) {
    gcase c;
    parse_case(j->rows[(i + j->start) % j->n], &c); /* each thread in another order */
    bertcl_encoding *e = NULL;
    int st = bertcl_tokenizer_encode(j->tok, c.text, c.text_len, c.pair, c.pair_len, &c.opt, &e);
    if (json_is_true(json_object_get(c.row, "error")))
      j->bad += st == BERTCL_OK;
    else if (st != BERTCL_OK || json_array_size(json_object_get(c.row, "ids")) != e->n)
      j->bad++;
    else
      for (size_t k = 0; k < e->n; k++)
        j->bad += e->ids[k] != json_integer_value(json_array_get(json_object_get(c.row, "ids"), k));
    bertcl_encoding_free(e);
    free_case(&c);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  /* WordPiece, Unigram + Precompiled, byte-level BPE with a PCRE2 regex */
  const char *names[3] = {"uncased", "xlmr", "roberta"};
  for (int k = 0; k < 3; k++) {
    bertcl_tokenizer *tok = load_dir(names[k]);
    size_t n = 0;
    json_t **rows = read_golden(names[k], &n);
    pthread_t th[4];
    thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
      jobs[t] = (thread_job){tok, rows, n, (size_t)t * n / 4, 0};
      assert_int_equal(pthread_create(&th[t], NULL, thread_run, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
      pthread_join(th[t], NULL);
      assert_int_equal(jobs[t].bad, 0);
    }
    free_golden(rows, n);
    bertcl_tokenizer_free(tok);
  }
}

/* Encodes text with the uncased tokenizer (no special tokens); returns the encoding. */
static bertcl_encoding *enc(bertcl_tokenizer *tok, const char *text) {
  bertcl_tokenize_options o = {0};
  o.no_special_tokens = 1;
  o.truncation = BERTCL_TRUNC_NONE;
  bertcl_encoding *e = NULL;
  assert_int_equal(bertcl_tokenizer_encode(tok, text, strlen(text), NULL, 0, &o, &e), BERTCL_OK);
  return e;
}

static int n_words(const bertcl_encoding *e) {
  int w = -1;
  for (size_t i = 0; i < e->n; i++)
    if (e->word_ids[i] > w) w = e->word_ids[i];
  return w + 1;
}

static void test_fast_unicode_tables(void **state) {
  (void)state;
  bertcl_tokenizer *tok = load_dir("uncased");
  bertcl_encoding *e = enc(tok,
                           "a\xd8\x9d"
                           "b"); /* U+061D */
  assert_int_equal(n_words(e), 1);
  bertcl_encoding_free(e);
  e = enc(tok,
          "a\xd8\x8c"
          "b"); /* U+060C ARABIC COMMA: punctuation for both */
  assert_int_equal(n_words(e), 3);
  bertcl_encoding_free(e);
  /* U+0890 (Cf, Unicode 14) kept: the word is not "ab" */
  bertcl_encoding *ab = enc(tok, "ab");
  e = enc(tok,
          "a\xe0\xa2\x90"
          "b");
  assert_true(e->n != ab->n || e->ids[0] != ab->ids[0]);
  bertcl_encoding_free(e);
  /* U+1AC1 (Mn, Unicode 14) not stripped, U+0301 stripped */
  e = enc(tok,
          "a\xcc\x81"
          "b");
  assert_int_equal(e->n, ab->n);
  assert_int_equal(e->ids[0], ab->ids[0]);
  bertcl_encoding_free(e);
  e = enc(tok,
          "a\xe1\xab\x81"
          "b");
  assert_true(e->n != ab->n || e->ids[0] != ab->ids[0]);
  bertcl_encoding_free(e);
  bertcl_encoding_free(ab);
  bertcl_tokenizer_free(tok);
}

static void test_fast_whitespace(void **state) {
  (void)state;
  bertcl_tokenizer *tok = load_dir("uncased");
  const char *seps[] = {"\xe2\x80\xa8", "\xe2\x80\xa9", "\xe3\x80\x80", "\xc2\xa0", "\t"};
  for (size_t i = 0; i < sizeof seps / sizeof *seps; i++) {
    char text[32];
    snprintf(text, sizeof text, "a%sb", seps[i]);
    bertcl_encoding *e = enc(tok, text);
    assert_int_equal(n_words(e), 2);
    assert_int_equal(e->offsets[2], (int)strlen("a") + 1); /* b starts after one character */
    bertcl_encoding_free(e);
  }
  bertcl_tokenizer_free(tok);
}

static void test_fast_lowercase(void **state) {
  (void)state;
  bertcl_tokenizer *tok = load_dir("uncased");
  bertcl_encoding *e = enc(tok, "\xce\x9f\xce\x94\xce\x9f\xce\xa3");               /* ΟΔΟΣ */
  for (size_t i = 0; i < e->n; i++) assert_null(strstr(e->tokens[i], "\xcf\x82")); /* no ς */
  assert_non_null(strstr(e->tokens[e->n - 1], "\xcf\x83"));                        /* σ */
  bertcl_encoding_free(e);
  bertcl_tokenizer_free(tok);
  /* U+0130 -> "i\u0307": 50 of them make 100 characters (fits), 51 make 102 ([UNK]) */
  tok = load_dir("toy");
  char text[256];
  for (int n = 50; n <= 51; n++) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
      text[k++] = (char)0xC4;
      text[k++] = (char)0xB0;
    }
    text[k] = '\0';
    e = enc(tok, text);
    if (n == 50) {
      assert_int_equal(e->n, 100); /* i ##̇ ##i ##̇ ... */
      assert_int_equal(e->offsets[0], 0);
      assert_int_equal(e->offsets[1], 1);
      assert_int_equal(e->offsets[2], 0); /* the U+0307 half maps to the same character */
      assert_int_equal(e->offsets[3], 1);
    } else {
      assert_int_equal(e->n, 1);
      assert_string_equal(e->tokens[0], "[UNK]");
      assert_int_equal(e->offsets[1], 51);
    }
    bertcl_encoding_free(e);
  }
  bertcl_tokenizer_free(tok);
}

/* Invalid UTF-8: one U+FFFD per maximal ill-formed subsequence, dropped by the cleaner;
 * offsets count characters of the replaced text. */
static void test_invalid_utf8(void **state) {
  (void)state;
  bertcl_tokenizer *tok = load_dir("uncased");
  struct {
    const char *s;
    size_t replaced;
    int b_start; /* offset of the word "b" */
  } cases[] = {
      {"a \xff b", 1, 4},
      {"a \xe2\x82 b", 1, 4},
      {"a \xf0\x9f\x98 b", 1, 4},
      {"a \xed\xa0\x80 b", 3, 6},
      {"a \xc0\xaf b", 2, 5},
      {"a \xe2\x82\xac\xe2 b", 1, 5},
      {"a \xf4\x90\x80\x80 b", 4, 7},
      {"a \xf0\x9f\x98\x80 b", 0, 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    bertcl_encoding *e = NULL;
    assert_int_equal(
        bertcl_tokenizer_encode(tok, cases[i].s, strlen(cases[i].s), NULL, 0, NULL, &e), BERTCL_OK);
    assert_int_equal(e->replaced[0], cases[i].replaced);
    assert_string_equal(e->tokens[e->n - 2], "b");
    assert_int_equal(e->offsets[2 * (e->n - 2)], cases[i].b_start);
    bertcl_encoding_free(e);
  }
  bertcl_tokenizer_free(tok);
}

static void test_defaults_and_lookup(void **state) {
  (void)state;
  bertcl_tokenizer *tok = load_dir("uncased");
  /* min(model_max_length 512, max_position_embeddings 512, max_seq_length 256) */
  assert_int_equal(bertcl_tokenizer_max_length(tok), 256);
  assert_int_equal(bertcl_tokenizer_vocab_size(tok), 30522);
  assert_int_equal(bertcl_tokenizer_id_bound(tok), 30522); /* ids 0..30521 */
  assert_int_equal(bertcl_tokenizer_token_to_id(tok, "[CLS]"), 101);
  assert_int_equal(bertcl_tokenizer_token_to_id(tok, "##ing"), 2075);
  assert_int_equal(bertcl_tokenizer_token_to_id(tok, "no-such-token"), -1);
  assert_string_equal(bertcl_tokenizer_id_to_token(tok, 102), "[SEP]");
  assert_null(bertcl_tokenizer_id_to_token(tok, 30522));
  assert_null(bertcl_tokenizer_id_to_token(tok, -1));
  /* default options truncate to 256 */
  size_t len = 5000;
  char *text = malloc(len + 1);
  for (size_t i = 0; i < len; i += 2) {
    text[i] = 'a';
    text[i + 1] = ' ';
  }
  text[len] = '\0';
  bertcl_encoding *e = NULL;
  assert_int_equal(bertcl_tokenizer_encode(tok, text, len, NULL, 0, NULL, &e), BERTCL_OK);
  assert_int_equal(e->n, 256);
  assert_int_equal(e->overflow[0], 2500 - 254);
  assert_int_equal(e->ids[255], 102);
  bertcl_encoding_free(e);
  free(text);
  bertcl_tokenizer_free(tok);
  tok = load_dir("cased");
  assert_int_equal(bertcl_tokenizer_max_length(tok), 512);
  bertcl_tokenizer_free(tok);
  tok = load_dir("toy");
  assert_int_equal(bertcl_tokenizer_max_length(tok), SIZE_MAX);
  bertcl_tokenizer_free(tok);
}

static void write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(s, f);
  fclose(f);
}

static void test_errors(void **state) {
  (void)state;
  bertcl_tokenizer *tok = (bertcl_tokenizer *)1;
  assert_int_equal(bertcl_tokenizer_load(&tok, "/nonexistent/dir"), BERTCL_ERR_MISSING);
  assert_null(tok);
  assert_non_null(strstr(bertcl_last_error(NULL), "/nonexistent/dir"));
  assert_int_equal(bertcl_tokenizer_load(NULL, "/x"), BERTCL_ERR_INVALID_ARG);
  bertcl_tokenizer_free(NULL);
  bertcl_encoding_free(NULL);
  bertcl_batch_free(NULL);
  char dir[512], path[600];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  const char *bad[] = {
      "{not json",
      "[1,2]",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}",
      "{\"model\":{\"type\":\"WordPiece\"}}",
      "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":\"x\"}}}",
      "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":-5}}}",
      "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":2000000000}}}",
      "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0}},"
      "\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"}}",
      "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0}},"
      "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"added_tokens\":[{\"id\":1,"
      "\"lstrip\":true}]}",
      "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[X]\",\"vocab\":{\"[UNK]\":0}},"
      "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"}}",
      "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0}},"
      "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"post_processor\":{\"type\":"
      "\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"[C]\",\"type_id\":0}}],"
      "\"pair\":[],\"special_tokens\":{}}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    write_file(path, bad[i]);
    tok = NULL;
    int st = bertcl_tokenizer_load(&tok, dir);
    if (st == BERTCL_OK) fprintf(stderr, "accepted bad tokenizer.json %zu: %s\n", i, bad[i]);
    assert_true(st == BERTCL_ERR_FORMAT || st == BERTCL_ERR_UNSUPPORTED);
    assert_null(tok);
    assert_non_null(strstr(bertcl_last_error(NULL), "tokenizer"));
  }
  remove(path);
  /* encode: NULL arguments, only_second without a pair, a text too short to truncate */
  tok = load_dir("uncased");
  bertcl_encoding *e = NULL;
  assert_int_equal(bertcl_tokenizer_encode(tok, NULL, 0, NULL, 0, NULL, &e),
                   BERTCL_ERR_INVALID_ARG);
  assert_int_equal(bertcl_tokenizer_encode(tok, "a", 1, NULL, 0, NULL, NULL),
                   BERTCL_ERR_INVALID_ARG);
  bertcl_tokenize_options o = {0};
  o.max_length = 4;
  o.truncation = BERTCL_TRUNC_ONLY_SECOND;
  assert_int_equal(bertcl_tokenizer_encode(tok, "a b c d e", 9, NULL, 0, &o, &e),
                   BERTCL_ERR_INVALID_ARG);
  assert_null(e);
  assert_non_null(strstr(bertcl_last_error(NULL), "only_second"));
  o.truncation = BERTCL_TRUNC_ONLY_FIRST;
  o.max_length = 5;
  assert_int_equal(bertcl_tokenizer_encode(tok, "a", 1, "b c d e f", 9, &o, &e),
                   BERTCL_ERR_INVALID_ARG);
  const char *texts[] = {"a", NULL};
  bertcl_batch *b = NULL;
  assert_int_equal(bertcl_tokenizer_encode_batch(tok, texts, NULL, 2, NULL, &b),
                   BERTCL_ERR_INVALID_ARG);
  assert_int_equal(bertcl_tokenizer_encode_batch(tok, texts, NULL, 0, NULL, &b), BERTCL_OK);
  assert_int_equal(b->batch, 0);
  bertcl_batch_free(b);
  bertcl_tokenizer_free(tok);
}

/* bertcl tokenize: plain text, --pair, JSONL, invalid UTF-8 warning, --max-len. */
static void test_cli(void **state) {
  (void)state;
  char dir[512], in[600], cmd[2048];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(in, sizeof in, "%s/in.txt", dir);
  write_file(in,
             "UNwant\xc3\xa9"
             "d,running\n{\"text\": \"a b\", \"text_pair\": \"x\"}\nlow\xff lowest\n");
  snprintf(cmd, sizeof cmd, "%s tokenize -m %s/tokenizer/toy -i %s 2>&1", BERTCL_BIN,
           BERTCL_TEST_DATA, in);
  char *out = NULL;
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out,
                         "{\"ids\":[1,0,12,10,11,2],\"tokens\":[\"[CLS]\",\"[UNK]\",\",\","
                         "\"runn\",\"##ing\",\"[SEP]\"],\"type_ids\":[0,0,0,0,0,0],"
                         "\"offsets\":[[0,0],[0,8],[8,9],[9,13],[13,16],[0,0]],"
                         "\"word_ids\":[null,0,1,2,2,null],\"overflow\":[0,0]}"));
  assert_null(strstr(out, "\"type_ids\":[0,0,0,0,1,1]")); /* plain text: the JSON is text */
  assert_non_null(strstr(out, "warning"));
  assert_non_null(strstr(out, ":3:"));
  assert_non_null(strstr(out, "\"ids\":[1,13,14,2]"));
  free(out);
  /* JSONL (decided by the first line), pairs, JSON escapes incl. NUL */
  write_file(in, "{\"text\": \"a b\", \"text_pair\": \"x\"}\n\n{\"text\": \"low\\u0000est\"}\n");
  snprintf(cmd, sizeof cmd, "%s tokenize -m %s/tokenizer/toy -i %s 2>&1", BERTCL_BIN,
           BERTCL_TEST_DATA, in);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "\"ids\":[1,19,21,2,23,2],"));
  assert_non_null(strstr(out, "\"type_ids\":[0,0,0,0,1,1]"));
  assert_non_null(strstr(out, "\"ids\":[1,2]")); /* the empty line */
  /* "lowest" after the cleaner drops NUL: one word spanning 7 characters */
  assert_non_null(strstr(out,
                         "\"ids\":[1,14,2],\"tokens\":[\"[CLS]\",\"lowest\",\"[SEP]\"],"
                         "\"type_ids\":[0,0,0],\"offsets\":[[0,0],[0,7],[0,0]]"));
  free(out);
  write_file(in, "{\"text\": \"a\"}\nnot json\n");
  assert_int_equal(bc_test_run(cmd, &out), 1);
  assert_non_null(strstr(out, ":2:"));
  free(out);
  snprintf(cmd, sizeof cmd,
           "printf 'want want want\\tun\\n' | %s tokenize -m %s/tokenizer/toy --pair --max-len 5",
           BERTCL_BIN, BERTCL_TEST_DATA);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "\"ids\":[1,5,2,9,2]"));
  assert_non_null(strstr(out, "\"overflow\":[2,0]"));
  free(out);
  snprintf(cmd, sizeof cmd, "%s tokenize -m /nonexistent </dev/null 2>&1", BERTCL_BIN);
  assert_int_equal(bc_test_run(cmd, &out), 1);
  free(out);
  remove(in);
  rmdir(dir);
}


/* Every pipeline's components are described; the model type is named. */
static void test_pipeline_describe(void **state) {
  (void)state;
  static const struct {
    const char *dir, *type, *parts[5];
  } want[] = {
      {"uncased", "WordPiece", {"BertNormalizer(", "BertPreTokenizer", "WordPiece(30522 tokens",
                                "TemplateProcessing(single '[CLS] $A [SEP]'", "5 (5 special)"}},
      {"xlmr", "Unigram", {"Precompiled", "Metaspace(replacement='\xe2\x96\x81', prepend_scheme=always",
                           "Unigram(", "'<s> $A </s> </s> $B </s>'", "'<mask>'(lstrip)"}},
      {"roberta", "BPE", {"none", "ByteLevel(add_prefix_space=0, use_regex=1)", "BPE(",
                          "RobertaProcessing(", "'<s>'(normalized)"}},
      {"mpnet", "WordPiece", {"BertNormalizer", "BertPreTokenizer", "WordPiece(30527 tokens",
                              "RobertaProcessing(", "'<unk>'(normalized)"}},
      {"llama3", "BPE", {"none", "Split('(?i:", "ignore_merges=1", "trim_offsets",
                         "'hello world'(single_word)"}},
      {"bpe-classic", "BPE", {"Sequence[NFKC, Lowercase, Strip(left=1, right=1), Replace(",
                              "Punctuation(merged_with_previous)", "end_of_word_suffix='</w>'",
                              "BertProcessing(", "'New York'(normalized)"}},
      {"wordlevel", "WordLevel", {"Sequence[NFD, StripAccents, Lowercase, Nmt]",
                                  "CharDelimiterSplit('-')", "WordLevel(", "TemplateProcessing(",
                                  "3 (3 special)"}},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    bertcl_tokenizer *tok = load_dir(want[i].dir);
    assert_string_equal(bertcl_tokenizer_model_type(tok), want[i].type);
    for (int k = 0; k < 5; k++) {
      const char *d = bertcl_tokenizer_describe(tok, (bertcl_tokenizer_stage)k);
      if (!d || !strstr(d, want[i].parts[k]))
        fprintf(stderr, "%s stage %d: '%s' lacks '%s'\n", want[i].dir, k, d ? d : "(null)",
                want[i].parts[k]);
      assert_non_null(d);
      assert_non_null(strstr(d, want[i].parts[k]));
    }
    assert_null(bertcl_tokenizer_describe(tok, (bertcl_tokenizer_stage)5));
    bertcl_tokenizer_free(tok);
  }
  assert_null(bertcl_tokenizer_describe(NULL, BERTCL_STAGE_MODEL));
  assert_null(bertcl_tokenizer_model_type(NULL));
}

/* bertcl_tokenizer_id_bound is one more than the largest id of the model's vocabulary and the
 * added tokens, for every model type (read back from tokenizer.json). */
static void test_id_bound_models(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof PIPELINES / sizeof *PIPELINES; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/%s/tokenizer.json", BERTCL_TEST_DATA, PIPELINES[i]);
    json_t *root = json_load_file(path, 0, NULL);
    assert_non_null(root);
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    json_int_t max = -1;
    if (json_is_array(vocab)) {
      max = (json_int_t)json_array_size(vocab) - 1; /* Unigram: ids are positions */
    } else {
      const char *key;
      json_t *v;
      json_object_foreach(vocab, key, v) if (json_integer_value(v) > max) max = json_integer_value(v);
    }
    size_t k;
    json_t *a;
    json_array_foreach(json_object_get(root, "added_tokens"), k, a) {
      json_int_t id = json_integer_value(json_object_get(a, "id"));
      if (id > max) max = id;
    }
    bertcl_tokenizer *tok = load_dir(PIPELINES[i]);
    if (bertcl_tokenizer_id_bound(tok) != (size_t)(max + 1))
      fprintf(stderr, "%s: id bound %zu, expected %lld\n", PIPELINES[i],
              bertcl_tokenizer_id_bound(tok), (long long)max + 1);
    assert_int_equal(bertcl_tokenizer_id_bound(tok), (size_t)(max + 1));
    assert_non_null(bertcl_tokenizer_id_to_token(tok, (int32_t)max));
    assert_null(bertcl_tokenizer_id_to_token(tok, (int32_t)max + 1));
    bertcl_tokenizer_free(tok);
    json_decref(root);
  }
}

/* Writes s as DIR/tokenizer.json and loads DIR; returns the status. */
static int load_json_text(const char *dir, const char *s) {
  char path[600];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  write_file(path, s);
  bertcl_tokenizer *tok = (bertcl_tokenizer *)1;
  int st = bertcl_tokenizer_load(&tok, dir);
  if (st == BERTCL_OK) bertcl_tokenizer_free(tok);
  if (st != BERTCL_OK) assert_null(tok);
  return st;
}

#define WP_MODEL "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0,\"a\":1}}"
#define UNI_MODEL "\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0],[\"a\",-1.5]]}"

/* A component bertcl does not implement is refused with its name; malformed ones with a
 * message naming the file. */
static void test_unsupported_components(void **state) {
  (void)state;
  char dir[512];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  static const struct {
    const char *json, *needle;
    int status;
  } cases[] = {
      {"{" WP_MODEL ",\"normalizer\":{\"type\":\"Rot13\"}}", "normalizer 'Rot13'", BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
       "{\"type\":\"Rot13\"}]}}", "normalizer 'Rot13'", BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"}}", "pre_tokenizer 'UnicodeScripts'",
       BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
       "\"FixedLength\",\"length\":5}]}}", "pre_tokenizer 'FixedLength'", BERTCL_ERR_UNSUPPORTED},
      {"{\"model\":{\"type\":\"CharLevel\",\"vocab\":{}}}", "model 'CharLevel'", BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"post_processor\":{\"type\":\"Reverse\"}}", "post_processor 'Reverse'",
       BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":"
       "\"BertProcessing\",\"sep\":[\"a\",1],\"cls\":[\"a\",1]},{\"type\":\"ByteLevel\"}]}}",
       "'ByteLevel' after a template", BERTCL_ERR_UNSUPPORTED},
      {"{\"version\":\"2.0\"," WP_MODEL "}", "version '2.0'", BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
       "\"behavior\":\"Isolated\",\"invert\":false}}", "Split: regex '('", BERTCL_ERR_UNSUPPORTED},
      {"{" WP_MODEL ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
       "\"behavior\":\"Sideways\",\"invert\":false}}", "behavior 'Sideways'", BERTCL_ERR_FORMAT},
      {"{" WP_MODEL ",\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}}",
       "replacement must be one character", BERTCL_ERR_FORMAT},
      {"{" WP_MODEL ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"@@@\"}}",
       "not valid base64", BERTCL_ERR_FORMAT},
      {"{" WP_MODEL ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAEAAA==\"}}",
       "announces a trie", BERTCL_ERR_FORMAT},
      {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}}", "not [piece, score]", BERTCL_ERR_FORMAT},
      {"{\"model\":{\"type\":\"Unigram\",\"unk_id\":5,\"vocab\":[[\"a\",0]]}}", "unk_id 5", BERTCL_ERR_FORMAT},
      {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
       "merged token is not in the vocabulary", BERTCL_ERR_FORMAT},
      {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\",\"c\"]]}}", "'c' not in the vocabulary",
       BERTCL_ERR_FORMAT},
      {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a  b\"]}}", "is not a pair",
       BERTCL_ERR_FORMAT},
      {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}", "without \"merges\"", BERTCL_ERR_FORMAT},
      {"{" UNI_MODEL ",\"added_tokens\":[{\"id\":2,\"special\":true}]}", "added_tokens[0] has no content",
       BERTCL_ERR_FORMAT},
      {"{" UNI_MODEL ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
       "{\"id\":\"<s>\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\","
       "\"ids\":[7],\"tokens\":[\"<s>\"]}}}}", "token id 7 is not in the vocabulary", BERTCL_ERR_FORMAT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int st = load_json_text(dir, cases[i].json);
    const char *msg = bertcl_last_error(NULL);
    if (st != cases[i].status || !strstr(msg, cases[i].needle) || !strstr(msg, "tokenizer.json"))
      fprintf(stderr, "case %zu: status %d, message '%s' (want %d, '%s')\n", i, st, msg,
              cases[i].status, cases[i].needle);
    assert_int_equal(st, cases[i].status);
    assert_non_null(strstr(msg, cases[i].needle));
  }
  /* the minimal ones load and tokenize */
  assert_int_equal(load_json_text(dir, "{" UNI_MODEL "}"), BERTCL_OK);
  assert_int_equal(load_json_text(dir, "{" WP_MODEL ",\"pre_tokenizer\":{\"type\":\"Whitespace\"}}"),
                   BERTCL_OK);
  char path[600];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  remove(path);
  rmdir(dir);
}

/* Folders without tokenizer.json: vocab.txt loads (BERT, or MPNet's template by class); a
 * SentencePiece model or vocab.json + merges.txt alone is named in the error. */
static void test_old_style_folders(void **state) {
  (void)state;
  char dir[512], path[700];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/sentencepiece.bpe.model", dir);
  write_file(path, "not read");
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_tokenizer_load(&tok, dir), BERTCL_ERR_MISSING);
  assert_non_null(strstr(bertcl_last_error(NULL), "tokenizer.json is missing"));
  assert_non_null(strstr(bertcl_last_error(NULL), "sentencepiece.bpe.model"));
  remove(path);
  snprintf(path, sizeof path, "%s/vocab.json", dir);
  write_file(path, "{}");
  assert_int_equal(bertcl_tokenizer_load(&tok, dir), BERTCL_ERR_MISSING);
  assert_non_null(strstr(bertcl_last_error(NULL), "vocab.json + merges.txt"));
  remove(path);
  /* MPNet from vocab.txt: <s> A </s> </s> B </s>, type ids 0 */
  char p[3][1024];
  const char *f[3] = {"vocab.txt", "tokenizer_config.json", "x"};
  for (int i = 0; i < 3; i++)
    snprintf(p[i], sizeof p[i], "%s/tokenizer/mpnet/%s", BERTCL_TEST_DATA, f[i]);
  assert_int_equal(bc_tok_load_files(&tok, NULL, p[0], p[1], NULL, NULL), BERTCL_OK);
  bertcl_encoding *e = NULL;
  assert_int_equal(bertcl_tokenizer_encode(tok, "hello", 5, "world", 5, NULL, &e), BERTCL_OK);
  assert_int_equal(e->n, 6);
  int32_t s = bertcl_tokenizer_token_to_id(tok, "<s>"), z = bertcl_tokenizer_token_to_id(tok, "</s>");
  assert_int_equal(e->ids[0], s);
  assert_int_equal(e->ids[2], z);
  assert_int_equal(e->ids[3], z);
  assert_int_equal(e->ids[5], z);
  for (size_t i = 0; i < e->n; i++) assert_int_equal(e->type_ids[i], 0);
  assert_non_null(strstr(bertcl_tokenizer_describe(tok, BERTCL_STAGE_POST_PROCESSOR), "Roberta"));
  bertcl_encoding_free(e);
  bertcl_tokenizer_free(tok);
  rmdir(dir);
}

/* bertcl tokenize --pipeline and bertcl info show the components. */
static void test_cli_pipeline(void **state) {
  (void)state;
  char cmd[2048], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s tokenize -m %s/tokenizer/xlmr --pipeline", BERTCL_BIN, BERTCL_TEST_DATA);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "normalizer      Sequence[Precompiled"));
  assert_non_null(strstr(out, "pre-tokenizer   Metaspace("));
  assert_non_null(strstr(out, "model           Unigram("));
  assert_non_null(strstr(out, "post-processor  TemplateProcessing("));
  assert_non_null(strstr(out, "max length      512"));
  free(out);
  snprintf(cmd, sizeof cmd, "echo 'hello <mask> world' | %s tokenize -m %s/tokenizer/roberta", BERTCL_BIN,
           BERTCL_TEST_DATA);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  /* <mask> lstrips its space; its offsets are trimmed back to the token */
  assert_non_null(strstr(out, "\"<mask>\""));
  assert_non_null(strstr(out, "[6,12]"));
  free(out);
  snprintf(cmd, sizeof cmd, "%s info -m %s/tiny-bert", BERTCL_BIN, BERTCL_TEST_DATA);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "  pre-tokenizer   BertPreTokenizer"));
  free(out);
  snprintf(cmd, sizeof cmd, "%s info -m %s/tiny-bert --json", BERTCL_BIN, BERTCL_TEST_DATA);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "\"model_type\": \"WordPiece\""));
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_uncased_json),
      cmocka_unit_test(test_golden_uncased_vocab),
      cmocka_unit_test(test_golden_cased_json),
      cmocka_unit_test(test_golden_cased_vocab),
      cmocka_unit_test(test_golden_toy_json),
      cmocka_unit_test(test_golden_toy_vocab),
      cmocka_unit_test(test_golden_xlmr),
      cmocka_unit_test(test_golden_roberta),
      cmocka_unit_test(test_golden_mpnet),
      cmocka_unit_test(test_golden_zoo),
      cmocka_unit_test(test_batch_matches_golden),
      cmocka_unit_test(test_fast_unicode_tables),
      cmocka_unit_test(test_fast_whitespace),
      cmocka_unit_test(test_fast_lowercase),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_defaults_and_lookup),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_cli),
      cmocka_unit_test(test_pipeline_describe),
      cmocka_unit_test(test_id_bound_models),
      cmocka_unit_test(test_unsupported_components),
      cmocka_unit_test(test_old_style_folders),
      cmocka_unit_test(test_cli_pipeline),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
