/* Encoding: the pipeline of tokenizer.h over one text, truncation, post-processing, batches.
 *
 * Truncation follows tokenizers' truncate_encodings (utils/truncation.rs) as transformers
 * drives it: the budget for the texts is max_length minus the post-processor's special tokens;
 * a budget of 0 empties both texts whatever the strategy; when max_length is below the number
 * of special tokens the Rust subtraction wraps and nothing is truncated (we do the same, so the
 * output stays identical). Post-processing: ByteLevel / RobertaProcessing offset trimming on
 * each text's tokens, then the template (special tokens, type ids).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

typedef bc_tok_token tok_t;
typedef bc_tok_tokvec tokvec;

/* Scratch space reused across the texts of a batch. */
typedef struct {
  uint32_t *cps;
  size_t cps_cap;
  bc_tok_nbuf nb;      /* the normalized piece */
  bc_tok_nscratch ns;  /* normalizers, regexes */
  bc_tok_mscratch ms;  /* models */
  bc_tok_level *levels; /* (n_pres) one per pre-tokenizer step */
  bc_tok_amatch *m1, *m2;
  size_t m1_cap, m2_cap;
  tokvec seq[2];
  size_t replaced[2];
  int32_t word;
  int split_special;
  int err; /* BERTCL_ERR_INVALID_ARG from a model: an unknown character without unk */
} workspace;

static int ws_init(const bertcl_tokenizer *tok, workspace *ws) {
  memset(ws, 0, sizeof *ws);
  if (tok->n_pres) {
    ws->levels = calloc(tok->n_pres, sizeof *ws->levels);
    if (!ws->levels) return BERTCL_ERR_NOMEM;
  }
  return BERTCL_OK;
}

static void ws_free(const bertcl_tokenizer *tok, workspace *ws) {
  free(ws->cps);
  free(ws->nb.v);
  bc_tok_nscratch_free(&ws->ns);
  bc_tok_mscratch_free(&ws->ms);
  if (ws->levels)
    for (size_t i = 0; i < tok->n_pres; i++) bc_tok_level_free(&ws->levels[i]);
  free(ws->levels);
  free(ws->m1);
  free(ws->m2);
  free(ws->seq[0].v);
  free(ws->seq[1].v);
  memset(ws, 0, sizeof *ws);
}

/* Leading / trailing characters of a token string that are whitespace or the byte-level
 * space 'Ġ' (U+0120): what ByteLevel's process_offsets trims. */
static int trim_char(uint32_t cp) { return cp == 0x120 || bc_tok_is_space(cp); }

static void count_trim(const uint32_t *cps, size_t stride, size_t n, uint16_t *lead,
                       uint16_t *trail) {
  size_t l = 0, t = 0;
  while (l < n && trim_char(cps[l * stride])) l++;
  while (t < n && trim_char(cps[(n - 1 - t) * stride])) t++;
  *lead = (uint16_t)(l > 0xFFFE ? 0xFFFE : l);
  *trail = (uint16_t)(t > 0xFFFE ? 0xFFFE : t);
}

static void count_trim_str(const char *s, size_t len, uint16_t *lead, uint16_t *trail) {
  uint32_t buf[64];
  size_t n = 0;
  /* a token string is short; longer ones are counted on their first/last 64 bytes */
  if (len <= 64) {
    n = bc_tok_utf8_decode(s, len, buf, NULL);
    count_trim(buf, 1, n, lead, trail);
    return;
  }
  uint16_t l1, t1, l2, t2;
  n = bc_tok_utf8_decode(s, 64, buf, NULL);
  count_trim(buf, 1, n, &l1, &t1);
  size_t start = len - 64;
  while (start < len && ((unsigned char)s[start] & 0xC0) == 0x80) start++;
  n = bc_tok_utf8_decode(s + start, len - start, buf, NULL);
  count_trim(buf, 1, n, &l2, &t2);
  *lead = l1;
  *trail = t2;
}

