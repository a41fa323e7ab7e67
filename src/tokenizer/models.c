/* The three models, each tokenizing one pre-tokenized word (tokenizers/src/models):
 *  - WordPiece: greedy longest match from the left, continuing pieces with a prefix ("##"); a
 *    word over max_input_chars_per_word characters, or with an unmatchable rest, is one unk;
 *  - Unigram: Viterbi over the pieces found by a byte trie (best total score; ties keep the
 *    first candidate found: earlier start, then shorter piece), unknown characters scored
 *    min_score - 10 and fused, then byte_fallback (<0xXX> pieces) or unk;
 *  - BPE: characters (with continuing_subword_prefix / end_of_word_suffix) merged by rank, the
 *    lowest rank first, leftmost among equals; unknown characters become <0xXX> pieces
 *    (byte_fallback) or unk (fused when fuse_unk); dropout is ignored (inference).
 * Model offsets are bytes of the word; a token covers the characters holding its first and last
 * byte, and takes their alignment (NormalizedString::convert_offsets). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int bc_tok_tokvec_grow(bc_tok_tokvec *t) {
  size_t cap = t->cap ? t->cap * 2 : 64;
  bc_tok_token *v = realloc(t->v, cap * sizeof *v);
  if (!v) return BERTCL_ERR_NOMEM;
  t->v = v;
  t->cap = cap;
  return BERTCL_OK;
}

void bc_tok_mscratch_free(bc_tok_mscratch *m) {
  free(m->bytes);
  free(m->bpos);
  free(m->best);
  free(m->from);
  free(m->bid);
  free(m->sym);
  free(m->heap);
  free(m->ids);
  free(m->spans);
  memset(m, 0, sizeof *m);
}

/* UTF-8 of w[0..n) into m->bytes; m->bpos[i] = byte start of char i (n + 1 entries) followed,
 * when byte_chars, by the character of every byte (nbytes entries, at m->bpos + n + 1). */
static int word_bytes(bc_tok_mscratch *m, const bc_tok_nchar *w, size_t n, size_t *nbytes,
                      int byte_chars) {
  size_t need = n * 4 + 8;
  if (need > m->cap) {
    size_t cap = m->cap ? m->cap : 256;
    while (cap < need) cap *= 2;
    char *b = realloc(m->bytes, cap);
    if (!b) return BERTCL_ERR_NOMEM;
    m->bytes = b;
    uint32_t *p = realloc(m->bpos, (cap + cap / 4 * 2 + 2) * sizeof *p);
    if (!p) return BERTCL_ERR_NOMEM;
    m->bpos = p;
    m->cap = cap;
  }
  size_t nb = 0;
  uint32_t *bchar = m->bpos + n + 1;
  for (size_t i = 0; i < n; i++) {
    m->bpos[i] = (uint32_t)nb;
    uint32_t cp = w[i].cp;
    size_t k = cp < 0x80 ? (m->bytes[nb] = (char)cp, 1) : bc_tok_utf8_put(cp, m->bytes + nb);
    if (byte_chars)
      for (size_t j = 0; j < k; j++) bchar[nb + j] = (uint32_t)i;
    nb += k;
  }
  m->bpos[n] = (uint32_t)nb;
  m->bytes[nb] = '\0';
  *nbytes = nb;
  return BERTCL_OK;
}

/* Appends a token covering bytes [bs, be) of the word (be > bs). */
static int push_bytes(const bc_tok_mscratch *m, const bc_tok_nchar *w, size_t n, int32_t id,
                      size_t bs, size_t be, int32_t word, bc_tok_tokvec *out) {
  const uint32_t *bchar = m->bpos + n + 1;
  size_t nb = m->bpos[n];
  /* BPE byte pieces of a prefixed character count the prefix's bytes too (as tokenizers
   * does); keep such offsets inside the word */
  if (be > nb) be = nb;
  if (bs >= be) bs = be - 1;
  return bc_tok_push(out, id, w[bchar[bs]].a0, w[bchar[be - 1]].a1, word);
}

