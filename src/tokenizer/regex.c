/* Regular expressions of tokenizer.json (Replace, Split, ByteLevel's GPT-2 pattern) with PCRE2
 * (UTF + UCP, so \p{L}, \s, \w are Unicode), iterated as the onig crate's find_iter does:
 * an empty match right where the previous match ended is skipped by advancing one character.
 * tokenizers compiles these with Oniguruma (Ruby syntax); the patterns found in tokenizer.json
 * files (GPT-2 / Llama 3 splits, " {2,}", literal strings) mean the same in PCRE2. Literal
 * patterns (a string to split on or replace) use PCRE2_LITERAL. */
#define _POSIX_C_SOURCE 200809L
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

struct bc_tok_regex {
  pcre2_code *code;
  int jit;
};

bc_tok_regex *bc_tok_regex_new(bc_err *err, const char *what, const char *pattern, int literal) {
  bc_tok_regex *re = calloc(1, sizeof *re);
  if (!re) {
    bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  int ec = 0;
  PCRE2_SIZE eo = 0;
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : PCRE2_MULTILINE);
  re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
  if (!re->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ec, msg, sizeof msg);
    bc_fail(err, BERTCL_ERR_UNSUPPORTED, "%s: regex '%s' at offset %zu: %s", what, pattern,
            (size_t)eo, (const char *)msg);
    free(re);
    return NULL;
  }
  re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

void bc_tok_regex_free(bc_tok_regex *re) {
  if (!re) return;
  pcre2_code_free(re->code);
  free(re);
}

void bc_tok_rematch_free(bc_tok_rematch *m) {
  if (m->md) pcre2_match_data_free(m->md);
  m->md = NULL;
  m->re = NULL;
}

static int push_pair(uint32_t **out, size_t *n, size_t *cap, size_t s, size_t e) {
  if (2 * (*n + 1) > *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    while (c < 2 * (*n + 1)) c *= 2;
    uint32_t *p = realloc(*out, c * sizeof *p);
    if (!p) return BERTCL_ERR_NOMEM;
    *out = p;
    *cap = c;
  }
  (*out)[2 * *n] = (uint32_t)s;
  (*out)[2 * *n + 1] = (uint32_t)e;
  (*n)++;
  return BERTCL_OK;
}

int bc_tok_regex_find_all(const bc_tok_regex *re, bc_tok_rematch *m, const char *s, size_t len,
                          uint32_t **out, size_t *n, size_t *cap) {
  *n = 0;
  if (!m->md || m->re != re) {
    bc_tok_rematch_free(m);
    m->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!m->md) return BERTCL_ERR_NOMEM;
    m->re = re;
  }
  pcre2_match_data *md = m->md;
  size_t last_end = 0;
  int have_last = 0;
  size_t last_match_end = 0;
  while (last_end <= len) {
    int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, last_end, 0, md, NULL)
                     : pcre2_match(re->code, (PCRE2_SPTR)s, len, last_end, PCRE2_NO_UTF_CHECK, md,
                                   NULL);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return rc == PCRE2_ERROR_NOMEMORY ? BERTCL_ERR_NOMEM : BERTCL_ERR_INVALID_ARG;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t ms = ov[0], me = ov[1];
    if (me < ms) break; /* \K tricks; not in tokenizer patterns */
    if (ms == me && have_last && last_match_end == me) {
      /* advance one character */
      if (last_end >= len) break;
      unsigned char b = (unsigned char)s[last_end];
      last_end += b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
      continue;
    }
    last_end = me;
    last_match_end = me;
    have_last = 1;
    int st = push_pair(out, n, cap, ms, me);
    if (st) return st;
  }
  return BERTCL_OK;
}
