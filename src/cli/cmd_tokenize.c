/* bertcl tokenize -m MODEL_DIR [-i FILE] [--max-len N] [--pair] [...] */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_tokenize_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl tokenize -m MODEL_DIR [-i FILE] [--max-len N] [--pair]\n"
          "                       [--truncation longest_first|only_first|only_second|none]\n"
          "                       [--no-special-tokens] [--split-special-tokens]\n"
          "       bertcl tokenize -m MODEL_DIR --pipeline\n\n"
          "Tokenizes text exactly as Hugging Face's tokenizers does with the model's\n"
          "tokenizer.json (WordPiece, Unigram or BPE with their normalizers, pre-tokenizers,\n"
          "post-processor and added tokens; or vocab.txt for BERT) and prints one JSON object\n"
          "a line: ids, tokens, type_ids, offsets ([start, end) in characters of the input\n"
          "text; (0,0) for special tokens such as [CLS]/[SEP] or <s>/</s>), word_ids (null\n"
          "for special tokens), overflow (tokens truncated away from text and text pair).\n"
          "--pipeline prints the tokenizer's components instead.\n\n"
          "Input (FILE, or stdin): one text a line, or JSONL lines {\"text\": ..., \"text_pair\": "
          "...}\n"
          "(JSONL when the first non-empty line is such an object; --text forces plain text).\n"
          "Invalid UTF-8 is replaced by U+FFFD (which\n"
          "the BERT cleaner drops), with a warning naming the line; offsets then count the\n"
          "characters of the replaced text.\n\n"
          "options:\n"
          "  -m, --model DIR          model directory (tokenizer.json or vocab.txt)\n"
          "  -i, --input FILE         input file (default: stdin)\n"
          "  --max-len N              max tokens with special tokens (default: the model's,\n"
          "                           min of model_max_length, max_position_embeddings and\n"
          "                           sentence-transformers max_seq_length)\n"
          "  --pair                   plain-text lines hold TEXT<TAB>TEXT_PAIR\n"
          "  --text                   read plain text even if lines look like JSON\n"
          "  --truncation S           longest_first (default), only_first, only_second, none\n"
          "  --no-special-tokens      no [CLS]/[SEP] (the post-processor's special tokens)\n"
          "  --split-special-tokens   a literal \"[SEP]\" in the text is text, not a token\n"
          "  --pipeline               print the tokenizer's components and exit\n"
          "  -h, --help               this text\n");
}

/* The tokenizer's components, one a line (also used by bertcl info). */
void bc_cli_print_pipeline(FILE *out, const struct bertcl_tokenizer *tok) {
  static const char *const names[5] = {"normalizer", "pre-tokenizer", "model", "post-processor",
                                       "added tokens"};
  for (int k = 0; k < 5; k++)
    fprintf(out, "%-16s%s\n", names[k], bertcl_tokenizer_describe(tok, (bertcl_tokenizer_stage)k));
  size_t ml = bertcl_tokenizer_max_length(tok);
  if (ml == SIZE_MAX)
    fprintf(out, "%-16s%s\n", "max length", "none");
  else
    fprintf(out, "%-16s%zu\n", "max length", ml);
}

static json_t *int_array(const int32_t *v, size_t n, int null_negative) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, (null_negative && v[i] < 0) ? json_null() : json_integer(v[i]));
  return a;
}

static int print_encoding(const bertcl_encoding *e) {
  json_t *o = json_object();
  json_t *toks = json_array(), *offs = json_array();
  for (size_t i = 0; i < e->n; i++) {
    json_t *t = json_string(e->tokens[i] ? e->tokens[i] : "");
    json_array_append_new(toks, t ? t : json_string("\xef\xbf\xbd")); /* invalid vocab UTF-8 */
    json_array_append_new(offs,
                          json_pack("[ii]", (int)e->offsets[2 * i], (int)e->offsets[2 * i + 1]));
  }
  json_object_set_new(o, "ids", int_array(e->ids, e->n, 0));
  json_object_set_new(o, "tokens", toks);
  json_object_set_new(o, "type_ids", int_array(e->type_ids, e->n, 0));
  json_object_set_new(o, "offsets", offs);
  json_object_set_new(o, "word_ids", int_array(e->word_ids, e->n, 1));
  json_object_set_new(o, "overflow",
                      json_pack("[II]", (json_int_t)e->overflow[0], (json_int_t)e->overflow[1]));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!s) return -1;
  puts(s);
  free(s);
  return 0;
}

