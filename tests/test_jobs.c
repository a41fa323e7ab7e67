/* Batch extraction jobs (src/job): bucketing order restoration, the byte-range K/N split, the
 * bad-line policy, and, through the command-line program on PoCL with the tiny model, a job
 * killed with SIGKILL several times and resumed (merged bytes identical to an uninterrupted
 * run), refused resumes, --shard K/N + merge, --stride windows, f16 output. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "encoder/encoder.h"
#include "io/writers.h"
#include "job/job.h"
#include "model/safetensors.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *words_[] = {"the",   "cat",   "sat",   "on",      "mat",          "quick",
                               "brown", "fox",   "jumps", "over",    "lazy",         "dog",
                               "hello", "world", "again", "running", "unbelievable", "tokenization",
                               "a",     "b",     ",",     "."};

/* n deterministic lines of 1..maxw words */
static void write_corpus(const char *path, int n, int maxw, uint64_t seed) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  bc_rng r;
  bc_rng_seed(&r, seed);
  for (int i = 0; i < n; i++) {
    int k = 1 + (int)(bc_rng_u32(&r) % (uint32_t)maxw);
    for (int w = 0; w < k; w++)
      fprintf(f, "%s%s", w ? " " : "", words_[bc_rng_u32(&r) % (sizeof words_ / sizeof *words_)]);
    fputc('\n', f);
  }
  fclose(f);
}

static char *slurp(const char *path, size_t *len) {
  bc_err e = {0};
  char *d = NULL;
  if (bc_read_file(&e, path, &d, len) != BERTCL_OK) return NULL;
  return d;
}

static int files_equal(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *x = slurp(a, &la), *y = slurp(b, &lb);
  int eq = x && y && la == lb && memcmp(x, y, la) == 0;
  free(x);
  free(y);
  return eq;
}

static float *read_tensor(const char *path, const char *name, size_t *numel) {
  bc_err err = {0};
  bc_st_file *f = NULL;
  if (bc_st_open(&err, path, &f) != BERTCL_OK) fail_msg("%s", err.msg);
  const bc_st_tensor *t = bc_st_find(f, name);
  if (!t) fail_msg("%s has no tensor %s", path, name);
  float *x = malloc((t->numel ? t->numel : 1) * 4);
  assert_int_equal(bc_st_read_f32(&err, t, x, t->numel), BERTCL_OK);
  *numel = t->numel;
  bc_st_close(f);
  return x;
}

static int64_t *read_i64(const char *path, const char *name, size_t *numel) {
  bc_err err = {0};
  bc_st_file *f = NULL;
  if (bc_st_open(&err, path, &f) != BERTCL_OK) fail_msg("%s", err.msg);
  const bc_st_tensor *t = bc_st_find(f, name);
  if (!t || strcmp(t->dtype_name, "I64") != 0) fail_msg("%s has no I64 tensor %s", path, name);
  int64_t *x = malloc((t->numel ? t->numel : 1) * 8);
  memcpy(x, t->data, t->numel * 8);
  *numel = t->numel;
  bc_st_close(f);
  return x;
}

static int run_cmd(const char *cmd, char **log) {
  char *l = NULL;
  int rc = bc_test_run(cmd, &l);
  if (log)
    *log = l;
  else
    free(l);
  return rc;
}

/* ---- unit: bucketing -------------------------------------------------------------------- */

static void test_bucket_order(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 20; seed++) {
    bc_rng r;
    bc_rng_seed(&r, seed);
    size_t n = 1 + bc_rng_u32(&r) % 3000;
    int *lens = malloc(n * sizeof *lens);
    for (size_t i = 0; i < n; i++) lens[i] = 2 + (int)(bc_rng_u32(&r) % 126);
    for (int sort = 0; sort <= 1; sort++) {
      bc_bucket_plan p;
      bc_err e = {0};
      size_t max_tokens = 64 + bc_rng_u32(&r) % 4000;
      int max_batch = 1 + (int)(bc_rng_u32(&r) % 100);
      assert_int_equal(bc_bucket_make(&e, lens, n, sort, max_tokens, max_batch, &p), BERTCL_OK);
      /* every item exactly once; batches tile order[] */
      char *seen = calloc(n, 1);
      size_t next = 0;
      for (size_t b = 0; b < p.nbatches; b++) {
        const bc_bucket_batch *bb = &p.batches[b];
        assert_int_equal(bb->start, next);
        assert_true(bb->count >= 1 && bb->count <= (size_t)max_batch);
        int longest = 0;
        for (size_t k = 0; k < bb->count; k++) {
          size_t it = p.order[bb->start + k];
          assert_true(it < n);
          assert_false(seen[it]);
          seen[it] = 1;
          if (lens[it] > longest) longest = lens[it];
          if (sort && k) /* sorted by length; stable */
            assert_true(
                lens[p.order[bb->start + k - 1]] < lens[it] ||
                (lens[p.order[bb->start + k - 1]] == lens[it] && p.order[bb->start + k - 1] < it));
        }
        assert_int_equal(bb->seq, longest);
        if (sort && bb->count > 1) assert_true(bb->count * (size_t)longest <= max_tokens);
        if (!sort)
          for (size_t k = 0; k < bb->count; k++)
            assert_int_equal(p.order[bb->start + k], bb->start + k);
        next += bb->count;
      }
      assert_int_equal(next, n);
      /* results computed in batch order and stored at their item index come back in input
       * order: f(i) = 7*i+lens[i] */
      long *res = malloc(n * sizeof *res);
      for (size_t k = 0; k < n; k++) res[p.order[k]] = 7 * (long)p.order[k] + lens[p.order[k]];
      for (size_t i = 0; i < n; i++)
        if (res[i] != 7 * (long)i + lens[i])
          fail_msg("seed %llu: row %zu out of order", (unsigned long long)seed, i);
      free(res);
      free(seen);
      bc_bucket_free(&p);
    }
    free(lens);
  }
  /* a length of 0 is refused */
  int bad[2] = {3, 0};
  bc_bucket_plan p;
  bc_err e = {0};
  assert_int_equal(bc_bucket_make(&e, bad, 2, 1, 100, 4, &p), BERTCL_ERR_INVALID_ARG);
}

