/* libFuzzer target over the files bertcl reads back: a job directory (manifest.json and its
 * shards, through bertcl merge: src/job/merge.c, files.c), a model folder's vocabulary
 * (vocab.txt, tokenizer_config.json, config.json through bertcl_tokenizer_load and the folder
 * checks of src/model/tokcheck.c) and a fine-tuning checkpoint (src/train/checkpoint.c).
 *
 * Input: byte 0 = what (bit 0 set: vocabulary folder; else bit 3 set: checkpoint, bits 4-5 its
 * size, 1/4/16/64 floats a tensor; else a job directory, bits 1-2: merge output
 * safetensors/npy/jsonl), then for the folders parts, each a u16 little-endian length and its
 * bytes (capped at what is left), the last part taking the rest:
 *   job:   manifest.json | shard-00000.safetensors | shard-00001.safetensors
 *   vocab: vocab.txt | tokenizer_config.json | config.json (an empty part: no such file)
 * and for a checkpoint the file's bytes (the run signature it must carry is "fuzz-run").
 * The files go to a private directory (under /dev/shm when it can be written). The harness
 * sets each shard's checksum and size in the manifest to those of the given shard bytes, so the
 * fuzzer reaches past the checksum into the shard and the merge.
 *
 * Invariants (a broken one traps): a merge that succeeds wrote an output its readers accept
 * (safetensors: our reader; jsonl: one JSON object a line); a tokenizer that loads emits only
 * ids that have a token, below its id bound and below config.json's vocab_size; a checkpoint
 * that loads has a step and best step in range and a best metric that is a number.
 *
 *   build-fuzz/tests/fuzz/fuzz_files -max_total_time=60 tests/fuzz/corpus_files
 */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bertcl.h"
#include "job/job.h"
#include "model/safetensors.h"
#include "model/tokcheck.h"
#include "train/checkpoint.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void check(int cond) {
  if (!cond) __builtin_trap();
}

static void cleanup(void) {
  if (!dir[0]) return;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz_files: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *bases[3] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
  for (int i = 0; i < 3 && !dir[0]; i++) {
    if (!bases[i] || access(bases[i], W_OK) != 0) continue;
    snprintf(dir, sizeof dir, "%s/bertcl-fuzz-XXXXXX", bases[i]);
    if (!mkdtemp(dir)) dir[0] = '\0';
  }
  if (!dir[0]) {
    fprintf(stderr, "fuzz_files: no writable temporary directory\n");
    exit(1);
  }
  atexit(cleanup);
  return 0;
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* Writes name (or removes it when data is NULL). */
static void put(const char *name, const void *data, size_t len) {
  char p[400];
  path_of(p, sizeof p, name);
  unlink(p);
  if (!data) return;
  FILE *f = fopen(p, "wb");
  check(f != NULL);
  if (len) check(fwrite(data, 1, len, f) == len);
  check(fclose(f) == 0);
}

/* Splits the input into parts. */
static size_t split(const uint8_t *d, size_t size, const uint8_t **part, size_t *plen, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i + 1 == n) {
      part[i] = d;
      plen[i] = size;
      return n;
    }
    if (size < 2) {
      part[i] = d;
      plen[i] = 0;
      continue;
    }
    size_t l = (size_t)d[0] | (size_t)d[1] << 8;
    d += 2;
    size -= 2;
    if (l > size) l = size;
    part[i] = d;
    plen[i] = l;
    d += l;
    size -= l;
  }
  return n;
}

/* ---- job directory ---- */

static void fuzz_job(uint8_t flags, const uint8_t *d, size_t size) {
  const uint8_t *part[3];
  size_t plen[3];
  split(d, size, part, plen, 3);
  static const char *const shard_names[2] = {"shard-00000.safetensors", "shard-00001.safetensors"};
  bc_err err;
  bc_err_clear(&err);
  /* the reader on the raw bytes, and the checks resume and merge make */
  json_t *m = NULL;
  if (bc_manifest_parse(&err, "manifest.json", (const char *)part[0], plen[0], &m) != BERTCL_OK)
    return;
  const char *kv[14];
  int nkv = bc_job_meta(m, kv);
  check(nkv >= 0 && nkv <= 7);
  for (int i = 0; i < 2 * nkv; i++) check(kv[i] != NULL);
  json_t *probe = json_pack("{s:s, s:i}", "path", "x", "size", 3);
  bc_manifest_check(&err, m, probe, probe, probe);
  json_decref(probe);
  /* the shards as files, their checksums patched into the manifest */
  for (int k = 0; k < 2; k++) put(shard_names[k], part[1 + k], plen[1 + k]);
  json_t *shards = json_object_get(m, "shards");
  for (size_t i = 0; i < json_array_size(shards); i++) {
    json_t *e = json_array_get(shards, i);
    const char *file = json_string_value(json_object_get(e, "file"));
    for (int k = 0; k < 2; k++)
      if (json_is_object(e) && file && strcmp(file, shard_names[k]) == 0) {
        char hx[17];
        snprintf(hx, sizeof hx, "%016llx",
                 (unsigned long long)bc_fnv1a64(BC_FNV_INIT, part[1 + k], plen[1 + k]));
        json_object_set_new(e, "checksum", json_string(hx));
        json_object_set_new(e, "bytes", json_integer((json_int_t)plen[1 + k]));
      }
  }
  char mp[400];
  path_of(mp, sizeof mp, "manifest.json");
  int saved = bc_manifest_save(&err, mp, m) == BERTCL_OK;
  json_decref(m);
  if (!saved) return;
  static const char *const outs[3] = {"out.safetensors", "out.npy", "out.jsonl"};
  int fmt = ((flags >> 1) & 3) % 3;
  char op[400];
  path_of(op, sizeof op, outs[fmt]);
  uint64_t rows = 0;
  int st = bc_job_merge(&err, dir, op, (bc_merge_format)fmt, &rows);
  if (st == BERTCL_OK) {
    if (fmt == BC_MERGE_SAFETENSORS) {
      bc_st_file *f = NULL;
      check(bc_st_open(&err, op, &f) == BERTCL_OK);
      for (size_t i = 0; i < bc_st_count(f); i++) {
        const bc_st_tensor *t = bc_st_at(f, i);
        /* pooled and offsets tensors have one row per job row (offsets one more) */
        if (t->ndim == 1) check((uint64_t)t->shape[0] == rows + 1);
      }
      bc_st_close(f);
    } else if (fmt == BC_MERGE_JSONL) {
      char *text = NULL;
      size_t len = 0;
      check(bc_read_file(&err, op, &text, &len) == BERTCL_OK);
      uint64_t lines = 0;
      for (size_t i = 0; i < len;) {
        char *nl = memchr(text + i, '\n', len - i);
        check(nl != NULL);
        json_t *o = json_loadb(text + i, (size_t)(nl - text - i), 0, NULL);
        check(json_is_object(o));
        json_decref(o);
        lines++;
        i = (size_t)(nl - text) + 1;
      }
      check(lines == rows);
      free(text);
    }
  }
  unlink(op);
}

