/* Durability: every kind of file bertcl writes, under a write that fails half-way (a full disk),
 * leaves the previous file exactly as it was and no temporary file (io/durable.h):
 *   extract's one-file outputs (npy, safetensors, jsonl), a job's shards and manifest (and the
 *   job then resumes to the bytes of an uninterrupted run), merge outputs, fine-tuning's
 *   checkpoint and exported model, predict's output, a tuning file and a kernel-cache entry.
 * The failure is injected (BERTCL_FAULT_WRITE_BYTES=N, BERTCL_FAULT_WRITE_PATH=suffix: ENOSPC
 * once a file has N bytes) and, where the process may mount a small tmpfs in a private mount
 * namespace (root), also a real full disk. Commands run through the CLI with the tiny model,
 * so the tests hold whatever library function the CLI calls. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/durable.h"
#include "job/job.h"
#include "gemm/tuning.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------------------- */

typedef bc_test_e2e env;
#define setup bc_test_e2e_setup
#define done bc_test_e2e_done

/* Every file under path (a file or a directory) with its SHA-256, sorted: a malloc'd string. */
static char *snapshot(const char *path) {
  char cmd[8192], *out = NULL;
  snprintf(cmd, sizeof cmd,
           "cd '%s' 2>/dev/null && find . -type f | LC_ALL=C sort | xargs -r sha256sum || "
           "sha256sum '%s'",
           path, path);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  return out;
}

/* Files named *.tmp.* under dir (recursively). */
static int count_tmp(const char *dir) {
  char cmd[4200], *out = NULL;
  snprintf(cmd, sizeof cmd, "find '%s' -name '*.tmp.*' | wc -l", dir);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  int n = atoi(out);
  free(out);
  return n;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void write_corpus(const char *path, int n) {
  static const char *w[] = {"the", "cat", "sat", "on", "mat", "quick", "brown", "fox", "jumps",
                            "hello", "world", "again", "unbelievable", "tokenization"};
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  bc_rng r;
  bc_rng_seed(&r, 5);
  for (int i = 0; i < n; i++) {
    int k = 1 + (int)(bc_rng_u32(&r) % 12);
    for (int j = 0; j < k; j++) fprintf(f, "%s%s", j ? " " : "", w[bc_rng_u32(&r) % 14]);
    fputc('\n', f);
  }
  assert_int_equal(fclose(f), 0);
}

/* Runs cmd (with "2>&1" appended by the caller); it must fail with a full-disk message. */
static void expect_enospc(const char *cmd) {
  char *log = NULL;
  int rc = bc_test_run(cmd, &log);
  if (rc == 0 || !log || !strstr(log, "No space left on device"))
    fail_msg("%s\n  exit %d (want a failure: No space left on device): %s", cmd, rc,
             log ? log : "");
  free(log);
}

static void expect_ok(const char *cmd) {
  char *log = NULL;
  int rc = bc_test_run(cmd, &log);
  if (rc != 0) fail_msg("%s\n  exit %d: %s", cmd, rc, log ? log : "");
  free(log);
}

static void expect_same(const char *what, const char *before, const char *after) {
  if (strcmp(before, after) != 0)
    fail_msg("%s changed after a failed write:\nbefore:\n%s\nafter:\n%s", what, before, after);
}

#define FAULT(path_suffix, bytes) \
  "BERTCL_FAULT_WRITE_PATH='" path_suffix "' BERTCL_FAULT_WRITE_BYTES=" #bytes " "

/* ---- extract: one-file outputs ----------------------------------------------------------- */

static void test_extract_outputs(void **state) {
  (void)state;
  env e;
  if (!setup(&e)) skip();
  char in[700], cmd[4096];
  snprintf(in, sizeof in, "%s/in.txt", e.dir);
  write_corpus(in, 120);
  static const char *const fmts[3] = {"npy", "safetensors", "jsonl"};
  for (int i = 0; i < 3; i++) {
    char out[700];
    snprintf(out, sizeof out, "%s/out.%s", e.dir, fmts[i]);
    write_text(out, "the previous output\n");
    char *before = snapshot(out);
    /* the shards of the job succeed, the merged output fails */
    snprintf(cmd, sizeof cmd,
             "BERTCL_FAULT_WRITE_PATH='out.%s' BERTCL_FAULT_WRITE_BYTES=1000 %s extract -m '%s' "
             "-i '%s' -o '%s' --device '%s' --pool mean --shard-rows 50 --quiet 2>&1",
             fmts[i], BERTCL_BIN, e.model, in, out, e.dev);
    expect_enospc(cmd);
    char *after = snapshot(out);
    expect_same(out, before, after);
    assert_int_equal(count_tmp(e.dir), 0);
    /* the kept job finishes the output once the disk has room (one format is enough: the
     * same job code writes all three) */
    if (i > 0) {
      free(before);
      free(after);
      continue;
    }
    snprintf(cmd, sizeof cmd,
             "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool mean --shard-rows 50 "
             "--resume --quiet 2>&1",
             BERTCL_BIN, e.model, in, out, e.dev);
    expect_ok(cmd);
    struct stat sb;
    assert_int_equal(stat(out, &sb), 0);
    assert_true(sb.st_size > 1000);
    assert_int_equal(count_tmp(e.dir), 0);
    free(before);
    free(after);
  }
  done(&e);
}

/* ---- extract: a job's shards and manifest ------------------------------------------------ */

static uint64_t file_size(const char *p) {
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  return (uint64_t)sb.st_size;
}

/* The manifest on disk is whole and every shard it lists matches its checksum. */
static int check_job_consistent(const char *dir) {
  char mp[800];
  snprintf(mp, sizeof mp, "%s/manifest.json", dir);
  json_t *m = NULL;
  bc_err err = {0};
  if (bc_manifest_load(&err, mp, &m) != BERTCL_OK) fail_msg("%s", err.msg);
  json_t *shards = json_object_get(m, "shards");
  for (size_t i = 0; i < json_array_size(shards); i++) {
    json_t *s = json_array_get(shards, i);
    char p[900], hx[17];
    snprintf(p, sizeof p, "%s/%s", dir, json_string_value(json_object_get(s, "file")));
    uint64_t h = 0, n = 0;
    assert_int_equal(bc_file_checksum(&err, p, &h, &n), BERTCL_OK);
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)h);
    assert_string_equal(hx, json_string_value(json_object_get(s, "checksum")));
  }
  int n = (int)json_array_size(shards);
  json_decref(m);
  return n;
}

