/* The Precompiled normalizer: SentencePiece's precompiled_charsmap (XLM-R, T5, ALBERT ...), as
 * the spm_precompiled crate reads it and tokenizers' normalizers/precompiled.rs applies it.
 *
 * The charsmap (base64 in tokenizer.json) is [u32 trie size in bytes][trie: u32 units, a
 * darts-clone double array over UTF-8 bytes][replacement strings, each NUL-terminated]. The text
 * is walked by extended grapheme clusters: a cluster shorter than 6 bytes is looked up whole;
 * otherwise (or when that fails) each character is. A lookup is a common-prefix search that
 * takes the FIRST (shortest) key that is a prefix of the chunk, and the whole chunk is replaced
 * by that key's string, exactly as spm_precompiled does. Replacements become a transformation
 * (tokenizers' replace(): equal lengths map one to one, extra characters are inserted, fewer
 * characters remove the rest; a chunk replaced by nothing lowers the previous character's
 * change, and at the very start is not accounted for, which shifts the following alignments:
 * kept as tokenizers has it).
 *
 * A corrupt charsmap never crashes: out-of-range trie positions and replacement offsets are
 * treated as "no match" (the Rust code would panic).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer.h"

struct bc_tok_precompiled {
  uint32_t *units; /* (nunits) */
  size_t nunits;
  char *norm; /* replacement strings (norm_len bytes, valid UTF-8) */
  size_t norm_len;
};

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Standard base64 with padding (what tokenizers writes). Returns the byte count or -1. */
static long b64decode(const char *in, size_t len, unsigned char *out) {
  if (len % 4) return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    for (int k = 0; k < 4; k++) {
      if (in[i + k] == '=' && i + 4 == len && k >= 2) {
        v[k] = -2;
        continue;
      }
      v[k] = b64val((unsigned char)in[i + k]);
      if (v[k] < 0) return -1;
    }
    if (v[2] == -2 && v[3] != -2) return -1;
    out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
    if (v[2] != -2) out[o++] = (unsigned char)(((v[1] & 15) << 4) | (v[2] >> 2));
    if (v[3] != -2) out[o++] = (unsigned char)(((v[2] & 3) << 6) | v[3]);
  }
  return (long)o;
}

static int valid_utf8(const char *s, size_t n) {
  size_t replaced = 0;
  uint32_t *tmp = malloc((n + 1) * sizeof *tmp);
  if (!tmp) return -1;
  bc_tok_utf8_decode(s, n, tmp, &replaced);
  free(tmp);
  return replaced == 0;
}

int bc_tok_precompiled_new(bc_err *err, const char *base64, bc_tok_precompiled **out) {
  *out = NULL;
  size_t len = strlen(base64);
  unsigned char *raw = malloc(len / 4 * 3 + 4);
  bc_tok_precompiled *pc = calloc(1, sizeof *pc);
  int st = BERTCL_OK;
  if (!raw || !pc) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for the Precompiled charsmap");
    goto fail;
  }
  long n = b64decode(base64, len, raw);
  if (n < 4) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "Precompiled: precompiled_charsmap is not valid base64");
    goto fail;
  }
  uint32_t trie_bytes = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 |
                        (uint32_t)raw[3] << 24;
  size_t nunits = trie_bytes / 4;
  if ((size_t)n - 4 < (size_t)nunits * 4 || nunits == 0) {
    st = bc_fail(err, BERTCL_ERR_FORMAT,
                 "Precompiled: charsmap of %ld bytes announces a trie of %u bytes", n, trie_bytes);
    goto fail;
  }
  pc->units = malloc(nunits * sizeof *pc->units);
  pc->norm_len = (size_t)n - 4 - nunits * 4;
  pc->norm = malloc(pc->norm_len + 1);
  if (!pc->units || !pc->norm) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for the Precompiled charsmap");
    goto fail;
  }
  for (size_t i = 0; i < nunits; i++) {
    const unsigned char *p = raw + 4 + 4 * i;
    pc->units[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  }
  pc->nunits = nunits;
  memcpy(pc->norm, raw + 4 + nunits * 4, pc->norm_len);
  pc->norm[pc->norm_len] = '\0';
  int ok = valid_utf8(pc->norm, pc->norm_len);
  if (ok < 0) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for the Precompiled charsmap");
    goto fail;
  }
  if (!ok) {
    st = bc_fail(err, BERTCL_ERR_FORMAT, "Precompiled: the normalized strings are not valid UTF-8");
    goto fail;
  }
  free(raw);
  *out = pc;
  return BERTCL_OK;
