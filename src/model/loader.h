/* Internal pieces of the model loader, split out so tests and the fuzzer can drive them on
 * bytes in memory: config.json parsing, weight binding, sentence-transformers module files. */
#ifndef BC_LOADER_H
#define BC_LOADER_H

#include <stddef.h>

#include "model/model.h"
#include "model/safetensors.h"

/* What config.json says beyond bc_config. */
typedef struct {
  char model_type[32];
  char hidden_act[32];
  int expected_labels; /* rows a classifier must have: len(id2label), else num_labels, else 2 */
  int n_labels;        /* entries of labels (0 when config.json has no id2label) */
  char **labels;       /* id2label names by id */
  int sinusoidal;      /* DistilBERT sinusoidal_pos_embds: a missing position table is computed */
} bc_config_extra;

/* Parses and validates config.json text; name (the file) is used in messages. On success the
 * caller owns ex->labels (bc_config_extra_free). bc_config's num_labels and st_* are left 0. */
int bc_config_parse(bc_err *err, const char *name, const char *text, size_t len, bc_config *cfg,
                    bc_config_extra *ex);
void bc_config_extra_free(bc_config_extra *ex);

/* modules.json: which sentence-transformers modules a directory has. */
typedef struct {
  int present;           /* modules.json exists */
  char transformer[256]; /* path of the Transformer module ("" = the directory itself) */
  char pooling[256];     /* path of the Pooling module, "" when none */
  int has_pooling;
  int normalize;
} bc_st_modules;

int bc_modules_parse(bc_err *err, const char *name, const char *text, size_t len,
                     bc_st_modules *out);
/* 1_Pooling/config.json: BC_POOL_* flags; hidden_size is checked against
 * word_embedding_dimension. */
int bc_pooling_parse(bc_err *err, const char *name, const char *text, size_t len, int hidden_size,
                     int *flags);
/* sentence_bert_config.json: max_seq_length (0 when absent or null) and do_lower_case. */
int bc_sbert_config_parse(bc_err *err, const char *name, const char *text, size_t len,
                          int *max_seq_length, int *do_lower_case);

/* tokenizer_config.json facts shown by bertcl info. */
typedef struct {
  int do_lower_case;     /* 1/0, -1 when not stated */
  long model_max_length; /* 0 when absent or not a sane length (transformers writes 1e30) */
  char tokenizer_class[64];
} bc_tok_settings;
int bc_tok_settings_parse(bc_err *err, const char *name, const char *text, size_t len,
                          bc_tok_settings *out);

/* Builds a model from config.json text and validated safetensors files (shards): checks every
 * tensor's shape against the config, converts the weights to fp32. dir and weights_name are
 * used for messages (weights_name: "model.safetensors" or the index). Does not take ownership
 * of the files. On error *out is NULL and err says why. */
int bc_model_build(bc_err *err, const char *dir, const char *config_name, const char *config_text,
                   size_t config_len, bc_st_file *const *files, size_t nfiles,
                   const char *weights_name, struct bertcl_model **out);

#endif
