/* bertcl probe: parses options, calls bertcl_probe (src/probe), prints the table. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_probe_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl probe -m MODEL_DIR --train FILE --eval FILE -o OUT_DIR\n"
          "                    [--task sequence|token] [--layers all|LIST]\n"
          "                    [--pool cls,mean,max,pooler] [--words first|mean]\n"
          "                    [--combine last4,mean,mix|none] [--l2 X|auto]\n"
          "                    [--max-len N] [--batch-size N] [--max-iter N]\n"
          "                    [--text-column NAME] [--pair-column NAME] [--label-column NAME]\n"
          "                    [--device D] [--gemm auto|clblast|blas] [-q]\n\n"
          "Which layer and which pooling serve a task? One encoder pass computes every\n"
          "requested layer's features of the train and eval data; then a separate linear\n"
          "classifier (L2 logistic regression on standardised features, full-batch L-BFGS on\n"
          "the device, deterministic) is trained on each layer x pooling, and on combinations:\n"
          "the last four layers side by side, the mean of the layers, and a learnt scalar mix\n"
          "of them (ELMo). Each is scored on the eval data.\n\n"
          "Prints the table (rows: hidden state 0 = embeddings .. L, and combinations;\n"
          "columns: poolings; * marks the best) and writes OUT_DIR/probe.json (every figure),\n"
          "OUT_DIR/probe.svg (eval score per layer, one line per pooling: open it in a\n"
          "browser) and the best probe (probe.safetensors, probe_config.json), which\n"
          "'bertcl predict -m OUT_DIR -i FILE' applies to new texts.\n\n"
          "options:\n"
          "  -m, --model DIR        encoder (any bertcl model directory)\n"
          "  --train FILE, --eval FILE\n"
          "                         sequence: JSONL {\"text\", \"text_pair\", \"label\"} or\n"
          "                         TSV/CSV with a header, as for bertcl finetune; token:\n"
          "                         CoNLL or JSONL words with tags\n"
          "  -o, --output DIR       output directory\n"
          "  --task T               sequence (default): one label per text (pair);\n"
          "                         token: one tag per word (NER, tagging), features are word\n"
          "                         vectors, the score is entity F1 (seqeval's default mode,\n"
          "                         IOB1/IOB2/IOBES); input CoNLL columns (word first, tag\n"
          "                         last, -DOCSTART- skipped) or JSONL {\"tokens\", \"tags\"}\n"
          "  --layers L             all (default: 0..L) or a list: 0,3,-1 (negative from the end)\n"
          "  --pool P               poolings, comma-separated (default cls,mean; also max,\n"
          "                         and pooler: BERT's pooler output, last layer only)\n"
          "  --words W              token task: first (default: a word's first subword, as\n"
          "                         the BERT paper) or mean (of its subwords)\n"
          "  --combine C            combinations: last4,mean,mix (default all three) or none\n"
          "  --l2 X|auto            penalty lambda of mean loss + lambda/2 |W|^2 (default 1/N,\n"
          "                         scikit-learn's C = 1 with l2 = 1/(C N)); auto: per cell the\n"
          "                         best C of 0.001..100 on a held-out tenth of train\n"
          "  --max-len N            tokens per text with [CLS]/[SEP] (default: the model's)\n"
          "  --batch-size N         texts per device batch (default: extraction's, 128)\n"
          "  --max-iter N           L-BFGS iterations per probe (default 1000)\n"
          "  --text-column, --pair-column, --label-column NAME   as for bertcl finetune\n"
          "  --device D             OpenCL device (see bertcl devices)\n"
          "  --gemm B               matrix products: auto (default), clblast or blas\n"
          "  -q, --quiet            only the table\n"
          "  -h, --help             this text\n");
}

static int print_progress(const bertcl_progress *p, void *user) {
  int quiet = *(const int *)user;
  if (!quiet && p->event != BERTCL_EVENT_DONE) fprintf(stderr, "probe: %s\n", p->message);
  return 0;
}

/* Parses "a,b,c" of names into a mask; returns 0 on an unknown name. */
static int parse_names(const char *s, const char *const *names, const unsigned *bits, int n,
                       unsigned *mask) {
  *mask = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int found = 0;
    for (int i = 0; i < n; i++)
      if (!strcmp(t, names[i])) *mask |= bits[i], found = 1;
    if (!found) return 0;
  }
  return *mask != 0;
}