#define JOB_OPTS "--pool cls,mean --shard-rows 100 --quiet"

static void test_job_shards_manifest(void **state) {
  (void)state;
  env e;
  if (!setup(&e)) skip();
  char in[700], a[700], b[700], c[700], am[700], bm[700], cm[700], cmd[8192];
  snprintf(in, sizeof in, "%s/in.txt", e.dir);
  write_corpus(in, 400);
  snprintf(a, sizeof a, "%s/a", e.dir);
  snprintf(b, sizeof b, "%s/b", e.dir);
  snprintf(c, sizeof c, "%s/c", e.dir);
  snprintf(am, sizeof am, "%s/a.safetensors", e.dir);
  snprintf(bm, sizeof bm, "%s/b.safetensors", e.dir);
  snprintf(cm, sizeof cm, "%s/c.safetensors", e.dir);
  /* uninterrupted */
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' " JOB_OPTS " 2>&1",
           BERTCL_BIN, e.model, in, a, e.dev);
  expect_ok(cmd);
  char mpa[800];
  snprintf(mpa, sizeof mpa, "%s/manifest.json", a);
  uint64_t final_manifest = file_size(mpa);
  /* a full disk at the 4th shard: three shards and their manifest stand */
  snprintf(cmd, sizeof cmd,
           FAULT("shard-00003.safetensors", 1000) "%s extract -m '%s' -i '%s' -o '%s' "
                                                  "--device '%s' " JOB_OPTS " 2>&1",
           BERTCL_BIN, e.model, in, b, e.dev);
  expect_enospc(cmd);
  assert_int_equal(check_job_consistent(b), 3);
  assert_int_equal(count_tmp(b), 0);
  /* a full disk when the manifest is written the last time (it is then at its largest): the
   * previous manifest stands, with every shard it lists */
  snprintf(cmd, sizeof cmd,
           "BERTCL_FAULT_WRITE_PATH=manifest.json BERTCL_FAULT_WRITE_BYTES=%llu %s extract -m "
           "'%s' -i '%s' -o '%s' --device '%s' " JOB_OPTS " 2>&1",
           (unsigned long long)final_manifest - 1, BERTCL_BIN, e.model, in, c, e.dev);
  expect_enospc(cmd);
  char mpc[800];
  snprintf(mpc, sizeof mpc, "%s/manifest.json", c);
  assert_true(file_size(mpc) < final_manifest);
  assert_int_equal(check_job_consistent(c), 4);
  assert_int_equal(count_tmp(c), 0);
  /* both resume to the uninterrupted bytes */
  const char *dirs[2] = {b, c}, *merged[2] = {bm, cm};
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd,
             "%s extract -m '%s' -i '%s' -o '%s' --device '%s' " JOB_OPTS " --resume 2>&1 && "
             "%s merge '%s' '%s' 2>&1",
             BERTCL_BIN, e.model, in, dirs[i], e.dev, BERTCL_BIN, dirs[i], merged[i]);
    expect_ok(cmd);
  }
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1 && cmp '%s' '%s' && cmp '%s' '%s'",
           BERTCL_BIN, a, am, am, bm, am, cm);
  expect_ok(cmd);
  done(&e);
}

