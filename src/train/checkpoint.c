/* Checkpoints. See checkpoint.h. */
#include "train/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/writers.h"
#include "model/safetensors.h"

static const char *const names[3] = {"params", "adam_m", "adam_v"};

int bc_checkpoint_save(bc_err *err, const char *path, size_t total, const float *const bufs[3],
                       const bc_ckpt_state *s, const char *sig) {
  bc_st_out_tensor ts[3];
  for (int i = 0; i < 3; i++)
    ts[i] = (bc_st_out_tensor){.name = names[i], .data = bufs[i], .ndim = 1, .shape = {total},
                               .dtype = BC_OUT_F32};
  char st[64], bs[64], bst[64];
  snprintf(st, sizeof st, "%ld", s->step);
  snprintf(bs, sizeof bs, "%.17g", s->best);
  snprintf(bst, sizeof bst, "%ld", s->best_step);
  bc_st_meta meta[] = {{"step", st}, {"best_metric", bs}, {"best_step", bst}, {"run", sig}};
  return bc_st_write(err, path, ts, 3, meta, 4);
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int load_from(bc_err *err, bc_st_file *f, size_t total, float *const bufs[3],
                     long max_step, bc_ckpt_state *s, const char *sig) {
  const char *path = bc_st_path(f);
  const char *run = bc_st_metadata(f, "run"), *st = bc_st_metadata(f, "step");
  const char *bm = bc_st_metadata(f, "best_metric"), *bs = bc_st_metadata(f, "best_step");
  if (!run || !st || !bm || !bs)
    return bc_fail(err, BERTCL_ERR_FORMAT, "%s is not a bertcl finetune checkpoint", path);
  if (strcmp(run, sig))
    return bc_fail(err, BERTCL_ERR_INVALID_ARG,
                   "cannot resume: %s was written by another run:\n  %s\nthis run:\n  %s", path,
                   run, sig);
  bc_ckpt_state r;
  char *end;
  errno = 0;
  r.best = strtod(bm, &end);
  if (parse_long(st, 0, max_step, &r.step) || parse_long(bs, -1, max_step, &r.best_step) ||
      end == bm || *end || isnan(r.best))
    return bc_fail(err, BERTCL_ERR_FORMAT,
                   "%s: bad step '%.40s', best_step '%.40s' or best_metric '%.40s' (at most %ld "
                   "steps)", path, st, bs, bm, max_step);
  for (int i = 0; i < 3; i++) {
    const bc_st_tensor *t = bc_st_find(f, names[i]);
    if (!t) return bc_fail(err, BERTCL_ERR_FORMAT, "%s: no tensor '%s'", path, names[i]);
    if (t->dtype != BC_DT_F32 || t->ndim != 1 || t->numel != total)
      return bc_fail(err, BERTCL_ERR_SHAPE,
                     "%s: tensor '%s' is %s with %zu elements; this model needs F32 with %zu",
                     path, names[i], t->dtype_name, t->numel, total);
    int rc = bc_st_read_f32(err, t, bufs[i], total);
    if (rc != BERTCL_OK) return rc;
  }
  *s = r;
  return BERTCL_OK;
}

int bc_checkpoint_parse(bc_err *err, const char *name, const void *data, size_t len,
                        size_t total, float *const bufs[3], long max_step, bc_ckpt_state *s,
                        const char *sig) {
  bc_st_file *f = NULL;
  int st = bc_st_open_mem(err, name, data, len, &f);
  if (st != BERTCL_OK) return st;
  st = load_from(err, f, total, bufs, max_step, s, sig);
  bc_st_close(f);
  return st;
}

int bc_checkpoint_load(bc_err *err, const char *path, size_t total, float *const bufs[3],
                       long max_step, bc_ckpt_state *s, const char *sig) {
  bc_st_file *f = NULL;
  int st = bc_st_open(err, path, &f);
  if (st != BERTCL_OK) return st;
  st = load_from(err, f, total, bufs, max_step, s, sig);
  bc_st_close(f);
  return st;
}
