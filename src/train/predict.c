/* Prediction with a fine-tuned classifier (include/bertcl.h): the inference encoder
 * (encoder/encoder.h) for the hidden states, the head on the host in double, and bertcl_predict
 * over a file, written durably (io/durable.h) or to standard output. Token classifiers:
 * tagger.c. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "encoder/encoder.h"
#include "io/durable.h"
#include "model/model.h"
#include "runtime/runtime.h"
#include "train/data.h"
#include "train/entity.h"
#include "train/predict_impl.h"

void bertcl_classifier_free(bertcl_classifier *c) {
  if (!c) return;
  bc_encoder_free(c->enc);
  free(c->w);
  free(c->dw);
  free(c->scratch);
  if (c->names)
    for (int k = 0; k < c->K; k++) free(c->names[k]);
  free(c->names);
  free(c);
}

/* Whether config.json names a token-classification architecture. */
static int is_token_classifier(const bertcl_model *model) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", bc_model_dir(model));
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je), *v;
  size_t i;
  int yes = 0;
  json_array_foreach(json_object_get(cfg, "architectures"), i, v) {
    if (json_is_string(v) && strstr(json_string_value(v), "ForTokenClassification")) yes = 1;
  }
  json_decref(cfg);
  return yes;
}

int bertcl_classifier_create(bertcl_classifier **out, bertcl_ctx *ctx, const bertcl_model *model) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_classifier_create: out is NULL");
  *out = NULL;
  if (!ctx || !model)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_classifier_create: NULL argument");
  const bc_config *cfg = bc_model_config(model);
  const bc_weights *w = bc_model_weights(model);
  int K = cfg->num_labels, C = cfg->hidden_size, tokens = is_token_classifier(model);
  int pooler = cfg->head == BC_CLS_HEAD_POOLER; /* BERT: the pooler is the head's dense layer */
  if (!w->cls_w || K < 1 || (!tokens && !(pooler ? w->pool_w : w->head_w)) || (tokens && K < 2))
    return bc_fail(NULL, BERTCL_ERR_MISSING,
                   "%s has no %s; train one with bertcl finetune", bc_model_dir(model),
                   tokens ? "token classifier of two or more labels (classifier.weight)"
                   : pooler ? "classifier (classifier.weight) and pooler"
                            : "sequence-classification head (its dense layer and classifier)");
  bertcl_classifier *c = calloc(1, sizeof *c);
  if (!c) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  c->ctx = ctx;
  c->K = K;
  c->C = C;
  c->L = cfg->num_layers;
  c->max_position = cfg->max_position;
  c->task = tokens ? BERTCL_TASK_TOKEN_CLASSIFICATION
            : K == 1 ? BERTCL_TASK_REGRESSION
                     : BERTCL_TASK_CLASSIFICATION;
  c->w = malloc(((size_t)K * C + (size_t)K) * sizeof *c->w);
  c->names = calloc((size_t)K, sizeof *c->names);
  if (!c->w || !c->names) {
    bertcl_classifier_free(c);
    return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  }
  c->b = c->w + (size_t)K * C;
  memcpy(c->w, w->cls_w, (size_t)K * C * sizeof *c->w);
  memcpy(c->b, w->cls_b, (size_t)K * sizeof *c->b);
  if (!tokens && !pooler) {
    c->dw = malloc(((size_t)C * C + (size_t)C) * sizeof *c->dw);
    if (!c->dw) {
      bertcl_classifier_free(c);
      return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
    }
    c->db = c->dw + (size_t)C * C;
    memcpy(c->dw, w->head_w, (size_t)C * C * sizeof *c->dw);
    memcpy(c->db, w->head_b, (size_t)C * sizeof *c->db);
    c->dense_act = cfg->head == BC_CLS_HEAD_DENSE_RELU ? BC_ACT_RELU : -1;
  }
  for (int k = 0; k < K; k++) {
    char buf[32];
    const char *nm = bertcl_model_label(model, k);
    snprintf(buf, sizeof buf, "LABEL_%d", k);
    if (!(c->names[k] = bc_strdup(nm ? nm : buf))) {
      bertcl_classifier_free(c);
      return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(c->names[k], "O")) c->empty_label = k;
  }
  size_t st0[2] = {0, (size_t)K};
  c->has_entities = tokens && bc_detect_scheme((const char *const *)c->names, st0, 1) !=
                                  BERTCL_SCHEME_NONE;
  int st = bc_encoder_create(ctx, model, &c->enc);
  if (st != BERTCL_OK) {
    bc_err_to_thread(&ctx->err);
    bertcl_classifier_free(c);
    return st;
  }
  *out = c;
  return BERTCL_OK;
}

