/* bertcl bench and bertcl tune: the JSON report against bench/bench.schema.json (a validator
 * for the schema keywords it uses, plus explicit structural checks, plus Python's jsonschema
 * when installed), --compare, bertcl_bench and bertcl_bench_compare called directly (their
 * events against the report, their errors), the tuner's parameter and progress files,
 * resuming, and a second process (and bc_gemm's first call) picking the parameters up. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "gemm/tuning.h"
#include "runtime/cpuinfo.h"
#include "testutil.h"

#define SCHEMA BERTCL_TEST_DATA "/../../bench/bench.schema.json"

static const char *device_sel(void) {
  const char *d = getenv("BERTCL_TEST_DEVICE");
  return d && *d ? d : "pocl";
}

/* Skips the test when no OpenCL device exists. */
static void need_device(void) {
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  bertcl_ctx_free(ctx);
}

/* ---- a validator for the JSON Schema keywords bench.schema.json uses ----------------------- */

static int type_is(json_t *v, const char *t) {
  if (strcmp(t, "object") == 0) return json_is_object(v);
  if (strcmp(t, "array") == 0) return json_is_array(v);
  if (strcmp(t, "string") == 0) return json_is_string(v);
  if (strcmp(t, "number") == 0) return json_is_number(v);
  if (strcmp(t, "integer") == 0) return json_is_integer(v);
  if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
  if (strcmp(t, "null") == 0) return json_is_null(v);
  return -1;
}

/* 1 when v matches schema s; else 0 with the path and reason in err. An unknown keyword in the
 * schema is an error too, so no constraint is silently ignored. */
static int validate(json_t *s, json_t *v, const char *path, char *err, size_t n) {
  const char *key;
  json_t *kw;
  json_object_foreach(s, key, kw) {
    if (strcmp(key, "$schema") == 0 || strcmp(key, "$id") == 0 || strcmp(key, "title") == 0 ||
        strcmp(key, "description") == 0)
      continue;
    if (strcmp(key, "type") == 0) {
      int ok = 0;
      if (json_is_string(kw)) {
        ok = type_is(v, json_string_value(kw));
      } else {
        size_t i;
        json_t *t;
        json_array_foreach(kw, i, t) ok = ok || type_is(v, json_string_value(t)) == 1;
      }
      if (ok != 1) {
        snprintf(err, n, "%s: wrong type", path);
        return 0;
      }
    } else if (strcmp(key, "minimum") == 0) {
      if (json_is_number(v) && json_number_value(v) < json_number_value(kw)) {
        snprintf(err, n, "%s: %g below minimum %g", path, json_number_value(v),
                 json_number_value(kw));
        return 0;
      }
    } else if (strcmp(key, "required") == 0) {
      size_t i;
      json_t *r;
      if (!json_is_object(v)) continue;
      json_array_foreach(kw, i, r) {
        if (!json_object_get(v, json_string_value(r))) {
          snprintf(err, n, "%s: required '%s' missing", path, json_string_value(r));
          return 0;
        }
      }
    } else if (strcmp(key, "properties") == 0) {
      const char *pk;
      json_t *ps;
      if (!json_is_object(v)) continue;
      json_object_foreach(kw, pk, ps) {
        json_t *pv = json_object_get(v, pk);
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s", path, pk);
        if (pv && !validate(ps, pv, sub, err, n)) return 0;
      }
    } else if (strcmp(key, "items") == 0) {
      size_t i;
      json_t *e;
      if (!json_is_array(v)) continue;
      json_array_foreach(v, i, e) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (!validate(kw, e, sub, err, n)) return 0;
      }
    } else if (strcmp(key, "anyOf") == 0) {
      size_t i;
      json_t *alt;
      char first[512] = "";
      int ok = 0;
      json_array_foreach(kw, i, alt) {
        char e2[512];
        if (validate(alt, v, path, e2, sizeof e2)) {
          ok = 1;
          break;
        }
        if (!first[0]) snprintf(first, sizeof first, "%s", e2);
      }
      if (!ok) {
        snprintf(err, n, "no alternative matches (first: %s)", first);
        return 0;
      }
    } else {
      snprintf(err, n, "%s: schema keyword '%s' not supported by this validator", path, key);
      return 0;
    }
  }
  return 1;
}

