/* UTF-8 decoding, the character classes of the Rust tokenizers, and the normalizers that map
 * characters one to one or drop them (BertNormalizer, Lowercase, StripAccents, Strip, Nmt,
 * Replace, Prepend, the ByteLevel byte map) with the alignments NormalizedString gives them.
 *
 * The character sets are those of Hugging Face's Rust tokenizer, not of the current Unicode:
 * it takes categories from the `unicode_categories` crate (old tables), so for example U+061D
 * (Po since Unicode 14) is not punctuation there and many recent Mn marks are not stripped.
 * unicode_tables.h is generated from the installed `tokenizers` by gen_unicode_tables.py;
 * NFD and lowercase come from utf8proc with the few differences listed in that header.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_tables.h"

enum {
  CL_REMOVE = 1,    /* dropped by clean_text */
  CL_SPACE = 2,     /* whitespace */
  CL_PUNCT = 4,     /* isolated by the pre-tokenizer */
  CL_MN = 8,        /* nonspacing mark, dropped when stripping accents */
  CL_CHINESE = 16,  /* CJK ideograph: surrounded by spaces */
  CL_NFD_KEEP = 32, /* not decomposed */
  CL_CCC_ZERO = 64, /* combining class 0 for the Rust NFD */
  CL_WORD = 128     /* regex \w */
};
enum {
  CL2_NUMERIC = 1,  /* char::is_numeric */
  CL2_COMBINING = 2 /* is_combining_mark (StripAccents) */
};

#define NRANGES(t) (sizeof(t) / sizeof(t[0]))

static uint8_t bmp_class[0x10000];
static uint8_t bmp_class2[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < r[mid][0])
      hi = mid;
    else if (cp > r[mid][1])
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

/* Rust tokenizers' is_chinese_char (bert.rs). */
static int is_chinese(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static void fill_ranges(uint8_t *cls, const uint32_t (*r)[2], size_t n, uint8_t flag) {
  for (size_t i = 0; i < n; i++)
    for (uint32_t cp = r[i][0]; cp <= r[i][1] && cp < 0x10000; cp++) cls[cp] |= flag;
}

static void bmp_init(void) {
  fill_ranges(bmp_class, bc_tok_remove, NRANGES(bc_tok_remove), CL_REMOVE);
  fill_ranges(bmp_class, bc_tok_space, NRANGES(bc_tok_space), CL_SPACE);
  fill_ranges(bmp_class, bc_tok_punct, NRANGES(bc_tok_punct), CL_PUNCT);
  fill_ranges(bmp_class, bc_tok_mn, NRANGES(bc_tok_mn), CL_MN);
  fill_ranges(bmp_class, bc_tok_nfd_keep, NRANGES(bc_tok_nfd_keep), CL_NFD_KEEP);
  fill_ranges(bmp_class, bc_tok_ccc_zero, NRANGES(bc_tok_ccc_zero), CL_CCC_ZERO);
  fill_ranges(bmp_class, bc_tok_word, NRANGES(bc_tok_word), CL_WORD);
  fill_ranges(bmp_class2, bc_tok_numeric, NRANGES(bc_tok_numeric), CL2_NUMERIC);
  fill_ranges(bmp_class2, bc_tok_combining, NRANGES(bc_tok_combining), CL2_COMBINING);
  for (uint32_t cp = 0; cp < 0x10000; cp++)
    if (is_chinese(cp)) bmp_class[cp] |= CL_CHINESE;
}

static unsigned char_class(uint32_t cp) {
  if (cp < 0x10000) return bmp_class[cp];
  unsigned c = 0;
  if (in_ranges(bc_tok_remove, NRANGES(bc_tok_remove), cp)) c |= CL_REMOVE;
  if (in_ranges(bc_tok_space, NRANGES(bc_tok_space), cp)) c |= CL_SPACE;
  if (in_ranges(bc_tok_punct, NRANGES(bc_tok_punct), cp)) c |= CL_PUNCT;
  if (in_ranges(bc_tok_mn, NRANGES(bc_tok_mn), cp)) c |= CL_MN;
  if (in_ranges(bc_tok_nfd_keep, NRANGES(bc_tok_nfd_keep), cp)) c |= CL_NFD_KEEP;
  if (in_ranges(bc_tok_ccc_zero, NRANGES(bc_tok_ccc_zero), cp)) c |= CL_CCC_ZERO;
  if (in_ranges(bc_tok_word, NRANGES(bc_tok_word), cp)) c |= CL_WORD;
  if (is_chinese(cp)) c |= CL_CHINESE;
  return c;
}

static unsigned char_class2(uint32_t cp) {
  if (cp < 0x10000) return bmp_class2[cp];
  unsigned c = 0;
  if (in_ranges(bc_tok_numeric, NRANGES(bc_tok_numeric), cp)) c |= CL2_NUMERIC;
  if (in_ranges(bc_tok_combining, NRANGES(bc_tok_combining), cp)) c |= CL2_COMBINING;
  return c;
}

int bc_tok_is_space(uint32_t cp) {
  pthread_once(&bmp_once, bmp_init);
  return (char_class(cp) & CL_SPACE) != 0;
}

int bc_tok_is_punct(uint32_t cp) {
  pthread_once(&bmp_once, bmp_init);
  return (char_class(cp) & CL_PUNCT) != 0;
}

int bc_tok_is_word(uint32_t cp) {
  pthread_once(&bmp_once, bmp_init);
  return (char_class(cp) & CL_WORD) != 0;
}

int bc_tok_is_numeric(uint32_t cp) {
  pthread_once(&bmp_once, bmp_init);
  return (char_class2(cp) & CL2_NUMERIC) != 0;
}

size_t bc_tok_utf8_put(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

size_t bc_tok_utf8_decode(const char *str, size_t len, uint32_t *cps, size_t *replaced) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, n = 0, bad = 0;
  while (i < len) {
    unsigned b = s[i];
    if (b < 0x80) {
      cps[n++] = b;
      i++;
      continue;
    }
    unsigned need, lo = 0x80, hi = 0xBF;
    uint32_t cp;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      cp = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      cp = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      cps[n++] = 0xFFFD;
      bad++;
      i++;
      continue;
    }
    size_t j = i + 1;
    unsigned k = 0;
    while (k < need && j < len) {
      unsigned c = s[j];
      unsigned l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
      if (c < l || c > h) break;
      cp = (cp << 6) | (c & 0x3F);
      j++;
      k++;
    }
    if (k == need) {
      cps[n++] = cp;
    } else {
      /* the maximal subpart s[i..j) is replaced by one U+FFFD, as Python does */
      cps[n++] = 0xFFFD;
      bad++;
    }
    i = j;
  }
  if (replaced) *replaced = bad;
  return n;
}


