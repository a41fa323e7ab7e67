/* The bertcl command-line program: one file per subcommand, a table in main.c. */
#ifndef BC_CLI_H
#define BC_CLI_H

#include <stdio.h>

#include "bertcl.h"

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
  void (*usage)(FILE *out);
} bc_cli_command;

/* Prints "bertcl: " + message to stderr. */
void bc_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when argv[i] is -h or --help. */
int bc_cli_is_help(const char *arg);
/* An integer >= lo / a number >= lo, the whole string; 0 on success, -1 otherwise. */
int bc_cli_num_l(const char *v, long lo, long *out);
int bc_cli_num_f(const char *v, double lo, double *out);
/* Loads model_dir's weights and tokenizer, then creates a context on device with gemm (NULL:
 * the defaults); 0, or -1 with the error printed. Either way bc_cli_close releases what was
 * made (the pointers start NULL). */
int bc_cli_open(const char *model_dir, const char *device, const char *gemm,
                bertcl_model **model, bertcl_tokenizer **tok, bertcl_ctx **ctx);
void bc_cli_close(bertcl_ctx *ctx, bertcl_tokenizer *tok, bertcl_model *model);

int bc_cmd_devices(int argc, char **argv);
void bc_cmd_devices_usage(FILE *out);
int bc_cmd_tokenize(int argc, char **argv);
void bc_cmd_tokenize_usage(FILE *out);
/* The tokenizer's components, one a line (bertcl tokenize --pipeline, bertcl info). */
void bc_cli_print_pipeline(FILE *out, const bertcl_tokenizer *tok);
int bc_cmd_extract(int argc, char **argv);
void bc_cmd_extract_usage(FILE *out);
int bc_cmd_merge(int argc, char **argv);
void bc_cmd_merge_usage(FILE *out);
int bc_cmd_info(int argc, char **argv);
void bc_cmd_info_usage(FILE *out);
int bc_cmd_bench(int argc, char **argv);
void bc_cmd_bench_usage(FILE *out);
int bc_cmd_tune(int argc, char **argv);
void bc_cmd_tune_usage(FILE *out);
int bc_cmd_finetune(int argc, char **argv);
void bc_cmd_finetune_usage(FILE *out);
int bc_cmd_probe(int argc, char **argv);
void bc_cmd_probe_usage(FILE *out);
int bc_cmd_predict(int argc, char **argv);
void bc_cmd_predict_usage(FILE *out);

#endif
