/* Token classifiers (BertForTokenClassification): every word's tag from the last hidden state
 * of its first subword, sentences in windows (train/align.h) as in training, and bertcl_predict
 * for CoNLL, JSONL and plain-text input. See predict_impl.h. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"
#include "train/align.h"
#include "train/data.h"
#include "train/entity.h"
#include "train/examples.h"
#include "train/predict_impl.h"

static size_t window_length(const bertcl_classifier *c, const bertcl_tokenizer *tok,
                            size_t max_length) {
  size_t m = max_length ? max_length : bertcl_tokenizer_max_length(tok);
  return m > (size_t)c->max_position ? (size_t)c->max_position : m;
}

int bc_tag_sentences(bertcl_classifier *c, const bertcl_tokenizer *tok, const bc_word_data *d,
                     size_t max_length, size_t batch, int32_t *tags, float *probs,
                     size_t *windows) {
  bc_err *err = &c->err;
  bc_examples x;
  bc_align_stats stats;
  bc_batch_buf bb = {0};
  bc_align_options ao = {window_length(c, tok, max_length), 0, NULL};
  int32_t pad_id = 0, pad_type = 0;
  size_t *idx = NULL;
  double *z = NULL;
  int K = c->K, C = c->C, st;
  if ((st = bc_tokenizer_pad(err, tok, &pad_id, &pad_type)) != BERTCL_OK) return st;
  if ((st = bc_examples_from_words(err, &x, tok, d, NULL, &ao, &stats)) != BERTCL_OK) return st;
  size_t nw = d->start[d->n];
  for (size_t i = 0; i < nw; i++) tags[i] = c->empty_label, probs[i] = 0.0f;
  if (windows) {
    memset(windows, 0, d->n * sizeof *windows);
    for (size_t j = 0; j < x.n; j++) windows[x.sentence[j]]++;
  }
  size_t B = batch ? batch : 32;
  idx = malloc(B * sizeof *idx);
  z = malloc((size_t)K * sizeof *z);
  if (!idx || !z) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  int last = c->L;
  for (size_t s = 0; s < x.n; s += B) {
    size_t nb = x.n - s < B ? x.n - s : B;
    for (size_t i = 0; i < nb; i++) idx[i] = s + i;
    if ((st = bc_examples_batch(err, &bb, &x, idx, nb, pad_id, pad_type)) != BERTCL_OK) goto done;
    size_t rows = (size_t)bb.B * (size_t)bb.T;
    if (rows > c->scratch_rows) {
      float *p = realloc(c->scratch, rows * (size_t)C * sizeof *p);
      if (!p) {
        st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for %zu x %d hidden states", rows, C);
        goto done;
      }
      c->scratch = p;
      c->scratch_rows = rows;
    }
    st = bc_encoder_forward(c->enc, bb.ids, bb.types, bb.mask, bb.B, bb.T, &last, 1);
    if (st == BERTCL_OK) st = bc_encoder_read_hidden(c->enc, 0, c->scratch);
    if (st != BERTCL_OK) {
      *err = c->ctx->err;
      goto done;
    }
    for (size_t i = 0; i < nb; i++) {
      size_t j = s + i, base = d->start[x.sentence[j]];
      for (size_t t = 0; t < x.start[j + 1] - x.start[j]; t++) {
        int32_t w = x.tok_word[x.start[j] + t];
        if (w < 0) continue;
        bc_cls_head_row(c, c->scratch + (i * (size_t)bb.T + t) * (size_t)C, z);
        int best = 0;
        for (int k = 1; k < K; k++)
          if (z[k] > z[best]) best = k;
        bc_softmax(z, K);
        tags[base + (size_t)w] = best;
        probs[base + (size_t)w] = (float)z[best];
      }
    }
  }
done:
  free(idx), free(z);
  bc_batch_buf_free(&bb);
  bc_examples_free(&x);
  return st;
}

/* ---- words of a text ---------------------------------------------------------------------- */

/* The words of text as the tokenizer pre-tokenizes it: their UTF-8 (of the decoded text:
 * invalid bytes became U+FFFD) and their [start, end) in characters. */
typedef struct {
  size_t n;
  char **words;
  int32_t *offsets; /* (n, 2) */
} text_words;

