/* Trainable parameters as one flat fp32 buffer with Hugging Face names: the vocabulary shared by
 * the OpenCL trainer (train/trainer.h), the fine-tuning loop, checkpoints, export, and the
 * plain-C reference that tests check them against (src/ref/ref_train.h).
 *
 * The order is model.named_parameters()'s: embeddings (word, position, token_type, LayerNorm),
 * each encoder layer, the pooler when the head has one (BertForSequenceClassification), the
 * classifier when num_labels > 0. */
#ifndef BC_TRAIN_LAYOUT_H
#define BC_TRAIN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
  char name[96];    /* "bert.encoder.layer.0.attention.self.query.weight", "classifier.bias" */
  size_t offset;    /* into the flat buffer, in floats */
  size_t numel;
  int ndim;         /* 1 or 2 */
  int64_t shape[2]; /* PyTorch shape ((out, in) for a Linear weight) */
  int decay;        /* 1: AdamW applies weight decay. transformers' Trainer groups every bias
                     * and every LayerNorm parameter in the no-decay group. */
} bc_tensor;

typedef struct {
  int count;
  size_t total; /* floats in the flat buffer */
  bc_tensor *t;
  int num_layers, num_labels, has_pooler;
} bc_layout;

/* has_pooler: BertForSequenceClassification's bert.pooler.dense (BertForTokenClassification
 * has none). num_labels 0: no classifier. */
int bc_layout_init(bc_layout *lay, const bc_config *cfg, int num_labels, int has_pooler);
void bc_layout_free(bc_layout *lay); /* NULL and a zeroed layout are no-ops */
/* Index of the tensor called name, or -1. */
int bc_layout_find(const bc_layout *lay, const char *name);
/* Index of the first tensor after the encoder (the pooler's or the classifier's). */
int bc_layout_head_index(const bc_layout *lay);

/* Gradient (or mutable parameter) view: bc_weights with writable pointers into a flat buffer. */
typedef struct {
  float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *ao_w, *ao_b, *ln1_w, *ln1_b;
  float *inter_w, *inter_b, *out_w, *out_b, *ln2_w, *ln2_b;
} bc_layer_grads;

typedef struct {
  float *word_emb, *pos_emb, *type_emb, *emb_ln_w, *emb_ln_b;
  bc_layer_grads *layers; /* (L) */
  float *pool_w, *pool_b; /* NULL without a pooler */
  float *cls_w, *cls_b;   /* NULL without a classifier */
} bc_grads;

/* Point g (or w) at flat (lay->total floats). The layer arrays are malloc'd: release them with
 * bc_grads_unbind / bc_weights_unbind. Return BERTCL_OK or BERTCL_ERR_NOMEM. */
int bc_grads_bind(bc_grads *g, const bc_layout *lay, float *flat);
void bc_grads_unbind(bc_grads *g);
int bc_weights_bind(bc_weights *w, const bc_layout *lay, const float *flat);
void bc_weights_unbind(bc_weights *w);
/* Copies every tensor of w named by lay into flat. Fails when w lacks one (no pooler or
 * classifier where the layout has one). */
int bc_weights_gather(float *flat, const bc_layout *lay, const bc_weights *w);

#endif /* BC_TRAIN_LAYOUT_H */
