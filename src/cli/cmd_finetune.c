/* bertcl finetune: parses options, calls bertcl_finetune (src/train), prints its progress. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_finetune_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl finetune -m MODEL_DIR --train FILE -o OUT_DIR [--eval FILE]\n"
          "                       [--epochs 3] [--lr 2e-5] [--batch-size 32] [--max-len 128]\n"
          "                       [--warmup-ratio 0] [--weight-decay 0] [--grad-accum 1]\n"
          "                       [--max-grad-norm 1] [--seed 42] [--eval-every N]\n"
          "                       [--save-every N] [--freeze-encoder] [--resume] [--device D]\n"
          "                       [--gemm auto|clblast|blas] [--num-labels N]\n"
          "                       [--task auto|classification|regression|token]\n"
          "                       [--tag-column N] [--label-all-tokens]\n"
          "                       [--scheme auto|IOB1|IOB2|IOBES|none]\n\n"
          "Fine-tunes a BERT encoder with a sequence-classification head (pooler -> dropout ->\n"
          "linear, as transformers' BertForSequenceClassification) on labelled text, on the\n"
          "OpenCL device: cross-entropy (classification) or MSE (regression, num_labels 1),\n"
          "AdamW (no decay on biases and LayerNorm weights),\n"
          "linear warm-up and decay, clipping by global norm, gradient accumulation, dropout\n"
          "from config.json with a counter-based RNG (a seed reproduces a run exactly).\n\n"
          "Input: JSONL lines {\"text\": ..., \"text_pair\": ..., \"label\": ...}, or TSV/CSV with\n"
          "a header (.tsv: tab-separated; .csv: comma-separated, double quotes). Labels are\n"
          "strings or integers (classification; the mapping is saved as id2label/label2id), or\n"
          "numbers (regression: when every label is a number and at least one is written as a\n"
          "non-integer, 3.8 or 5.0 or a JSON float, as a float column in datasets; or when the\n"
          "model is already a regression model; or with --task regression / --num-labels 1).\n"
          "Regression saves num_labels 1 and problem_type \"regression\" in config.json.\n\n"
          "Token classification (NER, tagging; BertForTokenClassification: dropout and a linear\n"
          "layer on every token) reads CoNLL column files (a word and its tag a line, the word\n"
          "first, the tag last or --tag-column, a blank line between sentences, -DOCSTART-\n"
          "skipped; auto-detected) or JSONL {\"tokens\": [...], \"tags\": [...]}. Tags are\n"
          "aligned to subwords as transformers' run_ner.py does (the first subword of a word\n"
          "gets its tag, the others are not trained on unless --label-all-tokens); sentences\n"
          "longer than --max-len are split into windows, never cut. Evaluation: entity-level\n"
          "precision, recall and F1 as seqeval / conlleval (IOB1, IOB2 or IOBES), word\n"
          "accuracy, a per-type table at the end; the best checkpoint is the best F1.\n\n"
          "OUT_DIR: config.json (BertForSequenceClassification or BertForTokenClassification),\n"
          "model.safetensors (Hugging Face names), the tokenizer files: AutoModelFor...\n"
          ".from_pretrained loads it. With --eval it holds the checkpoint of best eval accuracy\n"
          "(regression: lowest eval MSE; tokens: best entity F1). OUT_DIR/checkpoint.\n"
          "safetensors (parameters, AdamW moments, step; written to a temporary file and\n"
          "renamed) lets --resume continue exactly where a run stopped.\n\n"
          "options:\n"
          "  -m, --model DIR        model directory (BERT; a classifier of the same size is\n"
          "                         reused, else initialised as transformers does)\n"
          "  --train FILE           training data\n"
          "  --eval FILE            evaluation data: accuracy, macro-F1 (F1 of label 1 when\n"
          "                         binary); regression: MSE, Pearson and Spearman\n"
          "                         correlation; after each epoch, or every --eval-every steps\n"
          "  -o, --output DIR       output directory\n"
          "  --text-column NAME     text field/column (default text; TSV/CSV: text, else\n"
          "                         sentence, else the first column)\n"
          "  --pair-column NAME     second text (default text_pair when present)\n"
          "  --label-column NAME    label field/column (default label)\n"
          "  --task T               auto (default: token for CoNLL files and JSONL with\n"
          "                         \"tokens\", regression for float labels, see above),\n"
          "                         classification (float labels are names), regression or\n"
          "                         token\n"
          "  --num-labels N         1: regression; N > 1: classification with N labels\n"
          "                         (integer labels 0..N-1; default: from the data)\n"
          "  --epochs N             passes over the data (default 3)\n"
          "  --lr X                 peak learning rate (default 2e-5)\n"
          "  --batch-size N         examples per micro-batch (default 32)\n"
          "  --grad-accum N         micro-batches per optimizer step (default 1)\n"
          "  --max-len N            tokens per example with [CLS]/[SEP] (default 128)\n"
          "  --warmup-ratio X       fraction of the steps with linear warm-up (default 0)\n"
          "  --weight-decay X       AdamW weight decay (default 0)\n"
          "  --max-grad-norm X      clip the global gradient norm (default 1; 0 = off)\n"
          "  --seed N               data order, dropout and head initialisation (default 42)\n"
          "  --eval-every N         evaluate every N optimizer steps (default: each epoch)\n"
          "  --save-every N         checkpoint every N optimizer steps (default: each epoch)\n"
          "  --log-every N          progress line every N steps (default 10)\n"
          "  --freeze-encoder       train only the head: the encoder runs without dropout\n"
          "                         (sequence tasks: once per example, features cached)\n"
          "  --tag-column N         CoNLL: the tag's column, counting the word as 0 (default:\n"
          "                         the last)\n"
          "  --label-all-tokens     train every subword of a word on its tag (B-X: I-X after\n"
          "                         the first), as run_ner.py --label_all_tokens\n"
          "  --scheme S             the tags' scheme: auto (detected), IOB1, IOB2, IOBES, or\n"
          "                         none (plain tags such as part of speech: word accuracy)\n"
          "  --resume               continue from OUT_DIR/checkpoint.safetensors\n"
          "  --device D             OpenCL device (see bertcl devices)\n"
          "  --gemm B               matrix products: auto (default), clblast or blas\n"
          "  -q, --quiet            no progress lines\n"
          "  -h, --help             this text\n");
}

int bc_cli_num_l(const char *v, long lo, long *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || end == v || x < lo) return -1;
  *out = x;
  return 0;
}

int bc_cli_num_f(const char *v, double lo, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || *end || end == v || !(x >= lo)) return -1;
  *out = x;
  return 0;
}

typedef struct {
  int quiet;
  long kill_step; /* test hook: SIGKILL after this optimizer step's checkpoint */
} printer;

