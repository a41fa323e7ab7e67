/* Token classification's host-side parts, called through the library (no binary, no device):
 * - entity extraction and scores against seqeval (tests/data/ner/seqeval.json, made by
 *   tests/gen/gen_seqeval_fixtures.py): IOB1, IOB2, IOBES, arbitrary and untyped tags, no
 *   predictions; every case's entities, micro P/R/F1, accuracy and the per-type table; the
 *   scheme detection on the same cases;
 * - label alignment against run_ner.py's (tests/data/ner/align-*.json, made by
 *   tests/gen/gen_align_fixtures.py with the fast tokenizer): ids, labels and --label-all-tokens
 *   labels of every token, and b_to_i;
 * - windows for sentences longer than max_length: every word trained on and predicted once,
 *   no window over the length, the labels those of the unsplit alignment;
 * - the CoNLL and JSONL word readers and their errors (file and line). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "train/align.h"
#include "train/entity.h"
#include "train/labels.h"
#include "train/words.h"

static json_t *load_fixture(const char *rel) {
  char path[1024];
  bc_test_data_path(path, sizeof path, rel);
  json_error_t je;
  json_t *doc = json_load_file(path, 0, &je);
  if (!doc) fail_msg("%s: %s (rerun its generator in tests/gen)", path, je.text);
  return doc;
}

/* Sentences of a JSON array of arrays of strings: tags (malloc'd array of pointers into the
 * JSON) and start (nsent + 1). */
static const char **flatten(json_t *sents, size_t **start, size_t *nsent) {
  *nsent = json_array_size(sents);
  *start = calloc(*nsent + 1, sizeof **start);
  size_t total = 0;
  for (size_t s = 0; s < *nsent; s++) total += json_array_size(json_array_get(sents, s));
  const char **tags = calloc(total ? total : 1, sizeof *tags);
  assert_non_null(*start);
  assert_non_null(tags);
  size_t k = 0;
  for (size_t s = 0; s < *nsent; s++) {
    json_t *a = json_array_get(sents, s);
    for (size_t i = 0; i < json_array_size(a); i++)
      tags[k++] = json_string_value(json_array_get(a, i));
    (*start)[s + 1] = k;
  }
  return tags;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-12; }

