/* libFuzzer target: BPE tokenizers (RoBERTa style byte-level with the GPT-2 regex, Llama 3 style
 * Split regex, classic "##"/"</w>" with fused unk, byte_fallback, NFKD/NFC + ByteLevel
 * normalizer) on arbitrary text, pairs, batches, every option; and tokenizer.json text (seeds:
 * small BPE pipelines). Input format and invariants: tok_fuzz.h. */
#include "tok_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const char *const names[] = {"roberta", "llama3", "bpe-classic", "bpe-fallback", "nfx",
                                      NULL};
  fz_load(names);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_run(data, size); }