/* ---- unit: K/N split covers every line once, in order ----------------------------------- */

static void read_all(const char *path, bc_input_kind kind, const char *col, int k, int n,
                     char ***out, size_t *cnt) {
  bc_reader *r = NULL;
  bc_err e = {0};
  if (bc_reader_open(&e, path, kind, col, k, n, &r) != BERTCL_OK) fail_msg("%s", e.msg);
  bc_record rec;
  int st;
  while ((st = bc_reader_next(r, &rec)) == 1) {
    *out = realloc(*out, (*cnt + 1) * sizeof **out);
    (*out)[(*cnt)++] = rec.text ? strdup(rec.text) : strdup("<bad>");
    bc_record_clear(&rec);
  }
  assert_int_equal(st, 0);
  bc_reader_close(r);
}

static void test_shard_coverage(void **state) {
  (void)state;
  char dir[512], path[700];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  for (int variant = 0; variant < 3; variant++) {
    snprintf(path, sizeof path, "%s/in%d.txt", dir, variant);
    FILE *f = fopen(path, "w");
    bc_rng r;
    bc_rng_seed(&r, 99 + variant);
    if (variant == 2) fprintf(f, "id\ttext\n");
    int lines = variant == 0 ? 1 : 257;
    for (int i = 0; i < lines; i++) {
      int len = (int)(bc_rng_u32(&r) % (i % 17 == 0 ? 300 : 12)); /* empty lines too */
      if (variant == 2) fprintf(f, "%d\t", i);
      for (int c = 0; c < len; c++) fputc('a' + (int)(bc_rng_u32(&r) % 26), f);
      if (variant == 1 && i == lines - 1) break; /* no final newline */
      fputc('\n', f);
    }
    fclose(f);
    bc_input_kind kind = variant == 2 ? BC_IN_TSV : BC_IN_PLAIN;
    const char *col = variant == 2 ? "text" : NULL;
    char **all = NULL;
    size_t nall = 0;
    read_all(path, kind, col, 0, 1, &all, &nall);
    assert_int_equal(nall, (size_t)lines);
    for (int N = 1; N <= 9; N++) {
      char **parts = NULL;
      size_t np = 0;
      for (int K = 0; K < N; K++) read_all(path, kind, col, K, N, &parts, &np);
      if (np != nall) fail_msg("variant %d N=%d: %zu records, expected %zu", variant, N, np, nall);
      for (size_t i = 0; i < np; i++) {
        if (strcmp(parts[i], all[i]) != 0)
          fail_msg("variant %d N=%d: record %zu differs", variant, N, i);
        free(parts[i]);
      }
      free(parts);
    }
    for (size_t i = 0; i < nall; i++) free(all[i]);
    free(all);
  }
  /* K out of range, stdin with N > 1 */
  bc_reader *r = NULL;
  bc_err e = {0};
  assert_int_equal(bc_reader_open(&e, path, BC_IN_PLAIN, NULL, 3, 3, &r), BERTCL_ERR_INVALID_ARG);
  assert_int_equal(bc_reader_open(&e, "-", BC_IN_PLAIN, NULL, 0, 2, &r), BERTCL_ERR_INVALID_ARG);
  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(run_cmd(cmd, NULL), 0);
}

/* ---- unit: bad lines are rows, never dropped -------------------------------------------- */

