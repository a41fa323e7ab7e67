/* bertcl finetune / predict end to end on the tiny model (PoCL in CI):
 * - killed with SIGKILL mid-run (after step 7, last checkpoint at step 6) and resumed: the final
 *   model.safetensors is byte-identical to an uninterrupted run's (same seed);
 * - TSV input with integer labels and text pairs, gradient accumulation, warm-up, weight decay:
 *   the export's config.json (BertForSequenceClassification, id2label, label2id) and predict's
 *   JSONL (a label and probabilities summing to 1 per row); bad input is refused with a message;
 * - --freeze-encoder: the exported encoder is the source model's, bit for bit; the head moved;
 * - when python3 with transformers and torch is present: AutoModelForSequenceClassification
 *   loads OUT_DIR and gives the probabilities bertcl predict gives (skipped otherwise);
 * - regression: float labels in a TSV pick num_labels 1 and MSE (config.json's problem_type
 *   "regression"), eval reports MSE, Pearson and Spearman and the MSE falls below a quarter of
 *   the targets' variance, predict prints one {"score": x} a line, transformers' logits equal
 *   those scores (when importable); --task classification on the same data makes a classifier
 *   instead; contradicting --task and --num-labels are refused. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "model/model.h"

typedef struct {
  char dir[512], model[512], dev[256];
} env;

/* ctx's device, a new temporary folder and tiny-bert. */
static void env_init(env *e, bertcl_ctx *ctx) {
  snprintf(e->dev, sizeof e->dev, "%s", bertcl_ctx_device(ctx)->name);
  assert_int_equal(bc_test_tmpdir(e->dir, sizeof e->dir), 0);
  bc_test_data_path(e->model, sizeof e->model, "tiny-bert");
}

static int setup_env(env *e) {
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) return 0;
  env_init(e, ctx);
  bertcl_ctx_free(ctx);
  return 1;
}

/* A model directory's weights and tokenizer. */
static void load_model(const char *dir, bertcl_model **m, bertcl_tokenizer **tok) {
  assert_int_equal(bertcl_model_load(m, dir), BERTCL_OK);
  assert_int_equal(bertcl_tokenizer_load(tok, dir), BERTCL_OK);
}

