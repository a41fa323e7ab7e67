/* The encoder families as data: which config.json model_types bertcl runs, how each family names
 * its config keys and tensors, and its architecture (positions, token types, relative attention
 * bias, classification head). The loader reads these tables; the forward schedules read the
 * resulting bc_config. Adding a family is a row in each table here plus the ops it needs. */
#ifndef BC_FAMILY_H
#define BC_FAMILY_H

#include "model/model.h"

/* Tensor names of one family, one field per bc_weights field (generated from the X-macros of
 * model.h). Embedding, relative-bias and pooler names are relative to the encoder's prefix
 * (bc_family_desc.base_prefix, present in task checkpoints such as
 * RobertaForSequenceClassification, absent in a bare RobertaModel); layer names are relative to
 * layer_prefix; head names are absolute. NULL: the family has no such tensor. */
#define BC_NAME_FIELD(f, r, c, d) const char *f;
typedef struct {
  BC_WEIGHTS_EMB(BC_NAME_FIELD)
  BC_WEIGHTS_REL(BC_NAME_FIELD)
  BC_WEIGHTS_LAYER(BC_NAME_FIELD)
  BC_WEIGHTS_POOL(BC_NAME_FIELD)
  BC_WEIGHTS_HEAD(BC_NAME_FIELD)
} bc_tensor_names;
#undef BC_NAME_FIELD

typedef struct {
  bc_family id;
  const char *name;         /* "roberta" */
  const char *base_prefix;  /* "roberta." */
  const char *layer_prefix; /* printf format of layer l's prefix: "encoder.layer.%d." */
  bc_tensor_names names;
  /* config.json keys of the sizes and rates (DistilBERT has its own) */
  const char *key_hidden, *key_layers, *key_heads, *key_inter, *key_act;
  const char *key_hidden_dropout, *key_attn_dropout;
  const char *key_cls_dropout; /* null value or absent: the hidden dropout */
  int eps_in_config;           /* layer_norm_eps read from config.json (DistilBERT: 1e-12 fixed) */
  int has_types;               /* token_type_embeddings (type_vocab_size from config.json) */
  bc_pos_kind pos_kind;
  int fixed_padding_idx;       /* BC_POS_PADDED: -1 = config.json pad_token_id, else this id */
  int rel_attention_bias;      /* relative_attention_bias with relative_attention_num_buckets */
  int sinusoidal_key;          /* DistilBERT: sinusoidal_pos_embds, a missing table computed */
  bc_cls_head head;
} bc_family_desc;

/* One row per config.json model_type. */
typedef struct {
  const char *model_type;  /* "xlm-roberta" */
  const char *arch_prefix; /* the class-name prefix in "architectures" ("XLMRoberta") */
  bc_family family;
  int vocab_size;          /* transformers' defaults when config.json omits the key */
  int pad_token_id;
} bc_model_type;

const bc_family_desc *bc_family_get(bc_family f);
/* The row of model_type, NULL when bertcl does not run it. */
const bc_model_type *bc_model_type_find(const char *model_type);
/* The row whose arch_prefix starts an architectures[] class name (a config without model_type),
 * NULL when none does. */
const bc_model_type *bc_model_type_from_arch(const char *class_name);
/* The supported model_types as one line: "bert, roberta, ...". */
const char *bc_model_types_supported(void);
/* bertcl's family name ("bert", "roberta", "distilbert", "mpnet"). */
const char *bc_family_name(bc_family f);

/* One trainable tensor of a family's task model (RobertaForSequenceClassification...): its Hugging
 * Face name, the bc_weights field holding it, its PyTorch shape and whether transformers' Trainer
 * decays it (not biases, LayerNorms, or MPNet's relative_attention_bias, whose name holds
 * "bias"). */
typedef struct {
  char name[160];     /* "roberta.encoder.layer.0.attention.self.query.weight" */
  const float **slot; /* &w->word_emb, &w->layers[l].q_w, ... */
  int ndim;
  int64_t shape[2];   /* (out, in) for a Linear weight; shape[1] 0 for a vector */
  int decay;
} bc_param;

/* The trainable tensors of the family's task model over w, in the order of the X-macros of
 * model.h: every encoder tensor the family has (names under base_prefix), the pooler when w has
 * one, the head's dense layer when w has one and the family names it (BERT's is the pooler), the
 * classifier (K rows) when w has one. Fills up to cap entries of out (out may be NULL) and
 * returns the count, or a negative status. Binding a flat buffer is setting *slot. */
int bc_family_params(const bc_config *cfg, bc_weights *w, int K, bc_param *out, int cap);

/* MPNet's relative-position bucket, in [0, BC_REL_BUCKETS), of rel = key position - query
 * position: transformers' MPNetEncoder.relative_position_bucket with its fixed 32 buckets and
 * distance 128 (T5's bidirectional bucketing): 16 buckets for keys before the query and 16 after;
 * in each half, distances 0..7 get a bucket each and the rest share 8 logarithmically spaced
 * buckets, 8 + floor(2 log2(n / 8)) up to 15. Computed in integers, which equals torch's float32
 * formula for every distance (tests/test_families.c checks |rel| <= 2048 against torch's table). */
enum { BC_REL_BUCKETS = 32, BC_REL_MAX_DISTANCE = 128 };
int bc_rel_position_bucket(int rel);

/* DistilBERT's sinusoidal table: out[p, j] = sin(p / 10000^(2 (j/2) / C)) for even j, cos for
 * odd j, computed in double and rounded once (as transformers' numpy code). out (P, C). */
void bc_sinusoidal_positions(float *out, int P, int C);

#endif /* BC_FAMILY_H */