static void test_bad_line_policy_reader(void **state) {
  (void)state;
  /* the validator */
  const struct {
    const char *s;
    size_t n, want;
  } u[] = {{"abc", 3, 3},
           {"\xc3\xa9", 2, 2},
           {"a\xc3", 2, 1},
           {"\xe2\x82\xac!", 4, 4},
           {"\xed\xa0\x80", 3, 0},
           {"\xf0\x9f\x98\x80", 4, 4},
           {"\xf4\x90\x80\x80", 4, 0},
           {"x\xc0\xaf", 3, 1},
           {"\xff", 1, 0}};
  for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
    if (bc_utf8_valid_prefix((const unsigned char *)u[i].s, u[i].n) != u[i].want)
      fail_msg("utf8 case %zu: got %zu want %zu", i,
               bc_utf8_valid_prefix((const unsigned char *)u[i].s, u[i].n), u[i].want);
  char dir[512], path[700];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  struct {
    const char *name, *content;
    bc_input_kind kind;
    const char *col;
    int bad[6];
  } cases[] = {
      {"a.txt", "ok\nbad \xff here\n\nlast\n", BC_IN_PLAIN, NULL, {0, BC_BAD_UTF8, 0, 0, -1}},
      {"b.jsonl",
       "{\"text\": \"x\"}\n{broken\n{\"text\": 3}\n{\"text\": \"y\", \"text_pair\": \"z\"}\n",
       BC_IN_JSONL,
       NULL,
       {0, BC_BAD_JSON, BC_BAD_JSON, 0, -1}},
      {"c.tsv",
       "h\ttext\n1\tfine\n2\n3\tok\xe2\n",
       BC_IN_TSV,
       "text",
       {0, BC_BAD_COLUMN, BC_BAD_UTF8, -1}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    snprintf(path, sizeof path, "%s/%s", dir, cases[c].name);
    FILE *f = fopen(path, "wb");
    fputs(cases[c].content, f);
    fclose(f);
    bc_reader *r = NULL;
    bc_err e = {0};
    assert_int_equal(bc_reader_open(&e, path, cases[c].kind, cases[c].col, 0, 1, &r), 0);
    bc_record rec;
    int i = 0;
    while (bc_reader_next(r, &rec) == 1) {
      if (cases[c].bad[i] < 0) fail_msg("%s: more records than lines", cases[c].name);
      if (rec.bad != cases[c].bad[i])
        fail_msg("%s record %d: bad=%d, expected %d", cases[c].name, i, rec.bad, cases[c].bad[i]);
      assert_true(rec.bad ? rec.text == NULL : rec.text != NULL);
      bc_record_clear(&rec);
      i++;
    }
    assert_int_equal(cases[c].bad[i], -1);
    bc_reader_close(r);
  }
  /* a NUL byte inside a plain line */
  snprintf(path, sizeof path, "%s/nul.txt", dir);
  FILE *f = fopen(path, "wb");
  fwrite("a\0b\nc\n", 1, 6, f);
  fclose(f);
  bc_reader *r = NULL;
  bc_err e = {0};
  assert_int_equal(bc_reader_open(&e, path, BC_IN_PLAIN, NULL, 0, 1, &r), 0);
  bc_record rec;
  assert_int_equal(bc_reader_next(r, &rec), 1);
  assert_int_equal(rec.bad, BC_BAD_NUL);
  bc_record_clear(&rec);
  assert_int_equal(bc_reader_next(r, &rec), 1);
  assert_string_equal(rec.text, "c");
  bc_record_clear(&rec);
  bc_reader_close(r);
  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(run_cmd(cmd, NULL), 0);
}

/* ---- unit: the job lock ------------------------------------------------------------------ */

static void test_job_lock(void **state) {
  (void)state;
  char dir[512], host[256], want[400];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  assert_int_equal(gethostname(host, sizeof host), 0);
  bc_err e = {0};
  bc_job_lock_t a, b, c;
  assert_int_equal(bc_job_lock(&e, dir, 0, 1, &a), BERTCL_OK);
  /* a second holder of the same job, even in this process, is refused and told who holds it */
  assert_int_equal(bc_job_lock(&e, dir, 0, 1, &b), BERTCL_ERR_BUSY);
  assert_int_equal(b.fd, -1);
  snprintf(want, sizeof want, "is in use by another bertcl process (pid %ld on host %s since ",
           (long)getpid(), host);
  if (!strstr(e.msg, want) || !strstr(e.msg, "manifest.json.lock"))
    fail_msg("unexpected message: %s", e.msg);
  /* the parts of a --shard K/N split are separate jobs */
  assert_int_equal(bc_job_lock(&e, dir, 0, 2, &b), BERTCL_OK);
  assert_int_equal(bc_job_lock(&e, dir, 1, 2, &c), BERTCL_OK);
  assert_int_equal(bc_job_lock(&e, dir, 1, 2, &c), BERTCL_ERR_BUSY);
  assert_non_null(strstr(e.msg, "manifest-1-of-2.json.lock"));
  bc_job_unlock(&b);
  bc_job_unlock(&c);
  bc_job_unlock(&a);
  bc_job_unlock(&a); /* twice: a no-op */
  char lp[700];
  snprintf(lp, sizeof lp, "%s/manifest.json.lock", dir);
  assert_int_not_equal(access(lp, F_OK), 0); /* a clean finish leaves no lock file */
  /* a holder killed with SIGKILL: its lock goes with it (the file stays), taken at once */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    bc_job_lock_t l;
    char ok = bc_job_lock(NULL, dir, 0, 1, &l) == BERTCL_OK ? 'y' : 'n';
    if (write(fds[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  char got = 0;
  assert_int_equal(read(fds[0], &got, 1), 1);
  assert_int_equal(got, 'y');
  assert_int_equal(bc_job_lock(&e, dir, 0, 1, &a), BERTCL_ERR_BUSY);
  snprintf(want, sizeof want, "(pid %ld on host %s", (long)pid, host);
  if (!strstr(e.msg, want)) fail_msg("the message does not name the holder %s: %s", want, e.msg);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  assert_int_equal(access(lp, F_OK), 0);
  assert_int_equal(bc_job_lock(&e, dir, 0, 1, &a), BERTCL_OK);
  bc_job_unlock(&a);
  close(fds[0]);
  close(fds[1]);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(run_cmd(cmd, NULL), 0);
}

/* ---- end to end (PoCL, tiny model) ------------------------------------------------------ */

typedef bc_test_e2e e2e;
#define e2e_setup bc_test_e2e_setup
#define e2e_done bc_test_e2e_done

/* Starts `sh -c cmd` in the background; returns its pid. */
static pid_t spawn_sh(const char *cmd) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Two jobs over one corpus: job directories a and b, and the files they merge into. */
typedef struct {
  char in[700], a[700], b[700], am[700], bm[700];
} job_pair;

static void job_pair_init(job_pair *p, const e2e *x, const char *na, const char *nb) {
  snprintf(p->in, sizeof p->in, "%s/corpus.txt", x->dir);
  snprintf(p->a, sizeof p->a, "%s/%s", x->dir, na);
  snprintf(p->b, sizeof p->b, "%s/%s", x->dir, nb);
  snprintf(p->am, sizeof p->am, "%s/%s.safetensors", x->dir, na);
  snprintf(p->bm, sizeof p->bm, "%s/%s.safetensors", x->dir, nb);
}

#define JOB_OPTS                                                         \
  "--pool cls,mean --layers -2: --tokens --words mean --shard-rows 150 " \
  "--window 60 --max-tokens 600 --batch-size 16 --threads 2"

static int manifest_shards(const char *path) {
  json_error_t je;
  json_t *m = json_load_file(path, 0, &je);
  if (!m) return -1;
  int n = (int)json_array_size(json_object_get(m, "shards"));
  json_decref(m);
  return n;
}

/* Starts bertcl extract in the background and kills it with SIGKILL once the manifest lists
 * at least `after_shards` shards (or after `after_ms` when after_shards < 0). Returns 1 when
 * the kill landed before the job finished. */
static int run_and_kill(const e2e *x, const char *in, const char *out, int after_shards,
                        int after_ms, int resume) {
  char cmd[4096], manifest[800];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
  snprintf(cmd, sizeof cmd,
           "exec %s extract -m '%s' -i '%s' -o '%s' --device '%s' %s %s "
           "--quiet",
           BERTCL_BIN, x->model, in, out, x->dev, JOB_OPTS, resume ? "--resume" : "");
  pid_t pid = spawn_sh(cmd);
  struct timespec ts = {0, 5 * 1000 * 1000};
  int waited = 0, status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) return 0; /* finished before the kill */
    if ((after_shards >= 0 && manifest_shards(manifest) >= after_shards) ||
        (after_shards < 0 && waited >= after_ms))
      break;
    nanosleep(&ts, NULL);
    waited += 5;
    if (waited > 600000) fail_msg("job did not progress");
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static void test_kill_resume_identical(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  job_pair p;
  job_pair_init(&p, &x, "full", "killed");
  const char *in = p.in, *a = p.a, *b = p.b, *am = p.am, *bm = p.bm;
  char cmd[4096];
  char *log = NULL;
  write_corpus(in, 3000, 40, 7);
  /* a long line (truncated) and a bad line are part of the job */
  FILE *f = fopen(in, "a");
  for (int i = 0; i < 200; i++) fprintf(f, "word%d ", i);
  fprintf(f, "\nbroken \xc3 utf8\nthe end\n");
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s 2>&1", BERTCL_BIN,
           x.model, in, a, x.dev, JOB_OPTS);
  int rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("uninterrupted run failed (%d): %s", rc, log);
  assert_non_null(strstr(log, "invalid UTF-8"));
  assert_non_null(strstr(log, "3003 rows"));
  free(log);
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, a, am);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("merge failed (%d): %s", rc, log);
  free(log);
  /* killed: mid-first-shard, after 2 shards, after 5 shards, then finished by --resume */
  int kills = 0;
  kills += run_and_kill(&x, in, b, -1, 300, 0);
  kills += run_and_kill(&x, in, b, 2, 0, 1);
  kills += run_and_kill(&x, in, b, 5, 0, 1);
  kills += run_and_kill(&x, in, b, 12, 0, 1);
  print_message("SIGKILL landed %d times\n", kills);
  assert_true(kills >= 2);
  /* the half-done job cannot be merged */
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, b, bm);
  rc = run_cmd(cmd, &log);
  if (kills == 4) {
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(log, "not complete"));
  }
  free(log);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --resume 2>&1",
           BERTCL_BIN, x.model, in, b, x.dev, JOB_OPTS);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("resume failed (%d): %s", rc, log);
  free(log);
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, b, bm);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("merge failed (%d): %s", rc, log);
  free(log);
  if (!files_equal(am, bm))
    fail_msg("merged output after kills differs from the uninterrupted run");
  /* shape checks: rows, NaN for the bad line, offsets */
  size_t n = 0, no = 0;
  float *mean = read_tensor(am, "mean", &n);
  assert_int_equal(n, (size_t)3003 * 64);
  assert_true(isnan(mean[(size_t)3001 * 64]));
  assert_false(isnan(mean[(size_t)3002 * 64]));
  int64_t *off = read_i64(am, "tokens.offsets", &no);
  assert_int_equal(no, 3004);
  assert_int_equal(off[3002], off[3001]);      /* the bad row has no tokens */
  assert_int_equal(off[3001] - off[3000], 64); /* the long row: truncated to max length */
  free(mean);
  free(off);
  /* resuming a complete job does nothing and says so */
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --resume 2>&1",
           BERTCL_BIN, x.model, in, b, x.dev, JOB_OPTS);
  rc = run_cmd(cmd, &log);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(log, "already complete"));
  free(log);
  e2e_done(&x);
}

