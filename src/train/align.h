/* Word tags aligned to subword tokens as transformers' run_ner.py does it, and sentences split
 * into windows of at most max_length tokens (never cut):
 *   - each word is tokenized on its own (tokenizer(words, is_split_into_words=True));
 *   - the first subword of a word gets the word's tag; the other subwords get -100 (not trained
 *     on), or with label_all_tokens the word's tag mapped B-X -> I-X (run_ner's b_to_i_label:
 *     only when I-X is a label); [CLS], [SEP] and padding get -100;
 *   - a sentence of more than max_length - 2 subwords becomes several windows of whole words,
 *     balanced in length, each with its own [CLS] ... [SEP]: every word is trained on and
 *     predicted once. A single word longer than a window keeps only its first subwords (counted
 *     in cut_words; its first subword, which carries its tag, is always there). */
#ifndef BC_TRAIN_ALIGN_H
#define BC_TRAIN_ALIGN_H

#include <stddef.h>
#include <stdint.h>

#include "bertcl.h"
#include "common.h"
#include "train/examples.h"
#include "train/labels.h"
#include "train/words.h"

typedef struct {
  size_t max_length;      /* tokens per window, template included */
  int label_all_tokens;
  const int32_t *b_to_i;  /* (K) label id -> the id later subwords get (label_all_tokens) */
} bc_align_options;

typedef struct {
  size_t sentences, words, tokens; /* subword tokens without the template */
  size_t split_sentences;          /* sentences that needed more than one window */
  size_t windows;                  /* examples made */
  size_t cut_words;                /* words longer than a window, cut to fit */
  size_t empty_words;              /* words the tokenizer makes no token of (never predicted:
                                      they get the first label, or O when there is one) */
  size_t longest;                  /* most subwords in one sentence */
} bc_align_stats;

/* run_ner.py's b_to_i_label: for "B-X" the id of "I-X" when that is a label, else the id
 * itself. out (lm->K). */
void bc_b_to_i(const bc_labelmap *lm, int32_t *out);

/* Examples (windows) of d's sentences with token labels from word_labels (start[n] ids, or NULL
 * for unlabelled data: every token -100). x->sentence and x->tok_word say where each window and
 * each word's first subword come from. */
int bc_examples_from_words(bc_err *err, bc_examples *x, const bertcl_tokenizer *tok,
                           const bc_word_data *d, const int32_t *word_labels,
                           const bc_align_options *opt, bc_align_stats *stats);

#endif