/* ---- WordPiece ---- */

int bc_tok_wordpiece(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w,
                     size_t n, int32_t word, bc_tok_tokvec *out) {
  const bc_tok_model *md = &tok->model;
  if (n > md->max_chars_per_word) return bc_tok_push(out, md->unk_id, w[0].a0, w[n - 1].a1, word);
  size_t nb = 0;
  int st = word_bytes(m, w, n, &nb, 0);
  if (st) return st;
  const char *bytes = m->bytes;
  const uint32_t *bpos = m->bpos;
  size_t first = out->n, start = 0;
  while (start < n) {
    const bc_tok_map *map = start == 0 ? &tok->vocab : &tok->cont;
    size_t end = n;
    /* a piece longer than the longest vocabulary entry cannot match: skip those ends */
    while (end > start && bpos[end] - bpos[start] > map->max_key) end--;
    int32_t id = -1;
    for (; end > start; end--) {
      id = bc_tok_map_get(tok, map, bytes + bpos[start], bpos[end] - bpos[start]);
      if (id >= 0) break;
    }
    if (id < 0) {
      out->n = first;
      return bc_tok_push(out, md->unk_id, w[0].a0, w[n - 1].a1, word);
    }
    if ((st = bc_tok_push(out, id, w[start].a0, w[end - 1].a1, word))) return st;
    start = end;
  }
  return BERTCL_OK;
}

/* ---- WordLevel: the whole word, or unk ---- */

int bc_tok_wordlevel(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w,
                     size_t n, int32_t word, bc_tok_tokvec *out) {
  size_t nb = 0;
  int st = word_bytes(m, w, n, &nb, 1);
  if (st) return st;
  int32_t id = bc_tok_map_get(tok, &tok->vocab, m->bytes, nb);
  if (id < 0) id = tok->model.unk_id;
  if (id < 0) return BERTCL_ERR_INVALID_ARG;
  return bc_tok_push(out, id, w[0].a0, w[n - 1].a1, word);
}

/* ---- Unigram ---- */

typedef struct {
  uint32_t first_child, next;
  int32_t value;
  uint8_t label;
} bnode;

int bc_tok_trie_build(bertcl_tokenizer *tok, bc_tok_trie *t) {
  size_t n = tok->model.n_pieces, cap = 1024, count = 1;
  bnode *nodes = malloc(cap * sizeof *nodes);
  if (!nodes) return BERTCL_ERR_NOMEM;
  nodes[0] = (bnode){0, 0, -1, 0};
  for (size_t id = 0; id < n; id++) {
    const char *s = bc_tok_str(tok, id);
    size_t len = tok->id_len[id];
    if (!s || !len) continue;
    uint32_t k = 0;
    for (size_t i = 0; i < len; i++) {
      uint8_t c = (uint8_t)s[i];
      uint32_t ch = nodes[k].first_child;
      while (ch && nodes[ch].label != c) ch = nodes[ch].next;
      if (!ch) {
        if (count == cap) {
          if (cap > ((size_t)1 << 31)) {
            free(nodes);
            return BERTCL_ERR_OVERFLOW;
          }
          bnode *p = realloc(nodes, (cap *= 2) * sizeof *p);
          if (!p) {
            free(nodes);
            return BERTCL_ERR_NOMEM;
          }
          nodes = p;
        }
        ch = (uint32_t)count++;
        nodes[ch] = (bnode){0, nodes[k].first_child, -1, c};
        nodes[k].first_child = ch;
      }
      k = ch;
    }
    nodes[k].value = (int32_t)id; /* a later piece with the same string wins (a HashMap) */
  }
  /* flatten: edges of node k in first[k] .. first[k+1], sorted by label */
  t->nodes = count;
  t->edges = count - 1;
  t->first = malloc((count + 1) * sizeof *t->first);
  t->label = malloc(count * sizeof *t->label);
  t->child = malloc(count * sizeof *t->child);
  t->value = malloc(count * sizeof *t->value);
  if (!t->first || !t->label || !t->child || !t->value) {
    free(nodes);
    return BERTCL_ERR_NOMEM;
  }
  size_t e = 0;
  for (size_t k = 0; k < count; k++) {
    t->first[k] = (uint32_t)e;
    t->value[k] = nodes[k].value;
    size_t from = e;
    for (uint32_t ch = nodes[k].first_child; ch; ch = nodes[ch].next) {
      t->label[e] = nodes[ch].label;
      t->child[e] = ch;
      e++;
    }
    /* insertion sort by label (children lists are short) */
    for (size_t i = from + 1; i < e; i++)
      for (size_t j = i; j > from && t->label[j - 1] > t->label[j]; j--) {
        uint8_t l = t->label[j];
        t->label[j] = t->label[j - 1];
        t->label[j - 1] = l;
        uint32_t c = t->child[j];
        t->child[j] = t->child[j - 1];
        t->child[j - 1] = c;
      }
  }
  t->first[count] = (uint32_t)e;
  memset(t->root, 0, sizeof t->root);
  for (uint32_t i = t->first[0]; i < t->first[1]; i++) t->root[t->label[i]] = t->child[i] + 1;
  free(nodes);
  return BERTCL_OK;
}

