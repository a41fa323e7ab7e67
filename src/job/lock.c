/* The job directory lock: one process per job (see job.h). flock() on a lock file beside the
 * manifest; the kernel drops the lock when its holder exits or is killed, so a kill -9 leaves
 * nothing to clean up. The file's text (pid, host, start time) names the holder for the
 * refusal message; it is not an output, so it is written in place, not through io/durable.h. */
#define _DEFAULT_SOURCE /* flock, gethostname */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "job/job.h"

void bc_lock_file_name(char *out, size_t n, int k, int nn) {
  if (nn > 1)
    snprintf(out, n, "manifest-%d-of-%d.json.lock", k, nn);
  else
    snprintf(out, n, "manifest.json.lock");
}

/* What the holder wrote, without the newline ("" when it has not written yet). */
static void read_holder(int fd, char *out, size_t n) {
  ssize_t r = pread(fd, out, n - 1, 0);
  out[r > 0 ? r : 0] = '\0';
  out[strcspn(out, "\n")] = '\0';
}

int bc_job_lock(bc_err *err, const char *dir, int shard_k, int shard_n, bc_job_lock_t *lock) {
  lock->fd = -1;
  lock->path[0] = '\0';
  char name[64];
  bc_lock_file_name(name, sizeof name, shard_k, shard_n);
  int n = snprintf(lock->path, sizeof lock->path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof lock->path)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "output directory path too long: %s", dir);
  /* A holder that finishes unlinks the file before it lets go: a lock taken on an inode that
   * is no longer the path's is taken again on the new file. */
  for (int tries = 0; tries < 100; tries++) {
    int fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return bc_fail(err, BERTCL_ERR_IO, "cannot create the job lock %s: %s", lock->path,
                     strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      if (e == EWOULDBLOCK) {
        char holder[512];
        read_holder(fd, holder, sizeof holder);
        close(fd);
        return bc_fail(err, BERTCL_ERR_BUSY,
                       "%s is in use by another bertcl process (%s; lock %s). Wait for it to "
                       "finish or stop it, then continue with --resume; a process that dies "
                       "releases the lock by itself",
                       dir, holder[0] ? holder : "it is starting", lock->path);
      }
      close(fd);
      return bc_fail(err, BERTCL_ERR_IO,
                     "cannot lock %s: %s (the file system must support flock, so that two "
                     "processes never work on one job)",
                     lock->path, strerror(e));
    }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(lock->path, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      char host[256] = "?", when[32] = "?", text[640];
      if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
      host[sizeof host - 1] = '\0';
      time_t now = time(NULL);
      struct tm tm;
      if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      int tl = snprintf(text, sizeof text, "pid %ld on host %s since %s\n", (long)getpid(), host,
                        when);
      if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)tl, 0) != tl) {
        /* the lock holds without the text; only the refusal message of others is poorer */
      }
      lock->fd = fd;
      return BERTCL_OK;
    }
    close(fd);
  }
  return bc_fail(err, BERTCL_ERR_BUSY, "cannot take the job lock %s: it keeps being replaced",
                 lock->path);
}

void bc_job_unlock(bc_job_lock_t *lock) {
  if (lock->fd < 0) return;
  unlink(lock->path);
  close(lock->fd);
  lock->fd = -1;
}
