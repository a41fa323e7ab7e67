/* In-memory BERT model: configuration and fp32 host weights, as loaded from a Hugging Face model
 * directory (config.json + model.safetensors [+ sentence-transformers modules]).
 * This is the contract between the loader (src/model), the plain-C reference (src/ref) and the
 * OpenCL encoder (src/encoder). Weight layouts are PyTorch's: a Linear weight is (out, in),
 * row-major. */
#ifndef BC_MODEL_H
#define BC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum { BC_ACT_GELU = 0, BC_ACT_GELU_TANH = 1, BC_ACT_RELU = 2 } bc_act;

/* Pooling modes (bit flags, so several can be asked for at once). */
enum { BC_POOL_CLS = 1, BC_POOL_MEAN = 2, BC_POOL_MAX = 4, BC_POOL_POOLER = 8 };

typedef struct {
  int vocab_size;
  int hidden_size;       /* C */
  int num_layers;        /* L */
  int num_heads;         /* NH; head size = C / NH */
  int intermediate_size; /* I */
  int max_position;      /* max_position_embeddings */
  int type_vocab_size;
  int pad_token_id;
  float layer_norm_eps;
  bc_act act;
  int num_labels;        /* classifier outputs; 0 when the checkpoint has no classifier */
  char problem_type[64]; /* "" or single_label_classification / regression / ... */
  /* sentence-transformers defaults (0 when the directory has none) */
  int st_pooling;        /* BC_POOL_* flags from 1_Pooling/config.json */
  int st_normalize;      /* a Normalize module is listed in modules.json */
  int st_max_seq_length; /* sentence_bert_config.json max_seq_length (at most max_position) */
  int st_do_lower_case;  /* sentence_bert_config.json do_lower_case: lowercase text first */
} bc_config;

typedef struct {
  const float *q_w, *q_b;         /* (C, C), (C) attention.self.query */
  const float *k_w, *k_b;         /* (C, C), (C) attention.self.key */
  const float *v_w, *v_b;         /* (C, C), (C) attention.self.value */
  const float *ao_w, *ao_b;       /* (C, C), (C) attention.output.dense */
  const float *ln1_w, *ln1_b;     /* (C), (C) attention.output.LayerNorm */
  const float *inter_w, *inter_b; /* (I, C), (I) intermediate.dense */
  const float *out_w, *out_b;     /* (C, I), (C) output.dense */
  const float *ln2_w, *ln2_b;     /* (C), (C) output.LayerNorm */
} bc_layer_weights;

typedef struct {
  const float *word_emb;          /* (V, C) embeddings.word_embeddings */
  const float *pos_emb;           /* (P, C) embeddings.position_embeddings */
  const float *type_emb;          /* (TT, C) embeddings.token_type_embeddings */
  const float *emb_ln_w, *emb_ln_b; /* (C), (C) embeddings.LayerNorm */
  bc_layer_weights *layers;       /* (L) */
  const float *pool_w, *pool_b;   /* (C, C), (C) pooler.dense; NULL when absent */
  const float *cls_w, *cls_b;     /* (num_labels, C), (num_labels) classifier; NULL when absent */
} bc_weights;



/* Checks a (B, T) batch of token ids (and type ids, may be NULL) against the configuration:
 * T <= max_position_embeddings, every id inside the vocabulary, every type id inside
 * [0, type_vocab_size). Returns BERTCL_ERR_INVALID_ARG with the first offender named. */
int bc_config_check_batch(bc_err *err, const bc_config *c, const int32_t *ids,
                          const int32_t *type_ids, int B, int T);

/* The loaded model (public opaque type bertcl_model). Internal accessors: */
struct bertcl_model;
const bc_config *bc_model_config(const struct bertcl_model *m);
const bc_weights *bc_model_weights(const struct bertcl_model *m);
/* The directory it was loaded from. */
const char *bc_model_dir(const struct bertcl_model *m);
#endif /* BC_MODEL_H */
