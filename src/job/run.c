/* The extraction pipeline.
 *
 *   producer thread   reads a window of records (never across a shard boundary), tokenises it
 *                     on `threads` worker threads, splits long texts into --stride windows,
 *                     plans length-bucketed batches; runs one window ahead of the device.
 *   device (caller)   packs a batch and enqueues it on the compute queue: the forward pass,
 *                     then the requested features into one of two device slots (regions of
 *                     one buffer, aligned for sub-buffers), then a marker event. The readback
 *                     of that slot into its pinned host twin (CL_MEM_ALLOC_HOST_PTR, mapped
 *                     once) goes on a second, readback queue, waiting for the marker. Nothing
 *                     on this thread waits for the device: it packs and enqueues batch i+1
 *                     while batch i's features are still copied out, so the copy runs beside
 *                     the next forward pass. It waits only for a free slot.
 *   writer thread     waits for a batch's readback event, then hands the slot back;
 *                     copies each batch's rows to their input positions (order restoration),
 *                     stitches stride windows, fills the current shard, writes it (temp + fsync
 *                     + rename), then rewrites manifest.json.
 *
 * A window is processed entirely inside one shard, so a shard's bytes depend only on its own
 * rows: a resumed job writes the same shards as an uninterrupted one. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "encoder/encoder.h"
#include "io/writers.h"
#include "job/job.h"
#include "job/queue.h"
#include "model/model.h"
#include "runtime/runtime.h"

const char *const bc_job_pool_names[BC_JOB_NPOOL] = {"cls", "mean", "max", "pooler"};
static const int pool_modes[BC_JOB_NPOOL] = {BC_POOL_CLS, BC_POOL_MEAN, BC_POOL_MAX,
                                             BC_POOL_POOLER};

/* ---- data ------------------------------------------------------------------------------- */

typedef struct {
  int32_t *ids, *tts, *wids; /* (len); wids: word ids (pair offset), NULL unless words */
  int len;
  size_t row; /* row inside the window */
  int win;    /* 0: the window the sentence features come from */
} item;

typedef struct {
  int bad;
  size_t bad_at;
  uint64_t lineno;
  int truncated;
  int ntok;      /* tokens of the row's output (stitched for stride windows) */
  int32_t *wids; /* (ntok) word ids of the full text; stride rows only */
  int nwords;
  size_t first_item; /* into window->items */
  int nitems;
  int *src_item, *src_pos; /* (ntok) stride rows: window (relative) and position of token t */
} row_info;

typedef struct window {
  int kind; /* 0 rows, 1 end of input */
  uint64_t row0;
  size_t nrows;
  row_info *rows;
  item *items;
  size_t nitems;
  bc_bucket_plan plan;
  uint64_t input_end, input_hash;
  int shard_end;
  /* filled by the writer */
  float *pooled; /* (nrows, pw) */
  float **itok;  /* (nitems) -> (len, width) token features */
  float **iword; /* (nitems) -> (nwords, width) word features (device path) */
  size_t *inw;   /* (nitems) word rows */
  int remaining; /* batches not yet consumed by the writer */
} window;

typedef struct {
  cl_mem dev;   /* device buffer the batch's features are computed into */
  cl_mem dev16; /* --dtype f16: the same narrowed to halves, what is read back */
  cl_mem buf;   /* pinned host twin of what is read back (CL_MEM_ALLOC_HOST_PTR), mapped at
                   ptr; NULL = malloc */
  void *ptr;    /* floats, or halves with --dtype f16 */
  size_t cap;   /* floats */
} slot;

typedef struct {
  int kind; /* 0 batch, 1 window complete, 2 end */
  window *w;
  size_t *idx; /* (nb) item indices */
  int nb;
  slot *s;
  cl_event ready;                  /* the slot's readback (kind 0) */
  size_t blk_off[BC_JOB_NPOOL];    /* floats into the slot: pooled output k, (nb, poolw[k]) */
  size_t tok_off, word_off;        /* token rows, word rows */
} wmsg;

typedef struct {
  const bc_job_opts *o;
  bc_job_mem *mem; /* in memory (bc_job_run_mem): rows stay in the shard buffers, no files */
  const bertcl_tokenizer *tok;
  bertcl_ctx *ctx;
  bc_encoder *enc;
  int C, width, pw, npool, poolw[BC_JOB_NPOOL];
  int device_words; /* word features pooled on the device (no stride) */
  bc_reader *rd;
  bc_queue wq; /* producer -> device: windows */
  bc_queue mq; /* device -> writer: messages */
  bc_queue sq; /* writer -> device: free slots */
  slot slots[2];
  cl_command_queue rq; /* readback queue (ctx->queue when a second one cannot be made) */
  size_t align_f;      /* sub-buffer origin alignment, floats */
  cl_event gate;       /* test hook BERTCL_JOB_HOLD_READS: holds the last readback */
  int hold_reads;
  uint64_t readback_bytes; /* device thread */
  pthread_mutex_t mu;
  bc_err err;
  int failed;
  /* progress, under mu */
  uint64_t bytes0, bytes_at; /* reader offset when this run started, after the last window */
  uint64_t rows_done, rows_read, tokens_done, truncated, bad, splits, batches;
  double t0, last_print;
  int printed;
  /* shards (writer) */
  json_t *manifest;
  char manifest_path[4096];
  uint64_t row_base; /* first row of the current shard */
  size_t shard_index;
  uint64_t rows_written;
  float *sp[BC_JOB_NPOOL];
  size_t sp_cap[BC_JOB_NPOOL];
  float *stok, *sword;
  size_t stok_n, stok_cap, sword_n, sword_cap;
  int64_t *stok_off, *sword_off;
  size_t soff_cap, swoff_cap, srows;
  uint64_t s_tokens, s_trunc;
  json_t *s_bad;
  uint64_t last_end, last_hash;
  size_t shards_written;
} job;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* First failure wins; every queue is aborted so all threads stop. */
static void job_fail(job *j, const bc_err *e) {
  pthread_mutex_lock(&j->mu);
  if (!j->failed) {
    j->failed = 1;
    j->err = *e;
  }
  pthread_mutex_unlock(&j->mu);
  bc_queue_abort(&j->wq);
  bc_queue_abort(&j->mq);
  bc_queue_abort(&j->sq);
}

static void window_free(window *w) {
  if (!w) return;
  for (size_t i = 0; i < w->nitems; i++) {
    free(w->items[i].ids);
    if (w->itok) free(w->itok[i]);
    if (w->iword) free(w->iword[i]);
  }
  for (size_t r = 0; r < w->nrows; r++) {
    free(w->rows[r].wids);
    free(w->rows[r].src_item);
    free(w->rows[r].src_pos);
  }
  free(w->rows);
  free(w->items);
  free(w->pooled);
  free(w->itok);
  free(w->iword);
  free(w->inw);
  bc_bucket_free(&w->plan);
  free(w);
}

/* ---- producer: read, tokenise, bucket ---------------------------------------------------- */

typedef struct {
  job *j;
  bc_record *recs;
  row_info *rows;
  item **items; /* per row */
  size_t a, b;
  int st;
  bc_err err;
} tok_task;

static int32_t *dup3(size_t n) { return malloc((n ? n : 1) * 3 * sizeof(int32_t)); }

/* word ids unique inside the row: the pair text's are offset past the first text's */
static int row_word_ids(const bertcl_encoding *e, int32_t *out) {
  int32_t max0 = -1, maxw = -1;
  for (size_t t = 0; t < e->n; t++)
    if (e->seq_ids[t] == 0 && e->word_ids[t] > max0) max0 = e->word_ids[t];
  for (size_t t = 0; t < e->n; t++) {
    int32_t w = e->word_ids[t];
    if (w >= 0 && e->seq_ids[t] == 1) w += max0 + 1;
    out[t] = w;
    if (w > maxw) maxw = w;
  }
  return maxw + 1;
}

