/* Platform and device enumeration, device selection, context creation. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gemm/gemm.h"
#include "runtime.h"
#include "runtime/cpuinfo.h"

const char *bc_cl_errname(cl_int code) {
  switch (code) {
#define E(x) \
  case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE)
    E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
    E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
    E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION)
    E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT)
    E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE)
    E(CL_INVALID_PROPERTY) E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS)
    E(CL_INVALID_LINKER_OPTIONS) E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
  }
  return "CL_UNKNOWN_ERROR";
}

static void info_str(cl_device_id d, cl_device_info what, char *buf, size_t n) {
  buf[0] = '\0';
  if (clGetDeviceInfo(d, what, n, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
  buf[n - 1] = '\0';
}

static void trim(char *s) {
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  size_t i = 0;
  while (s[i] && isspace((unsigned char)s[i])) i++;
  if (i) memmove(s, s + i, n - i + 1);
}

static int has_extension(cl_device_id d, const char *ext) {
  size_t n = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0) return 0;
  char *buf = malloc(n + 1);
  if (!buf) return 0;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, buf, NULL) == CL_SUCCESS) {
    buf[n] = '\0';
    size_t el = strlen(ext);
    for (char *p = strstr(buf, ext); p; p = strstr(p + 1, ext))
      if ((p == buf || p[-1] == ' ') && (p[el] == ' ' || p[el] == '\0')) found = 1;
  }
  free(buf);
  return found;
}

/* ---- theoretical fp32 peak ---------------------------------------------------------------- */

#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV_ 0x4000
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV_ 0x4001

/* GPUs: fp32 FLOPs per compute unit per clock from a per-vendor table (0 = unknown), times
 * compute units and clock. CPUs: the OS's facts (runtime/cpuinfo.h) over the cores the device
 * uses. Fills o->fp32_peak_gflops and o->peak_basis; a CPU that reports no clock gets the OS's. */
static void fill_peak(cl_device_id dev, bertcl_device_info *o) {
  char *basis = o->peak_basis;
  size_t nb = sizeof o->peak_basis;
  double fpc = 0;
  if (o->type == BERTCL_DEVICE_CPU) {
    bc_cpu_info ci;
    bc_cpu_info_get(&ci);
    int clock_from_os = 0;
    if (o->max_clock_mhz == 0 && ci.mhz > 0) {
      o->max_clock_mhz = (uint32_t)(ci.mhz + 0.5);
      clock_from_os = 1;
    }
    /* hardware threads share a core's vector pipes: count cores, at most the device's units */
    int cores = ci.physical_cores;
    if (o->compute_units && (int)o->compute_units < cores) cores = (int)o->compute_units;
    if (ci.flops_per_cycle > 0 && cores > 0 && o->max_clock_mhz > 0) {
      o->fp32_peak_gflops = (double)cores * o->max_clock_mhz / 1000.0 * ci.flops_per_cycle;
      snprintf(basis, nb, "CPU: %d cores x %u MHz (%s) x %d fp32 FLOPs/cycle (%s, %.96s)",
               cores, o->max_clock_mhz, clock_from_os ? "OS; the driver says 0" : "driver",
               ci.flops_per_cycle, ci.isa, ci.pipes);
    } else {
      snprintf(basis, nb, "CPU: %.240s", ci.basis);
    }
    return;
  }
  if (bc_icontains(o->vendor, "nvidia")) {
    cl_uint ma = 0, mi = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV_, sizeof ma, &ma, NULL) !=
            CL_SUCCESS ||
        clGetDeviceInfo(dev, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV_, sizeof mi, &mi, NULL) !=
            CL_SUCCESS) {
      snprintf(basis, nb, "NVIDIA device without cl_nv_device_attribute_query: unknown");
      return;
    }
    int lanes = 0;
    if (ma == 3) lanes = 192;
    else if (ma == 5) lanes = 128;
    else if (ma == 6) lanes = mi == 0 ? 64 : 128;
    else if (ma == 7) lanes = 64;
    else if (ma == 8) lanes = mi == 0 ? 64 : 128;
    else if (ma == 9) lanes = 128;
    if (!lanes) {
      snprintf(basis, nb, "NVIDIA compute capability %u.%u not in the table: unknown", ma, mi);
      return;
    }
    snprintf(basis, nb,
             "NVIDIA compute capability %u.%u: %d fp32 lanes per SM x 2 (FMA) x SMs x max clock",
             ma, mi, lanes);
    fpc = 2.0 * lanes;
  } else if (o->type == BERTCL_DEVICE_GPU &&
             (bc_icontains(o->vendor, "advanced micro") || bc_icontains(o->vendor, "amd"))) {
    if (strncmp(o->name, "gfx11", 5) == 0 || strncmp(o->name, "gfx90a", 6) == 0 ||
        strncmp(o->name, "gfx94", 5) == 0) {
      snprintf(basis, nb, "AMD %s: 64 lanes x 2 (dual-issue/packed fp32) x 2 (FMA) per CU",
               o->name);
      fpc = 256;
    } else if (strncmp(o->name, "gfx9", 4) == 0 || strncmp(o->name, "gfx10", 5) == 0) {
      snprintf(basis, nb, "AMD %s: 64 lanes x 2 (FMA) per CU x max clock", o->name);
      fpc = 128;
    } else {
      snprintf(basis, nb, "AMD device %s not in the table: unknown", o->name);
    }
  } else if (o->type == BERTCL_DEVICE_GPU && bc_icontains(o->vendor, "intel")) {
    snprintf(basis, nb, "Intel GPU: 8 fp32 lanes x 2 (FMA) per EU x EUs x max clock");
    fpc = 16;
  } else {
    snprintf(basis, nb, "vendor '%s' not in the table: unknown", o->vendor);
  }
  o->fp32_peak_gflops = fpc * o->compute_units * o->max_clock_mhz / 1000.0;
}

