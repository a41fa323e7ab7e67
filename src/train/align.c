/* Label alignment and windows. See align.h. */
#include "train/align.h"

#include "train/data.h"

#include <stdlib.h>
#include <string.h>

void bc_b_to_i(const bc_labelmap *lm, int32_t *out) {
  for (int k = 0; k < lm->K; k++) {
    out[k] = k;
    const char *nm = lm->names[k];
    if (nm[0] == 'B' && nm[1] == '-') {
      size_t len = strlen(nm);
      char *i_name = malloc(len + 1);
      if (!i_name) continue; /* out of memory: keep the label itself */
      memcpy(i_name, nm, len + 1);
      i_name[0] = 'I';
      int j = bc_labelmap_id(lm, i_name);
      if (j >= 0) out[k] = j;
      free(i_name);
    }
  }
}

/* The template around one text: tokens before it and after it ([CLS] / [SEP] for BERT). */
typedef struct {
  int32_t ids[16], types[16];
  int npre, npost;
  int32_t text_type; /* the token type id of the text's own tokens */
} template_t;

static int find_template(bc_err *err, const bertcl_tokenizer *tok, template_t *t) {
  bertcl_encoding *enc = NULL;
  int st = bertcl_tokenizer_encode(tok, "a", 1, NULL, 0, NULL, &enc);
  if (st != BERTCL_OK) return bc_fail(err, st, "tokenizer: %s", bertcl_last_error(NULL));
  memset(t, 0, sizeof *t);
  size_t first = enc->n, last = 0;
  for (size_t i = 0; i < enc->n; i++)
    if (enc->seq_ids[i] == 0) {
      if (first == enc->n) first = i;
      last = i;
    }
  if (first == enc->n || first + (enc->n - 1 - last) > 16) {
    bertcl_encoding_free(enc);
    return bc_fail(err, BERTCL_ERR_UNSUPPORTED, "the tokenizer's template could not be found");
  }
  t->text_type = enc->type_ids[first];
  for (size_t i = 0; i < first; i++)
    t->ids[t->npre] = enc->ids[i], t->types[t->npre++] = enc->type_ids[i];
  for (size_t i = last + 1; i < enc->n; i++)
    t->ids[t->npre + t->npost] = enc->ids[i], t->types[t->npre + t->npost++] = enc->type_ids[i];
  bertcl_encoding_free(enc);
  return BERTCL_OK;
}

/* The growing output: pooled token arrays and per-window arrays. */
typedef struct {
  size_t cap_tok, cap_win;
} grow_t;

static int reserve(bc_examples *x, grow_t *g, size_t ntok) {
  if (x->n + 1 >= g->cap_win) {
    size_t nc = g->cap_win ? 2 * g->cap_win : 1024;
    int first = !x->start;
    if (bc_grow_arrays(nc + 1, 2, (void *)&x->start, sizeof *x->start, (void *)&x->sentence,
                       sizeof *x->sentence))
      return -1;
    if (first) x->start[0] = 0;
    g->cap_win = nc;
  }
  size_t have = x->start[x->n];
  if (have + ntok > g->cap_tok) {
    size_t nc = g->cap_tok ? g->cap_tok : 4096;
    while (nc < have + ntok) nc *= 2;
    if (bc_grow_arrays(nc, 4, (void *)&x->ids, sizeof *x->ids, (void *)&x->types,
                       sizeof *x->types, (void *)&x->tok_label, sizeof *x->tok_label,
                       (void *)&x->tok_word, sizeof *x->tok_word))
      return -1;
    g->cap_tok = nc;
  }
  return 0;
}

static void push(bc_examples *x, int32_t id, int32_t type, int32_t label, int32_t word) {
  size_t at = x->start[x->n + 1]++;
  x->ids[at] = id;
  x->types[at] = type;
  x->tok_label[at] = label;
  x->tok_word[at] = word;
}