bertcl_task bertcl_classifier_task(const bertcl_classifier *c) {
  return c ? c->task : BERTCL_TASK_AUTO;
}

int bertcl_classifier_num_labels(const bertcl_classifier *c) { return c ? c->K : 0; }

const char *bertcl_classifier_label(const bertcl_classifier *c, int id) {
  return c && id >= 0 && id < c->K ? c->names[id] : NULL;
}

void bc_cls_head_row(const bertcl_classifier *c, const float *x, double *z) {
  for (int k = 0; k < c->K; k++) {
    double acc = c->b[k];
    for (int i = 0; i < c->C; i++) acc += (double)x[i] * c->w[(size_t)k * c->C + i];
    z[k] = acc;
  }
}

/* Probabilities (or the score) of rows of a tokenized batch: z (n, K) logits in double. */
static int classify_batch(bertcl_classifier *c, const bertcl_batch *b, double *z) {
  size_t n = b->batch;
  if (n > c->scratch_rows) {
    float *p = realloc(c->scratch, n * (size_t)c->C * sizeof *p);
    if (!p) return bc_fail(&c->err, BERTCL_ERR_NOMEM, "out of memory");
    c->scratch = p;
    c->scratch_rows = n;
  }
  int last = c->L, st;
  if (!c->dw) { /* BERT: the pooler on the device */
    st = bc_encoder_forward(c->enc, b->ids, b->type_ids, b->mask, (int)b->batch, (int)b->seq,
                            NULL, 0);
    if (st == BERTCL_OK) st = bc_encoder_read_pooler(c->enc, c->scratch);
  } else { /* the first token of the last layer; the family's dense layer on the host */
    st = bc_encoder_forward(c->enc, b->ids, b->type_ids, b->mask, (int)b->batch, (int)b->seq,
                            &last, 1);
    if (st == BERTCL_OK)
      st = bc_encoder_read_pooled(c->enc, BC_POOL_CLS, BC_COMBINE_CONCAT, 0, c->scratch);
  }
  if (st != BERTCL_OK) {
    c->err = c->ctx->err;
    return st;
  }
  float *y = c->dw ? malloc((size_t)c->C * sizeof *y) : NULL;
  if (c->dw && !y) return bc_fail(&c->err, BERTCL_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const float *x = c->scratch + i * (size_t)c->C;
    if (y) {
      for (int o = 0; o < c->C; o++) {
        double acc = c->db[o];
        for (int k = 0; k < c->C; k++) acc += (double)x[k] * c->dw[(size_t)o * c->C + k];
        y[o] = (float)(c->dense_act == BC_ACT_RELU ? (acc > 0 ? acc : 0.0) : tanh(acc));
      }
      x = y;
    }
    bc_cls_head_row(c, x, z + i * (size_t)c->K);
  }
  free(y);
  return BERTCL_OK;
}

void bc_softmax(double *z, int K) {
  double mx = -INFINITY, sum = 0;
  for (int k = 0; k < K; k++)
    if (z[k] > mx) mx = z[k];
  for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
  for (int k = 0; k < K; k++) z[k] = exp(z[k] - mx) / sum;
}