void bc_tok_trie_free(bc_tok_trie *t) {
  free(t->first);
  free(t->label);
  free(t->child);
  free(t->value);
  memset(t, 0, sizeof *t);
}

static inline uint32_t trie_next(const bc_tok_trie *t, uint32_t k, uint8_t c) {
  uint32_t lo = t->first[k], hi = t->first[k + 1];
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (t->label[mid] < c)
      lo = mid + 1;
    else if (t->label[mid] > c)
      hi = mid;
    else
      return t->child[mid];
  }
  return 0;
}

static int ureserve(bc_tok_mscratch *m, size_t n) {
  if (n <= m->ucap) return BERTCL_OK;
  size_t cap = m->ucap ? m->ucap : 256;
  while (cap < n) cap *= 2;
  double *b = realloc(m->best, cap * sizeof *b);
  if (!b) return BERTCL_ERR_NOMEM;
  m->best = b;
  int32_t *f = realloc(m->from, cap * sizeof *f);
  if (!f) return BERTCL_ERR_NOMEM;
  m->from = f;
  int32_t *i = realloc(m->bid, cap * sizeof *i);
  if (!i) return BERTCL_ERR_NOMEM;
  m->bid = i;
  m->ucap = cap;
  return BERTCL_OK;
}

static int ids_reserve(bc_tok_mscratch *m, size_t n) {
  if (n <= m->ids_cap) return BERTCL_OK;
  size_t cap = m->ids_cap ? m->ids_cap : 256;
  while (cap < n) cap *= 2;
  int32_t *i = realloc(m->ids, cap * sizeof *i);
  if (!i) return BERTCL_ERR_NOMEM;
  m->ids = i;
  uint32_t *s = realloc(m->spans, 2 * cap * sizeof *s);
  if (!s) return BERTCL_ERR_NOMEM;
  m->spans = s;
  m->ids_cap = cap;
  return BERTCL_OK;
}

/* Emits the piece bytes [bs, be) with id (or, for unknown text, its byte pieces or unk). */
static int unigram_emit(const bertcl_tokenizer *tok, const bc_tok_mscratch *m,
                        const bc_tok_nchar *w, size_t n, int32_t id, int unknown, size_t bs,
                        size_t be, int32_t word, bc_tok_tokvec *out) {
  const bc_tok_model *md = &tok->model;
  if (unknown) {
    /* the fused text may still be a piece; else byte pieces; else unk */
    int32_t v = bc_tok_map_get(tok, &tok->vocab, m->bytes + bs, be - bs);
    if (v >= 0) return push_bytes(m, w, n, v, bs, be, word, out);
    if (md->byte_fallback) {
      int all = 1;
      for (size_t i = bs; i < be && all; i++) all = md->byte_id[(uint8_t)m->bytes[i]] >= 0;
      if (all) {
        for (size_t i = bs; i < be; i++) {
          int st = push_bytes(m, w, n, md->byte_id[(uint8_t)m->bytes[i]], bs, be, word, out);
          if (st) return st;
        }
        return BERTCL_OK;
      }
    }
    if (md->unk_id < 0) return BERTCL_ERR_INVALID_ARG;
    id = md->unk_id;
  }
  return push_bytes(m, w, n, id, bs, be, word, out);
}

