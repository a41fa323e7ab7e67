/* Durable writes: the one place bertcl puts a file on disk. Every output, shard, manifest,
 * checkpoint, exported model, tuning file and kernel-cache entry goes through here:
 *   1. a temporary file in the destination's directory (path.tmp.<pid>.<n>, created with
 *      O_EXCL, so concurrent writers never share one);
 *   2. the data written (streaming) and fsynced;
 *   3. renamed over the destination (readers see the old file or the new one, never a part);
 *   4. the directory fsynced, so the rename itself survives a power cut.
 * On any failure the temporary file is removed and the previous file is untouched.
 *
 * Fault injection for tests: BERTCL_FAULT_WRITE_BYTES=N makes every write of this process fail
 * with ENOSPC ("No space left on device") once N bytes have gone to one file, as a full disk
 * does; BERTCL_FAULT_WRITE_PATH=S limits that to files whose path ends with S (one output kind
 * among the files a command writes). */
#ifndef BC_DURABLE_H
#define BC_DURABLE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* A file being written. hash is FNV-1a 64 of every byte written, bytes their count. */
typedef struct {
  int fd;
  char *path, *tmp;
  uint64_t hash, bytes;
} bc_afile;

int bc_afile_open(bc_err *err, bc_afile *f, const char *path);
int bc_afile_write(bc_err *err, bc_afile *f, const void *data, size_t n);
/* fsync, rename, fsync the directory. On failure the temporary file is removed. */
int bc_afile_commit(bc_err *err, bc_afile *f);
/* Removes the temporary file; a no-op after commit and on a zeroed struct with fd -1. */
void bc_afile_abort(bc_afile *f);

/* A whole file at once: open, write, commit. */
int bc_write_file_atomic(bc_err *err, const char *path, const void *data, size_t len);

#endif