/* ---- merge ------------------------------------------------------------------------------- */

static void test_merge_outputs(void **state) {
  (void)state;
  env e;
  if (!setup(&e)) skip();
  char in[700], job[700], cmd[4096];
  snprintf(in, sizeof in, "%s/in.txt", e.dir);
  snprintf(job, sizeof job, "%s/job", e.dir);
  write_corpus(in, 250);
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool mean --shard-rows 100 "
           "--quiet 2>&1",
           BERTCL_BIN, e.model, in, job, e.dev);
  expect_ok(cmd);
  static const char *const fmts[3] = {"npy", "safetensors", "jsonl"};
  for (int i = 0; i < 3; i++) {
    char out[700];
    snprintf(out, sizeof out, "%s/merged.%s", e.dir, fmts[i]);
    write_text(out, "the previous merge\n");
    char *before = snapshot(e.dir);
    snprintf(cmd, sizeof cmd,
             "BERTCL_FAULT_WRITE_PATH='merged.%s' BERTCL_FAULT_WRITE_BYTES=4000 %s merge '%s' "
             "'%s' 2>&1",
             fmts[i], BERTCL_BIN, job, out);
    expect_enospc(cmd);
    char *after = snapshot(e.dir);
    expect_same(e.dir, before, after);
    assert_int_equal(count_tmp(e.dir), 0);
    free(before);
    free(after);
  }
  /* the same through the library, on the streaming writer's last write (a fault of exactly
   * the output's size minus one byte) */
  char out[700], ref[700];
  snprintf(ref, sizeof ref, "%s/ref.safetensors", e.dir);
  snprintf(out, sizeof out, "%s/lib.safetensors", e.dir);
  bc_err err = {0};
  assert_int_equal(bc_job_merge(&err, job, ref, BC_MERGE_AUTO, NULL), BERTCL_OK);
  char lim[32];
  snprintf(lim, sizeof lim, "%llu", (unsigned long long)file_size(ref) - 1);
  write_text(out, "previous\n");
  setenv("BERTCL_FAULT_WRITE_BYTES", lim, 1);
  int st = bc_job_merge(&err, job, out, BC_MERGE_AUTO, NULL);
  unsetenv("BERTCL_FAULT_WRITE_BYTES");
  assert_int_equal(st, BERTCL_ERR_IO);
  assert_non_null(strstr(err.msg, "No space left on device"));
  assert_int_equal(file_size(out), 9);
  assert_int_equal(count_tmp(e.dir), 0);
  done(&e);
}

/* ---- fine-tuning: checkpoint, exported model; predict ------------------------------------ */

