/* Encoding: added tokens, pre-tokenisation, WordPiece, truncation, template, batches.
 *
 * Truncation follows tokenizers' truncate_encodings (utils/truncation.rs) as transformers
 * drives it: the budget for the texts is max_length minus the template's special tokens; a
 * budget of 0 empties both texts whatever the strategy; when max_length is below the number of
 * special tokens the Rust subtraction wraps and nothing is truncated (we do the same, so the
 * output stays identical).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

typedef struct {
  int32_t id;
  uint32_t start, end; /* characters of the original text */
  int32_t word;
} tok_t;

typedef struct {
  tok_t *v;
  size_t n, cap;
} tokvec;

/* Scratch space reused across the texts of a batch. */
typedef struct {
  uint32_t *cps;
  size_t cps_cap;
  bc_tok_nbuf nb;
  char *bytes;
  uint32_t *bpos;
  size_t word_cap;
  tokvec seq[2];
  size_t replaced[2];
} workspace;

static void ws_free(workspace *ws) {
  free(ws->cps);
  free(ws->nb.v);
  free(ws->nb.tmp);
  free(ws->bytes);
  free(ws->bpos);
  free(ws->seq[0].v);
  free(ws->seq[1].v);
  memset(ws, 0, sizeof *ws);
}

static int push(tokvec *t, int32_t id, uint32_t start, uint32_t end, int32_t word) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    tok_t *v = realloc(t->v, cap * sizeof *v);
    if (!v) return BERTCL_ERR_NOMEM;
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = (tok_t){id, start, end, word};
  return BERTCL_OK;
}

/* 1 = whitespace, 2 = punctuation, 0 = part of a word. */
static const uint8_t ascii_pt[128] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1,  ['!'] = 2, ['"'] = 2,
    ['#'] = 2,  ['$'] = 2,  ['%'] = 2,  ['&'] = 2,  ['\''] = 2, ['('] = 2,  [')'] = 2, ['*'] = 2,
    ['+'] = 2,  [','] = 2,  ['-'] = 2,  ['.'] = 2,  ['/'] = 2,  [':'] = 2,  [';'] = 2, ['<'] = 2,
    ['='] = 2,  ['>'] = 2,  ['?'] = 2,  ['@'] = 2,  ['['] = 2,  ['\\'] = 2, [']'] = 2, ['^'] = 2,
    ['_'] = 2,  ['`'] = 2,  ['{'] = 2,  ['|'] = 2,  ['}'] = 2,  ['~'] = 2};

static inline int pt_class(uint32_t cp) {
  if (cp < 128) return ascii_pt[cp];
  if (bc_tok_is_space(cp)) return 1;
  return bc_tok_is_punct(cp) ? 2 : 0;
}

/* WordPiece over the normalized characters w[0..n): greedy longest match. */
static int wordpiece(const bertcl_tokenizer *tok, workspace *ws, const bc_tok_nchar *w, size_t n,
                     int32_t word, tokvec *out) {
  uint32_t lo = w[0].orig, hi = w[0].orig;
  for (size_t i = 1; i < n; i++) {
    if (w[i].orig < lo) lo = w[i].orig;
    if (w[i].orig > hi) hi = w[i].orig;
  }
  if (n > tok->max_chars_per_word) return push(out, tok->unk_id, lo, hi + 1, word);
  if (n + 1 > ws->word_cap) {
    size_t cap = ws->word_cap ? ws->word_cap : 64;
    while (cap < n + 1) cap *= 2;
    char *b = realloc(ws->bytes, cap * 4);
    if (!b) return BERTCL_ERR_NOMEM;
    ws->bytes = b;
    uint32_t *p = realloc(ws->bpos, cap * sizeof *p);
    if (!p) return BERTCL_ERR_NOMEM;
    ws->bpos = p;
    ws->word_cap = cap;
  }
  char *bytes = ws->bytes;
  uint32_t *bpos = ws->bpos;
  uint32_t nb = 0;
  for (size_t i = 0; i < n; i++) {
    bpos[i] = nb;
    uint32_t cp = w[i].cp;
    if (cp < 0x80)
      bytes[nb++] = (char)cp;
    else
      nb += (uint32_t)bc_tok_utf8_put(cp, bytes + nb);
  }
  bpos[n] = nb;
  size_t first = out->n, start = 0;
  while (start < n) {
    const bc_tok_map *m = start == 0 ? &tok->vocab : &tok->cont;
    size_t end = n;
    /* a piece longer than the longest vocabulary entry cannot match: skip those ends */
    while (end > start && bpos[end] - bpos[start] > m->max_key) end--;
    int32_t id = -1;
    for (; end > start; end--) {
      id = bc_tok_map_get(tok, m, bytes + bpos[start], bpos[end] - bpos[start]);
      if (id >= 0) break;
    }
    if (id < 0) {
      out->n = first;
      return push(out, tok->unk_id, lo, hi + 1, word);
    }
    uint32_t s = w[start].orig, e = w[start].orig;
    for (size_t i = start + 1; i < end; i++) {
      if (w[i].orig < s) s = w[i].orig;
      if (w[i].orig > e) e = w[i].orig;
    }
    int st = push(out, id, s, e + 1, word);
    if (st) return st;
    start = end;
  }
  return BERTCL_OK;
}