/* ---- buffers ---- */

int bc_tok_nbuf_grow(bc_tok_nbuf *b, size_t extra) {
  if (b->n + extra <= b->cap) return BERTCL_OK;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + extra) {
    if (cap > ((size_t)-1) / 2 / sizeof(bc_tok_nchar)) return BERTCL_ERR_OVERFLOW;
    cap *= 2;
  }
  bc_tok_nchar *v = realloc(b->v, cap * sizeof *v);
  if (!v) return BERTCL_ERR_NOMEM;
  b->v = v;
  b->cap = cap;
  return BERTCL_OK;
}

int bc_tok_changes_push(bc_tok_changes *c, uint32_t cp, int32_t change) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    bc_tok_change *v = realloc(c->v, cap * sizeof *v);
    if (!v) return BERTCL_ERR_NOMEM;
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = (bc_tok_change){cp, change};
  return BERTCL_OK;
}

void bc_tok_nscratch_free(bc_tok_nscratch *s) {
  free(s->tmp.v);
  free(s->ch.v);
  free(s->u32);
  free(s->bytes);
  free(s->matches);
  bc_tok_rematch_free(&s->rm);
  memset(s, 0, sizeof *s);
}

static void swap_buf(bc_tok_nbuf *a, bc_tok_nbuf *b) {
  bc_tok_nbuf t = *a;
  *a = *b;
  *b = t;
}

/* NormalizedString::transform_range over the whole string, in characters: a character with
 * change <= 0 takes the alignment of the next old character and consumes it (and -change more);
 * an inserted one (change > 0) takes the alignment of the last consumed character, or the
 * piece's start when none was consumed yet. */
int bc_tok_transform(bc_tok_nbuf *b, const bc_tok_changes *ch, size_t initial_offset,
                     uint32_t shift, bc_tok_nbuf *tmp) {
  tmp->n = 0;
  int st = bc_tok_nbuf_reserve(tmp, ch->n);
  if (st) return st;
  size_t k = initial_offset, n = b->n;
  for (size_t i = 0; i < ch->n; i++) {
    const bc_tok_change *c = &ch->v[i];
    uint32_t a0, a1;
    if (c->change > 0) {
      if (k == 0) {
        a0 = a1 = shift;
      } else {
        const bc_tok_nchar *p = &b->v[k - 1 < n ? k - 1 : n - 1];
        a0 = p->a0;
        a1 = p->a1;
      }
    } else {
      /* Rust indexes past the end only for malformed transformations (it would panic) */
      const bc_tok_nchar *p = n ? &b->v[k < n ? k : n - 1] : NULL;
      a0 = p ? p->a0 : shift;
      a1 = p ? p->a1 : shift;
      k += 1 + (size_t)(-(int64_t)c->change);
    }
    tmp->v[tmp->n++] = (bc_tok_nchar){c->cp, a0, a1};
  }
  swap_buf(b, tmp);
  return BERTCL_OK;
}