/* The pipeline lets the device run ahead of the readback: with BERTCL_JOB_HOLD_READS each
 * batch's readback is held until the next batch's forward pass has been enqueued, so every
 * copy completes late, beside later work. The output must not change: a writer that used a
 * slot before its readback finished, or a device thread that overwrote a slot still being read,
 * would show here; a pipeline that waited for each readback before the next batch would hang
 * (ctest's timeout). */
static void test_held_readback_identical(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  job_pair p;
  job_pair_init(&p, &x, "plain", "held");
  char cmd[4096];
  char *log = NULL;
  write_corpus(p.in, 400, 40, 11);
  const char *outs[2] = {p.a, p.b}, *merged[2] = {p.am, p.bm};
  for (int k = 0; k < 2; k++) {
    snprintf(cmd, sizeof cmd,
             "%s %s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --pool cls,mean,max "
             "--quiet 2>&1 && %s merge '%s' '%s' 2>&1",
             k ? "BERTCL_JOB_HOLD_READS=1" : "", BERTCL_BIN, x.model, p.in, outs[k], x.dev,
             "--layers -2: --tokens --words mean --shard-rows 150 --window 60 --max-tokens 300 "
             "--batch-size 8 --threads 2",
             BERTCL_BIN, outs[k], merged[k]);
    int rc = run_cmd(cmd, &log);
    if (rc != 0) fail_msg("run %d failed (%d): %s", k, rc, log);
    free(log);
  }
  if (!files_equal(p.am, p.bm))
    fail_msg("held readbacks changed the output: %s vs %s", p.am, p.bm);
  e2e_done(&x);
}

/* --dtype f16 narrows on the device (to_half_fwd) and reads back half the bytes; the stored
 * halves must be exactly the fp32 run's values rounded by the host's bc_f32_to_f16. */
__attribute__((noinline)) static double readback_mb(const char *log) {
  const char *end = strstr(log, " MB read back");
  assert_non_null(end);
  size_t i = (size_t)(end - log);
  while (i > 0 && log[i - 1] != ' ') i--;
  return strtod(log + i, NULL);
}

