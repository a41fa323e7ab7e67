/* Parameter layout (see layout.h): one X-macro table per level keeps names, shapes, decay flags
 * and the two views (bc_weights, bc_grads) in step. */
#include "train/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* X(field, name, rows, cols (0 = 1-D), decay) */

#define BC_EMB_TENSORS(X)                                                                     \
  X(word_emb, "bert.embeddings.word_embeddings.weight", V, C, 1)                               \
  X(pos_emb, "bert.embeddings.position_embeddings.weight", P, C, 1)                            \
  X(type_emb, "bert.embeddings.token_type_embeddings.weight", TT, C, 1)                        \
  X(emb_ln_w, "bert.embeddings.LayerNorm.weight", C, 0, 0)                                     \
  X(emb_ln_b, "bert.embeddings.LayerNorm.bias", C, 0, 0)

#define BC_LAYER_TENSORS(X)                                                                   \
  X(q_w, "attention.self.query.weight", C, C, 1)                                               \
  X(q_b, "attention.self.query.bias", C, 0, 0)                                                 \
  X(k_w, "attention.self.key.weight", C, C, 1)                                                 \
  X(k_b, "attention.self.key.bias", C, 0, 0)                                                   \
  X(v_w, "attention.self.value.weight", C, C, 1)                                               \
  X(v_b, "attention.self.value.bias", C, 0, 0)                                                 \
  X(ao_w, "attention.output.dense.weight", C, C, 1)                                            \
  X(ao_b, "attention.output.dense.bias", C, 0, 0)                                              \
  X(ln1_w, "attention.output.LayerNorm.weight", C, 0, 0)                                       \
  X(ln1_b, "attention.output.LayerNorm.bias", C, 0, 0)                                         \
  X(inter_w, "intermediate.dense.weight", I, C, 1)                                             \
  X(inter_b, "intermediate.dense.bias", I, 0, 0)                                               \
  X(out_w, "output.dense.weight", C, I, 1)                                                     \
  X(out_b, "output.dense.bias", C, 0, 0)                                                       \
  X(ln2_w, "output.LayerNorm.weight", C, 0, 0)                                                 \
  X(ln2_b, "output.LayerNorm.bias", C, 0, 0)

#define BC_POOL_TENSORS(X)                                                                    \
  X(pool_w, "bert.pooler.dense.weight", C, C, 1)                                               \
  X(pool_b, "bert.pooler.dense.bias", C, 0, 0)

#define BC_CLS_TENSORS(X)                                                                     \
  X(cls_w, "classifier.weight", K, C, 1)                                                       \
  X(cls_b, "classifier.bias", K, 0, 0)

#define COUNT_ONE(f, n, r, c, d) +1

