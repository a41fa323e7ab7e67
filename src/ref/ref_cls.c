/* Plain-C training step of the task heads (see ref_train.h): BertForSequenceClassification and
 * the other families' sequence heads, and *ForTokenClassification. Both entry points run the one
 * training schedule of every family, ref_task_fwd_bwd (ref_task.h): the recipe's dropout sites
 * (train/recipe.h) become ref_dropout sites and the layout's gradient view a bc_weights view. */
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"
#include "ref/ref_task.h"
#include "ref/ref_train.h"

static ref_dropout site(const bc_dropout_cfg *d, float p, int layer, int id) {
  ref_dropout r = {0.0f, 0, 0, bc_dropout_id(layer, id)};
  if (d) {
    r.p = p;
    r.seed = d->seed;
    r.step = d->step;
  }
  return r;
}

static int head_fwd_bwd(ref_task task, const bc_config *cfg, const bc_weights *w, int K,
                        const int32_t *ids, const int32_t *type_ids, const int32_t *mask,
                        const int32_t *labels, const float *targets, int B, int T,
                        const bc_dropout_cfg *drop, float grad_scale, bc_grads *g, double *loss,
                        float *logits) {
  int tok = task == REF_TASK_TOKEN;
  if (!cfg || !w || (K > 1 && !labels) || (K == 1 && (tok || !targets)) || cfg->num_layers < 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG,
                   "ref_%s_fwd_bwd: null argument or K=%d without labels/targets",
                   tok ? "tok" : "cls", K);
  int L = cfg->num_layers, st = BERTCL_OK;
  float hp = drop ? drop->hidden_p : 0.0f, ap = drop ? drop->attn_p : 0.0f;
  float cp = drop ? drop->cls_p : 0.0f;
  ref_dropout *sites = calloc((size_t)REF_FWD_DROP_SITES(L) + 2, sizeof *sites);
  bc_layer_weights *wl = calloc((size_t)(L > 0 ? L : 1), sizeof *wl);
  bc_layer_weights *gl = calloc((size_t)(L > 0 ? L : 1), sizeof *gl);
  if (!sites || !wl || !gl) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "ref_fwd_bwd: out of memory");
    goto done;
  }
  sites[0] = site(drop, hp, -1, BC_DROP_EMB);
  for (int l = 0; l < L; l++) {
    sites[ref_fwd_drop_site(l, REF_FWD_DROP_ATTN)] = site(drop, ap, l, BC_DROP_ATTN);
    sites[ref_fwd_drop_site(l, REF_FWD_DROP_ATTN_OUT)] = site(drop, hp, l, BC_DROP_ATTN_OUT);
    sites[ref_fwd_drop_site(l, REF_FWD_DROP_FFN_OUT)] = site(drop, hp, l, BC_DROP_FFN_OUT);
  }
  ref_dropout *head_in = &sites[REF_FWD_DROP_SITES(L)], *head_out = head_in + 1;
  *head_in = site(drop, cp, -1, BC_DROP_HEAD_IN);
  *head_out = site(drop, cp, -1, BC_DROP_CLS);
  ref_task_dropout td = {sites, head_in, head_out};

  /* BertForSequenceClassification's head dense layer is its pooler */
  bc_weights wv = *w;
  if (L > 0) memcpy(wl, w->layers, (size_t)L * sizeof *wl);
  wv.layers = wl;
  if (cfg->head == BC_CLS_HEAD_POOLER && !wv.head_w) {
    wv.head_w = wv.pool_w;
    wv.head_b = wv.pool_b;
  }
  bc_weights gv;
  memset(&gv, 0, sizeof gv);
  if (g) {
#define GRAD_TOP(f, r, c, d) gv.f = g->f;
#define GRAD_LAYER(f, r, c, d) gl[l].f = g->layers[l].f;
    BC_WEIGHTS_EMB(GRAD_TOP)
    BC_WEIGHTS_REL(GRAD_TOP)
    BC_WEIGHTS_POOL(GRAD_TOP)
    BC_WEIGHTS_HEAD(GRAD_TOP)
    for (int l = 0; l < L; l++) {
      BC_WEIGHTS_LAYER(GRAD_LAYER)
    }
#undef GRAD_TOP
#undef GRAD_LAYER
    gv.layers = gl;
    if (cfg->head == BC_CLS_HEAD_POOLER && !gv.head_w) {
      gv.head_w = gv.pool_w;
      gv.head_b = gv.pool_b;
    }
  }
  st = ref_task_fwd_bwd(cfg, &wv, task, K, ids, type_ids, mask, labels, targets, B, T,
                        drop ? &td : NULL, grad_scale, g ? &gv : NULL, loss, logits);
done:
  free(gl);
  free(wl);
  free(sites);
  return st;
}

int ref_cls_fwd_bwd(const bc_config *cfg, const bc_weights *w, int K, const int32_t *ids,
                    const int32_t *type_ids, const int32_t *mask, const int32_t *labels,
                    const float *targets, int B, int T, const bc_dropout_cfg *drop,
                    float grad_scale, bc_grads *g, double *loss, float *logits) {
  return head_fwd_bwd(REF_TASK_SEQUENCE, cfg, w, K, ids, type_ids, mask, labels, targets, B, T,
                      drop, grad_scale, g, loss, logits);
}

int ref_tok_fwd_bwd(const bc_config *cfg, const bc_weights *w, int K, const int32_t *ids,
                    const int32_t *type_ids, const int32_t *mask, const int32_t *labels, int B,
                    int T, const bc_dropout_cfg *drop, float grad_scale, bc_grads *g,
                    double *loss, float *logits) {
  return head_fwd_bwd(REF_TASK_TOKEN, cfg, w, K, ids, type_ids, mask, labels, NULL, B, T, drop,
                      grad_scale, g, loss, logits);
}