static int run_model(const bertcl_tokenizer *tok, workspace *ws, const bc_tok_nchar *w, size_t n,
                     tokvec *out) {
  int32_t word = ws->word++;
  int st;
  switch (tok->model.kind) {
  case BC_MODEL_WORDPIECE: st = bc_tok_wordpiece(tok, &ws->ms, w, n, word, out); break;
  case BC_MODEL_UNIGRAM: st = bc_tok_unigram(tok, &ws->ms, w, n, word, out); break;
  case BC_MODEL_BPE: st = bc_tok_bpe(tok, &ws->ms, w, n, word, out); break;
  case BC_MODEL_WORDLEVEL: st = bc_tok_wordlevel(tok, &ws->ms, w, n, word, out); break;
  default: st = BERTCL_ERR_INTERNAL;
  }
  if (st == BERTCL_ERR_INVALID_ARG) ws->err = 1;
  return st;
}

/* Pre-tokenizer step `depth` on one piece, then the model on every word. */
static int pretok(const bertcl_tokenizer *tok, workspace *ws, const bc_tok_nchar *chars, size_t n,
                  uint32_t shift, size_t depth, tokvec *out) {
  if (depth == tok->n_pres) return run_model(tok, ws, chars, n, out);
  bc_tok_level *L = &ws->levels[depth];
  L->n = 0;
  L->buf.n = 0;
  int st = bc_tok_pre_apply(&tok->pres[depth], chars, n, shift, L, &ws->ns);
  for (size_t i = 0; i < L->n && !st; i++) {
    const bc_tok_piece *p = &L->pieces[i];
    st = pretok(tok, ws, p->ptr ? p->ptr : L->buf.v + p->off, p->len, p->shift, depth + 1, out);
  }
  return st;
}

static int push_added(workspace *ws, tokvec *out, int32_t id, uint32_t a0, uint32_t a1,
                      const uint32_t *cps, size_t stride, size_t n) {
  int st = bc_tok_push(out, id, a0, a1, ws->word++);
  if (!st) count_trim(cps, stride, n, &out->v[out->n - 1].lead, &out->v[out->n - 1].trail);
  return st;
}

/* Normalizes cps[s..e) (a piece between raw added tokens), splits it on normalized added
 * tokens, pre-tokenizes and tokenizes the rest. */
static int encode_piece(const bertcl_tokenizer *tok, workspace *ws, const uint32_t *cps, size_t s,
                        size_t e, tokvec *out) {
  bc_tok_nbuf *nb = &ws->nb;
  int st = bc_tok_normalize_cps(tok, cps + s, e - s, (uint32_t)s, nb, &ws->ns);
  if (st) return st;
  if (!nb->n) return BERTCL_OK;
  size_t nm = 0;
  if (tok->added_norm.n &&
      (st = bc_tok_added_find(&tok->added_norm, &nb->v[0].cp, sizeof(bc_tok_nchar) / sizeof(uint32_t),
                              nb->n, ws->split_special, &ws->m2, &nm, &ws->m2_cap)))
    return st;
  size_t t = 0;
  for (size_t k = 0; k < nm; k++) {
    const bc_tok_amatch *m = &ws->m2[k];
    if (m->s > t && (st = pretok(tok, ws, nb->v + t, m->s - t, nb->v[t].a0, 0, out))) return st;
    if ((st = push_added(ws, out, m->id, nb->v[m->s].a0, nb->v[m->e - 1].a1, &nb->v[m->s].cp,
                         sizeof(bc_tok_nchar) / sizeof(uint32_t), m->e - m->s)))
      return st;
    t = m->e;
  }
  if (nb->n > t) st = pretok(tok, ws, nb->v + t, nb->n - t, nb->v[t].a0, 0, out);
  return st;
}

