/* The fine-tuning library's host-side parts, called directly (no binary, no device):
 * - text dataset readers (JSONL, TSV, CSV, plain text) from memory and from a file, and their
 *   errors naming file and line;
 * - label maps (integers, sorted strings, a model's id2label, --num-labels padding) and
 *   regression detection / targets;
 * - classification and regression metrics against values worked out by hand (scikit-learn's
 *   and scipy's definitions);
 * - checkpoints: a round trip, and every way a checkpoint is refused (another run's, a step out
 *   of range, wrong sizes, a truncated file) without touching the caller's buffers;
 * - the export's config.json. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "train/checkpoint.h"
#include "train/data.h"
#include "train/export.h"
#include "train/labels.h"
#include "train/metrics.h"

static int parse(const char *name, const char *text, int flags, bc_text_data *d, bc_err *err) {
  bc_text_columns cols = {0};
  return bc_text_data_parse(err, name, text, strlen(text), &cols, flags, d);
}

static void test_jsonl(void **state) {
  (void)state;
  bc_err err = {0};
  bc_text_data d;
  const char *text = "{\"text\": \"a b\", \"label\": \"pos\"}\n\n"
                     "{\"text\": \"c\", \"text_pair\": \"d\", \"label\": 3}\r\n"
                     "{\"text\": \"e\", \"label\": 5.0}\n"
                     "{\"text\": \"f\", \"label\": true}";
  assert_int_equal(parse("x.jsonl", text, BC_DATA_NEED_LABEL, &d, &err), BERTCL_OK);
  assert_int_equal(d.n, 4);
  assert_string_equal(d.text[0], "a b");
  assert_null(d.pair[0]);
  assert_string_equal(d.pair[1], "d");
  assert_string_equal(d.label[0], "pos");
  assert_string_equal(d.label[1], "3");
  assert_string_equal(d.label[2], "5.0"); /* a JSON float stays a float label */
  assert_string_equal(d.label[3], "1");
  assert_int_equal(d.line[1], 3); /* blank line 2 skipped, lines still counted */
  assert_int_equal(d.line[3], 5);
  bc_text_data_free(&d);
  /* errors name the file and the line */
  assert_int_equal(parse("x.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": 3}\n",
                         BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.jsonl:2: no \"text\" string"));
  assert_int_equal(parse("x.jsonl", "{\"text\": \"a\"}\n", BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.jsonl:1: no label"));
  assert_int_equal(parse("x.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"la",
                         BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.jsonl:2: not a JSON object"));
  assert_int_equal(parse("x.jsonl", "{\"text\": \"a\", \"label\": [1]}\n", BC_DATA_NEED_LABEL,
                         &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.jsonl:1: the label must be a string or a number"));
  /* a NUL byte is refused with its line, not silently the end of the data */
  const char nul[] = "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\0\", \"label\": 1}\n";
  bc_text_columns cols = {0};
  assert_int_equal(bc_text_data_parse(&err, "x.jsonl", nul, sizeof nul - 1, &cols,
                                      BC_DATA_NEED_LABEL, &d),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "x.jsonl:2: a NUL byte"));
  assert_int_equal(parse("x.jsonl", "\n\n", 0, &d, &err), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "no examples"));
}

static void test_tsv_csv_plain(void **state) {
  (void)state;
  bc_err err = {0};
  bc_text_data d;
  /* byte-order mark, named columns, an empty label is no label */
  const char *tsv = "\xef\xbb\xbfQuality\t#1 String\t#2 String\n1\ta\tb\n0\tc\td\n";
  bc_text_columns cols = {"#1 String", "#2 String", "Quality"};
  assert_int_equal(bc_text_data_parse(&err, "m.tsv", tsv, strlen(tsv), &cols, BC_DATA_NEED_LABEL,
                                      &d),
                   BERTCL_OK);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.text[1], "c");
  assert_string_equal(d.pair[1], "d");
  assert_string_equal(d.label[0], "1");
  bc_text_data_free(&d);
  /* "sentence" is the default text column; ragged rows name their line */
  assert_int_equal(parse("s.tsv", "sentence\tlabel\nx y\t1\nz\n", BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "s.tsv:3: 1 fields, the header has 2"));
  assert_int_equal(parse("s.tsv", "sentence\tlabel\nx y\t1\n", BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_OK);
  assert_string_equal(d.text[0], "x y");
  bc_text_data_free(&d);
  assert_int_equal(parse("s.tsv", "text\tscore\nx\t1\n", BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "the header lacks the label column 'label'"));
  /* CSV with quotes, doubled quotes and a separator inside quotes */
  const char *csv = "text,label\n\"a, \"\"quoted\"\" b\",yes\nplain,no\n";
  assert_int_equal(parse("d.csv", csv, BC_DATA_NEED_LABEL, &d, &err), BERTCL_OK);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.text[0], "a, \"quoted\" b");
  assert_string_equal(d.label[0], "yes");
  bc_text_data_free(&d);
  /* RFC 4180: a quoted field may hold newlines (pandas and datasets write them); the record goes
   * on to the closing quote, and later records keep their line numbers. A quote inside an
   * unquoted field is an ordinary character. */
  const char *multi = "text,label\n\"two\nlines, \"\"q\"\"\r\nthree\",yes\n5\" screen,no\n"
                      "ok,\n";
  assert_int_equal(parse("m.csv", multi, BC_DATA_NEED_LABEL, &d, &err), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "m.csv:6: no label")); /* line 6: the record after two inner */
  assert_int_equal(parse("m.csv", multi, 0, &d, &err), BERTCL_OK);
  assert_int_equal(d.n, 3);
  assert_string_equal(d.text[0], "two\nlines, \"q\"\r\nthree");
  assert_string_equal(d.label[0], "yes");
  assert_string_equal(d.text[1], "5\" screen");
  assert_int_equal(d.line[1], 5);
  bc_text_data_free(&d);
  /* a quoted field that never closes would swallow the rest of the file: refused */
  assert_int_equal(parse("o.csv", "text,label\na,1\n\"b,2\nc,3\n", 0, &d, &err),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "o.csv:3: a quoted field is not closed"));
  /* found by fuzz_inputs: a label that is not UTF-8 (it would be dropped from config.json's
   * id2label) is refused with its line; a text that is not UTF-8 is fine (the tokenizer
   * replaces what is invalid) */
  assert_int_equal(parse("u.tsv", "text\tlabel\nok\tpos\nx\tne\xffg\n", BC_DATA_NEED_LABEL, &d,
                         &err),
                   BERTCL_ERR_UTF8);
  assert_non_null(strstr(err.msg, "u.tsv:3: the label is not valid UTF-8 (byte 3)"));
  assert_int_equal(parse("u.tsv", "text\tlabel\nok\xff\tpos\n", BC_DATA_NEED_LABEL, &d, &err),
                   BERTCL_OK);
  bc_text_data_free(&d);
  /* plain text (prediction): no tab, no .tsv name */
  assert_int_equal(parse("t.txt", "first text\nsecond, with a comma\n", BC_DATA_PLAIN_OK, &d,
                         &err),
                   BERTCL_OK);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.text[1], "second, with a comma");
  bc_text_data_free(&d);
  /* the file form reads the same bytes */
  char dir[512], path[600];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/d.csv", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(csv, f);
  fclose(f);
  bc_text_columns none = {0};
  assert_int_equal(bc_text_data_read(&err, path, &none, BC_DATA_NEED_LABEL, &d), BERTCL_OK);
  assert_string_equal(d.text[0], "a, \"quoted\" b");
  bc_text_data_free(&d);
  snprintf(path, sizeof path, "%s/absent.tsv", dir);
  assert_int_equal(bc_text_data_read(&err, path, &none, 0, &d), BERTCL_ERR_IO);
  assert_non_null(strstr(err.msg, "absent.tsv"));
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

