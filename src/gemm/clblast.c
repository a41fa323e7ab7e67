/* The CLBlast backend of bc_gemm, and CLBlast's process-wide program cache. */
#include "gemm/gemm.h"

#include <clblast_c.h>
#include <stdlib.h>

#include "gemm/tuning.h"

static const char *clblast_name(CLBlastStatusCode s) {
  switch (s) {
    case CLBlastSuccess: return "CLBlastSuccess";
    case CLBlastOpenCLCompilerNotAvailable: return "CLBlastOpenCLCompilerNotAvailable";
    case CLBlastTempBufferAllocFailure: return "CLBlastTempBufferAllocFailure";
    case CLBlastOpenCLOutOfResources: return "CLBlastOpenCLOutOfResources";
    case CLBlastOpenCLOutOfHostMemory: return "CLBlastOpenCLOutOfHostMemory";
    case CLBlastOpenCLBuildProgramFailure: return "CLBlastOpenCLBuildProgramFailure";
    case CLBlastInvalidValue: return "CLBlastInvalidValue";
    case CLBlastInvalidCommandQueue: return "CLBlastInvalidCommandQueue";
    case CLBlastInvalidMemObject: return "CLBlastInvalidMemObject";
    case CLBlastInvalidBinary: return "CLBlastInvalidBinary";
    case CLBlastInvalidBuildOptions: return "CLBlastInvalidBuildOptions";
    case CLBlastInvalidProgram: return "CLBlastInvalidProgram";
    case CLBlastInvalidProgramExecutable: return "CLBlastInvalidProgramExecutable";
    case CLBlastInvalidKernelName: return "CLBlastInvalidKernelName";
    case CLBlastInvalidKernelDefinition: return "CLBlastInvalidKernelDefinition";
    case CLBlastInvalidKernel: return "CLBlastInvalidKernel";
    case CLBlastInvalidArgIndex: return "CLBlastInvalidArgIndex";
    case CLBlastInvalidArgValue: return "CLBlastInvalidArgValue";
    case CLBlastInvalidArgSize: return "CLBlastInvalidArgSize";
    case CLBlastInvalidKernelArgs: return "CLBlastInvalidKernelArgs";
    case CLBlastInvalidLocalNumDimensions: return "CLBlastInvalidLocalNumDimensions";
    case CLBlastInvalidLocalThreadsTotal: return "CLBlastInvalidLocalThreadsTotal";
    case CLBlastInvalidLocalThreadsDim: return "CLBlastInvalidLocalThreadsDim";
    case CLBlastInvalidGlobalOffset: return "CLBlastInvalidGlobalOffset";
    case CLBlastInvalidEventWaitList: return "CLBlastInvalidEventWaitList";
    case CLBlastInvalidEvent: return "CLBlastInvalidEvent";
    case CLBlastInvalidOperation: return "CLBlastInvalidOperation";
    case CLBlastInvalidBufferSize: return "CLBlastInvalidBufferSize";
    case CLBlastInvalidGlobalWorkSize: return "CLBlastInvalidGlobalWorkSize";
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidVectorX: return "CLBlastInvalidVectorX";
    case CLBlastInvalidVectorY: return "CLBlastInvalidVectorY";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInvalidBatchCount: return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
    case CLBlastNoDoublePrecision: return "CLBlastNoDoublePrecision";
    case CLBlastInvalidVectorScalar: return "CLBlastInvalidVectorScalar";
    case CLBlastInsufficientMemoryScalar: return "CLBlastInsufficientMemoryScalar";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return "CLBlast error";
  }
}

/* Products of a batch2 x batch grid: one CLBlastSgemmBatched call with an offset per product. */
static CLBlastStatusCode grid_batched(bertcl_ctx *ctx, const bc_gemm_args *g, CLBlastTranspose ta,
                                      CLBlastTranspose tb, int *nomem) {
  size_t n = g->batch * g->batch2;
  size_t *off = malloc(3 * n * sizeof *off);
  float *ab = malloc(2 * n * sizeof *ab);
  if (!off || !ab) {
    free(off);
    free(ab);
    *nomem = 1;
    return CLBlastOpenCLOutOfHostMemory;
  }
  for (size_t j = 0, p = 0; j < g->batch2; j++)
    for (size_t i = 0; i < g->batch; i++, p++) {
      off[p] = g->a_off + j * g->a_stride2 + i * g->a_stride;
      off[n + p] = g->b_off + j * g->b_stride2 + i * g->b_stride;
      off[2 * n + p] = g->c_off + j * g->c_stride2 + i * g->c_stride;
      ab[p] = g->alpha;
      ab[n + p] = g->beta;
    }
  CLBlastStatusCode s = CLBlastSgemmBatched(
      CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, ab, g->a, off, g->lda, g->b, off + n,
      g->ldb, ab + n, g->c, off + 2 * n, g->ldc, n, &ctx->queue, g->event);
  free(off);
  free(ab);
  return s;
}

static int clblast_gemm(bertcl_ctx *ctx, const bc_gemm_args *g) {
  bc_tuning_ensure(ctx); /* stored CLBlast parameters for this device, once per process */
  CLBlastTranspose ta = g->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tb = g->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastStatusCode s;
  const char *call;
  int nomem = 0;
  if (g->batch2 > 1) {
    call = "CLBlastSgemmBatched";
    s = grid_batched(ctx, g, ta, tb, &nomem);
    if (nomem) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  } else if (g->batch <= 1) {
    call = "CLBlastSgemm";
    s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a, g->a_off,
                     g->lda, g->b, g->b_off, g->ldb, g->beta, g->c, g->c_off, g->ldc,
                     &ctx->queue, g->event);
  } else {
    call = "CLBlastSgemmStridedBatched";
    s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha,
                                   g->a, g->a_off, g->lda, g->a_stride, g->b, g->b_off, g->ldb,
                                   g->b_stride, g->beta, g->c, g->c_off, g->ldc, g->c_stride,
                                   g->batch, &ctx->queue, g->event);
  }
  if (s != CLBlastSuccess) {
    int st = (s == CLBlastTempBufferAllocFailure || s == CLBlastOpenCLOutOfResources ||
              s == CLBlastOpenCLOutOfHostMemory || s == -4 /* CL_MEM_OBJECT_ALLOCATION_FAILURE */)
                 ? BERTCL_ERR_DEVICE_OOM
                 : BERTCL_ERR_CLBLAST;
    return bc_fail(&ctx->err, st,
                   "%s(m=%zu n=%zu k=%zu batch=%zux%zu trans=%d%d) -> %s (%d) on %s", call, g->m,
                   g->n, g->k, g->batch2, g->batch, g->trans_a, g->trans_b, clblast_name(s),
                   (int)s, ctx->info.name);
  }
  return BERTCL_OK;
}

const bc_gemm_backend bc_gemm_clblast = {BC_GEMM_CLBLAST, "clblast", clblast_gemm};

void bc_clblast_clear_cache(void) { CLBlastClearCache(); }
