/* tokenizer.json -> the pipeline's components, as tokenizers deserializes them
 * (tokenizer/serialization.rs and each component's serde). A component bertcl does not
 * implement is refused with its name; nothing falls back silently. Also the one-line
 * descriptions of the components (bertcl_tokenizer_describe). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

typedef struct {
  bertcl_tokenizer *tok;
  const char *path;
} pctx;

static int fail(pctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(pctx *c, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return bc_fail(&c->tok->err, status, "%s: %s", c->path, msg);
}

static int nomem(pctx *c) { return fail(c, BERTCL_ERR_NOMEM, "out of memory"); }

static const char *type_of(json_t *o) { return json_string_value(json_object_get(o, "type")); }

static int get_bool(json_t *o, const char *key, int dflt) {
  json_t *v = json_object_get(o, key);
  return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* UTF-8 string -> code points (malloc'd). */
static uint32_t *to_cps(const char *s, size_t *n) {
  size_t len = strlen(s);
  uint32_t *v = malloc((len + 1) * sizeof *v);
  if (v) *n = bc_tok_utf8_decode(s, len, v, NULL);
  return v;
}

/* {"String": s} or {"Regex": r} -> a compiled pattern (and its text, for descriptions). */
static int parse_pattern(pctx *c, const char *what, json_t *pat, bc_tok_regex **re, char **text) {
  json_t *str = json_object_get(pat, "String"), *rx = json_object_get(pat, "Regex");
  if (!json_is_string(str) && !json_is_string(rx))
    return fail(c, BERTCL_ERR_FORMAT, "%s: pattern is neither {\"String\": ...} nor {\"Regex\": ...}",
                what);
  *text = strdup(json_string_value(str ? str : rx));
  if (!*text) return nomem(c);
  *re = bc_tok_regex_new(&c->tok->err, what, json_string_value(str ? str : rx), str != NULL);
  if (!*re) {
    char m[BC_ERR_MSG_MAX];
    snprintf(m, sizeof m, "%s", c->tok->err.msg);
    return fail(c, c->tok->err.status, "%s", m);
  }
  c->tok->need_regex = 1;
  return BERTCL_OK;
}

static int parse_behavior(pctx *c, const char *what, json_t *o, int dflt, int *out) {
  json_t *b = json_object_get(o, "behavior");
  if (!b) {
    *out = dflt;
    return BERTCL_OK;
  }
  static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                      "MergedWithNext", "Contiguous"};
  const char *s = json_string_value(b);
  for (int i = 0; s && i < 5; i++)
    if (!strcmp(s, names[i])) {
      *out = i;
      return BERTCL_OK;
    }
  return fail(c, BERTCL_ERR_FORMAT, "%s: unknown behavior '%s'", what, s ? s : "?");
}

/* ---- normalizers ---- */

static int add_norm(pctx *c, bc_tok_norm **out) {
  bertcl_tokenizer *tok = c->tok;
  bc_tok_norm *v = realloc(tok->norms, (tok->n_norms + 1) * sizeof *v);
  if (!v) return nomem(c);
  tok->norms = v;
  *out = &v[tok->n_norms++];
  memset(*out, 0, sizeof **out);
  return BERTCL_OK;
}

static int parse_normalizer(pctx *c, json_t *o, int depth) {
  if (!o || json_is_null(o)) return BERTCL_OK;
  const char *t = type_of(o);
  if (!t) return fail(c, BERTCL_ERR_FORMAT, "normalizer without a \"type\"");
  if (depth > 16) return fail(c, BERTCL_ERR_FORMAT, "normalizer Sequence nested too deep");
  if (!strcmp(t, "Sequence")) {
    json_t *arr = json_object_get(o, "normalizers");
    if (!json_is_array(arr)) return fail(c, BERTCL_ERR_FORMAT, "normalizer Sequence without \"normalizers\"");
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
      int st = parse_normalizer(c, x, depth + 1);
      if (st) return st;
    }
    return BERTCL_OK;
  }
  static const struct {
    const char *name;
    int kind;
  } simple[] = {{"NFD", BC_NORM_NFD},         {"NFKD", BC_NORM_NFKD},
                {"NFC", BC_NORM_NFC},         {"NFKC", BC_NORM_NFKC},
                {"Lowercase", BC_NORM_LOWERCASE}, {"StripAccents", BC_NORM_STRIP_ACCENTS},
                {"Nmt", BC_NORM_NMT},         {"ByteLevel", BC_NORM_BYTELEVEL}};
  bc_tok_norm *n = NULL;
  int st;
  for (size_t i = 0; i < sizeof simple / sizeof *simple; i++)
    if (!strcmp(t, simple[i].name)) {
      if ((st = add_norm(c, &n))) return st;
      n->kind = simple[i].kind;
      return BERTCL_OK;
    }
  if (!strcmp(t, "BertNormalizer")) {
    if ((st = add_norm(c, &n))) return st;
    n->kind = BC_NORM_BERT;
    n->clean_text = get_bool(o, "clean_text", 1);
    n->handle_chinese = get_bool(o, "handle_chinese_chars", 1);
    n->lowercase = get_bool(o, "lowercase", 1);
    json_t *sa = json_object_get(o, "strip_accents");
    n->strip_accents = (!sa || json_is_null(sa)) ? n->lowercase : json_is_true(sa);
    return BERTCL_OK;
  }
  if (!strcmp(t, "Strip")) {
    if ((st = add_norm(c, &n))) return st;
    n->kind = BC_NORM_STRIP;
    n->left = get_bool(o, "strip_left", 1);
    n->right = get_bool(o, "strip_right", 1);
    return BERTCL_OK;
  }
  if (!strcmp(t, "Replace")) {
    json_t *content = json_object_get(o, "content");
    if (!json_is_string(content))
      return fail(c, BERTCL_ERR_FORMAT, "normalizer Replace without a \"content\" string");
    if ((st = add_norm(c, &n))) return st;
    n->kind = BC_NORM_REPLACE;
    if (!(n->text = to_cps(json_string_value(content), &n->text_len))) return nomem(c);
    return parse_pattern(c, "normalizer Replace", json_object_get(o, "pattern"), &n->re,
                         &n->pattern);
  }
  if (!strcmp(t, "Prepend")) {
    json_t *p = json_object_get(o, "prepend");
    if (!json_is_string(p))
      return fail(c, BERTCL_ERR_FORMAT, "normalizer Prepend without a \"prepend\" string");
    if ((st = add_norm(c, &n))) return st;
    n->kind = BC_NORM_PREPEND;
    if (!(n->text = to_cps(json_string_value(p), &n->text_len))) return nomem(c);
    return BERTCL_OK;
  }
  if (!strcmp(t, "Precompiled")) {
    json_t *cm = json_object_get(o, "precompiled_charsmap");
    if (!json_is_string(cm))
      return fail(c, BERTCL_ERR_FORMAT, "normalizer Precompiled without a precompiled_charsmap");
    if ((st = add_norm(c, &n))) return st;
    n->kind = BC_NORM_PRECOMPILED;
    st = bc_tok_precompiled_new(&c->tok->err, json_string_value(cm), &n->pc);
    if (st) {
      char m[BC_ERR_MSG_MAX];
      snprintf(m, sizeof m, "%s", c->tok->err.msg);
      return fail(c, st, "normalizer %s", m);
    }
    return BERTCL_OK;
  }
  return fail(c, BERTCL_ERR_UNSUPPORTED,
              "normalizer '%s' is not supported by bertcl (supported: BertNormalizer, NFC, NFD, "
              "NFKC, NFKD, Lowercase, StripAccents, Strip, Replace, Prepend, Precompiled, Nmt, "
              "ByteLevel, Sequence)",
              t);
}