/* Normalizes, pre-tokenizes and WordPiece-encodes cps[0..n) (original index base). */
static int encode_piece(const bertcl_tokenizer *tok, workspace *ws, const uint32_t *cps, size_t n,
                        uint32_t base, int32_t *word, tokvec *out) {
  ws->nb.n = 0;
  int st = bc_tok_normalize(tok, cps, n, base, &ws->nb);
  if (st) return st;
  const bc_tok_nchar *v = ws->nb.v;
  size_t m = ws->nb.n, i = 0;
  while (i < m) {
    int c = pt_class(v[i].cp);
    if (c == 1) {
      i++;
      continue;
    }
    size_t j = i + 1;
    if (c == 0)
      while (j < m && pt_class(v[j].cp) == 0) j++;
    st = wordpiece(tok, ws, v + i, j - i, *word, out);
    if (st) return st;
    (*word)++;
    i = j;
  }
  return BERTCL_OK;
}

/* Length of the longest added token matching at cps[i..n), 0 if none; *id its id. */
static size_t match_added(const bertcl_tokenizer *tok, const uint32_t *cps, size_t i, size_t n,
                          int split_special, int32_t *id) {
  size_t best = 0;
  for (size_t k = 0; k < tok->n_added; k++) {
    const bc_tok_added *a = &tok->added[k];
    if (a->len <= best || a->len > n - i || a->cps[0] != cps[i]) continue;
    if (split_special && a->special) continue;
    if (memcmp(a->cps, cps + i, a->len * sizeof *cps) == 0) {
      best = a->len;
      *id = a->id;
    }
  }
  return best;
}

/* Encodes one text into ws->seq[which]. */
static int encode_text(const bertcl_tokenizer *tok, workspace *ws, const char *text, size_t len,
                       int split_special, int which) {
  tokvec *out = &ws->seq[which];
  out->n = 0;
  /* offsets are int32 and NFD_ADDED uses bit 31 of a character index */
  if (len > BC_TOK_MAX_TEXT) return BERTCL_ERR_OVERFLOW;
  if (len + 1 > ws->cps_cap) {
    size_t cap = ws->cps_cap ? ws->cps_cap : 256;
    while (cap < len + 1) {
      if (cap > SIZE_MAX / 8) return BERTCL_ERR_OVERFLOW;
      cap *= 2;
    }
    uint32_t *c = realloc(ws->cps, cap * sizeof *c);
    if (!c) return BERTCL_ERR_NOMEM;
    ws->cps = c;
    ws->cps_cap = cap;
  }
  size_t n = bc_tok_utf8_decode(text, len, ws->cps, &ws->replaced[which]);
  const uint32_t *cps = ws->cps;
  int32_t word = 0;
  size_t s = 0;
  int st;
  if (tok->n_added) {
    for (size_t i = 0; i < n;) {
      uint32_t c = cps[i];
      int32_t id = -1;
      size_t ml = 0;
      if (c < 128 ? tok->added_first_ascii[c] : tok->added_non_ascii_first)
        ml = match_added(tok, cps, i, n, split_special, &id);
      if (!ml) {
        i++;
        continue;
      }
      if (i > s && (st = encode_piece(tok, ws, cps + s, i - s, (uint32_t)s, &word, out))) return st;
      if ((st = push(out, id, (uint32_t)i, (uint32_t)(i + ml), word++))) return st;
      i += ml;
      s = i;
    }
  }
  if (n > s && (st = encode_piece(tok, ws, cps + s, n - s, (uint32_t)s, &word, out))) return st;
  return BERTCL_OK;
}