static void fill_info(cl_platform_id p, cl_device_id d, int pi, int di, bertcl_device_info *o) {
  memset(o, 0, sizeof *o);
  o->platform_index = pi;
  o->device_index = di;
  clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof o->platform_name, o->platform_name, NULL);
  clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof o->platform_version, o->platform_version,
                    NULL);
  clGetPlatformInfo(p, CL_PLATFORM_VENDOR, sizeof o->platform_vendor, o->platform_vendor, NULL);
  o->platform_name[sizeof o->platform_name - 1] = '\0';
  o->platform_version[sizeof o->platform_version - 1] = '\0';
  o->platform_vendor[sizeof o->platform_vendor - 1] = '\0';
  info_str(d, CL_DEVICE_NAME, o->name, sizeof o->name);
  info_str(d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
  info_str(d, CL_DEVICE_VERSION, o->version, sizeof o->version);
  info_str(d, CL_DRIVER_VERSION, o->driver_version, sizeof o->driver_version);
  trim(o->name);
  trim(o->platform_name);
  trim(o->platform_vendor);
  cl_device_type t = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
  o->type = (t & CL_DEVICE_TYPE_GPU)           ? BERTCL_DEVICE_GPU
            : (t & CL_DEVICE_TYPE_ACCELERATOR) ? BERTCL_DEVICE_ACCELERATOR
            : (t & CL_DEVICE_TYPE_CPU)         ? BERTCL_DEVICE_CPU
                                               : BERTCL_DEVICE_OTHER;
  cl_uint u = 0;
  cl_ulong ul = 0;
  size_t sz = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL) == CL_SUCCESS)
    o->compute_units = u;
  u = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, NULL) == CL_SUCCESS)
    o->max_clock_mhz = u;
  if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
    o->global_mem_bytes = ul;
  ul = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
    o->max_alloc_bytes = ul;
  ul = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
    o->local_mem_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS)
    o->max_work_group_size = sz;
  o->fp16 = has_extension(d, "cl_khr_fp16");
  o->subgroups = has_extension(d, "cl_khr_subgroups") || has_extension(d, "cl_intel_subgroups");
  if (!o->subgroups && strncmp(o->version, "OpenCL 3.", 9) == 0) {
    /* OpenCL 3.0: CL_DEVICE_MAX_NUM_SUB_GROUPS (0x105C) > 0 means subgroups are supported. */
    cl_uint nsg = 0;
    if (clGetDeviceInfo(d, 0x105C, sizeof nsg, &nsg, NULL) == CL_SUCCESS && nsg > 0)
      o->subgroups = 1;
  }
  fill_peak(d, o);
}