uint32_t bc_tok_lower(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  size_t lo = 0, hi = NRANGES(bc_tok_lower_exc);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < bc_tok_lower_exc[mid][0])
      hi = mid;
    else if (cp > bc_tok_lower_exc[mid][0])
      lo = mid + 1;
    else
      return bc_tok_lower_exc[mid][1];
  }
  return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

/* While decomposing, bit 31 of a0 marks a character that a decomposition added after its
 * first character ("change" +1 in tokenizers' NormalizedString::transform). */
#define NFD_ADDED 0x80000000u

int bc_tok_ccc(uint32_t cp) {
  pthread_once(&bmp_once, bmp_init);
  if (cp < 0x300 || (char_class(cp) & CL_CCC_ZERO)) return 0;
  return utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

/* NFD canonical ordering of v[0..n), with the alignments tokenizers gives: its NFD iterator
 * sorts (char, change) pairs by combining class and NormalizedString::transform then aligns
 * positionally: a change-0 character takes the next original character's alignment, an added
 * one the alignment of the last original character taken. So a reordered mark takes the
 * position, not its own source. al: scratch of 2n entries. */
static void canonical_order(bc_tok_nchar *v, size_t n, uint32_t *al) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!(v[i].a0 & NFD_ADDED)) { /* original characters, in order */
      al[2 * k] = v[i].a0;
      al[2 * k + 1] = v[i].a1;
      k++;
    }
  size_t nold = k;
  /* stable insertion sort of each run of non-starters; the change flag moves with the char */
  for (size_t i = 1; i < n; i++) {
    int ci = bc_tok_ccc(v[i].cp);
    if (ci == 0) continue;
    size_t j = i;
    while (j > 0) {
      int cj = bc_tok_ccc(v[j - 1].cp);
      if (cj == 0 || cj <= ci) break;
      bc_tok_nchar t = v[j - 1];
      v[j - 1] = v[j];
      v[j] = t;
      j--;
    }
  }
  k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t src;
    if (!(v[i].a0 & NFD_ADDED))
      src = k++ < nold ? k - 1 : nold - 1;
    else
      src = k > 0 ? (k - 1 < nold ? k - 1 : nold - 1) : 0;
    v[i].a0 = al[2 * src] | (v[i].a0 & NFD_ADDED);
    v[i].a1 = al[2 * src + 1];
  }
}

static int u32_reserve(bc_tok_nscratch *s, size_t n) {
  if (n <= s->u32_cap) return BERTCL_OK;
  size_t cap = s->u32_cap ? s->u32_cap : 256;
  while (cap < n) cap *= 2;
  uint32_t *p = realloc(s->u32, cap * sizeof *p);
  if (!p) return BERTCL_ERR_NOMEM;
  s->u32 = p;
  s->u32_cap = cap;
  return BERTCL_OK;
}

/* BertNormalizer: clean_text (drop controls, map whitespace to ' '), CJK spacing, strip accents
 * (NFD, drop Mn), lowercase, in one pass over b. */