static void test_seqeval_cases(void **state) {
  (void)state;
  json_t *doc = load_fixture("ner/seqeval.json");
  json_t *cases = json_object_get(doc, "cases");
  assert_true(json_array_size(cases) >= 10);
  bc_err err = {0};
  int ok = 1;
  for (size_t c = 0; c < json_array_size(cases); c++) {
    json_t *cs = json_array_get(cases, c);
    const char *name = json_string_value(json_object_get(cs, "name"));
    size_t *start = NULL, *pstart = NULL, nsent = 0, np = 0;
    const char **gold = flatten(json_object_get(cs, "gold"), &start, &nsent);
    const char **pred = flatten(json_object_get(cs, "pred"), &pstart, &np);
    assert_int_equal(np, nsent);
    /* entities of the gold, sentences joined with an "O" as seqeval joins nested lists */
    size_t nw = start[nsent];
    const char **joined = calloc(nw + nsent, sizeof *joined);
    assert_non_null(joined);
    size_t k = 0;
    for (size_t s = 0; s < nsent; s++) {
      for (size_t i = start[s]; i < start[s + 1]; i++) joined[k++] = gold[i];
      joined[k++] = "O";
    }
    bc_entity *ents = NULL;
    size_t count = 0, cap = 0;
    char **types = NULL;
    int ntypes = 0;
    assert_int_equal(bc_entities(joined, k, &ents, &count, &cap, &types, &ntypes), BERTCL_OK);
    json_t *want = json_object_get(cs, "gold_entities");
    if (count != json_array_size(want)) {
      printf("FAIL %s: %zu entities, seqeval %zu\n", name, count, json_array_size(want));
      ok = 0;
    }
    for (size_t i = 0; i < count && i < json_array_size(want); i++) {
      json_t *w = json_array_get(want, i);
      const char *wt = json_string_value(json_array_get(w, 0));
      size_t ws = (size_t)json_integer_value(json_array_get(w, 1));
      size_t we = (size_t)json_integer_value(json_array_get(w, 2));
      if (strcmp(types[ents[i].type], wt) || ents[i].start != ws || ents[i].end != we) {
        printf("FAIL %s: entity %zu is (%s, %zu, %zu), seqeval (%s, %zu, %zu)\n", name, i,
               types[ents[i].type], ents[i].start, ents[i].end, wt, ws, we);
        ok = 0;
        break;
      }
    }
    for (int t = 0; t < ntypes; t++) free(types[t]);
    free(types), free(ents), free(joined);
    /* scores */
    bc_entity_report r;
    assert_int_equal(bc_entity_score(&err, gold, pred, start, nsent, &r), BERTCL_OK);
    double wp = json_real_value(json_object_get(cs, "precision"));
    double wr = json_real_value(json_object_get(cs, "recall"));
    double wf = json_real_value(json_object_get(cs, "f1"));
    double wa = json_real_value(json_object_get(cs, "accuracy"));
    if (!close_to(r.precision, wp) || !close_to(r.recall, wr) || !close_to(r.f1, wf) ||
        !close_to(r.accuracy, wa)) {
      printf("FAIL %s: P %.15g R %.15g F1 %.15g acc %.15g; seqeval %.15g %.15g %.15g %.15g\n",
             name, r.precision, r.recall, r.f1, r.accuracy, wp, wr, wf, wa);
      ok = 0;
    }
    json_t *wt = json_object_get(cs, "types");
    if ((size_t)r.ntypes != json_array_size(wt)) {
      printf("FAIL %s: %d types, seqeval %zu\n", name, r.ntypes, json_array_size(wt));
      ok = 0;
    }
    for (int t = 0; t < r.ntypes && (size_t)t < json_array_size(wt); t++) {
      json_t *e = json_array_get(wt, (size_t)t);
      if (strcmp(r.types[t], json_string_value(json_object_get(e, "type"))) ||
          !close_to(r.type_p[t], json_number_value(json_object_get(e, "precision"))) ||
          !close_to(r.type_r[t], json_number_value(json_object_get(e, "recall"))) ||
          !close_to(r.type_f1[t], json_number_value(json_object_get(e, "f1"))) ||
          r.type_support[t] != (size_t)json_integer_value(json_object_get(e, "support"))) {
        printf("FAIL %s: type %d (%s) P %.6f R %.6f F1 %.6f support %zu differ from seqeval's\n",
               name, t, r.types[t], r.type_p[t], r.type_r[t], r.type_f1[t], r.type_support[t]);
        ok = 0;
      }
    }
    /* the scheme each case was made in */
    bertcl_tag_scheme sch = bc_detect_scheme(gold, start, nsent);
    bertcl_tag_scheme want_sch = !strncmp(name, "IOB1", 4)    ? BERTCL_SCHEME_IOB1
                                 : !strncmp(name, "IOB2", 4)  ? BERTCL_SCHEME_IOB2
                                 : !strncmp(name, "IOBES", 5) ? BERTCL_SCHEME_IOBES
                                 : !strcmp(name, "untyped")   ? BERTCL_SCHEME_NONE
                                                              : sch;
    if (sch != want_sch) {
      printf("FAIL %s: scheme %s detected\n", name, bc_scheme_name(sch));
      ok = 0;
    }
    printf("  %-14s %3zu sentences, %3zu gold / %3zu predicted entities: P %.4f R %.4f F1 %.4f "
           "(seqeval %.4f) scheme %s\n",
           name, nsent, r.gold_entities, r.pred_entities, r.precision, r.recall, r.f1, wf,
           bc_scheme_name(sch));
    if (!strcmp(name, "IOB1-0")) {
      char *table = bc_entity_report_table(&r);
      assert_non_null(table);
      assert_non_null(strstr(table, "micro avg"));
      printf("%s\n", table);
      free(table);
    }
    bc_entity_report_free(&r);
    free(gold), free(pred), free(start), free(pstart);
  }
  json_decref(doc);
  assert_true(ok);
}