static void test_labelmaps(void **state) {
  (void)state;
  bc_err err = {0};
  bc_labelmap m;
  /* integers keep their values, at least two labels */
  const char *ints[] = {"2", "0", "2"};
  assert_int_equal(bc_labelmap_build(&err, &m, ints, 3, NULL, 0), BERTCL_OK);
  assert_int_equal(m.K, 3);
  assert_string_equal(m.names[1], "1");
  assert_int_equal(bc_labelmap_pad_ints(&err, &m, 5), BERTCL_OK);
  assert_int_equal(m.K, 5);
  assert_string_equal(m.names[4], "4");
  bc_labelmap_free(&m);
  const char *zero[] = {"0", "0"};
  assert_int_equal(bc_labelmap_build(&err, &m, zero, 2, NULL, 0), BERTCL_OK);
  assert_int_equal(m.K, 2);
  bc_labelmap_free(&m);
  /* found by fuzz_inputs: "07" and "-0" read as integers used to give a map of "0".."7"
   * without the data's own strings (bc_labelmap_id -1 for every such example): only canonical
   * integers make an integer map, the others are strings like any */
  const char *lead[] = {"07", "1", "-0"};
  assert_int_equal(bc_labelmap_build(&err, &m, lead, 3, NULL, 0), BERTCL_OK);
  assert_int_equal(m.K, 3);
  for (int i = 0; i < 3; i++) assert_true(bc_labelmap_id(&m, lead[i]) >= 0);
  bc_labelmap_free(&m);
  /* strings are sorted; a single one is an error */
  const char *strs[] = {"pos", "neg", "pos", "mixed"};
  assert_int_equal(bc_labelmap_build(&err, &m, strs, 4, NULL, 0), BERTCL_OK);
  assert_int_equal(m.K, 3);
  assert_string_equal(m.names[0], "mixed");
  assert_string_equal(m.names[2], "pos");
  assert_int_equal(bc_labelmap_id(&m, "neg"), 1);
  assert_int_equal(bc_labelmap_id(&m, "other"), -1);
  assert_int_equal(bc_labelmap_pad_ints(&err, &m, 4), BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(err.msg, "not integers 0..N-1"));
  bc_labelmap_free(&m);
  const char *one[] = {"x", "x"};
  assert_int_equal(bc_labelmap_build(&err, &m, one, 2, NULL, 0), BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(err.msg, "single label ('x')"));
  /* a model's id2label wins when it names every label, in its order */
  const char *model[] = {"pos", "neg", "mixed"};
  assert_int_equal(bc_labelmap_build(&err, &m, strs, 4, model, 3), BERTCL_OK);
  assert_string_equal(m.names[0], "pos");
  assert_int_equal(bc_labelmap_id(&m, "mixed"), 2);
  bc_labelmap_free(&m);
  const char *model2[] = {"pos", "neg"}; /* lacks "mixed": sorted instead */
  assert_int_equal(bc_labelmap_build(&err, &m, strs, 4, model2, 2), BERTCL_OK);
  assert_string_equal(m.names[0], "mixed");
  bc_labelmap_free(&m);
  /* regression detection and targets */
  const char *fl[] = {"1", "2.5", "-3"}, *in[] = {"1", "2", "-3"}, *mixed[] = {"1", "a"};
  assert_true(bc_labels_are_regression(fl, 3, 0));
  assert_false(bc_labels_are_regression(in, 3, 0));
  assert_true(bc_labels_are_regression(in, 3, 1)); /* the model is a regressor */
  assert_false(bc_labels_are_regression(mixed, 2, 1));
  float t[3];
  assert_int_equal(bc_labels_targets(&err, "r.tsv", fl, NULL, 3, t), BERTCL_OK);
  assert_true(t[1] == 2.5f && t[2] == -3.0f);
  size_t lines[2] = {4, 9};
  assert_int_equal(bc_labels_targets(&err, "r.tsv", mixed, lines, 2, t), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "r.tsv:9: the label 'a' is not a number"));
  /* found by fuzz_inputs: a finite double beyond the float range became an inf target */
  const char *huge[] = {"1.5", "1e39"};
  assert_int_equal(bc_labels_targets(&err, "r.tsv", huge, lines, 2, t), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "r.tsv:9: the label '1e39' is beyond the float range"));
}

