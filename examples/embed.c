/* Sentence embeddings with the bertcl library: the README's example as a program.
 * usage: bertcl-example-embed MODEL_DIR "text one" "text two" ...
 * Prints each text's embedding norm and the cosine similarity of every pair. */
#include <bertcl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  const char *const *texts = (const char *const *)argv + 2;
  size_t n = (size_t)argc - 2;
  bertcl_ctx *ctx = NULL;          /* a device: NULL options = $BERTCL_DEVICE or the default */
  bertcl_model *model = NULL;      /* a Hugging Face model directory in host memory */
  bertcl_tokenizer *tok = NULL;    /* its WordPiece tokenizer, identical to BertTokenizerFast */
  bertcl_encoder *enc = NULL;      /* the weights on the device */
  float *emb = NULL;
  int rc = 1;
  if (bertcl_ctx_create(&ctx, NULL) || bertcl_model_load(&model, dir) ||
      bertcl_tokenizer_load(&tok, dir) || bertcl_encoder_create(&enc, ctx, model)) {
    fprintf(stderr, "%s\n", bertcl_last_error(NULL)); /* names the call, error and file:line */
    goto done;
  }
  bertcl_encode_options opt = {.pool = BERTCL_POOL_MEAN, .normalize = 1};
  size_t width = bertcl_encode_width(enc, &opt);
  emb = malloc(n * width * sizeof *emb);
  if (!emb) goto done;
  if (bertcl_encode(enc, tok, texts, NULL, n, &opt, emb, n * width) != BERTCL_OK) {
    fprintf(stderr, "%s\n", bertcl_last_error(enc));
    goto done;
  }
  printf("%zu texts, %zu floats each, on %s\n", n, width, bertcl_ctx_device(ctx)->name);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      double dot = 0;
      for (size_t c = 0; c < width; c++) dot += (double)emb[i * width + c] * emb[j * width + c];
      printf("cosine(%zu, %zu) = %.4f\n", i, j, dot);
    }
  rc = 0;
done:
  free(emb);
  bertcl_encoder_free(enc);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  bertcl_ctx_free(ctx);
  return rc;
}