/* Enumerates platforms and devices. ids (optional) receives the cl ids for each entry. */
static int enumerate(bertcl_device_info **out, size_t *count, cl_platform_id **pids,
                     cl_device_id **dids) {
  *out = NULL;
  *count = 0;
  cl_uint np = 0;
  cl_int rc = clGetPlatformIDs(0, NULL, &np);
  if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || np == 0) return BERTCL_OK;
  if (rc != CL_SUCCESS)
    return bc_fail(NULL, BERTCL_ERR_OPENCL, "clGetPlatformIDs -> %s (%d)", bc_cl_errname(rc), rc);
  cl_platform_id *plats = calloc(np, sizeof *plats);
  if (!plats) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
  int st = BERTCL_OK;
  bertcl_device_info *list = NULL;
  cl_platform_id *lp = NULL;
  cl_device_id *ld = NULL;
  size_t n = 0;
  rc = clGetPlatformIDs(np, plats, NULL);
  if (rc != CL_SUCCESS) {
    st = bc_fail(NULL, BERTCL_ERR_OPENCL, "clGetPlatformIDs -> %s (%d)", bc_cl_errname(rc), rc);
    goto fail;
  }
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
      continue;
    cl_device_id *devs = calloc(nd, sizeof *devs);
    bertcl_device_info *nl = realloc(list, (n + nd) * sizeof *list);
    cl_platform_id *nlp = realloc(lp, (n + nd) * sizeof *lp);
    if (nl) list = nl;
    if (nlp) lp = nlp;
    cl_device_id *nld = realloc(ld, (n + nd) * sizeof *ld);
    if (nld) ld = nld;
    if (!devs || !nl || !nlp || !nld) {
      free(devs);
      st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
      goto fail;
    }
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
      for (cl_uint d = 0; d < nd; d++) {
        fill_info(plats[p], devs[d], (int)p, (int)d, &list[n]);
        lp[n] = plats[p];
        ld[n] = devs[d];
        n++;
      }
    }
    free(devs);
  }
  /* default: first GPU, else first device */
  size_t def = 0;
  for (size_t i = 0; i < n; i++)
    if (list[i].type == BERTCL_DEVICE_GPU) {
      def = i;
      break;
    }
  if (n > 0) list[def].is_default = 1;
  free(plats);
  *out = list;
  *count = n;
  if (pids) *pids = lp; else free(lp);
  if (dids) *dids = ld; else free(ld);
  return BERTCL_OK;
fail:
  free(plats);
  free(list);
  free(lp);
  free(ld);
  return st;
}

int bertcl_devices_list(bertcl_device_info **out, size_t *count) {
  if (!out || !count) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  return enumerate(out, count, NULL, NULL);
}

void bertcl_devices_free(bertcl_device_info *list) { free(list); }

static const char *type_name(bertcl_device_type t) {
  switch (t) {
    case BERTCL_DEVICE_CPU: return "cpu";
    case BERTCL_DEVICE_GPU: return "gpu";
    case BERTCL_DEVICE_ACCELERATOR: return "accelerator";
    default: return "other";
  }
}

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

/* How a text selector matched a device; the strongest kind present among all devices decides. */
typedef enum {
  MATCH_NONE = 0,
  MATCH_DEVICE,   /* part of the device's name or vendor */
  MATCH_PLATFORM, /* part of the platform's name, vendor or version ("pocl" is in PoCL's) */
  MATCH_EXACT     /* the whole name or vendor of the platform or the device */
} match_kind;

static const char *const match_what[] = {"", "device name or vendor",
                                         "platform name, vendor or version",
                                         "whole platform or device name"};

static match_kind text_match(const bertcl_device_info *d, const char *sel) {
  if (!strcasecmp(d->platform_name, sel) || !strcasecmp(d->platform_vendor, sel) ||
      !strcasecmp(d->name, sel) || !strcasecmp(d->vendor, sel))
    return MATCH_EXACT;
  if (bc_icontains(d->platform_name, sel) || bc_icontains(d->platform_vendor, sel) ||
      bc_icontains(d->platform_version, sel))
    return MATCH_PLATFORM;
  if (bc_icontains(d->name, sel) || bc_icontains(d->vendor, sel)) return MATCH_DEVICE;
  return MATCH_NONE;
}