static void add_tensor(bc_layout *lay, const char *name, int rows, int cols, int decay) {
  bc_tensor *t = &lay->t[lay->count++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = cols ? 2 : 1;
  t->shape[0] = rows;
  t->shape[1] = cols ? cols : 0;
  t->numel = (size_t)rows * (size_t)(cols ? cols : 1);
  t->offset = lay->total;
  t->decay = decay;
  lay->total += t->numel;
}

int bc_layout_init(bc_layout *lay, const bc_config *cfg, int num_labels, int has_pooler) {
  memset(lay, 0, sizeof *lay);
  if (!cfg || cfg->hidden_size <= 0 || cfg->num_layers < 0 || num_labels < 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bc_layout_init: bad config or num_labels %d",
                   num_labels);
  int V = cfg->vocab_size, P = cfg->max_position, TT = cfg->type_vocab_size;
  int C = cfg->hidden_size, I = cfg->intermediate_size, K = num_labels, L = cfg->num_layers;
  int n = 0 BC_EMB_TENSORS(COUNT_ONE) + L * (0 BC_LAYER_TENSORS(COUNT_ONE)) +
          (has_pooler ? 0 BC_POOL_TENSORS(COUNT_ONE) : 0) +
          (K > 0 ? 0 BC_CLS_TENSORS(COUNT_ONE) : 0);
  lay->t = calloc((size_t)n, sizeof *lay->t);
  if (!lay->t) return bc_fail(NULL, BERTCL_ERR_NOMEM, "bc_layout_init: out of memory");
  lay->num_layers = L;
  lay->num_labels = K;
  lay->has_pooler = has_pooler != 0;
  char name[96];
#define ADD_TOP(f, nm, r, c, d) add_tensor(lay, nm, r, c, d);
#define ADD_LAYER(f, nm, r, c, d)                                                              \
  snprintf(name, sizeof name, "bert.encoder.layer.%d.%s", l, nm);                             \
  add_tensor(lay, name, r, c, d);
  BC_EMB_TENSORS(ADD_TOP)
  for (int l = 0; l < L; l++) {
    BC_LAYER_TENSORS(ADD_LAYER)
  }
  if (has_pooler) {
    BC_POOL_TENSORS(ADD_TOP)
  }
  if (K > 0) {
    BC_CLS_TENSORS(ADD_TOP)
  }
#undef ADD_TOP
#undef ADD_LAYER
  return BERTCL_OK;
}

void bc_layout_free(bc_layout *lay) {
  if (!lay) return;
  free(lay->t);
  memset(lay, 0, sizeof *lay);
}

int bc_layout_find(const bc_layout *lay, const char *name) {
  for (int i = 0; i < lay->count; i++)
    if (!strcmp(lay->t[i].name, name)) return i;
  return -1;
}

int bc_layout_head_index(const bc_layout *lay) {
  return (0 BC_EMB_TENSORS(COUNT_ONE)) + lay->num_layers * (0 BC_LAYER_TENSORS(COUNT_ONE));
}

/* Both views walk the tables in the layout's order, so tensor k of the walk is lay->t[k]. */
#define BIND_VIEW(LAYER_T)                                                                    \
  {                                                                                            \
    memset(view, 0, sizeof *view);                                                             \
    int L = lay->num_layers, k = 0;                                                            \
    LAYER_T *layers = calloc((size_t)(L > 0 ? L : 1), sizeof *layers);                         \
    if (!layers) return bc_fail(NULL, BERTCL_ERR_NOMEM, "bind: out of memory");                \
    view->layers = layers;                                                                     \
    BC_EMB_TENSORS(SET_TOP)                                                                   \
    for (int l = 0; l < L; l++) {                                                              \
      BC_LAYER_TENSORS(SET_LAYER)                                                             \
    }                                                                                          \
    if (lay->has_pooler) {                                                                     \
      BC_POOL_TENSORS(SET_TOP)                                                                \
    }                                                                                          \
    if (lay->num_labels > 0) {                                                                 \
      BC_CLS_TENSORS(SET_TOP)                                                                 \
    }                                                                                          \
    return k == lay->count ? BERTCL_OK                                                         \
                           : bc_fail(NULL, BERTCL_ERR_INTERNAL, "bind: %d of %d", k, lay->count); \
  }
#define SET_TOP(f, nm, r, c, d) view->f = flat + lay->t[k++].offset;
#define SET_LAYER(f, nm, r, c, d) layers[l].f = flat + lay->t[k++].offset;

int bc_grads_bind(bc_grads *view, const bc_layout *lay, float *flat)
    BIND_VIEW(bc_layer_grads)

int bc_weights_bind(bc_weights *view, const bc_layout *lay, const float *flat)
    BIND_VIEW(bc_layer_weights)

#undef SET_TOP
#undef SET_LAYER

void bc_grads_unbind(bc_grads *g) {
  if (!g) return;
  free(g->layers);
  g->layers = NULL;
}

void bc_weights_unbind(bc_weights *w) {
  if (!w) return;
  free(w->layers);
  w->layers = NULL;
}

int bc_weights_gather(float *flat, const bc_layout *lay, const bc_weights *w) {
  int k = 0;
  const float *src;
#define GET_TOP(f, nm, r, c, d)                                                                \
  src = w->f;                                                                                  \
  if (!src) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bc_weights_gather: %s missing", nm); \
  memcpy(flat + lay->t[k].offset, src, lay->t[k].numel * sizeof(float));                       \
  k++;
#define GET_LAYER(f, nm, r, c, d)                                                              \
  memcpy(flat + lay->t[k].offset, w->layers[l].f, lay->t[k].numel * sizeof(float));            \
  k++;
  BC_EMB_TENSORS(GET_TOP)
  for (int l = 0; l < lay->num_layers; l++) {
    BC_LAYER_TENSORS(GET_LAYER)
  }
  if (lay->has_pooler) {
    BC_POOL_TENSORS(GET_TOP)
  }
  if (lay->num_labels > 0) {
    BC_CLS_TENSORS(GET_TOP)
  }
#undef GET_TOP
#undef GET_LAYER
  return BERTCL_OK;
}

