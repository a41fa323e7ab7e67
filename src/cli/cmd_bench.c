/* bertcl bench: parses the options, runs bertcl_bench (src/bench) and prints its lines; the
 * JSON report to a file, and the comparison with an earlier one (bertcl_bench_compare). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"
#include "common.h"
#include "io/durable.h"

#define MAX_GRID BERTCL_BENCH_MAX_GRID

void bc_cmd_bench_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl bench [--device D|all] [--model DIR | --config base|large|minilm|tiny]\n"
          "                    [--batch 1,8,32,128] [--seq 128,512] [--json FILE]\n"
          "                    [--compare OLD.json] [--warmup N] [--repeat N] [--bw-mib N]\n"
          "                    [--finetune BxT|none] [--gemm auto|clblast|blas]\n\n"
          "Measures each device: its facts (name, driver, OpenCL and CLBlast versions, compute\n"
          "units, clock, memory), bandwidth (device copy; host to device and back, pageable\n"
          "and pinned), SGEMM (HGEMM where cl_khr_fp16 exists) on the encoder's own products\n"
          "with the theoretical peak where the device's facts give it, and the encoder's\n"
          "forward pass in sequences/s and tokens/s over the batch x sequence grid (random\n"
          "weights of the named configuration when no model is given). Kernel times come from\n"
          "OpenCL profiling events, pass times from the wall clock; after warm-up the median\n"
          "and spread (min, max, quartiles) of the repeats are reported, first calls (program\n"
          "builds, weight upload) apart. CLBlast's defaults are measured first, then the\n"
          "parameters stored by bertcl tune, side by side. Last, one fine-tuning step\n"
          "(BertForSequenceClassification with 2 labels: dropout 0.1, forward, loss,\n"
          "backward, clipping, AdamW) is timed on one batch shape. On a CPU device that can\n"
          "run the host BLAS, its backend is measured too, first, in the same run (GEMM per\n"
          "shape as %% of the fp32 peak, the forward pass, the fine-tuning step).\n\n"
          "options:\n"
          "  --device D|all     device selector, or every device (default: the default one)\n"
          "  --config NAME      base, large, minilm or tiny (default base)\n"
          "  --model DIR        a model directory instead (its weights, its configuration)\n"
          "  --batch LIST       batch sizes (default 1,8,32,128)\n"
          "  --seq LIST         sequence lengths (default 128,512; capped by the model)\n"
          "  --warmup N         untimed runs before timing (default 2)\n"
          "  --repeat N         timed runs (default 10)\n"
          "  --bw-mib N         bandwidth test size in MiB (default 64)\n"
          "  --finetune BxT     fine-tuning step shape (default 32x128, capped by the\n"
          "                     model's positions); none to skip it\n"
          "  --gemm G           auto (both backends where the host BLAS runs), clblast or blas\n"
          "  --json FILE        write every figure as JSON (schema: bench/bench.schema.json)\n"
          "  --compare OLD      print ratios against an earlier --json report\n");
}

static int parse_list(const char *opt, const char *s, int *out, int *n, int hi) {
  *n = 0;
  const char *p = s;
  while (*p) {
    char *end = NULL;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > hi || *n == MAX_GRID || (*end && *end != ',')) {
      bc_cli_error("bench: %s wants a comma-separated list of integers in [1, %d], got '%s'",
                   opt, hi, s);
      return 0;
    }
    out[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  }
  if (*n == 0) {
    bc_cli_error("bench: %s is empty", opt);
    return 0;
  }
  return 1;
}

/* INFO lines to standard output, warnings to standard error, as bertcl bench always printed. */
static int print_event(const bertcl_progress *p, void *user) {
  (void)user;
  if (p->event == BERTCL_EVENT_WARNING)
    fprintf(stderr, "bertcl: bench: %s\n", p->message);
  else
    printf("%s\n", p->message);
  return 0;
}