/* "  P:D name (platform, type)" lines for the devices with keep[i] set (all when keep is NULL). */
static void device_lines(const bertcl_device_info *list, size_t count, const unsigned char *keep,
                         char *out, size_t n) {
  size_t off = 0;
  out[0] = '\0';
  for (size_t i = 0; i < count && off < n; i++) {
    if (keep && !keep[i]) continue;
    int w = snprintf(out + off, n - off, "%s  %d:%d %s (%s, %s)", off ? "\n" : "",
                     list[i].platform_index, list[i].device_index, list[i].name,
                     list[i].platform_name, type_name(list[i].type));
    if (w < 0) break;
    off += (size_t)w;
  }
}

int bertcl_device_select(const bertcl_device_info *list, size_t count, const char *selector,
                         size_t *index) {
  if (!index || (!list && count)) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  const char *sel = selector;
  if (!sel || !*sel) sel = getenv("BERTCL_DEVICE");
  const char *from = (selector && *selector) ? "" : " (from BERTCL_DEVICE)";
  if (count == 0)
    return bc_fail(NULL, BERTCL_ERR_NO_PLATFORM,
                   "no OpenCL device found: install an OpenCL driver (ICD) such as "
                   "pocl-opencl-icd (CPU) or your GPU vendor's, and check /etc/OpenCL/vendors");
  long found = -1;
  if (!sel || !*sel) {
    for (size_t i = 0; i < count; i++)
      if (list[i].is_default) found = (long)i;
    if (found < 0) found = 0;
  } else {
    const char *colon = strchr(sel, ':');
    if (colon && colon != sel && all_digits(colon + 1)) {
      char pbuf[32];
      size_t pl = (size_t)(colon - sel);
      if (pl < sizeof pbuf) {
        memcpy(pbuf, sel, pl);
        pbuf[pl] = '\0';
        if (all_digits(pbuf)) {
          int p = atoi(pbuf), d = atoi(colon + 1);
          for (size_t i = 0; i < count; i++)
            if (list[i].platform_index == p && list[i].device_index == d) found = (long)i;
        }
      }
    } else if (all_digits(sel)) {
      long k = atol(sel);
      if (k >= 0 && (size_t)k < count) found = k;
    } else if (!strcasecmp(sel, "gpu") || !strcasecmp(sel, "cpu") ||
               !strcasecmp(sel, "accelerator")) {
      /* a device class, like the default: its first device in the list's order */
      for (size_t i = 0; i < count && found < 0; i++)
        if (!strcasecmp(type_name(list[i].type), sel)) found = (long)i;
    } else {
      /* text: the strongest kind of match decides; two devices matched that way are refused */
      match_kind best = MATCH_NONE;
      size_t nbest = 0;
      for (size_t i = 0; i < count; i++) {
        match_kind m = text_match(&list[i], sel);
        if (m == MATCH_NONE || m < best) continue;
        if (m > best) {
          best = m;
          nbest = 0;
          found = (long)i;
        }
        nbest++;
      }
      if (nbest > 1) {
        unsigned char *keep = calloc(count, 1);
        char lines[3072];
        if (!keep) return bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < count; i++) keep[i] = text_match(&list[i], sel) == best;
        device_lines(list, count, keep, lines, sizeof lines);
        free(keep);
        return bc_fail(NULL, BERTCL_ERR_NO_DEVICE,
                       "device selector '%s'%s is ambiguous: it matches the %s of %zu devices:\n"
                       "%s\nchoose one by its index (P:D, as 'bertcl devices' lists them) or by a "
                       "longer part of its name",
                       sel, from, match_what[best], nbest, lines);
      }
    }
  }
  if (found < 0) {
    char avail[3072];
    device_lines(list, count, NULL, avail, sizeof avail);
    return bc_fail(NULL, BERTCL_ERR_NO_DEVICE,
                   "no OpenCL device matches '%s'%s; devices that exist:\n%s", sel, from, avail);
  }
  *index = (size_t)found;
  return BERTCL_OK;
}

/* Resolves the cache directory: option, $BERTCL_CACHE_DIR, $XDG_CACHE_HOME/bertcl,
 * $HOME/.cache/bertcl; "off" (or no resolvable directory) disables the cache. Returns 1 when the
 * directory is the default one (neither the option nor $BERTCL_CACHE_DIR named it). */
