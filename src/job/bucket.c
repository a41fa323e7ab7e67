/* Length bucketing: inside a window, items sorted by token count so a batch pads to little;
 * batches filled to a token budget. order[] is the permutation the results come back in; the
 * writer puts each result at its item index, which restores input order. */
#include <stdlib.h>
#include <string.h>

#include "job/job.h"

/* A stable merge sort by length (reentrant, unlike qsort with a global key). */
static void msort(size_t *a, size_t *tmp, size_t n, const int *lens) {
  if (n < 2) return;
  size_t h = n / 2;
  msort(a, tmp, h, lens);
  msort(a + h, tmp, n - h, lens);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) {
    /* stable: take from the left run on ties */
    if (lens[a[j]] < lens[a[i]])
      tmp[k++] = a[j++];
    else
      tmp[k++] = a[i++];
  }
  while (i < h) tmp[k++] = a[i++];
  while (j < n) tmp[k++] = a[j++];
  memcpy(a, tmp, n * sizeof *a);
}

int bc_bucket_make(bc_err *err, const int *lens, size_t n, int sort, size_t max_tokens,
                   int max_batch, bc_bucket_plan *out) {
  memset(out, 0, sizeof *out);
  if (max_batch < 1) return bc_fail(err, BERTCL_ERR_INVALID_ARG, "batch size %d", max_batch);
  out->n = n;
  out->order = malloc((n ? n : 1) * sizeof *out->order);
  out->batches = malloc((n ? n : 1) * sizeof *out->batches);
  size_t *tmp = sort ? malloc((n ? n : 1) * sizeof *tmp) : NULL;
  if (!out->order || !out->batches || (sort && !tmp)) {
    free(tmp);
    bc_bucket_free(out);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory planning %zu items", n);
  }
  for (size_t i = 0; i < n; i++) {
    if (lens[i] <= 0) {
      free(tmp);
      bc_bucket_free(out);
      return bc_fail(err, BERTCL_ERR_INVALID_ARG, "item %zu has length %d", i, lens[i]);
    }
    out->order[i] = i;
  }
  if (sort) msort(out->order, tmp, n, lens);
  free(tmp);
  size_t i = 0;
  while (i < n) {
    bc_bucket_batch b = {.start = i, .count = 0, .seq = 0};
    while (i < n && b.count < (size_t)max_batch) {
      int l = lens[out->order[i]];
      int seq = l > b.seq ? l : b.seq;
      if (sort && b.count > 0 && (b.count + 1) * (size_t)seq > max_tokens) break;
      b.seq = seq;
      b.count++;
      i++;
    }
    out->batches[out->nbatches++] = b;
  }
  return BERTCL_OK;
}

void bc_bucket_free(bc_bucket_plan *p) {
  free(p->order);
  free(p->batches);
  memset(p, 0, sizeof *p);
}