static void done_env(env *e) {
  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

/* A separable toy task: words from a positive or a negative list. */
static void write_jsonl(const char *path, int n, uint64_t seed) {
  static const char *pos[] = {"good", "great", "fine", "nice", "happy", "love"};
  static const char *neg[] = {"bad", "awful", "poor", "sad", "hate", "terrible"};
  bc_rng r;
  bc_rng_seed(&r, seed);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < n; i++) {
    int y = bc_rng_u32(&r) & 1, len = 2 + (int)(bc_rng_u32(&r) % 7);
    fprintf(f, "{\"text\": \"");
    for (int k = 0; k < len; k++)
      fprintf(f, "%s%s", k ? " " : "", (y ? pos : neg)[bc_rng_u32(&r) % 6]);
    fprintf(f, "\", \"label\": \"%s\"}\n", y ? "positive" : "negative");
  }
  fclose(f);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *d = malloc((size_t)n + 1);
  assert_non_null(d);
  assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
  d[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return d;
}

#define FT_OPTS "--epochs 2 --batch-size 8 --lr 1e-3 --warmup-ratio 0.1 --save-every 3 --seed 7 -q"

static void test_finetune_kill_resume_identical(void **state) {
  (void)state;
  env e;
  if (!setup_env(&e)) skip();
  char train[700], cmd[4096], a[700], b[700], pa[800], pb[800];
  char *log = NULL;
  snprintf(train, sizeof train, "%s/train.jsonl", e.dir);
  write_jsonl(train, 100, 3); /* 13 micro-batches an epoch: 26 steps */
  snprintf(a, sizeof a, "%s/full", e.dir);
  snprintf(b, sizeof b, "%s/killed", e.dir);
  snprintf(cmd, sizeof cmd, "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' " FT_OPTS
           " 2>&1", BERTCL_BIN, e.model, train, a, e.dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("uninterrupted run failed (%d): %s", rc, log);
  free(log);
  /* SIGKILL right after step 7 (the last checkpoint holds step 6), then again after step 17 of
   * the resumed run (checkpoint 15), then resume to the end */
  const int kill_at[] = {7, 17};
  for (int k = 0; k < 2; k++) {
    snprintf(cmd, sizeof cmd, "BERTCL_TEST_KILL_AT_STEP=%d %s finetune -m '%s' --train '%s' "
             "-o '%s' --device '%s' " FT_OPTS " %s; echo \"exit=$?\"", kill_at[k], BERTCL_BIN,
             e.model, train, b, e.dev, k ? "--resume" : "");
    rc = bc_test_run(cmd, &log);
    if (!strstr(log, "exit=137")) fail_msg("run %d was not killed by SIGKILL: %s", k, log);
    free(log);
  }
  snprintf(cmd, sizeof cmd, "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' " FT_OPTS
           " --resume 2>&1", BERTCL_BIN, e.model, train, b, e.dev);
  rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("resumed run failed (%d): %s", rc, log);
  free(log);
  snprintf(pa, sizeof pa, "%s/model.safetensors", a);
  snprintf(pb, sizeof pb, "%s/model.safetensors", b);
  size_t la = 0, lb = 0;
  char *da = slurp(pa, &la), *db = slurp(pb, &lb);
  assert_non_null(da);
  assert_non_null(db);
  if (la != lb || memcmp(da, db, la)) fail_msg("%s and %s differ", pa, pb);
  /* both exports are the last step's */
  assert_non_null(strstr(da + 8, "\\\"step\\\": 26,")); /* after the u64 length */
  free(da), free(db);
  /* --resume with another recipe is refused */
  snprintf(cmd, sizeof cmd, "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' " FT_OPTS
           " --lr 5e-4 --resume 2>&1", BERTCL_BIN, e.model, train, b, e.dev);
  rc = bc_test_run(cmd, &log);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(log, "another run"));
  free(log);
  done_env(&e);
}

/* Integer labels in a TSV with pairs; accumulation and weight decay; then predict. */
static void test_finetune_tsv_pairs_predict(void **state) {
  (void)state;
  env e;
  if (!setup_env(&e)) skip();
  char train[700], dev[700], out[700], pred[700], cmd[4096];
  char *log = NULL;
  snprintf(train, sizeof train, "%s/train.tsv", e.dir);
  snprintf(dev, sizeof dev, "%s/dev.tsv", e.dir);
  snprintf(out, sizeof out, "%s/out", e.dir);
  snprintf(pred, sizeof pred, "%s/pred.jsonl", e.dir);
  FILE *f = fopen(train, "w");
  assert_non_null(f);
  fprintf(f, "\xef\xbb\xbfQuality\t#1 String\t#2 String\n");
  bc_rng r;
  bc_rng_seed(&r, 11);
  static const char *w[] = {"the", "cat", "sat", "on", "a", "mat", "dog", "ran"};
  for (int i = 0; i < 60; i++) {
    int y = (int)(bc_rng_u32(&r) % 3);
    fprintf(f, "%d\t%s %s\t%s %s\n", y, w[bc_rng_u32(&r) % 8], w[y], w[y + 3],
            w[bc_rng_u32(&r) % 8]);
  }
  fclose(f);
  snprintf(cmd, sizeof cmd, "head -21 '%s' > '%s'", train, dev); /* header + 20 rows */
  assert_int_equal(bc_test_run(cmd, NULL), 0);
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' --eval '%s' -o '%s' --device '%s' --text-column "
           "'#1 String' --pair-column '#2 String' --label-column Quality --epochs 2 "
           "--batch-size 8 --grad-accum 2 --weight-decay 0.01 --lr 1e-3 --eval-every 3 2>&1",
           BERTCL_BIN, e.model, train, dev, out, e.dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("finetune failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "3 labels"));
  assert_non_null(strstr(log, "macro-F1"));
  assert_non_null(strstr(log, "examples/s"));
  { /* 3 labels: macro-F1 ends the figures (no binary F1 glued to it) */
    const char *p = strstr(log, "macro-F1 ");
    assert_non_null(p);
    char *end = NULL;
    strtod(p + 9, &end);
    if (*end != ' ' && *end != '\n') fail_msg("eval line: %.60s", p);
  }
  free(log);
  char path[800];
  snprintf(path, sizeof path, "%s/config.json", out);
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je);
  assert_non_null(cfg);
  assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                      "BertForSequenceClassification");
  assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "id2label"), "2")),
                      "2");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(cfg, "label2id"), "1")), 1);
  assert_int_equal(json_integer_value(json_object_get(cfg, "num_labels")), 3);
  json_decref(cfg);
  snprintf(cmd, sizeof cmd,
           "%s predict -m '%s' -i '%s' -o '%s' --device '%s' --text-column '#1 String' "
           "--pair-column '#2 String' 2>&1",
           BERTCL_BIN, out, dev, pred, e.dev);
  rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("predict failed (%d): %s", rc, log);
  free(log);
  size_t len = 0;
  char *txt = slurp(pred, &len);
  assert_non_null(txt);
  int rows = 0;
  for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"), rows++) {
    json_t *o = json_loads(line, 0, &je);
    assert_non_null(o);
    const char *lab = json_string_value(json_object_get(o, "label"));
    assert_non_null(lab);
    json_t *pr = json_object_get(o, "probabilities");
    assert_int_equal(json_object_size(pr), 3);
    double s = 0, best = -1;
    const char *key;
    json_t *val;
    const char *arg = NULL;
    json_object_foreach(pr, key, val) {
      s += json_real_value(val);
      if (json_real_value(val) > best) best = json_real_value(val), arg = key;
    }
    assert_true(fabs(s - 1.0) < 1e-6);
    assert_string_equal(arg, lab);
    json_decref(o);
  }
  assert_int_equal(rows, 20);
  free(txt);
  /* a predict that fails after opening its output (the device "runs out of memory") leaves
   * the earlier output as it was and no temporary file */
  char *before = slurp(pred, &len);
  snprintf(cmd, sizeof cmd,
           "BERTCL_DEVICE_MEM_CAP=1 %s predict -m '%s' -i '%s' -o '%s' --device '%s' "
           "--text-column '#1 String' --pair-column '#2 String' 2>&1",
           BERTCL_BIN, out, dev, pred, e.dev);
  rc = bc_test_run(cmd, &log);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(log, "the device allows"));
  free(log);
  size_t len2 = 0;
  char *after = slurp(pred, &len2);
  assert_non_null(after);
  assert_int_equal(len2, len);
  assert_memory_equal(after, before, len);
  free(before);
  free(after);
  assert_int_equal(bc_test_count_tmp(e.dir, "pred"), 0);
  /* bad input: a missing label column, an eval label the training data lacks */
  snprintf(cmd, sizeof cmd, "%s finetune -m '%s' --train '%s' -o '%s/bad' --device '%s' 2>&1",
           BERTCL_BIN, e.model, train, e.dir, e.dev);
  rc = bc_test_run(cmd, &log);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(log, "label column"));
  free(log);
  done_env(&e);
}

