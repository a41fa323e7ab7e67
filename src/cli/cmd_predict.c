/* bertcl predict: parses options, calls bertcl_predict (src/train). */
#include <stdio.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_predict_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl predict -m MODEL_DIR -i FILE [-o OUT] [--batch-size 32] [--max-len N]\n"
          "                      [--text-column NAME] [--pair-column NAME] [--device D]\n"
          "                      [--gemm auto|clblast|blas]\n\n"
          "Classifies texts with a fine-tuned model (bertcl finetune's OUT_DIR, or any\n"
          "BertForSequenceClassification directory). Input as for finetune (JSONL, TSV, CSV;\n"
          "a label column is not needed), or plain text, one text a line. Output (OUT or stdout):\n"
          "one JSON object a line, {\"label\": NAME, \"probabilities\": {NAME: p, ...}}\n"
          "(regression models, num_labels 1: {\"score\": x}).\n");
}

int bc_cmd_predict(int argc, char **argv) {
  bertcl_predict_options o = {0};
  const char *model_dir = NULL, *device = NULL, *gemm = NULL;
  long batch = 32, max_len = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")    ? &model_dir
                       : !strcmp(a, "-i") || !strcmp(a, "--input")   ? &o.input_file
                       : !strcmp(a, "-o") || !strcmp(a, "--output")  ? &o.output_file
                       : !strcmp(a, "--device")                      ? &device
                       : !strcmp(a, "--gemm")                        ? &gemm
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
  o.batch_size = (size_t)batch;
  o.max_length = (size_t)max_len;
  int ret = 1;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_ctx *ctx = NULL;
  bertcl_ctx_options copt = {.device = device, .gemm = gemm};
  if (bertcl_model_load(&model, model_dir) != BERTCL_OK ||
      bertcl_tokenizer_load(&tok, model_dir) != BERTCL_OK ||
      bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  if (bertcl_predict(ctx, model, tok, &o, NULL, NULL) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  ret = 0;
done:
  bertcl_ctx_free(ctx);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  return ret;
}
