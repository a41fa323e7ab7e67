/* Batch extraction jobs over large corpora (bertcl extract, bertcl merge).
 *
 * reader.c   streaming input (plain lines, JSONL, TSV column), a deterministic byte-range 1/N
 *            split (--shard K/N), a running FNV-1a hash of every byte read, the bad-line policy
 * bucket.c   length bucketing: items sorted by token count inside a window, batches filled to a
 *            token budget, and the permutation that puts results back in input order
 * files.c    atomic streaming files (temp + fsync + rename) and the safetensors layout both shard
 *            files and merged files use; checksums
 * manifest.c manifest.json: input, model, options, shards (row range, checksum, input hash)
 * run.c      the pipeline: reader + tokenizer threads -> device thread (pinned readback slots)
 *            -> writer thread (order restoration, stitching, shards, manifest)
 * merge.c    joins the shards of one or N manifests into one safetensors / npy / jsonl file
 * lock.c     one process per job: an flock()ed lock file naming its holder
 *
 * Everything returns a bertcl status and leaves its message in a bc_err; nothing exits. */
#ifndef BC_JOB_H
#define BC_JOB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common.h"
#include "io/durable.h"

/* ---- reader ----------------------------------------------------------------------------- */

typedef enum { BC_IN_PLAIN = 0, BC_IN_JSONL = 1, BC_IN_TSV = 2 } bc_input_kind;

/* Why a line gave no text. Such a row is kept (NaN pooled features, no tokens) unless the job
 * is --strict, so row i of every output is always input record i. */
typedef enum {
  BC_BAD_NONE = 0,
  BC_BAD_UTF8 = 1,   /* invalid UTF-8 in the text (or the pair text) */
  BC_BAD_JSON = 2,   /* a JSONL line that is not an object with a "text" string */
  BC_BAD_COLUMN = 3, /* a TSV line without the requested column */
  BC_BAD_NUL = 4     /* a NUL byte inside a plain or TSV line */
} bc_bad_kind;

const char *bc_bad_kind_str(int kind);

typedef struct {
  char *text, *pair; /* malloc'd, NULL when bad (pair NULL when absent) */
  int bad;           /* bc_bad_kind */
  size_t bad_at;     /* byte offset inside the line of the first invalid UTF-8 byte */
  uint64_t lineno;   /* 1-based line number in the file */
} bc_record;

void bc_record_clear(bc_record *r);

typedef struct bc_reader bc_reader;

/* Opens path ("-" = stdin, not with shard_n > 1). kind BC_IN_TSV needs column: a 0-based index
 * or a header name (then the first line of the file is the header). shard_n > 1 restricts the
 * records to those whose line starts in bytes [size*k/n, size*(k+1)/n): a deterministic,
 * contiguous split that needs no counting pass, and N readers cover every line exactly once. */
int bc_reader_open(bc_err *err, const char *path, bc_input_kind kind, const char *column,
                   int shard_k, int shard_n, bc_reader **out);
/* The same over len bytes in memory (fuzzers, tests); data must outlive the reader. name is
 * used in messages. */
int bc_reader_open_mem(bc_err *err, const char *name, const void *data, size_t len,
                       bc_input_kind kind, const char *column, int shard_k, int shard_n,
                       bc_reader **out);
void bc_reader_close(bc_reader *r);
/* A reader over n texts in memory (pairs NULL, or pairs[i] NULL or "" for a single text), for
 * bertcl_extract: each is a record as a plain line would be (copied; invalid UTF-8 in the text or
 * its pair makes a bad record), line numbers count texts from 1, offsets and the hash count
 * their bytes. The arrays must outlive the reader. */
int bc_reader_open_texts(bc_err *err, const char *const *texts, const char *const *pairs, size_t n,
                         bc_reader **out);
/* Next record: 1, 0 at the end of the range, negative on a read error. */
int bc_reader_next(bc_reader *r, bc_record *rec);
/* Skips n records without parsing them (still hashed); returns how many were skipped. */
int bc_reader_skip(bc_reader *r, uint64_t n, uint64_t *skipped);
/* File size (0 for stdin), first data byte and end of this reader's range, bytes consumed so
 * far (absolute offset), and the hash of every byte read (header included). */
