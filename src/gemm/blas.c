/* Finding, identifying and checking a host BLAS at run time. See blas.h. */
#define _GNU_SOURCE
#include "gemm/blas.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "runtime/cpuinfo.h"

#ifndef BERTCL_BLAS_DEFAULT
#define BERTCL_BLAS_DEFAULT ""
#endif

static bc_blas_lib g_lib;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* ---- the reference check ------------------------------------------------------------------ */

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

int bc_blas_verify(bc_sgemm_fn sgemm, char *why, size_t n) {
  /* small odd shapes take the edge paths of a kernel, the larger one its blocked main loop */
  static const int shapes[][5] = {/* m, n, k, trans_a, trans_b */
                                  {37, 29, 53, 0, 0}, {64, 48, 40, 0, 1}, {33, 17, 70, 1, 0},
                                  {21, 45, 9, 1, 1},  {1, 7, 300, 0, 1},  {160, 136, 144, 0, 1}};
  const float alpha = 0.75f, beta = 0.5f;
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int m = shapes[s][0], nn = shapes[s][1], k = shapes[s][2], ta = shapes[s][3],
        tb = shapes[s][4];
    /* padded leading dimensions, so a library that ignores them is caught */
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : nn) + 5, ldc = nn + 2;
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? nn : k) * ldb,
           nc = (size_t)m * ldc;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *c0 = malloc(nc * 4);
    if (!a || !b || !c || !c0) {
      free(a), free(b), free(c), free(c0);
      snprintf(why, n, "out of memory");
      return -1;
    }
    for (size_t i = 0; i < na; i++) a[i] = (float)((int)(lcg(&seed) % 2001) - 1000) / 1000.0f;
    for (size_t i = 0; i < nb; i++) b[i] = (float)((int)(lcg(&seed) % 2001) - 1000) / 1000.0f;
    for (size_t i = 0; i < nc; i++) c0[i] = c[i] = (float)((int)(lcg(&seed) % 201) - 100) / 100.0f;
    sgemm(BC_CBLAS_ROW_MAJOR, ta ? BC_CBLAS_TRANS : BC_CBLAS_NO_TRANS,
          tb ? BC_CBLAS_TRANS : BC_CBLAS_NO_TRANS, m, nn, k, alpha, a, lda, b, ldb, beta, c, ldc);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < m && !bad; i++)
      for (int j = 0; j < ldc && !bad; j++) {
        double got = c[(size_t)i * ldc + j];
        if (j >= nn) { /* padding columns of C must be untouched */
          if (got != c0[(size_t)i * ldc + j]) bad = 1, worst = INFINITY;
          continue;
        }
        double r = 0, mag = 0;
        for (int p = 0; p < k; p++) {
          double x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
          double y = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
          r += x * y;
          mag += fabs(x * y);
        }
        r = alpha * r + beta * c0[(size_t)i * ldc + j];
        double err = fabs(got - r), tol = 1e-5 * (alpha * mag + fabs(beta * c0[(size_t)i * ldc + j])) + 1e-6;
        if (!(err <= tol)) bad = 1, worst = err;
      }
    free(a), free(b), free(c), free(c0);
    if (bad) {
      snprintf(why, n, "wrong results on %dx%dx%d (trans %d%d): error %.3g", m, nn, k, ta, tb,
               worst);
      return -1;
    }
  }
  return 0;
}

/* ---- identifying a library ---------------------------------------------------------------- */

static int bits_of_openblas_core(const char *core) {
  static const char *const w512[] = {"skylakex", "cooperlake", "sapphirerapids"};
  static const char *const w256[] = {"haswell", "zen", "excavator", "sandybridge", "steamroller",
                                     "piledriver", "bulldozer"};
  for (size_t i = 0; i < sizeof w512 / sizeof *w512; i++)
    if (!strcasecmp(core, w512[i])) return 512;
  for (size_t i = 0; i < sizeof w256 / sizeof *w256; i++)
    if (!strcasecmp(core, w256[i])) return 256;
  return 128; /* Prescott, Core2, Penryn, Nehalem, Atom, ... and non-x86 cores */
}

static int bits_of_blis_arch(const char *arch) {
  if (!strcmp(arch, "skx") || !strcmp(arch, "knl") || !strcmp(arch, "zen4") ||
      !strcmp(arch, "zen5"))
    return 512;
  if (!strcmp(arch, "haswell") || !strncmp(arch, "zen", 3) || !strcmp(arch, "sandybridge") ||
      !strcmp(arch, "excavator") || !strcmp(arch, "steamroller") || !strcmp(arch, "piledriver") ||
      !strcmp(arch, "bulldozer"))
    return 256;
  if (!strcmp(arch, "generic")) return 64;
  return 128;
}