static void write_train(const char *path) {
  static const char *pos[] = {"good", "great", "fine", "nice"};
  static const char *neg[] = {"bad", "awful", "poor", "sad"};
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  bc_rng r;
  bc_rng_seed(&r, 3);
  for (int i = 0; i < 32; i++) {
    int y = bc_rng_u32(&r) & 1;
    fprintf(f, "{\"text\": \"%s %s\", \"label\": \"%s\"}\n", (y ? pos : neg)[bc_rng_u32(&r) % 4],
            (y ? pos : neg)[bc_rng_u32(&r) % 4], y ? "pos" : "neg");
  }
  assert_int_equal(fclose(f), 0);
}

#define FT "--epochs 1 --batch-size 8 --lr 1e-3 --save-every 2 -q"

static void test_finetune_files(void **state) {
  (void)state;
  env e;
  if (!setup(&e)) skip();
  char train[700], out[700], pred[700], cmd[4096], p[800];
  snprintf(train, sizeof train, "%s/train.jsonl", e.dir);
  snprintf(out, sizeof out, "%s/out", e.dir);
  snprintf(pred, sizeof pred, "%s/pred.jsonl", e.dir);
  write_train(train);
  snprintf(cmd, sizeof cmd,
           "%s finetune -m '%s' --train '%s' -o '%s' --device '%s' --seed 1 " FT " 2>&1",
           BERTCL_BIN, e.model, train, out, e.dev);
  expect_ok(cmd);
  char *before = snapshot(out);
  /* another run (another seed: other bytes) into the same directory: its first checkpoint
   * fails, so nothing of the first run changes */
  snprintf(cmd, sizeof cmd,
           FAULT("checkpoint.safetensors", 1000) "%s finetune -m '%s' --train '%s' -o '%s' "
                                                 "--device '%s' --seed 2 " FT " 2>&1",
           BERTCL_BIN, e.model, train, out, e.dev);
  expect_enospc(cmd);
  char *after = snapshot(out);
  expect_same(out, before, after);
  assert_int_equal(count_tmp(out), 0);
  free(after);
  /* the exported model fails: the first run's model.safetensors stands */
  snprintf(p, sizeof p, "%s/model.safetensors", out);
  char *model_before = snapshot(p);
  snprintf(cmd, sizeof cmd,
           FAULT("/model.safetensors", 1000) "%s finetune -m '%s' --train '%s' -o '%s' "
                                             "--device '%s' --seed 2 " FT " 2>&1",
           BERTCL_BIN, e.model, train, out, e.dev);
  expect_enospc(cmd);
  after = snapshot(p);
  expect_same(p, model_before, after);
  assert_int_equal(count_tmp(out), 0);
  free(after);
  free(model_before);
  free(before);
  /* predict -o */
  write_text(pred, "the previous predictions\n");
  before = snapshot(pred);
  snprintf(cmd, sizeof cmd,
           FAULT("pred.jsonl", 100) "%s predict -m '%s' -i '%s' -o '%s' --device '%s' 2>&1",
           BERTCL_BIN, out, train, pred, e.dev);
  expect_enospc(cmd);
  after = snapshot(pred);
  expect_same(pred, before, after);
  assert_int_equal(count_tmp(e.dir), 0);
  free(before);
  free(after);
  done(&e);
}

/* ---- runtime files: a tuning file and a kernel-cache entry ------------------------------- */