/* ---- pre-tokenizers ---- */

#define GPT2_PATTERN \
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static int add_pre(pctx *c, bc_tok_pre **out) {
  bertcl_tokenizer *tok = c->tok;
  bc_tok_pre *v = realloc(tok->pres, (tok->n_pres + 1) * sizeof *v);
  if (!v) return nomem(c);
  tok->pres = v;
  *out = &v[tok->n_pres++];
  memset(*out, 0, sizeof **out);
  return BERTCL_OK;
}

/* One character from a JSON string (Metaspace replacement, CharDelimiterSplit delimiter). */
static int one_char(pctx *c, const char *what, json_t *v, uint32_t *out) {
  const char *s = json_string_value(v);
  size_t n = 0;
  uint32_t cps[8];
  if (s && strlen(s) <= 4) n = bc_tok_utf8_decode(s, strlen(s), cps, NULL);
  if (n != 1) return fail(c, BERTCL_ERR_FORMAT, "%s must be one character", what);
  *out = cps[0];
  return BERTCL_OK;
}

static int parse_pre(pctx *c, json_t *o, int depth) {
  if (!o || json_is_null(o)) return BERTCL_OK;
  const char *t = type_of(o);
  if (!t) return fail(c, BERTCL_ERR_FORMAT, "pre_tokenizer without a \"type\"");
  if (depth > 16) return fail(c, BERTCL_ERR_FORMAT, "pre_tokenizer Sequence nested too deep");
  bc_tok_pre *p = NULL;
  int st;
  if (!strcmp(t, "Sequence")) {
    json_t *arr = json_object_get(o, "pretokenizers");
    if (!json_is_array(arr))
      return fail(c, BERTCL_ERR_FORMAT, "pre_tokenizer Sequence without \"pretokenizers\"");
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
      if ((st = parse_pre(c, x, depth + 1))) return st;
    }
    return BERTCL_OK;
  }
  if (!strcmp(t, "BertPreTokenizer") || !strcmp(t, "Whitespace") ||
      !strcmp(t, "WhitespaceSplit")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = t[0] == 'B' ? BC_PRE_BERT : !strcmp(t, "Whitespace") ? BC_PRE_WHITESPACE : BC_PRE_WS_SPLIT;
    return BERTCL_OK;
  }
  if (!strcmp(t, "Punctuation")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = BC_PRE_PUNCT;
    return parse_behavior(c, "pre_tokenizer Punctuation", o, BC_SPLIT_ISOLATED, &p->behavior);
  }
  if (!strcmp(t, "Digits")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = BC_PRE_DIGITS;
    p->individual = get_bool(o, "individual_digits", 0);
    return BERTCL_OK;
  }
  if (!strcmp(t, "CharDelimiterSplit")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = BC_PRE_CHAR_DELIM;
    return one_char(c, "pre_tokenizer CharDelimiterSplit delimiter", json_object_get(o, "delimiter"),
                    &p->ch);
  }
  if (!strcmp(t, "Metaspace")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = BC_PRE_METASPACE;
    if ((st = one_char(c, "pre_tokenizer Metaspace replacement", json_object_get(o, "replacement"),
                       &p->ch)))
      return st;
    p->split = get_bool(o, "split", 1);
    const char *ps = json_string_value(json_object_get(o, "prepend_scheme"));
    p->prepend_scheme = !ps || !strcmp(ps, "always") ? BC_PREPEND_ALWAYS
                        : !strcmp(ps, "first")       ? BC_PREPEND_FIRST
                        : !strcmp(ps, "never")       ? BC_PREPEND_NEVER
                                                     : -1;
    if (p->prepend_scheme < 0)
      return fail(c, BERTCL_ERR_FORMAT, "pre_tokenizer Metaspace: unknown prepend_scheme '%s'", ps);
    json_t *aps = json_object_get(o, "add_prefix_space");
    if (json_is_false(aps)) {
      if (p->prepend_scheme != BC_PREPEND_NEVER && ps)
        return fail(c, BERTCL_ERR_FORMAT,
                    "pre_tokenizer Metaspace: add_prefix_space does not match prepend_scheme");
      p->prepend_scheme = BC_PREPEND_NEVER;
    }
    return BERTCL_OK;
  }
  if (!strcmp(t, "ByteLevel")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = BC_PRE_BYTELEVEL;
    p->add_prefix_space = get_bool(o, "add_prefix_space", 1);
    p->use_regex = get_bool(o, "use_regex", 1);
    if (p->use_regex) {
      p->re = bc_tok_regex_new(&c->tok->err, "pre_tokenizer ByteLevel", GPT2_PATTERN, 0);
      if (!p->re) return c->tok->err.status;
      c->tok->need_regex = 1;
    }
    return BERTCL_OK;
  }
  if (!strcmp(t, "Split")) {
    if ((st = add_pre(c, &p))) return st;
    p->kind = BC_PRE_SPLIT;
    p->invert = get_bool(o, "invert", 0);
    if ((st = parse_behavior(c, "pre_tokenizer Split", o, BC_SPLIT_REMOVED, &p->behavior))) return st;
    return parse_pattern(c, "pre_tokenizer Split", json_object_get(o, "pattern"), &p->re,
                         &p->pattern);
  }
  return fail(c, BERTCL_ERR_UNSUPPORTED,
              "pre_tokenizer '%s' is not supported by bertcl (supported: BertPreTokenizer, "
              "Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, Metaspace, "
              "ByteLevel, Split, Sequence)",
              t);
}