static void text_words_free(text_words *t) {
  for (size_t i = 0; i < t->n; i++) free(t->words[i]);
  free(t->words), free(t->offsets);
  memset(t, 0, sizeof *t);
}

static int split_text(bc_err *err, const bertcl_tokenizer *tok, const char *text, size_t len,
                      text_words *out) {
  memset(out, 0, sizeof *out);
  bertcl_tokenize_options o = {.no_special_tokens = 1, .truncation = BERTCL_TRUNC_NONE};
  bertcl_encoding *enc = NULL;
  uint32_t *cps = NULL;
  int st = bertcl_tokenizer_encode(tok, text, len, NULL, 0, &o, &enc);
  if (st != BERTCL_OK) return bc_fail(err, st, "tokenize: %s", bertcl_last_error(NULL));
  int32_t nwords = 0;
  for (size_t i = 0; i < enc->n; i++)
    if (enc->word_ids[i] + 1 > nwords) nwords = enc->word_ids[i] + 1;
  out->words = calloc((size_t)(nwords ? nwords : 1), sizeof *out->words);
  out->offsets = malloc((size_t)(nwords ? nwords : 1) * 2 * sizeof *out->offsets);
  cps = malloc((len ? len : 1) * sizeof *cps);
  if (!out->words || !out->offsets || !cps) goto oom;
  for (int32_t w = 0; w < nwords; w++)
    out->offsets[2 * w] = INT32_MAX, out->offsets[2 * w + 1] = -1;
  for (size_t i = 0; i < enc->n; i++) {
    int32_t w = enc->word_ids[i];
    if (w < 0) continue;
    if (enc->offsets[2 * i] < out->offsets[2 * w]) out->offsets[2 * w] = enc->offsets[2 * i];
    if (enc->offsets[2 * i + 1] > out->offsets[2 * w + 1])
      out->offsets[2 * w + 1] = enc->offsets[2 * i + 1];
  }
  size_t replaced = 0, ncp = bc_tok_utf8_decode(text, len, cps, &replaced);
  out->n = 0;
  for (int32_t w = 0; w < nwords; w++) {
    int32_t a = out->offsets[2 * w], b = out->offsets[2 * w + 1];
    if (a < 0 || b <= a || (size_t)b > ncp) continue; /* no characters: not a word */
    char *s = malloc(4 * (size_t)(b - a) + 1), *q = s;
    if (!s) goto oom;
    for (int32_t k = a; k < b; k++) q += bc_tok_utf8_put(cps[k], q);
    *q = 0;
    out->words[out->n] = s;
    out->offsets[2 * out->n] = a, out->offsets[2 * out->n + 1] = b;
    out->n++;
  }
  free(cps);
  bertcl_encoding_free(enc);
  return BERTCL_OK;
oom:
  free(cps);
  bertcl_encoding_free(enc);
  text_words_free(out);
  return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory splitting %zu bytes into words", len);
}

/* ---- the public taggers ------------------------------------------------------------------- */

void bertcl_tagging_free(bertcl_tagging *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) free(t->words[i]);
  free(t->words), free(t->offsets), free(t->tags), free(t->probs);
  free(t);
}

/* Tags n words (taken over into the result) of one sentence. */
static int tag_one(bertcl_classifier *c, const bertcl_tokenizer *tok, char **words,
                   const int32_t *offsets, size_t n, size_t max_length, bertcl_tagging **out) {
  bertcl_tagging *t = calloc(1, sizeof *t);
  bc_word_data d;
  memset(&d, 0, sizeof d);
  size_t start[2] = {0, n}, line = 1;
  size_t *lines = malloc((n ? n : 1) * sizeof *lines);
  int st = BERTCL_OK;
  if (!t || !lines) {
    free(t), free(lines);
    for (size_t i = 0; i < n; i++) free(words[i]);
    return bc_fail(&c->err, BERTCL_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) lines[i] = line;
  t->n = n;
  t->words = words;
  t->tags = malloc((n ? n : 1) * sizeof *t->tags);
  t->probs = malloc((n ? n : 1) * sizeof *t->probs);
  t->offsets = malloc((n ? n : 1) * 2 * sizeof *t->offsets);
  if (!t->tags || !t->probs || !t->offsets) {
    st = bc_fail(&c->err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < 2 * n; i++) t->offsets[i] = offsets ? offsets[i] : -1;
  if (n) {
    d.n = 1;
    d.start = start;
    d.words = words;
    d.line = lines;
    st = bc_tag_sentences(c, tok, &d, max_length, 32, t->tags, t->probs, &t->windows);
  }
done:
  free(lines);
  if (st != BERTCL_OK) {
    bertcl_tagging_free(t);
    return st;
  }
  *out = t;
  return BERTCL_OK;
}

static int check_tagger(bertcl_classifier *c, const bertcl_tokenizer *tok, bertcl_tagging **out,
                        const char *fn) {
  if (!c) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "%s: NULL classifier", fn);
  if (!tok || !out) return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG, "%s: NULL argument", fn);
  *out = NULL;
  if (c->task != BERTCL_TASK_TOKEN_CLASSIFICATION)
    return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG,
                   "%s: a sequence classifier classifies texts (bertcl_classify)", fn);
  return BERTCL_OK;
}

