/* libFuzzer target: WordPiece tokenizers (uncased/cased/toy BERT, all-mpnet-base-v2, a WordLevel
 * one) on arbitrary text, pairs, batches, every option; and tokenizer.json text (seeds: small
 * WordPiece / WordLevel pipelines). Input format and invariants: tok_fuzz.h. */
#include "tok_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const char *const names[] = {"uncased", "cased", "toy", "mpnet", "wordlevel", NULL};
  fz_load(names);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_run(data, size); }
