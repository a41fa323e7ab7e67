/* Internal helpers shared by every source file: error records, checked calls, safe arithmetic.
 * Internal names shared between files carry the prefix bc_. */
#ifndef BC_COMMON_H
#define BC_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "bertcl.h"

#define BC_ERR_MSG_MAX 4096

/* Every public handle struct starts with a bc_err, so bertcl_last_error(handle) can read it. */
typedef struct {
  int status;
  char msg[BC_ERR_MSG_MAX];
} bc_err;

/* Records status and a message "file:line: <formatted>" in err (NULL = the thread-local slot).
 * Returns status, so callers can write `return bc_fail(...)`. */
int bc_fail_at(bc_err *err, int status, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define bc_fail(err, status, ...) bc_fail_at((err), (status), __FILE__, __LINE__, __VA_ARGS__)

/* Copies err into the thread-local slot (for creators whose handle did not survive). */
void bc_err_to_thread(const bc_err *err);
bc_err *bc_thread_err(void);
void bc_err_clear(bc_err *err);

/* Jump to `fail` with status recorded unless expr is BERTCL_OK; `st` must be an int in scope. */
#define BC_TRY(expr)                                                                           \
  do {                                                                                         \
    st = (expr);                                                                               \
    if (st != BERTCL_OK) goto fail;                                                            \
  } while (0)

/* Overflow-checked size arithmetic: return 0 on success, non-zero on overflow. */
static inline int bc_mul_size(size_t a, size_t b, size_t *out) {
  return __builtin_mul_overflow(a, b, out);
}
static inline int bc_add_size(size_t a, size_t b, size_t *out) {
  return __builtin_add_overflow(a, b, out);
}

/* Case-insensitive substring test (ASCII). */
int bc_icontains(const char *haystack, const char *needle);

/* 64-bit FNV-1a, chained: h = bc_fnv1a64(h, data, len), start with BC_FNV_INIT. */
#define BC_FNV_INIT 0xcbf29ce484222325ULL
uint64_t bc_fnv1a64(uint64_t h, const void *data, size_t len);

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
int bc_read_file(bc_err *err, const char *path, char **data, size_t *len);
/* mkdir -p */
int bc_mkdirs(const char *path);

/* Length of the longest valid UTF-8 prefix of s[0..n) (n when all of it is valid): the index
 * of the first byte of the first ill-formed sequence. */
size_t bc_utf8_valid_prefix(const unsigned char *s, size_t n);

#endif /* BC_COMMON_H */