fail:
  free(raw);
  bc_tok_precompiled_free(pc);
  return st;
}

void bc_tok_precompiled_free(bc_tok_precompiled *pc) {
  if (!pc) return;
  free(pc->units);
  free(pc->norm);
  free(pc);
}

/* darts-clone unit fields (spm_precompiled's ArrayUnit). */
static inline int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }
static inline uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

/* The replacement of the first key that is a prefix of key[0..len), or NULL. */
static const char *transform(const bc_tok_precompiled *pc, const char *key, size_t len,
                             size_t *out_len) {
  size_t pos = 0;
  uint32_t unit = pc->units[0];
  pos ^= unit_offset(unit);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c == 0) break;
    pos ^= c;
    if (pos >= pc->nunits) return NULL;
    unit = pc->units[pos];
    if (unit_label(unit) != c) return NULL;
    pos ^= unit_offset(unit);
    if (pos >= pc->nunits) return NULL;
    if (unit_has_leaf(unit)) {
      size_t index = unit_value(pc->units[pos]);
      if (index >= pc->norm_len) {
        /* Rust slices normalized[index..index] (empty) only when index == len */
        if (index == pc->norm_len) {
          *out_len = 0;
          return pc->norm + index;
        }
        return NULL;
      }
      if (((unsigned char)pc->norm[index] & 0xC0) == 0x80) return NULL; /* not a char boundary */
      size_t end = index;
      while (end < pc->norm_len && pc->norm[end] != '\0') end++;
      *out_len = end - index;
      return pc->norm + index;
    }
  }
  return NULL;
}

/* tokenizers' replace(): appends new_part's characters for old_count replaced ones. */
static int replace(bc_tok_changes *ch, size_t old_count, const char *s, size_t len) {
  size_t nnew = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t r = 0;
    /* s is valid UTF-8 (checked at load) */
    unsigned char b0 = (unsigned char)s[i];
    size_t k = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    if (i + k > len) k = len - i;
    bc_tok_utf8_decode(s + i, k, &cp, &r);
    int st = bc_tok_changes_push(ch, cp, 0);
    if (st) return st;
    nnew++;
    i += k;
  }
  if (nnew > old_count) {
    for (size_t j = 0; j < nnew - old_count; j++) ch->v[ch->n - 1 - j].change = 1;
  } else if (nnew < old_count) {
    if (ch->n > 0) ch->v[ch->n - 1].change -= (int32_t)(old_count - nnew);
  }
  return BERTCL_OK;
}

int bc_tok_norm_precompiled(const bc_tok_precompiled *pc, bc_tok_nbuf *b, uint32_t shift,
                            bc_tok_nscratch *s) {
  if (!b->n) return BERTCL_OK;
  size_t nb = 0;
  int st = bc_tok_to_utf8(b->v, b->n, s, &nb);
  if (st) return st;
  const char *bytes = s->bytes;
  const uint32_t *bpos = s->u32; /* char -> byte start, n + 1 entries */
  bc_tok_changes *ch = &s->ch;
  ch->n = 0;
  int modified = 0;
  utf8proc_int32_t state = 0;
  size_t g = 0; /* start of the current grapheme (characters) */
  while (g < b->n) {
    size_t e = g + 1;
    while (e < b->n && !utf8proc_grapheme_break_stateful((utf8proc_int32_t)b->v[e - 1].cp,
                                                          (utf8proc_int32_t)b->v[e].cp, &state))
      e++;
    size_t glen = bpos[e] - bpos[g], rlen = 0;
    const char *r = NULL;
    if (glen < 6) r = transform(pc, bytes + bpos[g], glen, &rlen);
    if (r) {
      modified = 1;
      if ((st = replace(ch, e - g, r, rlen))) return st;
    } else {
      for (size_t c = g; c < e; c++) {
        r = transform(pc, bytes + bpos[c], bpos[c + 1] - bpos[c], &rlen);
        if (r) {
          modified = 1;
          if ((st = replace(ch, 1, r, rlen))) return st;
        } else if ((st = bc_tok_changes_push(ch, b->v[c].cp, 0))) {
          return st;
        }
      }
    }
    g = e;
  }
  if (!modified) return BERTCL_OK;
  return bc_tok_transform(b, ch, 0, shift, &s->tmp);
}