static json_t *load_json(const char *path) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) fprintf(stderr, "%s: line %d: %s\n", path, je.line, je.text);
  assert_non_null(j);
  return j;
}

static json_t *at(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (!v) fprintf(stderr, "missing key '%s'\n", k);
  assert_non_null(v);
  return v;
}

static double med(json_t *o, const char *k) { return json_number_value(at(at(o, k), "median")); }

/* Runs bertcl bench on the tiny configuration; prints the command and its output when it fails
 * and expect_ok is set. */
static int run_bench_(const char *cache, const char *extra, const char *json, char **out,
                      int expect_ok) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "BERTCL_CACHE_DIR='%s' '%s' bench --device '%s' --config tiny --batch 1,2 --seq 8,16 "
           "--warmup 1 --repeat 3 --bw-mib 4 --finetune 4x16 --json '%s' %s 2>&1",
           cache, BERTCL_BIN, device_sel(), json, extra);
  int rc = bc_test_run(cmd, out);
  if (rc != 0 && expect_ok) fprintf(stderr, "%s\n-> %d\n%s\n", cmd, rc, out && *out ? *out : "");
  return rc;
}
#define run_bench(c, e, j, o) run_bench_((c), (e), (j), (o), 1)

/* The structural checks the schema cannot express (counts, grid, relations between figures). */
static void check_report(json_t *r, int want_tuned) {
  assert_string_equal(json_string_value(at(r, "schema")), "bertcl-bench/1");
  json_t *dev = json_array_get(at(r, "devices"), 0);
  assert_int_equal(json_array_size(at(r, "devices")), 1);
  json_t *facts = at(dev, "facts");
  assert_true(strlen(json_string_value(at(facts, "name"))) > 0);
  assert_true(strlen(json_string_value(at(facts, "clblast"))) > 0);
  assert_true(json_integer_value(at(facts, "compute_units")) > 0);
  static const char *const bw[] = {"device_copy", "h2d_pageable", "d2h_pageable", "h2d_pinned",
                                   "d2h_pinned"};
  for (int i = 0; i < 5; i++) assert_true(med(at(at(dev, "bandwidth"), bw[i]), "gbs_wall") > 0);
  /* HGEMM where the device has cl_khr_fp16 (Intel's CPU runtime in CI), its result checked by
   * bench itself; none elsewhere */
  json_t *hg = at(dev, "hgemm");
  if (json_is_true(at(facts, "fp16"))) {
    json_t *herr = json_object_get(hg, "error");
    if (herr) fprintf(stderr, "hgemm: %s\n", json_string_value(herr));
    assert_null(herr);
    assert_true(json_number_value(at(hg, "tflops")) > 0);
  } else {
    assert_true(json_is_null(hg));
  }
  /* a CPU device has a peak whenever the OS gives its clock and vector width */
  if (strcmp(json_string_value(at(facts, "type")), "cpu") == 0) {
    bc_cpu_info host;
    bc_cpu_info_get(&host);
    if (host.peak_gflops > 0) {
      assert_true(json_integer_value(at(facts, "max_clock_mhz")) > 0);
      assert_true(json_number_value(at(at(dev, "peak"), "fp32_tflops")) > 0);
    }
  }
  /* the fine-tuning step (--finetune 4x16, or none) */
  json_t *ft = at(dev, "finetune");
  if (!json_is_null(ft)) {
    assert_int_equal(json_integer_value(at(ft, "batch")), 4);
    assert_int_equal(json_integer_value(at(ft, "seq")), 16);
    double step = med(ft, "step_ms"), fb = med(ft, "fwd_bwd_ms");
    assert_true(step > 0 && fb > 0 && fb <= step);
    assert_int_equal(json_integer_value(at(at(ft, "step_ms"), "n")), 3);
    double eps = json_number_value(at(ft, "examples_per_s"));
    assert_true(fabs(eps - 4 / (step * 1e-3)) < 1e-6 * eps);
  }
  json_t *runs = at(dev, "runs");
  /* a CPU device that runs the host BLAS measures that backend first, in the same run */
  size_t blas = json_array_size(runs) > 0 &&
                !strcmp(json_string_value(at(json_array_get(runs, 0), "variant")), "blas");
  if (blas) {
    assert_string_equal(json_string_value(at(json_array_get(runs, 0), "backend")), "blas");
    assert_true(json_is_object(at(dev, "finetune_blas")) || json_is_null(at(dev, "finetune")));
  }
  assert_int_equal(json_array_size(runs), blas + (want_tuned ? 2 : 1));
  for (size_t v = 0; v < json_array_size(runs); v++) {
    json_t *run = json_array_get(runs, v);
    assert_string_equal(json_string_value(at(run, "variant")),
                        v < blas ? "blas" : v == blas ? "untuned" : "tuned");
    json_t *gemm = at(run, "gemm"), *enc = at(run, "encoder");
    assert_int_equal(json_array_size(gemm), 2 * 2 * 6); /* batches x seqs x shapes */
    assert_int_equal(json_array_size(enc), 2 * 2);
    size_t i;
    json_t *e;
    json_array_foreach(gemm, i, e) {
      assert_null(json_object_get(e, "error"));
      double ms = med(e, "device_ms"), fl = json_number_value(at(e, "flops"));
      assert_true(ms > 0);
      assert_true(fabs(json_number_value(at(e, "tflops")) - fl / (ms * 1e-3) / 1e12) <=
                  1e-6 * (fl / (ms * 1e-3) / 1e12) + 1e-12);
      assert_true(fl == 2.0 * json_integer_value(at(e, "m")) * json_integer_value(at(e, "n")) *
                            json_integer_value(at(e, "k")) *
                            json_integer_value(at(e, "batch_count")));
    }
    json_array_foreach(enc, i, e) {
      assert_null(json_object_get(e, "error"));
      double sps = json_number_value(at(e, "seqs_per_s"));
      double tps = json_number_value(at(e, "tokens_per_s"));
      assert_true(sps > 0);
      assert_true(fabs(tps - sps * (double)json_integer_value(at(e, "seq"))) <= 1e-6 * tps);
    }
  }
}