int bertcl_tag_text(bertcl_classifier *c, const bertcl_tokenizer *tok, const char *text,
                    size_t text_len, size_t max_length, bertcl_tagging **out) {
  int st = check_tagger(c, tok, out, "bertcl_tag_text");
  if (st != BERTCL_OK) return st;
  if (!text && text_len) return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG, "text is NULL");
  text_words tw;
  if ((st = split_text(&c->err, tok, text ? text : "", text_len, &tw)) != BERTCL_OK) return st;
  st = tag_one(c, tok, tw.words, tw.offsets, tw.n, max_length, out);
  free(tw.offsets);
  return st;
}

int bertcl_tag_words(bertcl_classifier *c, const bertcl_tokenizer *tok,
                     const char *const *words, size_t n, size_t max_length,
                     bertcl_tagging **out) {
  int st = check_tagger(c, tok, out, "bertcl_tag_words");
  if (st != BERTCL_OK) return st;
  if (!words && n) return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG, "words is NULL");
  char **copy = calloc(n ? n : 1, sizeof *copy);
  if (!copy) return bc_fail(&c->err, BERTCL_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (!words[i] || !words[i][0] || !(copy[i] = bc_strdup(words[i]))) {
      for (size_t k = 0; k < i; k++) free(copy[k]);
      free(copy);
      return bc_fail(&c->err, words[i] && words[i][0] ? BERTCL_ERR_NOMEM : BERTCL_ERR_INVALID_ARG,
                     "bertcl_tag_words: word %zu is %s", i,
                     !words[i] ? "NULL" : !words[i][0] ? "empty" : "too long for memory");
    }
  }
  return tag_one(c, tok, copy, NULL, n, max_length, out);
}

/* ---- bertcl_predict for token classifiers ------------------------------------------------- */

/* s as a JSON string; invalid UTF-8 (a CoNLL word may be Latin-1) as U+FFFD each, as the
 * tokenizer read it. */
static json_t *json_text(const char *s) {
  size_t len = strlen(s);
  if (!s[bc_utf8_valid_prefix((const unsigned char *)s, len)]) return json_string(s);
  uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
  char *u = malloc(4 * len + 1);
  json_t *j = NULL;
  if (cps && u) {
    size_t replaced = 0, n = bc_tok_utf8_decode(s, len, cps, &replaced);
    char *q = u;
    for (size_t i = 0; i < n; i++) q += bc_tok_utf8_put(cps[i], q);
    *q = 0;
    j = json_string(u);
  }
  free(cps), free(u);
  return j ? j : json_string("");
}

/* One sentence as a JSON line: words with tag, probability (and character offsets), and the
 * entities the tags make (when the labels have a scheme). text_of_entity: the entity's text. */
