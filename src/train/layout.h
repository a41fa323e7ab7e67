/* Trainable parameters as one flat fp32 buffer with Hugging Face names: the vocabulary shared by
 * the OpenCL trainer (train/trainer.h), the fine-tuning loop, checkpoints, export, and the
 * plain-C reference that tests check them against (src/ref/ref_train.h).
 *
 * Generated from the family's table (model/family.h: bc_family_params), so every family's task
 * model gets its own names, shapes and Trainer decay groups: RobertaForSequenceClassification's
 * "roberta.encoder.layer.0.attention.self.query.weight" ... "classifier.out_proj.bias",
 * DistilBERT's "distilbert.transformer.layer.0.attention.q_lin.weight" ..., MPNet's
 * "mpnet.encoder.relative_attention_bias.weight". The order is that of the X-macros of
 * model/model.h: embeddings, each encoder layer, the relative attention bias (MPNet), BERT's
 * pooler, the head's dense layer, the classifier. */
#ifndef BC_TRAIN_LAYOUT_H
#define BC_TRAIN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
  char name[160];   /* "bert.encoder.layer.0.attention.self.query.weight", "classifier.bias" */
  size_t offset;    /* into the flat buffer, in floats */
  size_t numel;
  int ndim;         /* 1 or 2 */
  int64_t shape[2]; /* PyTorch shape ((out, in) for a Linear weight) */
  int decay;        /* 1: AdamW applies weight decay. transformers' Trainer groups every bias,
                     * every LayerNorm parameter and MPNet's relative_attention_bias in the
                     * no-decay group. */
  int layer;        /* the encoder layer of a per-layer tensor, -1 for the others */
  size_t slot;      /* which tensor it is: offsetof(bc_layer_weights, field) for a per-layer
                     * tensor, else offsetof(bc_weights, field) (BC_SLOT, BC_LAYER_SLOT) */
} bc_tensor;

#define BC_SLOT(field) offsetof(bc_weights, field)
#define BC_LAYER_SLOT(field) offsetof(bc_layer_weights, field)

typedef struct {
  int count;
  size_t total; /* floats in the flat buffer */
  bc_tensor *t;
  int num_layers, num_labels;
  int seq_head; /* the family's sequence-classification head's dense layer is a parameter */
  int head;     /* index of the first tensor after the encoder (the pooler, the head's dense
                 * layer or the classifier); count when there is none */
} bc_layout;

/* The task model of cfg's family: seq_head 1 adds the sequence-classification head's dense layer
 * (BERT's pooler, RoBERTa's and MPNet's classifier.dense, DistilBERT's pre_classifier);
 * num_labels > 0 adds the classifier (the sequence head's out_proj / classifier, or the token
 * head's "classifier"). */
int bc_layout_init(bc_layout *lay, const bc_config *cfg, int num_labels, int seq_head);
void bc_layout_free(bc_layout *lay); /* NULL and a zeroed layout are no-ops */
/* Index of the tensor called name, or -1. */
int bc_layout_find(const bc_layout *lay, const char *name);
/* Index of the tensor in slot (layer -1 for the tensors outside the layers), or -1. */
int bc_layout_slot(const bc_layout *lay, int layer, size_t slot);
/* Index of the first tensor after the encoder (the pooler's, the head's or the classifier's). */
int bc_layout_head_index(const bc_layout *lay);

/* Gradient (or mutable parameter) view: bc_weights with writable pointers, generated from the
 * same X-macros (model/model.h), so a field means the same tensor in both. */
#define BC_GRAD_FIELD(f, r, c, d) float *f;
typedef struct {
  BC_WEIGHTS_LAYER(BC_GRAD_FIELD)
} bc_layer_grads;

typedef struct {
  BC_WEIGHTS_EMB(BC_GRAD_FIELD)
  BC_WEIGHTS_REL(BC_GRAD_FIELD)
  bc_layer_grads *layers; /* (L) */
  BC_WEIGHTS_POOL(BC_GRAD_FIELD)
  BC_WEIGHTS_HEAD(BC_GRAD_FIELD)
} bc_grads;
#undef BC_GRAD_FIELD

/* Point g (or w) at flat (lay->total floats); the fields the layout lacks are NULL. The layer
 * arrays are malloc'd: release them with bc_grads_unbind / bc_weights_unbind. Return BERTCL_OK
 * or BERTCL_ERR_NOMEM. */
int bc_grads_bind(bc_grads *g, const bc_layout *lay, float *flat);
void bc_grads_unbind(bc_grads *g);
int bc_weights_bind(bc_weights *w, const bc_layout *lay, const float *flat);
void bc_weights_unbind(bc_weights *w);
/* Copies every tensor of w named by lay into flat. Fails when w lacks one (no pooler, head or
 * classifier where the layout has one). */
int bc_weights_gather(float *flat, const bc_layout *lay, const bc_weights *w);

#endif /* BC_TRAIN_LAYOUT_H */