static void test_metrics(void **state) {
  (void)state;
  bertcl_metrics m;
  /* binary: gold 1 1 0 0 1, pred 1 0 0 1 1: tp(1) 2, fp 1, fn 1 -> F1(1) = 4/6;
   * label 0: tp 1, fp 1, fn 1 -> 2/4; macro (2/3 + 1/2) / 2 */
  const int32_t g[] = {1, 1, 0, 0, 1}, p[] = {1, 0, 0, 1, 1};
  bc_metrics_clear(&m);
  bc_score_classes(&m, g, p, 5, 2);
  assert_true(fabs(m.accuracy - 0.6) < 1e-12);
  assert_true(fabs(m.f1 - 2.0 / 3.0) < 1e-12);
  assert_true(fabs(m.macro_f1 - (2.0 / 3.0 + 0.5) / 2) < 1e-12);
  assert_true(isnan(m.mse));
  /* three labels, label 2 absent from gold and pred: not in the macro average */
  const int32_t g3[] = {0, 1, 1, 3}, p3[] = {0, 1, 0, 3};
  bc_score_classes(&m, g3, p3, 4, 4);
  /* F1: label 0 2/3, label 1 2/3, label 3 1 */
  assert_true(fabs(m.macro_f1 - (2.0 / 3 + 2.0 / 3 + 1) / 3) < 1e-12);
  assert_true(m.f1 == m.macro_f1);
  /* regression: p = 2 g exactly -> Pearson 1, Spearman 1; ties share ranks */
  const double gold[] = {1, 2, 2, 4}, pred[] = {2, 4, 4, 8}, rev[] = {4, 3, 3, 1};
  bc_metrics_clear(&m);
  assert_int_equal(bc_score_regression(&m, gold, pred, 4), BERTCL_OK);
  assert_true(fabs(m.mse - (1 + 4 + 4 + 16) / 4.0) < 1e-12);
  assert_true(fabs(m.pearson - 1) < 1e-12 && fabs(m.spearman - 1) < 1e-12);
  assert_int_equal(bc_score_regression(&m, gold, rev, 4), BERTCL_OK);
  assert_true(fabs(m.spearman + 1) < 1e-12);
  const double flat[] = {3, 3, 3, 3};
  assert_int_equal(bc_score_regression(&m, gold, flat, 4), BERTCL_OK);
  assert_true(isnan(m.pearson) && isnan(m.spearman)); /* constant side: NaN, as scipy */
}