static void *tok_worker(void *arg) {
  tok_task *tt = arg;
  job *j = tt->j;
  const bc_job_opts *o = j->o;
  int want_words = o->words != 0, want_tok = o->tokens || want_words;
  for (size_t i = tt->a; i < tt->b && tt->st == BERTCL_OK; i++) {
    bc_record *rec = &tt->recs[i];
    row_info *ri = &tt->rows[i];
    ri->bad = rec->bad;
    ri->bad_at = rec->bad_at;
    ri->lineno = rec->lineno;
    if (rec->bad) continue;
    bertcl_tokenize_options topt = {.max_length = (size_t)o->max_len};
    bertcl_encoding *e = NULL, *full = NULL;
    const char *pair = rec->pair && rec->pair[0] ? rec->pair : NULL;
    if (bertcl_tokenizer_encode(j->tok, rec->text, strlen(rec->text), pair, pair ? strlen(pair) : 0,
                                &topt, &e) != BERTCL_OK) {
      tt->st = bc_fail(&tt->err, BERTCL_ERR_INVALID_ARG, "line %llu: %s",
                       (unsigned long long)rec->lineno, bertcl_last_error(NULL));
      break;
    }
    ri->truncated = e->overflow[0] + e->overflow[1] > 0;
    if (o->stride > 0 && want_tok && ri->truncated && !pair) {
      bertcl_tokenize_options fo = {.truncation = BERTCL_TRUNC_NONE};
      if (bertcl_tokenizer_encode(j->tok, rec->text, strlen(rec->text), NULL, 0, &fo, &full) !=
          BERTCL_OK) {
        tt->st = bc_fail(&tt->err, BERTCL_ERR_INVALID_ARG, "line %llu: %s",
                         (unsigned long long)rec->lineno, bertcl_last_error(NULL));
        bertcl_encoding_free(e);
        break;
      }
    }
    if (!full) {
      item *it = calloc(1, sizeof *it);
      int32_t *buf = dup3(e->n);
      if (!it || !buf) {
        free(it);
        free(buf);
        tt->st = bc_fail(&tt->err, BERTCL_ERR_NOMEM, "out of memory tokenising");
        bertcl_encoding_free(e);
        break;
      }
      it->ids = buf;
      it->tts = buf + e->n;
      it->wids = buf + 2 * e->n;
      it->len = (int)e->n;
      memcpy(it->ids, e->ids, e->n * 4);
      memcpy(it->tts, e->type_ids, e->n * 4);
      ri->nwords = row_word_ids(e, it->wids);
      ri->ntok = (int)e->n;
      ri->nitems = 1;
      tt->items[i] = it;
    } else {
      /* windows of W content tokens, each starting `step` after the previous one */
      int n = (int)full->n, m = n - 2, W = o->max_len - 2, step = W - o->stride;
      int nw = 1;
      while ((nw - 1) * step + W < m) nw++;
      item *its = calloc((size_t)nw, sizeof *its);
      ri->wids = malloc((size_t)n * 4);
      ri->src_item = malloc((size_t)n * sizeof(int));
      ri->src_pos = malloc((size_t)n * sizeof(int));
      int ok = its && ri->wids && ri->src_item && ri->src_pos;
      for (int w = 0; ok && w < nw; w++) {
        int s = w * step, en = s + W < m ? s + W : m, len = en - s + 2;
        int32_t *buf = dup3((size_t)len);
        if (!buf) {
          ok = 0;
          break;
        }
        its[w].ids = buf;
        its[w].tts = buf + len;
        its[w].wids = NULL;
        its[w].len = len;
        its[w].win = w;
        its[w].ids[0] = full->ids[0];
        memcpy(its[w].ids + 1, full->ids + 1 + s, (size_t)(en - s) * 4);
        its[w].ids[len - 1] = full->ids[n - 1];
        memset(its[w].tts, 0, (size_t)len * 4);
      }
      if (!ok) {
        if (its)
          for (int w = 0; w < nw; w++) free(its[w].ids);
        free(its);
        tt->st = bc_fail(&tt->err, BERTCL_ERR_NOMEM, "out of memory splitting a long text");
        bertcl_encoding_free(e);
        bertcl_encoding_free(full);
        break;
      }
      ri->nwords = row_word_ids(full, ri->wids);
      /* each content token from the window where it is most central (earliest on ties) */
      ri->src_item[0] = 0;
      ri->src_pos[0] = 0;
      ri->src_item[n - 1] = nw - 1;
      ri->src_pos[n - 1] = its[nw - 1].len - 1;
      for (int p = 0; p < m; p++) {
        int best = -1, bestd = -1;
        for (int w = p / step < nw ? p / step : nw - 1; w >= 0; w--) {
          int s = w * step, en = s + W < m ? s + W : m;
          if (p < s) continue;
          if (p >= en) break;
          int d = p - s < en - 1 - p ? p - s : en - 1 - p;
          if (d >= bestd) best = w, bestd = d; /* scanning down: >= keeps the earliest */
        }
        ri->src_item[p + 1] = best;
        ri->src_pos[p + 1] = 1 + p - best * step;
      }
      ri->ntok = n;
      ri->nitems = nw;
      tt->items[i] = its;
    }
    bertcl_encoding_free(e);
    bertcl_encoding_free(full);
  }
  return NULL;
}

/* "input:LINE: what (byte B)"; lines of part K > 0 of a --shard split count from its start */
static void bad_where(char *buf, size_t n, const bc_job_opts *o, uint64_t lineno, int bad,
                      size_t at) {
  char part[48] = "", byte[40] = "";
  if (o->texts) { /* in memory: the text's index */
    if (bad == BC_BAD_UTF8) snprintf(byte, sizeof byte, " at byte %zu", at);
    snprintf(buf, n, "texts[%llu]: %s%s", (unsigned long long)(lineno - 1), bc_bad_kind_str(bad),
             byte);
    return;
  }
  if (o->shard_n > 1 && o->shard_k > 0)
    snprintf(part, sizeof part, " (line of part %d/%d)", o->shard_k, o->shard_n);
  if (bad == BC_BAD_UTF8 || bad == BC_BAD_NUL) snprintf(byte, sizeof byte, " at byte %zu", at);
  snprintf(buf, n, "%s:%llu%s: %s%s", o->input, (unsigned long long)lineno, part,
           bc_bad_kind_str(bad), byte);
}

static void print_bad(job *j, const window *w, size_t r) {
  const row_info *ri = &w->rows[r];
  pthread_mutex_lock(&j->mu);
  uint64_t nbad = ++j->bad;
  pthread_mutex_unlock(&j->mu);
  if (j->o->quiet) return;
  char wh[4096 + 200];
  bad_where(wh, sizeof wh, j->o, ri->lineno, ri->bad, ri->bad_at);
  if (nbad <= 20)
    fprintf(stderr,
            "bertcl: warning: %s; row %llu is kept with NaN features and no tokens "
            "(--strict stops instead)\n",
            wh, (unsigned long long)(w->row0 + r));
  else if (nbad == 21)
    fprintf(stderr, "bertcl: warning: more bad lines; they are listed in the manifest\n");
}

