/* A model folder's tokenizer checked at load, so a bad folder is refused up front instead of
 * failing mid-job when a text happens to produce an id past the embedding table.
 *
 *   bc_tokfile_precheck   the vocabulary file's bytes, before the tokenizer parses it: vocab.txt
 *                         must hold at least one token and be UTF-8 (line and byte of the first
 *                         bad sequence). tokenizer.json is JSON, which the parser already
 *                         requires to be UTF-8.
 *   bc_tokenizer_check    a loaded tokenizer through the public API only: every id it can emit
 *                         (vocabulary, added tokens, template tokens, padding) has a token, and,
 *                         given the model's sizes, lies below the word-embedding rows; template
 *                         and padding type ids lie below the token-type rows. A vocabulary
 *                         smaller than the table stays legal (tables are often padded).
 *
 * bertcl_tokenizer_load runs both (with config.json's vocab_size when the directory has one);
 * bertcl_model_load loads the directory's tokenizer and checks it against the loaded table. */
#ifndef BC_TOKCHECK_H
#define BC_TOKCHECK_H

#include "common.h"

/* The file a directory's tokenizer is read from (tokenizer.json, else vocab.txt) as a malloc'd
 * path, NULL when there is neither. */
char *bc_tokfile_path(const char *dir);

/* Checks vocab.txt bytes (a no-op for tokenizer.json). */
int bc_tokfile_precheck(bc_err *err, const char *tokfile);

/* The model side of the check: rows of the word-embedding and token-type tables (<= 0: not
 * known, not checked) and where they come from, for the message. */
typedef struct {
  long vocab_rows, type_rows;
  char source[512]; /* e.g. "m/config.json vocab_size" */
} bc_tok_limits;

int bc_tokenizer_check(bc_err *err, const bertcl_tokenizer *tok, const char *tokfile,
                       const bc_tok_limits *lim);

/* Limits from a config.json (vocab_size, type_vocab_size; absent keys are not checked);
 * *lim is zeroed when the file does not exist or is not a JSON object (the model loader, not
 * the tokenizer, reports a bad config.json). */
void bc_tok_limits_from_config(const char *config_path, bc_tok_limits *lim);

/* bertcl_model_load's step: loads the tokenizer of the model directory (top, else the
 * Transformer module's dir) when it has one and checks it against the loaded tables. A
 * directory without tokenizer files passes (ids can be given directly), and so does one whose
 * tokenizer is of a kind bertcl does not read (BERTCL_ERR_UNSUPPORTED from the loader). */
int bc_model_tokenizer_check(bc_err *err, const char *top, const char *dir,
                             const bc_tok_limits *lim);

#endif