/* ---- models ---- */

static int build_maps(pctx *c, size_t n) {
  bertcl_tokenizer *tok = c->tok;
  int st = bc_tok_map_init(tok, &tok->vocab, n, 0);
  if (st) return st;
  if (tok->model.kind == BC_MODEL_WORDPIECE &&
      (st = bc_tok_map_init(tok, &tok->cont, n, tok->model.prefix_len)))
    return st;
  return BERTCL_OK;
}

static void map_id(bertcl_tokenizer *tok, uint32_t id) {
  bc_tok_map_put(tok, &tok->vocab, id);
  bc_tok_model *md = &tok->model;
  if (md->kind == BC_MODEL_WORDPIECE && tok->id_len[id] >= md->prefix_len &&
      memcmp(bc_tok_str(tok, id), md->prefix, md->prefix_len) == 0)
    bc_tok_map_put(tok, &tok->cont, id);
}

/* {"token": id, ...} (WordPiece, BPE, WordLevel). */
static int parse_vocab_object(pctx *c, json_t *vocab) {
  bertcl_tokenizer *tok = c->tok;
  if (!json_is_object(vocab)) return fail(c, BERTCL_ERR_FORMAT, "model.vocab missing");
  const char *key;
  json_t *v;
  json_object_foreach(vocab, key, v) {
    if (!json_is_integer(v))
      return fail(c, BERTCL_ERR_FORMAT, "vocab id of '%s' is not an integer", key);
    int st = bc_tok_set_id(tok, json_integer_value(v), key, strlen(key));
    if (st) return st;
  }
  int st = build_maps(c, json_object_size(vocab));
  if (st) return st;
  json_object_foreach(vocab, key, v) map_id(tok, (uint32_t)json_integer_value(v));
  tok->vocab_size = json_object_size(vocab);
  return BERTCL_OK;
}

static int32_t vocab_id(bertcl_tokenizer *tok, const char *s) {
  return s ? bc_tok_map_get(tok, &tok->vocab, s, strlen(s)) : -1;
}

static int set_str(pctx *c, json_t *v, char **out, size_t *len) {
  if (!json_is_string(v)) return BERTCL_OK;
  *out = strdup(json_string_value(v));
  if (!*out) return nomem(c);
  *len = strlen(*out);
  return BERTCL_OK;
}

static void byte_ids(bertcl_tokenizer *tok) {
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    tok->model.byte_id[b] = vocab_id(tok, name);
  }
}