/* --freeze-encoder: the exported encoder equals the source model's, the head was trained. */
static void test_finetune_freeze_encoder(void **state) {
  (void)state;
  env e;
  if (!setup_env(&e)) skip();
  char train[700], out[700], cmd[4096];
  char *log = NULL;
  snprintf(train, sizeof train, "%s/train.jsonl", e.dir);
  snprintf(out, sizeof out, "%s/out", e.dir);
  write_jsonl(train, 64, 9);
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' --eval '%s' -o '%s' --device '%s' --epochs 2 "
           "--batch-size 8 --lr 1e-2 --freeze-encoder 2>&1",
           BERTCL_BIN, e.model, train, train, out, e.dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("finetune --freeze-encoder failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "features of 128 examples cached"));
  free(log);
  bertcl_model *src = NULL, *dst = NULL;
  assert_int_equal(bertcl_model_load(&src, e.model), BERTCL_OK);
  if (bertcl_model_load(&dst, out) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  const bc_weights *a = bc_model_weights(src), *b = bc_model_weights(dst);
  const bc_config *c = bc_model_config(src);
  size_t C = (size_t)c->hidden_size, V = (size_t)c->vocab_size, I = (size_t)c->intermediate_size;
  assert_memory_equal(a->word_emb, b->word_emb, V * C * sizeof(float));
  for (int l = 0; l < c->num_layers; l++) {
    assert_memory_equal(a->layers[l].q_w, b->layers[l].q_w, C * C * sizeof(float));
    assert_memory_equal(a->layers[l].out_w, b->layers[l].out_w, C * I * sizeof(float));
    assert_memory_equal(a->layers[l].ln2_b, b->layers[l].ln2_b, C * sizeof(float));
  }
  assert_memory_not_equal(a->pool_w, b->pool_w, C * C * sizeof(float));
  assert_int_equal(bc_model_config(dst)->num_labels, 2);
  assert_non_null(b->cls_w);
  bertcl_model_free(src);
  bertcl_model_free(dst);
  done_env(&e);
}

static int have_transformers(void) {
  return bc_test_run("python3 -c 'import transformers, torch' >/dev/null 2>&1", NULL) == 0;
}

/* AutoModelForSequenceClassification loads out_dir and agrees with bertcl predict's output
 * pred on the texts of data (JSONL "text", or TSV with a "text" column) within 1e-5:
 * probabilities and labels (num_labels > 1) or the logit as "score" (num_labels 1). */
static void check_transformers_agree(const env *e, const char *out_dir, const char *data,
                                     const char *pred) {
  char py[700], cmd[4096];
  char *log = NULL;
  snprintf(py, sizeof py, "%s/check.py", e->dir);
  FILE *f = fopen(py, "w");
  assert_non_null(f);
  fputs("import csv, sys, json, torch\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        "d, data, pred = sys.argv[1:4]\n"
        "m = AutoModelForSequenceClassification.from_pretrained(d).eval()\n"
        "tok = AutoTokenizer.from_pretrained(d)\n"
        "if data.endswith('.tsv'):\n"
        "    rows = list(csv.DictReader(open(data), delimiter='\\t', quoting=csv.QUOTE_NONE))\n"
        "else:\n"
        "    rows = [json.loads(l) for l in open(data)]\n"
        "enc = tok([r['text'] for r in rows], padding=True, return_tensors='pt')\n"
        "with torch.no_grad(): z = m(**enc).logits\n"
        "out = [json.loads(l) for l in open(pred)]\n"
        "assert len(out) == len(rows)\n"
        "if m.config.num_labels == 1:\n"
        "    assert m.config.problem_type == 'regression', m.config.problem_type\n"
        "    mx = max(abs(o['score'] - float(z[i, 0])) for i, o in enumerate(out))\n"
        "else:\n"
        "    p = torch.softmax(z, -1)\n"
        "    names = [m.config.id2label[i] for i in range(m.config.num_labels)]\n"
        "    mx = max(abs(o['probabilities'][n] - float(p[i, k])) for i, o in enumerate(out)\n"
        "             for k, n in enumerate(names))\n"
        "    assert all(o['label'] == names[int(p[i].argmax())] for i, o in enumerate(out))\n"
        "print('MAXDIFF %.3g' % mx)\n"
        "sys.exit(0 if mx < 1e-5 else 1)\n",
        f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s' '%s' 2>&1", py, out_dir, data, pred);
  int rc = bc_test_run(cmd, &log);
  print_message("transformers vs bertcl predict: %s\n", log ? strstr(log, "MAXDIFF") : "");
  if (rc != 0) fail_msg("transformers check failed (%d): %s", rc, log);
  assert_null(strstr(log, "newly initialized"));
  free(log);
}

/* transformers loads OUT_DIR and agrees with bertcl predict (needs python3 + transformers). */
static void test_finetune_transformers_loads(void **state) {
  (void)state;
  if (!have_transformers()) {
    print_message("python3 with transformers and torch not found: skipped\n");
    skip();
  }
  env e;
  if (!setup_env(&e)) skip();
  char train[700], out[700], pred[700], cmd[8192];
  char *log = NULL;
  snprintf(train, sizeof train, "%s/train.jsonl", e.dir);
  snprintf(out, sizeof out, "%s/out", e.dir);
  snprintf(pred, sizeof pred, "%s/pred.jsonl", e.dir);
  write_jsonl(train, 40, 5);
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' --epochs 1 --batch-size 8 "
           "--lr 1e-3 -q 2>&1 && %s predict -m '%s' -i '%s' -o '%s' --device '%s' 2>&1",
           BERTCL_BIN, e.model, train, out, e.dev, BERTCL_BIN, out, train, pred, e.dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("finetune/predict failed (%d): %s", rc, log);
  free(log);
  check_transformers_agree(&e, out, train, pred);
  done_env(&e);
}

/* A regression toy task in a TSV: words from a positive list score about 4.5, from a negative
 * list about 0.5, with a non-integer spread; n rows; returns the targets' variance. */
static double write_regression_tsv(const char *path, int n, uint64_t seed) {
  static const char *pos[] = {"good", "great", "fine", "nice", "happy", "love"};
  static const char *neg[] = {"bad", "awful", "poor", "sad", "hate", "terrible"};
  bc_rng r;
  bc_rng_seed(&r, seed);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "text\tscore\n");
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; i++) {
    int y = bc_rng_u32(&r) & 1, len = 2 + (int)(bc_rng_u32(&r) % 5);
    for (int k = 0; k < len; k++)
      fprintf(f, "%s%s", k ? " " : "", (y ? pos : neg)[bc_rng_u32(&r) % 6]);
    double t = (y ? 4.5 : 0.5) + 0.25 * (int)(bc_rng_u32(&r) % 3) - 0.25; /* 0.25 .. 4.75 */
    fprintf(f, "\t%.2f\n", t);
    sum += t, sum2 += t * t;
  }
  fclose(f);
  return sum2 / n - (sum / n) * (sum / n);
}

/* Float labels: regression (num_labels 1, problem_type regression, MSE), eval MSE/Pearson/
 * Spearman, predict's scores, transformers' logits equal them. */
static void test_finetune_regression(void **state) {
  (void)state;
  env e;
  if (!setup_env(&e)) skip();
  char train[700], out[700], pred[700], cls[700], cmd[4096], path[800];
  char *log = NULL;
  snprintf(train, sizeof train, "%s/train.tsv", e.dir);
  snprintf(out, sizeof out, "%s/out", e.dir);
  snprintf(pred, sizeof pred, "%s/pred.jsonl", e.dir);
  snprintf(cls, sizeof cls, "%s/cls", e.dir);
  double var = write_regression_tsv(train, 48, 21);
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' --eval '%s' -o '%s' --device '%s' --label-column "
           "score --epochs 6 --batch-size 8 --lr 5e-3 --log-every 1 2>&1",
           BERTCL_BIN, e.model, train, train, out, e.dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("finetune (regression) failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "(regression, MSE)"));
  /* every eval line reports MSE and both correlations; the best MSE beats the mean predictor */
  int evals = 0;
  for (const char *p = log; (p = strstr(p, "eval step")); p++, evals++) {
    const char *nl = strchr(p, '\n');
    const char *sp = strstr(p, " spearman ");
    if (!strstr(p, ": mse ") || !sp || (nl && sp > nl)) fail_msg("eval line: %s", p);
  }
  assert_int_equal(evals, 6);
  const char *done = strstr(log, "best eval mse ");
  if (!done) fail_msg("no best eval mse in: %s", log);
  double best = strtod(done + strlen("best eval mse "), NULL);
  print_message("regression: best eval MSE %.4f, targets' variance %.4f\n", best, var);
  if (!(best < 0.25 * var))
    fail_msg("eval MSE %.4f is not below a quarter of the targets' variance %.4f: %s", best, var,
             log);
  free(log);
  snprintf(path, sizeof path, "%s/config.json", out);
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je);
  assert_non_null(cfg);
  assert_int_equal(json_integer_value(json_object_get(cfg, "num_labels")), 1);
  assert_string_equal(json_string_value(json_object_get(cfg, "problem_type")), "regression");
  assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                      "BertForSequenceClassification");
  json_decref(cfg);
  /* predict: one {"score": x} a line, no label or probabilities */
  snprintf(cmd, sizeof cmd, "%s predict -m '%s' -i '%s' -o '%s' --device '%s' 2>&1", BERTCL_BIN,
           out, train, pred, e.dev);
  rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("predict failed (%d): %s", rc, log);
  free(log);
  size_t len = 0;
  char *txt = slurp(pred, &len);
  assert_non_null(txt);
  int rows = 0;
  for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"), rows++) {
    json_t *o = json_loads(line, 0, &je);
    assert_non_null(o);
    assert_true(json_is_real(json_object_get(o, "score")));
    assert_int_equal(json_object_size(o), 1);
    json_decref(o);
  }
  assert_int_equal(rows, 48);
  free(txt);
  if (have_transformers())
    check_transformers_agree(&e, out, train, pred);
  else
    print_message("python3 with transformers and torch not found: transformers check skipped\n");
  /* an explicit --task classification wins: the float labels become class names */
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' --label-column score "
           "--task classification --epochs 1 --batch-size 16 -q 2>&1",
           BERTCL_BIN, e.model, train, cls, e.dev);
  rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("finetune --task classification failed (%d): %s", rc, log);
  free(log);
  snprintf(path, sizeof path, "%s/config.json", cls);
  cfg = json_load_file(path, 0, &je);
  assert_non_null(cfg);
  assert_int_equal(json_integer_value(json_object_get(cfg, "num_labels")), 6);
  assert_string_equal(json_string_value(json_object_get(cfg, "problem_type")),
                      "single_label_classification");
  json_decref(cfg);
  /* contradicting flags, and a non-number label under --task regression, are refused */
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' -o '%s/x' --task classification --num-labels 1 2>&1",
           BERTCL_BIN, e.model, train, e.dir);
  rc = bc_test_run(cmd, &log);
  assert_int_equal(rc, 2); /* a usage error */
  assert_non_null(strstr(log, "contradicts"));
  free(log);
  done_env(&e);
}