int bc_tok_unigram(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w,
                   size_t n, int32_t word, bc_tok_tokvec *out) {
  const bc_tok_model *md = &tok->model;
  const bc_tok_trie *t = &md->trie;
  size_t nb = 0;
  int st = word_bytes(m, w, n, &nb, 1);
  if (!st) st = ureserve(m, nb + 1);
  if (st) return st;
  const uint8_t *s = (const uint8_t *)m->bytes;
  double *best = m->best;
  int32_t *from = m->from, *bid = m->bid;
  for (size_t i = 0; i <= nb; i++) {
    best[i] = 0.0;
    from[i] = -1;
  }
  const double unk_score = md->min_score - 10.0;
  for (size_t c = 0; c < n; c++) {
    size_t pos = m->bpos[c], mblen = m->bpos[c + 1] - pos;
    double here = best[pos];
    int single = 0;
    uint32_t k = t->nodes ? t->root[s[pos]] : 0;
    size_t i = pos;
    while (k) {
      k--; /* root[] and trie_next results: node + 1 / node (root children stored +1) */
      i++;
      int32_t id = t->value[k];
      if (id >= 0) {
        double cand = md->scores[id] + here;
        if (from[i] < 0 || cand > best[i]) {
          best[i] = cand;
          from[i] = (int32_t)pos;
          bid[i] = id;
        }
        if (i - pos == mblen) single = 1;
      }
      if (i >= nb) break;
      uint32_t nx = trie_next(t, k, s[i]);
      k = nx ? nx + 1 : 0;
    }
    if (!single) {
      size_t e = pos + mblen;
      double cand = unk_score + here;
      if (from[e] < 0 || cand > best[e]) {
        if (md->unk_id < 0) return BERTCL_ERR_INVALID_ARG;
        best[e] = cand;
        from[e] = (int32_t)pos;
        bid[e] = md->unk_id;
      }
    }
  }
  /* back from the end: pieces in reverse (spans), unknown runs fused */
  size_t np = 0;
  for (size_t e = nb; e > 0;) {
    if (from[e] < 0) return BERTCL_ERR_INVALID_ARG;
    size_t b = (size_t)from[e];
    if ((st = ids_reserve(m, np + 1))) return st;
    int unk = md->unk_id >= 0 && bid[e] == md->unk_id;
    if (unk && np > 0 && m->ids[np - 1] == -2) {
      m->spans[2 * (np - 1)] = (uint32_t)b; /* fuse with the unknown text after it */
    } else {
      m->ids[np] = unk ? -2 : bid[e];
      m->spans[2 * np] = (uint32_t)b;
      m->spans[2 * np + 1] = (uint32_t)e;
      np++;
    }
    e = b;
  }
  for (size_t j = np; j-- > 0;) {
    int32_t id = m->ids[j];
    st = unigram_emit(tok, m, w, n, id, id == -2, m->spans[2 * j], m->spans[2 * j + 1], word, out);
    if (st) return st;
  }
  return BERTCL_OK;
}

/* ---- BPE ---- */

static inline uint64_t mkey(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }
static inline size_t mhash(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k;
}