static void check_schema(const char *report_path) {
  json_t *schema = load_json(SCHEMA), *r = load_json(report_path);
  char err[512] = "";
  int ok = validate(schema, r, "$", err, sizeof err);
  if (!ok) fprintf(stderr, "%s against %s: %s\n", report_path, SCHEMA, err);
  assert_true(ok);
  /* the validator can fail: broken copies of the report are refused */
  json_t *dev = json_array_get(json_object_get(r, "devices"), 0);
  json_t *g0 = json_array_get(json_object_get(json_array_get(json_object_get(dev, "runs"), 0),
                                              "gemm"),
                              0);
  json_object_set_new(g0, "tflops", json_real(-1));
  assert_false(validate(schema, r, "$", err, sizeof err));
  json_object_set_new(g0, "tflops", json_real(1));
  assert_true(validate(schema, r, "$", err, sizeof err));
  json_object_del(json_object_get(dev, "bandwidth"), "d2h_pinned");
  assert_false(validate(schema, r, "$", err, sizeof err));
  json_object_set_new(json_object_get(r, "settings"), "repeat", json_string("x"));
  assert_false(validate(schema, r, "$", err, sizeof err));
  json_decref(schema);
  json_decref(r);
  /* Python's jsonschema as a second opinion where it is installed */
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "python3 -c 'import jsonschema' >/dev/null 2>&1 || exit 77; python3 -c 'import json, "
           "sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), "
           "json.load(open(sys.argv[2])))' '%s' '%s' 2>&1",
           report_path, SCHEMA);
  char *out = NULL;
  int rc = bc_test_run(cmd, &out);
  if (rc == 77)
    fprintf(stderr, "note: python3 jsonschema not installed; the C validator alone checked %s\n",
            report_path);
  else if (rc != 0)
    fprintf(stderr, "jsonschema: %s\n", out ? out : "");
  assert_true(rc == 0 || rc == 77);
  free(out);
}