int bc_examples_from_words(bc_err *err, bc_examples *x, const bertcl_tokenizer *tok,
                           const bc_word_data *d, const int32_t *word_labels,
                           const bc_align_options *opt, bc_align_stats *stats) {
  memset(x, 0, sizeof *x);
  memset(stats, 0, sizeof *stats);
  template_t tp;
  int st = find_template(err, tok, &tp);
  if (st != BERTCL_OK) return st;
  if (opt->max_length < (size_t)(tp.npre + tp.npost) + 1 || opt->max_length > INT32_MAX)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "max length %zu leaves no room for a word beside the %d template tokens",
                   opt->max_length, tp.npre + tp.npost);
  size_t cap = opt->max_length - (size_t)(tp.npre + tp.npost); /* subwords per window */
  bertcl_tokenize_options wopt = {.no_special_tokens = 1, .truncation = BERTCL_TRUNC_NONE};
  grow_t g = {0, 0};
  /* per sentence: each word's subwords, pooled */
  size_t wcap = 0, scap = 0;
  size_t *wstart = NULL; /* (words + 1) */
  int32_t *sub = NULL;   /* subword ids of the sentence */
  if (reserve(x, &g, 0)) goto oom;
  for (size_t s = 0; s < d->n; s++) {
    size_t w0 = d->start[s], nw = d->start[s + 1] - w0;
    if (nw + 1 > wcap) {
      size_t nc = nw + 1 > 2 * wcap ? nw + 1 : 2 * wcap;
      size_t *t = realloc(wstart, nc * sizeof *t);
      if (!t) goto oom;
      wstart = t;
      wcap = nc;
    }
    size_t S = 0;
    wstart[0] = 0;
    for (size_t w = 0; w < nw; w++) {
      const char *word = d->words[w0 + w];
      bertcl_encoding *enc = NULL;
      st = bertcl_tokenizer_encode(tok, word, strlen(word), NULL, 0, &wopt, &enc);
      if (st != BERTCL_OK) {
        bc_fail(err, st, "line %zu: word '%.40s': %s", d->line[w0 + w], word,
                bertcl_last_error(NULL));
        goto fail;
      }
      if (S + enc->n > scap) {
        size_t nc = scap ? scap : 256;
        while (nc < S + enc->n) nc *= 2;
        int32_t *t = realloc(sub, nc * sizeof *t);
        if (!t) {
          bertcl_encoding_free(enc);
          goto oom;
        }
        sub = t;
        scap = nc;
      }
      if (enc->n) memcpy(sub + S, enc->ids, enc->n * sizeof *sub);
      S += enc->n;
      wstart[w + 1] = S;
      if (!enc->n) stats->empty_words++;
      bertcl_encoding_free(enc);
    }
    stats->sentences++;
    stats->words += nw;
    stats->tokens += S;
    if (S > stats->longest) stats->longest = S;
    /* windows of whole words: as many as the length needs, balanced */
    size_t nwin = S <= cap ? 1 : (S + cap - 1) / cap;
    size_t target = (S + nwin - 1) / (nwin ? nwin : 1);
    size_t made = 0;
    for (size_t a = 0; a < nw;) {
      size_t b = a, total = 0;
      while (b < nw) {
        size_t len = wstart[b + 1] - wstart[b];
        if (b > a && (total + len > cap || (total + len > target && made + 1 < nwin))) break;
        total += len;
        b++;
      }
      if (total == 0) { /* words the tokenizer makes nothing of: no window */
        a = b;
        continue;
      }
      if (total > cap) stats->cut_words++; /* a single word longer than a window */
      size_t ntok = (total > cap ? cap : total) + (size_t)(tp.npre + tp.npost);
      if (reserve(x, &g, ntok)) goto oom;
      x->start[x->n + 1] = x->start[x->n];
      for (int i = 0; i < tp.npre; i++) push(x, tp.ids[i], tp.types[i], -100, -1);
      size_t room = cap;
      for (size_t w = a; w < b; w++) {
        int32_t y = word_labels ? word_labels[w0 + w] : -100;
        for (size_t k = wstart[w]; k < wstart[w + 1] && room; k++, room--) {
          int first = k == wstart[w];
          int32_t lab = first ? y
                        : opt->label_all_tokens && y >= 0 && opt->b_to_i ? opt->b_to_i[y]
                                                                          : -100;
          push(x, sub[k], tp.text_type, lab, first ? (int32_t)w : -1);
        }
      }
      for (int i = 0; i < tp.npost; i++)
        push(x, tp.ids[tp.npre + i], tp.types[tp.npre + i], -100, -1);
      x->sentence[x->n] = s;
      x->n++;
      made++;
      a = b;
    }
    if (made > 1) stats->split_sentences++;
  }
  stats->windows = x->n;
  free(wstart), free(sub);
  return BERTCL_OK;
oom:
  st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory aligning %zu sentences", d->n);
fail:
  free(wstart), free(sub);
  bc_examples_free(x);
  return st;
}