static void test_scheme_checks(void **state) {
  (void)state;
  const char *iobes[] = {"O", "S-PER", "B-LOC", "E-LOC"};
  size_t bad = 99;
  assert_true(bc_tags_fit_scheme(iobes, 4, BERTCL_SCHEME_IOBES, &bad));
  assert_false(bc_tags_fit_scheme(iobes, 4, BERTCL_SCHEME_IOB2, &bad));
  assert_int_equal(bad, 1);
  const char *pos[] = {"NN", "VBZ", "O"};
  size_t st2[2] = {0, 3};
  assert_int_equal(bc_detect_scheme(pos, st2, 1), BERTCL_SCHEME_NONE);
  assert_true(bc_tags_fit_scheme(pos, 3, BERTCL_SCHEME_NONE, &bad));
  /* B- only between two entities of one type: IOB1 when an entity starts with I- */
  const char *iob1[] = {"I-PER", "B-PER", "O"}, *iob2[] = {"B-PER", "I-PER", "B-PER"};
  size_t st3[2] = {0, 3};
  assert_int_equal(bc_detect_scheme(iob1, st3, 1), BERTCL_SCHEME_IOB1);
  assert_int_equal(bc_detect_scheme(iob2, st3, 1), BERTCL_SCHEME_IOB2);
}

/* ---- alignment ---------------------------------------------------------------------------- */

/* JSONL text of the fixture's sentences ({"tokens", "tags"} a line). */
static char *fixture_jsonl(json_t *sents) {
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  for (size_t s = 0; s < json_array_size(sents); s++) {
    json_t *o = json_pack("{s:O,s:O}", "tokens", json_object_get(json_array_get(sents, s), "tokens"),
                          "tags", json_object_get(json_array_get(sents, s), "tags"));
    char *line = json_dumps(o, JSON_COMPACT);
    size_t l = strlen(line);
    assert_true(len + l + 2 < cap);
    memcpy(out + len, line, l);
    len += l;
    out[len++] = '\n';
    free(line);
    json_decref(o);
  }
  out[len] = 0;
  return out;
}

