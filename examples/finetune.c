/* Fine-tuning with the bertcl library: bertcl_finetune, then the result as a classifier.
 * usage: bertcl-example-finetune MODEL_DIR TRAIN_FILE EVAL_FILE OUT_DIR [EPOCHS]
 * TRAIN_FILE / EVAL_FILE: JSONL {"text": ..., "label": ...} or TSV/CSV with a header.
 * Prints the library's progress lines, then classifies two texts with the exported model. */
#include <bertcl.h>
#include <stdio.h>
#include <stdlib.h>

/* Every event carries a ready-made line; a program could read p->loss, p->metrics... instead. */
static int on_progress(const bertcl_progress *p, void *user) {
  (void)user;
  if (p->event != BERTCL_EVENT_STEP) printf("%s\n", p->message);
  return 0; /* non-zero would stop after this step, with the checkpoint saved */
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL_DIR TRAIN_FILE EVAL_FILE OUT_DIR [EPOCHS]\n", argv[0]);
    return 2;
  }
  bertcl_ctx *ctx = NULL;
  bertcl_model *model = NULL, *tuned = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_classifier *cls = NULL;
  int rc = 1;
  if (bertcl_ctx_create(&ctx, NULL) || bertcl_model_load(&model, argv[1]) ||
      bertcl_tokenizer_load(&tok, argv[1])) {
    fprintf(stderr, "%s\n", bertcl_last_error(NULL));
    goto done;
  }
  bertcl_finetune_options opt;
  bertcl_finetune_options_init(&opt); /* transformers' Trainer defaults: 3 epochs, lr 2e-5 */
  opt.train_file = argv[2];
  opt.eval_file = argv[3];
  opt.output_dir = argv[4];
  if (argc > 5) opt.epochs = atoi(argv[5]);
  opt.batch_size = 8;
  opt.lr = 1e-3;
  bertcl_finetune_result res;
  if (bertcl_finetune(ctx, model, tok, &opt, on_progress, NULL, &res) != BERTCL_OK) {
    fprintf(stderr, "%s\n", bertcl_last_error(ctx));
    goto done;
  }
  printf("%ld steps, best eval metric %.4f at step %ld\n", res.steps, res.best_metric,
         res.best_step);
  /* the output directory is a model directory: load it and classify */
  if (bertcl_model_load(&tuned, argv[4]) || bertcl_classifier_create(&cls, ctx, tuned)) {
    fprintf(stderr, "%s\n", bertcl_last_error(NULL));
    goto done;
  }
  const char *texts[2] = {"good great fine", "bad awful poor"};
  int K = bertcl_classifier_num_labels(cls);
  float *probs = malloc(2 * (size_t)K * sizeof *probs);
  if (!probs ||
      bertcl_classify(cls, tok, texts, NULL, 2, 0, probs, 2 * (size_t)K) != BERTCL_OK) {
    fprintf(stderr, "%s\n", probs ? bertcl_last_error(cls) : "out of memory");
    free(probs);
    goto done;
  }
  for (int i = 0; i < 2; i++) {
    int best = 0;
    for (int k = 1; k < K; k++)
      if (probs[i * K + k] > probs[i * K + best]) best = k;
    printf("%-16s -> %s (%.3f)\n", texts[i], bertcl_classifier_label(cls, best),
           probs[i * K + best]);
  }
  free(probs);
  rc = 0;
done:
  bertcl_classifier_free(cls);
  bertcl_model_free(tuned);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  bertcl_ctx_free(ctx);
  return rc;
}