int bc_cmd_bench(int argc, char **argv) {
  const char *json_path = NULL, *compare_path = NULL;
  bertcl_bench_options bo;
  bertcl_bench_options_init(&bo);
  int batches[MAX_GRID], seqs[MAX_GRID];
  for (int i = 1; i < argc; i += 2) { /* every option takes a value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      bc_cli_error("bench: unknown option or missing value '%s' (see bertcl bench --help)", a);
      return 2;
    }
    long x = 0;
    char *end = NULL;
    if (strcmp(a, "--device") == 0) {
      bo.device = v;
    } else if (strcmp(a, "--gemm") == 0) {
      if (strcmp(v, "auto") && strcmp(v, "clblast") && strcmp(v, "blas")) {
        bc_cli_error("bench: --gemm takes auto, clblast or blas, not '%s'", v);
        return 2;
      }
      bo.gemm = v;
    } else if (strcmp(a, "--config") == 0) {
      bo.config = v;
    } else if (strcmp(a, "--model") == 0 || strcmp(a, "-m") == 0) {
      bo.model_dir = v;
    } else if (strcmp(a, "--batch") == 0) {
      if (!parse_list(a, v, batches, &bo.nbatches, 1 << 16)) return 2;
      bo.batches = batches;
    } else if (strcmp(a, "--seq") == 0) {
      if (!parse_list(a, v, seqs, &bo.nseqs, 1 << 16)) return 2;
      bo.seqs = seqs;
    } else if (strcmp(a, "--finetune") == 0) {
      char tail = 0;
      if (strcmp(v, "none") == 0) {
        bo.finetune_batch = 0;
      } else if (sscanf(v, "%dx%d%c", &bo.finetune_batch, &bo.finetune_seq, &tail) != 2 ||
                 bo.finetune_batch < 1 || bo.finetune_seq < 1 || bo.finetune_batch > 4096 ||
                 bo.finetune_seq > 65536) {
        bc_cli_error("bench: --finetune takes BxT (e.g. 32x128) or none, not '%s'", v);
        return 2;
      }
    } else if (strcmp(a, "--json") == 0) {
      json_path = v;
    } else if (strcmp(a, "--compare") == 0) {
      compare_path = v;
    } else if (strcmp(a, "--warmup") == 0 || strcmp(a, "--repeat") == 0 ||
               strcmp(a, "--bw-mib") == 0) {
      x = strtol(v, &end, 10);
      int lo = strcmp(a, "--warmup") == 0 ? 0 : 1;
      if (!*v || *end || x < lo || x > 100000) {
        bc_cli_error("bench: %s wants an integer >= %d, got '%s'", a, lo, v);
        return 2;
      }
      if (a[2] == 'w') bo.warmup = (int)x;
      else if (a[2] == 'r') bo.repeat = (int)x;
      else bo.bw_bytes = (size_t)x << 20;
    } else {
      bc_cli_error("bench: unknown option '%s' (see bertcl bench --help)", a);
      return 2;
    }
  }
  if (bo.config && bo.model_dir) {
    bc_cli_error("bench: give --config or --model, not both");
    return 2;
  }
  char cmd[2048] = "bertcl";
  for (int i = 0; i < argc; i++) {
    size_t o = strlen(cmd);
    snprintf(cmd + o, sizeof cmd - o, " %s", argv[i]);
  }
  bo.command = cmd;
  char *report = NULL;
  int st = bertcl_bench(&bo, print_event, NULL, &report);
  if (!report) { /* nothing measured: the options or the device list */
    bc_cli_error("bench: %s", bertcl_last_error(NULL));
    return st == BERTCL_ERR_INVALID_ARG ? 2 : 1;
  }
  int rc = st != BERTCL_OK ? 1 : 0; /* a failed device: already reported as a warning */
  if (json_path) {
    bc_err err = {0};
    if (bc_write_file_atomic(&err, json_path, report, strlen(report)) != BERTCL_OK) {
      bc_cli_error("bench: %s", err.msg);
      rc = 1;
    } else {
      printf("\nJSON report: %s\n", json_path);
    }
  }
  if (compare_path && bertcl_bench_compare(report, compare_path, print_event, NULL) != BERTCL_OK) {
    bc_cli_error("bench: --compare: %s", bertcl_last_error(NULL));
    rc = 1;
  }
  free(report);
  return rc;
}