static void test_checkpoints(void **state) {
  (void)state;
  char dir[512], path[600];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
  enum { N = 37 };
  float a[N], b[N], c[N], ra[N], rb[N], rc[N];
  for (int i = 0; i < N; i++) a[i] = (float)i * 0.5f, b[i] = -(float)i, c[i] = 1.0f / (i + 1);
  const float *const bufs[3] = {a, b, c};
  float *const rbufs[3] = {ra, rb, rc};
  bc_err err = {0};
  bc_ckpt_state s = {12, 0.875, 9}, got = {0};
  assert_int_equal(bc_checkpoint_save(&err, path, N, bufs, &s, "{\"run\": 1}"), BERTCL_OK);
  assert_int_equal(bc_test_count_tmp(dir, "checkpoint"), 0);
  assert_int_equal(bc_checkpoint_load(&err, path, N, rbufs, 20, &got, "{\"run\": 1}"), BERTCL_OK);
  assert_int_equal(got.step, 12);
  assert_int_equal(got.best_step, 9);
  assert_true(got.best == 0.875);
  assert_memory_equal(ra, a, sizeof a);
  assert_memory_equal(rb, b, sizeof b);
  assert_memory_equal(rc, c, sizeof c);
  /* -inf (no regression eval yet) survives the text form */
  bc_ckpt_state s2 = {3, -INFINITY, -1};
  assert_int_equal(bc_checkpoint_save(&err, path, N, bufs, &s2, "sig"), BERTCL_OK);
  assert_int_equal(bc_checkpoint_load(&err, path, N, rbufs, 20, &got, "sig"), BERTCL_OK);
  assert_true(isinf(got.best) && got.best < 0 && got.best_step == -1);
  /* refused: another run, a step beyond this run's, another size */
  memset(ra, 0, sizeof ra);
  assert_int_equal(bc_checkpoint_load(&err, path, N, rbufs, 20, &got, "other"),
                   BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(err.msg, "written by another run"));
  assert_int_equal(bc_checkpoint_load(&err, path, N, rbufs, 2, &got, "sig"), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "bad step"));
  assert_int_equal(bc_checkpoint_load(&err, path, N - 1, rbufs, 20, &got, "sig"),
                   BERTCL_ERR_SHAPE);
  assert_non_null(strstr(err.msg, "36"));
  float zero[N] = {0};
  assert_memory_equal(ra, zero, sizeof ra); /* nothing was read into the buffers */
  /* the memory form, truncated at every length: an error, never a crash */
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(bc_read_file(&err, path, &data, &len), BERTCL_OK);
  assert_int_equal(bc_checkpoint_parse(&err, "mem", data, len, N, rbufs, 20, &got, "sig"),
                   BERTCL_OK);
  for (size_t cut = 0; cut < len; cut += 7)
    assert_int_not_equal(bc_checkpoint_parse(&err, "mem", data, cut, N, rbufs, 20, &got, "sig"),
                         BERTCL_OK);
  free(data);
  /* a safetensors file that is no checkpoint */
  assert_int_equal(bc_checkpoint_parse(&err, "mem", "\x08\0\0\0\0\0\0\0{}      ", 16, N, rbufs,
                                       20, &got, "sig"),
                   BERTCL_ERR_FORMAT);
  assert_non_null(strstr(err.msg, "not a bertcl finetune checkpoint"));
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

