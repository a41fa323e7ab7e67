/* Pre-tokenizers: split a normalized piece into words (tokenizers/src/pre_tokenizers). Splitting follows
 * NormalizedString::split: a pattern gives spans (match or not) covering the piece, the
 * SplitDelimiterBehavior keeps / merges them, and every kept non-empty span becomes a piece
 * whose original start (shift) is its first character's alignment. Metaspace and ByteLevel also
 * transform characters, with NormalizedString's alignments. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

typedef struct {
  uint32_t s, e; /* characters */
  int m;         /* is a match of the pattern */
} span;

typedef struct {
  span *v;
  size_t n, cap;
} spans;

static int spans_push(spans *sp, size_t s, size_t e, int m) {
  if (sp->n == sp->cap) {
    size_t cap = sp->cap ? sp->cap * 2 : 64;
    span *v = realloc(sp->v, cap * sizeof *v);
    if (!v) return BERTCL_ERR_NOMEM;
    sp->v = v;
    sp->cap = cap;
  }
  sp->v[sp->n++] = (span){(uint32_t)s, (uint32_t)e, m};
  return BERTCL_OK;
}

void bc_tok_level_free(bc_tok_level *L) {
  free(L->spans);
  free(L->buf.v);
  free(L->pieces);
  free(L->work.v);
  memset(L, 0, sizeof *L);
}

static int grow_pieces(bc_tok_level *L) {
  size_t cap = L->cap ? L->cap * 2 : 64;
  bc_tok_piece *p = realloc(L->pieces, cap * sizeof *p);
  if (!p) return BERTCL_ERR_NOMEM;
  L->pieces = p;
  L->cap = cap;
  return BERTCL_OK;
}

/* A piece made of chars[0..n): the step's input or its work buffer, both left alone until the
 * pieces are consumed, so it is referenced, not copied. */
static inline int emit(bc_tok_level *L, const bc_tok_nchar *chars, size_t n, uint32_t shift) {
  if (!n) return BERTCL_OK;
  if (L->n == L->cap && grow_pieces(L)) return BERTCL_ERR_NOMEM;
  L->pieces[L->n++] = (bc_tok_piece){chars, 0, n, shift};
  return BERTCL_OK;
}

/* Emits chars[0..n) mapped to the characters of their UTF-8 bytes (ByteLevel). */
static int emit_bytes(bc_tok_level *L, const bc_tok_nchar *chars, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = chars[i].cp;
    m += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  int st;
  if (L->n == L->cap && grow_pieces(L)) return BERTCL_ERR_NOMEM;
  if ((st = bc_tok_nbuf_reserve(&L->buf, m))) return st;
  bc_tok_nchar *o = L->buf.v + L->buf.n;
  for (size_t i = 0; i < n; i++) {
    char u[4];
    size_t k = bc_tok_utf8_put(chars[i].cp, u);
    for (size_t j = 0; j < k; j++)
      *o++ = (bc_tok_nchar){bc_tok_byte_char[(unsigned char)u[j]], chars[i].a0, chars[i].a1};
  }
  L->pieces[L->n++] = (bc_tok_piece){NULL, L->buf.n, m, chars[0].a0};
  L->buf.n += m;
  return BERTCL_OK;
}

/* Emits the spans kept by behavior (NormalizedString::split). */
static int split_by(bc_tok_level *L, const bc_tok_nchar *chars, spans *sp, int behavior) {
  size_t w = 0;
  int prev = 0;
  switch (behavior) {
  case BC_SPLIT_ISOLATED:
    for (size_t i = 0; i < sp->n; i++) sp->v[i].m = 0;
    w = sp->n;
    break;
  case BC_SPLIT_REMOVED:
    w = sp->n;
    break;
  case BC_SPLIT_CONTIGUOUS:
    for (size_t i = 0; i < sp->n; i++) {
      span x = sp->v[i];
      if (x.m == prev && w > 0)
        sp->v[w - 1].e = x.e;
      else
        sp->v[w++] = (span){x.s, x.e, 0};
      prev = x.m;
    }
    break;
  case BC_SPLIT_MERGED_PREV:
    for (size_t i = 0; i < sp->n; i++) {
      span x = sp->v[i];
      if (x.m && !prev && w > 0)
        sp->v[w - 1].e = x.e;
      else
        sp->v[w++] = (span){x.s, x.e, 0};
      prev = x.m;
    }
    break;
  case BC_SPLIT_MERGED_NEXT: {
    /* from the end: a match joins the span after it; written back to front */
    size_t r = sp->n;
    for (size_t i = sp->n; i-- > 0;) {
      span x = sp->v[i];
      if (x.m && !prev && r < sp->n)
        sp->v[r].s = x.s;
      else
        sp->v[--r] = (span){x.s, x.e, 0};
      prev = x.m;
    }
    memmove(sp->v, sp->v + r, (sp->n - r) * sizeof *sp->v);
    w = sp->n - r;
    break;
  }
  default: return BERTCL_ERR_INTERNAL;
  }
  for (size_t i = 0; i < w; i++) {
    span x = sp->v[i];
    if (x.m || x.e <= x.s) continue;
    int st = emit(L, chars + x.s, x.e - x.s, chars[x.s].a0);
    if (st) return st;
  }
  return BERTCL_OK;
}