int bc_tok_merges_put(bc_tok_merges *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t merged) {
  if (!m->cap || m->cap < 2 * (size_t)rank + 64) {
    /* grow to a power of two >= 4 x entries (ranks are dense) */
    size_t cap = m->cap ? m->cap : 1024;
    while (cap < 4 * ((size_t)rank + 16)) cap *= 2;
    uint64_t *keys = malloc(cap * sizeof *keys);
    uint32_t *r = malloc(cap * sizeof *r), *g = malloc(cap * sizeof *g);
    if (!keys || !r || !g) {
      free(keys);
      free(r);
      free(g);
      return BERTCL_ERR_NOMEM;
    }
    for (size_t i = 0; i < cap; i++) keys[i] = UINT64_MAX;
    for (size_t i = 0; i < m->cap; i++) {
      if (m->keys[i] == UINT64_MAX) continue;
      size_t j = mhash(m->keys[i]) & (cap - 1);
      while (keys[j] != UINT64_MAX) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      r[j] = m->rank[i];
      g[j] = m->merged[i];
    }
    free(m->keys);
    free(m->rank);
    free(m->merged);
    m->keys = keys;
    m->rank = r;
    m->merged = g;
    m->cap = cap;
  }
  uint64_t k = mkey(a, b);
  size_t j = mhash(k) & (m->cap - 1);
  while (m->keys[j] != UINT64_MAX && m->keys[j] != k) j = (j + 1) & (m->cap - 1);
  m->keys[j] = k; /* a repeated pair takes the later rank (a HashMap built in order) */
  m->rank[j] = rank;
  m->merged[j] = merged;
  return BERTCL_OK;
}

void bc_tok_merges_free(bc_tok_merges *m) {
  free(m->keys);
  free(m->rank);
  free(m->merged);
  memset(m, 0, sizeof *m);
}

static inline int merges_get(const bc_tok_merges *m, uint32_t a, uint32_t b, uint32_t *rank,
                             uint32_t *merged) {
  if (!m->cap) return 0;
  uint64_t k = mkey(a, b);
  for (size_t j = mhash(k) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
    if (m->keys[j] == UINT64_MAX) return 0;
    if (m->keys[j] == k) {
      *rank = m->rank[j];
      *merged = m->merged[j];
      return 1;
    }
  }
}

typedef struct {
  uint32_t id;
  int32_t prev, next;
  uint32_t len; /* bytes; 0 = merged away */
} symbol;

typedef struct {
  uint32_t rank, pos, merged;
} hitem;