static void test_export_config(void **state) {
  (void)state;
  char dir[512], src[1100], path[700], model[1000];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  bc_test_data_path(model, sizeof model, "tiny-bert");
  snprintf(src, sizeof src, "%s/config.json", model);
  bertcl_model *m = NULL;
  assert_int_equal(bertcl_model_load(&m, model), BERTCL_OK);
  char *cfg_text = NULL;
  size_t len = 0;
  bc_err err = {0};
  assert_int_equal(bc_read_file(&err, src, &cfg_text, &len), BERTCL_OK);
  bc_layout lay;
  assert_int_equal(bc_layout_init(&lay, bc_model_config(m), 3, 0), BERTCL_OK);
  float *flat = calloc(lay.total, sizeof *flat);
  assert_non_null(flat);
  bc_labelmap lm;
  const char *names[] = {"B-X", "I-X", "O"};
  assert_int_equal(bc_labelmap_from_names(&err, &lm, names, 3), BERTCL_OK);
  bc_export_head head = {"BertForTokenClassification", NULL};
  assert_int_equal(bc_export_model(&err, dir, model, cfg_text, &head, &lm, &lay, flat, "{}"),
                   BERTCL_OK);
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je);
  assert_non_null(cfg);
  assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                      "BertForTokenClassification");
  assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "id2label"), "2")),
                      "O");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(cfg, "label2id"), "I-X")),
                   1);
  assert_null(json_object_get(cfg, "problem_type"));
  json_decref(cfg);
  /* the export loads back: no pooler, a classifier of 3 labels */
  bertcl_model *back = NULL;
  if (bertcl_model_load(&back, dir) != BERTCL_OK) fail_msg("%s", bertcl_last_error(NULL));
  assert_int_equal(bc_model_config(back)->num_labels, 3);
  assert_null(bc_model_weights(back)->pool_w);
  assert_string_equal(bertcl_model_label(back, 0), "B-X");
  bertcl_model_free(back);
  bc_labelmap_free(&lm);
  bc_layout_free(&lay);
  free(flat);
  free(cfg_text);
  bertcl_model_free(m);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jsonl),          cmocka_unit_test(test_tsv_csv_plain),
      cmocka_unit_test(test_labelmaps),      cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_checkpoints),    cmocka_unit_test(test_export_config),
  };
  return cmocka_run_group_tests_name("train_data", tests, NULL, NULL);
}
