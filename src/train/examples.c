/* Tokenized examples and padded batches. See examples.h. */
#include "train/examples.h"

#include <stdlib.h>
#include <string.h>

void bc_examples_free(bc_examples *x) {
  if (!x) return;
  free(x->start);
  free(x->ids);
  free(x->types);
  free(x->label);
  free(x->target);
  free(x->tok_label);
  free(x->tok_word);
  free(x->sentence);
  memset(x, 0, sizeof *x);
}

/* Appends n tokens; grows the pooled arrays geometrically. */
static int push_tokens(bc_examples *x, size_t *cap, const int32_t *ids, const int32_t *types,
                       size_t n) {
  size_t have = x->start[x->n];
  if (have + n > *cap) {
    size_t nc = *cap ? *cap : 4096;
    while (nc < have + n) nc *= 2;
    if (bc_grow_arrays(nc, 2, (void *)&x->ids, sizeof *x->ids, (void *)&x->types,
                       sizeof *x->types))
      return -1;
    *cap = nc;
  }
  memcpy(x->ids + have, ids, n * sizeof *ids);
  memcpy(x->types + have, types, n * sizeof *types);
  x->start[x->n + 1] = have + n;
  x->n++;
  return 0;
}

int bc_examples_from_text(bc_err *err, bc_examples *x, const bertcl_tokenizer *tok,
                          const bc_text_data *d, const bertcl_tokenize_options *opt) {
  memset(x, 0, sizeof *x);
  x->start = calloc(d->n + 1, sizeof *x->start);
  if (!x->start) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for %zu examples", d->n);
  size_t cap = 0;
  for (size_t i = 0; i < d->n; i++) {
    bertcl_encoding *enc = NULL;
    const char *pair = d->pair[i];
    int st = bertcl_tokenizer_encode(tok, d->text[i], strlen(d->text[i]), pair,
                                     pair ? strlen(pair) : 0, opt, &enc);
    if (st != BERTCL_OK) {
      bc_examples_free(x);
      return bc_fail(err, st, "example %zu (line %zu): %s", i + 1, d->line[i],
                     bertcl_last_error(NULL));
    }
    int rc = push_tokens(x, &cap, enc->ids, enc->type_ids, enc->n);
    bertcl_encoding_free(enc);
    if (rc) {
      bc_examples_free(x);
      return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory tokenizing %zu examples", d->n);
    }
  }
  return BERTCL_OK;
}

int bc_tokenizer_pad(bc_err *err, const bertcl_tokenizer *tok, int32_t *pad_id,
                     int32_t *pad_type_id) {
  /* "" is [CLS] [SEP]; "a a" is longer, so row 0 ends in padding */
  const char *texts[2] = {"", "a a"};
  bertcl_batch *b = NULL;
  int st = bertcl_tokenizer_encode_batch(tok, texts, NULL, 2, NULL, &b);
  if (st != BERTCL_OK) return bc_fail(err, st, "tokenizer: %s", bertcl_last_error(NULL));
  if (b->lengths[0] >= b->seq) {
    bertcl_batch_free(b);
    return bc_fail(err, BERTCL_ERR_INTERNAL, "the tokenizer's padding id could not be found");
  }
  *pad_id = b->ids[b->seq - 1];
  *pad_type_id = b->type_ids[b->seq - 1];
  bertcl_batch_free(b);
  return BERTCL_OK;
}

void bc_batch_buf_free(bc_batch_buf *b) {
  if (!b) return;
  free(b->ids), free(b->types), free(b->mask), free(b->tok_labels), free(b->labels);
  free(b->targets);
  memset(b, 0, sizeof *b);
}

int bc_examples_batch(bc_err *err, bc_batch_buf *b, const bc_examples *x, const size_t *idx,
                      size_t n, int32_t pad_id, int32_t pad_type_id) {
  size_t T = 1;
  for (size_t i = 0; i < n; i++) {
    size_t len = x->start[idx[i] + 1] - x->start[idx[i]];
    if (len > T) T = len;
  }
  size_t cells = n * T;
  if (cells > b->cap_cells) {
    if (bc_grow_arrays(cells, 4, (void *)&b->ids, sizeof *b->ids, (void *)&b->types,
                       sizeof *b->types, (void *)&b->mask, sizeof *b->mask,
                       (void *)&b->tok_labels, sizeof *b->tok_labels))
      return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for a batch");
    b->cap_cells = cells;
  }
  if (n > b->cap_rows) {
    if (bc_grow_arrays(n, 2, (void *)&b->labels, sizeof *b->labels, (void *)&b->targets,
                       sizeof *b->targets))
      return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for a batch");
    b->cap_rows = n;
  }
  for (size_t i = 0; i < n; i++) {
    size_t s = x->start[idx[i]], len = x->start[idx[i] + 1] - s;
    int32_t *ids = b->ids + i * T, *ty = b->types + i * T, *mk = b->mask + i * T;
    memcpy(ids, x->ids + s, len * sizeof *ids);
    memcpy(ty, x->types + s, len * sizeof *ty);
    for (size_t t = 0; t < T; t++) mk[t] = t < len;
    for (size_t t = len; t < T; t++) ids[t] = pad_id, ty[t] = pad_type_id;
    int32_t *tl = b->tok_labels + i * T;
    for (size_t t = 0; t < T; t++) tl[t] = x->tok_label && t < len ? x->tok_label[s + t] : -100;
    b->labels[i] = x->label ? x->label[idx[i]] : -100;
    b->targets[i] = x->target ? x->target[idx[i]] : 0.0f;
  }
  b->B = (int)n;
  b->T = (int)T;
  return BERTCL_OK;
}