static void test_f16_readback(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  job_pair p;
  job_pair_init(&p, &x, "f32", "f16");
  char cmd[4096];
  char *log = NULL;
  write_corpus(p.in, 300, 40, 5);
  const char *outs[2] = {p.am, p.bm}, *dt[2] = {"f32", "f16"};
  double mb[2];
  for (int k = 0; k < 2; k++) {
    snprintf(cmd, sizeof cmd,
             "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --dtype %s --pool cls,mean "
             "--layers -2: --tokens --words mean --max-tokens 400 2>&1",
             BERTCL_BIN, x.model, p.in, outs[k], x.dev, dt[k]);
    int rc = run_cmd(cmd, &log);
    if (rc != 0) fail_msg("%s run failed (%d): %s", dt[k], rc, log);
    mb[k] = readback_mb(log);
    free(log);
  }
  print_message("read back %.1f MB (f32), %.1f MB (f16)\n", mb[0], mb[1]);
  assert_true(mb[0] > 0 && fabs(mb[1] - mb[0] / 2) <= 0.06);
  static const char *const names[] = {"cls", "mean", "tokens", "words"};
  for (int t = 0; t < 4; t++) {
    size_t na = 0, nb = 0, bad = 0;
    float *a = read_tensor(p.am, names[t], &na), *b = read_tensor(p.bm, names[t], &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
      if (bc_f16_to_f32(bc_f32_to_f16(a[i])) != b[i] && bad++ < 3)
        print_message("%s[%zu]: f32 %.9g -> want %.9g, f16 file %.9g\n", names[t], i,
                      (double)a[i], (double)bc_f16_to_f32(bc_f32_to_f16(a[i])), (double)b[i]);
    assert_int_equal(bad, 0);
    free(a);
    free(b);
  }
  e2e_done(&x);
}

static void test_resume_refused(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  char in[700], out[700], cmd[4096];
  char *log = NULL;
  snprintf(in, sizeof in, "%s/corpus.txt", x.dir);
  snprintf(out, sizeof out, "%s/job", x.dir);
  write_corpus(in, 800, 12, 3);
  int killed = run_and_kill(&x, in, out, 1, 0, 0);
  (void)killed;
  /* no --resume: refused, the job is untouched */
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s 2>&1", BERTCL_BIN,
           x.model, in, out, x.dev, JOB_OPTS);
  int rc = run_cmd(cmd, &log);
  assert_int_not_equal(rc, 0);
  if (!strstr(log, "--resume")) fail_msg("unexpected message: %s", log);
  free(log);
  /* different options */
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --dtype f16 "
           "--resume 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev, JOB_OPTS);
  rc = run_cmd(cmd, &log);
  assert_int_not_equal(rc, 0);
  if (!strstr(log, "options.dtype: manifest has \"f32\", this run has \"f16\""))
    fail_msg("unexpected message: %s", log);
  free(log);
  /* a changed input (same size, a byte changed in the first rows) */
  size_t len = 0;
  char *data = slurp(in, &len);
  assert_non_null(data);
  data[1] = data[1] == 'x' ? 'y' : 'x';
  FILE *f = fopen(in, "wb");
  fwrite(data, 1, len, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --resume 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev, JOB_OPTS);
  rc = run_cmd(cmd, &log);
  assert_int_not_equal(rc, 0);
  if (!strstr(log, "changed")) fail_msg("unexpected message: %s", log);
  free(log);
  /* a longer input */
  f = fopen(in, "ab");
  fputs("one more line\n", f);
  fclose(f);
  rc = run_cmd(cmd, &log);
  assert_int_not_equal(rc, 0);
  if (!strstr(log, "input.size")) fail_msg("unexpected message: %s", log);
  free(log);
  free(data);
  e2e_done(&x);
}

/* Two runs on one job: the second is refused while the first is alive (stopped with SIGSTOP
 * once it has written a shard, so it cannot finish first), naming the first's pid; after kill -9
 * of the first, --resume works at once and completes the job. The resumed run removes this
 * job's stale temporary files and leaves those of another --shard K/N job in the directory. */
static void test_two_runs_one_job(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  char in[700], out[700], manifest[800], cmd[4096];
  char *log = NULL;
  snprintf(in, sizeof in, "%s/corpus.txt", x.dir);
  snprintf(out, sizeof out, "%s/job", x.dir);
  snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
  write_corpus(in, 3000, 20, 11);
  snprintf(cmd, sizeof cmd, "exec %s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --quiet",
           BERTCL_BIN, x.model, in, out, x.dev, JOB_OPTS);
  pid_t pid = spawn_sh(cmd);
  struct timespec ts = {0, 2 * 1000 * 1000};
  int status = 0, waited = 0;
  while (manifest_shards(manifest) < 1) {
    if (waitpid(pid, &status, WNOHANG) == pid) fail_msg("the first run ended before a shard");
    nanosleep(&ts, NULL);
    if ((waited += 2) > 600000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("the first run did not progress");
    }
  }
  assert_int_equal(kill(pid, SIGSTOP), 0);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --resume 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev, JOB_OPTS);
  int rc = run_cmd(cmd, &log);
  /* kill -9 of the (stopped) first run before any verdict: a failed check must not leave it */
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  char want[64];
  snprintf(want, sizeof want, "(pid %ld on host ", (long)pid);
  if (rc == 0 || !strstr(log, "is in use by another bertcl process") || !strstr(log, want))
    fail_msg("second run: exit %d: %s (want a refusal naming %s)", rc, log, want);
  free(log);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  /* leftovers: a temporary file of this job's, and two of a --shard 0/2 job in the same dir */
  const char *stale[3] = {"shard-00999.safetensors.tmp.1.0", "shard-0-of-2-00000.safetensors.tmp.1.0",
                          "manifest-0-of-2.json.tmp.1.1"};
  for (int i = 0; i < 3; i++) {
    char p[900];
    snprintf(p, sizeof p, "%s/%s", out, stale[i]);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
  }
  rc = run_cmd(cmd, &log);
  if (rc != 0 || !strstr(log, "bertcl: resuming"))
    fail_msg("--resume right after kill -9 failed (%d): %s", rc, log);
  free(log);
  for (int i = 0; i < 3; i++) {
    char p[900];
    snprintf(p, sizeof p, "%s/%s", out, stale[i]);
    assert_int_equal(access(p, F_OK) == 0, i > 0);
  }
  char lp[900];
  snprintf(lp, sizeof lp, "%s/manifest.json.lock", out);
  assert_int_not_equal(access(lp, F_OK), 0);
  char merged[800];
  snprintf(merged, sizeof merged, "%s/m.safetensors", x.dir);
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, out, merged);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("merge failed (%d): %s", rc, log);
  free(log);
  size_t n = 0;
  float *mean = read_tensor(merged, "mean", &n);
  assert_int_equal(n, (size_t)3000 * 64);
  free(mean);
  e2e_done(&x);
}

