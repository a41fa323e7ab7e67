/* The OpenCL encoder: weights uploaded once, an activation arena planned per (batch, sequence
 * length), the BertModel forward schedule, and device-side sentence pooling.
 * Every matrix product goes through bc_gemm (gemm/gemm.h); every other op through the op
 * table (encoder/ops.h). */
#ifndef BC_ENCODER_H
#define BC_ENCODER_H

#include "encoder/ops.h"
#include "model/model.h"

typedef struct bc_encoder bc_encoder;

/* Uploads the model's weights to ctx's device (Q, K, V concatenated into one (3C, C) weight).
 * The model must outlive nothing: its host weights are no longer needed afterwards. */
int bc_encoder_create(bertcl_ctx *ctx, const struct bertcl_model *model, bc_encoder **out);
void bc_encoder_free(bc_encoder *enc);
const bc_config *bc_encoder_config(const bc_encoder *enc);

/* Cap on device memory the arena may use (bytes, 0 = the device's). A test hook that makes an
 * allocation fail the way a full device does. */
void bc_encoder_set_mem_cap(bc_encoder *enc, uint64_t bytes);

/* The forward pass and the *_to feature functions enqueue on ctx->queue (in order) and return
 * without waiting for the device; the read_* functions end in a blocking read, so their results
 * are complete on return. bc_encoder_finish waits for everything enqueued. */
int bc_encoder_finish(bc_encoder *enc);

/* Runs the encoder on a (B, T) batch and keeps the hidden states of the `nlayers` layers listed
 * in `layers` (0 = embedding output ... L = last layer) on the device. ids/type_ids/mask are
 * (B, T) int32 host arrays (type_ids NULL = all 0, mask NULL = all real). Token ids outside the
 * vocabulary are an error. On BERTCL_ERR_DEVICE_OOM the caller may retry with a smaller batch. */
int bc_encoder_forward(bc_encoder *enc, const int32_t *ids, const int32_t *type_ids,
                       const int32_t *mask, int B, int T, const int *layers, int nlayers);

/* After bc_encoder_forward: reads back the hidden state of the i-th kept layer, (B*T, C). */
int bc_encoder_read_hidden(bc_encoder *enc, int i, float *out);

/* After bc_encoder_forward, computed on the device and read back:
 * the pooler output (B, C) (error when the model has no pooler). */
int bc_encoder_read_pooler(bc_encoder *enc, float *out);

/* Sentence features from the kept layers: for each kept layer, pooled with `mode` (BC_POOL_CLS,
 * _MEAN or _MAX), then combined across layers (combine: 0 = concat -> (B, nlayers*C),
 * 1 = mean, 2 = sum -> (B, C)), then L2-normalised per row when normalize is set. */
enum { BC_COMBINE_CONCAT = 0, BC_COMBINE_MEAN = 1, BC_COMBINE_SUM = 2 };
int bc_encoder_read_pooled(bc_encoder *enc, int mode, int combine, int normalize, float *out);

/* The same features computed into a device buffer (or sub-buffer) `dst` and left there, for a
 * caller that reads them back on its own queue while the device goes on (bertcl's job pipeline).
 * dst must hold (B, C) floats for the pooler, (B, width) for pooled, (token_count, width) for
 * tokens and (word_count, width) for words (width = nkept*C for concat, else C); a smaller dst
 * is an error. Host arrays (word_ids) may be reused as soon as these return. */
int bc_encoder_pooler_to(bc_encoder *enc, cl_mem dst);
int bc_encoder_pooled_to(bc_encoder *enc, int mode, int combine, int normalize, cl_mem dst);
int bc_encoder_tokens_to(bc_encoder *enc, int combine, cl_mem dst);
int bc_encoder_words_to(bc_encoder *enc, const int32_t *word_ids, int mode, int combine,
                        cl_mem dst);

/* dst (n halves) = src (n floats) rounded to nearest even, bit for bit bc_f32_to_f16: features
 * narrowed on the device so half the bytes are read back. */
int bc_encoder_to_half(bc_encoder *enc, cl_mem dst, cl_mem src, size_t n);

/* Token features of the kept layers (joined as for read_pooled), real tokens only, rows in
 * order (b, t): out (bc_encoder_token_count, width). The mask must be right-padded. */
int bc_encoder_read_tokens(bc_encoder *enc, int combine, float *out, size_t *nrows);
size_t bc_encoder_token_count(const bc_encoder *enc);
/* Word features from WordPiece word ids (B, T) (-1 = special token or padding; ids must be
 * unique inside a row, so a pair's second text is offset by the first's word count):
 * mode 1 = first subword, 2 = mean of subwords. Row b has max(word id) + 1 words;
 * out (bc_encoder_word_count, width). */
int bc_encoder_read_words(bc_encoder *enc, const int32_t *word_ids, int mode, int combine,
                          float *out, size_t *nrows);
size_t bc_encoder_word_count(const bc_encoder *enc, const int32_t *word_ids);

/* The internal encoder (and its context) behind a public bertcl_encoder handle. */
bc_encoder *bc_encoder_unwrap(struct bertcl_encoder *e, bertcl_ctx **ctx);
/* Layer list (negative = from the end; NULL or n <= 0 = the last layer) to 0..L indices in out
 * (64 entries); returns the count, -1 for an index out of range or more than 64. */
int bc_encoder_resolve_layers(const bc_encoder *enc, const int *layers, int n, int *out);

#endif