/* ---- vocabulary folder ---- */

static void fuzz_vocab(const uint8_t *d, size_t size) {
  const uint8_t *part[3];
  size_t plen[3];
  split(d, size, part, plen, 3);
  put("tokenizer.json", NULL, 0);
  put("vocab.txt", part[0], plen[0]);
  put("tokenizer_config.json", plen[1] ? part[1] : NULL, plen[1]);
  put("config.json", plen[2] ? part[2] : NULL, plen[2]);
  bertcl_tokenizer *tok = NULL;
  if (bertcl_tokenizer_load(&tok, dir) != BERTCL_OK) {
    check(tok == NULL);
    return;
  }
  char cp[400];
  path_of(cp, sizeof cp, "config.json");
  bc_tok_limits lim;
  bc_tok_limits_from_config(cp, &lim);
  size_t bound = bertcl_tokenizer_id_bound(tok);
  check(bound > 0);
  if (lim.vocab_rows > 0) check(bound <= (size_t)lim.vocab_rows);
  /* texts: a fixed one, the vocabulary's first bytes, and the pair of both (the encoder has a
   * fuzz target of its own: short texts keep this one fast) */
  size_t vl = plen[0] < 200 ? plen[0] : 200;
  const char *texts[3] = {"Hello, world! [SEP] [MASK] unaffable", (const char *)part[0], NULL};
  size_t lens[3] = {strlen(texts[0]), vl, 0};
  for (int i = 0; i < 3; i++) {
    bertcl_encoding *e = NULL;
    const char *pair = i == 2 ? (const char *)part[0] : NULL;
    size_t plen_ = i == 2 ? vl : 0;
    const char *t = i == 2 ? texts[0] : texts[i];
    size_t tl = i == 2 ? lens[0] : lens[i];
    if (bertcl_tokenizer_encode(tok, t, tl, pair, plen_, NULL, &e) != BERTCL_OK) continue;
    for (size_t k = 0; k < e->n; k++) {
      check(e->ids[k] >= 0 && (size_t)e->ids[k] < bound);
      check(bertcl_tokenizer_id_to_token(tok, e->ids[k]) != NULL);
      if (lim.type_rows > 0) check(e->type_ids[k] >= 0 && e->type_ids[k] < lim.type_rows);
    }
    bertcl_encoding_free(e);
  }
  bertcl_tokenizer_free(tok);
}

/* ---- checkpoint ---- */

static void fuzz_checkpoint(uint8_t flags, const uint8_t *d, size_t size) {
  static const size_t totals[4] = {1, 4, 16, 64};
  size_t total = totals[(flags >> 4) & 3];
  float *bufs[3];
  for (int i = 0; i < 3; i++) {
    bufs[i] = malloc(total * sizeof(float));
    check(bufs[i] != NULL);
  }
  bc_err err;
  bc_err_clear(&err);
  bc_ckpt_state s = {-7, 0.0, -7};
  const long max_step = 1000;
  if (bc_checkpoint_parse(&err, "checkpoint.safetensors", d, size, total, bufs, max_step, &s,
                          "fuzz-run") == BERTCL_OK) {
    check(s.step >= 0 && s.step <= max_step);
    check(s.best_step >= -1 && s.best_step <= max_step);
    check(s.best == s.best);
    volatile float sink = bufs[0][total - 1] + bufs[1][total - 1] + bufs[2][total - 1];
    (void)sink;
  } else {
    check(err.msg[0] != '\0');
  }
  for (int i = 0; i < 3; i++) free(bufs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  if (flags & 1)
    fuzz_vocab(data + 1, size - 1);
  else if (flags & 8)
    fuzz_checkpoint(flags, data + 1, size - 1);
  else
    fuzz_job(flags, data + 1, size - 1);
  return 0;
}