static void test_bench_json(void **state) {
  (void)state;
  need_device();
  char dir[256], json[512], cache[512];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(json, sizeof json, "%s/out.json", dir);
  snprintf(cache, sizeof cache, "%s/cache", dir); /* no tuned parameters there */
  char *out = NULL;
  assert_int_equal(run_bench(cache, "", json, &out), 0);
  assert_non_null(strstr(out, "GEMM per call"));
  assert_non_null(strstr(out, "encoder forward"));
  assert_non_null(strstr(out, "fine-tuning step (BertForSequenceClassification"));
  assert_non_null(strstr(out, "CLBlast "));
  assert_non_null(strstr(out, "tuning   none"));
  free(out);
  json_t *r = load_json(json);
  check_report(r, 0);
  json_t *dev = json_array_get(json_object_get(r, "devices"), 0);
  assert_string_equal(json_string_value(at(at(dev, "tuning"), "state")), "none");
  assert_true(json_is_object(at(dev, "finetune")));
  json_decref(r);
  check_schema(json);

  /* --compare against it: ratios for every GEMM and encoder entry */
  char json2[512];
  snprintf(json2, sizeof json2, "%s/out2.json", dir);
  char extra[600];
  snprintf(extra, sizeof extra, "--compare '%s'", json);
  assert_int_equal(run_bench(cache, extra, json2, &out), 0);
  assert_non_null(strstr(out, "compared with"));
  int gemm_lines = 0, enc_lines = 0;
  for (const char *p = out; (p = strstr(p, "untuned gemm")); p++) gemm_lines++;
  for (const char *p = out; (p = strstr(p, "untuned encoder")); p++) enc_lines++;
  assert_int_equal(gemm_lines, 24);
  assert_int_equal(enc_lines, 4);
  assert_non_null(strstr(out, "fine-tuning step B=4    T=16"));
  free(out);
  /* --finetune none: no step timed, and the report says so */
  snprintf(extra, sizeof extra, "--finetune none");
  assert_int_equal(run_bench(cache, extra, json2, &out), 0);
  assert_non_null(strstr(out, "fine-tuning step: not measured"));
  free(out);
  r = load_json(json2);
  assert_true(json_is_null(at(json_array_get(at(r, "devices"), 0), "finetune")));
  json_decref(r);
  check_schema(json2);
  /* a file that is not a report is refused */
  char bad[512];
  snprintf(bad, sizeof bad, "%s/bad.json", dir);
  FILE *f = fopen(bad, "w");
  assert_non_null(f);
  fputs("{\"schema\": \"something else\"}", f);
  fclose(f);
  snprintf(extra, sizeof extra, "--compare '%s'", bad);
  assert_int_equal(run_bench_(cache, extra, json2, &out, 0) != 0, 1);
  assert_non_null(strstr(out, "not a bertcl-bench/1 report"));
  free(out);
}

/* ---- bertcl_bench and bertcl_bench_compare, called in this process --------------------------- */

typedef struct {
  int info, warnings, newlines;
  char text[1 << 16]; /* the INFO lines, each ended by a newline, as bertcl bench prints them */
  size_t len;
  char warning[1024]; /* the first warning */
} bench_events;

static int collect(const bertcl_progress *p, void *user) {
  bench_events *e = user;
  assert_non_null(p->message);
  if (p->event == BERTCL_EVENT_WARNING) {
    if (!e->warnings++) snprintf(e->warning, sizeof e->warning, "%s", p->message);
    return 0;
  }
  assert_int_equal(p->event, BERTCL_EVENT_INFO);
  e->info++;
  if (strchr(p->message, '\n')) e->newlines++;
  int n = snprintf(e->text + e->len, sizeof e->text - e->len, "%s\n", p->message);
  assert_true(n > 0 && (size_t)n < sizeof e->text - e->len);
  e->len += (size_t)n;
  return 0;
}

static int count_lines(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p++) n++;
  return n;
}