typedef struct {
  void *handle;
  bc_blas_lib info;
} candidate;

/* Loads one candidate and fills what it is; 0 when usable. Appends to why otherwise. */
static int try_load(const char *path, candidate *c, int cpu_bits) {
  memset(c, 0, sizeof *c);
  bc_blas_lib *o = &c->info;
  snprintf(o->path, sizeof o->path, "%s", path);
  o->cpu_bits = cpu_bits;
  c->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!c->handle) {
    const char *e = dlerror();
    snprintf(o->why, sizeof o->why, "%.400s: %.500s", path,
             e && strstr(e, "No such file") ? "not found" : e ? e : "dlopen failed");
    return -1;
  }
  void *h = c->handle;
  /* OpenBLAS (the scipy wheel prefixes every symbol with scipy_) */
  static const char *const prefixes[] = {"scipy_", ""};
  for (size_t p = 0; p < 2 && !o->sgemm; p++) {
    char nm[96];
    snprintf(nm, sizeof nm, "%sopenblas_get_config", prefixes[p]);
    char *(*config)(void) = (char *(*)(void))dlsym(h, nm);
    snprintf(nm, sizeof nm, "%sopenblas_get_corename", prefixes[p]);
    char *(*core)(void) = (char *(*)(void))dlsym(h, nm);
    snprintf(nm, sizeof nm, "%sopenblas_set_num_threads", prefixes[p]);
    void (*threads)(int) = (void (*)(int))dlsym(h, nm);
    snprintf(nm, sizeof nm, "%scblas_sgemm", prefixes[p]);
    bc_sgemm_fn sg = (bc_sgemm_fn)dlsym(h, nm);
    if (!config || !sg) continue;
    const char *cfg = config();
    if (cfg && strstr(cfg, "USE64BITINT")) {
      snprintf(o->why, sizeof o->why, "%s: 64-bit integer interface (ILP64)", path);
      return -1;
    }
    char ver[32] = "";
    if (cfg && !strncmp(cfg, "OpenBLAS ", 9)) sscanf(cfg + 9, "%31s", ver);
    snprintf(o->name, sizeof o->name, "OpenBLAS %s%s", ver, p == 0 ? " (scipy-openblas)" : "");
    snprintf(o->kernels, sizeof o->kernels, "%s", core ? core() : "");
    o->kernel_bits = core ? bits_of_openblas_core(o->kernels) : 0;
    if (threads) threads(1);
    o->sgemm = sg;
  }
  if (!o->sgemm) {
    bc_sgemm_fn sg = (bc_sgemm_fn)dlsym(h, "cblas_sgemm");
    const char *(*blis_ver)(void) = (const char *(*)(void))dlsym(h, "bli_info_get_version_str");
    int (*blis_arch)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    const char *(*blis_arch_str)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    void (*blis_threads)(int64_t) = (void (*)(int64_t))dlsym(h, "bli_thread_set_num_threads");
    void (*mkl_ver)(char *, int) = (void (*)(char *, int))dlsym(h, "MKL_Get_Version_String");
    void (*mkl_threads)(int) = (void (*)(int))dlsym(h, "MKL_Set_Num_Threads");
    if (!sg) {
      snprintf(o->why, sizeof o->why, "%s: no cblas_sgemm", path);
      return -1;
    }
    o->sgemm = sg;
    if (blis_ver) {
      snprintf(o->name, sizeof o->name, "BLIS %s", blis_ver());
      if (blis_arch && blis_arch_str) {
        const char *a = blis_arch_str(blis_arch());
        snprintf(o->kernels, sizeof o->kernels, "%s", a ? a : "");
        o->kernel_bits = bits_of_blis_arch(o->kernels);
      }
      if (blis_threads) blis_threads(1);
    } else if (mkl_ver) {
      char v[198] = "";
      mkl_ver(v, (int)sizeof v);
      char *cut = strstr(v, " Product");
      if (cut) *cut = '\0';
      snprintf(o->name, sizeof o->name, "%.95s", v[0] ? v : "MKL");
      o->kernel_bits = cpu_bits; /* MKL dispatches on the CPU itself */
      if (mkl_threads) mkl_threads(1);
    } else {
      /* FlexiBLAS, the reference BLAS, or anything else: works, speed unknown */
      snprintf(o->name, sizeof o->name, "unidentified CBLAS");
      o->kernel_bits = 0;
    }
  }
  char bad[256];
  if (bc_blas_verify(o->sgemm, bad, sizeof bad) != 0) {
    snprintf(o->why, sizeof o->why, "%.400s (%.95s%s%.63s): %.255s", path, o->name,
             o->kernels[0] ? ", kernels " : "", o->kernels, bad);
    return -1;
  }
  o->ok = 1;
  return 0;
}