static int make_window(job *j, uint64_t row0, window **out, int *eof) {
  const bc_job_opts *o = j->o;
  *out = NULL;
  size_t left = o->shard_rows - (size_t)(row0 % o->shard_rows);
  size_t want = o->window < left ? o->window : left;
  bc_record *recs = calloc(want, sizeof *recs);
  window *w = calloc(1, sizeof *w);
  bc_err e = {0};
  int st = BERTCL_OK;
  item **its = NULL;
  if (!recs || !w) {
    st = bc_fail(&e, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  size_t n = 0;
  while (n < want) {
    int r = bc_reader_next(j->rd, &recs[n]);
    if (r < 0) {
      e = *bc_thread_err();
      st = r;
      goto fail;
    }
    if (r == 0) {
      *eof = 1;
      break;
    }
    if (recs[n].bad && o->strict) {
      char wh[4096 + 200];
      bad_where(wh, sizeof wh, o, recs[n].lineno, recs[n].bad, recs[n].bad_at);
      st = bc_fail(&e, BERTCL_ERR_FORMAT, "%s; stopped (--strict)", wh);
      n++;
      goto fail;
    }
    n++;
  }
  w->row0 = row0;
  w->nrows = n;
  w->input_end = bc_reader_offset(j->rd);
  w->input_hash = bc_reader_hash(j->rd);
  w->shard_end = n == left || *eof;
  if (n == 0) {
    free(recs);
    *out = w;
    return BERTCL_OK;
  }
  w->rows = calloc(n, sizeof *w->rows);
  its = calloc(n, sizeof *its);
  if (!w->rows || !its) {
    st = bc_fail(&e, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  /* tokenise on worker threads */
  int nt = o->threads > 0 ? o->threads : 1;
  if ((size_t)nt > n) nt = (int)n;
  tok_task tasks[64];
  pthread_t th[64];
  if (nt > 64) nt = 64;
  for (int t = 0; t < nt; t++) {
    tasks[t] = (tok_task){.j = j,
                          .recs = recs,
                          .rows = w->rows,
                          .items = its,
                          .a = n * (size_t)t / (size_t)nt,
                          .b = n * (size_t)(t + 1) / (size_t)nt};
  }
  int started = 0;
  for (int t = 1; t < nt; t++) {
    if (pthread_create(&th[t], NULL, tok_worker, &tasks[t]) != 0) break;
    started = t;
  }
  tok_worker(&tasks[0]);
  for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
  for (int t = started + 1; t < nt; t++) tok_worker(&tasks[t]); /* threads that did not start */
  for (int t = 0; t < nt; t++)
    if (tasks[t].st != BERTCL_OK) {
      e = tasks[t].err;
      st = tasks[t].st;
      goto fail;
    }
  /* flatten items; stats; bad-row warnings */
  size_t ni = 0;
  for (size_t r = 0; r < n; r++) ni += (size_t)w->rows[r].nitems;
  w->items = calloc(ni ? ni : 1, sizeof *w->items);
  int *lens = malloc((ni ? ni : 1) * sizeof *lens);
  if (!w->items || !lens) {
    free(lens);
    st = bc_fail(&e, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  uint64_t trunc = 0, splits = 0;
  for (size_t r = 0; r < n; r++) {
    row_info *ri = &w->rows[r];
    if (ri->bad) print_bad(j, w, r);
    ri->first_item = w->nitems;
    for (int k = 0; k < ri->nitems; k++) {
      item it = its[r][k];
      it.row = r;
      lens[w->nitems] = it.len;
      w->items[w->nitems++] = it;
    }
    free(its[r]);
    its[r] = NULL;
    trunc += ri->truncated != 0;
    splits += ri->nitems > 1;
  }
  free(its);
  its = NULL;
  pthread_mutex_lock(&j->mu);
  j->rows_read += n;
  j->bytes_at = w->input_end;
  j->truncated += trunc;
  j->splits += splits;
  pthread_mutex_unlock(&j->mu);
  st = bc_bucket_make(&e, lens, w->nitems, o->bucket, o->max_tokens, o->max_batch, &w->plan);
  free(lens);
  if (st != BERTCL_OK) goto fail;
  for (size_t r = 0; r < n; r++) bc_record_clear(&recs[r]);
  free(recs);
  *out = w;
  return BERTCL_OK;
fail:
  if (recs)
    for (size_t r = 0; r < want; r++) bc_record_clear(&recs[r]);
  free(recs);
  if (its && w)
    for (size_t r = 0; r < w->nrows; r++) {
      if (its[r])
        for (int k = 0; k < w->rows[r].nitems; k++) free(its[r][k].ids);
      free(its[r]);
    }
  free(its);
  window_free(w);
  job_fail(j, &e);
  return st;
}

typedef struct {
  job *j;
  uint64_t row0;
} producer_arg;

static void *producer(void *arg) {
  producer_arg *pa = arg;
  job *j = pa->j;
  uint64_t row = pa->row0;
  int eof = 0;
  while (!eof) {
    window *w = NULL;
    if (make_window(j, row, &w, &eof) != BERTCL_OK) return NULL;
    if (w->nrows == 0) {
      window_free(w);
      break;
    }
    row += w->nrows;
    if (bc_queue_push(&j->wq, w) != 0) {
      window_free(w);
      return NULL;
    }
  }
  window *end = calloc(1, sizeof *end);
  if (!end) {
    bc_err e = {0};
    bc_fail(&e, BERTCL_ERR_NOMEM, "out of memory");
    job_fail(j, &e);
    return NULL;
  }
  end->kind = 1;
  end->row0 = row;
  end->input_end = bc_reader_offset(j->rd);
  end->input_hash = bc_reader_hash(j->rd);
  if (bc_queue_push(&j->wq, end) != 0) free(end);
  return NULL;
}

/* ---- progress --------------------------------------------------------------------------- */

static void progress(job *j, int final) {
  const bc_job_opts *o = j->o;
  if (o->quiet) return;
  double t = now_s();
  pthread_mutex_lock(&j->mu);
  double every = o->progress_tty ? 0.25 : o->progress_every;
  if (!final && t - j->last_print < every) {
    pthread_mutex_unlock(&j->mu);
    return;
  }
  j->last_print = t;
  uint64_t rows = j->rows_done, toks = j->tokens_done, read = j->rows_read;
  uint64_t at = j->bytes_at;
  pthread_mutex_unlock(&j->mu);
  double el = t - j->t0 > 1e-9 ? t - j->t0 : 1e-9;
  uint64_t a = j->bytes0, b = bc_reader_range_end(j->rd);
  /* the reader runs a window ahead: scale the bytes read by the share of rows done */
  double frac = b > a ? (double)(at - a) / (double)(b - a) : 0.0;
  if (read > rows) frac *= (double)rows / (double)read;
  if (frac > 1) frac = 1;
  char eta[32] = "?";
  if (frac > 0.001 && !final) {
    double left = el / frac - el;
    snprintf(eta, sizeof eta, "%dm%02ds", (int)(left / 60), (int)fmod(left, 60));
  }
  if (o->progress_tty) {
    int fill = (int)(frac * 30);
    char bar[31];
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %3.0f%% %llu rows  %.0f rows/s  %.0f tok/s  ETA %s   ", bar, frac * 100,
            (unsigned long long)rows, rows / el, toks / el, final ? "0s" : eta);
    if (final) fputc('\n', stderr);
    j->printed = 1;
  } else if (!final) {
    fprintf(stderr,
            "bertcl: %llu rows (%.0f%% of the input read), %.0f rows/s, %.0f tokens/s, "
            "ETA %s\n",
            (unsigned long long)rows, frac * 100, rows / el, toks / el, eta);
  }
  fflush(stderr);
}

/* ---- writer: order restoration, shards, manifest ----------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap : 1024;
  while (nc < need) nc *= 2;
  void *q = realloc(*p, nc * elem);
  if (!q) return -1;
  *p = q;
  *cap = nc;
  return 0;
}

static char *hex64(char *buf, uint64_t v) {
  snprintf(buf, 17, "%016llx", (unsigned long long)v);
  return buf;
}

static int write_floats(bc_err *e, bc_afile *f, const float *x, size_t n, int f16) {
  if (!f16) return bc_afile_write(e, f, x, n * 4);
  uint16_t buf[4096];
  for (size_t i = 0; i < n; i += 4096) {
    size_t k = n - i < 4096 ? n - i : 4096;
    for (size_t q = 0; q < k; q++) buf[q] = bc_f32_to_f16(x[i + q]);
    int st = bc_afile_write(e, f, buf, k * 2);
    if (st) return st;
  }
  return BERTCL_OK;
}

/* metadata shared by every shard and the merged file (no row numbers: merged bytes must not
 * depend on how the job was split) */
static void job_meta(const bc_job_opts *o, char *pools, size_t pn, char *layers, size_t ln) {
  pools[0] = layers[0] = '\0';
  for (int k = 0; k < BC_JOB_NPOOL; k++)
    if (o->want[k]) {
      size_t l = strlen(pools);
      snprintf(pools + l, pn - l, "%s%s", l ? "," : "", bc_job_pool_names[k]);
    }
  if (!pools[0]) snprintf(pools, pn, "none");
  for (int i = 0; i < o->nlayers; i++) {
    size_t l = strlen(layers);
    snprintf(layers + l, ln - l, "%s%d", i ? "," : "", o->layers[i]);
  }
}

static const char *combine_name(int c) {
  return c == BC_COMBINE_MEAN ? "mean" : c == BC_COMBINE_SUM ? "sum" : "concat";
}

static int write_shard(job *j, bc_err *e, uint64_t input_end, uint64_t input_hash) {
  const bc_job_opts *o = j->o;
  char name[256], path[4096 + 300];
  bc_shard_file_name(name, sizeof name, o->shard_k, o->shard_n, j->shard_index);
  snprintf(path, sizeof path, "%s/%s", o->outdir, name);
  const char *fdt = o->f16 ? "F16" : "F32";
  bc_st_desc d[BC_JOB_NPOOL + 4];
  const void *data[BC_JOB_NPOOL + 4];
  int isf[BC_JOB_NPOOL + 4];
  size_t nd = 0;
  size_t R = j->srows;
  for (int k = 0; k < BC_JOB_NPOOL; k++)
    if (o->want[k]) {
      d[nd] = (bc_st_desc){bc_job_pool_names[k], fdt, 2, {R, (uint64_t)j->poolw[k]}};
      data[nd] = j->sp[k];
      isf[nd++] = 1;
    }
  if (o->tokens) {
    d[nd] = (bc_st_desc){"tokens", fdt, 2, {j->stok_n, (uint64_t)j->width}};
    data[nd] = j->stok;
    isf[nd++] = 1;
    d[nd] = (bc_st_desc){"tokens.offsets", "I64", 1, {R + 1, 0}};
    data[nd] = j->stok_off;
    isf[nd++] = 0;
  }
  if (o->words) {
    d[nd] = (bc_st_desc){"words", fdt, 2, {j->sword_n, (uint64_t)j->width}};
    data[nd] = j->sword;
    isf[nd++] = 1;
    d[nd] = (bc_st_desc){"words.offsets", "I64", 1, {R + 1, 0}};
    data[nd] = j->sword_off;
    isf[nd++] = 0;
  }
  const char *meta[14];
  int nmeta = bc_job_meta(j->manifest, meta);
  char *hdr = NULL;
  size_t hl = 0;
  int st = bc_st_header(e, d, nd, meta, (size_t)nmeta, &hdr, &hl);
  if (st) return st;
  bc_afile f;
  st = bc_afile_open(e, &f, path);
  if (st) {
    free(hdr);
    return st;
  }
  st = bc_afile_write(e, &f, hdr, hl);
  free(hdr);
  for (size_t i = 0; i < nd && st == BERTCL_OK; i++) {
    size_t numel = d[i].ndim == 2 ? d[i].shape[0] * d[i].shape[1] : d[i].shape[0];
    if (isf[i])
      st = write_floats(e, &f, data[i], numel, o->f16);
    else
      st = bc_afile_write(e, &f, data[i], numel * 8);
  }
  if (st == BERTCL_OK)
    st = bc_afile_commit(e, &f);
  else
    bc_afile_abort(&f);
  if (st) return st;
  /* manifest */
  char h1[17], h2[17];
  json_t *sh =
      json_pack("{s:s, s:[I, I], s:I, s:s, s:s, s:I, s:I, s:I, s:o}", "file", name, "rows",
                (json_int_t)j->row_base, (json_int_t)(j->row_base + R), "input_end",
                (json_int_t)input_end, "input_hash", hex64(h1, input_hash), "checksum",
                hex64(h2, f.hash), "bytes", (json_int_t)f.bytes, "tokens", (json_int_t)j->s_tokens,
                "truncated", (json_int_t)j->s_trunc, "bad_rows", json_copy(j->s_bad));
  json_array_append_new(json_object_get(j->manifest, "shards"), sh);
  json_object_set_new(j->manifest, "rows_completed", json_integer((json_int_t)(j->row_base + R)));
  st = bc_manifest_save(e, j->manifest_path, j->manifest);
  if (st) return st;
  j->shard_index++;
  j->shards_written++;
  j->row_base += R;
  j->srows = 0;
  j->stok_n = j->sword_n = 0;
  j->s_tokens = j->s_trunc = 0;
  json_array_clear(j->s_bad);
  return BERTCL_OK;
}

/* Appends row r of window w to the current shard. */
static int emit_row(job *j, bc_err *e, window *w, size_t r) {
  const bc_job_opts *o = j->o;
  row_info *ri = &w->rows[r];
  size_t R = j->srows, W = (size_t)j->width;
  for (int k = 0; k < BC_JOB_NPOOL; k++) {
    if (!o->want[k]) continue;
    size_t pk = (size_t)j->poolw[k];
    if (grow((void **)&j->sp[k], &j->sp_cap[k], (R + 1) * pk, sizeof(float)))
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    float *dst = j->sp[k] + R * pk;
    if (ri->bad) {
      for (size_t c = 0; c < pk; c++) dst[c] = NAN;
    } else {
      size_t off = 0;
      for (int q = 0; q < k; q++)
        if (o->want[q]) off += (size_t)j->poolw[q];
      memcpy(dst, w->pooled + r * (size_t)j->pw + off, pk * 4);
    }
  }
  if (grow((void **)&j->stok_off, &j->soff_cap, R + 2, sizeof(int64_t)) ||
      grow((void **)&j->sword_off, &j->swoff_cap, R + 2, sizeof(int64_t)))
    return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
  if (R == 0) j->stok_off[0] = j->sword_off[0] = 0;
  size_t ntok = ri->bad ? 0 : (size_t)ri->ntok;
  float *tk = NULL; /* (ntok, W) this row's token features */
  float *stitched = NULL;
  if (!ri->bad && (o->tokens || (o->words && !j->device_words))) {
    if (ri->nitems == 1) {
      tk = w->itok[ri->first_item];
    } else {
      stitched = malloc(ntok * W * 4);
      if (!stitched) return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
      for (size_t t = 0; t < ntok; t++)
        memcpy(stitched + t * W,
               w->itok[ri->first_item + (size_t)ri->src_item[t]] + (size_t)ri->src_pos[t] * W,
               W * 4);
      tk = stitched;
    }
  }
  if (o->tokens) {
    if (grow((void **)&j->stok, &j->stok_cap, (j->stok_n + ntok) * W, sizeof(float))) {
      free(stitched);
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    }
    if (ntok) memcpy(j->stok + j->stok_n * W, tk, ntok * W * 4);
    j->stok_n += ntok;
  }
  j->stok_off[R + 1] = (int64_t)j->stok_n;
  if (o->words) {
    size_t nw = ri->bad ? 0 : (size_t)ri->nwords;
    if (grow((void **)&j->sword, &j->sword_cap, (j->sword_n + nw) * W, sizeof(float))) {
      free(stitched);
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    }
    float *dst = j->sword + j->sword_n * W;
    if (nw && j->device_words) {
      memcpy(dst, w->iword[ri->first_item], nw * W * 4);
    } else if (nw) {
      /* host pooling of stitched tokens: first subword, or mean of subwords */
      const int32_t *wid = ri->nitems > 1 ? ri->wids : w->items[ri->first_item].wids;
      float *cnt = calloc(nw, sizeof(float));
      if (!cnt) {
        free(stitched);
        return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
      }
      memset(dst, 0, nw * W * 4);
      for (size_t t = 0; t < ntok; t++) {
        int32_t q = wid[t];
        if (q < 0 || (o->words == 1 && cnt[q] > 0)) continue;
        for (size_t c = 0; c < W; c++) dst[(size_t)q * W + c] += tk[t * W + c];
        cnt[q] += 1.0f;
      }
      for (size_t q = 0; q < nw; q++)
        if (cnt[q] > 1)
          for (size_t c = 0; c < W; c++) dst[q * W + c] /= cnt[q];
      free(cnt);
    }
    j->sword_n += nw;
  }
  j->sword_off[R + 1] = (int64_t)j->sword_n;
  free(stitched);
  if (ri->bad) json_array_append_new(j->s_bad, json_integer((json_int_t)(w->row0 + r)));
  j->s_tokens += ntok;
  j->s_trunc += ri->truncated != 0;
  j->srows++;
  j->rows_written++;
  return BERTCL_OK;
}

/* Copies n values from float offset off of a slot read back (widening halves: exact). */
static void slot_take(const job *j, float *dst, const slot *s, size_t off, size_t n) {
  if (j->o->f16) {
    const uint16_t *h = (const uint16_t *)s->ptr + off;
    for (size_t i = 0; i < n; i++) dst[i] = bc_f16_to_f32(h[i]);
  } else {
    memcpy(dst, (const float *)s->ptr + off, n * 4);
  }
}

/* Waits for a batch's readback; its status says whether the device finished the batch. */
static int wait_readback(bc_err *e, wmsg *m) {
  cl_int es = CL_COMPLETE;
  cl_int rc = clWaitForEvents(1, &m->ready);
  if (rc == CL_SUCCESS)
    rc = clGetEventInfo(m->ready, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof es, &es, NULL);
  clReleaseEvent(m->ready);
  m->ready = NULL;
  if (rc != CL_SUCCESS || es < 0) {
    cl_int code = rc != CL_SUCCESS ? rc : es;
    return bc_fail(e, bc_cl_status(code),
                   "the device failed a batch (%s, %d) while computing or reading it back%s",
                   bc_cl_errname(code), (int)code,
                   bc_cl_status(code) == BERTCL_ERR_DEVICE_OOM
                       ? "; the device ran out of memory: try a smaller --batch-size or "
                         "--max-tokens"
                       : "");
  }
  return BERTCL_OK;
}

static void *writer(void *arg) {
  job *j = arg;
  const bc_job_opts *o = j->o;
  bc_err e = {0};
  int st = BERTCL_OK;
  size_t W = (size_t)j->width;
  for (;;) {
    wmsg *m = bc_queue_pop(&j->mq);
    if (!m) return NULL;
    window *w = m->w;
    if (m->kind == 0) {
      st = wait_readback(&e, m);
      const slot *sl = m->s;
      size_t toff = m->tok_off, woff = m->word_off;
      for (int b = 0; b < m->nb && st == BERTCL_OK; b++) {
        item *it = &w->items[m->idx[b]];
        if (it->win == 0) {
          /* output k of the batch is its own (nb, poolw[k]) block; a row joins them */
          float *row = w->pooled + it->row * (size_t)j->pw;
          for (int k = 0; k < BC_JOB_NPOOL; k++) {
            if (!o->want[k]) continue;
            size_t wk = (size_t)j->poolw[k];
            slot_take(j, row, sl, m->blk_off[k] + (size_t)b * wk, wk);
            row += wk;
          }
        }
        if (w->itok) {
          float *t = malloc((size_t)it->len * W * 4);
          if (!t) {
            st = bc_fail(&e, BERTCL_ERR_NOMEM, "out of memory");
            break;
          }
          slot_take(j, t, sl, toff, (size_t)it->len * W);
          w->itok[m->idx[b]] = t;
          toff += (size_t)it->len * W;
        }
        if (w->iword) {
          size_t nw = (size_t)w->rows[it->row].nwords;
          float *t = malloc((nw ? nw : 1) * W * 4);
          if (!t) {
            st = bc_fail(&e, BERTCL_ERR_NOMEM, "out of memory");
            break;
          }
          slot_take(j, t, sl, woff, nw * W);
          w->iword[m->idx[b]] = t;
          woff += nw * W;
        }
      }
      /* the slot goes back to the device thread (fails only when the job is stopping) */
      bc_queue_push(&j->sq, m->s);
      free(m->idx);
      free(m);
      if (st) break;
    } else if (m->kind == 1) {
      free(m);
      for (size_t r = 0; r < w->nrows && st == BERTCL_OK; r++) st = emit_row(j, &e, w, r);
      if (st == BERTCL_OK && w->shard_end && !j->mem)
        st = write_shard(j, &e, w->input_end, w->input_hash);
      j->last_end = w->input_end;
      j->last_hash = w->input_hash;
      window_free(w);
      if (st) break;
    } else {
      free(m);
      if (j->srows && !j->mem) st = write_shard(j, &e, w->input_end, w->input_hash);
      if (st == BERTCL_OK && !j->mem) {
        char h[17];
        json_t *in = json_object_get(j->manifest, "input");
        json_object_set_new(in, "end", json_integer((json_int_t)w->input_end));
        json_object_set_new(in, "hash", json_string(hex64(h, w->input_hash)));
        json_object_set_new(j->manifest, "complete", json_true());
        st = bc_manifest_save(&e, j->manifest_path, j->manifest);
      }
      window_free(w);
      if (st) break;
      (void)o;
      return NULL;
    }
  }
  job_fail(j, &e);
  return NULL;
}

/* ---- device ----------------------------------------------------------------------------- */

static void slot_release(job *j, slot *s) {
  /* callers have waited for the slot's commands (its readback, or clFinish on both queues) */
  if (s->buf) {
    clEnqueueUnmapMemObject(j->ctx->queue, s->buf, s->ptr, 0, NULL, NULL);
    clFinish(j->ctx->queue);
    clReleaseMemObject(s->buf);
  } else {
    free(s->ptr);
  }
  if (s->dev) clReleaseMemObject(s->dev);
  if (s->dev16) clReleaseMemObject(s->dev16);
  memset(s, 0, sizeof *s);
}

/* Grows a slot to `floats` values on the device (and their halves with --dtype f16) and in
 * pinned host memory for what is read back (pageable when the device offers no pinned memory).
 * The slot came back from the writer, so nothing uses it. */
static int slot_reserve(job *j, bc_err *e, slot *s, size_t floats) {
  if (floats <= s->cap) return BERTCL_OK;
  bertcl_ctx *ctx = j->ctx;
  size_t nc = floats + floats / 2, es = j->o->f16 ? 2 : 4, host = nc * es;
  if (s->ptr || s->dev) slot_release(j, s);
  cl_int rc = CL_SUCCESS;
  int bst = BERTCL_OK; /* bc_buffer_new: a GEMM (the pooler) writes into this buffer */
  s->dev = bc_buffer_new(ctx, CL_MEM_READ_WRITE, nc * 4, NULL, &bst);
  if (s->dev && j->o->f16) s->dev16 = bc_buffer_new(ctx, CL_MEM_READ_WRITE, nc * 2, NULL, &bst);
  if (bst != BERTCL_OK) {
    if (s->dev) clReleaseMemObject(s->dev);
    s->dev = s->dev16 = NULL;
    return bc_fail(e, bst,
                   "cannot allocate %zu bytes of device memory for a batch's features (%s); try "
                   "a smaller --batch-size or --max-tokens",
                   nc * 4 + (j->o->f16 ? nc * 2 : 0), ctx->err.msg);
  }
  s->buf =
      clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, host, NULL, &rc);
  if (rc == CL_SUCCESS) {
    s->ptr = clEnqueueMapBuffer(ctx->queue, s->buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, host,
                                0, NULL, NULL, &rc);
    if (rc != CL_SUCCESS) {
      clReleaseMemObject(s->buf);
      s->ptr = NULL;
    }
  }
  if (rc != CL_SUCCESS) { /* no pinned memory: pageable host memory still works */
    s->buf = NULL;
    s->ptr = malloc(host);
    if (!s->ptr) {
      clReleaseMemObject(s->dev);
      if (s->dev16) clReleaseMemObject(s->dev16);
      s->dev = s->dev16 = NULL;
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory (%zu-byte readback)", host);
    }
  }
  s->cap = nc;
  return BERTCL_OK;
}

/* The test hook's gate: lets the held readback go. */
static void gate_open(job *j) {
  if (!j->gate) return;
  clSetUserEventStatus(j->gate, CL_COMPLETE);
  clReleaseEvent(j->gate);
  j->gate = NULL;
}

/* Region [off, off + n) floats of the slot's device buffer, as a sub-buffer. */
static cl_mem slot_region(bc_err *e, slot *s, size_t off, size_t n, int *st) {
  cl_buffer_region r = {off * 4, n * 4};
  cl_int rc = CL_SUCCESS;
  cl_mem m = clCreateSubBuffer(s->dev, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &rc);
  if (rc != CL_SUCCESS) {
    *st = bc_fail(e, bc_cl_status(rc), "clCreateSubBuffer(%zu, %zu bytes) -> %s (%d)", r.origin,
                  r.size, bc_cl_errname(rc), (int)rc);
    return NULL;
  }
  return m;
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* Enqueues the batch's features into slot s (the regions of m) and their readback on the
 * readback queue; m->ready is the readback's event. Waits for nothing. */
static int enqueue_features(job *j, bc_err *e, wmsg *m, const int32_t *wids, size_t tok_n,
                            size_t word_n) {
  const bc_job_opts *o = j->o;
  bertcl_ctx *ctx = j->ctx;
  slot *s = m->s;
  int st = BERTCL_OK;
  size_t off = 0, A = j->align_f;
  for (int k = 0; k < BC_JOB_NPOOL; k++) {
    if (!o->want[k]) continue;
    m->blk_off[k] = off;
    off = align_up(off + (size_t)m->nb * j->poolw[k], A);
  }
  m->tok_off = off;
  off = align_up(off + tok_n, A);
  m->word_off = off;
  off += word_n;
  if (off == 0) off = 1;
  if ((st = slot_reserve(j, e, s, off))) return st;
  for (int k = 0; k < BC_JOB_NPOOL && st == BERTCL_OK; k++) {
    if (!o->want[k]) continue;
    cl_mem d = slot_region(e, s, m->blk_off[k], (size_t)m->nb * j->poolw[k], &st);
    if (!d) break;
    st = k == BC_JOB_POOLER
             ? bc_encoder_pooler_to(j->enc, d)
             : bc_encoder_pooled_to(j->enc, pool_modes[k], o->combine, o->normalize, d);
    clReleaseMemObject(d); /* freed once the kernels that use it are done */
  }
  if (st == BERTCL_OK && tok_n) {
    cl_mem d = slot_region(e, s, m->tok_off, tok_n, &st);
    if (d) {
      st = bc_encoder_tokens_to(j->enc, o->combine, d);
      clReleaseMemObject(d);
    }
  }
  if (st == BERTCL_OK && word_n) {
    cl_mem d = slot_region(e, s, m->word_off, word_n, &st);
    if (d) {
      st = bc_encoder_words_to(j->enc, wids, o->words, o->combine, d);
      clReleaseMemObject(d);
    }
  }
  if (st != BERTCL_OK) {
    if (e->msg[0] == '\0') *e = ctx->err;
    return st;
  }
  /* --dtype f16: narrowed on the device, so half the bytes cross the bus */
  cl_mem src = s->dev;
  size_t bytes = off * 4;
  if (o->f16) {
    if ((st = bc_encoder_to_half(j->enc, s->dev16, s->dev, off))) {
      *e = ctx->err;
      return st;
    }
    src = s->dev16;
    bytes = off * 2;
  }
  j->readback_bytes += bytes;
  cl_event waits[2];
  cl_uint nw = 0;
  cl_int rc = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &waits[nw]);
  if (rc == CL_SUCCESS) nw++;
  if (rc == CL_SUCCESS && j->hold_reads) {
    gate_open(j);
    j->gate = clCreateUserEvent(ctx->context, &rc);
    if (rc == CL_SUCCESS) {
      clRetainEvent(j->gate);
      waits[nw++] = j->gate;
    }
  }
  if (rc == CL_SUCCESS) rc = clFlush(ctx->queue);
  if (rc == CL_SUCCESS)
    rc = clEnqueueReadBuffer(j->rq, src, CL_FALSE, 0, bytes, s->ptr, nw, waits, &m->ready);
  if (rc == CL_SUCCESS) rc = clFlush(j->rq);
  for (cl_uint i = 0; i < nw; i++) clReleaseEvent(waits[i]);
  if (rc != CL_SUCCESS) {
    gate_open(j);
    if (m->ready) {
      clWaitForEvents(1, &m->ready);
      clReleaseEvent(m->ready);
      m->ready = NULL;
    }
    return bc_fail(e, bc_cl_status(rc), "enqueueing a batch's readback -> %s (%d)",
                   bc_cl_errname(rc), (int)rc);
  }
  return BERTCL_OK;
}

typedef struct {
  int32_t *ids, *tts, *mask, *wids;
  size_t cap;
} packbuf;

/* Runs items idx[0..n) as batches of at most *cap_b (halved on device OOM) */
static int run_batch(job *j, bc_err *e, window *w, const size_t *idx, size_t n, int *cap_b,
                     packbuf *pb) {
  const bc_job_opts *o = j->o;
  size_t pos = 0;
  while (pos < n) {
    int nb = (int)(n - pos < (size_t)*cap_b ? n - pos : (size_t)*cap_b);
    int T = 0;
    for (int b = 0; b < nb; b++)
      if (w->items[idx[pos + b]].len > T) T = w->items[idx[pos + b]].len;
    size_t N = (size_t)nb * T;
    if (N > pb->cap) {
      size_t nc = N * 2;
      int32_t *p = realloc(pb->ids, nc * 4 * 4);
      if (!p) return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
      pb->ids = p;
      pb->tts = p + nc;
      pb->mask = p + 2 * nc;
      pb->wids = p + 3 * nc;
      pb->cap = nc;
    }
    for (int b = 0; b < nb; b++) {
      const item *it = &w->items[idx[pos + b]];
      for (int t = 0; t < T; t++) {
        size_t q = (size_t)b * T + t;
        int real = t < it->len;
        pb->ids[q] = real ? it->ids[t] : 0;
        pb->tts[q] = real ? it->tts[t] : 0;
        pb->mask[q] = real;
        pb->wids[q] = real && it->wids ? it->wids[t] : -1;
      }
    }
    int st = bc_encoder_forward(j->enc, pb->ids, pb->tts, pb->mask, nb, T, o->layers, o->nlayers);
    if (st == BERTCL_ERR_DEVICE_OOM && nb > 1) {
      *cap_b = nb / 2;
      if (!o->quiet) {
        if (o->progress_tty && j->printed) fputc('\n', stderr);
        fprintf(stderr, "bertcl: device out of memory at batch %d; retrying with %d\n", nb, *cap_b);
      }
      continue;
    }
    if (st != BERTCL_OK) {
      *e = j->ctx->err;
      return st;
    }
    /* the previous batch's readback may run now (test hook; a no-op otherwise) */
    gate_open(j);
    size_t ntok = 0, nwords = 0;
    for (int b = 0; b < nb; b++) {
      const item *it = &w->items[idx[pos + b]];
      ntok += (size_t)it->len;
      nwords += (size_t)w->rows[it->row].nwords;
    }
    if (w->itok && bc_encoder_token_count(j->enc) != ntok)
      return bc_fail(e, BERTCL_ERR_INTERNAL, "batch holds %zu tokens, expected %zu",
                     bc_encoder_token_count(j->enc), ntok);
    if (w->iword && bc_encoder_word_count(j->enc, pb->wids) != nwords)
      return bc_fail(e, BERTCL_ERR_INTERNAL, "batch holds %zu words, expected %zu",
                     bc_encoder_word_count(j->enc, pb->wids), nwords);
    size_t W = (size_t)j->width;
    wmsg *m = calloc(1, sizeof *m);
    size_t *ix = malloc((size_t)nb * sizeof *ix);
    if (!m || !ix) {
      free(m);
      free(ix);
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    }
    memcpy(ix, idx + pos, (size_t)nb * sizeof *ix);
    m->kind = 0;
    m->w = w;
    m->idx = ix;
    m->nb = nb;
    /* a free slot: the writer hands one back once it has consumed its batch */
    m->s = bc_queue_pop(&j->sq);
    if (!m->s) {
      st = bc_fail(e, BERTCL_ERR_INTERNAL, "job stopped");
    } else {
      st = enqueue_features(j, e, m, pb->wids, w->itok ? ntok * W : 0,
                            w->iword ? nwords * W : 0);
      if (st != BERTCL_OK) bc_queue_push(&j->sq, m->s);
    }
    if (st == BERTCL_OK && bc_queue_push(&j->mq, m) != 0) {
      /* the job is stopping: let the readback finish before the slot can go */
      clWaitForEvents(1, &m->ready);
      clReleaseEvent(m->ready);
      st = bc_fail(e, BERTCL_ERR_INTERNAL, "job stopped");
    }
    if (st != BERTCL_OK) {
      free(ix);
      free(m);
      return st;
    }
    uint64_t rows = 0;
    for (int b = 0; b < nb; b++) rows += w->items[idx[pos + b]].win == 0;
    pthread_mutex_lock(&j->mu);
    j->rows_done += rows;
    j->tokens_done += ntok;
    j->batches++;
    pthread_mutex_unlock(&j->mu);
    progress(j, 0);
    pos += (size_t)nb;
  }
  return BERTCL_OK;
}

static int device_loop(job *j, bc_err *e, window **leftover) {
  const bc_job_opts *o = j->o;
  int cap_b = o->max_batch;
  packbuf pb = {0};
  int st = BERTCL_OK;
  for (;;) {
    window *w = bc_queue_pop(&j->wq);
    if (!w) break; /* aborted */
    wmsg *m = calloc(1, sizeof *m);
    if (!m) {
      window_free(w);
      st = bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
      break;
    }
    if (w->kind == 1) {
      gate_open(j); /* the last batch's readback has no next forward pass to wait for */
      m->kind = 2;
      m->w = w;
      if (bc_queue_push(&j->mq, m) != 0) {
        free(m);
        window_free(w);
      }
      break;
    }
    m->kind = 1;
    m->w = w;
    w->pooled = calloc(w->nrows * (size_t)(j->pw ? j->pw : 1), sizeof(float));
    int need_tok = o->tokens || (o->words && !j->device_words);
    if (need_tok) w->itok = calloc(w->nitems, sizeof *w->itok);
    if (o->words && j->device_words) w->iword = calloc(w->nitems, sizeof *w->iword);
    if (!w->pooled || (need_tok && !w->itok) || (o->words && j->device_words && !w->iword)) {
      free(m);
      window_free(w);
      st = bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
      break;
    }
    for (size_t b = 0; b < w->plan.nbatches && st == BERTCL_OK; b++)
      st = run_batch(j, e, w, w->plan.order + w->plan.batches[b].start, w->plan.batches[b].count,
                     &cap_b, &pb);
    if (st != BERTCL_OK || bc_queue_push(&j->mq, m) != 0) {
      /* batches of w may still be queued for the writer: w is freed after every thread ends */
      free(m);
      *leftover = w;
      break;
    }
  }
  gate_open(j);
  free(pb.ids);
  return st;
}

/* ---- setup ------------------------------------------------------------------------------ */

static json_t *options_json(const bc_job_opts *o) {
  char pools[64], layers[512], shard[32];
  job_meta(o, pools, sizeof pools, layers, sizeof layers);
  snprintf(shard, sizeof shard, "%d/%d", o->shard_k, o->shard_n);
  const char *kinds[] = {"plain", "jsonl", "tsv"};
  return json_pack(
      "{s:s, s:s?, s:s, s:s, s:s, s:b, s:b, s:s, s:i, s:i, s:s, s:I, s:I, s:I, "
      "s:i, s:b, s:s, s:b}",
      "input_format", kinds[o->input_kind], "column", o->column, "pool", pools, "layers", layers,
      "combine", combine_name(o->combine), "normalize", o->normalize, "tokens", o->tokens, "words",
      o->words == 1   ? "first"
      : o->words == 2 ? "mean"
                      : "none",
      "max_len", o->max_len, "stride", o->stride, "dtype", o->f16 ? "f16" : "f32", "shard_rows",
      (json_int_t)o->shard_rows, "window", (json_int_t)o->window, "max_tokens",
      (json_int_t)o->max_tokens, "batch_size", o->max_batch, "bucket", o->bucket, "shard", shard,
      "strict", o->strict);
}

static json_t *model_json(const bc_job_opts *o, const bc_config *cfg) {
  char path[4096], real[PATH_MAX], h[17];
  snprintf(path, sizeof path, "%s/config.json", o->model_dir);
  char *data = NULL;
  size_t len = 0;
  uint64_t hash = 0;
  bc_err e = {0};
  if (bc_read_file(&e, path, &data, &len) == BERTCL_OK) hash = bc_fnv1a64(BC_FNV_INIT, data, len);
  free(data);
  snprintf(path, sizeof path, "%s/model.safetensors", o->model_dir);
  struct stat sb;
  json_int_t wsize = stat(path, &sb) == 0 ? (json_int_t)sb.st_size : -1;
  const char *dir = realpath(o->model_dir, real) ? real : o->model_dir;
  return json_pack("{s:s, s:s, s:I, s:i, s:i}", "dir", dir, "config_fnv1a64", hex64(h, hash),
                   "weights_bytes", wsize, "hidden_size", cfg->hidden_size, "layers",
                   cfg->num_layers);
}

static json_t *input_id_json(const bc_job_opts *o, const bc_reader *rd) {
  char real[PATH_MAX];
  const char *p = strcmp(o->input, "-") && realpath(o->input, real) ? real : o->input;
  return json_pack("{s:s, s:I, s:I, s:I}", "path", p, "size", (json_int_t)bc_reader_size(rd),
                   "range_start", (json_int_t)bc_reader_range_start(rd), "range_end",
                   (json_int_t)bc_reader_range_end(rd));
}

/* Temporary files a killed run of this job left (io/durable.h names them <file>.tmp.<pid>.<n>):
 * its manifest's and its shards'. Another --shard K/N process may be writing its own files in
 * the same directory right now: those are left alone. */
static int own_file(const char *name, size_t len, int k, int nn) {
  char want[64];
  bc_manifest_name(want, sizeof want, k, nn);
  if (strlen(want) == len && memcmp(name, want, len) == 0) return 1;
  size_t index = 0;
  int kk = k, n2 = nn;
  if (nn > 1 ? sscanf(name, "shard-%d-of-%d-%zu", &kk, &n2, &index) != 3
             : sscanf(name, "shard-%zu", &index) != 1)
    return 0;
  bc_shard_file_name(want, sizeof want, k, nn, index);
  return kk == k && n2 == nn && strlen(want) == len && memcmp(name, want, len) == 0;
}

static void remove_stale_temps(const char *dir, int k, int nn) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name, *t = strstr(n, ".tmp.");
    if (t && own_file(n, (size_t)(t - n), k, nn)) {
      char p[8192];
      snprintf(p, sizeof p, "%s/%s", dir, n);
      unlink(p);
    }
  }
  closedir(d);
}

/* Resume: verify completed shards, skip their rows in the input and check the hash. */
static int resume_from(job *j, bc_err *e, json_t *m, uint64_t *row0) {
  const bc_job_opts *o = j->o;
  json_t *shards = json_object_get(m, "shards");
  size_t keep = 0;
  uint64_t rows = 0, end = bc_reader_range_start(j->rd);
  const char *hash = NULL;
  for (size_t i = 0; i < json_array_size(shards); i++) {
    json_t *s = json_array_get(shards, i);
    const char *file = json_string_value(json_object_get(s, "file"));
    char path[8192], h[17];
    snprintf(path, sizeof path, "%s/%s", o->outdir, file ? file : "?");
    uint64_t fh = 0, fs = 0;
    bc_err ce = {0};
    int ok = file && bc_file_checksum(&ce, path, &fh, &fs) == BERTCL_OK &&
             json_is_string(json_object_get(s, "checksum")) &&
             !strcmp(hex64(h, fh), json_string_value(json_object_get(s, "checksum"))) &&
             (json_int_t)fs == json_integer_value(json_object_get(s, "bytes"));
    if (!ok) {
      if (!o->quiet)
        fprintf(stderr,
                "bertcl: %s is missing or does not match its checksum; it and the "
                "shards after it are computed again\n",
                path);
      break;
    }
    keep = i + 1;
    rows = (uint64_t)json_integer_value(json_array_get(json_object_get(s, "rows"), 1));
    end = (uint64_t)json_integer_value(json_object_get(s, "input_end"));
    hash = json_string_value(json_object_get(s, "input_hash"));
  }
  while (json_array_size(shards) > keep) json_array_remove(shards, json_array_size(shards) - 1);
  uint64_t skipped = 0;
  int st = bc_reader_skip(j->rd, rows, &skipped);
  if (st) {
    *e = *bc_thread_err();
    return st;
  }
  char h[17];
  if (skipped != rows || bc_reader_offset(j->rd) != end ||
      (hash && strcmp(hash, hex64(h, bc_reader_hash(j->rd))) != 0))
    return bc_fail(e, BERTCL_ERR_INVALID_ARG,
                   "cannot resume: the input %s changed: its first %llu rows (bytes %llu..%llu) "
                   "no longer match what the completed shards were made from (hash %s, now %s)."
                   " Start a new job in a new output directory",
                   o->input, (unsigned long long)rows,
                   (unsigned long long)bc_reader_range_start(j->rd), (unsigned long long)end,
                   hash ? hash : "-", hex64(h, bc_reader_hash(j->rd)));
  *row0 = rows;
  j->shard_index = keep;
  j->row_base = rows;
  json_object_set_new(m, "rows_completed", json_integer((json_int_t)rows));
  json_object_set_new(m, "complete", json_false());
  return BERTCL_OK;
}

/* In memory: the writer's shard buffers (every row) become the result. */
static int take_rows(job *j, bc_err *e, bc_job_mem *mem) {
  const bc_job_opts *o = j->o;
  size_t R = j->srows;
  mem->rows = R;
  mem->width = j->width;
  /* zero rows leave buffers unallocated: the result still has valid (empty) arrays */
  if (grow((void **)&j->stok_off, &j->soff_cap, R + 1, sizeof(int64_t)) ||
      grow((void **)&j->sword_off, &j->swoff_cap, R + 1, sizeof(int64_t)))
    return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
  if (R == 0) j->stok_off[0] = j->sword_off[0] = 0;
  for (int k = 0; k < BC_JOB_NPOOL; k++) {
    if (!o->want[k]) continue;
    if (!j->sp[k] && !(j->sp[k] = malloc(sizeof(float))))
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    mem->poolw[k] = j->poolw[k];
    mem->pooled[k] = j->sp[k];
    j->sp[k] = NULL;
  }
  if (o->tokens) {
    if (!j->stok && !(j->stok = malloc(sizeof(float))))
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    mem->tokens = j->stok;
    mem->ntokens = j->stok_n;
    mem->tok_off = j->stok_off;
    j->stok = NULL;
    j->stok_off = NULL;
  }
  if (o->words) {
    if (!j->sword && !(j->sword = malloc(sizeof(float))))
      return bc_fail(e, BERTCL_ERR_NOMEM, "out of memory");
    mem->words = j->sword;
    mem->nwords = j->sword_n;
    mem->word_off = j->sword_off;
    j->sword = NULL;
    j->sword_off = NULL;
  }
  return BERTCL_OK;
}

/* mem == NULL: a job into o->outdir (bc_job_run); else in memory (bc_job_run_mem). */
static int job_run(bc_err *err, const bc_job_opts *o, const struct bertcl_model *model,
                   const struct bertcl_tokenizer *tok, struct bertcl_ctx *ctx,
                   struct bc_encoder *enc, bc_job_stats *stats, bc_job_mem *mem) {
  memset(stats, 0, sizeof *stats);
  const bc_config *cfg = model ? bc_model_config(model) : bc_encoder_config(enc);
  if (o->shard_rows == 0 || o->window == 0 || o->max_batch < 1 || o->max_len < 3 ||
      o->nlayers < 1 || (o->stride && o->stride > o->max_len - 3))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "bad job options (shard rows %zu, window %zu, batch %d, max_len %d, stride %d:"
                   " the stride must be below max_len - 2)",
                   o->shard_rows, o->window, o->max_batch, o->max_len, o->stride);
  if (o->max_len > cfg->max_position)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "--max-len %d exceeds the model's %d positions",
                   o->max_len, cfg->max_position);
  job *j = calloc(1, sizeof *j);
  if (!j) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  j->o = o;
  j->mem = mem;
  j->tok = tok;
  j->ctx = ctx;
  j->enc = enc;
  j->C = cfg->hidden_size;
  j->width = o->combine == BC_COMBINE_CONCAT ? o->nlayers * j->C : j->C;
  for (int k = 0; k < BC_JOB_NPOOL; k++)
    if (o->want[k]) {
      j->poolw[k] = k == BC_JOB_POOLER ? j->C : j->width;
      j->pw += j->poolw[k];
      j->npool++;
    }
  j->device_words = o->words && o->stride == 0;
  pthread_mutex_init(&j->mu, NULL);
  bc_queue_init(&j->wq, 1);
  bc_queue_init(&j->mq, 0);
  bc_queue_init(&j->sq, 0);
  j->s_bad = json_array();
  int st = BERTCL_OK;
  json_t *m = NULL, *opts = NULL, *mdl = NULL, *inid = NULL;
  pthread_t tp, tw;
  int tp_on = 0, tw_on = 0;
  uint64_t row0 = 0;
  window *leftover = NULL;
  bc_job_lock_t lock = {.fd = -1};
  if (mem) { /* in memory: no directory, manifest or resume; the pipeline is the same */
    if ((st = bc_reader_open_texts(err, o->texts, o->pairs, o->ntexts, &j->rd))) goto done;
    goto pipeline;
  }
  if (bc_mkdirs(o->outdir) != 0) {
    st = bc_fail(err, BERTCL_ERR_IO, "cannot create the output directory %s: %s", o->outdir,
                 strerror(errno));
    goto done;
  }
  /* one process per job, before anything in the directory is read or removed */
  if ((st = bc_job_lock(err, o->outdir, o->shard_k, o->shard_n, &lock))) goto done;
  if ((st =
           bc_reader_open(err, o->input, o->input_kind, o->column, o->shard_k, o->shard_n, &j->rd)))
    goto done;
  char mname[64];
  bc_manifest_name(mname, sizeof mname, o->shard_k, o->shard_n);
  snprintf(j->manifest_path, sizeof j->manifest_path, "%s/%s", o->outdir, mname);
  opts = options_json(o);
  mdl = model_json(o, cfg);
  inid = input_id_json(o, j->rd);
  if (!opts || !mdl || !inid) {
    st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (access(j->manifest_path, F_OK) == 0) {
    if (!o->resume) {
      st = bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "%s already holds a job (%s); add --resume to continue it, or write to a new "
                   "output directory",
                   o->outdir, mname);
      goto done;
    }
    if ((st = bc_manifest_load(err, j->manifest_path, &m))) goto done;
    if ((st = bc_manifest_check(err, m, inid, mdl, opts))) goto done;
    remove_stale_temps(o->outdir, o->shard_k, o->shard_n);
    if (json_is_true(json_object_get(m, "complete"))) {
      if (!o->quiet)
        fprintf(stderr, "bertcl: %s is already complete (%lld rows)\n", j->manifest_path,
                (long long)json_integer_value(json_object_get(m, "rows_completed")));
      stats->rows = (uint64_t)json_integer_value(json_object_get(m, "rows_completed"));
      goto done;
    }
    if ((st = resume_from(j, err, m, &row0))) goto done;
    if (!o->quiet && row0)
      fprintf(stderr, "bertcl: resuming %s after %llu rows (%zu shards kept)\n", o->outdir,
              (unsigned long long)row0, j->shard_index);
  } else {
    char h[17];
    m = json_pack("{s:s, s:s, s:O, s:O, s:O, s:{s:I, s:I, s:s}, s:I, s:b, s:[]}", "format",
                  BC_MANIFEST_FORMAT, "generator", "bertcl " BERTCL_VERSION_STRING, "input_id",
                  inid, "model", mdl, "options", opts, "input", "start",
                  (json_int_t)bc_reader_range_start(j->rd), "end",
                  (json_int_t)bc_reader_range_start(j->rd), "hash", hex64(h, BC_FNV_INIT),
                  "rows_completed", (json_int_t)0, "complete", 0, "shards");
    if (!m) {
      st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      goto done;
    }
  }
  json_object_set_new(m, "device", json_string(bertcl_ctx_device(ctx)->name));
  j->manifest = m;
  if ((st = bc_manifest_save(err, j->manifest_path, m))) goto done;
pipeline: {
    cl_uint bits = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof bits, &bits, NULL) !=
            CL_SUCCESS ||
        bits < 32)
      bits = 4096;
    j->align_f = bits / 32;
    cl_int rc = CL_SUCCESS;
    j->rq = clCreateCommandQueue(ctx->context, ctx->device,
                                 ctx->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &rc);
    if (rc != CL_SUCCESS) j->rq = NULL; /* readbacks then queue behind the compute */
    const char *hold = getenv("BERTCL_JOB_HOLD_READS");
    j->hold_reads = hold && *hold && strcmp(hold, "0") != 0;
  }
  if (!j->rq) {
    j->rq = ctx->queue;
    clRetainCommandQueue(j->rq);
  }
  for (int s = 0; s < 2; s++) bc_queue_push(&j->sq, &j->slots[s]);
  j->t0 = now_s();
  j->last_print = j->t0;
  j->bytes0 = j->bytes_at = bc_reader_offset(j->rd);
  producer_arg pa = {j, row0};
  if (pthread_create(&tp, NULL, producer, &pa) != 0) {
    st = bc_fail(err, BERTCL_ERR_INTERNAL, "cannot start the reader thread");
    goto done;
  }
  tp_on = 1;
  if (pthread_create(&tw, NULL, writer, j) != 0) {
    st = bc_fail(err, BERTCL_ERR_INTERNAL, "cannot start the writer thread");
    bc_queue_abort(&j->wq);
    goto done;
  }
  tw_on = 1;
  bc_err de = {0};
  st = device_loop(j, &de, &leftover);
  if (st != BERTCL_OK) job_fail(j, &de);