int bertcl_classify(bertcl_classifier *c, const bertcl_tokenizer *tok, const char *const *texts,
                    const char *const *pairs, size_t n, size_t max_length, float *out,
                    size_t out_len) {
  if (!c) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_classify: NULL classifier");
  if (!tok || (!texts && n) || (!out && n))
    return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG, "bertcl_classify: NULL argument");
  if (c->task == BERTCL_TASK_TOKEN_CLASSIFICATION)
    return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG,
                   "bertcl_classify: a token classifier tags words (bertcl_tag_text)");
  if (out_len / (size_t)c->K < n)
    return bc_fail(&c->err, BERTCL_ERR_INVALID_ARG,
                   "bertcl_classify: the output buffer holds %zu floats; %zu texts need %zu",
                   out_len, n, n * (size_t)c->K);
  bertcl_tokenize_options topt = {.max_length = max_length};
  const size_t B = 32;
  double *z = malloc(B * (size_t)c->K * sizeof *z);
  if (!z) return bc_fail(&c->err, BERTCL_ERR_NOMEM, "out of memory");
  int st = BERTCL_OK;
  for (size_t s = 0; s < n && st == BERTCL_OK; s += B) {
    size_t nb = n - s < B ? n - s : B;
    bertcl_batch *b = NULL;
    st = bertcl_tokenizer_encode_batch(tok, texts + s, pairs ? pairs + s : NULL, nb, &topt, &b);
    if (st != BERTCL_OK) {
      bc_fail(&c->err, st, "tokenize: %s", bertcl_last_error(NULL));
      break;
    }
    st = classify_batch(c, b, z);
    bertcl_batch_free(b);
    for (size_t i = 0; i < nb && st == BERTCL_OK; i++) {
      double *zi = z + i * (size_t)c->K;
      if (c->K > 1) bc_softmax(zi, c->K);
      for (int k = 0; k < c->K; k++) out[(s + i) * (size_t)c->K + k] = (float)zi[k];
    }
  }
  free(z);
  return st;
}

/* ---- bertcl_predict --------------------------------------------------------------------- */

int bc_sink_line(bc_err *err, bc_sink *o, const char *js) {
  if (o->to_file)
    return bc_afile_write(err, &o->f, js, strlen(js)) == BERTCL_OK &&
                   bc_afile_write(err, &o->f, "\n", 1) == BERTCL_OK
               ? BERTCL_OK
               : err->status;
  if (fprintf(stdout, "%s\n", js) < 0)
    return bc_fail(err, BERTCL_ERR_IO, "write failed: %s", strerror(errno));
  return BERTCL_OK;
}

/* One sequence classifier's JSON line of logits z (K). */
static char *sequence_line(const bertcl_classifier *c, double *z) {
  json_t *o = json_object();
  if (c->K == 1) {
    json_object_set_new(o, "score", json_real(z[0]));
  } else {
    int best = 0;
    for (int k = 1; k < c->K; k++)
      if (z[k] > z[best]) best = k;
    bc_softmax(z, c->K);
    json_object_set_new(o, "label", json_string(c->names[best]));
    json_t *pr = json_object();
    for (int k = 0; k < c->K; k++) json_object_set_new(pr, c->names[k], json_real(z[k]));
    json_object_set_new(o, "probabilities", pr);
  }
  char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(o);
  return js;
}