static char *sentence_json(const bertcl_classifier *c, char **words, const int32_t *offsets,
                           const int32_t *tags, const float *probs, size_t n) {
  json_t *o = json_object(), *ws = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *w = json_object();
    json_object_set_new(w, "word", json_text(words[i]));
    json_object_set_new(w, "tag", json_string(c->names[tags[i]]));
    json_object_set_new(w, "probability", json_real(probs[i]));
    if (offsets) {
      json_object_set_new(w, "start", json_integer(offsets[2 * i]));
      json_object_set_new(w, "end", json_integer(offsets[2 * i + 1]));
    }
    json_array_append_new(ws, w);
  }
  json_object_set_new(o, "words", ws);
  if (c->has_entities) {
    const char **names = malloc((n ? n : 1) * sizeof *names);
    bc_entity *ents = NULL;
    size_t count = 0, cap = 0;
    char **types = NULL;
    int ntypes = 0;
    json_t *es = json_array();
    if (names) {
      for (size_t i = 0; i < n; i++) names[i] = c->names[tags[i]];
      if (bc_entities(names, n, &ents, &count, &cap, &types, &ntypes) == BERTCL_OK)
        for (size_t e = 0; e < count; e++) {
          size_t len = 0;
          for (size_t i = ents[e].start; i <= ents[e].end; i++) len += strlen(words[i]) + 1;
          char *text = malloc(len + 1), *q = text;
          if (!text) break;
          for (size_t i = ents[e].start; i <= ents[e].end; i++) {
            if (i > ents[e].start) *q++ = ' '; /* words joined by one space */
            size_t l = strlen(words[i]);
            memcpy(q, words[i], l);
            q += l;
          }
          *q = 0;
          json_t *ej = json_pack("{s:s,s:I,s:I}", "type", types[ents[e].type], "start",
                                 (json_int_t)ents[e].start, "end", (json_int_t)ents[e].end + 1);
          json_object_set_new(ej, "text", json_text(text));
          json_array_append_new(es, ej);
          free(text);
        }
    }
    for (int t = 0; t < ntypes; t++) free(types[t]);
    free(types), free(ents), free(names);
    json_object_set_new(o, "entities", es);
  }
  char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(o);
  return js;
}

/* CoNLL out: each input line with the predicted tag appended, blank lines between sentences,
 * the -DOCSTART- lines kept (with the tag O): what conlleval reads. */
static int write_conll(bertcl_classifier *c, const bc_word_data *d, const int32_t *tags,
                       bc_sink *out) {
  bc_err *err = &c->err;
  int st = BERTCL_OK;
  size_t cap = 0;
  char *buf = NULL;
  for (size_t s = 0; s < d->n && st == BERTCL_OK; s++) {
    for (size_t k = 0; k < d->docs[s] && st == BERTCL_OK; k++) {
      const char *doc = d->doc_line ? d->doc_line : "-DOCSTART- -X- -X- O";
      size_t need = strlen(doc) + 4;
      if (need > cap) {
        char *nb = realloc(buf, need);
        if (!nb) return free(buf), bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        buf = nb, cap = need;
      }
      snprintf(buf, cap, "%s O", doc);
      st = bc_sink_line(err, out, buf);
      if (st == BERTCL_OK) st = bc_sink_line(err, out, "");
    }
    for (size_t w = d->start[s]; w < d->start[s + 1] && st == BERTCL_OK; w++) {
      const char *line = d->raw ? d->raw[w] : d->words[w], *tag = c->names[tags[w]];
      size_t need = strlen(line) + strlen(tag) + 2;
      if (need > cap) {
        char *nb = realloc(buf, need);
        if (!nb) return free(buf), bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
        buf = nb, cap = need;
      }
      snprintf(buf, cap, "%s %s", line, tag);
      st = bc_sink_line(err, out, buf);
    }
    if (st == BERTCL_OK) st = bc_sink_line(err, out, "");
  }
  free(buf);
  return st;
}