/* Merge checks every shard against its manifest entry before copying bytes by the manifest's
 * counts (found by fuzz_files: a manifest listing one shard twice made merge write a file whose
 * header and data disagreed). Each damaged manifest is refused with its own message; the
 * shards' checksums still match, so only these checks stand in the way. */
static void test_merge_checks_manifest(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  char in[700], out[700], mp[800], merged[800], cmd[4096];
  snprintf(in, sizeof in, "%s/corpus.txt", x.dir);
  snprintf(out, sizeof out, "%s/job", x.dir);
  snprintf(mp, sizeof mp, "%s/manifest.json", out);
  snprintf(merged, sizeof merged, "%s/m.safetensors", x.dir);
  write_corpus(in, 320, 10, 17);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --quiet 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev, JOB_OPTS);
  assert_int_equal(run_cmd(cmd, NULL), 0);
  bc_err e = {0};
  json_t *good = NULL;
  assert_int_equal(bc_manifest_load(&e, mp, &good), BERTCL_OK);
  assert_int_equal(json_array_size(json_object_get(good, "shards")), 3);
  assert_int_equal(bc_job_merge(&e, out, merged, BC_MERGE_AUTO, NULL), BERTCL_OK);
  struct {
    const char *what, *needle;
  } cases[] = {
      {"a shard listed twice", "the manifests list shard-00000.safetensors twice"},
      {"a file outside the directory", "lists shard 1 as '../corpus.txt', not a file name"},
      {"rows that do not follow", "the manifest's row range of this shard is not [150, n)"},
      {"more rows than the shard has", "tensor cls has 150 rows, the manifest says 151"},
      {"offsets that do not rise", "tensor tokens.offsets entry"},
  };
  for (int c = 0; c < 5; c++) {
    json_t *m = json_deep_copy(good);
    json_t *sh = json_object_get(m, "shards");
    json_t *s0 = json_array_get(sh, 0), *s1 = json_array_get(sh, 1);
    if (c == 0) json_array_set(sh, 1, s0);
    if (c == 1) json_object_set_new(s1, "file", json_string("../corpus.txt"));
    if (c == 2) json_object_set_new(s1, "rows", json_pack("[i, i]", 149, 300));
    if (c == 3) {
      json_object_set_new(s0, "rows", json_pack("[i, i]", 0, 151));
      json_object_set_new(s1, "rows", json_pack("[i, i]", 151, 300));
    }
    if (c == 4) {
      /* a shard of the same size whose offsets fall: written by hand, checksum updated */
      char sp[900];
      snprintf(sp, sizeof sp, "%s/shard-00002.safetensors", out);
      size_t len = 0;
      char *bytes = slurp(sp, &len);
      uint64_t hl = 0;
      memcpy(&hl, bytes, 8);
      json_t *hdr = json_loadb(bytes + 8, (size_t)hl, 0, NULL);
      json_t *off = json_object_get(json_object_get(hdr, "tokens.offsets"), "data_offsets");
      size_t at = 8 + (size_t)hl + (size_t)json_integer_value(json_array_get(off, 0));
      json_decref(hdr);
      int64_t big = 1 << 30;
      memcpy(bytes + at + 8, &big, 8); /* offsets[1] past every row */
      assert_int_equal(bc_write_file_atomic(&e, sp, bytes, len), BERTCL_OK);
      char hx[17];
      snprintf(hx, sizeof hx, "%016llx", (unsigned long long)bc_fnv1a64(BC_FNV_INIT, bytes, len));
      json_object_set_new(json_array_get(sh, 2), "checksum", json_string(hx));
      free(bytes);
    }
    assert_int_equal(bc_manifest_save(&e, mp, m), BERTCL_OK);
    json_decref(m);
    int st = bc_job_merge(&e, out, merged, BC_MERGE_AUTO, NULL);
    if (st != BERTCL_ERR_FORMAT || !strstr(e.msg, cases[c].needle))
      fail_msg("%s: %s: %s (want '%s')", cases[c].what, bertcl_status_name(st), e.msg,
               cases[c].needle);
  }
  json_decref(good);
  e2e_done(&x);
}