/* Spans of a character predicate (tokenizers' Pattern for Fn(char) -> bool). */
static int char_spans(spans *sp, const bc_tok_nchar *chars, size_t n, int (*pred)(uint32_t, uint32_t),
                      uint32_t arg) {
  sp->n = 0;
  size_t last = 0;
  for (size_t i = 0; i < n; i++) {
    if (!pred(chars[i].cp, arg)) continue;
    int st;
    if (last < i && (st = spans_push(sp, last, i, 0))) return st;
    if ((st = spans_push(sp, i, i + 1, 1))) return st;
    last = i + 1;
  }
  if (last < n) return spans_push(sp, last, n, 0);
  return BERTCL_OK;
}

static int pred_space(uint32_t cp, uint32_t arg) {
  (void)arg;
  return cp < 128 ? (cp == ' ' || (cp >= 9 && cp <= 13)) : bc_tok_is_space(cp);
}
static int pred_punct(uint32_t cp, uint32_t arg) {
  (void)arg;
  return bc_tok_is_punct(cp);
}
static int pred_numeric(uint32_t cp, uint32_t arg) {
  (void)arg;
  return bc_tok_is_numeric(cp);
}
static int pred_char(uint32_t cp, uint32_t arg) { return cp == arg; }

/* Spans of a regex over chars (byte offsets converted to characters). */
static int regex_spans(spans *sp, const bc_tok_regex *re, const bc_tok_nchar *chars, size_t n,
                       int invert, bc_tok_nscratch *s) {
  sp->n = 0;
  size_t nb = 0, nm = 0;
  int st = bc_tok_to_utf8(chars, n, s, &nb);
  if (!st) st = bc_tok_regex_find_all(re, &s->rm, s->bytes, nb, &s->matches, &nm, &s->matches_cap);
  if (st) return st;
  /* byte -> character: bpos (s->u32) holds character starts; walk both in order */
  size_t prev = 0, c = 0;
  for (size_t k = 0; k < nm; k++) {
    uint32_t bs = s->matches[2 * k], be = s->matches[2 * k + 1];
    while (c < n && s->u32[c] < bs) c++;
    size_t cs = c;
    size_t ce = cs;
    while (ce < n && s->u32[ce] < be) ce++;
    if (prev != cs && (st = spans_push(sp, prev, cs, invert))) return st;
    if ((st = spans_push(sp, cs, ce, !invert))) return st;
    prev = ce;
  }
  if (prev != n) return spans_push(sp, prev, n, invert);
  return BERTCL_OK;
}

/* 1 = whitespace, 2 = punctuation, 0 = part of a word (BertPreTokenizer's classes). */
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

/* BertPreTokenizer in one pass: whitespace removed, punctuation isolated. */
static int pre_bert(bc_tok_level *L, const bc_tok_nchar *v, size_t m) {
  size_t i = 0;
  while (i < m) {
    int c = pt_class(v[i].cp);
    if (c == 1) {
      i++;
      continue;
    }
    size_t j = i + 1;
    if (c == 0)
      while (j < m && pt_class(v[j].cp) == 0) j++;
    int st = emit(L, v + i, j - i, v[i].a0);
    if (st) return st;
    i = j;
  }
  return BERTCL_OK;
}

/* Splits v into maximal runs of one class, dropping the characters of class 0. */
static int split_runs(bc_tok_level *L, const bc_tok_nchar *v, size_t m, int (*cls)(uint32_t)) {
  size_t i = 0;
  while (i < m) {
    int c = cls(v[i].cp);
    if (c == 0) {
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < m && cls(v[j].cp) == c) j++;
    int st = emit(L, v + i, j - i, v[i].a0);
    if (st) return st;
    i = j;
  }
  return BERTCL_OK;
}

/* \s 0, \w 1, the rest 2 (no code point is both \w and \s) */
static int class_space_word(uint32_t cp) {
  return pred_space(cp, 0) ? 0 : bc_tok_is_word(cp) ? 1 : 2;
}
static int class_space(uint32_t cp) { return !pred_space(cp, 0); }