int bc_predict_tokens(bertcl_classifier *c, const bertcl_tokenizer *tok,
                      const bertcl_predict_options *opt, bc_sink *out) {
  bc_err *err = &c->ctx->err;
  char *data = NULL;
  size_t len = 0;
  bc_word_data d;
  memset(&d, 0, sizeof d);
  text_words *tw = NULL; /* text input: each line's words and offsets */
  size_t tw_n = 0;
  int32_t *tags = NULL;
  float *probs = NULL;
  int st = bc_read_file(err, opt->input_file, &data, &len);
  if (st != BERTCL_OK) return st;
  const char *wkey = opt->text_column ? opt->text_column : "tokens";
  /* the input: CoNLL columns, JSONL word lists, or texts (lines, or JSONL "text" fields) */
  enum { IN_CONLL, IN_WORDS, IN_TEXT_LINES, IN_TEXTS } in;
  int words_jsonl = bc_looks_like_word_jsonl(data, len, wkey);
  if (opt->format == BERTCL_INPUT_CONLL) in = IN_CONLL;
  else if (opt->format == BERTCL_INPUT_TEXT) in = IN_TEXT_LINES;
  else if (opt->format == BERTCL_INPUT_JSONL) in = words_jsonl ? IN_WORDS : IN_TEXTS;
  else
    in = words_jsonl                                      ? IN_WORDS
         : bc_looks_like_conll(opt->input_file, data, len) ? IN_CONLL
                                                            : IN_TEXTS;
  bc_word_columns cols = {-1, wkey, NULL};
  if (in == IN_CONLL) {
    st = bc_conll_parse(err, opt->input_file, data, len, &cols, 0, &d);
  } else if (in == IN_WORDS) {
    st = bc_words_jsonl_parse(err, opt->input_file, data, len, &cols, 0, &d);
  } else { /* texts: words as the tokenizer splits them */
    bc_text_data td;
    bc_text_columns tc = {opt->text_column, NULL, NULL};
    st = bc_text_data_parse(err, opt->input_file, data, len, &tc,
                            in == IN_TEXT_LINES ? BC_DATA_FORCE_PLAIN : BC_DATA_PLAIN_OK, &td);
    if (st == BERTCL_OK) {
      size_t total = 0, done_n = 0;
      tw = calloc(td.n ? td.n : 1, sizeof *tw);
      d.start = calloc(td.n + 1, sizeof *d.start);
      d.docs = calloc(td.n ? td.n : 1, sizeof *d.docs);
      if (!tw || !d.start || !d.docs) st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      for (size_t i = 0; i < td.n && st == BERTCL_OK; i++, done_n++) {
        st = split_text(err, tok, td.text[i], strlen(td.text[i]), &tw[i]);
        total += st == BERTCL_OK ? tw[i].n : 0;
      }
      if (st == BERTCL_OK) {
        d.words = malloc((total ? total : 1) * sizeof *d.words);
        d.line = malloc((total ? total : 1) * sizeof *d.line);
        if (!d.words || !d.line) st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      }
      if (st == BERTCL_OK) { /* the words move into d */
        for (size_t i = 0; i < td.n; i++) {
          for (size_t k = 0; k < tw[i].n; k++) {
            d.words[d.start[i] + k] = tw[i].words[k];
            d.line[d.start[i] + k] = td.line[i];
          }
          d.start[i + 1] = d.start[i] + tw[i].n;
          free(tw[i].words);
          tw[i].words = NULL;
          tw[i].n = 0;
        }
        d.n = td.n;
      }
      for (size_t i = 0; i < done_n && tw && st != BERTCL_OK; i++) {
        free(tw[i].offsets); /* keep the array's size for the cleanup below */
        tw[i].offsets = NULL;
        for (size_t k = 0; k < tw[i].n; k++) free(tw[i].words[k]);
        free(tw[i].words);
        tw[i].words = NULL;
      }
      tw_n = td.n;
      bc_text_data_free(&td);
    }
  }
  free(data);
  if (st != BERTCL_OK) goto done;
  size_t nw = d.start[d.n];
  tags = malloc((nw ? nw : 1) * sizeof *tags);
  probs = malloc((nw ? nw : 1) * sizeof *probs);
  if (!tags || !probs) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for %zu words", nw);
    goto done;
  }
  st = bc_tag_sentences(c, tok, &d, opt->max_length, opt->batch_size, tags, probs, NULL);
  if (st != BERTCL_OK) {
    *err = c->err;
    goto done;
  }
  if (in == IN_CONLL) {
    st = write_conll(c, &d, tags, out);
    if (st != BERTCL_OK) *err = c->err;
    goto done;
  }
  for (size_t s = 0; s < d.n && st == BERTCL_OK; s++) {
    size_t a = d.start[s], n = d.start[s + 1] - a;
    char *js = sentence_json(c, d.words + a, tw ? tw[s].offsets : NULL, tags + a, probs + a, n);
    st = js ? bc_sink_line(err, out, js) : bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    free(js);
  }
done:
  for (size_t i = 0; tw && i < tw_n; i++) free(tw[i].offsets);
  free(tw);
  bc_word_data_free(&d);
  free(tags), free(probs);
  return st;
}