static inline __attribute__((always_inline)) int
bert_core(const bc_tok_norm *nz, bc_tok_nbuf *b, const uint32_t *cps, size_t ncps, uint32_t shift,
          bc_tok_nscratch *s) {
  bc_tok_nbuf *out = &s->tmp;
  out->n = 0;
  int marks = 0, decomposed = 0;
  uint32_t prev0 = shift, prev1 = shift; /* alignment of the last character kept */
  size_t n = cps ? ncps : b->n;
  for (size_t i = 0; i < n; i++) {
    /* worst case: 3 (CJK) or a decomposition of <= 16 chars plus one from U+0130 */
    int st = bc_tok_nbuf_reserve(out, 20);
    if (st) return st;
    uint32_t cp, a0, a1;
    if (cps) {
      cp = cps[i];
      a0 = shift + (uint32_t)i;
      a1 = a0 + 1;
    } else {
      cp = b->v[i].cp;
      a0 = b->v[i].a0;
      a1 = b->v[i].a1;
    }
    unsigned cl = char_class(cp);
    if (nz->clean_text) {
      if (cp == 0 || cp == 0xFFFD || (cl & CL_REMOVE)) continue;
      if (cl & CL_SPACE) {
        out->v[out->n++] = (bc_tok_nchar){' ', a0, a1};
        prev0 = a0;
        prev1 = a1;
        continue;
      }
    }
    int cjk = nz->handle_chinese && (cl & CL_CHINESE);
    if (cjk) {
      /* ' ' c ' ': the first space is inserted after the previous character (its alignment),
       * the second after c. c still goes through NFD (compatibility ideographs U+F900..
       * decompose) and lowercase. */
      out->v[out->n++] = (bc_tok_nchar){' ', prev0, prev1};
    }
    if (nz->strip_accents && cp >= 0x80) {
      /* NFD now; marks are dropped and case mapped after canonical ordering, below */
      decomposed = 1;
      utf8proc_int32_t dec[16];
      int last = 0;
      utf8proc_ssize_t nd =
          (cl & CL_NFD_KEEP)
              ? 0
              : utf8proc_decompose_char((utf8proc_int32_t)cp, dec, 16, UTF8PROC_DECOMPOSE, &last);
      if (nd <= 0 || nd > 16) {
        dec[0] = (utf8proc_int32_t)cp;
        nd = 1;
      }
      for (utf8proc_ssize_t k = 0; k < nd; k++) {
        uint32_t d = (uint32_t)dec[k];
        marks |= bc_tok_ccc(d) != 0;
        out->v[out->n++] = (bc_tok_nchar){d, k ? a0 | NFD_ADDED : a0, a1};
      }
    } else if (nz->strip_accents || !nz->lowercase) {
      out->v[out->n++] = (bc_tok_nchar){cp, a0, a1};
    } else if (cp == 0x130) {
      /* Rust's char::to_lowercase: U+0130 -> "i\u0307" (both aligned to the original) */
      out->v[out->n++] = (bc_tok_nchar){'i', a0, a1};
      out->v[out->n++] = (bc_tok_nchar){0x307, a0, a1};
    } else {
      out->v[out->n++] = (bc_tok_nchar){bc_tok_lower(cp), a0, a1};
    }
    if (cjk) {
      out->v[out->n++] = (bc_tok_nchar){' ', a0, a1};
      /* with NFD the spaces are characters of the string being decomposed: mark them as
       * originals (already done: change 0, own alignment) */
    }
    prev0 = a0;
    prev1 = a1;
  }
  if (!decomposed) {
    if (nz->strip_accents && nz->lowercase)
      for (size_t i = 0; i < out->n; i++)
        if (out->v[i].cp >= 'A' && out->v[i].cp <= 'Z') out->v[i].cp += 32;
    swap_buf(b, out);
    return BERTCL_OK;
  }
  if (marks) {
    int st = u32_reserve(s, 2 * out->n);
    if (st) return st;
    canonical_order(out->v, out->n, s->u32);
  }
  /* drop nonspacing marks, then lowercase (cannot grow: U+0130 decomposed to I + U+0307) */
  size_t w = 0, end = out->n;
  for (size_t i = 0; i < end; i++) {
    bc_tok_nchar c = out->v[i];
    c.a0 &= ~NFD_ADDED;
    if (c.cp >= 0x300 && (char_class(c.cp) & CL_MN)) continue;
    if (nz->lowercase) c.cp = bc_tok_lower(c.cp);
    out->v[w++] = c;
  }
  out->n = w;
  swap_buf(b, out);
  return BERTCL_OK;
}

int bc_tok_norm_bert(const bc_tok_norm *nz, bc_tok_nbuf *b, const uint32_t *cps, size_t ncps,
                     uint32_t shift, bc_tok_nscratch *s) {
  pthread_once(&bmp_once, bmp_init);
  /* two copies of the loop: reading code points, or normalized characters */
  if (cps) return bert_core(nz, b, cps, ncps, shift, s);
  return bert_core(nz, b, NULL, 0, shift, s);
}

/* Lowercase: char::to_lowercase (U+0130 gives two characters with its alignment). */
static int norm_lowercase(bc_tok_nbuf *b, bc_tok_nscratch *s) {
  size_t extra = 0;
  for (size_t i = 0; i < b->n; i++) extra += b->v[i].cp == 0x130;
  if (!extra) {
    for (size_t i = 0; i < b->n; i++) b->v[i].cp = bc_tok_lower(b->v[i].cp);
    return BERTCL_OK;
  }
  bc_tok_nbuf *out = &s->tmp;
  out->n = 0;
  int st = bc_tok_nbuf_reserve(out, b->n + extra);
  if (st) return st;
  for (size_t i = 0; i < b->n; i++) {
    bc_tok_nchar c = b->v[i];
    if (c.cp == 0x130) {
      out->v[out->n++] = (bc_tok_nchar){'i', c.a0, c.a1};
      c.cp = 0x307;
    } else {
      c.cp = bc_tok_lower(c.cp);
    }
    out->v[out->n++] = c;
  }
  swap_buf(b, out);
  return BERTCL_OK;
}

/* Removing characters keeps the alignment of the others (filter / lrstrip). */
static void norm_strip_accents(bc_tok_nbuf *b) {
  pthread_once(&bmp_once, bmp_init);
  size_t w = 0;
  for (size_t i = 0; i < b->n; i++)
    if (!(char_class2(b->v[i].cp) & CL2_COMBINING)) b->v[w++] = b->v[i];
  b->n = w;
}

