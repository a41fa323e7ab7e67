/* bertcl info -m MODEL_DIR [--json] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_info_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl info -m MODEL_DIR [--json]\n\n"
          "Loads and validates a Hugging Face encoder model directory (BERT, RoBERTa,\n"
          "XLM-RoBERTa, CamemBERT, DistilBERT, MPNet: config.json,\n"
          "model.safetensors or a sharded index, sentence-transformers modules) and prints\n"
          "its architecture, parameter count, dtypes on disk, pooling and normalisation\n"
          "defaults, tokenizer pipeline (normalizer, pre-tokenizer, model, post-processor,\n"
          "added tokens) and maximum length. An invalid file gives exit\n"
          "status 1 and one line naming the file and what is wrong.\n\n"
          "options:\n"
          "  -m, --model DIR   the model directory\n"
          "  --json            print one JSON object\n"
          "  -h, --help        this text\n");
}

/* The error on one line: control characters (from hostile names) become '?'. */
static void print_error(const char *msg) {
  char line[1024];
  size_t i = 0;
  for (; msg[i] && i + 1 < sizeof line; i++)
    line[i] = ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7F) ? '?' : msg[i];
  line[i] = '\0';
  bc_cli_error("info: %s", line);
}

static const char *act_form(const char *act) {
  if (strcmp(act, "gelu") == 0) return "erf form";
  if (strcmp(act, "relu") == 0) return "";
  return "tanh form";
}