static int parse_model(pctx *c, json_t *o) {
  bertcl_tokenizer *tok = c->tok;
  bc_tok_model *md = &tok->model;
  const char *t = type_of(o);
  int st;
  if (!json_is_object(o)) return fail(c, BERTCL_ERR_FORMAT, "\"model\" missing");
  if (!t) {
    /* older files: the model is recognised by its fields */
    t = json_object_get(o, "merges")              ? "BPE"
        : json_is_array(json_object_get(o, "vocab")) ? "Unigram"
        : json_object_get(o, "continuing_subword_prefix") ? "WordPiece"
                                                          : "WordLevel";
  }
  md->unk_id = -1;
  if (!strcmp(t, "WordPiece")) {
    md->kind = BC_MODEL_WORDPIECE;
    json_t *p = json_object_get(o, "continuing_subword_prefix");
    md->prefix = strdup(json_is_string(p) ? json_string_value(p) : "##");
    if (!md->prefix) return nomem(c);
    md->prefix_len = strlen(md->prefix);
    json_t *mx = json_object_get(o, "max_input_chars_per_word");
    md->max_chars_per_word = json_is_integer(mx) && json_integer_value(mx) >= 0
                                 ? (size_t)json_integer_value(mx)
                                 : 100;
    if ((st = parse_vocab_object(c, json_object_get(o, "vocab")))) return st;
    const char *unk = json_string_value(json_object_get(o, "unk_token"));
    md->unk_id = vocab_id(tok, unk ? unk : "[UNK]");
    if (md->unk_id < 0)
      return fail(c, BERTCL_ERR_FORMAT, "unknown token '%s' not in the vocabulary",
                  unk ? unk : "[UNK]");
    return BERTCL_OK;
  }
  if (!strcmp(t, "WordLevel")) {
    md->kind = BC_MODEL_WORDLEVEL;
    if ((st = parse_vocab_object(c, json_object_get(o, "vocab")))) return st;
    const char *unk = json_string_value(json_object_get(o, "unk_token"));
    md->unk_id = vocab_id(tok, unk ? unk : "<unk>");
    if (md->unk_id < 0) md->unk_id = -2; /* an error when a word is unknown, as tokenizers */
    return BERTCL_OK;
  }
  if (!strcmp(t, "Unigram")) {
    md->kind = BC_MODEL_UNIGRAM;
    json_t *vocab = json_object_get(o, "vocab");
    if (!json_is_array(vocab)) return fail(c, BERTCL_ERR_FORMAT, "model.vocab missing");
    size_t n = json_array_size(vocab);
    if (n >= BC_TOK_MAX_ID) return fail(c, BERTCL_ERR_FORMAT, "%zu pieces is too many", n);
    md->scores = malloc((n ? n : 1) * sizeof *md->scores);
    if (!md->scores) return nomem(c);
    md->n_pieces = n;
    md->min_score = n ? 1e300 : 0.0;
    for (size_t i = 0; i < n; i++) {
      json_t *e = json_array_get(vocab, i);
      json_t *s = json_array_get(e, 0), *sc = json_array_get(e, 1);
      if (!json_is_string(s) || !json_is_number(sc))
        return fail(c, BERTCL_ERR_FORMAT, "model.vocab[%zu] is not [piece, score]", i);
      if ((st = bc_tok_set_id(tok, (int64_t)i, json_string_value(s), json_string_length(s))))
        return st;
      md->scores[i] = json_number_value(sc);
      if (md->scores[i] < md->min_score) md->min_score = md->scores[i];
    }
    if ((st = build_maps(c, n))) return st;
    for (size_t i = 0; i < n; i++) map_id(tok, (uint32_t)i);
    tok->vocab_size = n;
    json_t *unk = json_object_get(o, "unk_id");
    if (json_is_integer(unk)) {
      if (json_integer_value(unk) < 0 || (size_t)json_integer_value(unk) >= n)
        return fail(c, BERTCL_ERR_FORMAT, "unk_id %lld is not in the vocabulary",
                    (long long)json_integer_value(unk));
      md->unk_id = (int32_t)json_integer_value(unk);
    } else if (unk && !json_is_null(unk)) {
      return fail(c, BERTCL_ERR_FORMAT, "unk_id is not an integer");
    }
    md->byte_fallback = get_bool(o, "byte_fallback", 0);
    byte_ids(tok);
    if ((st = bc_tok_trie_build(tok, &md->trie))) return fail(c, st, "out of memory for the trie");
    return BERTCL_OK;
  }
  if (!strcmp(t, "BPE")) {
    md->kind = BC_MODEL_BPE;
    if ((st = parse_vocab_object(c, json_object_get(o, "vocab")))) return st;
    if ((st = set_str(c, json_object_get(o, "continuing_subword_prefix"), &md->prefix, &md->prefix_len)) ||
        (st = set_str(c, json_object_get(o, "end_of_word_suffix"), &md->suffix, &md->suffix_len)))
      return st;
    json_t *unk = json_object_get(o, "unk_token");
    if (json_is_string(unk)) {
      md->unk_id = vocab_id(tok, json_string_value(unk));
      if (md->unk_id < 0) md->unk_id = -2; /* an error when a character is unknown */
    }
    md->fuse_unk = get_bool(o, "fuse_unk", 0);
    md->byte_fallback = get_bool(o, "byte_fallback", 0);
    md->ignore_merges = get_bool(o, "ignore_merges", 0);
    json_t *dr = json_object_get(o, "dropout");
    md->dropout = json_is_number(dr) ? (float)json_number_value(dr) : 0.0f;
    if (md->dropout < 0.0f || md->dropout > 1.0f)
      return fail(c, BERTCL_ERR_FORMAT, "BPE dropout %g is not in [0, 1]", (double)md->dropout);
    byte_ids(tok);
    json_t *merges = json_object_get(o, "merges");
    if (!json_is_array(merges)) return fail(c, BERTCL_ERR_FORMAT, "BPE model without \"merges\"");
    size_t i;
    json_t *m;
    char buf[1024];
    json_array_foreach(merges, i, m) {
      const char *a = NULL, *b = NULL;
      size_t al = 0, bl = 0;
      if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
          json_is_string(json_array_get(m, 1))) {
        a = json_string_value(json_array_get(m, 0));
        al = json_string_length(json_array_get(m, 0));
        b = json_string_value(json_array_get(m, 1));
        bl = json_string_length(json_array_get(m, 1));
      } else if (json_is_string(m)) {
        /* "a b": exactly one space */
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (sp && !strchr(sp + 1, ' ')) {
          a = s;
          al = (size_t)(sp - s);
          b = sp + 1;
          bl = strlen(b);
        }
      }
      if (!a) return fail(c, BERTCL_ERR_FORMAT, "BPE merges[%zu] is not a pair", i);
      int32_t ai = bc_tok_map_get(tok, &tok->vocab, a, al), bi = bc_tok_map_get(tok, &tok->vocab, b, bl);
      size_t skip = md->prefix_len;
      if (ai < 0 || bi < 0 || bl < skip || al + bl - skip > sizeof buf)
        return fail(c, BERTCL_ERR_FORMAT, "BPE merges[%zu]: '%.*s' or '%.*s' not in the vocabulary",
                    i, (int)(al > 200 ? 200 : al), a, (int)(bl > 200 ? 200 : bl), b);
      /* the merged token: a + b without b's continuing prefix */
      memcpy(buf, a, al);
      memcpy(buf + al, b + skip, bl - skip);
      int32_t mi = bc_tok_map_get(tok, &tok->vocab, buf, al + bl - skip);
      if (mi < 0)
        return fail(c, BERTCL_ERR_FORMAT, "BPE merges[%zu]: the merged token is not in the vocabulary",
                    i);
      if (bc_tok_merges_put(&md->merges, (uint32_t)ai, (uint32_t)bi, (uint32_t)i, (uint32_t)mi))
        return nomem(c);
    }
    return BERTCL_OK;
  }
  return fail(c, BERTCL_ERR_UNSUPPORTED,
              "model '%s' is not supported by bertcl (supported: WordPiece, Unigram, BPE, WordLevel)", t);
}

