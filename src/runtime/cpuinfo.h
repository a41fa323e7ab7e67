/* Facts about the host CPU from the operating system (/proc/cpuinfo, sysfs) and cpuid, for CPU
 * OpenCL devices whose driver reports no clock (Intel's CPU runtime says 0 MHz) and for the fp32
 * peak that bench and the BLAS backend compare against. Best effort: a field that cannot be
 * found is 0 and `basis` says what is missing; nothing here fails. */
#ifndef BC_CPUINFO_H
#define BC_CPUINFO_H

typedef struct {
  int logical_cpus;   /* online hardware threads */
  int physical_cores; /* distinct (package, core) pairs; = logical_cpus when unknown */
  double mhz;         /* clock: cpufreq's maximum, else /proc/cpuinfo "cpu MHz", else 0 */
  int simd_bits;      /* widest fp32 FMA vectors: 512 (AVX-512F), 256 (AVX2+FMA / AVX), 128 */
  int fma_units;      /* vector FMA pipes per core (a table by ISA; see cpuinfo.c) */
  int flops_per_cycle;/* fp32 FLOPs per core per cycle: simd_bits / 32 * 2 (FMA) * fma_units */
  double peak_gflops; /* physical_cores * mhz / 1000 * flops_per_cycle; 0 when unknown */
  char isa[24];       /* "AVX-512", "AVX2+FMA", "AVX", "SSE2", "NEON", "" */
  char model[96];     /* /proc/cpuinfo "model name" */
  char pipes[96];     /* why fma_units has its value */
  char basis[256];    /* how the figures were found, for reports */
} bc_cpu_info;

/* Reads the host CPU's facts once per process (later calls copy the cached result). */
void bc_cpu_info_get(bc_cpu_info *out);

/* The same computed from the text of /proc/cpuinfo (NUL-terminated) and cpufreq's maximum in
 * kHz (0 = none): the parser behind bc_cpu_info_get, exposed for tests. */
void bc_cpu_info_parse(const char *cpuinfo_text, long max_khz, bc_cpu_info *out);

#endif
