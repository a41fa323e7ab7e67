/* Added tokens (tokenizer/added_vocabulary.rs): ids as AddedVocabulary::add_tokens gives them,
 * and the split of a text on them. Tokens with normalized=false are matched in the raw text,
 * the others (their content normalized by the tokenizer's normalizer) in each normalized piece.
 * Matching is leftmost-longest and non-overlapping (daachorse); a skipped match (a special token
 * under split_special_tokens, a single_word token inside a word) is not searched again. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static uint32_t hash_str(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

/* Index (in added_all) of the added token with content cps[0..len), or -1. */
static int32_t find_content(const bertcl_tokenizer *tok, const uint32_t *cps, size_t len) {
  size_t cap = tok->added_index_cap;
  if (!cap) return -1;
  uint32_t h = hash_str((const char *)cps, len * sizeof *cps);
  for (size_t j = h & (cap - 1);; j = (j + 1) & (cap - 1)) {
    int32_t s = tok->added_index[j];
    if (!s) return -1;
    const bc_tok_added *a = &tok->added_all[s - 1];
    if (a->len == len && memcmp(a->cps, cps, len * sizeof *cps) == 0) return s - 1;
  }
}

static int index_insert(bertcl_tokenizer *tok, size_t i) {
  if (2 * (tok->n_added + 1) + 16 > tok->added_index_cap) {
    size_t c = 64;
    while (c < 4 * tok->n_added + 32) c *= 2;
    int32_t *s = calloc(c, sizeof *s);
    if (!s) return BERTCL_ERR_NOMEM;
    free(tok->added_index);
    tok->added_index = s;
    tok->added_index_cap = c;
    for (size_t k = 0; k < tok->n_added; k++)
      if (k != i) index_insert(tok, k);
  }
  const bc_tok_added *a = &tok->added_all[i];
  uint32_t h = hash_str((const char *)a->cps, a->len * sizeof *a->cps);
  size_t cap = tok->added_index_cap, j = h & (cap - 1);
  while (tok->added_index[j]) j = (j + 1) & (cap - 1);
  tok->added_index[j] = (int32_t)i + 1;
  return BERTCL_OK;
}

int bc_tok_add_token(bertcl_tokenizer *tok, const char *content, int special, int normalized,
                     int lstrip, int rstrip, int single_word) {
  size_t clen = strlen(content);
  if (!clen) return BERTCL_OK;
  uint32_t *cps = malloc((clen + 1) * sizeof *cps);
  if (!cps) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  size_t len = bc_tok_utf8_decode(content, clen, cps, NULL);
  int32_t idx = find_content(tok, cps, len);
  if (idx >= 0) {
    /* the same content again: its properties are replaced, the id stays */
    bc_tok_added *a = &tok->added_all[idx];
    free(cps);
    a->special = (uint8_t)special;
    a->normalized = (uint8_t)normalized;
    a->lstrip = (uint8_t)lstrip;
    a->rstrip = (uint8_t)rstrip;
    a->single_word = (uint8_t)single_word;
    return BERTCL_OK;
  }
  int32_t id = bc_tok_map_get(tok, &tok->vocab, content, clen);
  if (id < 0) {
    if (tok->next_added_id >= BC_TOK_MAX_ID) {
      free(cps);
      return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "too many added tokens");
    }
    id = (int32_t)tok->next_added_id++;
  }
  bc_tok_added *v = realloc(tok->added_all, (tok->n_added + 1) * sizeof *v);
  if (!v) {
    free(cps);
    return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  }
  tok->added_all = v;
  v[tok->n_added++] = (bc_tok_added){cps,
                                     len,
                                     id,
                                     (uint8_t)special,
                                     (uint8_t)normalized,
                                     (uint8_t)lstrip,
                                     (uint8_t)rstrip,
                                     (uint8_t)single_word};
  if (index_insert(tok, tok->n_added - 1)) return bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory");
  /* the string of the id (a model id keeps its string: same content) */
  return bc_tok_set_id(tok, id, content, clen);
}

static int cmp_first(const void *a, const void *b) {
  const bc_tok_added *x = a, *y = b;
  return x->cps[0] < y->cps[0] ? -1 : x->cps[0] > y->cps[0];
}

