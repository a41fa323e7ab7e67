/* bertcl merge: joins the shards of an extraction job into one file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "job/job.h"

void bc_cmd_merge_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl merge JOB_DIR OUTPUT\n\n"
          "Joins the shards of a bertcl extract job directory into OUTPUT, in input order:\n"
          "  OUTPUT.safetensors  every output (ragged token/word offsets rebased), the default\n"
          "  OUTPUT.npy          one sentence-feature output\n"
          "  OUTPUT.jsonl        one JSON object per input row (null for a bad line)\n"
          "JOB_DIR holds manifest.json, or manifest-K-of-N.json from N 'extract --shard K/N'\n"
          "processes (all N are needed). Every job must be complete and every shard must match\n"
          "its checksum; the output is written to a temporary file and renamed.\n");
}

int bc_cmd_merge(int argc, char **argv) {
  const char *dir = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1]) {
      bc_cli_error("merge: unknown option '%s' (see bertcl merge --help)", argv[i]);
      return 2;
    }
    if (!dir)
      dir = argv[i];
    else if (!out)
      out = argv[i];
    else {
      bc_cli_error("merge: too many arguments (JOB_DIR OUTPUT)");
      return 2;
    }
  }
  if (!dir || !out) {
    bc_cli_error("merge: JOB_DIR and OUTPUT are required (see bertcl merge --help)");
    return 2;
  }
  bc_err err = {0};
  uint64_t rows = 0;
  if (bc_job_merge(&err, dir, out, BC_MERGE_AUTO, &rows) != BERTCL_OK) {
    bc_cli_error("%s", err.msg);
    return 1;
  }
  fprintf(stderr, "bertcl: wrote %s (%llu rows)\n", out, (unsigned long long)rows);
  return 0;
}
