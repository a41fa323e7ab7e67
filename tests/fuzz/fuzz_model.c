/* libFuzzer target over the model loader: config.json parsing, the safetensors reader and the
 * weight binding (shape cross-checks, F16/BF16 conversion), plus the sentence-transformers and
 * tokenizer_config parsers.
 *
 * Input: u16 little-endian n, then n bytes of config.json text (n is capped at what is left),
 * then the bytes of a safetensors file. Seeds: tests/fuzz/corpus_model (written by
 * tests/gen/gen_tiny_model.py --fuzz-corpus).
 *
 *   CC=clang cmake -S . -B build-fuzz -DBERTCL_FUZZ=ON -DBERTCL_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_model
 *   build-fuzz/tests/fuzz/fuzz_model -max_total_time=60 tests/fuzz/corpus_model
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/loader.h"
#include "model/model.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t n = (size_t)data[0] | (size_t)data[1] << 8;
  data += 2;
  size -= 2;
  if (n > size) n = size;
  const char *cfg = (const char *)data;
  const uint8_t *st = data + n;
  size_t st_len = size - n;

  bc_err err;
  bc_err_clear(&err);
  /* the small JSON parsers on the config bytes */
  bc_st_modules mods;
  bc_modules_parse(&err, "modules.json", cfg, n, &mods);
  int flags = 0, maxlen = 0, lower = 0;
  bc_pooling_parse(&err, "1_Pooling/config.json", cfg, n, 32, &flags);
  bc_sbert_config_parse(&err, "sentence_bert_config.json", cfg, n, &maxlen, &lower);
  bc_tok_settings tok;
  bc_tok_settings_parse(&err, "tokenizer_config.json", cfg, n, &tok);

  /* the reader, then every tensor converted */
  bc_st_file *f = NULL;
  if (bc_st_open_mem(&err, "model.safetensors", st, st_len, &f) != BERTCL_OK) return 0;
  for (size_t i = 0; i < bc_st_count(f); i++) {
    const bc_st_tensor *t = bc_st_at(f, i);
    if (t->numel > (1u << 22)) continue;
    float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
    if (!buf) continue;
    bc_st_read_f32(&err, t, buf, t->numel);
    free(buf);
  }
  bc_st_metadata(f, "format");

  /* config + weights -> model */
  struct bertcl_model *m = NULL;
  bc_st_file *files[1] = {f};
  if (bc_model_build(&err, "fuzz", "config.json", cfg, n, files, 1, "model.safetensors", &m) ==
      BERTCL_OK) {
    const bc_config *c = bc_model_config(m);
    const bc_weights *w = bc_model_weights(m);
    /* touch the first and last element of the big tensors */
    volatile float sink = w->word_emb[0] + w->word_emb[(size_t)c->vocab_size * c->hidden_size - 1];
    sink += w->layers[c->num_layers - 1].out_w[0];
    (void)sink;
    bertcl_model_info info;
    bertcl_model_get_info(m, &info);
    bertcl_model_free(m);
  }
  bc_st_close(f);
  return 0;
}