/* Whitespace: the matches of \w+|[^\w\s]+ are kept. */
static int pre_whitespace(bc_tok_level *L, const bc_tok_nchar *v, size_t m) {
  return split_runs(L, v, m, class_space_word);
}

/* WhitespaceSplit: whitespace removed. */
static int pre_ws_split(bc_tok_level *L, const bc_tok_nchar *v, size_t m) {
  return split_runs(L, v, m, class_space);
}

static int work_copy(bc_tok_nbuf *w, const bc_tok_nchar *chars, size_t n, size_t extra) {
  w->n = 0;
  int st = bc_tok_nbuf_reserve(w, n + extra);
  if (st) return st;
  memcpy(w->v, chars, n * sizeof *chars);
  w->n = n;
  return BERTCL_OK;
}

int bc_tok_pre_apply(const bc_tok_pre *p, const bc_tok_nchar *chars, size_t n, uint32_t shift,
                     bc_tok_level *L, bc_tok_nscratch *s) {
  spans sp = {L->spans, 0, L->spans_cap};
  int st = BERTCL_OK;
  switch (p->kind) {
  case BC_PRE_BERT: return pre_bert(L, chars, n);
  case BC_PRE_WHITESPACE: return pre_whitespace(L, chars, n);
  case BC_PRE_WS_SPLIT: return pre_ws_split(L, chars, n);
  case BC_PRE_PUNCT:
    st = char_spans(&sp, chars, n, pred_punct, 0);
    if (!st) st = split_by(L, chars, &sp, p->behavior);
    break;
  case BC_PRE_DIGITS:
    st = char_spans(&sp, chars, n, pred_numeric, 0);
    if (!st)
      st = split_by(L, chars, &sp, p->individual ? BC_SPLIT_ISOLATED : BC_SPLIT_CONTIGUOUS);
    break;
  case BC_PRE_CHAR_DELIM:
    st = char_spans(&sp, chars, n, pred_char, p->ch);
    if (!st) st = split_by(L, chars, &sp, BC_SPLIT_REMOVED);
    break;
  case BC_PRE_SPLIT:
    st = regex_spans(&sp, p->re, chars, n, p->invert, s);
    if (!st) st = split_by(L, chars, &sp, p->behavior);
    break;
  case BC_PRE_METASPACE: {
    bc_tok_nbuf *w = &L->work;
    if ((st = work_copy(w, chars, n, 1))) break;
    /* replace(' ', replacement): each space becomes the replacement with its alignment */
    for (size_t i = 0; i < w->n; i++)
      if (w->v[i].cp == ' ') w->v[i].cp = p->ch;
    int prepend = w->v[0].cp != p->ch && (p->prepend_scheme == BC_PREPEND_ALWAYS ||
                                          (p->prepend_scheme == BC_PREPEND_FIRST && shift == 0));
    if (prepend) {
      /* NormalizedString::prepend: the new first character takes the old first's alignment */
      memmove(w->v + 1, w->v, w->n * sizeof *w->v);
      w->v[0] = (bc_tok_nchar){p->ch, w->v[1].a0, w->v[1].a1};
      w->n++;
    }
    if (!p->split) {
      st = emit(L, w->v, w->n, w->v[0].a0);
      break;
    }
    st = char_spans(&sp, w->v, w->n, pred_char, p->ch);
    if (!st) st = split_by(L, w->v, &sp, BC_SPLIT_MERGED_NEXT);
    break;
  }
  case BC_PRE_BYTELEVEL: {
    bc_tok_nbuf *w = &L->work;
    if ((st = work_copy(w, chars, n, 1))) break;
    if (p->add_prefix_space && w->v[0].cp != ' ') {
      memmove(w->v + 1, w->v, w->n * sizeof *w->v);
      w->v[0] = (bc_tok_nchar){' ', w->v[1].a0, w->v[1].a1};
      w->n++;
    }
    /* Isolated split on the GPT-2 pattern (or none), then each piece's characters become the
     * characters of their UTF-8 bytes, all aligned like the character they came from */
    if (p->use_regex)
      st = regex_spans(&sp, p->re, w->v, w->n, 0, s);
    else
      st = spans_push(&sp, 0, w->n, 0);
    for (size_t k = 0; k < sp.n && !st; k++)
      if (sp.v[k].e > sp.v[k].s) st = emit_bytes(L, w->v + sp.v[k].s, sp.v[k].e - sp.v[k].s);
    break;
  }
  default: st = BERTCL_ERR_INTERNAL;
  }
  L->spans = sp.v;
  L->spans_cap = sp.cap;
  return st;
}