/* Encodes one text into ws->seq[which]. */
static int encode_text(const bertcl_tokenizer *tok, workspace *ws, const char *text, size_t len,
                       int split_special, int which) {
  tokvec *out = &ws->seq[which];
  out->n = 0;
  /* offsets are int32 and NFD uses bit 31 of an alignment */
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
  ws->word = 0;
  ws->split_special = split_special;
  size_t nm = 0, s = 0;
  int st;
  if (tok->added_raw.n &&
      (st = bc_tok_added_find(&tok->added_raw, cps, 1, n, split_special, &ws->m1, &nm, &ws->m1_cap)))
    return st;
  for (size_t k = 0; k < nm; k++) {
    bc_tok_amatch m = ws->m1[k];
    if (m.s > s && (st = encode_piece(tok, ws, cps, s, m.s, out))) return st;
    if ((st = push_added(ws, out, m.id, m.s, m.e, cps + m.s, 1, m.e - m.s))) return st;
    s = m.e;
  }
  if (n > s && (st = encode_piece(tok, ws, cps, s, n, out))) return st;
  /* tokenizers cannot map a start at the very end of a text to characters and keeps its byte
   * offsets (BytesToCharOffsetConverter) */
  size_t nbytes = SIZE_MAX;
  for (size_t i = 0; i < out->n; i++) {
    bc_tok_token *x = &out->v[i];
    if (x->start != n || !n) continue;
    if (nbytes == SIZE_MAX) {
      nbytes = 0;
      for (size_t k = 0; k < n; k++)
        nbytes += cps[k] < 0x80 ? 1 : cps[k] < 0x800 ? 2 : cps[k] < 0x10000 ? 3 : 4;
    }
    x->start = x->end = (uint32_t)nbytes;
  }
  return BERTCL_OK;
}

/* Truncation as tokenizers does it; sets the overflow counts. */
static int truncate(const bertcl_tokenizer *tok, workspace *ws, int is_pair,
                    const bertcl_tokenize_options *o, size_t overflow[2]) {
  size_t n1 = ws->seq[0].n, n2 = is_pair ? ws->seq[1].n : 0;
  overflow[0] = overflow[1] = 0;
  size_t max_length = o->max_length ? o->max_length : tok->max_length;
  if (o->truncation == BERTCL_TRUNC_NONE || max_length == SIZE_MAX) return BERTCL_OK;
  size_t added = o->no_special_tokens || tok->post.kind == BC_PP_NONE
                     ? 0
                     : (is_pair ? tok->post.pair.n_special : tok->post.single.n_special);
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

/* ByteLevel's process_offsets on each text's tokens (character offsets), trims times. */
static void post_trim(const bertcl_tokenizer *tok, workspace *ws, int is_pair) {
  for (int q = 0; q <= is_pair; q++) {
    tokvec *sq = &ws->seq[q];
    for (size_t i = 0; i < sq->n; i++) {
      tok_t *x = &sq->v[i];
      if (x->lead == 0xFFFF) {
        const char *s = bc_tok_str(tok, (size_t)x->id);
        if (s)
          count_trim_str(s, tok->id_len[x->id], &x->lead, &x->trail);
        else
          x->lead = x->trail = 0;
      }
      for (int r = 0; r < tok->post.trims; r++) {
        size_t lead = x->lead, trail = x->trail;
        if (lead > 0) {
          int is_first = i == 0 || x->start == 0;
          if (is_first && tok->post.trim_prefix_space && lead == 1) lead = 0;
          uint32_t s = x->start + (uint32_t)lead;
          x->start = s < x->end ? s : x->end;
        }
        if (trail > 0 && x->end >= trail) {
          uint32_t e = x->end - (uint32_t)trail;
          x->end = e > x->start ? e : x->start;
        }
      }
    }
  }
}

/* Encodes one text or pair into ws (tokens truncated); fills *total with the templated count. */
static int encode_one(const bertcl_tokenizer *tok, workspace *ws, const char *text, size_t len,
                      const char *pair, size_t pair_len, const bertcl_tokenize_options *o,
                      size_t overflow[2], size_t *total) {
  ws->err = 0;
  int st = encode_text(tok, ws, text, len, o->split_special_tokens, 0);
  if (!st && pair) st = encode_text(tok, ws, pair, pair_len, o->split_special_tokens, 1);
  if (st) {
    if (st == BERTCL_ERR_OVERFLOW)
      bc_fail(NULL, st, "text of %zu bytes is over the tokenizer's limit of %d bytes",
              len > pair_len ? len : pair_len, BC_TOK_MAX_TEXT);
    else if (ws->err)
      bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
              "the tokenizer's model found an unknown character and has no unknown token");
    else if (st == BERTCL_ERR_NOMEM)
      bc_fail(NULL, st, "out of memory tokenizing a text of %zu bytes", len + pair_len);
    else if (st == BERTCL_ERR_UNSUPPORTED)
      bc_fail(NULL, st,
              "a regular expression of the tokenizer could not be matched on a text of %zu bytes "
              "(PCRE2 match limit)",
              len + pair_len);
    else
      bc_fail(NULL, st, "tokenizing a text of %zu bytes failed (status %d)", len + pair_len, st);
    return st;
  }
  if (!pair) {
    ws->seq[1].n = 0;
    ws->replaced[1] = 0;
  }
  st = truncate(tok, ws, pair != NULL, o, overflow);
  if (st) return st;
  size_t n = 0;
  const bc_tpl *t = pair ? &tok->post.pair : &tok->post.single;
  if (!o->no_special_tokens && tok->post.kind != BC_PP_NONE) n += t->n_special;
  /* a template may repeat a sequence: count every occurrence */
  if (tok->post.kind == BC_PP_NONE) {
    n += ws->seq[0].n + ws->seq[1].n;
  } else {
    for (size_t i = 0; i < t->n; i++) {
      if (t->items[i].kind == BC_TPL_SEQ_A) n += ws->seq[0].n;
      if (t->items[i].kind == BC_TPL_SEQ_B && pair) n += ws->seq[1].n;
    }
  }
  *total = n;
  if (tok->post.trims) post_trim(tok, ws, pair != NULL);
  return BERTCL_OK;
}