static void drop(candidate *c) {
  if (c->handle) dlclose(c->handle);
  c->handle = NULL;
}

static void append(char *why, size_t n, const char *line) {
  size_t l = strlen(why), ll = strlen(line);
  if (l && l + 2 < n) memcpy(why + l, "; ", 3), l += 2;
  if (l + ll >= n) ll = n - l - 1;
  memcpy(why + l, line, ll);
  why[l + ll] = '\0';
}

static void load_once(void) {
  bc_blas_lib *g = &g_lib;
  memset(g, 0, sizeof *g);
  bc_cpu_info ci;
  bc_cpu_info_get(&ci);
  int cpu_bits = ci.simd_bits;
  const char *env = getenv("BERTCL_BLAS");
  candidate best, c;
  memset(&best, 0, sizeof best);
  if (env && *env) {
    if (!strcasecmp(env, "none") || !strcasecmp(env, "off")) {
      snprintf(g->why, sizeof g->why, "host BLAS disabled (BERTCL_BLAS=%s)", env);
      g->cpu_bits = cpu_bits;
      return;
    }
    /* an explicit choice is taken whatever its kernels, once it computes correctly */
    if (try_load(env, &c, cpu_bits) == 0) {
      *g = c.info;
      return; /* the handle stays open for the process */
    }
    snprintf(g->why, sizeof g->why, "BERTCL_BLAS=%.200s: %.700s", env, c.info.why);
    g->cpu_bits = cpu_bits;
    return;
  }
  const char *const system[] = {"libscipy_openblas.so", "libopenblas.so.0", "libopenblasp.so.0",
                                "libmkl_rt.so.2",       "libmkl_rt.so",     "libblis.so.4",
                                "libflexiblas.so.3",    "libblas.so.3"};
  const char *list[1 + sizeof system / sizeof *system];
  size_t nl = 0;
  if (BERTCL_BLAS_DEFAULT[0]) list[nl++] = BERTCL_BLAS_DEFAULT;
  for (size_t i = 0; i < sizeof system / sizeof *system; i++) list[nl++] = system[i];
  char why[1024] = "";
  for (size_t i = 0; i < nl; i++) {
    if (try_load(list[i], &c, cpu_bits) != 0) {
      if (!strstr(c.info.why, "not found") || i == 0) append(why, sizeof why, c.info.why);
      drop(&c);
      continue;
    }
    if (c.info.kernel_bits == 0) { /* cannot tell what it runs: only when asked for by name */
      char line[700];
      snprintf(line, sizeof line, "%.400s (%.95s): cannot tell which kernels it runs (name it "
               "in BERTCL_BLAS to use it)", list[i], c.info.name);
      append(why, sizeof why, line);
      drop(&c);
      continue;
    }
    if (!best.handle || c.info.kernel_bits > best.info.kernel_bits) {
      if (best.handle) {
        char line[700];
        snprintf(line, sizeof line, "%.300s (%.95s, %.63s kernels): narrower than %.95s", best.info.path,
                 best.info.name, best.info.kernels, c.info.name);
        append(why, sizeof why, line);
        drop(&best);
      }
      best = c;
    } else {
      char line[700];
      snprintf(line, sizeof line, "%.300s (%.95s, %.63s kernels): not wider than %.95s", list[i],
               c.info.name, c.info.kernels, best.info.name);
      append(why, sizeof why, line);
      drop(&c);
    }
    if (cpu_bits && best.info.kernel_bits >= cpu_bits) break; /* as wide as the CPU: done */
  }
  if (!best.handle) {
    snprintf(g->why, sizeof g->why, "no usable host BLAS (%.900s); scripts/fetch-blas.sh "
             "installs one", why[0] ? why : "none found");
    g->cpu_bits = cpu_bits;
    return;
  }
  *g = best.info;
  memcpy(g->why, why, sizeof g->why);
  if (cpu_bits && g->kernel_bits < cpu_bits) {
    char line[600];
    snprintf(line, sizeof line, "%.95s runs %d-bit %.63s kernels on this %d-bit CPU (it does not "
             "know the CPU; scripts/fetch-blas.sh installs a current OpenBLAS, or set "
             "OPENBLAS_CORETYPE, which bertcl checks against a reference)",
             g->name, g->kernel_bits, g->kernels, cpu_bits);
    append(g->why, sizeof g->why, line);
  }
}

const bc_blas_lib *bc_blas_lib_get(void) {
  pthread_once(&g_once, load_once);
  return &g_lib;
}
