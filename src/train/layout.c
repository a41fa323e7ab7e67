/* Parameter layout (see layout.h), generated from the family's table (bc_family_params): which
 * tensors a task model has is decided here, their names, shapes and decay there. */
#include "train/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/family.h"

/* bc_grads mirrors bc_weights field for field (offsets are the slots of both views) */
#define SAME_OFFSET(f, r, c, d) \
  _Static_assert(offsetof(bc_weights, f) == offsetof(bc_grads, f), "bc_grads." #f);
#define SAME_LAYER_OFFSET(f, r, c, d)                                                         \
  _Static_assert(offsetof(bc_layer_weights, f) == offsetof(bc_layer_grads, f),              \
                 "bc_layer_grads." #f);
BC_WEIGHTS_EMB(SAME_OFFSET)
BC_WEIGHTS_REL(SAME_OFFSET)
BC_WEIGHTS_POOL(SAME_OFFSET)
BC_WEIGHTS_HEAD(SAME_OFFSET)
BC_WEIGHTS_LAYER(SAME_LAYER_OFFSET)
#undef SAME_OFFSET
#undef SAME_LAYER_OFFSET

int bc_layout_init(bc_layout *lay, const bc_config *cfg, int num_labels, int seq_head) {
  memset(lay, 0, sizeof *lay);
  if (!cfg || cfg->hidden_size <= 0 || cfg->num_layers < 0 || num_labels < 0 ||
      !bc_family_get(cfg->family))
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bc_layout_init: bad config or num_labels %d",
                   num_labels);
  int L = cfg->num_layers, st = BERTCL_OK;
  /* which tensors the task model has: a view whose present fields point at `here` */
  static const float here = 0.0f;
  const float *p = &here;
  bc_weights w;
  memset(&w, 0, sizeof w);
  bc_layer_weights *lw = calloc((size_t)(L > 0 ? L : 1), sizeof *lw);
  bc_param *ps = NULL;
  if (!lw) return bc_fail(NULL, BERTCL_ERR_NOMEM, "bc_layout_init: out of memory");
  w.layers = lw;
  w.word_emb = w.pos_emb = w.emb_ln_w = w.emb_ln_b = p;
  if (cfg->type_vocab_size > 0) w.type_emb = p;
  if (cfg->rel_buckets > 0) w.rel_bias = p;
#define PRESENT(f, r, c, d) lw[l].f = p;
  for (int l = 0; l < L; l++) {
    BC_WEIGHTS_LAYER(PRESENT)
  }
#undef PRESENT
  if (seq_head && cfg->head == BC_CLS_HEAD_POOLER) w.pool_w = w.pool_b = p;
  if (seq_head && cfg->head != BC_CLS_HEAD_POOLER) w.head_w = w.head_b = p;
  if (num_labels > 0) w.cls_w = w.cls_b = p;
  int n = bc_family_params(cfg, &w, num_labels, NULL, 0);
  if (n < 0) {
    st = n;
    goto done;
  }
  ps = calloc((size_t)(n > 0 ? n : 1), sizeof *ps);
  lay->t = calloc((size_t)(n > 0 ? n : 1), sizeof *lay->t);
  if (!ps || !lay->t) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "bc_layout_init: out of memory");
    goto done;
  }
  bc_family_params(cfg, &w, num_labels, ps, n);
  lay->num_layers = L;
  lay->num_labels = num_labels;
  lay->seq_head = seq_head != 0;
  lay->head = n;
  for (int i = 0; i < n; i++) {
    bc_tensor *t = &lay->t[lay->count++];
    snprintf(t->name, sizeof t->name, "%s", ps[i].name);
    t->ndim = ps[i].ndim;
    t->shape[0] = ps[i].shape[0];
    t->shape[1] = ps[i].ndim == 2 ? ps[i].shape[1] : 0;
    t->numel = (size_t)ps[i].shape[0] * (size_t)(ps[i].ndim == 2 ? ps[i].shape[1] : 1);
    t->offset = lay->total;
    t->decay = ps[i].decay;
    t->layer = -1;
    lay->total += t->numel;
    int found = 0;
#define TOP(f, r, c, d) \
  if (ps[i].slot == &w.f) t->slot = BC_SLOT(f), found = 1;
    BC_WEIGHTS_EMB(TOP)
    BC_WEIGHTS_REL(TOP)
    BC_WEIGHTS_POOL(TOP)
    BC_WEIGHTS_HEAD(TOP)
#undef TOP
    int head_part = found && (t->slot == BC_SLOT(pool_w) || t->slot == BC_SLOT(pool_b) ||
                              t->slot == BC_SLOT(head_w) || t->slot == BC_SLOT(head_b) ||
                              t->slot == BC_SLOT(cls_w) || t->slot == BC_SLOT(cls_b));
    if (head_part && lay->head == n) lay->head = i;
#define LAYER(f, r, c, d) \
  if (ps[i].slot == &lw[l].f) t->slot = BC_LAYER_SLOT(f), t->layer = l, found = 1;
    for (int l = 0; l < L && !found; l++) {
      BC_WEIGHTS_LAYER(LAYER)
    }
#undef LAYER
    if (!found) {
      st = bc_fail(NULL, BERTCL_ERR_INTERNAL, "bc_layout_init: %s has no slot", t->name);
      goto done;
    }
  }