typedef struct {
  int events[6];
  long stop_at, last_step;
  double best_seen;
  size_t eval_examples; /* checked when not 0 */
} api_counts;

static int count_events(const bertcl_progress *p, void *user) {
  api_counts *c = user;
  assert_true(p->event >= BERTCL_EVENT_INFO && p->event <= BERTCL_EVENT_DONE);
  assert_non_null(p->message);
  c->events[p->event]++;
  if (p->event == BERTCL_EVENT_EVAL) {
    assert_non_null(p->metrics);
    assert_true(p->metrics->accuracy >= 0 && p->metrics->accuracy <= 1);
    if (c->eval_examples) assert_int_equal(p->metrics->examples, c->eval_examples);
    if (p->improved) c->best_seen = p->metrics->accuracy;
  }
  if (p->event == BERTCL_EVENT_STEP) {
    assert_int_equal(p->step, c->last_step + 1);
    c->last_step = p->step;
    return p->step == c->stop_at; /* ask to stop */
  }
  return 0;
}

/* The library API without the binary: events, a stop request that saves a checkpoint, a resume
 * from it that ends where an uninterrupted run ends (byte-identical export), then the classifier
 * and the example program (examples/finetune.c). */
static void test_finetune_library_api(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  env e;
  env_init(&e, ctx);
  char train[700], a[700], b[700], pa[800], pb[800], cmd[4096];
  snprintf(train, sizeof train, "%s/train.jsonl", e.dir);
  snprintf(a, sizeof a, "%s/full", e.dir);
  snprintf(b, sizeof b, "%s/stopped", e.dir);
  write_jsonl(train, 40, 13); /* 5 micro-batches of 8: 5 steps an epoch, 10 in all */
  bertcl_model *m = NULL;
  bertcl_tokenizer *tok = NULL;
  load_model(e.model, &m, &tok);
  bertcl_finetune_options o;
  bertcl_finetune_options_init(&o);
  o.train_file = train;
  o.eval_file = train;
  o.epochs = 2;
  o.batch_size = 8;
  o.lr = 1e-3;
  o.seed = 5;
  o.output_dir = a;
  api_counts c = {{0}, -1, 0, -1, 40};
  bertcl_finetune_result res;
  if (bertcl_finetune(ctx, m, tok, &o, count_events, &c, &res) != BERTCL_OK)
    fail_msg("%s", bertcl_last_error(ctx));
  assert_int_equal(res.steps, 10);
  assert_int_equal(c.events[BERTCL_EVENT_STEP], 10);
  assert_int_equal(c.events[BERTCL_EVENT_EVAL], 2); /* each epoch */
  assert_int_equal(c.events[BERTCL_EVENT_LOG], 1);  /* step 10 (log_every 10) */
  assert_int_equal(c.events[BERTCL_EVENT_DONE], 1);
  assert_int_equal(res.task, BERTCL_TASK_CLASSIFICATION);
  assert_int_equal(res.num_labels, 2);
  assert_false(res.stopped);
  assert_true(res.best_metric == c.best_seen);
  /* stop after step 3: a checkpoint of step 3; then resume */
  o.output_dir = b;
  api_counts c2 = {{0}, 3, 0, -1, 40};
  assert_int_equal(bertcl_finetune(ctx, m, tok, &o, count_events, &c2, &res), BERTCL_OK);
  assert_true(res.stopped);
  assert_int_equal(res.steps, 3);
  o.resume = 1;
  api_counts c3 = {{0}, -1, 3, -1, 40};
  assert_int_equal(bertcl_finetune(ctx, m, tok, &o, count_events, &c3, &res), BERTCL_OK);
  assert_int_equal(res.steps, 10);
  assert_int_equal(c3.events[BERTCL_EVENT_STEP], 7);
  snprintf(pa, sizeof pa, "%s/model.safetensors", a);
  snprintf(pb, sizeof pb, "%s/model.safetensors", b);
  size_t la = 0, lb = 0;
  char *da = slurp(pa, &la), *db = slurp(pb, &lb);
  assert_non_null(da);
  assert_non_null(db);
  if (la != lb || memcmp(da, db, la)) fail_msg("%s and %s differ", pa, pb);
  free(da), free(db);
  /* bad options are refused with a message, before any work */
  o.batch_size = 0;
  assert_int_equal(bertcl_finetune(ctx, m, tok, &o, NULL, NULL, NULL), BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(ctx), "bertcl_finetune_options_init"));
  /* the export as a classifier: probabilities per text */
  bertcl_model *tuned = NULL;
  bertcl_classifier *cls = NULL;
  assert_int_equal(bertcl_model_load(&tuned, a), BERTCL_OK);
  if (bertcl_classifier_create(&cls, ctx, tuned) != BERTCL_OK)
    fail_msg("%s", bertcl_last_error(NULL));
  assert_int_equal(bertcl_classifier_task(cls), BERTCL_TASK_CLASSIFICATION);
  assert_int_equal(bertcl_classifier_num_labels(cls), 2);
  assert_string_equal(bertcl_classifier_label(cls, 1), "positive");
  assert_null(bertcl_classifier_label(cls, 2));
  const char *texts[2] = {"good great", "bad awful"};
  float probs[4];
  assert_int_equal(bertcl_classify(cls, tok, texts, NULL, 2, 0, probs, 3), BERTCL_ERR_INVALID_ARG);
  if (bertcl_classify(cls, tok, texts, NULL, 2, 0, probs, 4) != BERTCL_OK)
    fail_msg("%s", bertcl_last_error(cls));
  assert_true(fabs(probs[0] + probs[1] - 1) < 1e-6 && fabs(probs[2] + probs[3] - 1) < 1e-6);
  bertcl_classifier_free(cls);
  bertcl_model_free(tuned);
  /* the example program, as a user would run it */
  char *log = NULL;
  snprintf(cmd, sizeof cmd, "BERTCL_DEVICE='%s' %s '%s' '%s' '%s' '%s/example' 1 2>&1", e.dev,
           BERTCL_EXAMPLE_FINETUNE, e.model, train, train, e.dir);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("example failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "eval step 5 (epoch 1): accuracy"));
  assert_non_null(strstr(log, "good great fine  -> "));
  free(log);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  done_env(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Token classification (NER)                                                                  */

/* A toy NER set in CoNLL (IOB1: entities start with I-; with -DOCSTART- and a POS column):
 * words of the tiny vocabulary; PER is "john" or "john man", LOC "city" or "house city", with
 * other words between them. */
static void write_conll(const char *path, int n, uint64_t seed) {
  static const char *oth[] = {"the", "on", "a", "to", "and", "in", "new", "she"};
  bc_rng r;
  bc_rng_seed(&r, seed);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "-DOCSTART- -X- O\n\n");
  for (int i = 0; i < n; i++) {
    int len = 2 + (int)(bc_rng_u32(&r) % 8);
    for (int k = 0; k < len; k++) {
      unsigned x = bc_rng_u32(&r) % 10, two = bc_rng_u32(&r) % 2;
      if (x < 2)
        fprintf(f, "john NNP I-PER\n%s", two ? "man NN I-PER\n" : "");
      else if (x < 4)
        fprintf(f, "%scity NN I-LOC\n", two ? "house NN I-LOC\n" : "");
      fprintf(f, "%s NN O\n", oth[bc_rng_u32(&r) % 8]);
    }
    fprintf(f, "\n");
  }
  fclose(f);
}

/* Counts lines of a file, and lines with k whitespace-separated columns. */
static int count_lines(const char *path, int k, int *with_k) {
  size_t len = 0;
  char *txt = slurp(path, &len);
  assert_non_null(txt);
  int lines = 0;
  *with_k = 0;
  for (char *p = txt, *e; *p; p = e + 1) {
    e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    int cols = 0, in = 0;
    for (char *q = p; q < e; q++) {
      int ws = *q == ' ' || *q == '\t';
      cols += !ws && !in;
      in = !ws;
    }
    lines++;
    *with_k += cols == k;
    if (!*e) break;
  }
  free(txt);
  return lines;
}

/* AutoModelForTokenClassification loads out_dir and tags two texts as bertcl predict does: the
 * tag and its probability (within 1e-5) of every word's first subword. */
static void check_transformers_tags(const env *e, const char *out) {
  char py[700], text[700], jpred[700], cmd[4096];
  char *log = NULL;
  snprintf(py, sizeof py, "%s/check_ner.py", e->dir);
  snprintf(text, sizeof text, "%s/text.txt", e->dir);
  snprintf(jpred, sizeof jpred, "%s/pred.jsonl", e->dir);
  FILE *f = fopen(text, "w");
  assert_non_null(f);
  fputs("john and the man went to the city.\nShe saw a new house in the city, John!\n", f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s predict -m '%s' -i '%s' -o '%s' --device '%s' 2>&1", BERTCL_BIN,
           out, text, jpred, e->dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("predict (text) failed (%d): %s", rc, log);
  free(log);
  f = fopen(py, "w");
  assert_non_null(f);
  fputs("import sys, json, torch\n"
        "from transformers import AutoModelForTokenClassification, AutoTokenizer\n"
        "d, pred = sys.argv[1:3]\n"
        "m = AutoModelForTokenClassification.from_pretrained(d).eval()\n"
        "tok = AutoTokenizer.from_pretrained(d)\n"
        "mx = 0\n"
        "for line in open(pred):\n"
        "    o = json.loads(line)\n"
        "    words = [w['word'] for w in o['words']]\n"
        "    enc = tok(words, is_split_into_words=True, return_tensors='pt')\n"
        "    with torch.no_grad(): p = torch.softmax(m(**enc).logits[0], -1)\n"
        "    seen = set()\n"
        "    for t, w in enumerate(enc.word_ids()):\n"
        "        if w is None or w in seen: continue\n"
        "        seen.add(w)\n"
        "        k = int(p[t].argmax())\n"
        "        assert m.config.id2label[k] == o['words'][w]['tag'], (w, k)\n"
        "        mx = max(mx, abs(float(p[t, k]) - o['words'][w]['probability']))\n"
        "    assert len(seen) == len(words)\n"
        "print('MAXDIFF %.3g' % mx)\n"
        "sys.exit(0 if mx < 1e-5 else 1)\n",
        f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s' 2>&1", py, out, jpred);
  rc = bc_test_run(cmd, &log);
  print_message("transformers vs bertcl predict (tokens): %s\n", log ? strstr(log, "MAXDIFF") : "");
  if (rc != 0) fail_msg("transformers check failed (%d): %s", rc, log);
  assert_null(strstr(log, "newly initialized"));
  assert_null(strstr(log, "not used"));
  free(log);
}

/* Fine-tunes BertForTokenClassification on the toy set through the library, then bertcl
 * predict on CoNLL (conlleval's columns) and on plain text, windows when --max-len is small,
 * and the errors for bad tags. */
static void test_finetune_ner(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  env e;
  env_init(&e, ctx);
  char train[700], dev[700], out[700], pred[700], cmd[4096], bad[700];
  snprintf(train, sizeof train, "%s/train.conll", e.dir);
  snprintf(dev, sizeof dev, "%s/dev.conll", e.dir);
  snprintf(out, sizeof out, "%s/ner", e.dir);
  snprintf(pred, sizeof pred, "%s/pred.conll", e.dir);
  write_conll(train, 96, 31);
  write_conll(dev, 32, 32);
  bertcl_model *m = NULL;
  bertcl_tokenizer *tok = NULL;
  load_model(e.model, &m, &tok);
  bertcl_finetune_options o;
  bertcl_finetune_options_init(&o);
  o.train_file = train;
  o.eval_file = dev;
  o.output_dir = out;
  o.epochs = 3;
  o.batch_size = 8;
  o.lr = 5e-3;
  o.max_length = 12; /* some sentences need two windows */
  api_counts c = {{0}, -1, 0, -1, 0};
  bertcl_finetune_result res;
  if (bertcl_finetune(ctx, m, tok, &o, count_events, &c, &res) != BERTCL_OK)
    fail_msg("%s", bertcl_last_error(ctx));
  assert_int_equal(res.task, BERTCL_TASK_TOKEN_CLASSIFICATION);
  assert_int_equal(res.num_labels, 3); /* I-LOC I-PER O */
  print_message("toy NER: best entity F1 %.4f at step %ld of %ld\n", res.best_metric,
                res.best_step, res.steps);
  assert_true(res.best_metric > 0.9);
  char path[800];
  snprintf(path, sizeof path, "%s/config.json", out);
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je);
  assert_non_null(cfg);
  assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                      "BertForTokenClassification");
  assert_null(json_object_get(cfg, "problem_type"));
  assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "id2label"), "2")),
                      "O");
  json_decref(cfg);
  /* predict on CoNLL: the input's 3 columns plus the tag, one line per word, -DOCSTART- kept */
  char *log = NULL;
  snprintf(cmd, sizeof cmd, "%s predict -m '%s' -i '%s' -o '%s' --device '%s' --max-len 12 2>&1",
           BERTCL_BIN, out, dev, pred, e.dev);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("predict failed (%d): %s", rc, log);
  free(log);
  int in4 = 0, out4 = 0;
  int in_lines = count_lines(dev, 3, &in4);
  int out_lines = count_lines(pred, 4, &out4);
  assert_int_equal(out4, in4);            /* every word (and -DOCSTART-) got a tag */
  assert_true(out_lines >= in_lines - 1); /* and the blank lines stay */
  /* the tags predict writes score as well as the evaluation did (conlleval's input) */
  size_t len = 0;
  char *txt = slurp(pred, &len);
  int words = 0, right = 0;
  for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
    char w[64], pos[64], gold[64], tag[64];
    if (sscanf(line, "%63s %63s %63s %63s", w, pos, gold, tag) != 4 || !strcmp(w, "-DOCSTART-"))
      continue;
    words++;
    right += !strcmp(gold, tag);
  }
  free(txt);
  print_message("predict: %d of %d words right\n", right, words);
  assert_true(right > 0.9 * words);
  /* bad input: a tag the training data lacks, an IOBES tag under --scheme IOB2 */
  snprintf(bad, sizeof bad, "%s/bad.conll", e.dir);
  FILE *f = fopen(bad, "w");
  assert_non_null(f);
  fprintf(f, "john NNP I-PER\nin NN O\ncity NN I-XYZ\n");
  fclose(f);
  o.eval_file = bad;
  assert_int_equal(bertcl_finetune(ctx, m, tok, &o, NULL, NULL, NULL), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(bertcl_last_error(ctx), "bad.conll:3: the tag 'I-XYZ' is not one the "
                                                 "training data has"));
  f = fopen(bad, "w");
  assert_non_null(f);
  fprintf(f, "john NNP S-PER\n\nin NN O\n");
  fclose(f);
  o.train_file = bad;
  o.eval_file = NULL;
  o.scheme = BERTCL_SCHEME_IOB2;
  assert_int_equal(bertcl_finetune(ctx, m, tok, &o, NULL, NULL, NULL), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(bertcl_last_error(ctx), "bad.conll:1: the tag 'S-PER' is not one of "
                                                 "the IOB2 scheme"));
  bertcl_tokenizer_free(tok);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  /* the example program tags a text with the export */
  snprintf(cmd, sizeof cmd, "BERTCL_DEVICE='%s' %s '%s' 'she saw john man in the house city' 2>&1",
           e.dev, BERTCL_EXAMPLE_TAG, out);
  rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("example failed (%d): %s", rc, log);
  if (!strstr(log, "entity PER [8, 16): john man") || !strstr(log, "entity LOC [24, 34): house city"))
    fail_msg("example output: %s", log);
  free(log);
  if (have_transformers()) {
    check_transformers_tags(&e, out);
  } else {
    print_message("python3 with transformers and torch not found: transformers check skipped\n");
  }
  done_env(&e);
}

