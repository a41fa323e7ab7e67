/* The encoder families as data (see family.h). */
#include "model/family.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- one description per family ---------------------------------------------------------- */

/* BERT's layer names, which RoBERTa and its relatives share. */
#define BERT_LAYER_NAMES                                                                       \
  .q_w = "attention.self.query.weight", .q_b = "attention.self.query.bias",                    \
  .k_w = "attention.self.key.weight", .k_b = "attention.self.key.bias",                        \
  .v_w = "attention.self.value.weight", .v_b = "attention.self.value.bias",                    \
  .ao_w = "attention.output.dense.weight", .ao_b = "attention.output.dense.bias",              \
  .ln1_w = "attention.output.LayerNorm.weight", .ln1_b = "attention.output.LayerNorm.bias",    \
  .inter_w = "intermediate.dense.weight", .inter_b = "intermediate.dense.bias",                \
  .out_w = "output.dense.weight", .out_b = "output.dense.bias",                                \
  .ln2_w = "output.LayerNorm.weight", .ln2_b = "output.LayerNorm.bias"

#define BERT_EMB_NAMES                                                                         \
  .word_emb = "embeddings.word_embeddings.weight",                                             \
  .pos_emb = "embeddings.position_embeddings.weight",                                          \
  .emb_ln_w = "embeddings.LayerNorm.weight", .emb_ln_b = "embeddings.LayerNorm.bias"

#define POOLER_NAMES .pool_w = "pooler.dense.weight", .pool_b = "pooler.dense.bias"

#define BERT_KEYS                                                                              \
  .key_hidden = "hidden_size", .key_layers = "num_hidden_layers",                              \
  .key_heads = "num_attention_heads", .key_inter = "intermediate_size", .key_act = "hidden_act", \
  .key_hidden_dropout = "hidden_dropout_prob",                                                 \
  .key_attn_dropout = "attention_probs_dropout_prob", .eps_in_config = 1