/* Truncation as tokenizers does it; sets the overflow counts. */
static int truncate(const bertcl_tokenizer *tok, workspace *ws, int is_pair,
                    const bertcl_tokenize_options *o, size_t overflow[2]) {
  size_t n1 = ws->seq[0].n, n2 = is_pair ? ws->seq[1].n : 0;
  overflow[0] = overflow[1] = 0;
  size_t max_length = o->max_length ? o->max_length : tok->max_length;
  if (o->truncation == BERTCL_TRUNC_NONE || max_length == SIZE_MAX) return BERTCL_OK;
  size_t added = o->no_special_tokens ? 0 : (is_pair ? tok->pair.n_special : tok->single.n_special);
  if (max_length < added) return BERTCL_OK; /* usize wrap in tokenizers: no truncation */
  size_t eff = max_length - added, k1 = n1, k2 = n2;
  if (eff == 0) {
    k1 = k2 = 0;
  } else if (n1 + n2 > eff) {
    size_t to_remove = n1 + n2 - eff;
    if (o->truncation == BERTCL_TRUNC_LONGEST_FIRST) {
      if (is_pair) {
        size_t a = n1, b = n2;
        int swap = 0;
        if (a > b) {
          swap = 1;
          a = n2;
          b = n1;
        }
        if (a > eff)
          b = a;
        else
          b = a > eff - a ? a : eff - a;
        if (a + b > eff) {
          a = eff / 2;
          b = a + eff % 2;
        }
        if (swap) {
          size_t t = a;
          a = b;
          b = t;
        }
        k1 = a < n1 ? a : n1;
        k2 = b < n2 ? b : n2;
      } else {
        k1 = n1 - to_remove;
      }
    } else if (o->truncation == BERTCL_TRUNC_ONLY_FIRST ||
               o->truncation == BERTCL_TRUNC_ONLY_SECOND) {
      int second = o->truncation == BERTCL_TRUNC_ONLY_SECOND;
      if (second && !is_pair)
        return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                       "truncation only_second needs a pair of texts (max_length %zu, %zu tokens)",
                       max_length, n1 + added);
      size_t len = second ? n2 : n1;
      if (len <= to_remove)
        return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                       "truncation %s: the %s text (%zu tokens) is too short to remove %zu tokens "
                       "for max_length %zu",
                       second ? "only_second" : "only_first", second ? "second" : "first", len,
                       to_remove, max_length);
      if (second)
        k2 = n2 - to_remove;
      else
        k1 = n1 - to_remove;
    } else {
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "unknown truncation strategy %d",
                     (int)o->truncation);
    }
  }
  overflow[0] = n1 - k1;
  overflow[1] = n2 - k2;
  ws->seq[0].n = k1;
  if (is_pair) ws->seq[1].n = k2;
  return BERTCL_OK;
}

/* Encodes one text or pair into ws (tokens truncated); fills *total with the templated count. */
static int encode_one(const bertcl_tokenizer *tok, workspace *ws, const char *text, size_t len,
                      const char *pair, size_t pair_len, const bertcl_tokenize_options *o,
                      size_t overflow[2], size_t *total) {
  int st = encode_text(tok, ws, text, len, o->split_special_tokens, 0);
  if (!st && pair) st = encode_text(tok, ws, pair, pair_len, o->split_special_tokens, 1);
  if (st) {
    if (st == BERTCL_ERR_OVERFLOW)
      bc_fail(NULL, st, "text of %zu bytes is over the tokenizer's limit of %d bytes",
              len > pair_len ? len : pair_len, BC_TOK_MAX_TEXT);
    else
      bc_fail(NULL, st, "out of memory tokenizing a text of %zu bytes", len + pair_len);
    return st;
  }
  if (!pair) {
    ws->seq[1].n = 0;
    ws->replaced[1] = 0;
  }
  st = truncate(tok, ws, pair != NULL, o, overflow);
  if (st) return st;
  size_t n = ws->seq[0].n + ws->seq[1].n;
  if (!o->no_special_tokens) n += pair ? tok->pair.n_special : tok->single.n_special;
  *total = n;
  return BERTCL_OK;
}

