/* Word-level examples for token classification (NER, tagging): sentences of words, each with a
 * tag, read from CoNLL column files or JSONL {"tokens": [...], "tags": [...]}. Every reader has
 * a memory form (what the fuzzers call) and a file form; errors name the file and line. */
#ifndef BC_TRAIN_WORDS_H
#define BC_TRAIN_WORDS_H

#include <stddef.h>

#include "common.h"

typedef struct {
  size_t n;        /* sentences */
  size_t *start;   /* (n + 1) sentence i holds words [start[i], start[i+1]) */
  char **words;    /* (start[n]) */
  char **tags;     /* (start[n]) tag of each word; NULL when the data has no tags */
  char **raw;      /* (start[n]) CoNLL: the word's whole input line (predict echoes it), else
                      NULL */
  size_t *line;    /* (start[n]) 1-based input line of each word (JSONL: of its sentence) */
  size_t *docs;    /* (n) CoNLL: -DOCSTART- lines just before sentence i (0 or more) */
  char *doc_line;  /* CoNLL: the first -DOCSTART- line as read, or NULL */
  size_t cap_words, cap_sents;
} bc_word_data;

enum {
  BC_WORDS_NEED_TAGS = 1 /* every word must have a tag */
};

typedef struct {
  int tag_column;        /* CoNLL: 0-based column of the tag; -1 = the last */
  const char *words_key; /* JSONL: NULL = "tokens" */
  const char *tags_key;  /* JSONL: NULL = "tags", else "ner_tags" */
} bc_word_columns;

/* CoNLL: one word a line, columns separated by spaces or tabs (the word first), a blank line
 * between sentences, "-DOCSTART-" lines skipped (counted in docs). Every line of a file has the
 * same number of columns. A file of one column has words and no tags. */
int bc_conll_parse(bc_err *err, const char *name, const char *data, size_t len,
                   const bc_word_columns *cols, int flags, bc_word_data *out);
/* JSONL: one sentence a line, {"tokens": ["EU", "rejects", ...], "tags": ["B-ORG", "O", ...]};
 * tags may be strings or integers; every word a non-empty string; as many tags as words. */
int bc_words_jsonl_parse(bc_err *err, const char *name, const char *data, size_t len,
                         const bc_word_columns *cols, int flags, bc_word_data *out);
/* JSONL when the first non-blank byte is '{', else CoNLL. */
int bc_words_parse(bc_err *err, const char *name, const char *data, size_t len,
                   const bc_word_columns *cols, int flags, bc_word_data *out);
int bc_words_read(bc_err *err, const char *path, const bc_word_columns *cols, int flags,
                  bc_word_data *out);
void bc_word_data_free(bc_word_data *d);

/* Whether data looks like CoNLL columns rather than a TSV/CSV table or plain text: its first
 * non-blank line starts with -DOCSTART-, or name ends in .conll, .conllu, .iob, .iob2, .bio or
 * .bioes, or it has no tab in its first line, two or more columns there, and blank lines
 * between blocks of lines. JSONL is never CoNLL. */
int bc_looks_like_conll(const char *name, const char *data, size_t len);
/* Whether JSONL data's first object has a words key ("tokens"). */
int bc_looks_like_word_jsonl(const char *data, size_t len, const char *words_key);

#endif
