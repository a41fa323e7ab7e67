/* Random-weight models of named BERT configurations (see random.h). */
#include "model/random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/writers.h"
#include "model/loader.h"

typedef struct {
  const char *name;
  int layers, hidden, heads, inter, vocab, positions;
} named_config;

static const named_config k_configs[] = {
    {"base", 12, 768, 12, 3072, 30522, 512},
    {"large", 24, 1024, 16, 4096, 30522, 512},
    {"minilm", 6, 384, 12, 1536, 30522, 512},
    {"tiny", 2, 32, 4, 64, 1000, 64},
};
#define NCONFIGS (sizeof k_configs / sizeof k_configs[0])

const char *const bc_random_config_names[] = {"base", "large", "minilm", "tiny", NULL};

static const named_config *find_config(bc_err *err, const char *name) {
  for (size_t i = 0; name && i < NCONFIGS; i++)
    if (strcmp(k_configs[i].name, name) == 0) return &k_configs[i];
  bc_fail(err, BERTCL_ERR_INVALID_ARG, "unknown configuration '%s' (base, large, minilm, tiny)",
          name ? name : "(null)");
  return NULL;
}

static int config_text(const named_config *c, char *out, size_t n) {
  return snprintf(out, n,
                  "{\"model_type\": \"bert\", \"architectures\": [\"BertModel\"], "
                  "\"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": %d, "
                  "\"num_attention_heads\": %d, \"intermediate_size\": %d, "
                  "\"max_position_embeddings\": %d, \"type_vocab_size\": 2, "
                  "\"pad_token_id\": 0, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}",
                  c->vocab, c->hidden, c->layers, c->heads, c->inter, c->positions);
}

int bc_random_config(bc_err *err, const char *name, bc_config *cfg) {
  const named_config *c = find_config(err, name);
  if (!c) return BERTCL_ERR_INVALID_ARG;
  char text[1024];
  config_text(c, text, sizeof text);
  bc_config_extra ex;
  memset(cfg, 0, sizeof *cfg);
  int st = bc_config_parse(err, name, text, strlen(text), cfg, &ex);
  if (st == BERTCL_OK) bc_config_extra_free(&ex);
  return st;
}

typedef struct {
  char name[96];
  size_t rows, cols; /* cols 0: a vector */
  int kind;          /* 0 random, 1 ones, 2 zeros */
} tensor_spec;

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

int bc_model_random(bc_err *err, const char *name, uint64_t seed, struct bertcl_model **out) {
  *out = NULL;
  const named_config *c = find_config(err, name);
  if (!c) return BERTCL_ERR_INVALID_ARG;
  size_t C = (size_t)c->hidden, I = (size_t)c->inter;
  size_t nt = 5 + 16 * (size_t)c->layers + 2;
  tensor_spec *t = calloc(nt, sizeof *t);
  char *header = NULL, *blob = NULL;
  bc_st_file *file = NULL;
  int st;
  if (!t) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  size_t k = 0;
#define ADD(r, cl, kd, ...)                                   \
  do {                                                        \
    snprintf(t[k].name, sizeof t[k].name, __VA_ARGS__);       \
    t[k].rows = (r);                                          \
    t[k].cols = (cl);                                         \
    t[k].kind = (kd);                                         \
    k++;                                                      \
  } while (0)
  ADD((size_t)c->vocab, C, 0, "embeddings.word_embeddings.weight");
  ADD((size_t)c->positions, C, 0, "embeddings.position_embeddings.weight");
  ADD(2, C, 0, "embeddings.token_type_embeddings.weight");
  ADD(C, 0, 1, "embeddings.LayerNorm.weight");
  ADD(C, 0, 2, "embeddings.LayerNorm.bias");
  for (int l = 0; l < c->layers; l++) {
    static const char *const lin[] = {"attention.self.query", "attention.self.key",
                                      "attention.self.value", "attention.output.dense"};
    for (int j = 0; j < 4; j++) {
      ADD(C, C, 0, "encoder.layer.%d.%s.weight", l, lin[j]);
      ADD(C, 0, 0, "encoder.layer.%d.%s.bias", l, lin[j]);
    }
    ADD(C, 0, 1, "encoder.layer.%d.attention.output.LayerNorm.weight", l);
    ADD(C, 0, 2, "encoder.layer.%d.attention.output.LayerNorm.bias", l);
    ADD(I, C, 0, "encoder.layer.%d.intermediate.dense.weight", l);
    ADD(I, 0, 0, "encoder.layer.%d.intermediate.dense.bias", l);
    ADD(C, I, 0, "encoder.layer.%d.output.dense.weight", l);
    ADD(C, 0, 0, "encoder.layer.%d.output.dense.bias", l);
    ADD(C, 0, 1, "encoder.layer.%d.output.LayerNorm.weight", l);
    ADD(C, 0, 2, "encoder.layer.%d.output.LayerNorm.bias", l);
  }
  ADD(C, C, 0, "pooler.dense.weight");
  ADD(C, 0, 0, "pooler.dense.bias");
#undef ADD
  /* header: {"name":{"dtype":"F16","shape":[r,c],"data_offsets":[a,b]},...} */
  size_t hcap = k * 192 + 64, hlen = 0, off = 0;
  header = malloc(hcap);
  if (!header) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  header[hlen++] = '{';
  for (size_t i = 0; i < k; i++) {
    size_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
    char shape[64];
    if (t[i].cols)
      snprintf(shape, sizeof shape, "[%zu,%zu]", t[i].rows, t[i].cols);
    else
      snprintf(shape, sizeof shape, "[%zu]", t[i].rows);
    hlen += (size_t)snprintf(header + hlen, hcap - hlen,
                             "%s\"%s\":{\"dtype\":\"F16\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                             i ? "," : "", t[i].name, shape, off, off + 2 * numel);
    off += 2 * numel;
  }
  header[hlen++] = '}';
  while (hlen % 8) header[hlen++] = ' ';
  size_t total = 8 + hlen + off;
  blob = malloc(total);
  if (!blob) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of host memory for %zu bytes of random weights",
                 total);
    goto fail;
  }
  for (int b = 0; b < 8; b++) blob[b] = (char)(((uint64_t)hlen >> (8 * b)) & 0xFF);
  memcpy(blob + 8, header, hlen);
  uint16_t *d = (uint16_t *)(void *)(blob + 8 + hlen); /* hlen is a multiple of 8 */
  uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
  const uint16_t one = bc_f32_to_f16(1.0f);
  for (size_t i = 0; i < k; i++) {
    size_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
    for (size_t j = 0; j < numel; j++) {
      uint16_t v = 0;
      if (t[i].kind == 0) {
        float u = (float)(xorshift(&s) >> 40) / 16777216.0f; /* [0, 1) */
        v = bc_f32_to_f16(0.1f * u - 0.05f);
      } else if (t[i].kind == 1) {
        v = one;
      }
      *d++ = v;
    }
  }
  char label[64];
  snprintf(label, sizeof label, "random:%s", c->name);
  BC_TRY(bc_st_open_mem(err, label, blob, total, &file));
  char cfgtext[1024];
  config_text(c, cfgtext, sizeof cfgtext);
  BC_TRY(bc_model_build(err, label, "config.json", cfgtext, strlen(cfgtext), &file, 1,
                        "random weights", out));
  st = BERTCL_OK;
fail:
  bc_st_close(file);
  free(blob);
  free(header);
  free(t);
  return st;
}