static const bc_family_desc k_families[BC_FAMILY_COUNT] = {
    [BC_FAMILY_BERT] =
        {
            .id = BC_FAMILY_BERT,
            .name = "bert",
            .base_prefix = "bert.",
            .layer_prefix = "encoder.layer.%d.",
            .names = {BERT_EMB_NAMES, .type_emb = "embeddings.token_type_embeddings.weight",
                      BERT_LAYER_NAMES, POOLER_NAMES,
                      /* BertForSequenceClassification: the pooler is the head's dense layer */
                      .cls_w = "classifier.weight", .cls_b = "classifier.bias"},
            BERT_KEYS,
            .key_cls_dropout = "classifier_dropout",
            .has_types = 1,
            .pos_kind = BC_POS_ARANGE,
            .head = BC_CLS_HEAD_POOLER,
        },
    [BC_FAMILY_ROBERTA] =
        {
            .id = BC_FAMILY_ROBERTA,
            .name = "roberta",
            .base_prefix = "roberta.", /* XLMRoberta* and Camembert* models use it too */
            .layer_prefix = "encoder.layer.%d.",
            .names = {BERT_EMB_NAMES, .type_emb = "embeddings.token_type_embeddings.weight",
                      BERT_LAYER_NAMES, POOLER_NAMES,
                      .head_w = "classifier.dense.weight", .head_b = "classifier.dense.bias",
                      .cls_w = "classifier.out_proj.weight", .cls_b = "classifier.out_proj.bias"},
            BERT_KEYS,
            .key_cls_dropout = "classifier_dropout",
            .has_types = 1,
            .pos_kind = BC_POS_PADDED,
            .fixed_padding_idx = -1,
            .head = BC_CLS_HEAD_DENSE_TANH,
        },
    [BC_FAMILY_DISTILBERT] =
        {
            .id = BC_FAMILY_DISTILBERT,
            .name = "distilbert",
            .base_prefix = "distilbert.",
            .layer_prefix = "transformer.layer.%d.",
            .names = {BERT_EMB_NAMES,
                      .q_w = "attention.q_lin.weight", .q_b = "attention.q_lin.bias",
                      .k_w = "attention.k_lin.weight", .k_b = "attention.k_lin.bias",
                      .v_w = "attention.v_lin.weight", .v_b = "attention.v_lin.bias",
                      .ao_w = "attention.out_lin.weight", .ao_b = "attention.out_lin.bias",
                      .ln1_w = "sa_layer_norm.weight", .ln1_b = "sa_layer_norm.bias",
                      .inter_w = "ffn.lin1.weight", .inter_b = "ffn.lin1.bias",
                      .out_w = "ffn.lin2.weight", .out_b = "ffn.lin2.bias",
                      .ln2_w = "output_layer_norm.weight", .ln2_b = "output_layer_norm.bias",
                      .head_w = "pre_classifier.weight", .head_b = "pre_classifier.bias",
                      .cls_w = "classifier.weight", .cls_b = "classifier.bias"},
            .key_hidden = "dim",
            .key_layers = "n_layers",
            .key_heads = "n_heads",
            .key_inter = "hidden_dim",
            .key_act = "activation",
            .key_hidden_dropout = "dropout",
            .key_attn_dropout = "attention_dropout",
            .key_cls_dropout = "seq_classif_dropout",
            .eps_in_config = 0, /* nn.LayerNorm(dim, eps=1e-12) in every DistilBERT module */
            .pos_kind = BC_POS_ARANGE,
            .sinusoidal_key = 1,
            .head = BC_CLS_HEAD_DENSE_RELU,
        },
    [BC_FAMILY_MPNET] =
        {
            .id = BC_FAMILY_MPNET,
            .name = "mpnet",
            .base_prefix = "mpnet.",
            .layer_prefix = "encoder.layer.%d.",
            .names = {BERT_EMB_NAMES,
                      .rel_bias = "encoder.relative_attention_bias.weight",
                      .q_w = "attention.attn.q.weight", .q_b = "attention.attn.q.bias",
                      .k_w = "attention.attn.k.weight", .k_b = "attention.attn.k.bias",
                      .v_w = "attention.attn.v.weight", .v_b = "attention.attn.v.bias",
                      .ao_w = "attention.attn.o.weight", .ao_b = "attention.attn.o.bias",
                      .ln1_w = "attention.LayerNorm.weight", .ln1_b = "attention.LayerNorm.bias",
                      .inter_w = "intermediate.dense.weight", .inter_b = "intermediate.dense.bias",
                      .out_w = "output.dense.weight", .out_b = "output.dense.bias",
                      .ln2_w = "output.LayerNorm.weight", .ln2_b = "output.LayerNorm.bias",
                      POOLER_NAMES,
                      .head_w = "classifier.dense.weight", .head_b = "classifier.dense.bias",
                      .cls_w = "classifier.out_proj.weight", .cls_b = "classifier.out_proj.bias"},
            BERT_KEYS,
            .key_cls_dropout = NULL, /* MPNetClassificationHead uses hidden_dropout_prob */
            .pos_kind = BC_POS_PADDED,
            .fixed_padding_idx = 1, /* MPNetEmbeddings: self.padding_idx = 1 */
            .rel_attention_bias = 1,
            .head = BC_CLS_HEAD_DENSE_TANH,
        },
};

const bc_family_desc *bc_family_get(bc_family f) {
  return (unsigned)f < BC_FAMILY_COUNT ? &k_families[f] : NULL;
}

const char *bc_family_name(bc_family f) {
  const bc_family_desc *d = bc_family_get(f);
  return d ? d->name : "?";
}

/* ---- config.json model_types ---------------------------------------------------------------- */

static const bc_model_type k_model_types[] = {
    {"bert", "Bert", BC_FAMILY_BERT, 30522, 0},
    {"roberta", "Roberta", BC_FAMILY_ROBERTA, 50265, 1},
    {"xlm-roberta", "XLMRoberta", BC_FAMILY_ROBERTA, 30522, 1},
    {"camembert", "Camembert", BC_FAMILY_ROBERTA, 30522, 1},
    {"distilbert", "DistilBert", BC_FAMILY_DISTILBERT, 30522, 0},
    {"mpnet", "MPNet", BC_FAMILY_MPNET, 30527, 1},
};
#define N_MODEL_TYPES (sizeof k_model_types / sizeof k_model_types[0])

const bc_model_type *bc_model_type_find(const char *model_type) {
  for (size_t i = 0; model_type && i < N_MODEL_TYPES; i++)
    if (strcmp(k_model_types[i].model_type, model_type) == 0) return &k_model_types[i];
  return NULL;
}

const bc_model_type *bc_model_type_from_arch(const char *class_name) {
  /* the longest prefix wins: "XLMRobertaModel" is XLM-RoBERTa, not a "Roberta..." miss */
  const bc_model_type *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; class_name && i < N_MODEL_TYPES; i++) {
    size_t n = strlen(k_model_types[i].arch_prefix);
    if (n > best_len && strncmp(class_name, k_model_types[i].arch_prefix, n) == 0) {
      best = &k_model_types[i];
      best_len = n;
    }
  }
  return best;
}