static void test_bench_library(void **state) {
  (void)state;
  bertcl_bench_options o;
  bertcl_bench_options_init(&o); /* bertcl bench's defaults */
  assert_int_equal(o.warmup, 2);
  assert_int_equal(o.repeat, 10);
  assert_int_equal(o.bw_bytes, (size_t)64 << 20);
  assert_int_equal(o.finetune_batch, 32);
  assert_int_equal(o.finetune_seq, 128);
  assert_null(o.batches);
  assert_null(o.seqs);
  assert_null(o.config);
  assert_null(o.gemm);

  /* invalid options: an error with a message, no report, no exit */
  bench_events *ev = calloc(1, sizeof *ev);
  assert_non_null(ev);
  char *report = (char *)"untouched";
  o.repeat = 0;
  assert_int_equal(bertcl_bench(&o, collect, ev, &report), BERTCL_ERR_INVALID_ARG);
  assert_null(report);
  assert_non_null(strstr(bertcl_last_error(NULL), "repeat 0"));
  o.repeat = 1;
  o.config = "nope";
  assert_int_equal(bertcl_bench(&o, collect, ev, &report), BERTCL_ERR_INVALID_ARG);
  assert_non_null(strstr(bertcl_last_error(NULL), "unknown configuration 'nope'"));
  int too_long[] = {1024};
  o.config = "tiny";
  o.seqs = too_long;
  o.nseqs = 1;
  assert_int_equal(bertcl_bench(&o, collect, ev, &report), BERTCL_ERR_INVALID_ARG);
  assert_null(report);
  assert_non_null(strstr(bertcl_last_error(NULL), "no sequence length fits tiny"));
  assert_int_equal(ev->warnings, 1); /* the lengths dropped */
  assert_non_null(strstr(ev->warning, "sequence lengths above"));
  assert_int_equal(ev->info, 0);
  assert_int_equal(bertcl_bench(NULL, NULL, NULL, &report), BERTCL_ERR_INVALID_ARG);
  assert_int_equal(bertcl_bench_compare(NULL, "x", NULL, NULL), BERTCL_ERR_INVALID_ARG);

  /* a device that does not exist: the run goes on to the report, whose device holds the error */
  need_device();
  int b1[] = {1}, s8[] = {8};
  memset(ev, 0, sizeof *ev);
  o.device = "no such device anywhere";
  o.batches = b1;
  o.nbatches = 1;
  o.seqs = s8;
  o.nseqs = 1;
  assert_int_equal(bertcl_bench(&o, collect, ev, &report), BERTCL_ERR_NO_DEVICE);
  assert_non_null(report);
  assert_int_equal(ev->warnings, 1);
  assert_non_null(strstr(bertcl_last_error(NULL), "no such device anywhere"));
  json_error_t je;
  json_t *r = json_loads(report, 0, &je);
  assert_non_null(r);
  assert_non_null(json_object_get(json_array_get(at(r, "devices"), 0), "error"));
  json_decref(r);
  free(report);

  /* a small grid on the test device, stored tuning from an empty cache: none */
  char dir[256], cache[512], base[512];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(cache, sizeof cache, "%s/cache", dir);
  snprintf(base, sizeof base, "%s/baseline.json", dir);
  int batches[] = {1, 2}, seqs[] = {8, 16};
  bertcl_bench_options_init(&o);
  o.device = device_sel();
  o.config = "tiny";
  o.batches = batches;
  o.nbatches = 2;
  o.seqs = seqs;
  o.nseqs = 2;
  o.warmup = 1;
  o.repeat = 3;
  o.bw_bytes = 1 << 20;
  o.finetune_batch = 4;
  o.finetune_seq = 16;
  o.cache_dir = cache;
  o.command = "test_bench_library";
  memset(ev, 0, sizeof *ev);
  int st = bertcl_bench(&o, collect, ev, &report);
  if (st != BERTCL_OK) fprintf(stderr, "bertcl_bench: %s\n", bertcl_last_error(NULL));
  assert_int_equal(st, BERTCL_OK);
  assert_non_null(report);
  assert_int_equal(bc_tuning_set_auto(1), 1); /* the process's setting is back */
  if (ev->warnings) fprintf(stderr, "warning: %s\n", ev->warning);
  assert_int_equal(ev->warnings, 0);
  assert_int_equal(ev->newlines, 0);
  r = json_loads(report, 0, &je);
  assert_non_null(r);
  check_report(r, 0);
  assert_string_equal(json_string_value(at(r, "command")), "test_bench_library");
  assert_int_equal(json_integer_value(at(at(r, "model"), "layers")), 2);
  json_t *dev = json_array_get(at(r, "devices"), 0);
  assert_string_equal(json_string_value(at(at(dev, "tuning"), "state")), "none");

  /* the events are bertcl bench's tables, and carry the report's figures */
  const char *text = ev->text;
  assert_true(strncmp(text, "-----", 5) == 0);
  char line[512];
  snprintf(line, sizeof line, "\ndevice   %s | ", json_string_value(at(at(dev, "facts"), "name")));
  assert_non_null(strstr(text, line));
  assert_non_null(strstr(text, "\ntuning   none: "));
  assert_non_null(strstr(text, "\n\nGEMM per call (device time, median; % of the fp32 peak)\n"));
  assert_non_null(strstr(text, "\n\nencoder forward (2 layers, wall clock, median of 3)\n"));
  assert_non_null(strstr(text, "\n\nfine-tuning step (BertForSequenceClassification"));
  json_t *runs = at(dev, "runs");
  size_t i, k;
  json_t *run, *e;
  json_array_foreach(runs, k, run) {
    json_array_foreach(at(run, "gemm"), i, e) {
      char ms[32];
      snprintf(ms, sizeof ms, " %8.3f ", med(e, "device_ms"));
      snprintf(line, sizeof line, "\n%4d %4d %-12s %6d %6d %6d %5d ",
               (int)json_integer_value(at(e, "batch")), (int)json_integer_value(at(e, "seq")),
               json_string_value(at(e, "shape")), (int)json_integer_value(at(e, "m")),
               (int)json_integer_value(at(e, "n")), (int)json_integer_value(at(e, "k")),
               (int)json_integer_value(at(e, "batch_count")));
      const char *row = strstr(text, line);
      assert_non_null(row);
      const char *eol = strchr(row + 1, '\n');
      const char *fig = strstr(row, ms);
      if (!fig || fig > eol) fprintf(stderr, "'%s' lacks '%s'\n", line + 1, ms);
      assert_true(fig && fig < eol);
    }
    json_array_foreach(at(run, "encoder"), i, e) {
      char sps[32];
      snprintf(sps, sizeof sps, " %9.1f ", json_number_value(at(e, "seqs_per_s")));
      snprintf(line, sizeof line, "\n%4d %4d | ", (int)json_integer_value(at(e, "batch")),
               (int)json_integer_value(at(e, "seq")));
      const char *row = strstr(text, line);
      assert_non_null(row);
      const char *fig = strstr(row, sps);
      assert_true(fig && fig < strchr(row + 1, '\n'));
    }
  }
  json_decref(r);

  /* compared with itself: a ratio line for every GEMM shape and grid point; no exit on errors */
  FILE *f = fopen(base, "w");
  assert_non_null(f);
  fputs(report, f);
  fclose(f);
  memset(ev, 0, sizeof *ev);
  assert_int_equal(bertcl_bench_compare(report, base, collect, ev), BERTCL_OK);
  assert_int_equal(ev->newlines, 0);
  assert_non_null(strstr(ev->text, "\ncompared with "));
  assert_int_equal(count_lines(ev->text, "untuned gemm"), 24);
  assert_int_equal(count_lines(ev->text, "untuned encoder"), 4);
  /* every line is a ratio of 1 but the blank one, "compared with" and the device's */
  assert_int_equal(count_lines(ev->text, "then:   1.00x"), ev->info - 3);
  assert_int_equal(bertcl_bench_compare(report, "/nonexistent/old.json", collect, ev),
                   BERTCL_ERR_IO);
  f = fopen(base, "w");
  assert_non_null(f);
  fputs("{\"schema\": \"something else\"}", f);
  fclose(f);
  assert_int_equal(bertcl_bench_compare(report, base, collect, ev), BERTCL_ERR_FORMAT);
  assert_non_null(strstr(bertcl_last_error(NULL), "not a bertcl-bench/1 report"));
  free(report);
  free(ev);
}