done:
  if (tp_on) pthread_join(tp, NULL);
  if (tw_on) pthread_join(tw, NULL);
  window_free(leftover);
  if (tp_on && j->failed) {
    /* windows left in the queues after an abort */
    j->wq.aborted = 0;
    while (j->wq.head) window_free(bc_queue_pop(&j->wq));
    j->mq.aborted = 0;
    while (j->mq.head) {
      wmsg *msg = bc_queue_pop(&j->mq);
      if (msg->kind == 1 || msg->kind == 2) window_free(msg->w);
      if (msg->ready) clReleaseEvent(msg->ready);
      free(msg->idx);
      free(msg);
    }
  }
  if (j->failed && st == BERTCL_OK) st = j->err.status ? j->err.status : BERTCL_ERR_INTERNAL;
  if (j->failed) *err = j->err;
  if (mem && st == BERTCL_OK) st = take_rows(j, err, mem);
  if (tp_on) {
    stats->rows = j->rows_written;
    stats->tokens = j->tokens_done;
    stats->truncated = j->truncated;
    stats->bad = j->bad;
    stats->windows_split = j->splits;
    stats->batches = j->batches;
    stats->shards = j->shards_written;
    stats->seconds = now_s() - j->t0;
    if (st == BERTCL_OK) progress(j, 1);
  }
  /* no command may still write into a slot when it goes */
  gate_open(j);
  clFinish(ctx->queue);
  if (j->rq) {
    clFinish(j->rq);
    clReleaseCommandQueue(j->rq);
  }
  for (int s = 0; s < 2; s++)
    if (j->slots[s].ptr || j->slots[s].dev) slot_release(j, &j->slots[s]);
  stats->readback_bytes = j->readback_bytes;
  bc_reader_close(j->rd);
  json_decref(m);
  json_decref(opts);
  json_decref(mdl);
  json_decref(inid);
  json_decref(j->s_bad);
  for (int k = 0; k < BC_JOB_NPOOL; k++) free(j->sp[k]);
  free(j->stok);
  free(j->sword);
  free(j->stok_off);
  free(j->sword_off);
  bc_queue_destroy(&j->wq);
  bc_queue_destroy(&j->mq);
  bc_queue_destroy(&j->sq);
  pthread_mutex_destroy(&j->mu);
  free(j);
  bc_job_unlock(&lock);
  return st;
}