static int parse_layers(const char *s, int *out, int *n) {
  *n = 0;
  if (!strcmp(s, "all")) return 1;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long v = strtol(t, &end, 10);
    if (*end || end == t || *n == 64 || v < -64 || v > 64) return 0;
    out[(*n)++] = (int)v;
  }
  return *n > 0;
}

/* The table: rows in the order the cells came, one column per pooling. */
static void print_table(const bertcl_probe_result *r, const char *metric) {
  const char *cols[8];
  int ncols = 0;
  for (size_t i = 0; i < r->ncells; i++) {
    int seen = 0;
    for (int c = 0; c < ncols; c++) seen |= !strcmp(cols[c], r->cells[i].col);
    if (!seen && ncols < 8) cols[ncols++] = r->cells[i].col;
  }
  printf("eval %s (%zu train, %zu eval rows, %d labels)\n%-8s", metric, r->train_rows,
         r->eval_rows, r->num_labels, "layer");
  for (int c = 0; c < ncols; c++) printf(" %9s", cols[c]);
  printf("\n");
  const char *done_rows[256];
  int nrows = 0;
  for (size_t i = 0; i < r->ncells; i++) {
    int seen = 0;
    for (int k = 0; k < nrows; k++) seen |= !strcmp(done_rows[k], r->cells[i].row);
    if (seen || nrows == 256) continue;
    done_rows[nrows++] = r->cells[i].row;
    printf("%-8s", !strcmp(r->cells[i].row, "0") ? "0 (emb)" : r->cells[i].row);
    for (int c = 0; c < ncols; c++) {
      int hit = -1;
      for (size_t j = 0; j < r->ncells; j++)
        if (!strcmp(r->cells[j].row, r->cells[i].row) && !strcmp(r->cells[j].col, cols[c]))
          hit = (int)j;
      if (hit < 0)
        printf(" %9s", "-");
      else
        printf(" %8.4f%s", r->cells[hit].score, hit == r->best ? "*" : " ");
    }
    printf("\n");
  }
}