static void test_tuning_and_cache(void **state) {
  (void)state;
  env e;
  if (!setup(&e)) skip();
  char cache[700];
  snprintf(cache, sizeof cache, "%s/cache", e.dir);
  const char *old_cache = getenv("BERTCL_CACHE_DIR");
  char *saved = old_cache ? strdup(old_cache) : NULL;
  setenv("BERTCL_CACHE_DIR", cache, 1);
  /* kernel cache: the first context fills it */
  bertcl_ctx *ctx = bc_test_ctx();
  assert_non_null(ctx);
  bertcl_model *m = NULL;
  assert_int_equal(bertcl_model_load(&m, e.model), BERTCL_OK);
  bertcl_encoder *enc = NULL;
  if (bertcl_encoder_create(&enc, ctx, m) != BERTCL_OK) fail_msg("%s", bertcl_last_error(ctx));
  assert_true(ctx->stats.cache_writes > 0);
  const char *texts[1] = {"hello world"};
  float ref[32], got[32];
  bertcl_encode_options eo = {0};
  assert_int_equal(bertcl_encode_width(enc, &eo), 32);
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_tokenizer_load(&tok, e.model), BERTCL_OK);
  assert_int_equal(bertcl_encode(enc, tok, texts, NULL, 1, &eo, ref, 32), BERTCL_OK);
  bertcl_encoder_free(enc);
  bertcl_ctx_free(ctx);
  /* damage one entry (its last byte: the checksum no longer matches), so the next context
   * rejects it and stores the rebuilt binary over it: that store fails */
  DIR *d = opendir(cache);
  assert_non_null(d);
  struct dirent *de;
  char entry[1000] = "";
  while ((de = readdir(d)))
    if (strstr(de->d_name, ".clbin")) snprintf(entry, sizeof entry, "%s/%s", cache, de->d_name);
  closedir(d);
  assert_true(entry[0] != '\0');
  FILE *f = fopen(entry, "r+b");
  assert_non_null(f);
  fseek(f, -1, SEEK_END);
  int c = fgetc(f);
  fseek(f, -1, SEEK_END);
  fputc(c ^ 0x5a, f);
  assert_int_equal(fclose(f), 0);
  char *before = snapshot(cache);
  setenv("BERTCL_FAULT_WRITE_BYTES", "64", 1);
  ctx = bc_test_ctx();
  assert_non_null(ctx);
  if (bertcl_encoder_create(&enc, ctx, m) != BERTCL_OK) fail_msg("%s", bertcl_last_error(ctx));
  unsetenv("BERTCL_FAULT_WRITE_BYTES");
  assert_true(ctx->stats.cache_rejects >= 1);
  assert_int_equal(ctx->stats.cache_writes, 0);
  char *after = snapshot(cache);
  expect_same(cache, before, after);
  assert_int_equal(count_tmp(cache), 0);
  /* a failed cache write never fails a run: the kernels built from source give the same */
  assert_int_equal(bertcl_encode(enc, tok, texts, NULL, 1, &eo, got, 32), BERTCL_OK);
  assert_memory_equal(ref, got, sizeof ref);
  free(before);
  free(after);
  bertcl_encoder_free(enc);
  /* tuning file */
  char params[2048], progress[2048];
  assert_int_equal(bc_tuning_paths(ctx, params, sizeof params, progress, sizeof progress),
                   BERTCL_OK);
  char tdir[2100];
  snprintf(tdir, sizeof tdir, "%s", params);
  *strrchr(tdir, '/') = '\0';
  assert_int_equal(bc_mkdirs(tdir), 0);
  write_text(params, "{\"previous\": \"tuning file\"}\n");
  before = snapshot(tdir);
  bc_gemm_params gp = {0};
  bc_tuning_meta meta = {.config = "tiny", .batch = 1, .seq = 8};
  setenv("BERTCL_FAULT_WRITE_BYTES", "16", 1);
  int st = bc_tuning_save(ctx, params, &gp, &meta);
  unsetenv("BERTCL_FAULT_WRITE_BYTES");
  assert_int_equal(st, BERTCL_ERR_IO);
  assert_non_null(strstr(bertcl_last_error(ctx), "No space left on device"));
  after = snapshot(tdir);
  expect_same(tdir, before, after);
  assert_int_equal(count_tmp(tdir), 0);
  assert_int_equal(bc_tuning_save(ctx, params, &gp, &meta), BERTCL_OK);
  free(before);
  free(after);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  if (saved)
    setenv("BERTCL_CACHE_DIR", saved, 1);
  else
    unsetenv("BERTCL_CACHE_DIR");
  free(saved);
  done(&e);
}

/* ---- a real full disk -------------------------------------------------------------------- */

/* In a private mount namespace (unshare -m, which needs root), a 64 KiB tmpfs holds a previous
 * merge output, then an extraction job (shards of 25 KiB); a merge and the job's third shard do
 * not fit. Each fails
 * with the kernel's ENOSPC; the previous file, the job's manifest and its listed shards are
 * intact and no temporary file is left. Skipped where mounting is not allowed. */