/* Writes the templated sequence into arrays (any of them NULL to skip). */
static void emit(const bertcl_tokenizer *tok, const workspace *ws, int is_pair,
                 const bertcl_tokenize_options *o, int32_t *ids, int32_t *type_ids,
                 int32_t *word_ids, int32_t *seq_ids, int32_t *offsets, const char **tokens) {
  static const bc_tpl_item plain[2] = {{BC_TPL_SEQ_A, 0, NULL, 0}, {BC_TPL_SEQ_B, 1, NULL, 0}};
  const bc_tpl *t = is_pair ? &tok->pair : &tok->single;
  const bc_tpl_item *items = t->items;
  size_t nitems = t->n;
  if (o->no_special_tokens) {
    items = plain;
    nitems = is_pair ? 2 : 1;
  }
  size_t k = 0;
  for (size_t i = 0; i < nitems; i++) {
    const bc_tpl_item *it = &items[i];
    if (it->kind == BC_TPL_SPECIAL) {
      for (size_t j = 0; j < it->nids; j++, k++) {
        if (ids) ids[k] = it->ids[j];
        if (type_ids) type_ids[k] = it->type_id;
        if (word_ids) word_ids[k] = -1;
        if (seq_ids) seq_ids[k] = -1;
        if (offsets) offsets[2 * k] = offsets[2 * k + 1] = 0;
        if (tokens) tokens[k] = tok->id_tok[it->ids[j]];
      }
      continue;
    }
    int which = it->kind == BC_TPL_SEQ_B ? 1 : 0;
    if (which && !is_pair) continue;
    const tokvec *s = &ws->seq[which];
    for (size_t j = 0; j < s->n; j++, k++) {
      const tok_t *x = &s->v[j];
      if (ids) ids[k] = x->id;
      if (type_ids) type_ids[k] = it->type_id;
      if (word_ids) word_ids[k] = x->word;
      if (seq_ids) seq_ids[k] = which;
      if (offsets) {
        offsets[2 * k] = (int32_t)x->start;
        offsets[2 * k + 1] = (int32_t)x->end;
      }
      if (tokens) tokens[k] = tok->id_tok[x->id];
    }
  }
}

static const bertcl_tokenize_options default_options = {0, BERTCL_TRUNC_LONGEST_FIRST, 0, 0, 0};

int bertcl_tokenizer_encode(const bertcl_tokenizer *tok, const char *text, size_t text_len,
                            const char *pair, size_t pair_len, const bertcl_tokenize_options *opt,
                            bertcl_encoding **out) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  if (!tok || !text) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "tokenizer or text is NULL");
  const bertcl_tokenize_options *o = opt ? opt : &default_options;
  if (pair && pair_len == 0) pair = NULL; /* transformers: an empty text_pair is no pair */
  workspace ws;
  memset(&ws, 0, sizeof ws);
  size_t overflow[2], n = 0;
  int st = encode_one(tok, &ws, text, text_len, pair, pair_len, o, overflow, &n);
  if (st) {
    ws_free(&ws);
    return st;
  }
  /* one block: the struct, then 6 int32 arrays (offsets counts twice), then token pointers */
  size_t bytes = sizeof(bertcl_encoding) + n * (6 * sizeof(int32_t) + sizeof(char *)) + 16;
  bertcl_encoding *e = calloc(1, bytes);
  if (!e) {
    ws_free(&ws);
    return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory for %zu tokens", n);
  }
  char *p = (char *)(e + 1);
  e->tokens = (const char **)(void *)p;
  p += n * sizeof(char *);
  e->ids = (int32_t *)(void *)p;
  e->type_ids = e->ids + n;
  e->word_ids = e->type_ids + n;
  e->seq_ids = e->word_ids + n;
  e->offsets = e->seq_ids + n;
  e->n = n;
  e->overflow[0] = overflow[0];
  e->overflow[1] = overflow[1];
  e->replaced[0] = ws.replaced[0];
  e->replaced[1] = pair ? ws.replaced[1] : 0;
  emit(tok, &ws, pair != NULL, o, e->ids, e->type_ids, e->word_ids, e->seq_ids, e->offsets,
       e->tokens);
  ws_free(&ws);
  *out = e;
  return BERTCL_OK;
}

void bertcl_encoding_free(bertcl_encoding *enc) { free(enc); }