static void norm_strip(bc_tok_nbuf *b, int left, int right) {
  size_t lo = 0, hi = b->n;
  if (left)
    while (lo < hi && bc_tok_is_space(b->v[lo].cp)) lo++;
  if (right)
    while (hi > lo && bc_tok_is_space(b->v[hi - 1].cp)) hi--;
  if (lo) memmove(b->v, b->v + lo, (hi - lo) * sizeof *b->v);
  b->n = hi - lo;
}

/* Nmt: drops some controls, maps others to ' ' (normalizers/unicode.rs). */
static void norm_nmt(bc_tok_nbuf *b) {
  size_t w = 0;
  for (size_t i = 0; i < b->n; i++) {
    bc_tok_nchar c = b->v[i];
    uint32_t cp = c.cp;
    if ((cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || cp == 0x7F ||
        cp == 0x8F || cp == 0x9F)
      continue;
    if (cp == 0x9 || cp == 0xA || cp == 0xC || cp == 0xD || cp == 0x1680 ||
        (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 || cp == 0x2581 ||
        cp == 0xFEFF || cp == 0xFFFD)
      c.cp = ' ';
    b->v[w++] = c;
  }
  b->n = w;
}

int bc_tok_to_utf8(const bc_tok_nchar *chars, size_t n, bc_tok_nscratch *s, size_t *nbytes) {
  if (n * 4 + 1 > s->bytes_cap) {
    size_t cap = s->bytes_cap ? s->bytes_cap : 1024;
    while (cap < n * 4 + 1) cap *= 2;
    char *p = realloc(s->bytes, cap);
    if (!p) return BERTCL_ERR_NOMEM;
    s->bytes = p;
    s->bytes_cap = cap;
  }
  int st = u32_reserve(s, n + 1);
  if (st) return st;
  size_t nb = 0;
  for (size_t i = 0; i < n; i++) {
    s->u32[i] = (uint32_t)nb;
    nb += bc_tok_utf8_put(chars[i].cp, s->bytes + nb);
  }
  s->u32[n] = (uint32_t)nb;
  s->bytes[nb] = '\0';
  *nbytes = nb;
  return BERTCL_OK;
}

/* Index of the character containing byte pos (bpos: n + 1 character starts). */
static size_t char_at(const uint32_t *bpos, size_t n, uint32_t pos) {
  size_t lo = 0, hi = n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (bpos[mid] <= pos)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

int bc_tok_norm_replace(const bc_tok_regex *re, const uint32_t *text, size_t text_len,
                        bc_tok_nbuf *b, uint32_t shift, bc_tok_nscratch *s) {
  if (!b->n) return BERTCL_OK;
  size_t nb = 0, nm = 0;
  int st = bc_tok_to_utf8(b->v, b->n, s, &nb);
  if (!st) st = bc_tok_regex_find_all(re, &s->rm, s->bytes, nb, &s->matches, &nm, &s->matches_cap);
  if (st) return st;
  if (!nm) return BERTCL_OK;
  bc_tok_nbuf *out = &s->tmp;
  out->n = 0;
  size_t last = 0;
  for (size_t m = 0; m < nm; m++) {
    size_t ms = char_at(s->u32, b->n, s->matches[2 * m]);
    size_t me = s->matches[2 * m + 1] >= nb ? b->n : char_at(s->u32, b->n, s->matches[2 * m + 1]);
    st = bc_tok_nbuf_reserve(out, (ms - last) + text_len);
    if (st) return st;
    memcpy(out->v + out->n, b->v + last, (ms - last) * sizeof *b->v);
    out->n += ms - last;
    /* inserted characters share the alignment of the match's last character */
    uint32_t a0 = me ? b->v[me - 1].a0 : shift, a1 = me ? b->v[me - 1].a1 : shift;
    for (size_t k = 0; k < text_len; k++) out->v[out->n++] = (bc_tok_nchar){text[k], a0, a1};
    last = me;
  }
  st = bc_tok_nbuf_reserve(out, b->n - last);
  if (st) return st;
  memcpy(out->v + out->n, b->v + last, (b->n - last) * sizeof *b->v);
  out->n += b->n - last;
  swap_buf(b, out);
  return BERTCL_OK;
}

int bc_tok_norm_prepend(const uint32_t *text, size_t text_len, bc_tok_nbuf *b, uint32_t shift,
                        bc_tok_nscratch *s) {
  (void)shift;
  if (!b->n || !text_len) return BERTCL_OK;
  int st = bc_tok_nbuf_reserve(b, text_len);
  if (st) return st;
  (void)s;
  memmove(b->v + text_len, b->v, b->n * sizeof *b->v);
  /* the prepended characters and the first one all take the first one's alignment */
  for (size_t k = 0; k < text_len; k++)
    b->v[k] = (bc_tok_nchar){text[k], b->v[text_len].a0, b->v[text_len].a1};
  b->n += text_len;
  return BERTCL_OK;
}

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100.. */
const uint16_t bc_tok_byte_char[256] = {
    0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108, 0x109, 0x10A, 0x10B, 0x10C,
    0x10D, 0x10E, 0x10F, 0x110, 0x111, 0x112, 0x113, 0x114, 0x115, 0x116, 0x117, 0x118, 0x119,
    0x11A, 0x11B, 0x11C, 0x11D, 0x11E, 0x11F, 0x120, '!',   '"',   '#',   '$',   '%',   '&',
    '\'',  '(',   ')',   '*',   '+',   ',',   '-',   '.',   '/',   '0',   '1',   '2',   '3',
    '4',   '5',   '6',   '7',   '8',   '9',   ':',   ';',   '<',   '=',   '>',   '?',   '@',
    'A',   'B',   'C',   'D',   'E',   'F',   'G',   'H',   'I',   'J',   'K',   'L',   'M',
    'N',   'O',   'P',   'Q',   'R',   'S',   'T',   'U',   'V',   'W',   'X',   'Y',   'Z',
    '[',   '\\',  ']',   '^',   '_',   '`',   'a',   'b',   'c',   'd',   'e',   'f',   'g',
    'h',   'i',   'j',   'k',   'l',   'm',   'n',   'o',   'p',   'q',   'r',   's',   't',
    'u',   'v',   'w',   'x',   'y',   'z',   '{',   '|',   '}',   '~',   0x121, 0x122, 0x123,
    0x124, 0x125, 0x126, 0x127, 0x128, 0x129, 0x12A, 0x12B, 0x12C, 0x12D, 0x12E, 0x12F, 0x130,
    0x131, 0x132, 0x133, 0x134, 0x135, 0x136, 0x137, 0x138, 0x139, 0x13A, 0x13B, 0x13C, 0x13D,
    0x13E, 0x13F, 0x140, 0x141, 0x142, 0xA1,  0xA2,  0xA3,  0xA4,  0xA5,  0xA6,  0xA7,  0xA8,
    0xA9,  0xAA,  0xAB,  0xAC,  0x143, 0xAE,  0xAF,  0xB0,  0xB1,  0xB2,  0xB3,  0xB4,  0xB5,
    0xB6,  0xB7,  0xB8,  0xB9,  0xBA,  0xBB,  0xBC,  0xBD,  0xBE,  0xBF,  0xC0,  0xC1,  0xC2,
    0xC3,  0xC4,  0xC5,  0xC6,  0xC7,  0xC8,  0xC9,  0xCA,  0xCB,  0xCC,  0xCD,  0xCE,  0xCF,
    0xD0,  0xD1,  0xD2,  0xD3,  0xD4,  0xD5,  0xD6,  0xD7,  0xD8,  0xD9,  0xDA,  0xDB,  0xDC,
    0xDD,  0xDE,  0xDF,  0xE0,  0xE1,  0xE2,  0xE3,  0xE4,  0xE5,  0xE6,  0xE7,  0xE8,  0xE9,
    0xEA,  0xEB,  0xEC,  0xED,  0xEE,  0xEF,  0xF0,  0xF1,  0xF2,  0xF3,  0xF4,  0xF5,  0xF6,
    0xF7,  0xF8,  0xF9,  0xFA,  0xFB,  0xFC,  0xFD,  0xFE,  0xFF,
};

int bc_tok_bytelevel_map(bc_tok_nbuf *b, uint32_t shift, bc_tok_nscratch *s) {
  (void)shift;
  size_t extra = 0;
  for (size_t i = 0; i < b->n; i++) {
    uint32_t cp = b->v[i].cp;
    extra += cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
  }
  bc_tok_nbuf *out = &s->tmp;
  out->n = 0;
  int st = bc_tok_nbuf_reserve(out, b->n + extra);
  if (st) return st;
  for (size_t i = 0; i < b->n; i++) {
    char u[4];
    size_t k = bc_tok_utf8_put(b->v[i].cp, u);
    /* every byte's character keeps the alignment of the character it came from */
    for (size_t j = 0; j < k; j++)
      out->v[out->n++] = (bc_tok_nchar){bc_tok_byte_char[(unsigned char)u[j]], b->v[i].a0,
                                        b->v[i].a1};
  }
  swap_buf(b, out);
  return BERTCL_OK;
}

int bc_tok_normalize_cps(const bertcl_tokenizer *tok, const uint32_t *cps, size_t n,
                         uint32_t shift, bc_tok_nbuf *b, bc_tok_nscratch *s) {
  b->n = 0;
  size_t first = 0;
  int st;
  if (tok->n_norms && tok->norms[0].kind == BC_NORM_BERT) {
    /* the BERT cleaner reads the code points directly */
    if ((st = bc_tok_norm_bert(&tok->norms[0], b, cps, n, shift, s))) return st;
    first = 1;
  } else {
    if ((st = bc_tok_nbuf_reserve(b, n))) return st;
    for (size_t i = 0; i < n; i++)
      b->v[i] = (bc_tok_nchar){cps[i], shift + (uint32_t)i, shift + (uint32_t)i + 1};
    b->n = n;
  }
  return bc_tok_normalize_from(tok, first, b, shift, s);
}

int bc_tok_normalize(const bertcl_tokenizer *tok, bc_tok_nbuf *b, uint32_t shift,
                     bc_tok_nscratch *s) {
  return bc_tok_normalize_from(tok, 0, b, shift, s);
}

int bc_tok_normalize_from(const bertcl_tokenizer *tok, size_t from, bc_tok_nbuf *b,
                          uint32_t shift, bc_tok_nscratch *s) {
  for (size_t i = from; i < tok->n_norms && b->n; i++) {
    const bc_tok_norm *nz = &tok->norms[i];
    int st = BERTCL_OK;
    switch (nz->kind) {
    case BC_NORM_BERT: st = bc_tok_norm_bert(nz, b, NULL, 0, shift, s); break;
    case BC_NORM_NFD:
    case BC_NORM_NFKD:
    case BC_NORM_NFC:
    case BC_NORM_NFKC: st = bc_tok_norm_nfx(nz->kind, b, shift, s); break;
    case BC_NORM_LOWERCASE: st = norm_lowercase(b, s); break;
    case BC_NORM_STRIP_ACCENTS: norm_strip_accents(b); break;
    case BC_NORM_STRIP: norm_strip(b, nz->left, nz->right); break;
    case BC_NORM_NMT: norm_nmt(b); break;
    case BC_NORM_REPLACE: st = bc_tok_norm_replace(nz->re, nz->text, nz->text_len, b, shift, s); break;
    case BC_NORM_PREPEND: st = bc_tok_norm_prepend(nz->text, nz->text_len, b, shift, s); break;
    case BC_NORM_PRECOMPILED: st = bc_tok_norm_precompiled(nz->pc, b, shift, s); break;
    case BC_NORM_BYTELEVEL: st = bc_tok_bytelevel_map(b, shift, s); break;
    default: st = BERTCL_ERR_INTERNAL;
    }
    if (st) return st;
  }
  return BERTCL_OK;
}

/* ---- NFD / NFKD / NFC / NFKC as the unicode-normalization-alignments crate does them ----
 * Decomposition: each character's full decomposition (first character change 0, the others
 * change 1), then every run of non-starters sorted stably by combining class (decompose.rs).
 * Composition: recompose.rs's state machine over that stream; a composite gets the change
 * first + second - 1. The result goes through NormalizedString::transform. Character data:
 * utf8proc, corrected to the crate's Unicode 9 by the tables of unicode_tables.h. */

typedef struct {
  uint32_t cp;
  int32_t change;
  int ccc;
} dec_item;

static int cmp_dec_exc(const void *key, const void *elem) {
  const uint32_t *k = key, *e = elem;
  if (k[0] != e[0]) return k[0] < e[0] ? -1 : 1;
  return k[1] < e[1] ? -1 : k[1] > e[1];
}

/* Full decomposition of cp into out (<= 32); returns the count. */
static size_t decompose_one(uint32_t cp, int compat, uint32_t *out) {
  if (cp < 0xC0) {
    if (!compat || cp < 0xA0) {
      out[0] = cp;
      return 1;
    }
  }
  uint32_t key[2] = {cp, (uint32_t)compat};
  const uint32_t(*e)[4] =
      bsearch(key, bc_tok_dec_exc, NRANGES(bc_tok_dec_exc), sizeof bc_tok_dec_exc[0], cmp_dec_exc);
  if (e) {
    size_t n = (*e)[2] > 32 ? 32 : (*e)[2];
    memcpy(out, bc_tok_dec_seq + (*e)[3], n * sizeof *out);
    return n;
  }
  if (char_class(cp) & CL_NFD_KEEP) {
    out[0] = cp;
    return 1;
  }
  utf8proc_int32_t dec[32];
  int last = 0;
  utf8proc_ssize_t nd = utf8proc_decompose_char(
      (utf8proc_int32_t)cp, dec, 32, UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0), &last);
  if (nd <= 0 || nd > 32) {
    out[0] = cp;
    return 1;
  }
  for (utf8proc_ssize_t k = 0; k < nd; k++) out[k] = (uint32_t)dec[k];
  return (size_t)nd;
}

static int cmp_compose(const void *key, const void *elem) {
  const uint32_t *k = key, *e = elem;
  if (k[0] != e[0]) return k[0] < e[0] ? -1 : 1;
  return k[1] < e[1] ? -1 : k[1] > e[1];
}

/* Canonical composition of a + b, 0 if none. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
  enum { SB = 0xAC00, LB = 0x1100, VB = 0x1161, TB = 0x11A7, LC = 19, VC = 21, TC = 28 };
  if (a >= LB && a < LB + LC && b >= VB && b < VB + VC)
    return SB + ((a - LB) * VC + (b - VB)) * TC;
  if (a >= SB && a < SB + LC * VC * TC && (a - SB) % TC == 0 && b > TB && b < TB + TC)
    return a + (b - TB);
  uint32_t key[2] = {a, b};
  const uint32_t(*e)[3] =
      bsearch(key, bc_tok_compose, NRANGES(bc_tok_compose), sizeof bc_tok_compose[0], cmp_compose);
  return e ? (*e)[2] : 0;
}

int bc_tok_norm_nfx(int kind, bc_tok_nbuf *b, uint32_t shift, bc_tok_nscratch *s) {
  pthread_once(&bmp_once, bmp_init);
  int compat = kind == BC_NORM_NFKD || kind == BC_NORM_NFKC;
  int compose = kind == BC_NORM_NFC || kind == BC_NORM_NFKC;
  /* decomposed stream in s->u32 as (cp, change, ccc) triples */
  size_t n = 0;
  for (size_t i = 0; i < b->n; i++) {
    uint32_t d[32];
    size_t nd = decompose_one(b->v[i].cp, compat, d);
    int st = u32_reserve(s, 3 * (n + nd));
    if (st) return st;
    for (size_t k = 0; k < nd; k++, n++) {
      s->u32[3 * n] = d[k];
      s->u32[3 * n + 1] = k ? 1 : 0;
      s->u32[3 * n + 2] = (uint32_t)bc_tok_ccc(d[k]);
    }
  }
  dec_item *it = (dec_item *)(void *)s->u32; /* same layout: 3 x 32 bits */
  _Static_assert(sizeof(dec_item) == 3 * sizeof(uint32_t), "dec_item layout");
  /* stable insertion sort of every run of non-starters */
  for (size_t i = 1; i < n; i++) {
    if (it[i].ccc == 0) continue;
    size_t j = i;
    while (j > 0 && it[j - 1].ccc != 0 && it[j - 1].ccc > it[j].ccc) {
      dec_item t = it[j - 1];
      it[j - 1] = it[j];
      it[j] = t;
      j--;
    }
  }
  bc_tok_changes *ch = &s->ch;
  ch->n = 0;
  int st = BERTCL_OK;
  if (!compose) {
    for (size_t i = 0; i < n && !st; i++) st = bc_tok_changes_push(ch, it[i].cp, it[i].change);
  } else {
    /* recompose.rs: composee, the blocked marks (buf: indices into it[]), last class */
    int have = 0, last_ccc = -1;
    dec_item k = {0, 0, 0};
    /* the blocked marks are a subsequence of it[]: their indices in a side array */
    size_t nbuf = 0, *bufi = NULL;
    if (n) {
      bufi = malloc(n * sizeof *bufi);
      if (!bufi) return BERTCL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n && !st; i++) {
      dec_item c = it[i];
      if (!have) {
        if (c.ccc != 0) {
          st = bc_tok_changes_push(ch, c.cp, c.change);
          continue;
        }
        k = c;
        have = 1;
        continue;
      }
      if (last_ccc < 0) {
        uint32_t r = compose_pair(k.cp, c.cp);
        if (r) {
          k.cp = r;
          k.change = k.change + c.change - 1;
          continue;
        }
        if (c.ccc == 0) {
          st = bc_tok_changes_push(ch, k.cp, k.change);
          k = c;
          continue;
        }
        bufi[nbuf++] = i;
        last_ccc = c.ccc;
        continue;
      }
      if (last_ccc >= c.ccc) {
        if (c.ccc == 0) {
          st = bc_tok_changes_push(ch, k.cp, k.change);
          for (size_t j = 0; j < nbuf && !st; j++)
            st = bc_tok_changes_push(ch, it[bufi[j]].cp, it[bufi[j]].change);
          nbuf = 0;
          k = c;
          last_ccc = -1;
          continue;
        }
        bufi[nbuf++] = i;
        last_ccc = c.ccc;
        continue;
      }
      uint32_t r = compose_pair(k.cp, c.cp);
      if (r) {
        k.cp = r;
        k.change = k.change + c.change - 1;
        continue;
      }
      bufi[nbuf++] = i;
      last_ccc = c.ccc;
    }
    if (!st && have) st = bc_tok_changes_push(ch, k.cp, k.change);
    for (size_t j = 0; j < nbuf && !st; j++)
      st = bc_tok_changes_push(ch, it[bufi[j]].cp, it[bufi[j]].change);
    free(bufi);
  }
  if (st) return st;
  return bc_tok_transform(b, ch, 0, shift, &s->tmp);
}
