/* Host CPU facts from /proc/cpuinfo and sysfs. See cpuinfo.h.
 *
 * FMA pipes per core are not reported by any OS interface, so they come from the ISA and vendor:
 *   AVX-512F, Intel: 2 (Skylake-SP Gold/Platinum and later server cores; a few Silver/Bronze
 *                      parts have 1, so the figure is an upper bound there)
 *   AVX-512F, AMD family 0x19 (Zen 4): 1 (512-bit operations run as two 256-bit halves)
 *   AVX-512F, AMD family >= 0x1a (Zen 5): 2
 *   AVX2 + FMA: 2 (Haswell and later, Zen 2 and later)
 *   AVX without FMA, SSE2: one multiply and one add pipe, counted as 1 "FMA"
 *   aarch64 (asimd): 2 x 128-bit (Neoverse N1/V1-class cores; Apple cores have 4)
 */
#define _POSIX_C_SOURCE 200809L
#include "runtime/cpuinfo.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Value of the first line "key<spaces/tabs>: value" at or after p, copied into out. */
static int field(const char *p, const char *key, char *out, size_t n) {
  size_t kl = strlen(key);
  for (const char *line = p; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (strncmp(line, key, kl) != 0) continue;
    const char *q = line + kl;
    while (*q == ' ' || *q == '\t') q++;
    if (*q != ':') continue;
    q++;
    while (*q == ' ') q++;
    size_t len = strcspn(q, "\n");
    if (len >= n) len = n - 1;
    memcpy(out, q, len);
    out[len] = '\0';
    return 1;
  }
  return 0;
}

/* A whole word of a space-separated list. */
static int has_word(const char *list, const char *w) {
  size_t wl = strlen(w);
  for (const char *p = strstr(list, w); p; p = strstr(p + 1, w))
    if ((p == list || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0')) return 1;
  return 0;
}

/* Counts logical processors and distinct (physical id, core id) pairs. */
static void count_cpus(const char *text, int *logical, int *physical) {
  enum { MAX_PAIRS = 4096 };
  static long pairs[MAX_PAIRS];
  int np = 0, nl = 0, have_core_ids = 0;
  long phys = 0;
  for (const char *line = text; line && *line;) {
    char v[64];
    if (strncmp(line, "processor", 9) == 0 && field(line, "processor", v, sizeof v)) {
      nl++;
      phys = 0;
    } else if (strncmp(line, "physical id", 11) == 0 && field(line, "physical id", v, sizeof v)) {
      phys = strtol(v, NULL, 10);
    } else if (strncmp(line, "core id", 7) == 0 && field(line, "core id", v, sizeof v)) {
      have_core_ids = 1;
      long key = phys * 65536 + strtol(v, NULL, 10);
      int seen = 0;
      for (int i = 0; i < np && !seen; i++) seen = pairs[i] == key;
      if (!seen && np < MAX_PAIRS) pairs[np++] = key;
    }
    line = strchr(line, '\n');
    if (line) line++;
  }
  *logical = nl;
  *physical = have_core_ids && np > 0 ? np : nl;
}

void bc_cpu_info_parse(const char *text, long max_khz, bc_cpu_info *o) {
  memset(o, 0, sizeof *o);
  if (!text) text = "";
  count_cpus(text, &o->logical_cpus, &o->physical_cores);
  field(text, "model name", o->model, sizeof o->model);
  char vendor[64] = "", family[16] = "", mhz[32] = "";
  field(text, "vendor_id", vendor, sizeof vendor);
  field(text, "cpu family", family, sizeof family);
  const char *clock_from = "unknown";
  if (max_khz > 0) {
    o->mhz = (double)max_khz / 1000.0;
    clock_from = "cpufreq cpuinfo_max_freq";
  } else if (field(text, "cpu MHz", mhz, sizeof mhz) && atof(mhz) > 0) {
    o->mhz = atof(mhz);
    clock_from = "/proc/cpuinfo cpu MHz";
  }
  /* feature list: x86 "flags", aarch64 "Features" */
  size_t fl_n = 8192;
  char *flags = malloc(fl_n);
  const char *pipes_basis = "no recognisable vector ISA";
  if (flags) {
    flags[0] = '\0';
    int x86 = field(text, "flags", flags, fl_n);
    if (x86) {
      long fam = strtol(family, NULL, 0);
      int amd = strstr(vendor, "AMD") != NULL;
      if (has_word(flags, "avx512f")) {
        o->simd_bits = 512;
        snprintf(o->isa, sizeof o->isa, "AVX-512");
        if (amd && fam == 0x19) {
          o->fma_units = 1;
          pipes_basis = "Zen 4 runs 512-bit FMAs as two halves: 1 pipe";
        } else {
          o->fma_units = 2;
          pipes_basis = "2 FMA pipes assumed (an upper bound on parts with one)";
        }
      } else if (has_word(flags, "avx2") && has_word(flags, "fma")) {
        o->simd_bits = 256, o->fma_units = 2;
        snprintf(o->isa, sizeof o->isa, "AVX2+FMA");
        pipes_basis = "2 FMA pipes";
      } else if (has_word(flags, "avx")) {
        o->simd_bits = 256, o->fma_units = 1;
        snprintf(o->isa, sizeof o->isa, "AVX");
        pipes_basis = "one multiply and one add pipe";
      } else if (has_word(flags, "sse2")) {
        o->simd_bits = 128, o->fma_units = 1;
        snprintf(o->isa, sizeof o->isa, "SSE2");
        pipes_basis = "one multiply and one add pipe";
      }
    } else if (field(text, "Features", flags, fl_n) && has_word(flags, "asimd")) {
      o->simd_bits = 128, o->fma_units = 2;
      snprintf(o->isa, sizeof o->isa, "NEON");
      pipes_basis = "2 x 128-bit FMA pipes assumed";
    }
    free(flags);
  }
  snprintf(o->pipes, sizeof o->pipes, "%s", pipes_basis);
  o->flops_per_cycle = o->simd_bits / 32 * 2 * o->fma_units;
  o->peak_gflops = o->physical_cores * o->mhz / 1000.0 * o->flops_per_cycle;
  if (o->peak_gflops > 0)
    snprintf(o->basis, sizeof o->basis,
             "%d cores x %.0f MHz (%s) x %d fp32 FLOPs/cycle (%s, %s)", o->physical_cores,
             o->mhz, clock_from, o->flops_per_cycle, o->isa, o->pipes);
  else
    snprintf(o->basis, sizeof o->basis, "unknown: %s%s%s",
             o->physical_cores ? "" : "no processor in /proc/cpuinfo; ",
             o->mhz > 0 ? "" : "no clock in cpufreq or /proc/cpuinfo; ",
             o->simd_bits ? "" : "no recognisable vector ISA");
}

static bc_cpu_info cached;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void read_host(void) {
  char *text = NULL;
  size_t len = 0;
  /* errors go to a local record: reading /proc is best effort and must not touch the caller's */
  bc_err quiet = {0};
  if (bc_read_file(&quiet, "/proc/cpuinfo", &text, &len) != BERTCL_OK) text = NULL;
  long khz = 0;
  FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
  if (f) {
    if (fscanf(f, "%ld", &khz) != 1) khz = 0;
    fclose(f);
  }
  bc_cpu_info_parse(text, khz, &cached);
  free(text);
}

void bc_cpu_info_get(bc_cpu_info *out) {
  pthread_once(&once, read_host);
  *out = cached;
}