static int predict_sequences(bertcl_classifier *c, const bertcl_tokenizer *tok,
                             const bc_text_data *d, const bertcl_predict_options *opt,
                             bc_sink *out) {
  bc_err *err = &c->ctx->err;
  size_t B = opt->batch_size ? opt->batch_size : 32;
  bertcl_tokenize_options topt = {.max_length = opt->max_length};
  const char **texts = malloc(B * sizeof *texts), **pairs = malloc(B * sizeof *pairs);
  double *z = malloc(B * (size_t)c->K * sizeof *z);
  int st = BERTCL_OK;
  if (!texts || !pairs || !z) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t s = 0; s < d->n && st == BERTCL_OK; s += B) {
    size_t n = d->n - s < B ? d->n - s : B;
    int any_pair = 0;
    for (size_t i = 0; i < n; i++) {
      texts[i] = d->text[s + i];
      pairs[i] = d->pair[s + i];
      any_pair |= pairs[i] != NULL;
    }
    bertcl_batch *b = NULL;
    st = bertcl_tokenizer_encode_batch(tok, texts, any_pair ? pairs : NULL, n, &topt, &b);
    if (st != BERTCL_OK) {
      bc_fail(err, st, "tokenize: %s", bertcl_last_error(NULL));
      break;
    }
    st = classify_batch(c, b, z);
    bertcl_batch_free(b);
    if (st != BERTCL_OK) {
      *err = c->err;
      break;
    }
    for (size_t i = 0; i < n && st == BERTCL_OK; i++) {
      char *js = sequence_line(c, z + i * (size_t)c->K);
      st = js ? bc_sink_line(err, out, js) : bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      free(js);
    }
  }
done:
  free(texts), free(pairs), free(z);
  return st;
}

int bertcl_predict(bertcl_ctx *ctx, const bertcl_model *model, const bertcl_tokenizer *tok,
                   const bertcl_predict_options *opt, bertcl_progress_fn progress, void *user) {
  if (!ctx) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_predict: ctx is NULL");
  bc_err *err = &ctx->err;
  if (!model || !tok || !opt || !opt->input_file)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bertcl_predict: NULL argument or input_file");
  if (opt->format < BERTCL_INPUT_AUTO || opt->format > BERTCL_INPUT_JSONL)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bertcl_predict: unknown input format %d",
                   (int)opt->format);
  bertcl_classifier *c = NULL;
  bc_text_data d = {0};
  bc_sink out = {.f = {.fd = -1}};
  int st = bertcl_classifier_create(&c, ctx, model);
  if (st != BERTCL_OK) {
    *err = *bc_thread_err();
    return st;
  }
  int tokens = c->task == BERTCL_TASK_TOKEN_CLASSIFICATION;
  if (!tokens && opt->format == BERTCL_INPUT_CONLL) {
    st = bc_fail(err, BERTCL_ERR_INVALID_ARG,
                 "CoNLL input is for token classifiers; %s is a sequence classifier",
                 bc_model_dir(model));
    goto done;
  }
  bc_text_columns cols = {opt->text_column, opt->pair_column, NULL};
  if (!tokens) {
    st = bc_text_data_read(err, opt->input_file, &cols,
                           opt->format == BERTCL_INPUT_TEXT ? BC_DATA_FORCE_PLAIN
                                                            : BC_DATA_PLAIN_OK,
                           &d);
    if (st != BERTCL_OK) goto done;
  }
  if (opt->output_file && strcmp(opt->output_file, "-")) {
    if ((st = bc_afile_open(err, &out.f, opt->output_file)) != BERTCL_OK) goto done;
    out.to_file = 1;
  }
  size_t n_sent = 0, n_words = 0;
  st = tokens ? bc_predict_tokens(c, tok, opt, &out, &n_sent, &n_words)
              : predict_sequences(c, tok, &d, opt, &out);
  if (out.to_file) { /* complete: renamed into place; not: the temporary file goes */
    if (st == BERTCL_OK)
      st = bc_afile_commit(err, &out.f);
    else
      bc_afile_abort(&out.f);
  }
  if (st == BERTCL_OK && progress) {
    char msg[256];
    if (tokens)
      snprintf(msg, sizeof msg, "%zu sentences, %zu words tagged", n_sent, n_words);
    else
      snprintf(msg, sizeof msg, "%zu texts classified", d.n);
    bertcl_progress p = {.event = BERTCL_EVENT_INFO, .message = msg};
    progress(&p, user);
  }
done:
  bc_text_data_free(&d);
  bertcl_classifier_free(c);
  return st;
}
