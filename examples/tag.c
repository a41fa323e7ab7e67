/* Named entities with the bertcl library: a token classifier (bertcl finetune on CoNLL data, or
 * any BertForTokenClassification directory) tags the words of a text.
 * usage: bertcl-example-tag MODEL_DIR "a text" ["another text" ...]
 * Prints each word with its tag and probability, then the entities the tags make. */
#include <bertcl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
    return 2;
  }
  bertcl_ctx *ctx = NULL;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_classifier *cls = NULL;
  int rc = 1;
  if (bertcl_ctx_create(&ctx, NULL) || bertcl_model_load(&model, argv[1]) ||
      bertcl_tokenizer_load(&tok, argv[1]) || bertcl_classifier_create(&cls, ctx, model)) {
    fprintf(stderr, "%s\n", bertcl_last_error(NULL));
    goto done;
  }
  if (bertcl_classifier_task(cls) != BERTCL_TASK_TOKEN_CLASSIFICATION) {
    fprintf(stderr, "%s is not a token classifier\n", argv[1]);
    goto done;
  }
  for (int a = 2; a < argc; a++) {
    bertcl_tagging *t = NULL;
    /* words as the tokenizer splits the text; a long text runs in windows (max_length 0: the
     * model's) and every word gets a tag */
    if (bertcl_tag_text(cls, tok, argv[a], strlen(argv[a]), 0, &t) != BERTCL_OK) {
      fprintf(stderr, "%s\n", bertcl_last_error(cls));
      goto done;
    }
    for (size_t i = 0; i < t->n; i++)
      printf("%-16s %-8s %.3f  [%d, %d)\n", t->words[i], bertcl_classifier_label(cls, t->tags[i]),
             t->probs[i], t->offsets[2 * i], t->offsets[2 * i + 1]);
    /* entities: a run of words tagged B-X / I-X of one type (IOB1 and IOB2 alike) */
    for (size_t i = 0; i < t->n;) {
      const char *tag = bertcl_classifier_label(cls, t->tags[i]);
      if (strlen(tag) < 3 || tag[1] != '-') {
        i++;
        continue;
      }
      size_t j = i + 1;
      while (j < t->n) {
        const char *nt = bertcl_classifier_label(cls, t->tags[j]);
        if (nt[0] != 'I' || strlen(nt) < 3 || strcmp(nt + 2, tag + 2)) break;
        j++;
      }
      printf("entity %s [%d, %d):", tag + 2, t->offsets[2 * i], t->offsets[2 * j - 1]);
      for (size_t k = i; k < j; k++) printf(" %s", t->words[k]);
      printf("\n");
      i = j;
    }
    bertcl_tagging_free(t);
  }
  rc = 0;
done:
  bertcl_classifier_free(cls);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  bertcl_ctx_free(ctx);
  return rc;
}
