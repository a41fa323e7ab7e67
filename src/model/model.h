/* In-memory encoder model (BERT, RoBERTa / XLM-RoBERTa / CamemBERT, DistilBERT, MPNet):
 * configuration and fp32 host weights, as loaded from a Hugging Face model directory
 * (config.json + model.safetensors [+ sentence-transformers modules]).
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

/* Encoder families: the architectures bertcl runs. What differs between them is data in
 * bc_config (positions, token types, relative attention bias, head) and a table of tensor names
 * per family (model/family.h); the forward schedules read the data, they have no per-family
 * branches. The zero value of every field below is BERT's behaviour. */
typedef enum {
  BC_FAMILY_BERT = 0,       /* bert */
  BC_FAMILY_ROBERTA = 1,    /* roberta, xlm-roberta, camembert */
  BC_FAMILY_DISTILBERT = 2, /* distilbert */
  BC_FAMILY_MPNET = 3,      /* mpnet */
  BC_FAMILY_COUNT
} bc_family;

/* Position ids of a (B, T) batch:
 * BC_POS_ARANGE: token t of a row has position t (BERT, DistilBERT);
 * BC_POS_PADDED: fairseq's make_positions (RoBERTa, MPNet): a token whose id is not padding_idx
 * gets padding_idx + (the count of such tokens in 0..t), a token equal to padding_idx gets
 * padding_idx. transformers computes it from the ids, not the attention mask; for a right-padded
 * batch padded with padding_idx the two agree. */
typedef enum { BC_POS_ARANGE = 0, BC_POS_PADDED = 1 } bc_pos_kind;

/* The sequence-classification head on the last hidden state h (B, T, C), x = h[:, 0]:
 * BC_CLS_HEAD_POOLER (BERT):        logits = W_cls dropout(tanh(W_pool x + b_pool)) + b_cls
 * BC_CLS_HEAD_DENSE_TANH (RoBERTa, MPNet: classifier.dense, classifier.out_proj):
 *                               logits = W_out dropout(tanh(W_dense dropout(x) + b)) + b_out
 * BC_CLS_HEAD_DENSE_RELU (DistilBERT: pre_classifier, classifier):
 *                               logits = W_cls dropout(relu(W_pre x + b_pre)) + b_cls
 * The dense layer's weights are bc_weights.head_w/head_b (for BERT the pooler's). */
typedef enum {
  BC_CLS_HEAD_POOLER = 0,     /* BERT: the pooler (tanh dense on [CLS]), dropout, classifier */
  BC_CLS_HEAD_DENSE_TANH = 1, /* RoBERTa / MPNet: dense, tanh, out_proj on the first token */
  BC_CLS_HEAD_DENSE_RELU = 2  /* DistilBERT: pre_classifier, ReLU, classifier */
} bc_cls_head;

typedef struct {
  int vocab_size;
  int hidden_size;       /* C */
  int num_layers;        /* L */
  int num_heads;         /* NH; head size = C / NH */
  int intermediate_size; /* I */
  int max_position;      /* longest sequence the position table allows: max_position_embeddings
                          * (BC_POS_ARANGE), max_position_embeddings - padding_idx - 1
                          * (BC_POS_PADDED) */
  int type_vocab_size;   /* 0: the family has no token types (type ids are ignored) */
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
  /* the family's architecture, as data (zero: BERT) */
  bc_family family;
  bc_pos_kind pos_kind;
  int padding_idx;       /* BC_POS_PADDED: the id that marks padding (RoBERTa: pad_token_id,
                          * MPNet: 1 whatever config.json says, as transformers) */
  int position_rows;     /* rows of the position table (max_position_embeddings); 0 = max_position */
  int rel_buckets;       /* relative attention bias (MPNet): rows of the table (>= 32), 0 = none */
  bc_cls_head head;      /* the sequence-classification head */
  float hidden_dropout;  /* training: embeddings, attention output, FFN output */
  float attn_dropout;    /* training: attention probabilities */
  float cls_dropout;     /* training: the classification head */
} bc_config;

