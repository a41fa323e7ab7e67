/* Label maps and regression targets. See labels.h. */
#include "train/labels.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/data.h"

void bc_labelmap_free(bc_labelmap *m) {
  if (!m) return;
  for (int i = 0; i < m->K; i++) free(m->names[i]);
  free(m->names);
  memset(m, 0, sizeof *m);
}

int bc_labelmap_id(const bc_labelmap *m, const char *s) {
  for (int i = 0; i < m->K; i++)
    if (!strcmp(m->names[i], s)) return i;
  return -1;
}

int bc_labelmap_from_names(bc_err *err, bc_labelmap *m, const char *const *names, int K) {
  memset(m, 0, sizeof *m);
  m->names = calloc((size_t)(K > 0 ? K : 1), sizeof *m->names);
  if (!m->names) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  for (int k = 0; k < K; k++) {
    if (!(m->names[k] = bc_strdup(names[k]))) {
      bc_labelmap_free(m);
      return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    }
    m->K = k + 1;
  }
  return BERTCL_OK;
}

static int is_uint(const char *s, long *v) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  /* canonical digits only ("7", not "07", "-0", "+7" or " 7"): a label of the map is then the
   * same string as the data's, and bc_labelmap_id finds it */
  if (errno || *end || end == s || x < 0 || x > 100000 || s[0] < '0' || s[0] > '9' ||
      (s[0] == '0' && s[1]))
    return 0;
  *v = x;
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int bc_labelmap_sorted(bc_err *err, bc_labelmap *m, const char *const *labels, size_t n) {
  memset(m, 0, sizeof *m);
  const char **all = malloc((n ? n : 1) * sizeof *all);
  m->names = calloc(n ? n : 1, sizeof *m->names);
  if (!all || !m->names) {
    free(all);
    bc_labelmap_free(m);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory for %zu labels", n);
  }
  if (n) memcpy(all, labels, n * sizeof *all);
  qsort(all, n, sizeof *all, cmp_str);
  for (size_t i = 0; i < n; i++)
    if (i == 0 || strcmp(all[i], all[i - 1])) {
      if (!(m->names[m->K] = bc_strdup(all[i]))) {
        free(all);
        bc_labelmap_free(m);
        return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      }
      m->K++;
    }
  free(all);
  return BERTCL_OK;
}

int bc_labelmap_build(bc_err *err, bc_labelmap *m, const char *const *labels, size_t n,
                      const char *const *model_names, int model_K) {
  memset(m, 0, sizeof *m);
  if (model_K > 1 && model_names) {
    int all = 1;
    for (size_t i = 0; i < n && all; i++) {
      int found = 0;
      for (int k = 0; k < model_K && !found; k++)
        found = model_names[k] && !strcmp(model_names[k], labels[i]);
      all = found;
    }
    for (int k = 0; k < model_K && all; k++) all = model_names[k] != NULL;
    if (all) return bc_labelmap_from_names(err, m, model_names, model_K);
  }
  int ints = 1;
  long mx = -1, v;
  for (size_t i = 0; i < n; i++) {
    if (!is_uint(labels[i], &v)) {
      ints = 0;
      break;
    }
    if (v > mx) mx = v;
  }
  if (ints) {
    m->names = calloc((size_t)(mx + 1 < 2 ? 2 : mx + 1), sizeof *m->names);
    if (!m->names) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    int K = mx + 1 < 2 ? 2 : (int)mx + 1;
    for (int k = 0; k < K; k++) {
      char buf[32];
      snprintf(buf, sizeof buf, "%d", k);
      if (!(m->names[k] = bc_strdup(buf))) {
        bc_labelmap_free(m);
        return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
      }
      m->K = k + 1;
    }
    return BERTCL_OK;
  }
  int st = bc_labelmap_sorted(err, m, labels, n);
  if (st != BERTCL_OK) return st;
  if (m->K < 2) {
    st = bc_fail(err, BERTCL_ERR_INVALID_ARG,
                 "the training data has a single label ('%s'); a classifier needs two or more",
                 m->K ? m->names[0] : "");
    bc_labelmap_free(m);
  }
  return st;
}

int bc_labelmap_pad_ints(bc_err *err, bc_labelmap *m, int num_labels) {
  if (m->K == num_labels) return BERTCL_OK;
  /* integer labels 0..K-1 with K < N: the head has N rows, as num_labels N in transformers */
  int ints = m->K < num_labels;
  for (int k = 0; k < m->K && ints; k++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", k);
    ints = !strcmp(m->names[k], buf);
  }
  if (!ints)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "num_labels is %d, but the training data has %d labels%s", num_labels, m->K,
                   m->K < num_labels ? " that are not integers 0..N-1" : "");
  char **nn = realloc(m->names, (size_t)num_labels * sizeof *nn);
  if (!nn) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  m->names = nn;
  for (int k = m->K; k < num_labels; k++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", k);
    if (!(nn[k] = bc_strdup(buf))) return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
    m->K = k + 1;
  }
  return BERTCL_OK;
}

int bc_label_is_number(const char *s, double *v) {
  char *end;
  errno = 0;
  if (!*s || *s == ' ' || *s == '\t') return 0;
  double x = strtod(s, &end);
  if (end == s || *end || errno == ERANGE || !isfinite(x)) return 0;
  if (v) *v = x;
  return 1;
}

/* Written as an integer: an optional sign, then digits. */
static int is_int_text(const char *s) {
  if (*s == '-' || *s == '+') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

int bc_labels_are_regression(const char *const *labels, size_t n, int model_K) {
  int frac = 0;
  for (size_t i = 0; i < n; i++) {
    if (!bc_label_is_number(labels[i], NULL)) return 0;
    frac |= !is_int_text(labels[i]);
  }
  return frac || model_K == 1;
}

int bc_labels_targets(bc_err *err, const char *name, const char *const *labels,
                      const size_t *lines, size_t n, float *t) {
  for (size_t i = 0; i < n; i++) {
    double v;
    if (!bc_label_is_number(labels[i], &v)) {
      if (lines)
        return bc_fail(err, BERTCL_ERR_FORMAT,
                       "%s:%zu: the label '%s' is not a number (regression)", name, lines[i],
                       labels[i]);
      return bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s: row %zu has label '%s', which is not a number (regression)", name,
                     i + 1, labels[i]);
    }
    if (fabs(v) > FLT_MAX) /* found by fuzz_inputs: it became an inf target and a NaN loss */
      return bc_fail(err, BERTCL_ERR_FORMAT,
                     "%s:%zu: the label '%.40s' is beyond the float range (regression targets "
                     "are 32-bit floats)",
                     name, lines ? lines[i] : i + 1, labels[i]);
    t[i] = (float)v;
  }
  return BERTCL_OK;
}