static void test_shard_kn_merge(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  char in[700], one[700], parts[700], m1[700], m3[700], cmd[4096];
  char *log = NULL;
  snprintf(in, sizeof in, "%s/corpus.tsv", x.dir);
  FILE *f = fopen(in, "w");
  fprintf(f, "sentence\tlabel\n");
  bc_rng r;
  bc_rng_seed(&r, 5);
  for (int i = 0; i < 500; i++) {
    int k = 1 + (int)(bc_rng_u32(&r) % 20);
    for (int w = 0; w < k; w++)
      fprintf(f, "%s%s", w ? " " : "", words_[bc_rng_u32(&r) % (sizeof words_ / sizeof *words_)]);
    fprintf(f, "\t%d\n", i % 2);
  }
  fclose(f);
  snprintf(one, sizeof one, "%s/one.safetensors", x.dir);
  snprintf(parts, sizeof parts, "%s/parts", x.dir);
  snprintf(m1, sizeof m1, "%s/m1.jsonl", x.dir);
  snprintf(m3, sizeof m3, "%s/m3.safetensors", x.dir);
  const char *o = "--column sentence --pool mean --tokens --shard-rows 70 --window 30";
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --quiet 2>&1",
           BERTCL_BIN, x.model, in, one, x.dev, o);
  int rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("single run failed (%d): %s", rc, log);
  free(log);
  for (int k = 0; k < 3; k++) {
    snprintf(cmd, sizeof cmd,
             "%s extract -m '%s' -i '%s' -o '%s' --device '%s' %s --shard %d/3 --quiet 2>&1",
             BERTCL_BIN, x.model, in, parts, x.dev, o, k);
    rc = run_cmd(cmd, &log);
    if (rc != 0) fail_msg("part %d failed (%d): %s", k, rc, log);
    free(log);
    if (k == 1) { /* with 2 of 3 parts, merge refuses */
      snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, parts, m3);
      rc = run_cmd(cmd, &log);
      assert_int_not_equal(rc, 0);
      if (!strstr(log, "manifest-2-of-3.json is missing")) fail_msg("unexpected: %s", log);
      free(log);
    }
  }
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, parts, m3);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("merge failed (%d): %s", rc, log);
  free(log);
  size_t n1, n3, t1, t3, o1, o3;
  float *a = read_tensor(one, "mean", &n1), *b = read_tensor(m3, "mean", &n3);
  assert_int_equal(n1, (size_t)500 * 32);
  assert_int_equal(n1, n3);
  assert_true(bc_check_close("mean, 3 parts vs 1", b, a, n1, 1e-5f, 1e-5f, 5));
  float *ta = read_tensor(one, "tokens", &t1), *tb = read_tensor(m3, "tokens", &t3);
  assert_int_equal(t1, t3);
  assert_true(bc_check_close("tokens, 3 parts vs 1", tb, ta, t1, 1e-5f, 1e-5f, 5));
  int64_t *oa = read_i64(one, "tokens.offsets", &o1), *ob = read_i64(m3, "tokens.offsets", &o3);
  assert_int_equal(o1, 501);
  assert_int_equal(o1, o3);
  assert_memory_equal(oa, ob, o1 * 8);
  /* JSONL merge: one object per row */
  snprintf(cmd, sizeof cmd, "%s merge '%s' '%s' 2>&1", BERTCL_BIN, parts, m1);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("jsonl merge failed (%d): %s", rc, log);
  free(log);
  json_error_t je;
  FILE *jf = fopen(m1, "r");
  char *line = NULL;
  size_t cap = 0;
  int rows = 0;
  while (getline(&line, &cap, jf) > 0) {
    json_t *obj = json_loads(line, 0, &je);
    assert_non_null(obj);
    json_t *mv = json_object_get(obj, "mean");
    assert_int_equal(json_array_size(mv), 32);
    assert_true(fabs(json_number_value(json_array_get(mv, 3)) - a[(size_t)rows * 32 + 3]) < 1e-4);
    assert_int_equal((int64_t)json_array_size(json_object_get(obj, "tokens")),
                     oa[rows + 1] - oa[rows]);
    json_decref(obj);
    rows++;
  }
  free(line);
  fclose(jf);
  assert_int_equal(rows, 500);
  free(a);
  free(b);
  free(ta);
  free(tb);
  free(oa);
  free(ob);
  e2e_done(&x);
}

/* --stride: each token of a long text comes from the window where it is most central */
static void test_stride_windows(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  bertcl_ctx *ctx = bc_test_ctx();
  char in[700], out[700], cmd[4096];
  char *log = NULL;
  snprintf(in, sizeof in, "%s/long.txt", x.dir);
  snprintf(out, sizeof out, "%s/s.safetensors", x.dir);
  static const char long_text[] =
      "the quick brown fox jumps over the lazy dog and then the cat sat on "
      "the mat again and again until the end of the world hello world";
  const char *texts[] = {"short text here", long_text, "a b"};
  FILE *f = fopen(in, "w");
  for (int i = 0; i < 3; i++) fprintf(f, "%s\n", texts[i]);
  fclose(f);
  const int ML = 12, STRIDE = 4;
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool cls "
           "--tokens --words first --max-len %d --stride %d 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev, ML, STRIDE);
  int rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("stride run failed (%d): %s", rc, log);
  free(log);
  bertcl_model *m = NULL;
  bertcl_tokenizer *tok = NULL;
  assert_int_equal(bertcl_model_load(&m, x.model), BERTCL_OK);
  assert_int_equal(bertcl_tokenizer_load(&tok, x.model), BERTCL_OK);
  bc_encoder *enc = NULL;
  assert_int_equal(bc_encoder_create(ctx, m, &enc), BERTCL_OK);
  size_t nt, no, nw, nwo;
  float *tv = read_tensor(out, "tokens", &nt), *wv = read_tensor(out, "words", &nw);
  int64_t *off = read_i64(out, "tokens.offsets", &no), *woff = read_i64(out, "words.offsets", &nwo);
  const int C = 32;
  int layer = 2;
  for (int i = 0; i < 3; i++) {
    bertcl_encoding *e = NULL;
    bertcl_tokenize_options fo = {.truncation = BERTCL_TRUNC_NONE};
    assert_int_equal(bertcl_tokenizer_encode(tok, texts[i], strlen(texts[i]), NULL, 0, &fo, &e), 0);
    int n = (int)e->n;
    assert_int_equal(off[i + 1] - off[i], n); /* every token of the full text */
    int m_ = n - 2, W = ML - 2, step = W - STRIDE;
    int nwin = 1;
    while ((nwin - 1) * step + W < m_) nwin++;
    if (i == 1) assert_true(nwin >= 3);
    /* expected: run each window alone; token p from the window maximising its distance to the
     * window's edges */
    float *want = calloc((size_t)n * C, 4);
    for (int w = 0; w < nwin; w++) {
      int s = w * step, en = s + W < m_ ? s + W : m_, len = en - s + 2;
      int32_t ids[64];
      ids[0] = e->ids[0];
      memcpy(ids + 1, e->ids + 1 + s, (size_t)(en - s) * 4);
      ids[len - 1] = e->ids[n - 1];
      assert_int_equal(bc_encoder_forward(enc, ids, NULL, NULL, 1, len, &layer, 1), 0);
      float hid[64 * 32];
      assert_int_equal(bc_encoder_read_hidden(enc, 0, hid), 0);
      for (int t = 0; t < n; t++) {
        int take;
        if (t == 0)
          take = w == 0;
        else if (t == n - 1)
          take = w == nwin - 1;
        else {
          int p = t - 1, best = -1, bestd = -1;
          for (int q = 0; q < nwin; q++) {
            int qs = q * step, qe = qs + W < m_ ? qs + W : m_;
            if (p < qs || p >= qe) continue;
            int d = p - qs < qe - 1 - p ? p - qs : qe - 1 - p;
            if (d > bestd) best = q, bestd = d;
          }
          take = best == w;
        }
        if (!take) continue;
        int local = t == 0 ? 0 : t == n - 1 ? len - 1 : 1 + (t - 1) - s;
        memcpy(want + (size_t)t * C, hid + (size_t)local * C, C * 4);
      }
    }
    char what[64];
    snprintf(what, sizeof what, "stride tokens row %d", i);
    assert_true(
        bc_check_close(what, tv + (size_t)off[i] * C, want, (size_t)n * C, 1e-4f, 1e-4f, 0));
    /* words (first subword) come from the stitched tokens */
    int32_t maxw = -1;
    for (int t = 0; t < n; t++)
      if (e->word_ids[t] > maxw) maxw = e->word_ids[t];
    assert_int_equal(woff[i + 1] - woff[i], maxw + 1);
    for (int t = n - 2; t >= 1; t--) {
      int wid = e->word_ids[t];
      if (t > 1 && e->word_ids[t - 1] == wid) continue; /* not the first subword */
      snprintf(what, sizeof what, "stride word %d row %d", wid, i);
      assert_true(bc_check_close(what, wv + ((size_t)woff[i] + (size_t)wid) * C,
                                 want + (size_t)t * C, C, 1e-4f, 1e-4f, 0));
    }
    free(want);
    bertcl_encoding_free(e);
  }
  free(tv);
  free(wv);
  free(off);
  free(woff);
  bc_encoder_free(enc);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(m);
  bertcl_ctx_free(ctx);
  e2e_done(&x);
}