static inline int hless(const hitem *a, const hitem *b) {
  return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void hpush(hitem *h, size_t *n, hitem x) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!hless(&x, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

static hitem hpop(hitem *h, size_t *n) {
  hitem top = h[0], x = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const hitem *best = &x;
    if (l < *n && hless(&h[l], best)) {
      m = l;
      best = &h[l];
    }
    if (r < *n && hless(&h[r], best)) m = r;
    if (m == i) break;
    h[i] = h[m];
    i = m;
  }
  if (*n) h[i] = x;
  return top;
}

int bc_tok_bpe(const bertcl_tokenizer *tok, bc_tok_mscratch *m, const bc_tok_nchar *w, size_t n,
               int32_t word, bc_tok_tokvec *out) {
  const bc_tok_model *md = &tok->model;
  size_t nb = 0;
  int st = word_bytes(m, w, n, &nb, 1);
  if (st) return st;
  if (md->ignore_merges) {
    int32_t id = bc_tok_map_get(tok, &tok->vocab, m->bytes, nb);
    if (id >= 0) return push_bytes(m, w, n, id, 0, nb, word, out);
  }
  /* symbols: at most one per byte */
  if (nb + 1 > m->sym_cap) {
    size_t cap = m->sym_cap ? m->sym_cap : 256;
    while (cap < nb + 1) cap *= 2;
    void *p = realloc(m->sym, cap * sizeof(symbol));
    if (!p) return BERTCL_ERR_NOMEM;
    m->sym = p;
    p = realloc(m->heap, 4 * cap * sizeof(hitem));
    if (!p) return BERTCL_ERR_NOMEM;
    m->heap = p;
    m->sym_cap = cap;
  }
  symbol *sy = m->sym;
  size_t ns = 0;
  int32_t unk = -1;
  uint32_t unk_len = 0;
  char key[4 + 512];
#define ADD_SYM(ID, LEN)                                                                       \
  do {                                                                                         \
    sy[ns] = (symbol){(uint32_t)(ID), (int32_t)ns - 1, -1, (uint32_t)(LEN)};                   \
    if (ns) sy[ns - 1].next = (int32_t)ns;                                                     \
    ns++;                                                                                      \
  } while (0)
  for (size_t c = 0; c < n; c++) {
    size_t bs = m->bpos[c], blen = m->bpos[c + 1] - bs;
    size_t kl = 0;
    int32_t id = -1;
    size_t pre = c > 0 && md->prefix ? md->prefix_len : 0;
    size_t suf = c + 1 == n && md->suffix ? md->suffix_len : 0;
    if (pre + blen + suf <= sizeof key) {
      if (pre) memcpy(key, md->prefix, pre);
      memcpy(key + pre, m->bytes + bs, blen);
      if (suf) memcpy(key + pre + blen, md->suffix, suf);
      kl = pre + blen + suf;
      id = bc_tok_map_get(tok, &tok->vocab, key, kl);
    }
    if (id >= 0) {
      if (unk >= 0) {
        ADD_SYM(unk, unk_len);
        unk = -1;
      }
      ADD_SYM(id, blen);
      continue;
    }
    if (md->byte_fallback) {
      /* the bytes of the string looked up (prefix and suffix included) */
      int all = kl > 0;
      for (size_t i = 0; i < kl && all; i++) all = md->byte_id[(uint8_t)key[i]] >= 0;
      if (all) {
        for (size_t i = 0; i < kl; i++) ADD_SYM(md->byte_id[(uint8_t)key[i]], 1);
        continue;
      }
    }
    if (md->unk_id == -2) return BERTCL_ERR_INVALID_ARG; /* unk_token not in the vocabulary */
    if (md->unk_id >= 0) {
      if (unk >= 0 && md->fuse_unk) {
        unk_len += (uint32_t)blen;
      } else {
        if (unk >= 0) ADD_SYM(unk, unk_len);
        unk = md->unk_id;
        unk_len = (uint32_t)blen;
      }
    }
  }
  if (unk >= 0) ADD_SYM(unk, unk_len);
#undef ADD_SYM
  /* merge by rank */
  hitem *h = m->heap;
  size_t nh = 0;
  uint32_t rank, merged;
  for (size_t i = 0; i + 1 < ns; i++)
    if (merges_get(&md->merges, sy[i].id, sy[i + 1].id, &rank, &merged))
      hpush(h, &nh, (hitem){rank, (uint32_t)i, merged});
  while (nh) {
    hitem top = hpop(h, &nh);
    symbol *a = &sy[top.pos];
    if (a->len == 0 || a->next < 0) continue;
    symbol right = sy[a->next];
    uint32_t r2, m2;
    if (!merges_get(&md->merges, a->id, right.id, &r2, &m2) || m2 != top.merged) continue;
    a->id = top.merged;
    a->len += right.len;
    sy[a->next].len = 0;
    a->next = right.next;
    if (right.next >= 0 && (size_t)right.next < ns) sy[right.next].prev = (int32_t)top.pos;
    if (a->prev >= 0 && merges_get(&md->merges, sy[a->prev].id, a->id, &rank, &merged))
      hpush(h, &nh, (hitem){rank, (uint32_t)a->prev, merged});
    if (a->next >= 0 && merges_get(&md->merges, a->id, sy[a->next].id, &rank, &merged))
      hpush(h, &nh, (hitem){rank, top.pos, merged});
  }
  size_t off = 0;
  for (size_t i = 0; i < ns; i++) {
    if (!sy[i].len) continue;
    if ((st = push_bytes(m, w, n, (int32_t)sy[i].id, off, off + sy[i].len, word, out))) return st;
    off += sy[i].len;
  }
  return BERTCL_OK;
}