/* Parameters that compute correctly on any device: small tiles, every product indirect. */
static const char *k_manual =
    "\"kernels\": {\"Xgemm\": {\"GEMMK\": 0, \"KREG\": 1, \"KWG\": 16, \"KWI\": 2, \"MDIMA\": 8, "
    "\"MDIMC\": 8, \"MWG\": 32, \"NDIMB\": 8, \"NDIMC\": 8, \"NWG\": 32, \"SA\": 0, \"SB\": 0, "
    "\"STRM\": 0, \"STRN\": 0, \"VWM\": 1, \"VWN\": 1}, \"GemmRoutine\": "
    "{\"XGEMM_MIN_INDIRECT_SIZE\": 1}}";

/* A parameter file as bertcl tune writes it, with k_manual's kernels, for ctx's device. */
static void write_manual(const bertcl_device_info *d, const char *path, const char *driver) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:i}, s:s}",
                        "format", "bertcl-clblast-tuning/1", "platform", d->platform_name,
                        "platform_version", d->platform_version, "device", d->name, "vendor",
                        d->vendor, "device_version", d->version, "driver", driver, "clblast",
                        bc_clblast_version(), "tuned_for", "config", "manual", "batch", 1, "seq",
                        1, "date", "test");
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "%.*s, %s}", (int)strlen(text) - 1, text, k_manual);
  fclose(f);
  free(text);
}