/* Every family fine-tunes with its own head and exports a folder its Auto class loads:
 * RobertaForSequenceClassification, DistilBertForSequenceClassification,
 * MPNetForSequenceClassification (bertcl finetune + predict), CamembertForTokenClassification
 * (the library); config.json names the family's class, and when python3 with transformers is
 * present, AutoModelFor{Sequence,Token}Classification loads each export with no tensor missing
 * or unused and gives bertcl predict's probabilities (within 1e-5). */
static void test_finetune_families(void **state) {
  (void)state;
  env e;
  if (!setup_env(&e)) skip();
  int tf = have_transformers();
  if (!tf) print_message("python3 with transformers and torch not found: transformers checks skipped\n");
  static const struct {
    const char *name, *arch;
  } seqs[] = {{"tiny-roberta", "RobertaForSequenceClassification"},
              {"tiny-distilbert", "DistilBertForSequenceClassification"},
              {"tiny-mpnet", "MPNetForSequenceClassification"}};
  char train[700], out[700], pred[700], model[700], rel[128], cmd[8192], path[800];
  char *log = NULL;
  snprintf(train, sizeof train, "%s/train.jsonl", e.dir);
  write_jsonl(train, 40, 5);
  for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
    snprintf(rel, sizeof rel, "families/%s", seqs[i].name);
    bc_test_data_path(model, sizeof model, rel);
    snprintf(out, sizeof out, "%s/%s", e.dir, seqs[i].name);
    snprintf(pred, sizeof pred, "%s/%s.pred.jsonl", e.dir, seqs[i].name);
    snprintf(cmd, sizeof cmd,
             "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' --epochs 2 --batch-size 8 "
             "--lr 1e-3 -q 2>&1 && %s predict -m '%s' -i '%s' -o '%s' --device '%s' 2>&1",
             BERTCL_BIN, model, train, out, e.dev, BERTCL_BIN, out, train, pred, e.dev);
    int rc = bc_test_run(cmd, &log);
    if (rc != 0) fail_msg("%s: finetune/predict failed (%d): %s", seqs[i].name, rc, log);
    free(log);
    snprintf(path, sizeof path, "%s/config.json", out);
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    assert_non_null(cfg);
    assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                        seqs[i].arch);
    json_decref(cfg);
    print_message("%s: fine-tuned, exported as %s\n", seqs[i].name, seqs[i].arch);
    if (tf) check_transformers_agree(&e, out, train, pred);
  }
  /* token classification of a RoBERTa-family model (CamemBERT's Unigram tokenizer) */
  bertcl_ctx *ctx = bc_test_ctx();
  assert_non_null(ctx);
  snprintf(model, sizeof model, "%s", "");
  bc_test_data_path(model, sizeof model, "families/tiny-camembert");
  snprintf(train, sizeof train, "%s/train.conll", e.dir);
  snprintf(out, sizeof out, "%s/camembert-ner", e.dir);
  write_conll(train, 64, 31);
  bertcl_model *m = NULL;
  bertcl_tokenizer *tok = NULL;
  load_model(model, &m, &tok);
  bertcl_finetune_options o;
  bertcl_finetune_options_init(&o);
  o.train_file = train;
  o.output_dir = out;
  o.epochs = 2;
  o.batch_size = 8;
  o.lr = 5e-3;
  bertcl_finetune_result res;
  if (bertcl_finetune(ctx, m, tok, &o, NULL, NULL, &res) != BERTCL_OK)
    fail_msg("camembert token classification: %s", bertcl_last_error(ctx));
  assert_int_equal(res.task, BERTCL_TASK_TOKEN_CLASSIFICATION);
  snprintf(path, sizeof path, "%s/config.json", out);
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je);
  assert_non_null(cfg);
  assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                      "CamembertForTokenClassification");
  json_decref(cfg);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  if (tf) check_transformers_tags(&e, out);
  done_env(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finetune_kill_resume_identical),
      cmocka_unit_test(test_finetune_tsv_pairs_predict),
      cmocka_unit_test(test_finetune_freeze_encoder),
      cmocka_unit_test(test_finetune_transformers_loads),
      cmocka_unit_test(test_finetune_regression),
      cmocka_unit_test(test_finetune_library_api),
      cmocka_unit_test(test_finetune_ner),
      cmocka_unit_test(test_finetune_families),
  };
  return cmocka_run_group_tests_name("finetune", tests, NULL, NULL);
}