const char *bc_model_types_supported(void) {
  return "bert, roberta, xlm-roberta, camembert, distilbert, mpnet";
}

/* ---- the task model's parameters ------------------------------------------------------------ */

static void add_param(bc_param *out, int cap, int *n, const char *prefix, const char *name,
                      const float **slot, int64_t rows, int64_t cols, int decay) {
  if (out && *n < cap) {
    bc_param *p = &out[*n];
    snprintf(p->name, sizeof p->name, "%s%s", prefix, name);
    p->slot = slot;
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->decay = decay;
  }
  (*n)++;
}

int bc_family_params(const bc_config *cfg, bc_weights *w, int K, bc_param *out, int cap) {
  const bc_family_desc *fam = bc_family_get(cfg ? cfg->family : BC_FAMILY_COUNT);
  if (!fam || !w || (cfg->num_layers > 0 && !w->layers) || K < 0)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bc_family_params: bad config or weights");
  const bc_tensor_names *nm = &fam->names;
  const int64_t V = cfg->vocab_size, P = bc_config_position_rows(cfg), TT = cfg->type_vocab_size;
  const int64_t C = cfg->hidden_size, I = cfg->intermediate_size, NB = cfg->rel_buckets;
  const int64_t NH = cfg->num_heads;
  (void)V, (void)P, (void)TT, (void)NB, (void)NH, (void)I, (void)K;
  int n = 0;
  const char *pre = fam->base_prefix;
#define PARAM(f, r, c, d)                                                                      \
  if (nm->f && w->f) add_param(out, cap, &n, pre, nm->f, &w->f, r, c, d);
  BC_WEIGHTS_EMB(PARAM)
  for (int l = 0; l < cfg->num_layers; l++) {
    char lp[96];
    snprintf(lp, sizeof lp, "%s", pre);
    snprintf(lp + strlen(lp), sizeof lp - strlen(lp), fam->layer_prefix, l);
    bc_layer_weights *lw = &w->layers[l];
#define LPARAM(f, r, c, d) add_param(out, cap, &n, lp, nm->f, &lw->f, r, c, d);
    BC_WEIGHTS_LAYER(LPARAM)
#undef LPARAM
  }
  BC_WEIGHTS_REL(PARAM)
  BC_WEIGHTS_POOL(PARAM)
  pre = ""; /* the head's names are the task model's own */
  BC_WEIGHTS_HEAD(PARAM)
#undef PARAM
  if (w->cls_w && !nm->cls_w) return bc_fail(NULL, BERTCL_ERR_INTERNAL, "bc_family_params");
  /* a token-classification checkpoint's classifier ("classifier", not the sequence head's) */
  if (w->cls_w && !w->head_w && fam->head != BC_CLS_HEAD_POOLER &&
      strcmp(nm->cls_w, "classifier.weight") != 0) {
    n -= 2;
    add_param(out, cap, &n, "", "classifier.weight", &w->cls_w, K, C, 1);
    add_param(out, cap, &n, "", "classifier.bias", &w->cls_b, K, 0, 0);
  }
  return n;
}

/* ---- architecture helpers ------------------------------------------------------------------- */

int bc_rel_position_bucket(int rel) {
  /* transformers: n = -rel; half = 16; ret = 16 if n < 0; n = |n|; n < 8: ret + n;
   * else ret + min(15, 8 + int(log(n / 8) / log(128 / 8) * 8)), and log(n/8)/log(16)*8 is
   * 2 log2(n / 8): the largest k < 8 with n^2 >= 64 * 2^k */
  enum { HALF = BC_REL_BUCKETS / 2, EXACT = HALF / 2 };
  long n = -(long)rel;
  int ret = n < 0 ? HALF : 0;
  if (n < 0) n = -n;
  if (n < EXACT) return ret + (int)n;
  int k = 0;
  while (k + 1 < HALF - EXACT && n * n >= ((long)EXACT * EXACT << (k + 1))) k++;
  return ret + EXACT + k;
}

void bc_sinusoidal_positions(float *out, int P, int C) {
  for (int p = 0; p < P; p++)
    for (int j = 0; j < C; j++) {
      double angle = (double)p / pow(10000.0, 2.0 * (double)(j / 2) / (double)C);
      out[(size_t)p * C + j] = (float)(j % 2 == 0 ? sin(angle) : cos(angle));
    }
}
