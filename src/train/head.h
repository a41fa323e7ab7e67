/* Task heads on top of the encoder: what each one is called, which parameters it has and how
 * its logits and labels are shaped. The OpenCL forward and backward of each are entries of
 * train/heads.c's table (train/trainer_impl.h); the plain-C twins are in src/ref/ref_cls.c.
 * A new head (another family's classifier, a multiple-choice head) is one more entry. */
#ifndef BC_TRAIN_HEAD_H
#define BC_TRAIN_HEAD_H

typedef enum {
  BC_HEAD_SEQUENCE = 0, /* *ForSequenceClassification: the family's head on the first token
                           (bc_cls_head: BERT's pooler, RoBERTa's / MPNet's dense + tanh,
                           DistilBERT's pre_classifier + ReLU), dropout, classifier;
                           cross-entropy over B rows, or MSE when num_labels is 1 */
  BC_HEAD_TOKEN = 1,    /* *ForTokenClassification: dropout and the classifier on every token;
                           cross-entropy over the labelled tokens of B*T rows */
  BC_HEAD_COUNT
} bc_head_kind;

typedef struct {
  const char *name;         /* "sequence", "token" */
  const char *arch_suffix;  /* after the family's class prefix in config.json "architectures":
                             * "ForSequenceClassification" (BertFor..., RobertaFor...) */
  int seq_dense;            /* the family's dense layer on the first token is a parameter of the
                             * head (BERT's pooler, RoBERTa's and MPNet's classifier.dense,
                             * DistilBERT's pre_classifier): bc_layout_init's seq_head */
  int per_token;            /* logits and labels per token (B*T rows), else per sequence (B) */
  int min_labels;           /* num_labels below this is refused */
} bc_head_desc;

/* NULL for an unknown kind. */
const bc_head_desc *bc_head_describe(int kind);

#endif