static int set_build(bertcl_tokenizer *tok, bc_tok_addset *set, int normalized,
                     bc_tok_nscratch *s) {
  size_t n = 0;
  for (size_t i = 0; i < tok->n_added; i++) n += tok->added_all[i].normalized == normalized;
  memset(set, 0, sizeof *set);
  if (!n) return BERTCL_OK;
  set->v = calloc(n, sizeof *set->v);
  if (!set->v) return BERTCL_ERR_NOMEM;
  for (size_t i = 0; i < tok->n_added; i++) {
    const bc_tok_added *a = &tok->added_all[i];
    if (a->normalized != normalized) continue;
    bc_tok_added *d = &set->v[set->n];
    *d = *a;
    d->cps = NULL;
    if (normalized && tok->n_norms) {
      /* the pattern is the normalized content */
      bc_tok_nbuf b = {0};
      int st = bc_tok_nbuf_reserve(&b, a->len);
      if (st) return st;
      for (size_t k = 0; k < a->len; k++) b.v[k] = (bc_tok_nchar){a->cps[k], (uint32_t)k, (uint32_t)k + 1};
      b.n = a->len;
      st = bc_tok_normalize(tok, &b, 0, s);
      if (!st && b.n) {
        d->cps = malloc(b.n * sizeof *d->cps);
        if (!d->cps) st = BERTCL_ERR_NOMEM;
        for (size_t k = 0; k < b.n && d->cps; k++) d->cps[k] = b.v[k].cp;
        d->len = b.n;
      }
      free(b.v);
      if (st) return st;
      if (!d->cps) continue; /* normalizes to nothing: never matches */
    } else {
      d->cps = malloc(a->len * sizeof *d->cps);
      if (!d->cps) return BERTCL_ERR_NOMEM;
      memcpy(d->cps, a->cps, a->len * sizeof *d->cps);
    }
    set->n++;
  }
  qsort(set->v, set->n, sizeof *set->v, cmp_first);
  for (size_t i = 0; i < set->n; i++) {
    uint32_t c = set->v[i].cps[0];
    if (c < 128)
      set->first_ascii[c] = 1;
    else
      set->non_ascii_first = 1;
  }
  return BERTCL_OK;
}

void bc_tok_addset_free(bc_tok_addset *set) {
  for (size_t i = 0; i < set->n; i++) free(set->v[i].cps);
  free(set->v);
  memset(set, 0, sizeof *set);
}

int bc_tok_added_finish(bertcl_tokenizer *tok) {
  bc_tok_nscratch s = {0};
  int st = set_build(tok, &tok->added_raw, 0, &s);
  if (!st) st = set_build(tok, &tok->added_norm, 1, &s);
  bc_tok_nscratch_free(&s);
  if (st) return bc_fail(&tok->err, st, "added tokens: out of memory or bad normalizer");
  return BERTCL_OK;
}

static int push_match(bc_tok_amatch **out, size_t *n, size_t *cap, uint32_t s, uint32_t e,
                      int32_t id) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    bc_tok_amatch *p = realloc(*out, c * sizeof *p);
    if (!p) return BERTCL_ERR_NOMEM;
    *out = p;
    *cap = c;
  }
  (*out)[(*n)++] = (bc_tok_amatch){s, e, id};
  return BERTCL_OK;
}

#define CP(i) cps[(size_t)(i) * stride]

int bc_tok_added_find(const bc_tok_addset *set, const uint32_t *cps, size_t stride, size_t n,
                      int split_special, bc_tok_amatch **out, size_t *nout, size_t *cap) {
  *nout = 0;
  if (!set->n) return BERTCL_OK;
  size_t start_offset = 0, i = 0;
  while (i < n) {
    /* leftmost position where some token matches, longest token there */
    size_t p = i, best = 0;
    const bc_tok_added *hit = NULL;
    for (; p < n; p++) {
      uint32_t c = CP(p);
      if (c < 128 ? !set->first_ascii[c] : !set->non_ascii_first) continue;
      size_t lo = 0, hi = set->n;
      while (lo < hi) { /* first token whose first char is >= c */
        size_t mid = lo + (hi - lo) / 2;
        if (set->v[mid].cps[0] < c)
          lo = mid + 1;
        else
          hi = mid;
      }
      for (size_t k = lo; k < set->n && set->v[k].cps[0] == c; k++) {
        const bc_tok_added *a = &set->v[k];
        if (a->len <= best || a->len > n - p) continue;
        size_t j = 1;
        while (j < a->len && CP(p + j) == a->cps[j]) j++;
        if (j == a->len) {
          best = a->len;
          hit = a;
        }
      }
      if (hit) break;
    }
    if (!hit) break;
    size_t ms = p, me = p + best;
    i = me; /* the search goes on after this match, whether it is kept or not */
    if (split_special && hit->special) continue;
    if (hit->single_word) {
      int start_space = ms == 0 || !bc_tok_is_word(CP(ms - 1));
      int stop_space = me == n || !bc_tok_is_word(CP(me));
      if (!start_space || !stop_space) continue;
    }
    size_t s = ms, e = me;
    if (hit->lstrip) {
      size_t ns = ms;
      while (ns > 0 && bc_tok_is_space(CP(ns - 1))) ns--;
      s = ns > start_offset ? ns : start_offset;
    }
    if (hit->rstrip)
      while (e < n && bc_tok_is_space(CP(e))) e++;
    if (s < start_offset) s = start_offset; /* never overlaps the previous match */
    int st = push_match(out, nout, cap, (uint32_t)s, (uint32_t)e, hit->id);
    if (st) return st;
    start_offset = e;
  }
  return BERTCL_OK;
}
