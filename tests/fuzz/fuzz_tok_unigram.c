/* libFuzzer target: Unigram tokenizers (XLM-R style with the Precompiled charsmap, nmt_nfkc_cf
 * with byte_fallback, tied scores, the legacy Metaspace form) on arbitrary text, pairs, batches,
 * every option; and tokenizer.json text (seeds: small Unigram pipelines, one with a Precompiled
 * charsmap). Input format and invariants: tok_fuzz.h. */
#include "tok_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const char *const names[] = {"xlmr", "unigram-cf", "unigram-ties", "xlmr-legacy", NULL};
  fz_load(names);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_run(data, size); }
