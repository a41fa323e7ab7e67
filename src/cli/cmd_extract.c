/* bertcl extract: sentence, token and word features from any layers, in one pass, streamed
 * through a batch job (src/job): bounded memory, length bucketing, pinned readback, shards, a
 * manifest, --resume, --shard K/N. One output file is the merge of the job's shards. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bertcl.h"
#include "cli.h"
#include "encoder/encoder.h"
#include "job/job.h"
#include "model/model.h"

void bc_cmd_extract_usage(FILE *out) {
  fprintf(
      out,
      "usage: bertcl extract -m MODEL_DIR -i INPUT -o OUTPUT [options]\n\n"
      "Runs the encoder over every text of INPUT and writes the features asked for.\n"
      "Row i of every output belongs to input record i (bad lines included, see below).\n\n"
      "output:\n"
      "  -o FILE.safetensors|FILE.npy|FILE.jsonl   one file (built from a job directory\n"
      "                      FILE.job/, removed on success; --resume continues it)\n"
      "  -o DIR              a job directory: shard-NNNNN.safetensors files and manifest.json\n"
      "                      (join them with bertcl merge DIR OUT)\n"
      "  --format F          npy, safetensors or jsonl: -o is one file of that format\n"
      "  --shard-rows N      rows per shard file (default 10000)\n"
      "  --resume            continue the job in the output directory: its manifest must\n"
      "                      match this input and these options; complete shards are kept.\n"
      "                      A run locks its job (manifest.json.lock): a second run on it\n"
      "                      is refused, naming the first's pid and host\n"
      "  --shard K/N         process only part K (0..N-1) of N of the input (a byte range,\n"
      "                      whole lines): N processes or array tasks cover it; bertcl merge\n"
      "                      joins their manifests (all N write into the same DIR)\n"
      "  --dtype f32|f16     stored value type (default f32); f16 is rounded on the device\n"
      "                      (nearest even), so half the bytes are read back and written\n"
      "input:\n"
      "  -i FILE             plain text (one text a line), JSONL ({\"text\": .., \"text_pair\": "
      "..})\n"
      "                      when FILE ends in .jsonl, TSV when --column is given; - = stdin\n"
      "  --column NAME|N     TSV column holding the text (name from the header line, or a\n"
      "                      0-based index; with a name the first line is the header)\n"
      "  --strict            stop at the first bad line; by default a line with invalid UTF-8,\n"
      "                      a NUL byte, a missing column or unparsable JSON is kept as a row\n"
      "                      of NaN sentence features and no tokens/words, with a warning and\n"
      "                      its row number in the manifest (bad_rows)\n"
      "features (several at once are written as separately named tensors):\n"
      "  --pool LIST         cls,mean,max,pooler or none (default: the model directory's\n"
      "                      sentence-transformers pooling, else cls)\n"
      "  --layers SPEC       last (default), all, -4: (last four), 0,6,12, 2:5; 0 = embeddings\n"
      "  --combine MODE      concat (default), mean or sum: how several layers are joined\n"
      "  --normalize         L2-normalise sentence vectors (default: on when the model\n"
      "                      directory has a Normalize module); --no-normalize turns it off\n"
      "  --tokens            also write every real token's vector (ragged: values + offsets)\n"
      "  --words first|mean  also write word vectors from WordPiece word ids\n"
      "  --max-len N         tokens per sequence (default: the model's maximum); longer texts\n"
      "                      are truncated and counted\n"
      "  --stride N          token/word features of long texts from overlapping windows of\n"
      "                      --max-len tokens, N tokens of overlap, each token taken from the\n"
      "                      window where it is most central (sentence features: first window;\n"
      "                      pairs of texts are truncated)\n"
      "run:\n"
      "  --device D          OpenCL device (see bertcl devices); default $BERTCL_DEVICE or\n"
      "                      the first GPU, else the first device\n"
      "  --gemm auto|clblast|blas  matrix products on a host BLAS (CPU devices; auto's\n"
      "                      choice there) or on CLBlast's kernels; default $BERTCL_GEMM\n"
      "  --batch-size N      most texts per batch (default 128); halved automatically when\n"
      "                      the device runs out of memory\n"
      "  --max-tokens N      token budget of a batch, padded (default 8192)\n"
      "  --window N          texts sorted by length together (default 10000)\n"
      "  --no-bucket         batches of --batch-size texts in input order (no sorting)\n"
      "  --threads N         tokenizer threads (default: half the CPUs, at most 4)\n"
      "  --quiet             no progress, warnings or summary on stderr\n");
}

/* ---- layer spec ------------------------------------------------------------------------- */

