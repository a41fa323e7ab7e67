/* The training program (cl/common.cl + backward.cl + trainer.cl): its kernel table and launchers. */
#include "train/train_ops.h"

#include "encoder/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elements per work-item of the CPU set's dropout_fwd (-DCHUNK, a multiple of 16) and of its
 * sumsq_partial (-DSUMSQ_CHUNK). */
#define CHUNK 64
#define SUMSQ_CHUNK 4096

static const char *const files[] = {"common.cl", "backward.cl", "trainer.cl"};

int bc_train_ops_init(bertcl_ctx *ctx, bc_train_ops *o) {
  memset(o, 0, sizeof *o);
  int st = BERTCL_OK;
  o->wg = bc_row_work_group(ctx);
  o->kset = ctx->kset;
  o->vw = (size_t)bc_cpu_vector_width(ctx);
  char opts[320];
  bc_kernel_options(ctx, o->kset, opts, sizeof opts);
  bc_act_options(opts, sizeof opts);
  size_t ol = strlen(opts);
  snprintf(opts + ol, sizeof opts - ol, " -DCHUNK=%d -DSUMSQ_CHUNK=%d", CHUNK, SUMSQ_CHUNK);
  BC_TRY(bc_program_build(ctx, files, sizeof files / sizeof files[0], opts, &o->prog));
#define BC_TRAIN_OPS_CREATE(name) \
  BC_CL_OBJ(&ctx->err, o->name, clCreateKernel(o->prog, #name, BC_RC));
  BC_TRAIN_OPS_KERNELS(BC_TRAIN_OPS_CREATE)
#undef BC_TRAIN_OPS_CREATE
  return BERTCL_OK;
fail:
  bc_train_ops_free(o);
  return st;
}

void bc_train_ops_free(bc_train_ops *o) {
  if (!o) return;
#define BC_TRAIN_OPS_RELEASE(name) \
  if (o->name) clReleaseKernel(o->name);
  BC_TRAIN_OPS_KERNELS(BC_TRAIN_OPS_RELEASE)
#undef BC_TRAIN_OPS_RELEASE
  if (o->prog) clReleaseProgram(o->prog);
  memset(o, 0, sizeof *o);
}

#define A KARG
/* Enqueues kernel `name` (a bc_train_ops field) over `global` items in groups of `local` and
 * returns the status. */
#define RUN(name, global, local, ...) \
  BC_KERNEL_RUN(ctx, o->name, #name, (global), (local), __VA_ARGS__)
/* Same over `rows` rows, shaped by the kernel set (bc_rows_launch). */
#define RUN_ROWS(name, rows, ...)                                                               \
  do {                                                                                          \
    size_t g_, l_;                                                                              \
    bc_rows_launch(o->kset, o->wg, (rows), &g_, &l_);                                           \
    RUN(name, g_, l_, __VA_ARGS__);                                                             \
  } while (0)
/* bc_kernel_run over rows, for launchers that enqueue several kernels. */
static int run_rows(bertcl_ctx *ctx, bc_train_ops *o, cl_kernel k, const char *name,
                    const bc_karg *args, int nargs, size_t rows) {
  size_t g, l;
  bc_rows_launch(o->kset, o->wg, rows, &g, &l);
  return bc_kernel_run(ctx, k, name, args, nargs, g, l);
}

/* Launch shape of the column-sum kernels over C columns: GPU set, an item per column; CPU set,
 * an item per VW columns, one per group (few items, each a long loop over the rows). */
static void columns_launch(const bc_train_ops *o, int C, size_t *global, size_t *local) {
  if (o->kset == BC_KSET_CPU) {
    *global = ((size_t)C + o->vw - 1) / o->vw;
    *local = 1;
  } else {
    *global = (size_t)C;
    *local = 64;
  }
}

int bc_op_dropout(bertcl_ctx *ctx, bc_train_ops *o, cl_mem out, cl_mem x, float p, uint64_t seed,
                  uint32_t step, uint32_t id, size_t n) {
  cl_uint lo = (cl_uint)seed, hi = (cl_uint)(seed >> 32), s = step, d = id;
  cl_ulong nn = n;
  if (o->kset == BC_KSET_CPU) /* CHUNK elements per item */
    RUN(dropout_fwd, (n + CHUNK - 1) / CHUNK, BC_CPU_ROWS_LOCAL, A(out), A(x),
        A(p), A(lo), A(hi), A(s), A(d), A(nn));
  RUN(dropout_fwd, n, 64, A(out), A(x), A(p), A(lo), A(hi), A(s), A(d), A(nn));
}

int bc_op_layernorm_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dy, cl_mem stats, cl_mem dw,
                        cl_mem db, cl_mem dout, cl_mem xin, cl_mem w, float eps, int N, int C) {
  const bc_karg a1[] = {A(dy), A(stats), A(dout), A(xin), A(w), A(eps), A(N), A(C)};
  int st = run_rows(ctx, o, o->layernorm_bwd, "layernorm_bwd", a1, 8, (size_t)N);
  if (st != BERTCL_OK) return st;
  const bc_karg a2[] = {A(dw), A(db), A(dout), A(xin), A(stats), A(N), A(C)};
  size_t g, l;
  columns_launch(o, C, &g, &l);
  return bc_kernel_run(ctx, o->layernorm_bwd_params, "layernorm_bwd_params", a2, 7, g, l);
}

int bc_op_colsum_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem db, cl_mem d, int N, int C) {
  size_t g, l;
  columns_launch(o, C, &g, &l);
  RUN(colsum_bwd, g, l, A(db), A(d), A(N), A(C));
}

int bc_op_bias_act_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dx, cl_mem dout, cl_mem x,
                       cl_mem bias, int act, int N, int C) {
  if (o->kset == BC_KSET_CPU)
    RUN_ROWS(bias_act_bwd, (size_t)N, A(dx), A(dout), A(x), A(bias), A(act), A(N), A(C));
  RUN(bias_act_bwd, (size_t)N * C, 64, A(dx), A(dout), A(x), A(bias), A(act), A(N), A(C));
}

