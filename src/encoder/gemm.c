/* bc_gemm on CLBlast. */
#include "encoder/gemm.h"

#include <clblast_c.h>

#include "runtime/tuning.h"

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

int bc_gemm(bertcl_ctx *ctx, const bc_gemm_args *g) {
  if (g->m == 0 || g->n == 0) return BERTCL_OK;
  bc_tuning_ensure(ctx); /* stored CLBlast parameters for this device, once per process */
  CLBlastTranspose ta = g->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tb = g->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastStatusCode s;
  const char *call;
  if (g->batch <= 1) {
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
                   "%s(m=%zu n=%zu k=%zu batch=%zu trans=%d%d) -> %s (%d) on %s", call, g->m, g->n,
                   g->k, g->batch ? g->batch : 1, g->trans_a, g->trans_b, clblast_name(s), (int)s,
                   ctx->info.name);
  }
  return BERTCL_OK;
}

int bc_linear(bertcl_ctx *ctx, cl_mem out, size_t out_off, cl_mem x, size_t x_off, cl_mem w,
              size_t w_off, size_t n, size_t ic, size_t oc) {
  bc_gemm_args g = {.trans_a = 0, .trans_b = 1, .m = n, .n = oc, .k = ic, .alpha = 1.0f,
                    .beta = 0.0f, .a = x, .a_off = x_off, .lda = ic, .b = w, .b_off = w_off,
                    .ldb = ic, .c = out, .c_off = out_off, .ldc = oc, .batch = 1};
  return bc_gemm(ctx, &g);
}