int bc_cmd_probe(int argc, char **argv) {
  bertcl_probe_options o;
  bertcl_probe_options_init(&o);
  const char *model_dir = NULL, *device = NULL, *gemm = NULL, *task = "sequence";
  const char *layers_s = "all", *pool_s = NULL, *combine_s = NULL, *l2_s = NULL, *words_s = NULL;
  long max_len = 0, batch = 0, max_iter = 0;
  int quiet = 0, layers[64], nlayers = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")   ? &model_dir
                       : !strcmp(a, "--train")                      ? &o.train_file
                       : !strcmp(a, "--eval")                       ? &o.eval_file
                       : !strcmp(a, "-o") || !strcmp(a, "--output") ? &o.output_dir
                       : !strcmp(a, "--task")                       ? &task
                       : !strcmp(a, "--layers")                     ? &layers_s
                       : !strcmp(a, "--pool")                       ? &pool_s
                       : !strcmp(a, "--combine")                    ? &combine_s
                       : !strcmp(a, "--words")                      ? &words_s
                       : !strcmp(a, "--l2")                         ? &l2_s
                       : !strcmp(a, "--text-column")                ? &o.text_column
                       : !strcmp(a, "--pair-column")                ? &o.pair_column
                       : !strcmp(a, "--label-column")               ? &o.label_column
                       : !strcmp(a, "--device")                     ? &device
                       : !strcmp(a, "--gemm")                       ? &gemm
                                                                    : NULL;
    if (dst) {
      if (!v) return bc_cli_error("probe: %s needs a value", a), 2;
      *dst = v;
      i++;
    } else if (!strcmp(a, "--max-len") || !strcmp(a, "--batch-size") ||
               !strcmp(a, "--max-iter")) {
      long *d = !strcmp(a, "--max-len") ? &max_len : !strcmp(a, "--batch-size") ? &batch : &max_iter;
      if (!v || bc_cli_num_l(v, 1, d)) return bc_cli_error("probe: bad %s '%s'", a, v ? v : ""), 2;
      i++;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      quiet = 1;
    } else {
      return bc_cli_error("probe: unknown option '%s' (see bertcl probe --help)", a), 2;
    }
  }
  if (!model_dir || !o.train_file || !o.eval_file || !o.output_dir)
    return bc_cli_error("probe: -m MODEL_DIR, --train FILE, --eval FILE and -o OUT_DIR are "
                        "required"), 2;
  if (!strcmp(task, "sequence"))
    o.task = BERTCL_PROBE_SEQUENCE;
  else if (!strcmp(task, "token"))
    o.task = BERTCL_PROBE_TOKEN;
  else
    return bc_cli_error("probe: --task must be sequence or token"), 2;
  if (words_s && strcmp(words_s, "first") && strcmp(words_s, "mean"))
    return bc_cli_error("probe: --words must be first or mean"), 2;
  if (words_s) o.words = !strcmp(words_s, "mean") ? 2 : 1;
  if (words_s && o.task != BERTCL_PROBE_TOKEN)
    return bc_cli_error("probe: --words is for --task token"), 2;
  if (pool_s && o.task == BERTCL_PROBE_TOKEN)
    return bc_cli_error("probe: --pool is for --task sequence (token probes use --words)"), 2;
  if (!parse_layers(layers_s, layers, &nlayers))
    return bc_cli_error("probe: --layers wants all or a comma-separated list of integers, got "
                        "'%s'", layers_s), 2;
  o.layers = nlayers ? layers : NULL;
  o.nlayers = nlayers;
  if (pool_s) {
    static const char *const names[] = {"cls", "mean", "max", "pooler"};
    static const unsigned bits[] = {BERTCL_POOL_CLS, BERTCL_POOL_MEAN, BERTCL_POOL_MAX,
                                    BERTCL_POOL_POOLER};
    if (!parse_names(pool_s, names, bits, 4, &o.pools))
      return bc_cli_error("probe: --pool wants cls, mean, max, pooler (comma-separated), got "
                          "'%s'", pool_s), 2;
  }
  if (combine_s && !strcmp(combine_s, "none")) {
    o.no_combos = 1;
  } else if (combine_s) {
    static const char *const names[] = {"last4", "mean", "mix"};
    static const unsigned bits[] = {BERTCL_PROBE_LAST4, BERTCL_PROBE_MEAN, BERTCL_PROBE_MIX};
    if (!parse_names(combine_s, names, bits, 3, &o.combos))
      return bc_cli_error("probe: --combine wants last4, mean, mix (comma-separated) or none, "
                          "got '%s'", combine_s), 2;
  }
  if (l2_s && !strcmp(l2_s, "auto"))
    o.l2 = BERTCL_PROBE_L2_AUTO;
  else if (l2_s && bc_cli_num_f(l2_s, 0, &o.l2))
    return bc_cli_error("probe: --l2 wants a number >= 0 or auto, got '%s'", l2_s), 2;
  o.max_length = (size_t)max_len;
  o.batch_size = (size_t)batch;
  o.max_iter = (int)max_iter;
  int ret = 1;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_ctx *ctx = NULL;
  bertcl_probe_result res = {0};
  if (bc_cli_open(model_dir, device, gemm, &model, &tok, &ctx)) goto done;
  if (bertcl_probe(ctx, model, tok, &o, print_progress, &quiet, &res) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  print_table(&res, o.task == BERTCL_PROBE_TOKEN ? "entity F1" : "accuracy");
  const bertcl_probe_cell *b = &res.cells[res.best];
  if (o.task == BERTCL_PROBE_TOKEN)
    printf("best: hidden state %s, %s-subword word vectors: entity F1 %.4f (P %.4f, R %.4f; "
           "word accuracy %.4f)",
           b->row, b->col, b->entity_f1, b->entity_precision, b->entity_recall,
           b->metrics.accuracy);
  else
    printf("best: hidden state %s, %s pooling: accuracy %.4f (macro-F1 %.4f)", b->row, b->col,
           b->score, b->metrics.macro_f1);
  printf("; extraction %.1f s, %zu probes %.1f s on %s\nwrote %s/probe.json, probe.svg, "
         "probe.safetensors, probe_config.json\n",
         res.extract_seconds, res.ncells, res.fit_seconds, bertcl_ctx_device(ctx)->name,
         o.output_dir);
  ret = 0;
done:
  bertcl_probe_result_free(&res);
  bc_cli_close(ctx, tok, model);
  return ret;
}
