/* bertcl: command-line entry point and subcommand table. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

static const bc_cli_command commands[] = {
    {"devices", "list OpenCL platforms and devices, and which one is the default", bc_cmd_devices,
     bc_cmd_devices_usage},
    {"tokenize", "tokenize text as Hugging Face's BertTokenizerFast (JSONL out)", bc_cmd_tokenize,
     bc_cmd_tokenize_usage},
    {"extract", "sentence, token, word and per-layer features of texts", bc_cmd_extract,
     bc_cmd_extract_usage},
    {"merge", "join the shards of an extract job into one file", bc_cmd_merge,
     bc_cmd_merge_usage},
    {"info", "validate a model directory and show its configuration", bc_cmd_info,
     bc_cmd_info_usage},
    {"bench", "measure a device: bandwidth, GEMM, encoder throughput (table and JSON)",
     bc_cmd_bench, bc_cmd_bench_usage},
    {"tune", "tune CLBlast's GEMM kernels for a device; later runs use the result", bc_cmd_tune,
     bc_cmd_tune_usage},
    {"finetune", "fine-tune a classifier (encoder + head) on labelled text; transformers loads it",
     bc_cmd_finetune, bc_cmd_finetune_usage},
    {"predict", "labels and probabilities from a fine-tuned classifier or a probe",
     bc_cmd_predict, bc_cmd_predict_usage},
    {"probe", "which layer and pooling serve a task: a linear probe per layer, a table and a plot",
     bc_cmd_probe, bc_cmd_probe_usage},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

void bc_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bertcl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int bc_cli_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int bc_cli_open(const char *model_dir, const char *device, const char *gemm,
                bertcl_model **model, bertcl_tokenizer **tok, bertcl_ctx **ctx) {
  bertcl_ctx_options copt = {.device = device, .gemm = gemm};
  if (bertcl_model_load(model, model_dir) != BERTCL_OK ||
      bertcl_tokenizer_load(tok, model_dir) != BERTCL_OK ||
      bertcl_ctx_create(ctx, &copt) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    return -1;
  }
  return 0;
}

void bc_cli_close(bertcl_ctx *ctx, bertcl_tokenizer *tok, bertcl_model *model) {
  bertcl_ctx_free(ctx);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
}

static void usage(FILE *out) {
  fprintf(out,
          "bertcl %s: BERT-family encoders on any OpenCL device\n\n"
          "usage: bertcl <command> [options]\n"
          "       bertcl help <command>   (or bertcl <command> --help)\n"
          "       bertcl --version\n\ncommands:\n",
          bertcl_version());
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out,
          "\nenvironment:\n"
          "  BERTCL_DEVICE      device selector used when --device is not given\n"
          "                     (\"0:1\", \"gpu\", \"cpu\", \"nvidia\", \"pocl\", ...)\n"
          "  BERTCL_CACHE_DIR   compiled-kernel cache directory (\"off\" disables it)\n"
          "  BERTCL_TUNING      \"off\": ignore the GEMM parameters stored by bertcl tune\n"
          "  BERTCL_KERNEL_DIR  load OpenCL sources from this directory instead of the\n"
          "                     copies built into the binary (for kernel development)\n");
}

static const bc_cli_command *find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (bc_cli_is_help(cmd)) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("bertcl %s\n", bertcl_version());
    return 0;
  }
  if (strcmp(cmd, "help") == 0) {
    if (argc < 3) {
      usage(stdout);
      return 0;
    }
    const bc_cli_command *c = find(argv[2]);
    if (!c) {
      bc_cli_error("unknown command '%s'; run 'bertcl help' for the list", argv[2]);
      return 2;
    }
    c->usage(stdout);
    return 0;
  }
  const bc_cli_command *c = find(cmd);
  if (!c) {
    bc_cli_error("unknown command '%s'; run 'bertcl help' for the list", cmd);
    return 2;
  }
  for (int i = 2; i < argc; i++)
    if (bc_cli_is_help(argv[i])) {
      c->usage(stdout);
      return 0;
    }
  return c->run(argc - 1, argv + 1);
}