uint64_t bc_reader_size(const bc_reader *r);
uint64_t bc_reader_range_start(const bc_reader *r);
uint64_t bc_reader_range_end(const bc_reader *r);
uint64_t bc_reader_offset(const bc_reader *r);
uint64_t bc_reader_hash(const bc_reader *r);

/* ---- bucketing -------------------------------------------------------------------------- */

typedef struct {
  size_t start, count; /* into order[] */
  int seq;             /* padded length T of the batch: the longest item in it */
} bc_bucket_batch;

typedef struct {
  size_t n;      /* items */
  size_t *order; /* (n) item indices, in the order the batches take them */
  bc_bucket_batch *batches;
  size_t nbatches;
} bc_bucket_plan;

/* Plans batches for n items of lengths lens[i] (tokens, > 0).
 * sort != 0: items are ordered by length (stable: ties keep input order) and each batch takes
 * as many consecutive items as fit count * longest <= max_tokens (at least one), at most
 * max_batch. sort == 0: input order, max_batch items per batch (max_tokens ignored). */
int bc_bucket_make(bc_err *err, const int *lens, size_t n, int sort, size_t max_tokens,
                   int max_batch, bc_bucket_plan *out);
void bc_bucket_free(bc_bucket_plan *p);

/* ---- files ------------------------------------------------------------------------------ */

/* FNV-1a 64 of a whole file, and its size. */
int bc_file_checksum(bc_err *err, const char *path, uint64_t *hash, uint64_t *size);

/* A safetensors tensor for the streaming writer: dtype "F32", "F16" or "I64". */
typedef struct {
  const char *name;
  const char *dtype;
  int ndim;
  uint64_t shape[2];
} bc_st_desc;

/* The safetensors header (8-byte length + JSON padded with spaces to a multiple of 8) for the
 * tensors in order, data laid out back to back. meta: nmeta key/value pairs (may be 0).
 * *hdr is malloc'd. */
int bc_st_header(bc_err *err, const bc_st_desc *t, size_t n, const char *const *meta_kv,
                 size_t nmeta, char **hdr, size_t *len);
size_t bc_dtype_size(const char *dtype);

/* ---- manifest --------------------------------------------------------------------------- */

#define BC_MANIFEST_FORMAT "bertcl-job-1"

/* Manifest file name inside an output directory: manifest.json, or manifest-K-of-N.json for
 * one of N --shard processes. Shard files: shard-00000.safetensors / shard-K-of-N-00000.... */
void bc_manifest_name(char *out, size_t n, int shard_k, int shard_n);
void bc_shard_file_name(char *out, size_t n, int shard_k, int shard_n, size_t index);

/* Loads a manifest (checks its format tag); _parse: from len bytes of text, name for messages. */
int bc_manifest_load(bc_err *err, const char *path, json_t **out);
int bc_manifest_parse(bc_err *err, const char *name, const char *text, size_t len, json_t **out);
/* Writes a manifest atomically. */
int bc_manifest_save(bc_err *err, const char *path, const json_t *m);
/* Compares what a resumed job would do with what the manifest recorded: input path and size,
 * model, options. On a difference returns BERTCL_ERR_INVALID_ARG naming every differing key
 * with both values. */
int bc_manifest_check(bc_err *err, const json_t *manifest, const json_t *input, const json_t *model,
                      const json_t *options);

/* safetensors __metadata__ of shard and merged files, from a manifest (model, pooling, layers,
 * combine, dtype, normalize, generator): kv gets up to 7 key/value pairs pointing into m;
 * returns the number of pairs. No row numbers: merged bytes never depend on the split. */
int bc_job_meta(const json_t *m, const char **kv);

/* ---- lock ------------------------------------------------------------------------------- */

/* One process per job: bc_job_run holds an exclusive flock() on a lock file beside the
 * manifest (manifest.json.lock, manifest-K-of-N.json.lock) for its whole run, holding "pid P on
 * host H since T". A second run on the same job (same directory, same --shard K/N) is refused
 * with BERTCL_ERR_BUSY naming the holder. The kernel releases the lock when the holder dies, so
 * a killed job can be resumed at once; a clean finish removes the file. */
typedef struct {
  int fd;
  char path[4200];
} bc_job_lock_t;