int bc_op_tanh_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dx, cl_mem dout, cl_mem y, size_t n) {
  cl_ulong nn = n;
  RUN(tanh_bwd, n, 64, A(dx), A(dout), A(y), A(nn));
}

int bc_op_softmax_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem ds, cl_mem dp, cl_mem p,
                      float scale, int rows, int T) {
  RUN_ROWS(softmax_bwd, (size_t)rows, A(ds), A(dp), A(p), A(scale), A(rows), A(T));
}

/* Rows of the (rows, C) table keys[] index, summed from dy per row in (b, t) order: the tokens
 * sorted by key on the host (stable insertion), one segment per distinct key. */
static int table_rows_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dtable, cl_mem dy,
                          const int32_t *keys, size_t N, int C) {
  int st = BERTCL_OK;
  int32_t *order = malloc((N ? N : 1) * 4), *seg = malloc((N + 1) * 4),
          *uid = malloc((N ? N : 1) * 4);
  cl_mem dorder = NULL, dseg = NULL, duid = NULL;
  if (!order || !seg || !uid) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < N; i++) order[i] = (int32_t)i;
  for (size_t i = 1; i < N; i++) {
    int32_t v = order[i];
    size_t j = i;
    while (j > 0 && keys[order[j - 1]] > keys[v]) order[j] = order[j - 1], j--;
    order[j] = v;
  }
  int U = 0;
  for (size_t i = 0; i < N; i++)
    if (i == 0 || keys[order[i]] != keys[order[i - 1]]) seg[U] = (int32_t)i, uid[U++] = keys[order[i]];
  seg[U] = (int32_t)N;
  dorder = bc_buffer_create(ctx, (N ? N : 1) * 4, order, &st);
  if (st) goto done;
  dseg = bc_buffer_create(ctx, ((size_t)U + 1) * 4, seg, &st);
  if (st) goto done;
  duid = bc_buffer_create(ctx, (size_t)(U ? U : 1) * 4, uid, &st);
  if (st) goto done;
  const bc_karg a[] = {A(dtable), A(dy), A(dorder), A(dseg), A(duid), A(U), A(C)};
  st = bc_kernel_run(ctx, o->embedding_bwd_rows, "embedding_bwd_rows", a, 7, (size_t)U * C, 64);
  if (st) goto done;
  clFinish(ctx->queue); /* the index buffers are released below */