/* ---- post-processors ---- */

static int tpl_special(pctx *c, bc_tpl *t, const int32_t *ids, size_t n, int32_t type_id) {
  bertcl_tokenizer *tok = c->tok;
  bc_tpl_item *it = realloc(t->items, (t->n + 1) * sizeof *it);
  if (!it) return nomem(c);
  t->items = it;
  bc_tpl_item *x = &it[t->n++];
  memset(x, 0, sizeof *x);
  x->kind = BC_TPL_SPECIAL;
  x->type_id = type_id;
  x->ids = malloc((n ? n : 1) * sizeof *x->ids);
  if (!x->ids) return nomem(c);
  memcpy(x->ids, ids, n * sizeof *ids);
  x->nids = n;
  t->n_special += n;
  for (size_t i = 0; i < n; i++)
    if (!bc_tok_str(tok, (size_t)(ids[i] < 0 ? (int32_t)tok->n_ids : ids[i])))
      return fail(c, BERTCL_ERR_FORMAT, "template token id %d is not in the vocabulary",
                  (int)ids[i]);
  return BERTCL_OK;
}

static int tpl_seq(pctx *c, bc_tpl *t, int kind, int32_t type_id) {
  bc_tpl_item *it = realloc(t->items, (t->n + 1) * sizeof *it);
  if (!it) return nomem(c);
  t->items = it;
  memset(&it[t->n], 0, sizeof it[t->n]);
  it[t->n].kind = kind;
  it[t->n].type_id = type_id;
  t->n++;
  return BERTCL_OK;
}

/* ["<s>", 0] of BertProcessing / RobertaProcessing. */
static int pair_id(pctx *c, const char *what, json_t *v, int32_t *id) {
  json_t *i = json_array_get(v, 1);
  if (!json_is_array(v) || !json_is_integer(i) || json_integer_value(i) < 0 ||
      json_integer_value(i) >= BC_TOK_MAX_ID)
    return fail(c, BERTCL_ERR_FORMAT, "%s is not [token, id]", what);
  *id = (int32_t)json_integer_value(i);
  return BERTCL_OK;
}

static int parse_template(pctx *c, json_t *pp) {
  bc_tok_post *post = &c->tok->post;
  json_t *specials = json_object_get(pp, "special_tokens");
  const char *names[2] = {"single", "pair"};
  bc_tpl *tpls[2] = {&post->single, &post->pair};
  for (int w = 0; w < 2; w++) {
    json_t *arr = json_object_get(pp, names[w]);
    if (!json_is_array(arr))
      return fail(c, BERTCL_ERR_FORMAT, "TemplateProcessing: template '%s' missing", names[w]);
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
      json_t *sp = json_object_get(item, "SpecialToken"), *sq = json_object_get(item, "Sequence");
      int st;
      if (sp) {
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *def = name ? json_object_get(specials, name) : NULL;
        json_t *ids = json_object_get(def, "ids");
        if (!json_is_array(ids))
          return fail(c, BERTCL_ERR_FORMAT, "TemplateProcessing: special token '%s' undefined",
                      name ? name : "?");
        int32_t buf[16];
        size_t n = json_array_size(ids);
        if (n > 16)
          return fail(c, BERTCL_ERR_UNSUPPORTED, "TemplateProcessing: special token '%s' too long",
                      name);
        for (size_t k = 0; k < n; k++) {
          json_t *x = json_array_get(ids, k);
          if (!json_is_integer(x) || json_integer_value(x) < 0 ||
              json_integer_value(x) >= BC_TOK_MAX_ID)
            return fail(c, BERTCL_ERR_FORMAT, "TemplateProcessing: bad id in '%s'", name);
          buf[k] = (int32_t)json_integer_value(x);
        }
        st = tpl_special(c, tpls[w], buf, n, (int32_t)json_integer_value(json_object_get(sp, "type_id")));
      } else if (sq) {
        const char *id = json_string_value(json_object_get(sq, "id"));
        int kind = id && !strcmp(id, "B") ? BC_TPL_SEQ_B : BC_TPL_SEQ_A;
        st = tpl_seq(c, tpls[w], kind, (int32_t)json_integer_value(json_object_get(sq, "type_id")));
      } else {
        return fail(c, BERTCL_ERR_FORMAT, "TemplateProcessing: bad template item");
      }
      if (st) return st;
    }
  }
  return BERTCL_OK;
}