static void align_case(const char *fixture, const char *tok_dir) {
  json_t *doc = load_fixture(fixture);
  json_t *sents = json_object_get(doc, "sentences");
  bertcl_tokenizer *tok = NULL;
  if (bertcl_tokenizer_load(&tok, tok_dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  char *jsonl = fixture_jsonl(sents);
  bc_err err = {0};
  bc_word_data d;
  bc_word_columns cols = {-1, NULL, NULL};
  assert_int_equal(bc_words_parse(&err, "fixture.jsonl", jsonl, strlen(jsonl), &cols,
                                  BC_WORDS_NEED_TAGS, &d),
                   BERTCL_OK);
  assert_int_equal(d.n, json_array_size(sents));
  bc_labelmap lm;
  assert_int_equal(bc_labelmap_sorted(&err, &lm, (const char *const *)d.tags, d.start[d.n]),
                   BERTCL_OK);
  json_t *ll = json_object_get(doc, "label_list");
  assert_int_equal((size_t)lm.K, json_array_size(ll));
  int32_t b_to_i[64];
  bc_b_to_i(&lm, b_to_i);
  for (int k = 0; k < lm.K; k++) {
    assert_string_equal(lm.names[k], json_string_value(json_array_get(ll, (size_t)k)));
    assert_int_equal(b_to_i[k], json_integer_value(json_array_get(json_object_get(doc, "b_to_i"),
                                                                  (size_t)k)));
  }
  int32_t *wl = malloc(d.start[d.n] * sizeof *wl);
  assert_non_null(wl);
  for (size_t i = 0; i < d.start[d.n]; i++) wl[i] = bc_labelmap_id(&lm, d.tags[i]);
  int ok = 1;
  for (int all = 0; all < 2; all++) {
    bc_align_options ao = {512, all, b_to_i};
    bc_examples x;
    bc_align_stats stats;
    if (bc_examples_from_words(&err, &x, tok, &d, wl, &ao, &stats) != BERTCL_OK)
      fail_msg("%s", err.msg);
    assert_int_equal(x.n, d.n); /* one window each */
    assert_int_equal(stats.split_sentences, 0);
    for (size_t s = 0; s < d.n; s++) {
      json_t *js = json_array_get(sents, s);
      json_t *ids = json_object_get(js, "input_ids");
      json_t *labs = json_object_get(js, all ? "labels_all" : "labels");
      size_t n = x.start[s + 1] - x.start[s];
      if (n != json_array_size(ids)) {
        printf("FAIL %s sentence %zu: %zu tokens, run_ner %zu\n", fixture, s, n,
               json_array_size(ids));
        ok = 0;
        continue;
      }
      for (size_t i = 0; i < n; i++) {
        int32_t id = x.ids[x.start[s] + i], lab = x.tok_label[x.start[s] + i];
        if (id != json_integer_value(json_array_get(ids, i)) ||
            lab != json_integer_value(json_array_get(labs, i))) {
          printf("FAIL %s sentence %zu token %zu (label_all_tokens %d): id %d label %d, run_ner "
                 "id %lld label %lld\n",
                 fixture, s, i, all, (int)id, (int)lab,
                 (long long)json_integer_value(json_array_get(ids, i)),
                 (long long)json_integer_value(json_array_get(labs, i)));
          ok = 0;
          break;
        }
      }
    }
    if (!all)
      printf("  %s: %zu sentences, %zu words, %zu subwords: ids and labels as run_ner.py\n",
             fixture, stats.sentences, stats.words, stats.tokens);
    bc_examples_free(&x);
  }
  free(wl);
  bc_labelmap_free(&lm);
  bc_word_data_free(&d);
  free(jsonl);
  bertcl_tokenizer_free(tok);
  json_decref(doc);
  assert_true(ok);
}

static void test_align_tiny(void **state) {
  (void)state;
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  align_case("ner/align-tiny.json", dir);
}

static void test_align_minilm(void **state) {
  (void)state;
  char dir[1024];
  if (!bc_test_minilm_dir(dir, sizeof dir)) skip();
  align_case("ner/align-minilm.json", dir);
}

/* Long sentences in windows of max_length 10 (8 subwords): nothing cut, nothing twice. */
static void test_windows(void **state) {
  (void)state;
  char dir[1024];
  bc_test_data_path(dir, sizeof dir, "tiny-bert");
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_tokenizer_load(&tok, dir), BERTCL_OK);
  json_t *doc = load_fixture("ner/align-tiny.json");
  char *jsonl = fixture_jsonl(json_object_get(doc, "sentences"));
  /* and one word longer than a window */
  const char *extra = "{\"tokens\": [\"a\", \"supercalifragilisticexpialidocious\", \"b\"], "
                      "\"tags\": [\"O\", \"I-MISC\", \"O\"]}\n";
  char *all = malloc(strlen(jsonl) + strlen(extra) + 1);
  assert_non_null(all);
  strcpy(all, jsonl);
  strcat(all, extra);
  bc_err err = {0};
  bc_word_data d;
  bc_word_columns cols = {-1, NULL, NULL};
  assert_int_equal(bc_words_parse(&err, "w.jsonl", all, strlen(all), &cols, BC_WORDS_NEED_TAGS,
                                  &d),
                   BERTCL_OK);
  bc_labelmap lm;
  assert_int_equal(bc_labelmap_sorted(&err, &lm, (const char *const *)d.tags, d.start[d.n]),
                   BERTCL_OK);
  int32_t *wl = malloc(d.start[d.n] * sizeof *wl), b_to_i[64];
  for (size_t i = 0; i < d.start[d.n]; i++) wl[i] = bc_labelmap_id(&lm, d.tags[i]);
  bc_b_to_i(&lm, b_to_i);
  bc_align_options whole = {512, 1, b_to_i}, small = {10, 1, b_to_i};
  bc_examples xw, xs;
  bc_align_stats sw, ss;
  assert_int_equal(bc_examples_from_words(&err, &xw, tok, &d, wl, &whole, &sw), BERTCL_OK);
  assert_int_equal(bc_examples_from_words(&err, &xs, tok, &d, wl, &small, &ss), BERTCL_OK);
  printf("  max_length 10: %zu sentences -> %zu windows (%zu split), longest %zu subwords, "
         "%zu word cut\n",
         ss.sentences, ss.windows, ss.split_sentences, ss.longest, ss.cut_words);
  assert_true(ss.split_sentences >= 5);
  assert_int_equal(sw.cut_words, 0);
  /* subwords of each word in the unsplit alignment (label_all_tokens: all of them labelled) */
  size_t nw = d.start[d.n];
  size_t *nsub = calloc(nw, sizeof *nsub);
  assert_non_null(nsub);
  for (size_t j = 0; j < xw.n; j++) {
    size_t cur = SIZE_MAX;
    for (size_t i = xw.start[j]; i < xw.start[j + 1]; i++) {
      if (xw.tok_word[i] >= 0) cur = d.start[xw.sentence[j]] + (size_t)xw.tok_word[i];
      if (xw.tok_label[i] != -100) nsub[cur]++;
    }
  }
  size_t want_kept = 0, want_cut = 0;
  for (size_t w = 0; w < nw; w++) {
    want_kept += nsub[w] < 8 ? nsub[w] : 8;
    want_cut += nsub[w] > 8;
  }
  assert_int_equal(ss.cut_words, want_cut);
  assert_true(want_cut >= 1);
  /* every window fits; every word appears as a first subword exactly once, with the label the
   * unsplit alignment gives it; later subwords keep theirs, up to the 8 a window holds */
  int *seen = calloc(nw, sizeof *seen);
  assert_non_null(seen);
  size_t kept_sub = 0;
  for (size_t j = 0; j < xs.n; j++) {
    size_t len = xs.start[j + 1] - xs.start[j], s = xs.sentence[j];
    assert_true(len <= 10);
    assert_int_equal(xs.tok_label[xs.start[j]], -100); /* [CLS] */
    assert_int_equal(xs.tok_label[xs.start[j + 1] - 1], -100); /* [SEP] */
    for (size_t i = xs.start[j]; i < xs.start[j + 1]; i++) {
      if (xs.tok_label[i] != -100) kept_sub++;
      if (xs.tok_word[i] < 0) continue;
      size_t w = d.start[s] + (size_t)xs.tok_word[i];
      seen[w]++;
      assert_int_equal(xs.tok_label[i], wl[w]);
    }
  }
  for (size_t w = 0; w < nw; w++)
    if (seen[w] != 1) fail_msg("word %zu ('%s') predicted %d times", w, d.words[w], seen[w]);
  assert_int_equal(kept_sub, want_kept);
  free(nsub);
  free(seen);
  bc_examples_free(&xw);
  bc_examples_free(&xs);
  /* a window of max_length 2 has no room for a word */
  bc_align_options tiny = {2, 0, NULL};
  assert_int_equal(bc_examples_from_words(&err, &xs, tok, &d, wl, &tiny, &ss),
                   BERTCL_ERR_INVALID_ARG);
  free(wl);
  bc_labelmap_free(&lm);
  bc_word_data_free(&d);
  free(all), free(jsonl);
  json_decref(doc);
  bertcl_tokenizer_free(tok);
}

/* ---- readers ------------------------------------------------------------------------------ */

static int words_parse(const char *name, const char *text, int tag_col, int flags,
                       bc_word_data *d, bc_err *err) {
  bc_word_columns cols = {tag_col, NULL, NULL};
  return bc_words_parse(err, name, text, strlen(text), &cols, flags, d);
}

static void test_conll_reader(void **state) {
  (void)state;
  bc_err err = {0};
  bc_word_data d;
  const char *conll = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n\n"
                      "Peter NNP I-NP I-PER\r\nBlackburn NNP I-NP I-PER\n-DOCSTART- -X- O O\n"
                      "\nBRUSSELS NNP I-NP I-LOC";
  assert_int_equal(words_parse("eng.train", conll, -1, BC_WORDS_NEED_TAGS, &d, &err), BERTCL_OK);
  assert_int_equal(d.n, 3);
  assert_int_equal(d.start[1], 2);
  assert_string_equal(d.words[1], "rejects");
  assert_string_equal(d.tags[0], "I-ORG");
  assert_string_equal(d.tags[3], "I-PER");
  assert_string_equal(d.raw[0], "EU NNP I-NP I-ORG");
  assert_int_equal(d.line[2], 7);
  assert_int_equal(d.docs[0], 1);
  assert_int_equal(d.docs[1], 0);
  assert_int_equal(d.docs[2], 1);
  bc_word_data_free(&d);
  /* another tag column */
  assert_int_equal(words_parse("eng.train", conll, 2, BC_WORDS_NEED_TAGS, &d, &err), BERTCL_OK);
  assert_string_equal(d.tags[0], "I-NP");
  bc_word_data_free(&d);
  assert_int_equal(words_parse("eng.train", conll, 4, BC_WORDS_NEED_TAGS, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "eng.train:3: 4 columns; the tag column 4"));
  /* ragged rows name both lines */
  assert_int_equal(words_parse("x.conll", "a B\nb C\nc\n", -1, 0, &d, &err), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.conll:3: 1 columns, line 1 has 2"));
  /* words only: fine for prediction, not for training */
  assert_int_equal(words_parse("x.conll", "a\nb\n\nc\n", -1, 0, &d, &err), BERTCL_OK);
  assert_int_equal(d.n, 2);
  assert_null(d.tags);
  bc_word_data_free(&d);
  assert_int_equal(words_parse("x.conll", "a\nb\n", -1, BC_WORDS_NEED_TAGS, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.conll:1: one column"));
  assert_int_equal(words_parse("x.conll", "\n-DOCSTART- O\n\n", -1, 0, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "no sentences"));
  const char nul[] = "a O\nb\0 O\n";
  bc_word_columns cols = {-1, NULL, NULL};
  assert_int_equal(bc_conll_parse(&err, "n.conll", nul, sizeof nul - 1, &cols, 0, &d),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "n.conll:2: a NUL byte"));
  /* found by fuzz_inputs: a tag that is not UTF-8 (config.json's id2label would drop it) is
   * refused with its line; a word that is not UTF-8 is fine (the tokenizer replaces it) */
  assert_int_equal(words_parse("u.conll", "a O\nb B-\xff" "X\n", -1, 0, &d, &err), BERTCL_ERR_UTF8);
  assert_non_null(strstr(err.msg, "u.conll:2: the tag is not valid UTF-8 (byte 3)"));
  assert_int_equal(words_parse("u.conll", "a\xff O\n", -1, 0, &d, &err), BERTCL_OK);
  bc_word_data_free(&d);
  /* found by fuzz_inputs (LeakSanitizer, the ASan stage): a reader failing mid-sentence freed
   * the finished sentences but not the words of the open one */
  assert_int_equal(words_parse("m.conll", "a O\n\nb O\nc O X\n", -1, 0, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "m.conll:4: 3 columns"));
  assert_int_equal(words_parse("m.jsonl", "{\"tokens\": [\"a\", 3]}\n", -1, 0, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "word 1 is not a string"));
  /* what looks like CoNLL */
  assert_true(bc_looks_like_conll("eng.testa", conll, strlen(conll)));
  assert_true(bc_looks_like_conll("x.txt", "EU I-ORG\nsaid O\n\nHe O\n", 22));
  assert_false(bc_looks_like_conll("x.tsv", "text\tlabel\na b\t1\n\nc\t0\n", 22));
  assert_false(bc_looks_like_conll("x.txt", "one text a line\nanother\n", 24));
  assert_false(bc_looks_like_conll("x.jsonl", "{\"tokens\": []}\n", 15));
  assert_true(bc_looks_like_conll("x.bio", "a\n", 2));
}

static void test_jsonl_words_reader(void **state) {
  (void)state;
  bc_err err = {0};
  bc_word_data d;
  assert_int_equal(words_parse("w.jsonl",
                               "{\"tokens\": [\"EU\", \"rejects\"], \"ner_tags\": [3, 0]}\n"
                               "{\"tokens\": [\"x\"], \"ner_tags\": [1]}\n",
                               -1, BC_WORDS_NEED_TAGS, &d, &err),
                   BERTCL_OK);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.tags[0], "3");
  assert_int_equal(d.line[2], 2);
  assert_null(d.raw);
  bc_word_data_free(&d);
  assert_true(bc_looks_like_word_jsonl("{\"tokens\": [\"a\"]}", 17, NULL));
  assert_false(bc_looks_like_word_jsonl("{\"text\": \"a\"}", 13, NULL));
  struct {
    const char *text, *msg;
  } bad[] = {
      {"{\"tokens\": [\"a\", \"b\"], \"tags\": [\"O\"]}\n", "w.jsonl:1: 2 words but another number of tags"},
      {"{\"tokens\": [\"a\"], \"tags\": [\"O\"]}\n{\"tokens\": [], \"tags\": []}\n", "w.jsonl:2: an empty sentence"},
      {"{\"tokens\": [\"a\", \" \"], \"tags\": [\"O\", \"O\"]}\n", "w.jsonl:1: word 1 is empty"},
      {"{\"tokens\": [\"a\", 3], \"tags\": [\"O\", \"O\"]}\n", "w.jsonl:1: word 1 is not a string"},
      {"{\"tokens\": [\"a\"], \"tags\": [[1]]}\n", "w.jsonl:1: tag 0 is not a string or an integer"},
      {"{\"tokens\": [\"a\"]}\n", "w.jsonl:1: no \"tags\" array of tags"},
      {"{\"tokens\": \"a b\"}\n", "w.jsonl:1: no \"tokens\" array of words"},
      {"{\"tokens\": [\"a\"]} x\n", "w.jsonl:1: not a JSON object"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(words_parse("w.jsonl", bad[i].text, -1, BC_WORDS_NEED_TAGS, &d, &err),
                     BERTCL_ERR_FORMAT);
    if (!strstr(err.msg, bad[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
  }
  /* untagged sentences are fine for prediction */
  assert_int_equal(words_parse("w.jsonl", "{\"tokens\": [\"a\"]}\n", -1, 0, &d, &err), BERTCL_OK);
  assert_null(d.tags);
  bc_word_data_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seqeval_cases),      cmocka_unit_test(test_scheme_checks),
      cmocka_unit_test(test_align_tiny),         cmocka_unit_test(test_align_minilm),
      cmocka_unit_test(test_windows),            cmocka_unit_test(test_conll_reader),
      cmocka_unit_test(test_jsonl_words_reader),
  };
  return cmocka_run_group_tests_name("ner", tests, NULL, NULL);
}