int bc_cmd_info(int argc, char **argv) {
  const char *dir = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if ((strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) && i + 1 < argc) {
      dir = argv[++i];
    } else if (strncmp(argv[i], "--model=", 8) == 0) {
      dir = argv[i] + 8;
    } else {
      bc_cli_error("info: unknown option '%s' (see bertcl info --help)", argv[i]);
      return 2;
    }
  }
  if (!dir) {
    bc_cli_error("info: no model directory; use -m MODEL_DIR (see bertcl info --help)");
    return 2;
  }
  bertcl_model *m = NULL;
  if (bertcl_model_load(&m, dir) != BERTCL_OK) {
    print_error(bertcl_last_error(NULL));
    return 1;
  }
  bertcl_model_info in;
  if (bertcl_model_get_info(m, &in) != BERTCL_OK) {
    print_error(bertcl_last_error(NULL));
    bertcl_model_free(m);
    return 1;
  }
  /* the tokenizer's pipeline, when the directory has a tokenizer */
  bertcl_tokenizer *tk = NULL;
  if ((in.has_tokenizer_json || in.has_vocab_txt) && bertcl_tokenizer_load(&tk, dir) != BERTCL_OK) {
    print_error(bertcl_last_error(NULL));
    bertcl_model_free(m);
    return 1;
  }
  if (json) {
    /* the float eps as the decimal config.json wrote (1e-12, not 9.99999996e-13) */
    char epsbuf[32];
    snprintf(epsbuf, sizeof epsbuf, "%.7g", (double)in.layer_norm_eps);
    double eps = strtod(epsbuf, NULL);
    json_t *labels = json_array();
    for (int i = 0; i < in.num_labels; i++) {
      const char *l = bertcl_model_label(m, i);
      json_array_append_new(labels, l ? json_string(l) : json_null());
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:b, s:i, s:o, s:o, "
        "s:I, s:s, s:i, s:i}",
        "model", dir, "model_type", in.model_type, "layers", in.num_layers, "hidden_size",
        in.hidden_size, "heads", in.num_heads, "intermediate_size", in.intermediate_size,
        "vocab_size", in.vocab_size, "max_position_embeddings", in.max_position, "type_vocab_size",
        in.type_vocab_size, "pad_token_id", in.pad_token_id, "hidden_act", in.hidden_act,
        "layer_norm_eps", eps, "pooler", in.has_pooler, "num_labels", in.num_labels, "labels",
        labels, "problem_type", in.problem_type[0] ? json_string(in.problem_type) : json_null(),
        "parameters", (json_int_t)in.num_params, "dtypes", in.dtypes, "files", in.num_files,
        "unused_tensors", in.num_unused);
    json_t *tok = json_pack("{s:b, s:b, s:s}", "vocab_txt", in.has_vocab_txt, "tokenizer_json",
                            in.has_tokenizer_json, "class", in.tokenizer_class);
    json_object_set_new(tok, "do_lower_case",
                        in.do_lower_case < 0 ? json_null() : json_boolean(in.do_lower_case));
    json_object_set_new(o, "family", json_string(in.family));
    json_object_set_new(o, "pooling", in.pooling[0] ? json_string(in.pooling) : json_null());
    json_object_set_new(o, "normalize", json_boolean(in.normalize));
    json_object_set_new(o, "st_max_seq_length",
                        in.st_max_seq_length ? json_integer(in.st_max_seq_length) : json_null());
    json_object_set_new(o, "max_length", json_integer(in.max_length));
    if (tk) {
      static const char *const keys[5] = {"normalizer", "pre_tokenizer", "model",
                                          "post_processor", "added_tokens"};
      json_t *pl = json_object();
      json_object_set_new(pl, "model_type", json_string(bertcl_tokenizer_model_type(tk)));
      for (int k = 0; k < 5; k++)
        json_object_set_new(pl, keys[k],
                            json_string(bertcl_tokenizer_describe(tk, (bertcl_tokenizer_stage)k)));
      json_object_set_new(tok, "pipeline", pl);
    }
    json_object_set_new(o, "tokenizer", tok);
    char *s =
        o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    if (s) puts(s);
    free(s);
    json_decref(o);
    bertcl_tokenizer_free(tk);
    bertcl_model_free(m);
    return s ? 0 : 1;
  }
  printf("model           %s\n", dir);
  printf("model type      %s\n", in.model_type);
  printf("family          %s\n", in.family);
  printf("layers          %d\n", in.num_layers);
  printf("hidden size     %d\n", in.hidden_size);
  printf("heads           %d (head size %d)\n", in.num_heads, in.hidden_size / in.num_heads);
  printf("intermediate    %d\n", in.intermediate_size);
  printf("activation      %s%s%s%s\n", in.hidden_act, *act_form(in.hidden_act) ? " (" : "",
         act_form(in.hidden_act), *act_form(in.hidden_act) ? ")" : "");
  printf("vocabulary      %d\n", in.vocab_size);
  printf("positions       %d\n", in.max_position);
  if (in.type_vocab_size > 0)
    printf("token types     %d\n", in.type_vocab_size);
  else
    printf("token types     none\n");
  printf("layer norm eps  %g\n", (double)in.layer_norm_eps);
  printf("pooler          %s\n", in.has_pooler ? "yes" : "no");
  if (in.num_labels > 0) {
    printf("classifier      %d labels", in.num_labels);
    for (int i = 0; i < in.num_labels && i < 8; i++) {
      const char *l = bertcl_model_label(m, i);
      printf("%s%s", i ? ", " : " (", l ? l : "?");
    }
    printf("%s%s%s\n", in.num_labels > 8 ? ", ...)" : ")", in.problem_type[0] ? ", " : "",
           in.problem_type);
  } else {
    printf("classifier      none\n");
  }
  printf("parameters      %llu (%.1f M)\n", (unsigned long long)in.num_params,
         (double)in.num_params / 1e6);
  printf("dtypes on disk  %s (%d file%s, %d unused tensor%s)\n", in.dtypes, in.num_files,
         in.num_files == 1 ? "" : "s", in.num_unused, in.num_unused == 1 ? "" : "s");
  printf("pooling         %s\n", in.pooling[0] ? in.pooling
                                               : "none (no sentence-transformers "
                                                 "Pooling module)");
  printf("normalize       %s\n", in.normalize ? "yes (L2)" : "no");
  if (in.st_max_seq_length)
    printf("max length      %d (sentence_bert_config.json max_seq_length)\n", in.max_length);
  else
    printf("max length      %d\n", in.max_length);
  printf("tokenizer       %s%s%s, lowercase %s%s%s\n",
         in.has_tokenizer_json ? "tokenizer.json" : "",
         in.has_tokenizer_json && in.has_vocab_txt ? " + " : "",
         in.has_vocab_txt ? "vocab.txt" : (in.has_tokenizer_json ? "" : "no tokenizer files"),
         in.do_lower_case < 0 ? "not stated"
         : in.do_lower_case   ? "yes"
                              : "no",
         in.tokenizer_class[0] ? ", class " : "", in.tokenizer_class);
  if (tk) {
    /* the pipeline, indented under the tokenizer line */
    static const char *const names[5] = {"normalizer", "pre-tokenizer", "model",
                                         "post-processor", "added tokens"};
    for (int k = 0; k < 5; k++)
      printf("  %-16s%s\n", names[k], bertcl_tokenizer_describe(tk, (bertcl_tokenizer_stage)k));
  }
  bertcl_tokenizer_free(tk);
  bertcl_model_free(m);
  return 0;
}