/* Progress: INFO, LOG and DONE lines unless --quiet; evaluations always. */
static int print_progress(const bertcl_progress *p, void *user) {
  const printer *pr = user;
  switch (p->event) {
    case BERTCL_EVENT_INFO:
    case BERTCL_EVENT_WARNING:
    case BERTCL_EVENT_DONE:
      if (!pr->quiet) fprintf(stderr, "finetune: %s\n", p->message);
      break;
    case BERTCL_EVENT_LOG:
      if (!pr->quiet) fprintf(stderr, "%s\n", p->message);
      break;
    case BERTCL_EVENT_EVAL:
      fprintf(stderr, "%s\n", p->message);
      break;
    case BERTCL_EVENT_STEP:
      if (p->step == pr->kill_step) raise(SIGKILL);
      break;
  }
  return 0;
}

int bc_cmd_finetune(int argc, char **argv) {
  bertcl_finetune_options o;
  bertcl_finetune_options_init(&o);
  const char *model_dir = NULL, *device = NULL, *gemm = NULL, *task = NULL, *scheme = NULL;
  long epochs = o.epochs, batch = (long)o.batch_size, accum = o.grad_accum,
       max_len = (long)o.max_length, seed = (long)o.seed, num_labels = 0, tag_column = -1;
  printer pr = {0, -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define STR(flag, dst)                                                      \
  if (!strcmp(a, flag)) {                                                   \
    if (!v) return bc_cli_error("finetune: %s needs a value", flag), 2;     \
    dst = v;                                                                \
    i++;                                                                    \
    continue;                                                               \
  }
#define LNG(flag, dst, lo)                                                             \
  if (!strcmp(a, flag)) {                                                              \
    if (!v || bc_cli_num_l(v, lo, &dst))                                               \
      return bc_cli_error("finetune: bad %s '%s' (an integer >= %d)", flag, v ? v : "", \
                          lo), 2;                                                      \
    i++;                                                                               \
    continue;                                                                          \
  }
#define DBL(flag, dst, lo)                                                             \
  if (!strcmp(a, flag)) {                                                              \
    if (!v || bc_cli_num_f(v, lo, &dst))                                               \
      return bc_cli_error("finetune: bad %s '%s' (a number >= %g)", flag, v ? v : "",  \
                          (double)lo), 2;                                              \
    i++;                                                                               \
    continue;                                                                          \
  }
    STR("-m", model_dir) STR("--model", model_dir) STR("--train", o.train_file)
    STR("--eval", o.eval_file) STR("-o", o.output_dir) STR("--output", o.output_dir)
    STR("--device", device) STR("--gemm", gemm) STR("--text-column", o.text_column)
    STR("--pair-column", o.pair_column) STR("--label-column", o.label_column)
    STR("--task", task) STR("--scheme", scheme)
    LNG("--num-labels", num_labels, 1) LNG("--tag-column", tag_column, 1)
    LNG("--epochs", epochs, 1) LNG("--batch-size", batch, 1) LNG("--grad-accum", accum, 1)
    LNG("--max-len", max_len, 3) LNG("--seed", seed, 0) LNG("--eval-every", o.eval_every, 1)
    LNG("--save-every", o.save_every, 1) LNG("--log-every", o.log_every, 1)
    DBL("--lr", o.lr, 0) DBL("--warmup-ratio", o.warmup_ratio, 0)
    DBL("--weight-decay", o.weight_decay, 0) DBL("--max-grad-norm", o.max_grad_norm, 0)
#undef STR
#undef LNG
#undef DBL
    if (!strcmp(a, "--freeze-encoder")) o.freeze_encoder = 1;
    else if (!strcmp(a, "--resume")) o.resume = 1;
    else if (!strcmp(a, "--label-all-tokens")) o.label_all_tokens = 1;
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) pr.quiet = 1;
    else return bc_cli_error("finetune: unknown option '%s' (see bertcl finetune --help)", a), 2;
  }
  if (!model_dir || !o.train_file || !o.output_dir)
    return bc_cli_error("finetune: -m MODEL_DIR, --train FILE and -o OUT_DIR are required"), 2;
  if (o.warmup_ratio > 1) return bc_cli_error("finetune: --warmup-ratio must be in [0, 1]"), 2;
  if (epochs > 1000000 || batch > 1000000 || accum > 1000000 || max_len > 1000000 ||
      num_labels > 1000000 || tag_column > 1000)
    return bc_cli_error("finetune: --epochs, --batch-size, --grad-accum, --max-len and "
                        "--num-labels must be at most 1000000, --tag-column 1000"), 2;
  o.tag_column = (int)tag_column;
  o.epochs = (int)epochs, o.batch_size = (size_t)batch, o.grad_accum = (int)accum;
  o.max_length = (size_t)max_len, o.seed = (uint64_t)seed, o.num_labels = (int)num_labels;
  if (!task || !strcmp(task, "auto")) o.task = BERTCL_TASK_AUTO;
  else if (!strcmp(task, "classification")) o.task = BERTCL_TASK_CLASSIFICATION;
  else if (!strcmp(task, "regression")) o.task = BERTCL_TASK_REGRESSION;
  else if (!strcmp(task, "token")) o.task = BERTCL_TASK_TOKEN_CLASSIFICATION;
  else
    return bc_cli_error("finetune: bad --task '%s' (auto, classification, regression or "
                        "token)", task), 2;
  if (!scheme || !strcmp(scheme, "auto")) o.scheme = BERTCL_SCHEME_AUTO;
  else if (!strcasecmp(scheme, "IOB1")) o.scheme = BERTCL_SCHEME_IOB1;
  else if (!strcasecmp(scheme, "IOB2") || !strcasecmp(scheme, "BIO"))
    o.scheme = BERTCL_SCHEME_IOB2;
  else if (!strcasecmp(scheme, "IOBES") || !strcasecmp(scheme, "BIOES"))
    o.scheme = BERTCL_SCHEME_IOBES;
  else if (!strcmp(scheme, "none")) o.scheme = BERTCL_SCHEME_NONE;
  else
    return bc_cli_error("finetune: bad --scheme '%s' (auto, IOB1, IOB2, IOBES or none)", scheme),
           2;
  if (((o.task == BERTCL_TASK_CLASSIFICATION || o.task == BERTCL_TASK_TOKEN_CLASSIFICATION) &&
       num_labels == 1) ||
      (o.task == BERTCL_TASK_REGRESSION && num_labels > 1))
    return bc_cli_error("finetune: --task %s contradicts --num-labels %ld (1 is regression)",
                        task, num_labels), 2;
  const char *kill_at = getenv("BERTCL_TEST_KILL_AT_STEP"); /* test hook */
  if (kill_at) pr.kill_step = strtol(kill_at, NULL, 10);

  int ret = 1;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_ctx *ctx = NULL;
  if (bc_cli_open(model_dir, device, gemm, &model, &tok, &ctx)) goto done;
  if (bertcl_finetune(ctx, model, tok, &o, print_progress, &pr, NULL) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  ret = 0;
done:
  bc_cli_close(ctx, tok, model);
  return ret;
}