static int resolve_cache_dir(const char *opt, char *out, size_t n) {
  out[0] = '\0';
  const char *v = opt;
  if (!v || !*v) v = getenv("BERTCL_CACHE_DIR");
  if (v && *v) {
    if (strcmp(v, "off") != 0) snprintf(out, n, "%s", v);
    return 0;
  }
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) {
    snprintf(out, n, "%s/bertcl", xdg);
    return 1;
  }
  const char *home = getenv("HOME");
  if (home && *home) snprintf(out, n, "%s/.cache/bertcl", home);
  return 1;
}

int bertcl_ctx_create(bertcl_ctx **out, const bertcl_ctx_options *opt) {
  if (!out) return bc_fail(NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  bertcl_ctx_options defaults = {0};
  if (!opt) opt = &defaults;
  bertcl_device_info *list = NULL;
  cl_platform_id *pids = NULL;
  cl_device_id *dids = NULL;
  size_t count = 0, idx = 0;
  int st = enumerate(&list, &count, &pids, &dids);
  if (st != BERTCL_OK) return st;
  bertcl_ctx *ctx = NULL;
  st = bertcl_device_select(list, count, opt->device, &idx);
  if (st != BERTCL_OK) goto fail;
  ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    st = bc_fail(NULL, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  ctx->info = list[idx];
  ctx->platform = pids[idx];
  ctx->device = dids[idx];
  ctx->profiling = opt->profiling != 0;
  {
    const char *kp = getenv("BERTCL_KERNEL_PROFILE");
    if (kp && *kp && strcmp(kp, "0") != 0) {
      ctx->kprof = bc_kprof_new();
      ctx->profiling = ctx->kprof != NULL;
    }
  }
  ctx->cache_default = resolve_cache_dir(opt->cache_dir, ctx->cache_dir, sizeof ctx->cache_dir);
  {
    const char *g = opt->gemm && *opt->gemm ? opt->gemm : getenv("BERTCL_GEMM");
    if (!g || !*g) g = "auto";
    if (strcmp(g, "auto") != 0 && strcmp(g, "clblast") != 0 && strcmp(g, "blas") != 0) {
      st = bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "unknown GEMM backend '%s'%s: use auto, clblast or blas", g,
                   opt->gemm && *opt->gemm ? "" : " (from BERTCL_GEMM)");
      goto fail;
    }
    snprintf(ctx->gemm_request, sizeof ctx->gemm_request, "%s", g);
  }
  {
    const char *k = getenv("BERTCL_KERNEL_SET");
    if (!k || !*k || strcmp(k, "auto") == 0)
      ctx->kset = bc_kset_auto(&ctx->info);
    else if (strcmp(k, "cpu") == 0)
      ctx->kset = BC_KSET_CPU;
    else if (strcmp(k, "gpu") == 0)
      ctx->kset = BC_KSET_GPU;
    else {
      st = bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG,
                   "unknown kernel set '%s' (from BERTCL_KERNEL_SET): use auto, cpu or gpu", k);
      goto fail;
    }
  }
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
  BC_CL_OBJ(&ctx->err, ctx->context,
            clCreateContext(props, 1, &ctx->device, NULL, NULL, BC_RC));
  BC_CL_OBJ(&ctx->err, ctx->queue,
            clCreateCommandQueue(ctx->context, ctx->device,
                                 ctx->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, BC_RC));
  /* the matrix-product backend; counts the context for CLBlast's cache from here on */
  st = bc_gemm_ctx_init(ctx);
  if (st != BERTCL_OK) goto fail;
  free(list);
  free(pids);
  free(dids);
  *out = ctx;
  return BERTCL_OK;
fail:
  if (ctx) bc_err_to_thread(&ctx->err);
  bertcl_ctx_free(ctx);
  free(list);
  free(pids);
  free(dids);
  return st;
}

void bertcl_ctx_free(bertcl_ctx *ctx) {
  if (!ctx) return;
  if (ctx->queue) {
    clFinish(ctx->queue);
    clReleaseCommandQueue(ctx->queue);
  }
  bc_kprof_report_free(ctx->kprof, ctx->info.name);
  if (ctx->gemm) bc_gemm_ctx_release(ctx); /* the last context clears CLBlast's cache */
  if (ctx->context) clReleaseContext(ctx->context);
  free(ctx);
}

const bertcl_device_info *bertcl_ctx_device(const bertcl_ctx *ctx) {
  return ctx ? &ctx->info : NULL;
}