done:
  if (dorder) clReleaseMemObject(dorder);
  if (dseg) clReleaseMemObject(dseg);
  if (duid) clReleaseMemObject(duid);
  free(order);
  free(seg);
  free(uid);
  return st;
}

int bc_op_embedding_bwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dword, cl_mem dpos,
                        cl_mem dtype, cl_mem dy, const int32_t *ids, const int32_t *pos_ids,
                        cl_mem type_ids, int B, int T, int TT, int C) {
  int st = BERTCL_OK;
  size_t N = (size_t)B * T;
  int32_t *pos = NULL;
  if (!pos_ids) { /* position t */
    if (!(pos = malloc((N ? N : 1) * 4))) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < N; i++) pos[i] = (int32_t)(i % (size_t)T);
    pos_ids = pos;
  }
  BC_TRY(table_rows_bwd(ctx, o, dword, dy, ids, N, C));
  BC_TRY(table_rows_bwd(ctx, o, dpos, dy, pos_ids, N, C));
  if (TT > 0 && dtype) {
    int n = (int)N;
    const bc_karg a[] = {A(dtype), A(dy), A(type_ids), A(n), A(TT), A(C)};
    BC_TRY(bc_kernel_run(ctx, o->embedding_bwd_type, "embedding_bwd_type", a, 6, (size_t)TT * C,
                         64));
  }
fail:
  free(pos);
  return st;
}

int bc_op_cross_entropy(bertcl_ctx *ctx, bc_train_ops *o, cl_mem dlogits, cl_mem logits,
                        const int32_t *labels, int B, int K, float scale, double *loss) {
  int st = BERTCL_OK;
  float count = 0;
  for (int b = 0; b < B; b++) count += labels[b] >= 0 && labels[b] < K;
  float *losses = calloc((size_t)B + 1, sizeof *losses);
  cl_mem dl = NULL, dlab = NULL;
  if (!losses) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  dlab = bc_buffer_create(ctx, (size_t)B * 4, labels, &st);
  if (st) goto done;
  dl = bc_buffer_create(ctx, (size_t)B * 4, NULL, &st);
  if (st) goto done;
  float cnt = count > 0 ? count : 1.0f;
  const bc_karg a[] = {A(dlogits), A(dl), A(logits), A(dlab), A(B), A(K), A(scale), A(cnt)};
  st = bc_kernel_run(ctx, o->cross_entropy_fwd_bwd, "cross_entropy_fwd_bwd", a, 8, (size_t)B, 64);
  if (st) goto done;
  BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, dl, CL_TRUE, 0, (size_t)B * 4, losses, 0,
                                       NULL, NULL));
  double s = 0;
  for (int b = 0; b < B; b++) s += losses[b];
  *loss = count > 0 ? s / count : NAN;
fail:
done:
  if (dl) clReleaseMemObject(dl);
  if (dlab) clReleaseMemObject(dlab);
  free(losses);
  return st;
}