/* Writes the templated sequence into arrays (any of them NULL to skip). */
static void emit(const bertcl_tokenizer *tok, const workspace *ws, int is_pair,
                 const bertcl_tokenize_options *o, int32_t *ids, int32_t *type_ids,
                 int32_t *word_ids, int32_t *seq_ids, int32_t *offsets, const char **tokens) {
  static const bc_tpl_item plain[2] = {{BC_TPL_SEQ_A, 0, NULL, 0}, {BC_TPL_SEQ_B, 1, NULL, 0}};
  const bc_tpl *t = is_pair ? &tok->post.pair : &tok->post.single;
  const bc_tpl_item *items = t->items;
  size_t nitems = t->n;
  if (tok->post.kind == BC_PP_NONE) {
    items = plain;
    nitems = is_pair ? 2 : 1;
  }
  size_t k = 0;
  for (size_t i = 0; i < nitems; i++) {
    const bc_tpl_item *it = &items[i];
    if (it->kind == BC_TPL_SPECIAL) {
      if (o->no_special_tokens) continue;
      for (size_t j = 0; j < it->nids; j++, k++) {
        if (ids) ids[k] = it->ids[j];
        if (type_ids) type_ids[k] = it->type_id;
        if (word_ids) word_ids[k] = -1;
        if (seq_ids) seq_ids[k] = -1;
        if (offsets) offsets[2 * k] = offsets[2 * k + 1] = 0;
        if (tokens) tokens[k] = bc_tok_str(tok, (size_t)it->ids[j]);
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
      if (tokens) tokens[k] = bc_tok_str(tok, (size_t)x->id);
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
  if (ws_init(tok, &ws)) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  size_t overflow[2], n = 0;
  int st = encode_one(tok, &ws, text, text_len, pair, pair_len, o, overflow, &n);
  if (st) {
    ws_free(tok, &ws);
    return st;
  }
  /* one block: the struct, then 6 int32 arrays (offsets counts twice), then token pointers */
  size_t bytes = sizeof(bertcl_encoding) + n * (6 * sizeof(int32_t) + sizeof(char *)) + 16;
  bertcl_encoding *e = calloc(1, bytes);
  if (!e) {
    ws_free(tok, &ws);
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
  ws_free(tok, &ws);
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
  if (ws_init(tok, &ws)) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
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
  ws_free(tok, &ws);
  *out = bt;
  return BERTCL_OK;
fail_flat:
  free(flat);
fail:
  ws_free(tok, &ws);
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