static int parse_post(pctx *c, json_t *pp, int depth) {
  bc_tok_post *post = &c->tok->post;
  if (!pp || json_is_null(pp)) return BERTCL_OK;
  const char *t = type_of(pp);
  if (!t) return fail(c, BERTCL_ERR_FORMAT, "post_processor without a \"type\"");
  if (post->kind != BC_PP_NONE)
    return fail(c, BERTCL_ERR_UNSUPPORTED,
                "post_processor Sequence with '%s' after a template is not supported by bertcl", t);
  int st;
  if (!strcmp(t, "Sequence")) {
    if (depth > 8) return fail(c, BERTCL_ERR_FORMAT, "post_processor Sequence nested too deep");
    json_t *arr = json_object_get(pp, "processors");
    if (!json_is_array(arr))
      return fail(c, BERTCL_ERR_FORMAT, "post_processor Sequence without \"processors\"");
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
      if ((st = parse_post(c, x, depth + 1))) return st;
    }
    return BERTCL_OK;
  }
  if (!strcmp(t, "ByteLevel")) {
    if (get_bool(pp, "trim_offsets", 1)) {
      post->trims++;
      post->trim_prefix_space = get_bool(pp, "add_prefix_space", 1);
    }
    return BERTCL_OK;
  }
  if (!strcmp(t, "TemplateProcessing")) {
    post->kind = BC_PP_TEMPLATE;
    return parse_template(c, pp);
  }
  if (!strcmp(t, "BertProcessing") || !strcmp(t, "RobertaProcessing")) {
    int32_t sep = 0, cls = 0;
    if ((st = pair_id(c, "post_processor sep", json_object_get(pp, "sep"), &sep)) ||
        (st = pair_id(c, "post_processor cls", json_object_get(pp, "cls"), &cls)))
      return st;
    int roberta = t[0] == 'R';
    if (roberta && get_bool(pp, "trim_offsets", 1)) {
      post->trims++;
      post->trim_prefix_space = get_bool(pp, "add_prefix_space", 1);
    }
    int32_t ids[2] = {cls, sep};
    for (int k = 0; k < 2; k++)
      if (!bc_tok_str(c->tok, (size_t)ids[k]))
        return fail(c, BERTCL_ERR_FORMAT, "template token id %d is not in the vocabulary",
                    (int)ids[k]);
    if ((st = bc_tok_tpl_classic(c->tok, cls, sep, roberta))) return st;
    return BERTCL_OK;
  }
  return fail(c, BERTCL_ERR_UNSUPPORTED,
              "post_processor '%s' is not supported by bertcl (supported: TemplateProcessing, "
              "BertProcessing, RobertaProcessing, ByteLevel, Sequence)",
              t);
}

/* ---- the file ---- */

int bc_tok_parse_json(bertcl_tokenizer *tok, const char *path) {
  json_error_t je;
  json_t *root = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!root) return bc_fail(&tok->err, BERTCL_ERR_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
  int st = bc_tok_parse_root(tok, path, root);
  json_decref(root);
  return st;
}

int bc_tok_parse_root(bertcl_tokenizer *tok, const char *path, json_t *root) {
  pctx c = {tok, path};
  int st = BERTCL_OK;
  if (!json_is_object(root)) {
    st = fail(&c, BERTCL_ERR_FORMAT, "not a JSON object");
    goto out;
  }
  json_t *ver = json_object_get(root, "version");
  if (ver && (!json_is_string(ver) || strcmp(json_string_value(ver), "1.0") != 0)) {
    st = fail(&c, BERTCL_ERR_UNSUPPORTED, "tokenizer.json version '%s' (bertcl reads 1.0)",
              json_is_string(ver) ? json_string_value(ver) : "?");
    goto out;
  }
  if ((st = parse_model(&c, json_object_get(root, "model")))) goto out;
  if ((st = parse_normalizer(&c, json_object_get(root, "normalizer"), 0))) goto out;
  if ((st = parse_pre(&c, json_object_get(root, "pre_tokenizer"), 0))) goto out;
  tok->next_added_id = (int64_t)tok->vocab_size;
  json_t *added = json_object_get(root, "added_tokens");
  if (added && !json_is_array(added) && !json_is_null(added)) {
    st = fail(&c, BERTCL_ERR_FORMAT, "added_tokens is not a list");
    goto out;
  }
  size_t i;
  json_t *a;
  json_array_foreach(added, i, a) {
    const char *content = json_string_value(json_object_get(a, "content"));
    if (!content) {
      st = fail(&c, BERTCL_ERR_FORMAT, "added_tokens[%zu] has no content", i);
      goto out;
    }
    int special = get_bool(a, "special", 0);
    if ((st = bc_tok_add_token(tok, content, special, get_bool(a, "normalized", !special),
                               get_bool(a, "lstrip", 0), get_bool(a, "rstrip", 0),
                               get_bool(a, "single_word", 0))))
      goto out;
  }
  if ((st = bc_tok_added_finish(tok))) goto out;
  if ((st = parse_post(&c, json_object_get(root, "post_processor"), 0))) goto out;
  json_t *pad = json_object_get(root, "padding");
  if (json_is_object(pad)) {
    tok->has_pad = 1;
    tok->pad_id = (int32_t)json_integer_value(json_object_get(pad, "pad_id"));
    tok->pad_type_id = (int32_t)json_integer_value(json_object_get(pad, "pad_type_id"));
  }
  json_t *tr = json_object_get(root, "truncation");
  if (json_is_object(tr) && json_is_integer(json_object_get(tr, "max_length")) &&
      json_integer_value(json_object_get(tr, "max_length")) > 0)
    tok->trunc_max_length = (size_t)json_integer_value(json_object_get(tr, "max_length"));
out:
  return st;
}

/* ---- descriptions ---- */