static char *line_after(const char *out, const char *prefix, char *buf, size_t n) {
  const char *p = strstr(out, prefix);
  if (!p) return NULL;
  p += strlen(prefix);
  size_t i = 0;
  while (p[i] && p[i] != '\n' && i + 1 < n) {
    buf[i] = p[i];
    i++;
  }
  buf[i] = '\0';
  return buf;
}

static void test_tune_resume_and_pickup(void **state) {
  (void)state;
  need_device();
  char dir[256], cache[512], cmd[2048], json[512];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(cache, sizeof cache, "%s/cache", dir);
  snprintf(json, sizeof json, "%s/tuned.json", dir);
  const char *tune_args = "--config tiny --batch 2 --seq 16 --repeat 3 --max-candidates 1";
  snprintf(cmd, sizeof cmd, "BERTCL_CACHE_DIR='%s' '%s' tune --device '%s' %s 2>&1", cache,
           BERTCL_BIN, device_sel(), tune_args);
  char *out = NULL;
  int rc = bc_test_run(cmd, &out);
  if (rc != 0) fprintf(stderr, "%s\n%s\n", cmd, out ? out : "");
  assert_int_equal(rc, 0);
  char params[1100], progress[1100];
  assert_non_null(line_after(out, "stored: ", params, sizeof params));
  assert_non_null(line_after(out, "progress: ", progress, sizeof progress));
  char *sp = strstr(progress, " (");
  if (sp) *sp = '\0';
  assert_non_null(strstr(out, "measured 1 candidates now"));
  free(out);
  json_t *pf = load_json(params), *pg = load_json(progress);
  assert_string_equal(json_string_value(at(pf, "format")), "bertcl-clblast-tuning/1");
  assert_true(json_is_object(at(pf, "kernels")));
  assert_int_equal(json_integer_value(at(pg, "evaluated")), 1);
  json_decref(pf);
  json_decref(pg);

  /* stopped after one candidate: the next run resumes and measures the next one */
  rc = bc_test_run(cmd, &out);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "resuming"));
  assert_non_null(strstr(out, "2 in all (resumed)"));
  free(out);
  pg = load_json(progress);
  assert_int_equal(json_integer_value(at(pg, "evaluated")), 2);
  assert_int_equal(json_integer_value(at(pg, "next_a")) + json_integer_value(at(pg, "next_b")),
                   2);
  assert_int_equal(json_array_size(at(pg, "measured_a")) + json_array_size(at(pg, "measured_b")),
                   2);
  json_decref(pg);

  /* what tune stored is usable by another process */
  snprintf(cmd, sizeof cmd, "BERTCL_CACHE_DIR='%s' '%s' tune --device '%s' --show 2>&1", cache,
           BERTCL_BIN, device_sel());
  rc = bc_test_run(cmd, &out);
  assert_int_equal(rc, 0);
  assert_true(strstr(out, "state: applied") || strstr(out, "state: defaults-best"));
  free(out);

  /* a second process picks known parameters up: bench shows them and runs tuned beside
   * untuned */
  bertcl_ctx *ctx = bc_test_ctx();
  assert_non_null(ctx);
  const bertcl_device_info *d = bertcl_ctx_device(ctx);
  write_manual(d, params, d->driver_version);
  assert_int_equal(run_bench(cache, "", json, &out), 0);
  assert_non_null(strstr(out, "tuning   applied Xgemm{GEMMK=0 KREG=1 KWG=16"));
  free(out);
  json_t *r = load_json(json);
  check_report(r, 1);
  json_t *t = at(json_array_get(json_object_get(r, "devices"), 0), "tuning");
  assert_string_equal(json_string_value(at(t, "state")), "applied");
  assert_non_null(strstr(json_string_value(at(t, "parameters")), "MWG=32"));
  assert_non_null(strstr(json_string_value(at(t, "parameters")), "XGEMM_MIN_INDIRECT_SIZE=1"));
  json_decref(r);
  check_schema(json);

  /* BERTCL_TUNING=off: the file is left alone */
  setenv("BERTCL_TUNING", "off", 1);
  assert_int_equal(run_bench(cache, "", json, &out), 0);
  unsetenv("BERTCL_TUNING");
  assert_non_null(strstr(out, "tuning   disabled: BERTCL_TUNING=off"));
  free(out);

  /* unusable files are ignored with a reason; the run still succeeds */
  write_manual(d, params, "some other driver");
  assert_int_equal(run_bench(cache, "", json, &out), 0);
  assert_non_null(strstr(out, "tuning   rejected"));
  assert_non_null(strstr(out, "made for another device, driver or CLBlast"));
  free(out);
  FILE *f = fopen(params, "w");
  assert_non_null(f);
  fputs("{\"format\": ", f);
  fclose(f);
  assert_int_equal(run_bench(cache, "", json, &out), 0);
  assert_non_null(strstr(out, "tuning   rejected"));
  free(out);
  r = load_json(json);
  check_report(r, 0);
  json_decref(r);
  bertcl_ctx_free(ctx);
}

