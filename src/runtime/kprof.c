/* Per-kernel device time of bertcl's own kernels ($BERTCL_KERNEL_PROFILE): every launch through
 * bc_kernel_run gets a profiling event whose completion callback adds end - start to its
 * kernel's total; the table is printed to stderr when the context is freed. A CPU OpenCL runtime
 * (Intel's) compiles kernels into code perf cannot name, so this is how its kernels are
 * measured. CLBlast's kernels (the GEMMs) do not pass through here. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "runtime.h"

#define KPROF_MAX 64

struct bc_kprof {
  mtx_t lock;
  atomic_int pending; /* callbacks not yet run */
  int n;
  struct {
    const char *name; /* the launcher's string literal */
    uint64_t count, ns;
  } k[KPROF_MAX];
};

bc_kprof *bc_kprof_new(void) {
  bc_kprof *p = calloc(1, sizeof *p);
  if (p && mtx_init(&p->lock, mtx_plain) != thrd_success) {
    free(p);
    p = NULL;
  }
  return p;
}

typedef struct {
  bc_kprof *p;
  const char *name;
} kprof_ticket;

static void CL_CALLBACK on_complete(cl_event ev, cl_int status, void *user) {
  kprof_ticket *t = user;
  cl_ulong t0 = 0, t1 = 0;
  if (status == CL_COMPLETE &&
      clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) ==
          CL_SUCCESS &&
      clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS &&
      t1 >= t0) {
    bc_kprof *p = t->p;
    mtx_lock(&p->lock);
    int i = 0;
    while (i < p->n && strcmp(p->k[i].name, t->name) != 0) i++;
    if (i == p->n && p->n < KPROF_MAX) p->k[p->n++].name = t->name;
    if (i < p->n) {
      p->k[i].count++;
      p->k[i].ns += t1 - t0;
    }
    mtx_unlock(&p->lock);
  }
  atomic_fetch_sub(&t->p->pending, 1);
  clReleaseEvent(ev);
  free(t);
}

void bc_kprof_track(bc_kprof *p, cl_event ev, const char *name) {
  kprof_ticket *t = malloc(sizeof *t);
  if (!t) {
    clReleaseEvent(ev);
    return;
  }
  t->p = p;
  t->name = name;
  atomic_fetch_add(&p->pending, 1);
  if (clSetEventCallback(ev, CL_COMPLETE, on_complete, t) != CL_SUCCESS) {
    atomic_fetch_sub(&p->pending, 1);
    clReleaseEvent(ev);
    free(t);
  }
}

static int by_time(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x < y) - (x > y);
}

void bc_kprof_report_free(bc_kprof *p, const char *device) {
  if (!p) return;
  /* the queue is finished; callbacks may still be on their way (up to 5 s) */
  for (int i = 0; i < 5000 && atomic_load(&p->pending) > 0; i++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  struct {
    uint64_t ns, count;
    const char *name;
  } rows[KPROF_MAX];
  uint64_t total = 0;
  for (int i = 0; i < p->n; i++) {
    rows[i].ns = p->k[i].ns;
    rows[i].count = p->k[i].count;
    rows[i].name = p->k[i].name;
    total += p->k[i].ns;
  }
  qsort(rows, (size_t)p->n, sizeof rows[0], by_time);
  fprintf(stderr, "bertcl kernel profile on %s (device time of bertcl's own kernels; GEMMs are "
          "not included):\n%-32s %8s %12s %10s %6s\n", device, "kernel", "launches", "total ms",
          "ms/launch", "share");
  for (int i = 0; i < p->n; i++)
    fprintf(stderr, "%-32s %8llu %12.3f %10.4f %5.1f%%\n", rows[i].name,
            (unsigned long long)rows[i].count, rows[i].ns / 1e6,
            rows[i].count ? rows[i].ns / 1e6 / (double)rows[i].count : 0.0,
            total ? 100.0 * (double)rows[i].ns / (double)total : 0.0);
  fprintf(stderr, "%-32s %8s %12.3f\n", "all", "", total / 1e6);
  mtx_destroy(&p->lock);
  free(p);
}