int bertcl_tokenizer_encode_batch(const bertcl_tokenizer *tok, const char *const *texts,
                                  const char *const *pairs, size_t n,
                                  const bertcl_tokenize_options *opt, bertcl_batch **out) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  if (!tok || (!texts && n)) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  const bertcl_tokenize_options *o = opt ? opt : &default_options;
  for (size_t b = 0; b < n; b++)
    if (!texts[b]) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "texts[%zu] is NULL", b);
  workspace ws;
  memset(&ws, 0, sizeof ws);
  int st = BERTCL_OK;
  bertcl_batch *bt = calloc(1, sizeof *bt);
  size_t *lengths = calloc(n ? n : 1, sizeof *lengths);
  if (!bt || !lengths) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory for a batch of %zu", n);
    goto fail;
  }
  bt->batch = n;
  bt->lengths = lengths;
  bt->overflow = calloc(2 * (n ? n : 1), sizeof *bt->overflow);
  bt->replaced = calloc(2 * (n ? n : 1), sizeof *bt->replaced);
  if (!bt->overflow || !bt->replaced) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory for a batch of %zu", n);
    goto fail;
  }
  /* pass 1: encode every row into flat (ids, type_ids, word_ids) triplets */
  size_t T = 0, total = 0, flat_cap = 0;
  int32_t *flat = NULL; /* (total, 3) */
  for (size_t b = 0; b < n; b++) {
    const char *pr = pairs && pairs[b] && pairs[b][0] ? pairs[b] : NULL;
    st = encode_one(tok, &ws, texts[b], strlen(texts[b]), pr, pr ? strlen(pr) : 0, o,
                    bt->overflow + 2 * b, &lengths[b]);
    if (st) goto fail_flat;
    bt->replaced[2 * b] = ws.replaced[0];
    bt->replaced[2 * b + 1] = ws.replaced[1];
    if (lengths[b] > T) T = lengths[b];
    if (total + lengths[b] > flat_cap) {
      size_t cap = flat_cap ? flat_cap : 4096;
      while (cap < total + lengths[b]) cap *= 2;
      int32_t *f = cap > SIZE_MAX / 12 ? NULL : realloc(flat, cap * 3 * sizeof *f);
      if (!f) {
        st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory for a batch of %zu", n);
        goto fail_flat;
      }
      flat = f;
      flat_cap = cap;
    }
    if (!lengths[b]) continue;
    int32_t *ids = flat + 3 * total;
    emit(tok, &ws, pr != NULL, o, ids, ids + lengths[b], ids + 2 * lengths[b], NULL, NULL, NULL);
    total += lengths[b];
  }
  if (o->pad_to_max_length) {
    size_t ml = o->max_length ? o->max_length : tok->max_length;
    if (ml != SIZE_MAX && ml > T) T = ml;
  }
  size_t cells;
  if (bc_mul_size(n, T ? T : 1, &cells) || cells > SIZE_MAX / 16) {
    st = bc_fail(NULL, BERTCL_ERR_OVERFLOW, "batch %zu x %zu too large", n, T);
    goto fail_flat;
  }
  bt->seq = T;
  bt->ids = malloc(cells * sizeof(int32_t));
  bt->mask = malloc(cells * sizeof(int32_t));
  bt->type_ids = malloc(cells * sizeof(int32_t));
  bt->word_ids = malloc(cells * sizeof(int32_t));
  if (!bt->ids || !bt->mask || !bt->type_ids || !bt->word_ids) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory for a batch of %zu x %zu", n, T);
    goto fail_flat;
  }
  /* pass 2: copy into the padded (B, T) arrays */
  const int32_t *src = flat;
  for (size_t b = 0; b < n; b++) {
    size_t len = lengths[b];
    int32_t *ids = bt->ids + b * T, *ty = bt->type_ids + b * T, *wd = bt->word_ids + b * T;
    int32_t *mk = bt->mask + b * T;
    if (len) {
      memcpy(ids, src, len * sizeof *ids);
      memcpy(ty, src + len, len * sizeof *ty);
      memcpy(wd, src + 2 * len, len * sizeof *wd);
    }
    if (len) src += 3 * len;
    for (size_t t = 0; t < len; t++) mk[t] = 1;
    for (size_t t = len; t < T; t++) {
      ids[t] = tok->pad_id;
      ty[t] = tok->pad_type_id;
      wd[t] = -1;
      mk[t] = 0;
    }
  }
  free(flat);
  ws_free(&ws);
  *out = bt;
  return BERTCL_OK;
fail_flat:
  free(flat);
fail:
  ws_free(&ws);
  bertcl_batch_free(bt);
  return st;
}

void bertcl_batch_free(bertcl_batch *batch) {
  if (!batch) return;
  free(batch->ids);
  free(batch->mask);
  free(batch->type_ids);
  free(batch->word_ids);
  free(batch->lengths);
  free(batch->overflow);
  free(batch->replaced);
  free(batch);
}
