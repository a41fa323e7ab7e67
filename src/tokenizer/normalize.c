/* UTF-8 decoding and BertNormalizer / BertPreTokenizer character classes.
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
  CL_CCC_ZERO = 64  /* combining class 0 for the Rust NFD */
};

#define NRANGES(t) (sizeof(t) / sizeof(t[0]))

static uint8_t bmp_class[0x10000];
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

static void fill_ranges(const uint32_t (*r)[2], size_t n, uint8_t flag) {
  for (size_t i = 0; i < n; i++)
    for (uint32_t cp = r[i][0]; cp <= r[i][1] && cp < 0x10000; cp++) bmp_class[cp] |= flag;
}

static void bmp_init(void) {
  fill_ranges(bc_tok_remove, NRANGES(bc_tok_remove), CL_REMOVE);
  fill_ranges(bc_tok_space, NRANGES(bc_tok_space), CL_SPACE);
  fill_ranges(bc_tok_punct, NRANGES(bc_tok_punct), CL_PUNCT);
  fill_ranges(bc_tok_mn, NRANGES(bc_tok_mn), CL_MN);
  fill_ranges(bc_tok_nfd_keep, NRANGES(bc_tok_nfd_keep), CL_NFD_KEEP);
  fill_ranges(bc_tok_ccc_zero, NRANGES(bc_tok_ccc_zero), CL_CCC_ZERO);
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
  if (is_chinese(cp)) c |= CL_CHINESE;
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

static int reserve(bc_tok_nbuf *out, size_t extra) {
  if (out->n + extra <= out->cap) return BERTCL_OK;
  size_t cap = out->cap ? out->cap : 256;
  while (cap < out->n + extra) {
    if (cap > ((size_t)-1) / 2 / sizeof(bc_tok_nchar)) return BERTCL_ERR_OVERFLOW;
    cap *= 2;
  }
  bc_tok_nchar *v = realloc(out->v, cap * sizeof *v);
  if (!v) return BERTCL_ERR_NOMEM;
  out->v = v;
  out->cap = cap;
  return BERTCL_OK;
}

static uint32_t lower_one(uint32_t cp) {
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

/* Appends cp (after lowercasing when asked) to out. */
static void put_lower(const bertcl_tokenizer *tok, uint32_t cp, uint32_t orig, bc_tok_nbuf *out) {
  if (tok->lowercase) {
    if (cp < 0x80) {
      if (cp >= 'A' && cp <= 'Z') cp += 32;
    } else if (cp == 0x130) {
      /* Rust's char::to_lowercase: U+0130 -> "i\u0307" (both aligned to the original) */
      out->v[out->n++] = (bc_tok_nchar){'i', orig};
      cp = 0x307;
    } else {
      cp = lower_one(cp);
    }
  }
  out->v[out->n++] = (bc_tok_nchar){cp, orig};
}

/* While decomposing, bit 31 of orig marks a character that a decomposition added after its
 * first character ("change" +1 in tokenizers' NormalizedString::transform). */
#define NFD_ADDED 0x80000000u

static int ccc(uint32_t cp) {
  if (cp < 0x300 || (char_class(cp) & CL_CCC_ZERO)) return 0;
  return utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

/* NFD canonical ordering of out->v[from..n), with the alignments tokenizers gives: its NFD
 * iterator sorts (char, change) pairs by combining class and NormalizedString::transform then
 * aligns positionally: a change-0 character takes the next original character's alignment, an
 * added one the alignment of the last original character taken. So a reordered mark takes the
 * position, not its own source. */
static int canonical_order(bc_tok_nbuf *out, size_t from) {
  size_t n = out->n - from;
  if (n > out->tmp_cap) {
    uint32_t *t = realloc(out->tmp, n * sizeof *t);
    if (!t) return BERTCL_ERR_NOMEM;
    out->tmp = t;
    out->tmp_cap = n;
  }
  bc_tok_nchar *v = out->v + from;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!(v[i].orig & NFD_ADDED)) out->tmp[k++] = v[i].orig; /* original characters, in order */
  size_t nold = k;
  /* stable insertion sort of each run of non-starters; the change flag moves with the char */
  for (size_t i = 1; i < n; i++) {
    int ci = ccc(v[i].cp);
    if (ci == 0) continue;
    size_t j = i;
    while (j > 0) {
      int cj = ccc(v[j - 1].cp);
      if (cj == 0 || cj <= ci) break;
      bc_tok_nchar t = v[j - 1];
      v[j - 1] = v[j];
      v[j] = t;
      j--;
    }
  }
  k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(v[i].orig & NFD_ADDED)) {
      v[i].orig = out->tmp[k < nold ? k : nold - 1];
      k++;
    } else {
      v[i].orig = out->tmp[k > 0 ? (k - 1 < nold ? k - 1 : nold - 1) : 0];
    }
  }
  return BERTCL_OK;
}

int bc_tok_normalize(const bertcl_tokenizer *tok, const uint32_t *cps, size_t n, uint32_t base,
                     bc_tok_nbuf *out) {
  pthread_once(&bmp_once, bmp_init);
  size_t from = out->n;
  int marks = 0, decomposed = 0;
  for (size_t i = 0; i < n; i++) {
    /* worst case: 3 (CJK) or a decomposition of <= 16 chars plus one from U+0130 */
    int st = reserve(out, 20);
    if (st) return st;
    uint32_t cp = cps[i], orig = base + (uint32_t)i;
    unsigned cl = char_class(cp);
    if (tok->clean_text) {
      if (cp == 0 || cp == 0xFFFD || (cl & CL_REMOVE)) continue;
      if (cl & CL_SPACE) {
        out->v[out->n++] = (bc_tok_nchar){' ', orig};
        continue;
      }
    }
    int cjk = tok->handle_chinese && (cl & CL_CHINESE);
    if (cjk) {
      /* ' ' c ' ': the spaces split; all three keep the original character's alignment. c
       * still goes through NFD (compatibility ideographs U+F900.. decompose) and lowercase. */
      out->v[out->n++] = (bc_tok_nchar){' ', orig};
    }
    if (tok->strip_accents && cp >= 0x80) {
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
        marks |= ccc(d) != 0;
        out->v[out->n++] = (bc_tok_nchar){d, k ? orig | NFD_ADDED : orig};
      }
    } else if (tok->strip_accents) {
      out->v[out->n++] = (bc_tok_nchar){cp, orig};
    } else {
      put_lower(tok, cp, orig, out);
    }
    if (cjk) out->v[out->n++] = (bc_tok_nchar){' ', orig};
  }
  if (!decomposed) {
    if (tok->strip_accents && tok->lowercase)
      for (size_t i = from; i < out->n; i++)
        if (out->v[i].cp >= 'A' && out->v[i].cp <= 'Z') out->v[i].cp += 32;
    return BERTCL_OK;
  }
  if (marks) {
    int st = canonical_order(out, from);
    if (st) return st;
  }
  /* drop nonspacing marks, then lowercase (cannot grow: U+0130 decomposed to I + U+0307) */
  size_t w = from, end = out->n;
  for (size_t i = from; i < end; i++) {
    bc_tok_nchar c = out->v[i];
    c.orig &= ~NFD_ADDED;
    if (c.cp >= 0x300 && (char_class(c.cp) & CL_MN)) continue;
    if (tok->lowercase) {
      if (c.cp < 0x80) {
        if (c.cp >= 'A' && c.cp <= 'Z') c.cp += 32;
      } else {
        c.cp = lower_one(c.cp);
      }
    }
    out->v[w++] = c;
  }
  out->n = w;
  return BERTCL_OK;
}