int bc_op_grad_norm(bertcl_ctx *ctx, bc_train_ops *o, cl_mem g, size_t n, double *norm) {
  int st = BERTCL_OK;
  /* one partial per work-group (GPU set) or work-item (CPU set) */
  size_t per = o->kset == BC_KSET_CPU ? SUMSQ_CHUNK : o->wg * 16, groups = (n + per - 1) / per;
  float *part = calloc(groups ? groups : 1, sizeof *part);
  cl_mem dpart = NULL;
  if (!part) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  dpart = bc_buffer_create(ctx, groups * 4, NULL, &st);
  if (st) goto done;
  cl_ulong nn = n;
  const bc_karg a[] = {A(dpart), A(g), A(nn)};
  if (o->kset == BC_KSET_CPU)
    st = bc_kernel_run(ctx, o->sumsq_partial, "sumsq_partial", a, 3, groups, BC_CPU_ROWS_LOCAL);
  else
    st = bc_kernel_run(ctx, o->sumsq_partial, "sumsq_partial", a, 3, groups * o->wg, o->wg);
  if (st) goto done;
  BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, dpart, CL_TRUE, 0, groups * 4, part, 0, NULL,
                                       NULL));
  double s = 0;
  for (size_t i = 0; i < groups; i++) s += part[i];
  *norm = sqrt(s);
fail:
done:
  if (dpart) clReleaseMemObject(dpart);
  free(part);
  return st;
}

int bc_op_adamw(bertcl_ctx *ctx, bc_train_ops *o, cl_mem p, cl_mem m, cl_mem v, cl_mem g,
                size_t off, size_t n, float gscale, float lr, float beta1, float beta2, float eps,
                float wd, int t) {
  float bc1 = (float)(1.0 - pow(beta1, t)), bc2 = (float)(1.0 - pow(beta2, t));
  cl_ulong offl = off, nn = n;
  RUN(adamw_step, n, 64, A(p), A(m), A(v), A(g), A(gscale), A(lr), A(beta1), A(beta2), A(eps),
      A(wd), A(bc1), A(bc2), A(offl), A(nn));
}

/* ---- forward helpers of the training step ------------------------------------------------ */

int bc_op_embedding_sum(bertcl_ctx *ctx, bc_train_ops *o, cl_mem xin, cl_mem ids,
                        cl_mem pos_ids, cl_mem type_ids, cl_mem wte, cl_mem wpe, cl_mem wtt,
                        int N, int C, int TT) {
  /* without token types the kernel reads neither type_ids nor wtt: any buffer will do */
  if (TT <= 0) type_ids = ids, wtt = wpe, TT = 0;
  RUN(embedding_sum_fwd, (size_t)N * C, 64, A(xin), A(ids), A(pos_ids), A(type_ids), A(wte),
      A(wpe), A(wtt), A(N), A(C), A(TT));
}

int bc_op_layernorm_fwd(bertcl_ctx *ctx, bc_train_ops *o, cl_mem out, cl_mem x, cl_mem w,
                        cl_mem b, float eps, int N, int C) {
  RUN_ROWS(layernorm_fwd, (size_t)N, A(out), A(x), A(w), A(b), A(eps), A(N), A(C));
}

int bc_op_bias_dropout_residual(bertcl_ctx *ctx, bc_train_ops *o, cl_mem out, cl_mem x,
                                cl_mem bias, cl_mem res, float p, uint64_t seed, uint32_t step,
                                uint32_t id, int N, int C) {
  cl_int has_res = res != NULL;
  cl_mem r = res ? res : x;
  cl_uint lo = (cl_uint)seed, hi = (cl_uint)(seed >> 32), s = step, d = id;
  if (o->kset == BC_KSET_CPU)
    RUN_ROWS(bias_dropout_residual_fwd, (size_t)N, A(out), A(x), A(bias), A(r), A(has_res), A(p),
             A(lo), A(hi), A(s), A(d), A(N), A(C));
  RUN(bias_dropout_residual_fwd, (size_t)N * C, 64, A(out), A(x), A(bias), A(r), A(has_res), A(p),
      A(lo), A(hi), A(s), A(d), A(N), A(C));
}
