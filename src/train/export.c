/* Export of a fine-tuned model. See export.h. */
#include "train/export.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/durable.h"
#include "io/writers.h"

/* Copies a tokenizer file when the source has it. */
static int copy_file(bc_err *err, const char *src, const char *dst) {
  char *data = NULL;
  size_t len = 0;
  bc_err ignored = {0};
  if (bc_read_file(&ignored, src, &data, &len) != BERTCL_OK) return BERTCL_OK; /* absent */
  int rc = bc_write_file_atomic(err, dst, data, len);
  free(data);
  return rc;
}

int bc_export_model(bc_err *err, const char *out_dir, const char *model_dir,
                    const char *src_config_json, const bc_export_head *head,
                    const bc_labelmap *lm, const bc_layout *lay, const float *params,
                    const char *meta_json) {
  char path[4096];
  json_error_t je;
  json_t *cfg = json_loads(src_config_json, 0, &je);
  if (!json_is_object(cfg)) {
    json_decref(cfg);
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s/config.json: %s", model_dir, je.text);
  }
  json_t *id2 = json_object(), *l2i = json_object();
  for (int k = 0; k < lm->K; k++) {
    char key[32];
    snprintf(key, sizeof key, "%d", k);
    json_object_set_new(id2, key, json_string(lm->names[k]));
    json_object_set_new(l2i, lm->names[k], json_integer(k));
  }
  json_object_set_new(cfg, "architectures", json_pack("[s]", head->architecture));
  json_object_set_new(cfg, "id2label", id2);
  json_object_set_new(cfg, "label2id", l2i);
  json_object_set_new(cfg, "num_labels", json_integer(lm->K));
  if (head->problem_type)
    json_object_set_new(cfg, "problem_type", json_string(head->problem_type));
  else
    json_object_del(cfg, "problem_type");
  char *js = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
  json_decref(cfg);
  if (!js) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory writing config.json");
  snprintf(path, sizeof path, "%s/config.json", out_dir);
  int rc = bc_write_file_atomic(err, path, js, strlen(js));
  free(js);
  if (rc != BERTCL_OK) return rc;
  bc_st_out_tensor *ts = calloc((size_t)lay->count, sizeof *ts);
  if (!ts) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < lay->count; i++) {
    ts[i].name = lay->t[i].name;
    ts[i].data = params + lay->t[i].offset;
    ts[i].ndim = lay->t[i].ndim;
    ts[i].shape[0] = (size_t)lay->t[i].shape[0];
    ts[i].shape[1] = (size_t)lay->t[i].shape[1];
    ts[i].dtype = BC_OUT_F32;
  }
  bc_st_meta meta[] = {{"format", "pt"}, {"bertcl_finetune", meta_json}};
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  rc = bc_st_write(err, path, ts, (size_t)lay->count, meta, 2);
  free(ts);
  if (rc != BERTCL_OK) return rc;
  static const char *const tok_files[] = {"vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                          "special_tokens_map.json"};
  for (size_t i = 0; i < sizeof tok_files / sizeof tok_files[0]; i++) {
    char src[4096];
    snprintf(src, sizeof src, "%s/%s", model_dir, tok_files[i]);
    snprintf(path, sizeof path, "%s/%s", out_dir, tok_files[i]);
    if ((rc = copy_file(err, src, path)) != BERTCL_OK) return rc;
  }
  return BERTCL_OK;
}
