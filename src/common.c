#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local bc_err thread_err;

bc_err *bc_thread_err(void) { return &thread_err; }

void bc_err_clear(bc_err *err) {
  if (!err) err = &thread_err;
  err->status = BERTCL_OK;
  err->msg[0] = '\0';
}

int bc_fail_at(bc_err *err, int status, const char *file, int line, const char *fmt, ...) {
  if (!err) err = &thread_err;
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  int n = snprintf(err->msg, sizeof err->msg, "%s:%d: ", base, line);
  if (n < 0 || (size_t)n >= sizeof err->msg) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
  va_end(ap);
  err->status = status;
  if (err != &thread_err) thread_err = *err;
  return status;
}

void bc_err_to_thread(const bc_err *err) {
  if (err && err != &thread_err) thread_err = *err;
}

const char *bertcl_last_error(const void *handle) {
  const bc_err *err = handle ? (const bc_err *)handle : &thread_err;
  return err->msg;
}

const char *bertcl_status_str(int status) {
  switch (status) {
#define BC_STATUS_STR_(name, code, text) \
  case code: return text;
    BERTCL_STATUS_MAP(BC_STATUS_STR_)
#undef BC_STATUS_STR_
  }
  return "unknown status";
}

const char *bertcl_status_name(int status) {
  switch (status) {
#define BC_STATUS_NAME_(name, code, text) \
  case code: return "BERTCL_" #name;
    BERTCL_STATUS_MAP(BC_STATUS_NAME_)
#undef BC_STATUS_NAME_
  }
  return "BERTCL_UNKNOWN";
}

const char *bertcl_version(void) { return BERTCL_VERSION_STRING; }

int bc_icontains(const char *haystack, const char *needle) {
  size_t nl = strlen(needle);
  if (nl == 0) return 1;
  for (const char *p = haystack; *p; p++) {
    size_t i = 0;
    while (i < nl && p[i] &&
           tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == nl) return 1;
  }
  return 0;
}

uint64_t bc_fnv1a64(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

int bc_read_file(bc_err *err, const char *path, char **data, size_t *len) {
  *data = NULL;
  if (len) *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return bc_fail(err, BERTCL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        fclose(f);
        return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory reading %s", path);
      }
      buf = nb;
      cap = ncap;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return bc_fail(err, BERTCL_ERR_IO, "read error on %s", path);
  }
  buf[n] = '\0';
  *data = buf;
  if (len) *len = n;
  return BERTCL_OK;
}

int bc_mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
      buf[i] = c;
    }
  }
  return 0;
}

size_t bc_utf8_valid_prefix(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
      k = 1;
    else if (c == 0xE0)
      k = 2, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC)
      k = 2;
    else if (c == 0xED)
      k = 2, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF)
      k = 2;
    else if (c == 0xF0)
      k = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      k = 3;
    else if (c == 0xF4)
      k = 3, hi = 0x8F;
    else
      return i;
    if (i + k >= n) return i; /* truncated sequence */
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t j = 2; j <= k; j++)
      if (s[i + j] < 0x80 || s[i + j] > 0xBF) return i;
    i += k + 1;
  }
  return n;
}
