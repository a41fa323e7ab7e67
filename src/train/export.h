/* The fine-tuned model as a Hugging Face directory that transformers' AutoModelFor*
 * .from_pretrained loads: config.json (the source model's, with architectures, id2label,
 * label2id, num_labels and problem_type set), model.safetensors (the layout's tensors under
 * their Hugging Face names, F32) and the source's tokenizer files. Every file is written
 * durably (io/durable.h). */
#ifndef BC_TRAIN_EXPORT_H
#define BC_TRAIN_EXPORT_H

#include "common.h"
#include "train/labels.h"
#include "train/layout.h"

typedef struct {
  const char *architecture; /* "BertForSequenceClassification", ... */
  const char *problem_type; /* "single_label_classification", "regression"; NULL: removed */
} bc_export_head;

/* src_config_json: the source model's config.json text. meta_json: stored in the safetensors
 * metadata as "bertcl_finetune". */
int bc_export_model(bc_err *err, const char *out_dir, const char *model_dir,
                    const char *src_config_json, const bc_export_head *head,
                    const bc_labelmap *lm, const bc_layout *lay, const float *params,
                    const char *meta_json);

#endif
