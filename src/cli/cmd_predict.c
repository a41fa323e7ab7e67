/* bertcl predict: parses options, calls bertcl_predict (src/train). */
#include <stdio.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_predict_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl predict -m MODEL_DIR -i FILE [-o OUT] [--batch-size 32] [--max-len N]\n"
          "                      [--text-column NAME] [--pair-column NAME] [--device D]\n"
          "                      [--gemm auto|clblast|blas] [--format auto|text|conll|jsonl]\n\n"
          "Runs a fine-tuned model (bertcl finetune's OUT_DIR, or any\n"
          "BertForSequenceClassification / BertForTokenClassification directory), or a probe\n"
          "(bertcl probe's OUT_DIR: its encoder, features and linear classifier; input as\n"
          "below, the output of a sequence probe as a sequence classifier's, a token probe's\n"
          "the CoNLL lines with the tag appended or {\"tokens\", \"tags\"} per JSONL line).\n\n"
          "Sequence classifiers: input as for finetune (JSONL, TSV, CSV; a label column is not\n"
          "needed), or plain text, one text a line. Output (OUT or stdout): one JSON object a\n"
          "line, {\"label\": NAME, \"probabilities\": {NAME: p, ...}} (regression models,\n"
          "num_labels 1: {\"score\": x}).\n\n"
          "Token classifiers (NER, tagging): input as CoNLL columns (the word first; the output\n"
          "is the input's lines with the predicted tag appended, what conlleval reads), JSONL\n"
          "{\"tokens\": [...]}, or plain text, one sentence a line, split into words as the\n"
          "tokenizer pre-tokenizes it. JSON output, one object a sentence: {\"words\":\n"
          "[{\"word\", \"tag\", \"probability\", \"start\", \"end\"}], \"entities\": [{\"type\",\n"
          "\"start\", \"end\", \"text\"}]} (start/end of words: characters of the line; of\n"
          "entities: word indices, end exclusive). Sentences longer than --max-len tokens run in\n"
          "windows; every word gets a tag.\n\n"
          "options:\n"
          "  --format F      input: auto (default: by content), text, conll or jsonl\n"
          "  --max-len N     tokens per example (default: the model's maximum)\n"
          "  --batch-size N  examples per device batch (default 32)\n");
}

int bc_cmd_predict(int argc, char **argv) {
  bertcl_predict_options o = {0};
  const char *model_dir = NULL, *device = NULL, *gemm = NULL, *format = NULL;
  long batch = 32, max_len = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")    ? &model_dir
                       : !strcmp(a, "-i") || !strcmp(a, "--input")   ? &o.input_file
                       : !strcmp(a, "-o") || !strcmp(a, "--output")  ? &o.output_file
                       : !strcmp(a, "--device")                      ? &device
                       : !strcmp(a, "--gemm")                        ? &gemm
                       : !strcmp(a, "--format")                      ? &format
                       : !strcmp(a, "--text-column")                 ? &o.text_column
                       : !strcmp(a, "--pair-column")                 ? &o.pair_column
                                                                     : NULL;
    if (dst) {
      if (!v) return bc_cli_error("predict: %s needs a value", a), 2;
      *dst = v;
      i++;
    } else if (!strcmp(a, "--batch-size") || !strcmp(a, "--max-len")) {
      long *d = !strcmp(a, "--batch-size") ? &batch : &max_len;
      if (!v || bc_cli_num_l(v, !strcmp(a, "--batch-size") ? 1 : 3, d))
        return bc_cli_error("predict: bad %s '%s'", a, v ? v : ""), 2;
      i++;
    } else {
      return bc_cli_error("predict: unknown option '%s' (see bertcl predict --help)", a), 2;
    }
  }
  if (!model_dir || !o.input_file)
    return bc_cli_error("predict: -m MODEL_DIR and -i FILE are required"), 2;
  if (!format || !strcmp(format, "auto")) o.format = BERTCL_INPUT_AUTO;
  else if (!strcmp(format, "text")) o.format = BERTCL_INPUT_TEXT;
  else if (!strcmp(format, "conll")) o.format = BERTCL_INPUT_CONLL;
  else if (!strcmp(format, "jsonl")) o.format = BERTCL_INPUT_JSONL;
  else return bc_cli_error("predict: bad --format '%s' (auto, text, conll or jsonl)", format), 2;
  o.batch_size = (size_t)batch;
  o.max_length = (size_t)max_len;
  int ret = 1;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_ctx *ctx = NULL;
  bertcl_ctx_options copt = {.device = device, .gemm = gemm};
  if (bertcl_probe_dir_is_probe(model_dir)) { /* bertcl probe's OUT_DIR */
    if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(NULL));
    } else if (bertcl_probe_predict(ctx, model_dir, &o, NULL, NULL) != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(ctx));
    } else {
      ret = 0;
    }
    bertcl_ctx_free(ctx);
    return ret;
  }
  if (bc_cli_open(model_dir, device, gemm, &model, &tok, &ctx)) goto done;
  if (bertcl_predict(ctx, model, tok, &o, NULL, NULL) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  ret = 0;
done:
  bc_cli_close(ctx, tok, model);
  return ret;
}