/* In this process: bc_gemm's first call applies the stored file, and the products stay right. */
static void test_gemm_first_call_applies(void **state) {
  (void)state;
  char dir[256];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  bertcl_ctx_options opt = {.device = device_sel(), .cache_dir = dir, .gemm = "clblast"};
  bertcl_ctx *ctx = NULL;
  if (bertcl_ctx_create(&ctx, &opt) != BERTCL_OK) skip();
  char params[1100];
  assert_int_equal(bc_tuning_paths(ctx, params, sizeof params, NULL, 0), BERTCL_OK);
  char tdir[600];
  snprintf(tdir, sizeof tdir, "%s/tuning", dir);
  assert_int_equal(bc_mkdirs(tdir), 0);
  write_manual(&ctx->info, params, ctx->info.driver_version);
  bc_tuning_status ts;
  bc_tuning_status_get(ctx, &ts);
  assert_int_equal(ts.state, BC_TUNING_UNCHECKED);

  enum { M = 37, N = 45, K = 29 };
  float a[M * K], b[N * K], c[M * N], ref[M * N];
  bc_rng r;
  bc_rng_seed(&r, 7);
  bc_rng_fill(&r, a, M * K, -1, 1);
  bc_rng_fill(&r, b, N * K, -1, 1);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)a[i * K + k] * b[j * K + k];
      ref[i * N + j] = (float)s;
    }
  cl_int e;
  cl_mem da = clCreateBuffer(ctx->context, CL_MEM_COPY_HOST_PTR, sizeof a, a, &e);
  assert_int_equal(e, CL_SUCCESS);
  cl_mem db = clCreateBuffer(ctx->context, CL_MEM_COPY_HOST_PTR, sizeof b, b, &e);
  assert_int_equal(e, CL_SUCCESS);
  cl_mem dc = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, sizeof c, NULL, &e);
  assert_int_equal(e, CL_SUCCESS);
  int st = bc_linear(ctx, dc, 0, da, 0, db, 0, M, K, N);
  if (st != BERTCL_OK) fprintf(stderr, "%s\n", bertcl_last_error(ctx));
  assert_int_equal(st, BERTCL_OK);
  assert_int_equal(clEnqueueReadBuffer(ctx->queue, dc, CL_TRUE, 0, sizeof c, c, 0, NULL, NULL),
                   CL_SUCCESS);
  bc_tuning_status_get(ctx, &ts);
  if (ts.state != BC_TUNING_APPLIED) fprintf(stderr, "state %d: %s\n", ts.state, ts.reason);
  assert_int_equal(ts.state, BC_TUNING_APPLIED);
  assert_int_equal(ts.params.xgemm[6], 32); /* MWG */
  assert_int_equal(ts.params.min_indirect, 1);
  assert_true(bc_check_close("linear with stored parameters (37x45x29)", c, ref, M * N, 1e-4f,
                             1e-4f, 7));
  clReleaseMemObject(da);
  clReleaseMemObject(db);
  clReleaseMemObject(dc);
  bertcl_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_first_call_applies),
      cmocka_unit_test(test_bench_json),
      cmocka_unit_test(test_bench_library),
      cmocka_unit_test(test_tune_resume_and_pickup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
