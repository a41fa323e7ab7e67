/* bc_gemm: argument checks, then the context's backend; choosing the backend per context. */
#include "gemm/gemm.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gemm/blas.h"

void bc_clblast_clear_cache(void);              /* gemm/clblast.c */
int bc_blas_backend_check(bertcl_ctx *ctx, char *why, size_t n); /* gemm/blas_backend.c */
int bc_blas_backend_threads(void);              /* gemm/blas_backend.c */

/* Live contexts. CLBlast caches compiled programs, which retain their OpenCL context, in a
 * process-wide cache; when the last bertcl context goes, that cache is cleared so the contexts
 * are really released now, not by CLBlast's static destructors at exit (which crash some
 * OpenCL implementations, oclgrind among them, whose own state is gone by then). */
static atomic_int live_contexts;

int bc_gemm(bertcl_ctx *ctx, const bc_gemm_args *in) {
  if (in->m == 0 || in->n == 0) return BERTCL_OK;
  bc_gemm_args g = *in;
  if (g.batch == 0) g.batch = 1;
  if (g.batch2 == 0) g.batch2 = 1;
  if (!ctx->gemm) ctx->gemm = &bc_gemm_clblast;
  return ctx->gemm->gemm(ctx, &g);
}

int bc_linear(bertcl_ctx *ctx, cl_mem out, size_t out_off, cl_mem x, size_t x_off, cl_mem w,
              size_t w_off, size_t n, size_t ic, size_t oc) {
  bc_gemm_args g = {.trans_a = 0, .trans_b = 1, .m = n, .n = oc, .k = ic, .alpha = 1.0f,
                    .beta = 0.0f, .a = x, .a_off = x_off, .lda = ic, .b = w, .b_off = w_off,
                    .ldb = ic, .c = out, .c_off = out_off, .ldc = oc, .batch = 1};
  return bc_gemm(ctx, &g);
}

int bc_gemm_blas_usable(bertcl_ctx *ctx, char *why, size_t n) {
  why[0] = '\0';
  if (ctx->info.type != BERTCL_DEVICE_CPU) {
    snprintf(why, n, "%s is not a CPU device (the BLAS backend runs on CPU OpenCL devices)",
             ctx->info.name);
    return 0;
  }
  cl_device_exec_capabilities caps = 0;
  if (clGetDeviceInfo(ctx->device, CL_DEVICE_EXECUTION_CAPABILITIES, sizeof caps, &caps, NULL) !=
          CL_SUCCESS ||
      !(caps & CL_EXEC_NATIVE_KERNEL)) {
    snprintf(why, n, "%s (%s) cannot run native kernels (CL_EXEC_NATIVE_KERNEL)", ctx->info.name,
             ctx->info.platform_name);
    return 0;
  }
  const bc_blas_lib *lib = bc_blas_lib_get();
  if (!lib->ok) {
    snprintf(why, n, "%s", lib->why);
    return 0;
  }
  return bc_blas_backend_check(ctx, why, n);
}

int bc_gemm_ctx_init(bertcl_ctx *ctx) {
  ctx->gemm = &bc_gemm_clblast;
  ctx->host_buffers = 0;
  ctx->gemm_reason[0] = '\0';
  const char *req = ctx->gemm_request[0] ? ctx->gemm_request : "auto";
  atomic_fetch_add(&live_contexts, 1);
  if (!strcmp(req, "clblast")) return BERTCL_OK;
  char why[sizeof ctx->gemm_reason];
  if (!strcmp(req, "auto") && ctx->info.type != BERTCL_DEVICE_CPU) return BERTCL_OK;
  if (bc_gemm_blas_usable(ctx, why, sizeof why)) {
    ctx->gemm = &bc_gemm_blas;
    ctx->host_buffers = 1;
    return BERTCL_OK;
  }
  if (!strcmp(req, "blas"))
    return bc_fail(&ctx->err, BERTCL_ERR_UNSUPPORTED, "--gemm blas: %s; use --gemm clblast",
                   why);
  snprintf(ctx->gemm_reason, sizeof ctx->gemm_reason, "%s", why);
  return BERTCL_OK;
}

void bc_gemm_ctx_release(bertcl_ctx *ctx) {
  (void)ctx;
  if (atomic_fetch_sub(&live_contexts, 1) == 1) bc_clblast_clear_cache();
}

void bc_gemm_describe(const bertcl_ctx *ctx, char *out, size_t n) {
  if (ctx->gemm && ctx->gemm->kind == BC_GEMM_BLAS) {
    const bc_blas_lib *lib = bc_blas_lib_get();
    snprintf(out, n, "blas: %s%s%s%s, %d thread%s", lib->name, lib->kernels[0] ? " (" : "",
             lib->kernels, lib->kernels[0] ? " kernels)" : "", bc_blas_backend_threads(),
             bc_blas_backend_threads() == 1 ? "" : "s");
  } else {
    snprintf(out, n, "clblast: CLBlast %s", bc_clblast_version());
  }
}

/* ---- public ---------------------------------------------------------------------------------- */

const char *bertcl_ctx_gemm(const bertcl_ctx *ctx) {
  return ctx && ctx->gemm ? ctx->gemm->name : "clblast";
}

int bertcl_ctx_gemm_info(const bertcl_ctx *ctx, char *out, size_t n) {
  if (!ctx || !out || n == 0) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  char line[512];
  bc_gemm_describe(ctx, line, sizeof line);
  if (ctx->gemm_reason[0])
    snprintf(out, n, "%s (no host BLAS: %s)", line, ctx->gemm_reason);
  else
    snprintf(out, n, "%s", line);
  return BERTCL_OK;
}
