/* Durable writes; see durable.h. */
#define _POSIX_C_SOURCE 200809L
#include "io/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_uint tmp_counter;

/* BERTCL_FAULT_WRITE_BYTES: bytes a file may receive before writes fail with ENOSPC; -1 none. */
static long long fault_limit(void) {
  const char *v = getenv("BERTCL_FAULT_WRITE_BYTES");
  if (!v || !*v) return -1;
  char *end = NULL;
  long long n = strtoll(v, &end, 10);
  return (end && *end == '\0' && n >= 0) ? n : -1;
}

/* fsync of the directory holding path (best effort: some file systems refuse it). */
static void fsync_dir_of(const char *path) {
  char *dir = strdup(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  int dfd = open(slash ? dir : ".", O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  free(dir);
}

int bc_afile_open(bc_err *err, bc_afile *f, const char *path) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->hash = BC_FNV_INIT;
  size_t n = strlen(path) + 48;
  f->path = strdup(path);
  f->tmp = malloc(n);
  if (!f->path || !f->tmp) {
    bc_afile_abort(f);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  snprintf(f->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&tmp_counter, 1u));
  f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    int st = bc_fail(err, BERTCL_ERR_IO, "cannot create %s: %s", f->tmp, strerror(errno));
    bc_afile_abort(f);
    return st;
  }
  return BERTCL_OK;
}

/* BERTCL_FAULT_WRITE_PATH: when set, the fault hits only files whose path ends with it. */
static int fault_applies(const char *path) {
  const char *v = getenv("BERTCL_FAULT_WRITE_PATH");
  if (!v || !*v) return 1;
  size_t a = strlen(path), b = strlen(v);
  return a >= b && strcmp(path + a - b, v) == 0;
}

int bc_afile_write(bc_err *err, bc_afile *f, const void *data, size_t n) {
  if (f->fd < 0) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "write to a closed file");
  const char *p = data;
  long long limit = fault_applies(f->path) ? fault_limit() : -1;
  if (limit >= 0 && f->bytes + n > (unsigned long long)limit)
    return bc_fail(err, BERTCL_ERR_IO, "write to %s failed: %s (BERTCL_FAULT_WRITE_BYTES=%lld)",
                   f->tmp, strerror(ENOSPC), limit);
  f->hash = bc_fnv1a64(f->hash, data, n);
  f->bytes += n;
  while (n > 0) {
    ssize_t w = write(f->fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return bc_fail(err, BERTCL_ERR_IO, "write to %s failed: %s", f->tmp, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
  return BERTCL_OK;
}

int bc_afile_commit(bc_err *err, bc_afile *f) {
  int st = BERTCL_OK;
  if (f->fd < 0) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "commit of a closed file");
  if (fsync(f->fd) != 0)
    st = bc_fail(err, BERTCL_ERR_IO, "fsync of %s failed: %s", f->tmp, strerror(errno));
  if (close(f->fd) != 0 && st == BERTCL_OK)
    st = bc_fail(err, BERTCL_ERR_IO, "close of %s failed: %s", f->tmp, strerror(errno));
  f->fd = -1;
  if (st == BERTCL_OK && rename(f->tmp, f->path) != 0)
    st = bc_fail(err, BERTCL_ERR_IO, "rename %s -> %s failed: %s", f->tmp, f->path,
                 strerror(errno));
  if (st != BERTCL_OK) {
    bc_afile_abort(f);
    return st;
  }
  fsync_dir_of(f->path);
  free(f->tmp);
  free(f->path);
  f->tmp = f->path = NULL;
  return BERTCL_OK;
}

void bc_afile_abort(bc_afile *f) {
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  if (f->tmp) unlink(f->tmp);
  free(f->tmp);
  free(f->path);
  f->tmp = f->path = NULL;
}

int bc_write_file_atomic(bc_err *err, const char *path, const void *data, size_t len) {
  bc_afile f;
  int st = bc_afile_open(err, &f, path);
  if (st == BERTCL_OK) st = bc_afile_write(err, &f, data, len);
  if (st == BERTCL_OK) return bc_afile_commit(err, &f);
  bc_afile_abort(&f);
  return st;
}
