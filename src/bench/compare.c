/* bertcl_bench_compare (include/bertcl.h): a bertcl_bench report against an earlier one, as the
 * lines bertcl bench --compare prints. */
#include <jansson.h>
#include <string.h>

#include "bench/bench.h"
#include "common.h"

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static json_t *find_entry(json_t *arr, json_t *like, const char *key_name) {
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    if (json_integer_value(json_object_get(e, "batch")) ==
            json_integer_value(json_object_get(like, "batch")) &&
        json_integer_value(json_object_get(e, "seq")) ==
            json_integer_value(json_object_get(like, "seq")) &&
        (!key_name || strcmp(jstr(e, key_name), jstr(like, key_name)) == 0))
      return e;
  }
  return NULL;
}

static json_t *find_run(json_t *dev, const char *variant) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(dev, "runs"), i, r) {
    if (strcmp(jstr(r, "variant"), variant) == 0) return r;
  }
  return NULL;
}

static double med(json_t *o, const char *k) {
  return json_number_value(json_object_get(json_object_get(o, k), "median"));
}

int bertcl_bench_compare(const char *report_json, const char *baseline_file,
                         bertcl_progress_fn progress, void *user) {
  if (!report_json || !baseline_file)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "bertcl_bench_compare: a NULL argument");
  const char *path = baseline_file;
  json_error_t je;
  json_t *now = json_loads(report_json, 0, &je);
  if (!now)
    return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "the report: line %d: %s", je.line, je.text);
  json_t *old = json_load_file(path, 0, &je);
  if (!old) {
    json_decref(now);
    /* jansson says "unable to open" when the file cannot be read, else where it is malformed */
    return bc_fail(NULL, strncmp(je.text, "unable to open", 14) ? BERTCL_ERR_FORMAT : BERTCL_ERR_IO,
                   "%s: line %d: %s", path, je.line, je.text);
  }
  if (strcmp(jstr(old, "schema"), BC_BENCH_SCHEMA) != 0) {
    json_decref(now);
    json_decref(old);
    return bc_fail(NULL, BERTCL_ERR_FORMAT, "%s: not a %s report", path, BC_BENCH_SCHEMA);
  }
  bc_bench_out out_, *out = &out_;
  out->fn = progress;
  out->user = user;
  out->len = 0;
  bc_bench_printf(out, "\ncompared with %s (%s); ratios > 1: faster now\n", path,
                  jstr(old, "date"));
  int matched = 0;
  size_t i, j;
  json_t *dn, *dold;
  json_array_foreach(json_object_get(now, "devices"), i, dn) {
    json_t *fn = json_object_get(dn, "facts");
    json_array_foreach(json_object_get(old, "devices"), j, dold) {
      json_t *fo = json_object_get(dold, "facts");
      if (strcmp(jstr(fn, "name"), jstr(fo, "name")) != 0) continue;
      matched++;
      bc_bench_printf(out, "device %s (driver now %s, then %s)\n", jstr(fn, "name"),
                      jstr(fn, "driver"), jstr(fo, "driver"));
      static const char *const bwk[] = {"device_copy", "h2d_pageable", "d2h_pageable", "h2d_pinned",
                                        "d2h_pinned"};
      for (int k = 0; k < 5; k++) {
        json_t *a = json_object_get(json_object_get(dn, "bandwidth"), bwk[k]);
        json_t *b = json_object_get(json_object_get(dold, "bandwidth"), bwk[k]);
        const char *fig = jstr(a, "figure");
        if (a && b && *fig && med(b, fig) > 0)
          bc_bench_printf(out, "  bandwidth %-13s %8.2f GB/s now, %8.2f then: %6.2fx\n", bwk[k],
                          med(a, fig), med(b, fig), med(a, fig) / med(b, fig));
      }
      json_t *ftn = json_object_get(dn, "finetune"), *fto = json_object_get(dold, "finetune");
      if (json_object_get(ftn, "step_ms") && json_object_get(fto, "step_ms")) {
        double a = med(ftn, "step_ms"), b = med(fto, "step_ms");
        bc_bench_printf(out,
                        "  fine-tuning step B=%-4lld T=%-4lld %9.2f ms now, %9.2f then: %6.2fx\n",
                        json_integer_value(json_object_get(ftn, "batch")),
                        json_integer_value(json_object_get(ftn, "seq")), a, b, b / a);
      }
      static const char *const variants[] = {"untuned", "tuned"};
      for (int v = 0; v < 2; v++) {
        json_t *rn = find_run(dn, variants[v]), *ro = find_run(dold, variants[v]);
        if (!rn || !ro) continue;
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(rn, "gemm"), k, e) {
          json_t *o = find_entry(json_object_get(ro, "gemm"), e, "shape");
          if (!o || !json_object_get(e, "device_ms") || !json_object_get(o, "device_ms")) continue;
          double a = med(e, "device_ms"), b = med(o, "device_ms");
          bc_bench_printf(
              out, "  %-7s gemm   B=%-4lld T=%-4lld %-12s %9.3f ms now, %9.3f then: %6.2fx\n",
              variants[v], json_integer_value(json_object_get(e, "batch")),
              json_integer_value(json_object_get(e, "seq")), jstr(e, "shape"), a, b, b / a);
        }
        json_array_foreach(json_object_get(rn, "encoder"), k, e) {
          json_t *o = find_entry(json_object_get(ro, "encoder"), e, NULL);
          if (!o || !json_object_get(e, "seqs_per_s") || !json_object_get(o, "seqs_per_s"))
            continue;
          double a = json_number_value(json_object_get(e, "seqs_per_s"));
          double b = json_number_value(json_object_get(o, "seqs_per_s"));
          bc_bench_printf(
              out, "  %-7s encoder B=%-4lld T=%-4lld %10.1f seqs/s now, %10.1f then: %6.2fx\n",
              variants[v], json_integer_value(json_object_get(e, "batch")),
              json_integer_value(json_object_get(e, "seq")), a, b, a / b);
        }
      }
    }
  }
  if (!matched) bc_bench_printf(out, "no device of this report is in %s\n", path);
  json_decref(old);
  json_decref(now);
  return BERTCL_OK;
}