void bc_lock_file_name(char *out, size_t n, int shard_k, int shard_n);
int bc_job_lock(bc_err *err, const char *dir, int shard_k, int shard_n, bc_job_lock_t *lock);
/* Removes the file and drops the lock; a no-op when not held (fd -1). */
void bc_job_unlock(bc_job_lock_t *lock);

/* ---- the job ---------------------------------------------------------------------------- */

enum { BC_JOB_CLS = 0, BC_JOB_MEAN, BC_JOB_MAX, BC_JOB_POOLER, BC_JOB_NPOOL };
extern const char *const bc_job_pool_names[BC_JOB_NPOOL];

typedef struct {
  /* in memory (bc_job_run_mem): texts[ntexts] (pairs may be NULL) instead of input; model_dir,
   * input, outdir, column, shard_*, resume and fail_after_shards are not used */
  const char *const *texts, *const *pairs;
  size_t ntexts;
  const char *model_dir, *input, *outdir, *column;
  bc_input_kind input_kind;
  int want[BC_JOB_NPOOL];
  int layers[64], nlayers;
  int combine, normalize;
  int tokens, words; /* words: 0 none, 1 first, 2 mean */
  int max_len;       /* tokens per sequence (resolved, > 2) */
  int stride;        /* 0 = truncate; > 0: windows overlapping by `stride` tokens */
  int f16;           /* --dtype f16 */
  size_t shard_rows, window, max_tokens;
  int max_batch, bucket;
  int shard_k, shard_n;
  int resume, strict, quiet, threads;
  int progress_tty;      /* progress as a bar (1) or a line every few seconds (0) */
  double progress_every; /* seconds between plain progress lines */
  int fail_after_shards; /* test hook: stop hard (as a kill) after this many shards, 0 = off */
} bc_job_opts;

typedef struct {
  uint64_t rows, tokens, truncated, bad, windows_split, batches, shards;
  uint64_t readback_bytes; /* features read back from the device (halves with --dtype f16) */
  double seconds;
} bc_job_stats;

struct bertcl_ctx;
struct bertcl_model;
struct bertcl_tokenizer;
struct bc_encoder;

/* Runs (or, with opts->resume, continues) a job into opts->outdir. The model, tokenizer,
 * context and encoder belong to the caller. */
int bc_job_run(bc_err *err, const bc_job_opts *opts, const struct bertcl_model *model,
               const struct bertcl_tokenizer *tok, struct bertcl_ctx *ctx, struct bc_encoder *enc,
               bc_job_stats *stats);

/* The features of a job run in memory: what its shards would hold, for all rows at once.
 * pooled[k] (rows, poolw[k]) for every output k asked for (NULL otherwise); tokens (ntokens,
 * width) and words (nwords, width) with int64 offsets (rows + 1): row i owns
 * [offsets[i], offsets[i+1]). Values are floats (with f16: the halves, widened exactly). */
typedef struct {
  size_t rows;
  int width, poolw[BC_JOB_NPOOL];
  float *pooled[BC_JOB_NPOOL];
  float *tokens, *words;
  int64_t *tok_off, *word_off;
  size_t ntokens, nwords;
} bc_job_mem;

/* Runs the pipeline of bc_job_run over opts->texts and keeps everything in *out (no files, no
 * manifest): the features are bit for bit those a job over the same texts writes. */
int bc_job_run_mem(bc_err *err, const bc_job_opts *opts, const struct bertcl_tokenizer *tok,
                   struct bertcl_ctx *ctx, struct bc_encoder *enc, bc_job_stats *stats,
                   bc_job_mem *out);
void bc_job_mem_free(bc_job_mem *m);

/* Joins the shards listed by every manifest in dir (manifest.json, or manifest-K-of-N.json
 * for K = 0..N-1) into out, in `format`; BC_MERGE_AUTO goes by out's extension: .npy (one
 * dense output), .jsonl, else safetensors. Every shard's checksum is verified; incomplete jobs
 * or mismatched manifests are refused. */
typedef enum {
  BC_MERGE_AUTO = -1,
  BC_MERGE_SAFETENSORS = 0,
  BC_MERGE_NPY = 1,
  BC_MERGE_JSONL = 2
} bc_merge_format;
int bc_job_merge(bc_err *err, const char *dir, const char *out, bc_merge_format format,
                 uint64_t *rows);

#endif