/* "last", "all", "-4:", "0,6,12", "2:5", "-1"; indices 0..L (0 = embeddings). */
static int parse_layers(const char *spec, int L, int *out, int *n) {
  *n = 0;
  if (!spec || !strcmp(spec, "last")) {
    out[(*n)++] = L;
    return 0;
  }
  if (!strcmp(spec, "all")) {
    for (int l = 0; l <= L; l++) out[(*n)++] = l;
    return 0;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *colon = strchr(tok, ':');
    if (colon) {
      *colon = '\0';
      int a = *tok ? atoi(tok) : 0, b = colon[1] ? atoi(colon + 1) : L + 1;
      if (a < 0) a += L + 1;
      if (b < 0) b += L + 1;
      if (a < 0 || b > L + 1 || a >= b) return -1;
      for (int l = a; l < b && *n < 64; l++) out[(*n)++] = l;
    } else {
      char *end;
      long v = strtol(tok, &end, 10);
      if (*end) return -1;
      if (v < 0) v += L + 1;
      if (v < 0 || v > L || *n >= 64) return -1;
      out[(*n)++] = (int)v;
    }
  }
  return *n > 0 ? 0 : -1;
}

/* ---- main ------------------------------------------------------------------------------- */

static int arg_value(int argc, char **argv, int *i, const char *name, const char **out) {
  size_t n = strlen(name);
  if (!strcmp(argv[*i], name)) {
    if (*i + 1 >= argc) {
      bc_cli_error("extract: %s needs a value", name);
      return -1;
    }
    *out = argv[++*i];
    return 1;
  }
  if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') {
    *out = argv[*i] + n + 1;
    return 1;
  }
  return 0;
}

typedef struct {
  const char *model, *input, *output, *device, *gemm, *column, *pool, *layers, *combine, *format,
      *words, *dtype, *shard;
  int normalize; /* -1 = model default */
  int tokens, quiet, resume, strict, no_bucket;
  long batch, max_len, stride, threads, max_tokens, window, shard_rows;
} opts;

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static int num_arg(const char *v, long lo, long *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || end == v || x < lo) return -1;
  *out = x;
  return 0;
}

/* Shard files in a job directory. */
static int count_shards(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strncmp(de->d_name, "shard-", 6) == 0 && !strstr(de->d_name, ".tmp")) n++;
  closedir(d);
  return n;
}

/* Removes a finished job directory: the files its manifest names, the manifest, the dir. */
static void remove_job_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    if (strncmp(n, "shard-", 6) == 0 || strncmp(n, "manifest", 8) == 0) {
      char p[8192];
      snprintf(p, sizeof p, "%s/%s", dir, n);
      unlink(p);
    }
  }
  closedir(d);
  rmdir(dir);
}