/* Every weight the encoders use, one X-macro per group: X(field, rows, cols, decay).
 * rows/cols are the config sizes (C hidden, I intermediate, V vocabulary, P position rows,
 * TT token types, NB relative-attention buckets, NH heads, K labels; cols 0 for a vector);
 * decay 1 where transformers' Trainer applies weight decay (not biases, LayerNorms or the
 * relative attention bias, whose name holds "bias"). bc_weights, the per-family name tables
 * (model/family.c) and parameter layouts are generated from these lists. */
#define BC_WEIGHTS_EMB(X)                                                                      \
  X(word_emb, V, C, 1)  /* embeddings.word_embeddings */                                      \
  X(pos_emb, P, C, 1)   /* embeddings.position_embeddings */                                  \
  X(type_emb, TT, C, 1) /* embeddings.token_type_embeddings; NULL without token types */      \
  X(emb_ln_w, C, 0, 0)  /* embeddings.LayerNorm */                                            \
  X(emb_ln_b, C, 0, 0)
#define BC_WEIGHTS_REL(X) X(rel_bias, NB, NH, 0) /* encoder.relative_attention_bias (MPNet) */
#define BC_WEIGHTS_LAYER(X)                                                                    \
  X(q_w, C, C, 1) X(q_b, C, 0, 0)         /* attention.self.query */                          \
  X(k_w, C, C, 1) X(k_b, C, 0, 0)         /* attention.self.key */                            \
  X(v_w, C, C, 1) X(v_b, C, 0, 0)         /* attention.self.value */                          \
  X(ao_w, C, C, 1) X(ao_b, C, 0, 0)       /* attention.output.dense */                        \
  X(ln1_w, C, 0, 0) X(ln1_b, C, 0, 0)     /* attention.output.LayerNorm */                    \
  X(inter_w, I, C, 1) X(inter_b, I, 0, 0) /* intermediate.dense */                            \
  X(out_w, C, I, 1) X(out_b, C, 0, 0)     /* output.dense */                                  \
  X(ln2_w, C, 0, 0) X(ln2_b, C, 0, 0)     /* output.LayerNorm */
#define BC_WEIGHTS_POOL(X) X(pool_w, C, C, 1) X(pool_b, C, 0, 0) /* pooler.dense */
#define BC_WEIGHTS_HEAD(X)                                                                     \
  X(head_w, C, C, 1) X(head_b, C, 0, 0) /* the head's dense layer (BERT: the pooler) */       \
  X(cls_w, K, C, 1) X(cls_b, K, 0, 0)   /* classifier / out_proj */

#define BC_WEIGHT_FIELD(f, r, c, d) const float *f;
typedef struct {
  BC_WEIGHTS_LAYER(BC_WEIGHT_FIELD)
} bc_layer_weights;

/* Weight layouts are PyTorch's ((out, in) for a Linear). A tensor the model lacks is NULL: the
 * pooler, the head, type_emb without token types, rel_bias outside MPNet. */
typedef struct {
  BC_WEIGHTS_EMB(BC_WEIGHT_FIELD)
  BC_WEIGHTS_REL(BC_WEIGHT_FIELD)
  bc_layer_weights *layers; /* (L) */
  BC_WEIGHTS_POOL(BC_WEIGHT_FIELD)
  BC_WEIGHTS_HEAD(BC_WEIGHT_FIELD)
} bc_weights;
#undef BC_WEIGHT_FIELD

/* Rows of the position table (position_rows, or max_position when a hand-built config left it
 * 0). */
static inline int bc_config_position_rows(const bc_config *c) {
  return c->position_rows > 0 ? c->position_rows : c->max_position;
}

/* Checks a (B, T) batch of token ids (and type ids, may be NULL) against the configuration:
 * T <= max_position, every id inside the vocabulary, every type id inside [0, type_vocab_size)
 * (type ids are ignored when the family has no token types). Returns BERTCL_ERR_INVALID_ARG
 * with the first offender named. */
int bc_config_check_batch(bc_err *err, const bc_config *c, const int32_t *ids,
                          const int32_t *type_ids, int B, int T);

/* The loaded model (public opaque type bertcl_model). Internal accessors: */
struct bertcl_model;
const bc_config *bc_model_config(const struct bertcl_model *m);
const bc_weights *bc_model_weights(const struct bertcl_model *m);
/* The directory it was loaded from. */
const char *bc_model_dir(const struct bertcl_model *m);
#endif /* BC_MODEL_H */