typedef struct {
  char *s;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (b->s && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + (size_t)k + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
}

/* A token or short string for a description: quoted, control characters escaped, cut. */
static void sb_quoted_cps(sbuf *b, const uint32_t *cps, size_t n) {
  sb_printf(b, "'");
  for (size_t i = 0; i < n && i < 40; i++) {
    uint32_t cp = cps[i];
    if (cp < 0x20 || cp == 0x7F)
      sb_printf(b, "\\x%02X", (unsigned)cp);
    else if (cp == '\'')
      sb_printf(b, "\\'");
    else {
      char u[5] = {0};
      bc_tok_utf8_put(cp, u);
      sb_printf(b, "%s", u);
    }
  }
  sb_printf(b, n > 40 ? "...'" : "'");
}

static void sb_quoted(sbuf *b, const char *s) {
  size_t n = 0;
  uint32_t *cps = to_cps(s, &n);
  if (!cps) {
    b->oom = 1;
    return;
  }
  sb_quoted_cps(b, cps, n);
  free(cps);
}

static const char *behavior_name(int b) {
  static const char *const names[] = {"removed", "isolated", "merged_with_previous",
                                      "merged_with_next", "contiguous"};
  return b >= 0 && b < 5 ? names[b] : "?";
}

static void describe_norm(sbuf *b, const bc_tok_norm *n) {
  switch (n->kind) {
  case BC_NORM_BERT:
    sb_printf(b, "BertNormalizer(clean_text=%d, handle_chinese_chars=%d, strip_accents=%d, lowercase=%d)",
              n->clean_text, n->handle_chinese, n->strip_accents, n->lowercase);
    break;
  case BC_NORM_NFD: sb_printf(b, "NFD"); break;
  case BC_NORM_NFKD: sb_printf(b, "NFKD"); break;
  case BC_NORM_NFC: sb_printf(b, "NFC"); break;
  case BC_NORM_NFKC: sb_printf(b, "NFKC"); break;
  case BC_NORM_LOWERCASE: sb_printf(b, "Lowercase"); break;
  case BC_NORM_STRIP_ACCENTS: sb_printf(b, "StripAccents"); break;
  case BC_NORM_NMT: sb_printf(b, "Nmt"); break;
  case BC_NORM_BYTELEVEL: sb_printf(b, "ByteLevel"); break;
  case BC_NORM_PRECOMPILED: sb_printf(b, "Precompiled(SentencePiece charsmap)"); break;
  case BC_NORM_STRIP: sb_printf(b, "Strip(left=%d, right=%d)", n->left, n->right); break;
  case BC_NORM_PREPEND:
    sb_printf(b, "Prepend(");
    sb_quoted_cps(b, n->text, n->text_len);
    sb_printf(b, ")");
    break;
  case BC_NORM_REPLACE:
    sb_printf(b, "Replace(");
    sb_quoted(b, n->pattern ? n->pattern : "");
    sb_printf(b, " -> ");
    sb_quoted_cps(b, n->text, n->text_len);
    sb_printf(b, ")");
    break;
  default: sb_printf(b, "?");
  }
}

static void describe_pre(sbuf *b, const bc_tok_pre *p) {
  static const char *const schemes[] = {"always", "first", "never"};
  switch (p->kind) {
  case BC_PRE_BERT: sb_printf(b, "BertPreTokenizer"); break;
  case BC_PRE_WHITESPACE: sb_printf(b, "Whitespace"); break;
  case BC_PRE_WS_SPLIT: sb_printf(b, "WhitespaceSplit"); break;
  case BC_PRE_PUNCT: sb_printf(b, "Punctuation(%s)", behavior_name(p->behavior)); break;
  case BC_PRE_DIGITS: sb_printf(b, "Digits(individual_digits=%d)", p->individual); break;
  case BC_PRE_CHAR_DELIM:
    sb_printf(b, "CharDelimiterSplit(");
    sb_quoted_cps(b, &p->ch, 1);
    sb_printf(b, ")");
    break;
  case BC_PRE_METASPACE:
    sb_printf(b, "Metaspace(replacement=");
    sb_quoted_cps(b, &p->ch, 1);
    sb_printf(b, ", prepend_scheme=%s, split=%d)", schemes[p->prepend_scheme], p->split);
    break;
  case BC_PRE_BYTELEVEL:
    sb_printf(b, "ByteLevel(add_prefix_space=%d, use_regex=%d)", p->add_prefix_space, p->use_regex);
    break;
  case BC_PRE_SPLIT:
    sb_printf(b, "Split(");
    sb_quoted(b, p->pattern ? p->pattern : "");
    sb_printf(b, ", %s, invert=%d)", behavior_name(p->behavior), p->invert);
    break;
  default: sb_printf(b, "?");
  }
}

static void sb_token(sbuf *b, const bertcl_tokenizer *tok, int32_t id) {
  const char *s = id >= 0 ? bc_tok_str(tok, (size_t)id) : NULL;
  if (s)
    sb_quoted(b, s);
  else
    sb_printf(b, "none");
}

static void describe_tpl(sbuf *b, const bertcl_tokenizer *tok, const bc_tpl *t) {
  for (size_t i = 0; i < t->n; i++) {
    const bc_tpl_item *it = &t->items[i];
    if (i) sb_printf(b, " ");
    if (it->kind == BC_TPL_SPECIAL) {
      for (size_t k = 0; k < it->nids; k++) {
        const char *s = bc_tok_str(tok, (size_t)it->ids[k]);
        sb_printf(b, "%s%s", k ? " " : "", s ? s : "?");
      }
    } else {
      sb_printf(b, "$%c", it->kind == BC_TPL_SEQ_B ? 'B' : 'A');
    }
    if (it->type_id) sb_printf(b, ":%d", (int)it->type_id);
  }
}

int bc_tok_describe_all(bertcl_tokenizer *tok) {
  sbuf b[5] = {{0}};
  /* normalizer */
  if (!tok->n_norms) sb_printf(&b[0], "none");
  if (tok->n_norms > 1) sb_printf(&b[0], "Sequence[");
  for (size_t i = 0; i < tok->n_norms; i++) {
    if (i) sb_printf(&b[0], ", ");
    describe_norm(&b[0], &tok->norms[i]);
  }
  if (tok->n_norms > 1) sb_printf(&b[0], "]");
  /* pre-tokenizer */
  if (!tok->n_pres) sb_printf(&b[1], "none");
  if (tok->n_pres > 1) sb_printf(&b[1], "Sequence[");
  for (size_t i = 0; i < tok->n_pres; i++) {
    if (i) sb_printf(&b[1], ", ");
    describe_pre(&b[1], &tok->pres[i]);
  }
  if (tok->n_pres > 1) sb_printf(&b[1], "]");
  /* model */
  const bc_tok_model *md = &tok->model;
  switch (md->kind) {
  case BC_MODEL_WORDPIECE:
    sb_printf(&b[2], "WordPiece(%zu tokens, unk=", tok->vocab_size);
    sb_token(&b[2], tok, md->unk_id);
    sb_printf(&b[2], ", continuing_subword_prefix=");
    sb_quoted(&b[2], md->prefix ? md->prefix : "");
    sb_printf(&b[2], ", max_input_chars_per_word=%zu)", md->max_chars_per_word);
    break;
  case BC_MODEL_WORDLEVEL:
    sb_printf(&b[2], "WordLevel(%zu tokens, unk=", tok->vocab_size);
    sb_token(&b[2], tok, md->unk_id);
    sb_printf(&b[2], ")");
    break;
  case BC_MODEL_UNIGRAM:
    sb_printf(&b[2], "Unigram(%zu pieces, unk=", md->n_pieces);
    sb_token(&b[2], tok, md->unk_id);
    sb_printf(&b[2], ", byte_fallback=%d)", md->byte_fallback);
    break;
  case BC_MODEL_BPE: {
    size_t nm = 0;
    for (size_t i = 0; i < md->merges.cap; i++) nm += md->merges.keys[i] != UINT64_MAX;
    sb_printf(&b[2], "BPE(%zu tokens, %zu merges, unk=", tok->vocab_size, nm);
    sb_token(&b[2], tok, md->unk_id);
    if (md->prefix) {
      sb_printf(&b[2], ", continuing_subword_prefix=");
      sb_quoted(&b[2], md->prefix);
    }
    if (md->suffix) {
      sb_printf(&b[2], ", end_of_word_suffix=");
      sb_quoted(&b[2], md->suffix);
    }
    sb_printf(&b[2], ", fuse_unk=%d, byte_fallback=%d%s)", md->fuse_unk, md->byte_fallback,
              md->ignore_merges ? ", ignore_merges=1" : "");
    break;
  }
  default: sb_printf(&b[2], "?");
  }
  /* post-processor */
  const bc_tok_post *pp = &tok->post;
  static const char *const kinds[] = {"none", "TemplateProcessing", "BertProcessing",
                                      "RobertaProcessing"};
  if (pp->trims && pp->kind == BC_PP_NONE) sb_printf(&b[3], "ByteLevel(trim_offsets)");
  else
    sb_printf(&b[3], "%s", kinds[pp->kind]);
  if (pp->kind != BC_PP_NONE) {
    sb_printf(&b[3], "(single '");
    describe_tpl(&b[3], tok, &pp->single);
    sb_printf(&b[3], "', pair '");
    describe_tpl(&b[3], tok, &pp->pair);
    sb_printf(&b[3], "'%s)", pp->trims ? ", trim_offsets" : "");
  }
  /* added tokens */
  size_t nspecial = 0;
  for (size_t i = 0; i < tok->n_added; i++) nspecial += tok->added_all[i].special;
  sb_printf(&b[4], "%zu (%zu special)", tok->n_added, nspecial);
  for (size_t i = 0; i < tok->n_added && i < 12; i++) {
    const bc_tok_added *a = &tok->added_all[i];
    sb_printf(&b[4], i ? ", " : ": ");
    sb_quoted_cps(&b[4], a->cps, a->len);
    const char *flags[4] = {a->lstrip ? "lstrip" : NULL, a->rstrip ? "rstrip" : NULL,
                            a->single_word ? "single_word" : NULL, a->normalized ? "normalized" : NULL};
    int nf = 0;
    for (int k = 0; k < 4; k++)
      if (flags[k]) sb_printf(&b[4], "%s%s", nf++ ? " " : "(", flags[k]);
    if (nf) sb_printf(&b[4], ")");
  }
  if (tok->n_added > 12) sb_printf(&b[4], ", ...");
  int oom = 0;
  for (int k = 0; k < 5; k++) {
    oom |= b[k].oom || !b[k].s;
    free(tok->desc[k]);
    tok->desc[k] = b[k].s;
  }
  return oom ? bc_fail(&tok->err, BERTCL_ERR_NOMEM, "out of memory") : BERTCL_OK;
}

void bc_tok_components_free(bertcl_tokenizer *tok) {
  for (size_t i = 0; i < tok->n_norms; i++) {
    bc_tok_regex_free(tok->norms[i].re);
    free(tok->norms[i].pattern);
    free(tok->norms[i].text);
    bc_tok_precompiled_free(tok->norms[i].pc);
  }
  free(tok->norms);
  for (size_t i = 0; i < tok->n_pres; i++) {
    bc_tok_regex_free(tok->pres[i].re);
    free(tok->pres[i].pattern);
  }
  free(tok->pres);
  bc_tok_model *md = &tok->model;
  free(md->prefix);
  free(md->suffix);
  free(md->scores);
  bc_tok_trie_free(&md->trie);
  bc_tok_merges_free(&md->merges);
  bc_tpl *t[2] = {&tok->post.single, &tok->post.pair};
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < t[k]->n; i++) free(t[k]->items[i].ids);
    free(t[k]->items);
  }
  bc_tok_addset_free(&tok->added_raw);
  bc_tok_addset_free(&tok->added_norm);
  for (size_t i = 0; i < tok->n_added; i++) free(tok->added_all[i].cps);
  free(tok->added_all);
  free(tok->added_index);
  for (int k = 0; k < 5; k++) free(tok->desc[k]);
}
