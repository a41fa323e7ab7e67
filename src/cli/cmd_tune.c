/* bertcl tune: search CLBlast's GEMM parameters for a device and the encoder's shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"
#include "gemm/tune.h"
#include "model/model.h"
#include "model/random.h"
#include "gemm/tuning.h"

void bc_cmd_tune_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl tune [--device D] [--config base|large|minilm|tiny | --model DIR]\n"
          "                   [--batch B] [--seq T] [--budget-seconds N] [--max-candidates N]\n"
          "                   [--repeat N] [--restart] [--show] [--gemm clblast]\n\n"
          "Tunes CLBlast's GEMM kernels (the indirect \"Xgemm\", the direct \"XgemmDirect\" and\n"
          "the size that switches between them) for one device on the encoder's own products\n"
          "(QKV, attention output, FFN up and down, batched attention) at batch B and sequence\n"
          "length T. Each candidate is timed with OpenCL profiling events and its results are\n"
          "checked against CLBlast's defaults. The best set is stored per device and driver in\n"
          "<cache>/tuning/ and every later bertcl run applies it before its first GEMM\n"
          "(BERTCL_TUNING=off skips it). Stopping is safe: the next run resumes where the\n"
          "progress file says. Only CLBlast is tuned: the host BLAS backend of CPU devices\n"
          "(bertcl devices) needs no tuning, so --gemm takes clblast (or auto) only.\n\n"
          "options:\n"
          "  --device D            device selector (see bertcl devices)\n"
          "  --config NAME         model configuration to tune for (default base)\n"
          "  --model DIR           or the configuration of a model directory\n"
          "  --batch B             batch size of the shapes (default 8)\n"
          "  --seq T               sequence length (default 128, at most the model's)\n"
          "  --budget-seconds N    stop starting candidates after N seconds (default 600)\n"
          "  --max-candidates N    and after N candidates (default: no limit)\n"
          "  --repeat N            timed calls per shape (default 5)\n"
          "  --restart             ignore earlier progress\n"
          "  --show                print the stored parameters of the device and exit\n");
}

static void log_line(void *user, const char *line) {
  (void)user;
  printf("%s\n", line);
  fflush(stdout);
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
  char *end = NULL;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < lo || x > hi) {
    bc_cli_error("tune: %s wants an integer in [%ld, %ld], got '%s'", opt, lo, hi, v);
    return 0;
  }
  *out = x;
  return 1;
}

int bc_cmd_tune(int argc, char **argv) {
  const char *device = NULL, *config = NULL, *model_dir = NULL, *gemm = NULL;
  long batch = 8, seq = 128, budget = 600, maxc = 0, repeat = 5;
  int restart = 0, show = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = 1;
    if (strcmp(a, "--restart") == 0) {
      restart = 1;
      continue;
    } else if (strcmp(a, "--show") == 0) {
      show = 1;
      continue;
    }
    if (!v) {
      bc_cli_error("tune: unknown option or missing value '%s' (see bertcl tune --help)", a);
      return 2;
    }
    if (strcmp(a, "--device") == 0)
      device = v;
    else if (strcmp(a, "--gemm") == 0)
      gemm = v;
    else if (strcmp(a, "--config") == 0)
      config = v;
    else if (strcmp(a, "--model") == 0 || strcmp(a, "-m") == 0)
      model_dir = v;
    else if (strcmp(a, "--batch") == 0)
      ok = parse_int(a, v, 1, 1 << 16, &batch);
    else if (strcmp(a, "--seq") == 0)
      ok = parse_int(a, v, 1, 1 << 16, &seq);
    else if (strcmp(a, "--budget-seconds") == 0)
      ok = parse_int(a, v, 0, 1L << 30, &budget);
    else if (strcmp(a, "--max-candidates") == 0)
      ok = parse_int(a, v, 0, 1L << 30, &maxc);
    else if (strcmp(a, "--repeat") == 0)
      ok = parse_int(a, v, 1, 10000, &repeat);
    else {
      bc_cli_error("tune: unknown option '%s' (see bertcl tune --help)", a);
      return 2;
    }
    if (!ok) return 2;
    i++;
  }
  if (config && model_dir) {
    bc_cli_error("tune: give --config or --model, not both");
    return 2;
  }
  if (gemm && strcmp(gemm, "clblast") != 0 && strcmp(gemm, "auto") != 0) {
    bc_cli_error("tune: --gemm %s: bertcl tune searches CLBlast's parameters; the host BLAS "
                 "backend needs no tuning (use --gemm clblast)", gemm);
    return 2;
  }
  /* always CLBlast: its parameters are what is searched, whatever "auto" picks elsewhere */
  bertcl_ctx_options copt = {.device = device, .profiling = 1, .gemm = "clblast"};
  bertcl_ctx *ctx = NULL;
  if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    bc_cli_error("tune: %s", bertcl_last_error(NULL));
    return 1;
  }
  int rc = 1;
  bertcl_model *model = NULL;
  const bertcl_device_info *d = bertcl_ctx_device(ctx);
  printf("device: %s (%s, driver %s), CLBlast %s\n", d->name, d->platform_name,
         d->driver_version, bc_clblast_version());
  if (show) {
    bc_tuning_set_auto(0);
    int st = bc_tuning_apply_stored(ctx);
    bc_tuning_status ts;
    bc_tuning_status_get(ctx, &ts);
    char desc[1024];
    bc_gemm_params_str(&ts.params, desc, sizeof desc);
    printf("state: %s\nfile: %s\n", bc_tuning_state_name(ts.state), ts.path);
    if (st != BERTCL_OK) {
      printf("reason: %s\n", ts.reason);
    } else {
      printf("tuned for: %s batch %d seq %d on %s; %d candidates\n", ts.meta.config,
             ts.meta.batch, ts.meta.seq, ts.meta.date, ts.meta.evaluated);
      printf("GEMM time per layer: defaults %.3f ms, stored %.3f ms\nparameters: %s\n",
             ts.meta.baseline_ms, ts.meta.best_ms, desc);
    }
    rc = (st == BERTCL_OK || ts.state == BC_TUNING_NONE) ? 0 : 1;
    goto done;
  }
  bc_config cfg;
  const char *name = config ? config : "base";
  bc_err err = {0};
  if (model_dir) {
    if (bertcl_model_load(&model, model_dir) != BERTCL_OK) {
      bc_cli_error("tune: %s", bertcl_last_error(NULL));
      goto done;
    }
    cfg = *bc_model_config(model);
    name = model_dir;
  } else if (bc_random_config(&err, name, &cfg) != BERTCL_OK) {
    bc_cli_error("tune: %s", err.msg);
    rc = 2;
    goto done;
  }
  if (seq > cfg.max_position) seq = cfg.max_position;
  bc_tune_opts o = {.config = name, .cfg = &cfg, .batch = (int)batch, .seq = (int)seq,
                    .budget_s = (double)budget, .max_candidates = (int)maxc,
                    .repeat = (int)repeat, .restart = restart, .log = log_line};
  bc_tune_result r;
  if (bc_tune(ctx, &o, &r) != BERTCL_OK) {
    bc_cli_error("tune: %s", bertcl_last_error(ctx));
    goto done;
  }
  char desc[1024];
  bc_gemm_params_str(&r.best, desc, sizeof desc);
  printf("measured %d candidates now (%d rejected), %d in all%s; %d left\n", r.evaluated_now,
         r.rejected_now, r.evaluated_total, r.resumed ? " (resumed)" : "", r.remaining);
  if (r.best_ms > 0)
    printf("GEMM time per layer: defaults %.3f ms, best %.3f ms (%.3fx) with %s\n", r.baseline_ms,
           r.best_ms, r.baseline_ms / r.best_ms, desc);
  else
    printf("GEMM time per layer: defaults %.3f ms; no candidate measured yet\n", r.baseline_ms);
  bc_tuning_meta meta;
  bc_gemm_params stored;
  if (bc_tuning_load(ctx, r.params_path, &stored, &meta) != BERTCL_OK) {
    bc_cli_error("tune: %s", bertcl_last_error(ctx));
    goto done;
  }
  bc_gemm_params_str(&stored, desc, sizeof desc);
  printf("stored: %s\n  %s\nprogress: %s%s\n", r.params_path, desc, r.progress_path,
         r.complete ? " (search complete)" : "");
  rc = 0;
done:
  bertcl_model_free(model);
  bertcl_ctx_free(ctx);
  return rc;
}