/* --strict stops at a bad line; by default the row is NaN; f16 output is close to f32 */
static void test_bad_line_policy_cli(void **state) {
  (void)state;
  e2e x;
  if (!e2e_setup(&x)) skip();
  char in[700], out[700], out16[700], cmd[4096];
  char *log = NULL;
  snprintf(in, sizeof in, "%s/in.jsonl", x.dir);
  snprintf(out, sizeof out, "%s/o.safetensors", x.dir);
  snprintf(out16, sizeof out16, "%s/o16.safetensors", x.dir);
  FILE *f = fopen(in, "w");
  fprintf(f,
          "{\"text\": \"first\"}\n{\"text\": \"second\", \"text_pair\": \"pair\"}\n"
          "not json\n{\"text\": \"fourth\"}\n");
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool mean "
           "--strict 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev);
  int rc = run_cmd(cmd, &log);
  assert_int_not_equal(rc, 0);
  if (!strstr(log, "in.jsonl:3: not a JSON object")) fail_msg("unexpected: %s", log);
  free(log);
  assert_int_equal(access(out, F_OK), -1);
  snprintf(cmd, sizeof cmd, "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool mean 2>&1",
           BERTCL_BIN, x.model, in, out, x.dev);
  rc = run_cmd(cmd, &log);
  if (rc != 0) fail_msg("run failed: %s", log);
  if (!strstr(log, "in.jsonl:3: not a JSON object") || !strstr(log, "row 2 is kept"))
    fail_msg("no warning naming the line: %s", log);
  free(log);
  snprintf(cmd, sizeof cmd,
           "%s extract -m '%s' -i '%s' -o '%s' --device '%s' --pool mean "
           "--dtype f16 --quiet 2>&1",
           BERTCL_BIN, x.model, in, out16, x.dev);
  rc = run_cmd(cmd, &log);
  if (rc != 0 || log[0]) fail_msg("f16 run: rc %d, output with --quiet: %s", rc, log);
  free(log);
  size_t n, n16;
  float *v = read_tensor(out, "mean", &n), *v16 = read_tensor(out16, "mean", &n16);
  assert_int_equal(n, 4 * 32);
  assert_int_equal(n16, n);
  for (int c = 0; c < 32; c++) {
    assert_true(isnan(v[2 * 32 + c]));
    assert_true(isnan(v16[2 * 32 + c]));
  }
  for (int r = 0; r < 4; r++) {
    if (r == 2) continue;
    assert_true(bc_check_close("f16 vs f32", v16 + r * 32, v + r * 32, 32, 2e-3f, 1e-3f, 0));
  }
  bc_err e = {0};
  bc_st_file *sf = NULL;
  assert_int_equal(bc_st_open(&e, out16, &sf), 0);
  assert_string_equal(bc_st_find(sf, "mean")->dtype_name, "F16");
  bc_st_close(sf);
  free(v);
  free(v16);
  e2e_done(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_order),           cmocka_unit_test(test_shard_coverage),
      cmocka_unit_test(test_bad_line_policy_reader), cmocka_unit_test(test_bad_line_policy_cli),
      cmocka_unit_test(test_stride_windows),         cmocka_unit_test(test_shard_kn_merge),
      cmocka_unit_test(test_resume_refused),         cmocka_unit_test(test_held_readback_identical),
      cmocka_unit_test(test_f16_readback),           cmocka_unit_test(test_job_lock),
      cmocka_unit_test(test_two_runs_one_job),       cmocka_unit_test(test_merge_checks_manifest),
              cmocka_unit_test(test_kill_resume_identical),
  };
  return cmocka_run_group_tests_name("jobs", tests, NULL, NULL);
}
