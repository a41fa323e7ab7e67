/* Labelled (or unlabelled) text examples for fine-tuning and prediction: JSONL objects, TSV or
 * CSV with a header, or plain text one example a line. Every reader has a memory form (what the
 * fuzzers call) and a file form; errors name the file and line. */
#ifndef BC_TRAIN_DATA_H
#define BC_TRAIN_DATA_H

#include <stddef.h>

#include "common.h"

typedef struct {
  size_t n, cap;
  char **text, **pair, **label; /* (n); pair and label entries may be NULL */
  size_t *line;                 /* (n) 1-based line of each example */
} bc_text_data;

typedef struct {
  const char *text_col, *pair_col, *label_col; /* NULL: "text", "text_pair", "label" */
} bc_text_columns;

enum {
  BC_DATA_NEED_LABEL = 1, /* every example must have a label */
  BC_DATA_PLAIN_OK = 2,   /* lines that are not JSONL/TSV/CSV are plain texts (prediction) */
  BC_DATA_FORCE_PLAIN = 4 /* every line is a plain text */
};

/* The format is JSONL when the first non-blank byte is '{', CSV when name ends in ".csv",
 * TSV otherwise (plain text under BC_DATA_PLAIN_OK when name does not end in ".tsv" and the
 * data has no tab). A UTF-8 byte-order mark is skipped. TSV/CSV: the header names the columns;
 * for the text, "text", else "sentence", else the first column. name is used in messages and for
 * the extension. data need not be NUL-terminated; a NUL byte in it is an error. */
int bc_text_data_parse(bc_err *err, const char *name, const char *data, size_t len,
                       const bc_text_columns *cols, int flags, bc_text_data *out);
int bc_text_data_read(bc_err *err, const char *path, const bc_text_columns *cols, int flags,
                      bc_text_data *out);
void bc_text_data_free(bc_text_data *d);

/* Helpers shared by the readers of src/train. */
char *bc_strdup(const char *s);
/* Reallocates n arrays to cap elements each: the arguments after n are n pairs (the address of
 * the array's pointer, size_t element size). 0, or -1 when one fails (the others keep their new
 * size). */
int bc_grow_arrays(size_t cap, int n, ...);
/* BERTCL_OK when data (len bytes) has no NUL byte; otherwise BERTCL_ERR_FORMAT with
 * "name:line: a NUL byte (not a text file?)", line the 1-based line of the first one. */
int bc_check_no_nul(bc_err *err, const char *name, const char *data, size_t len);
/* Bytes of a UTF-8 byte-order mark at the start of data (0 or 3). */
size_t bc_bom_len(const char *data, size_t len);
int bc_ends_with(const char *s, const char *suffix);
/* Splits one CSV (sep ',', double quotes) or TSV line into at most max fields, in place. */
int bc_split_fields(char *line, char sep, char **f, int max);

#endif