int bc_cmd_extract(int argc, char **argv) {
  opts o = {.normalize = -1,
            .batch = 128,
            .combine = "concat",
            .max_tokens = 8192,
            .window = 10000,
            .shard_rows = 10000,
            .threads = 0,
            .dtype = "f32"};
  const char *v = NULL;
  for (int i = 1; i < argc; i++) {
    int r;
#define OPT(flag, field)                                \
  if ((r = arg_value(argc, argv, &i, flag, &v)) != 0) { \
    if (r < 0) return 2;                                \
    o.field = v;                                        \
    continue;                                           \
  }
#define NUM(flag, field, lo)                                                                       \
  if ((r = arg_value(argc, argv, &i, flag, &v)) != 0) {                                            \
    if (r < 0 || num_arg(v, lo, &o.field) != 0)                                                    \
      return bc_cli_error("extract: bad %s '%s' (an integer >= %d)", flag, r < 0 ? "" : v, lo), 2; \
    continue;                                                                                      \
  }
    // clang-format off
    OPT("-m", model) OPT("--model", model) OPT("-i", input) OPT("--input", input)
    OPT("-o", output) OPT("--output", output) OPT("--device", device) OPT("--column", column)
    OPT("--gemm", gemm)
    OPT("--pool", pool) OPT("--layers", layers) OPT("--combine", combine)
    OPT("--format", format) OPT("--words", words) OPT("--dtype", dtype) OPT("--shard", shard)
    NUM("--batch-size", batch, 1) NUM("--max-len", max_len, 3) NUM("--stride", stride, 1)
    NUM("--threads", threads, 1) NUM("--max-tokens", max_tokens, 1) NUM("--window", window, 1)
    NUM("--shard-rows", shard_rows, 1)
#undef OPT
#undef NUM
    if (!strcmp(argv[i], "--normalize")) o.normalize = 1;
    else if (!strcmp(argv[i], "--no-normalize")) o.normalize = 0;
    else if (!strcmp(argv[i], "--tokens")) o.tokens = 1;
    else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) o.quiet = 1;
    else if (!strcmp(argv[i], "--resume")) o.resume = 1;
    else if (!strcmp(argv[i], "--strict")) o.strict = 1;
    else if (!strcmp(argv[i], "--no-bucket")) o.no_bucket = 1;
    else {
      bc_cli_error("extract: unknown option '%s' (see bertcl extract --help)", argv[i]);
      return 2;
    }
    // clang-format on
  }
  if (!o.model || !o.input || !o.output) {
    bc_cli_error(
        "extract: -m MODEL_DIR, -i INPUT and -o OUTPUT are required "
        "(see bertcl extract --help)");
    return 2;
  }
  bc_job_opts jo = {0};
  jo.model_dir = o.model;
  jo.input = o.input;
  jo.column = o.column;
  jo.input_kind = o.column ? BC_IN_TSV : ends_with(o.input, ".jsonl") ? BC_IN_JSONL : BC_IN_PLAIN;
  jo.combine = !strcmp(o.combine, "concat") ? BC_COMBINE_CONCAT
               : !strcmp(o.combine, "mean") ? BC_COMBINE_MEAN
               : !strcmp(o.combine, "sum")  ? BC_COMBINE_SUM
                                            : -1;
  if (jo.combine < 0) return bc_cli_error("extract: --combine must be concat, mean or sum"), 2;
  if (o.words) {
    if (!strcmp(o.words, "first"))
      jo.words = 1;
    else if (!strcmp(o.words, "mean"))
      jo.words = 2;
    else
      return bc_cli_error("extract: --words must be first or mean"), 2;
  }
  if (strcmp(o.dtype, "f32") && strcmp(o.dtype, "f16"))
    return bc_cli_error("extract: --dtype must be f32 or f16"), 2;
  jo.f16 = !strcmp(o.dtype, "f16");
  /* one file (by --format or extension) or a job directory */
  int fmt = -1; /* 0 safetensors, 1 npy, 2 jsonl */
  if (o.format) {
    fmt = !strcmp(o.format, "safetensors") ? 0
          : !strcmp(o.format, "npy")       ? 1
          : !strcmp(o.format, "jsonl")     ? 2
                                           : -1;
    if (fmt < 0) return bc_cli_error("extract: --format must be npy, safetensors or jsonl"), 2;
  } else if (ends_with(o.output, ".safetensors")) {
    fmt = 0;
  } else if (ends_with(o.output, ".npy")) {
    fmt = 1;
  } else if (ends_with(o.output, ".jsonl")) {
    fmt = 2;
  }
  jo.shard_k = 0;
  jo.shard_n = 1;
  if (o.shard) {
    int used = 0;
    if (sscanf(o.shard, "%d/%d%n", &jo.shard_k, &jo.shard_n, &used) != 2 || o.shard[used] ||
        jo.shard_n < 1 || jo.shard_k < 0 || jo.shard_k >= jo.shard_n)
      return bc_cli_error("extract: --shard must be K/N with 0 <= K < N (e.g. 3/8)"), 2;
    if (fmt >= 0)
      return bc_cli_error(
                 "extract: with --shard K/N, -o is the job directory the N parts "
                 "share (then bertcl merge DIR OUT)"),
             2;
  }
  jo.tokens = o.tokens;
  jo.stride = (int)o.stride;
  jo.max_batch = (int)(o.batch > 1 << 20 ? 1 << 20 : o.batch);
  jo.max_tokens = (size_t)o.max_tokens;
  jo.window = (size_t)o.window;
  jo.shard_rows = (size_t)o.shard_rows;
  jo.bucket = !o.no_bucket;
  jo.resume = o.resume;
  jo.strict = o.strict;
  jo.quiet = o.quiet;
  if (o.quiet) setenv("BERTCL_QUIET", "1", 1); /* the library's first-run compile notice too */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  jo.threads = o.threads ? (int)(o.threads > 64 ? 64 : o.threads)
                         : (int)(ncpu / 2 < 1   ? 1
                                 : ncpu / 2 > 4 ? 4
                                                : ncpu / 2);
  jo.progress_tty = isatty(2);
  const char *every = getenv("BERTCL_PROGRESS_SECONDS");
  jo.progress_every = every ? atof(every) : 5.0;
  if (jo.stride && !(o.tokens || jo.words))
    return bc_cli_error("extract: --stride windows are for --tokens / --words features"), 2;

  int rc = 1;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_ctx *ctx = NULL;
  bc_encoder *enc = NULL;
  char *jobdir = NULL;
  if (bertcl_model_load(&model, o.model) != BERTCL_OK ||
      bertcl_tokenizer_load(&tok, o.model) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  const bc_config *cfg = bc_model_config(model);
  int L = cfg->num_layers;
  if (o.pool) {
    if (strcmp(o.pool, "none") != 0) {
      char buf[128];
      snprintf(buf, sizeof buf, "%s", o.pool);
      for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) {
        int k = 0;
        while (k < BC_JOB_NPOOL && strcmp(p, bc_job_pool_names[k])) k++;
        if (k == BC_JOB_NPOOL) {
          bc_cli_error("extract: unknown pooling '%s' (cls, mean, max, pooler, none)", p);
          rc = 2;
          goto done;
        }
        jo.want[k] = 1;
      }
    }
  } else if (cfg->st_pooling) {
    const int modes[BC_JOB_NPOOL] = {BC_POOL_CLS, BC_POOL_MEAN, BC_POOL_MAX, BC_POOL_POOLER};
    for (int k = 0; k < BC_JOB_NPOOL; k++) jo.want[k] = (cfg->st_pooling & modes[k]) != 0;
  } else {
    jo.want[BC_JOB_CLS] = 1;
  }
  jo.normalize = o.normalize >= 0 ? o.normalize : cfg->st_normalize;
  if (parse_layers(o.layers, L, jo.layers, &jo.nlayers) != 0) {
    bc_cli_error("extract: bad --layers '%s' (last, all, -4:, 0,6,12; 0..%d)", o.layers, L);
    rc = 2;
    goto done;
  }
  int nout = jo.want[0] + jo.want[1] + jo.want[2] + jo.want[3] + jo.tokens + (jo.words > 0);
  if (nout == 0) {
    bc_cli_error("extract: nothing to extract (--pool none without --tokens or --words)");
    rc = 2;
    goto done;
  }
  if (fmt == 1 && (nout != 1 || jo.tokens || jo.words)) {
    bc_cli_error(
        "extract: --format npy holds one array of sentence features; ask for one "
        "output or use --format safetensors (token and word features are ragged)");
    rc = 2;
    goto done;
  }
  size_t tmax = bertcl_tokenizer_max_length(tok);
  long ml =
      o.max_len ? o.max_len : (tmax < (size_t)cfg->max_position ? (long)tmax : cfg->max_position);
  if (ml > cfg->max_position) {
    bc_cli_error("extract: --max-len %ld exceeds the model's %d positions", ml, cfg->max_position);
    rc = 2;
    goto done;
  }
  jo.max_len = (int)ml;
  if (jo.stride && jo.stride > jo.max_len - 3) {
    bc_cli_error("extract: --stride %d must be below --max-len minus 2 (%d)", jo.stride,
                 jo.max_len - 2);
    rc = 2;
    goto done;
  }
  if (fmt >= 0) {
    size_t n = strlen(o.output) + 8;
    jobdir = malloc(n);
    if (!jobdir) goto done;
    snprintf(jobdir, n, "%s.job", o.output);
    jo.outdir = jobdir;
  } else {
    jo.outdir = o.output;
  }
  bertcl_ctx_options copt = {.device = o.device, .gemm = o.gemm};
  if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  if (bc_encoder_create(ctx, model, &enc) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  if (!o.quiet)
    fprintf(stderr, "bertcl: %s -> %s on %s (gemm %s), layers %d..%d (%d), max %d tokens, %s\n",
            o.input, o.output, bertcl_ctx_device(ctx)->name, bertcl_ctx_gemm(ctx), jo.layers[0],
            jo.layers[jo.nlayers - 1],
            jo.nlayers, jo.max_len,
            jo.bucket ? "length-bucketed batches" : "batches in input order");
  bc_err err = {0};
  bc_job_stats stats;
  int st = bc_job_run(&err, &jo, model, tok, ctx, enc, &stats);
  if (st != BERTCL_OK) {
    bc_cli_error("%s", err.msg);
    /* one-file mode: a job with complete shards is kept for --resume; else nothing is left */
    if (fmt >= 0 && access(jobdir, F_OK) == 0) {
      if (count_shards(jobdir) == 0)
        remove_job_dir(jobdir);
      else if (!o.quiet)
        fprintf(stderr,
                "bertcl: the partial job is kept in %s; rerun with --resume to "
                "continue\n",
                jobdir);
    }
    goto done;
  }
  if (!o.quiet) {
    double t = stats.seconds > 1e-9 ? stats.seconds : 1e-9;
    fprintf(stderr,
            "bertcl: %llu rows, %llu tokens, %llu truncated to %d tokens%s, %llu bad lines, "
            "%llu batches, %.2f s: %.1f rows/s, %.0f tokens/s, %.1f MB read back on %s, gemm %s\n",
            (unsigned long long)stats.rows, (unsigned long long)stats.tokens,
            (unsigned long long)stats.truncated, jo.max_len,
            jo.stride ? " (token features from stride windows)" : "", (unsigned long long)stats.bad,
            (unsigned long long)stats.batches, stats.seconds, stats.rows / t, stats.tokens / t,
            stats.readback_bytes / 1e6, bertcl_ctx_device(ctx)->name, bertcl_ctx_gemm(ctx));
  }
  if (fmt >= 0) {
    /* one file: the merge of the job's shards, in the requested format */
    uint64_t rows = 0;
    st = bc_job_merge(&err, jobdir, o.output, (bc_merge_format)fmt, &rows);
    if (st != BERTCL_OK) {
      bc_cli_error("%s", err.msg);
      goto done;
    }
    remove_job_dir(jobdir);
    if (!o.quiet)
      fprintf(stderr, "bertcl: wrote %s (%llu rows)\n", o.output, (unsigned long long)rows);
  } else if (!o.quiet) {
    fprintf(stderr,
            "bertcl: job directory %s (%llu shards written by this run); join with: "
            "bertcl merge %s OUT.safetensors\n",
            o.output, (unsigned long long)stats.shards, o.output);
  }
  rc = 0;
done:
  free(jobdir);
  bc_encoder_free(enc);
  bertcl_ctx_free(ctx);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  return rc;
}