static void test_real_full_disk(void **state) {
  (void)state;
  if (bc_test_run("unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs /mnt' 2>/dev/null", NULL) !=
      0) {
    printf("cannot mount a tmpfs in a private mount namespace (needs root): skipped\n");
    skip();
  }
  env e;
  if (!setup(&e)) skip();
  char in[700], job[700], small[700], script[700], cmd[8192];
  snprintf(in, sizeof in, "%s/in.txt", e.dir);
  snprintf(job, sizeof job, "%s/job", e.dir);
  snprintf(small, sizeof small, "%s/small", e.dir);
  snprintf(script, sizeof script, "%s/full.sh", e.dir);
  assert_int_equal(mkdir(small, 0755), 0);
  write_corpus(in, 600);
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool mean --tokens --shard-rows "
           "300 --quiet 2>&1",
           BERTCL_BIN, e.model, in, job, e.dev);
  expect_ok(cmd);
  /* the script runs inside the namespace; it prints FAIL lines for what went wrong */
  FILE *f = fopen(script, "w");
  assert_non_null(f);
  fprintf(f,
          "set -u\n"
          "D='%s'; B='%s'; M='%s'; I='%s'; J='%s'; DEV='%s'\n"
          "mount -t tmpfs -o size=64k tmpfs \"$D\" || { echo FAIL mount; exit 1; }\n"
          "printf 'the previous merge\\n' > \"$D/out.safetensors\"\n"
          "sum=$(sha256sum < \"$D/out.safetensors\")\n"
          "if \"$B\" merge \"$J\" \"$D/out.safetensors\" > \"$D/../merge.log\" 2>&1; then echo FAIL "
          "merge succeeded; fi\n"
          "grep -q 'No space left on device' \"$D/../merge.log\" || { echo FAIL merge message; "
          "cat \"$D/../merge.log\"; }\n"
          "[ \"$(sha256sum < \"$D/out.safetensors\")\" = \"$sum\" ] || echo FAIL previous merge "
          "changed\n"
          "[ -z \"$(find \"$D\" -name '*.tmp.*')\" ] || echo FAIL temporary files left after "
          "merge\n"
          "rm -f \"$D/out.safetensors\"\n"
          "if \"$B\" extract -m \"$M\" -i \"$I\" -o \"$D/job\" --device \"$DEV\" --pool mean "
          "--shard-rows 200 --quiet > \"$D/../extract.log\" 2>&1; then echo FAIL "
          "extract succeeded; fi\n"
          "grep -q 'No space left on device' \"$D/../extract.log\" || { echo FAIL extract "
          "message; cat \"$D/../extract.log\"; }\n"
          "[ -z \"$(find \"$D\" -name '*.tmp.*')\" ] || echo FAIL temporary files left after "
          "extract\n"
          "cp -r \"$D/job\" \"$D/../job-on-full-disk\" || echo FAIL copy\n"
          "umount \"$D\"\n",
          small, BERTCL_BIN, e.model, in, job, e.dev);
  assert_int_equal(fclose(f), 0);
  char *log = NULL;
  snprintf(cmd, sizeof cmd, "unshare -m sh '%s' 2>&1", script);
  int rc = bc_test_run(cmd, &log);
  if (rc != 0 || strstr(log, "FAIL")) fail_msg("real full disk: exit %d: %s", rc, log);
  free(log);
  /* what the full disk kept of the job is consistent: the manifest and the shards it lists */
  char kept[800];
  snprintf(kept, sizeof kept, "%s/job-on-full-disk", e.dir);
  int shards = check_job_consistent(kept);
  print_message("the 64 KiB tmpfs held %d shards of the job\n", shards);
  assert_true(shards >= 1 && shards < 6);
  done(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extract_outputs), cmocka_unit_test(test_job_shards_manifest),
      cmocka_unit_test(test_merge_outputs),   cmocka_unit_test(test_finetune_files),
      cmocka_unit_test(test_tuning_and_cache), cmocka_unit_test(test_real_full_disk),
  };
  return cmocka_run_group_tests_name("durable", tests, NULL, NULL);
}