int bc_job_run(bc_err *err, const bc_job_opts *o, const struct bertcl_model *model,
               const struct bertcl_tokenizer *tok, struct bertcl_ctx *ctx, struct bc_encoder *enc,
               bc_job_stats *stats) {
  return job_run(err, o, model, tok, ctx, enc, stats, NULL);
}

int bc_job_run_mem(bc_err *err, const bc_job_opts *o, const struct bertcl_tokenizer *tok,
                   struct bertcl_ctx *ctx, struct bc_encoder *enc, bc_job_stats *stats,
                   bc_job_mem *out) {
  memset(out, 0, sizeof *out);
  memset(stats, 0, sizeof *stats);
  if (!o->texts && o->ntexts)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "bc_job_run_mem: no texts");
  bc_job_opts mo = *o;
  mo.shard_rows = SIZE_MAX; /* every row in one "shard": the buffers hold them all */
  mo.shard_k = 0;
  mo.shard_n = 1;
  mo.resume = 0;
  mo.fail_after_shards = 0;
  int st = job_run(err, &mo, NULL, tok, ctx, enc, stats, out);
  if (st != BERTCL_OK) bc_job_mem_free(out);
  return st;
}

void bc_job_mem_free(bc_job_mem *m) {
  if (!m) return;
  for (int k = 0; k < BC_JOB_NPOOL; k++) free(m->pooled[k]);
  free(m->tokens);
  free(m->words);
  free(m->tok_off);
  free(m->word_off);
  memset(m, 0, sizeof *m);
}
