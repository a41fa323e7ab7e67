/* The host BLAS behind the "blas" GEMM backend, loaded at run time (dlopen), once per process.
 * bertcl links no BLAS: without one it runs on CLBlast alone.
 *
 * Which library: $BERTCL_BLAS when set (a path or a soname; "none" disables the host BLAS),
 * else the first of these that loads, computes correctly and runs kernels as wide as the CPU's
 * vectors (else the widest that does):
 *   1. the scipy-openblas32 wheel's libscipy_openblas.so (current OpenBLAS, detects new CPUs;
 *      CBLAS symbols prefixed scipy_): the copy scripts/fetch-blas.sh puts under deps/, found at
 *      configure time (BERTCL_BLAS_DEFAULT), or on the library path;
 *   2. the system's OpenBLAS (libopenblas.so.0, Fedora's libopenblasp.so.0), MKL
 *      (libmkl_rt.so), BLIS (libblis.so.4), FlexiBLAS, libblas.so.3.
 * Every candidate is checked against a double-precision loop on a few shapes (all four
 * transpose cases, alpha/beta) before it is trusted, which also covers a kernel set forced with
 * OPENBLAS_CORETYPE. The library runs single-threaded: bertcl splits each product over its own
 * threads (gemm/blas_backend.c), so one set of threads does the work. */
#ifndef BC_BLAS_H
#define BC_BLAS_H

#include <stddef.h>

typedef void (*bc_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc);
/* CBLAS enum values (cblas.h) */
enum { BC_CBLAS_ROW_MAJOR = 101, BC_CBLAS_NO_TRANS = 111, BC_CBLAS_TRANS = 112 };

typedef struct {
  int ok;             /* a library is loaded and verified */
  char path[512];     /* the file or soname loaded */
  char name[96];      /* "OpenBLAS 0.3.34", "BLIS 0.9.0", "MKL 2024.0", "unidentified CBLAS" */
  char kernels[64];   /* the CPU kernel set it runs ("SkylakeX", "skx"; "" when not known) */
  int kernel_bits;    /* vector width of that kernel set (512, 256, 128; 0 unknown) */
  int cpu_bits;       /* the CPU's widest fp32 FMA vectors (runtime/cpuinfo.h) */
  char why[1024];     /* each candidate passed over and why (or why none could be used) */
  bc_sgemm_fn sgemm;
} bc_blas_lib;

/* Loads and checks the library on first call (thread-safe); never NULL. */
const bc_blas_lib *bc_blas_lib_get(void);

/* The checks applied to every candidate: 0 when sgemm matches a double-precision loop on the
 * test shapes; else -1 and a description in why. Exposed for tests. */
int bc_blas_verify(bc_sgemm_fn sgemm, char *why, size_t n);

#endif