int bc_cmd_tokenize(int argc, char **argv) {
  const char *model = NULL, *input = NULL;
  bertcl_tokenize_options opt = {0};
  int pair_mode = 0, jsonl = -1, pipeline = 0; /* jsonl -1: decided by the first line */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_next = i + 1 < argc;
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_next) {
      model = argv[++i];
    } else if ((!strcmp(a, "-i") || !strcmp(a, "--input")) && has_next) {
      input = argv[++i];
    } else if (!strcmp(a, "--max-len") && has_next) {
      char *end;
      errno = 0;
      long long v = strtoll(argv[++i], &end, 10);
      if (errno || *end || v <= 0) {
        bc_cli_error("tokenize: --max-len needs a positive integer, got '%s'", argv[i]);
        return 2;
      }
      opt.max_length = (size_t)v;
    } else if (!strcmp(a, "--truncation") && has_next) {
      const char *s = argv[++i];
      if (!strcmp(s, "longest_first"))
        opt.truncation = BERTCL_TRUNC_LONGEST_FIRST;
      else if (!strcmp(s, "only_first"))
        opt.truncation = BERTCL_TRUNC_ONLY_FIRST;
      else if (!strcmp(s, "only_second"))
        opt.truncation = BERTCL_TRUNC_ONLY_SECOND;
      else if (!strcmp(s, "none"))
        opt.truncation = BERTCL_TRUNC_NONE;
      else {
        bc_cli_error("tokenize: unknown truncation '%s'", s);
        return 2;
      }
    } else if (!strcmp(a, "--pair")) {
      pair_mode = 1;
    } else if (!strcmp(a, "--text")) {
      jsonl = 0;
    } else if (!strcmp(a, "--no-special-tokens")) {
      opt.no_special_tokens = 1;
    } else if (!strcmp(a, "--split-special-tokens")) {
      opt.split_special_tokens = 1;
    } else if (!strcmp(a, "--pipeline")) {
      pipeline = 1;
    } else {
      bc_cli_error("tokenize: unknown or incomplete option '%s' (see bertcl tokenize --help)", a);
      return 2;
    }
  }
  if (!model) {
    bc_cli_error("tokenize: -m MODEL_DIR is required");
    return 2;
  }
  bertcl_tokenizer *tok = NULL;
  if (bertcl_tokenizer_load(&tok, model) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    return 1;
  }
  if (pipeline) {
    bc_cli_print_pipeline(stdout, tok);
    bertcl_tokenizer_free(tok);
    return fflush(stdout) != 0;
  }
  FILE *in = stdin;
  if (input && !(in = fopen(input, "rb"))) {
    bc_cli_error("tokenize: cannot open %s: %s", input, strerror(errno));
    bertcl_tokenizer_free(tok);
    return 1;
  }
  const char *name = input ? input : "<stdin>";
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  long lineno = 0;
  int rc = 0;
  while ((got = getline(&line, &cap, in)) >= 0) {
    lineno++;
    size_t len = (size_t)got;
    if (len && line[len - 1] == '\n') line[--len] = '\0';
    const char *text = line, *pair = NULL;
    size_t tlen = len, plen = 0;
    json_t *j = NULL;
    if (jsonl < 0 && len) {
      j = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
      jsonl = json_is_string(json_object_get(j, "text"));
      json_decref(j);
      j = NULL;
    }
    if (jsonl == 1 && len) {
      json_error_t je;
      j = json_loadb(line, len, JSON_ALLOW_NUL, &je);
      json_t *t = j ? json_object_get(j, "text") : NULL;
      if (!json_is_string(t)) {
        bc_cli_error("%s:%ld: not a JSON object with a \"text\" string%s%s", name, lineno,
                     j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        rc = 1;
        break;
      }
      text = json_string_value(t);
      tlen = json_string_length(t);
      json_t *p = json_object_get(j, "text_pair");
      if (json_is_string(p)) {
        pair = json_string_value(p);
        plen = json_string_length(p);
      }
    } else if (pair_mode) {
      char *tab = memchr(line, '\t', len);
      if (tab) {
        tlen = (size_t)(tab - line);
        pair = tab + 1;
        plen = len - tlen - 1;
      } else {
        pair = "";
      }
    }
    bertcl_encoding *e = NULL;
    int st = bertcl_tokenizer_encode(tok, text, tlen, pair, plen, &opt, &e);
    json_decref(j);
    if (st != BERTCL_OK) {
      bc_cli_error("%s:%ld: %s", name, lineno, bertcl_last_error(NULL));
      rc = 1;
      break;
    }
    if (e->replaced[0] || e->replaced[1])
      fprintf(stderr, "bertcl: warning: %s:%ld: %zu invalid UTF-8 sequence(s) replaced by U+FFFD\n",
              name, lineno, e->replaced[0] + e->replaced[1]);
    if (print_encoding(e)) {
      bc_cli_error("out of memory writing JSON");
      rc = 1;
    }
    bertcl_encoding_free(e);
    if (rc) break;
  }
  free(line);
  if (in != stdin) fclose(in);
  bertcl_tokenizer_free(tok);
  if (fflush(stdout) != 0) rc = 1;
  return rc;
}