done:
  free(ps);
  free(lw);
  if (st != BERTCL_OK) bc_layout_free(lay);
  return st;
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

int bc_layout_slot(const bc_layout *lay, int layer, size_t slot) {
  for (int i = 0; i < lay->count; i++)
    if (lay->t[i].layer == layer && lay->t[i].slot == slot) return i;
  return -1;
}

int bc_layout_head_index(const bc_layout *lay) { return lay->head; }

/* Both views: field by field from the slots (no pointer punning between the two types). */
#define BIND_VIEW(VIEW_T, LAYER_T, FLAT_T)                                                     \
  {                                                                                            \
    memset(view, 0, sizeof *view);                                                             \
    int L = lay->num_layers;                                                                   \
    LAYER_T *layers = calloc((size_t)(L > 0 ? L : 1), sizeof *layers);                         \
    if (!layers) return bc_fail(NULL, BERTCL_ERR_NOMEM, "bind: out of memory");                \
    view->layers = layers;                                                                     \
    for (int i = 0; i < lay->count; i++) {                                                     \
      const bc_tensor *t = &lay->t[i];                                                         \
      FLAT_T p = flat + t->offset;                                                             \
      if (t->layer >= 0 && t->layer < L) {                                                     \
        LAYER_T *lv = &layers[t->layer];                                                       \
        BC_WEIGHTS_LAYER(SET_LAYER)                                                            \
      } else {                                                                                 \
        BC_WEIGHTS_EMB(SET_TOP)                                                                \
        BC_WEIGHTS_REL(SET_TOP)                                                                \
        BC_WEIGHTS_POOL(SET_TOP)                                                               \
        BC_WEIGHTS_HEAD(SET_TOP)                                                               \
      }                                                                                        \
    }                                                                                          \
    return BERTCL_OK;                                                                          \
  }
#define SET_TOP(f, r, c, d) \
  if (t->slot == BC_SLOT(f)) view->f = p;
#define SET_LAYER(f, r, c, d) \
  if (t->slot == BC_LAYER_SLOT(f)) lv->f = p;

int bc_grads_bind(bc_grads *view, const bc_layout *lay, float *flat)
    BIND_VIEW(bc_grads, bc_layer_grads, float *)

int bc_weights_bind(bc_weights *view, const bc_layout *lay, const float *flat)
    BIND_VIEW(bc_weights, bc_layer_weights, const float *)

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
  for (int i = 0; i < lay->count; i++) {
    const bc_tensor *t = &lay->t[i];
    const float *src = NULL;
#define GET_TOP(f, r, c, d) \
  if (t->slot == BC_SLOT(f)) src = w->f;
#define GET_LAYER(f, r, c, d) \
  if (t->slot == BC_LAYER_SLOT(f)) src = w->layers[t->layer].f;
    if (t->layer >= 0) {
      if (!w->layers || t->layer >= lay->num_layers)
        return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bc_weights_gather: no layers");
      BC_WEIGHTS_LAYER(GET_LAYER)
    } else {
      BC_WEIGHTS_EMB(GET_TOP)
      BC_WEIGHTS_REL(GET_TOP)
      BC_WEIGHTS_POOL(GET_TOP)
      BC_WEIGHTS_HEAD(GET_TOP)
    }
#undef GET_TOP
#undef GET_LAYER
    if (!src)
      return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bc_weights_gather: %s missing", t->name);
    memcpy(flat + t->offset, src, t->numel * sizeof(float));
  }
  return BERTCL_OK;
}
