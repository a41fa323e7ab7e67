/* Runtime layer: status table, device enumeration and selection, program builds, the binary
 * cache (new process, corrupt file, unwritable directory), compiler errors, BERTCL_KERNEL_DIR,
 * and the `bertcl devices` command. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cpuinfo.h"
#include "runtime/runtime.h"
#include "testutil.h"

static const char *self_path;

/* Runs selftest_saxpy on n elements through ctx; returns 1 when every value is right. */
static int run_saxpy(bertcl_ctx *ctx, cl_program prog, int n, float a, float extra) {
  int st = BERTCL_OK, ok = 0;
  cl_kernel k = NULL;
  cl_mem bx = NULL, by = NULL;
  float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
  bc_rng r;
  bc_rng_seed(&r, 42);
  bc_rng_fill(&r, x, (size_t)n, -1, 1);
  bc_rng_fill(&r, y, (size_t)n, -1, 1);
  float *want = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) want[i] = a * x[i] + y[i] + extra;
  size_t bytes = sizeof(float) * (size_t)n;
  BC_CL_OBJ(&ctx->err, k, clCreateKernel(prog, "selftest_saxpy", BC_RC));
  BC_CL_OBJ(&ctx->err, bx,
            clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, x, BC_RC));
  BC_CL_OBJ(&ctx->err, by,
            clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, y, BC_RC));
  BC_CL(&ctx->err, clSetKernelArg(k, 0, sizeof by, &by));
  BC_CL(&ctx->err, clSetKernelArg(k, 1, sizeof bx, &bx));
  BC_CL(&ctx->err, clSetKernelArg(k, 2, sizeof a, &a));
  BC_CL(&ctx->err, clSetKernelArg(k, 3, sizeof n, &n));
  size_t local = 64, global = ((size_t)n + local - 1) / local * local;
  BC_CL(&ctx->err, clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, &local, 0, NULL, NULL));
  BC_CL(&ctx->err, clEnqueueReadBuffer(ctx->queue, by, CL_TRUE, 0, bytes, y, 0, NULL, NULL));
  ok = bc_check_close("selftest_saxpy", y, want, (size_t)n, 1e-6f, 1e-6f, 42);
fail:
  if (st != BERTCL_OK) fprintf(stderr, "%s\n", bertcl_last_error(ctx));
  if (k) clReleaseKernel(k);
  if (bx) clReleaseMemObject(bx);
  if (by) clReleaseMemObject(by);
  free(x);
  free(y);
  free(want);
  return ok;
}

static bertcl_ctx *ctx_with_cache(const char *dir) {
  const char *dev = getenv("BERTCL_TEST_DEVICE");
  bertcl_ctx_options opt = {.device = (dev && *dev) ? dev : NULL, .cache_dir = dir};
  bertcl_ctx *ctx = NULL;
  if (bertcl_ctx_create(&ctx, &opt) != BERTCL_OK) return NULL;
  return ctx;
}

static const char *const selftest_files[] = {"selftest.cl"};

static void test_status_table(void **state) {
  (void)state;
  assert_string_equal(bertcl_status_str(BERTCL_OK), "success");
  assert_string_equal(bertcl_status_name(BERTCL_ERR_DEVICE_OOM), "BERTCL_ERR_DEVICE_OOM");
  assert_string_equal(bertcl_status_str(12345), "unknown status");
  assert_string_equal(bertcl_version(), BERTCL_VERSION_STRING);
  assert_string_equal(bc_cl_errname(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
  assert_int_equal(bc_cl_status(CL_MEM_OBJECT_ALLOCATION_FAILURE), BERTCL_ERR_DEVICE_OOM);
  assert_int_equal(bc_cl_status(CL_INVALID_VALUE), BERTCL_ERR_OPENCL);
  /* every code has a distinct string */
  int codes[] = {
#define C_(name, code, text) code,
      BERTCL_STATUS_MAP(C_)
#undef C_
  };
  size_t nc = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < nc; i++)
    for (size_t j = i + 1; j < nc; j++)
      assert_string_not_equal(bertcl_status_str(codes[i]), bertcl_status_str(codes[j]));
  bertcl_ctx_free(NULL);
  bertcl_devices_free(NULL);
}

static void test_device_select(void **state) {
  (void)state;
  bertcl_device_info *list = NULL;
  size_t n = 0, idx = 99;
  assert_int_equal(bertcl_devices_list(&list, &n), BERTCL_OK);
  if (n == 0) skip();
  unsetenv("BERTCL_DEVICE");
  int ndef = 0;
  for (size_t i = 0; i < n; i++) ndef += list[i].is_default;
  assert_int_equal(ndef, 1);
  assert_int_equal(bertcl_device_select(list, n, NULL, &idx), BERTCL_OK);
  assert_true(list[idx].is_default);
  char sel[32];
  snprintf(sel, sizeof sel, "%d:%d", list[n - 1].platform_index, list[n - 1].device_index);
  assert_int_equal(bertcl_device_select(list, n, sel, &idx), BERTCL_OK);
  assert_int_equal(idx, n - 1);
  assert_int_equal(bertcl_device_select(list, n, "0", &idx), BERTCL_OK);
  assert_int_equal(idx, 0);
  /* case-insensitive substring of the platform name */
  int has_pocl = 0;
  for (size_t i = 0; i < n; i++) has_pocl |= bc_icontains(list[i].platform_name, "pocl") ||
                                             bc_icontains(list[i].platform_name, "portable");
  if (has_pocl) {
    assert_int_equal(bertcl_device_select(list, n, "PoCL", &idx), BERTCL_OK);
    assert_true(bc_icontains(list[idx].platform_version, "pocl"));
    assert_int_equal(bertcl_device_select(list, n, "cpu", &idx), BERTCL_OK);
    assert_int_equal(list[idx].type, BERTCL_DEVICE_CPU);
  }
  assert_int_equal(bertcl_device_select(list, n, "nosuch-device", &idx), BERTCL_ERR_NO_DEVICE);
  assert_non_null(strstr(bertcl_last_error(NULL), "nosuch-device"));
  assert_non_null(strstr(bertcl_last_error(NULL), list[0].name));
  assert_int_equal(bertcl_device_select(list, n, "7:7", &idx), BERTCL_ERR_NO_DEVICE);
  setenv("BERTCL_DEVICE", "nosuch-env", 1);
  assert_int_equal(bertcl_device_select(list, n, NULL, &idx), BERTCL_ERR_NO_DEVICE);
  assert_non_null(strstr(bertcl_last_error(NULL), "BERTCL_DEVICE"));
  /* an explicit selector wins over the environment */
  assert_int_equal(bertcl_device_select(list, n, "0", &idx), BERTCL_OK);
  unsetenv("BERTCL_DEVICE");
  assert_int_equal(bertcl_device_select(NULL, 0, NULL, &idx), BERTCL_ERR_NO_PLATFORM);
  assert_non_null(strstr(bertcl_last_error(NULL), "pocl-opencl-icd"));
  bertcl_devices_free(list);
}

/* A device as a stack would list it, for bertcl_device_select over a made-up machine. */
static bertcl_device_info fake_device(int p, int d, const char *platform, const char *pvendor,
                                      const char *pversion, const char *name, const char *vendor,
                                      bertcl_device_type type) {
  bertcl_device_info o;
  memset(&o, 0, sizeof o);
  o.platform_index = p;
  o.device_index = d;
  snprintf(o.platform_name, sizeof o.platform_name, "%s", platform);
  snprintf(o.platform_vendor, sizeof o.platform_vendor, "%s", pvendor);
  snprintf(o.platform_version, sizeof o.platform_version, "%s", pversion);
  snprintf(o.name, sizeof o.name, "%s", name);
  snprintf(o.vendor, sizeof o.vendor, "%s", vendor);
  o.type = type;
  return o;
}

/* Selects sel in list; returns the index, or -1 when refused (the message is then checked by the
 * caller through bertcl_last_error). */
static long pick(const bertcl_device_info *list, size_t n, const char *sel) {
  size_t idx = 99;
  int st = bertcl_device_select(list, n, sel, &idx);
  if (st == BERTCL_OK) return (long)idx;
  assert_int_equal(st, BERTCL_ERR_NO_DEVICE);
  return -1;
}

/* The selection rule (README "Choosing a device") on a machine with PoCL, Intel's CPU runtime,
 * two NVIDIA GPUs and Intel's GPU runtime, as the stacks name themselves. */
static void test_device_select_rule(void **state) {
  (void)state;
  unsetenv("BERTCL_DEVICE");
  bertcl_device_info m[5];
  m[0] = fake_device(0, 0, "Portable Computing Language", "The pocl project",
                     "OpenCL 3.0 PoCL 3.1+debian  Linux, None+Asserts, RELOC, LLVM 15.0.6",
                     "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", "GenuineIntel",
                     BERTCL_DEVICE_CPU);
  m[1] = fake_device(1, 0, "Intel(R) OpenCL", "Intel(R) Corporation", "OpenCL 3.1 LINUX",
                     "Intel(R) Xeon(R) Processor", "Intel(R) Corporation", BERTCL_DEVICE_CPU);
  m[2] = fake_device(2, 0, "NVIDIA CUDA", "NVIDIA Corporation", "OpenCL 3.0 CUDA 12.4.131",
                     "NVIDIA A100-SXM4-80GB", "NVIDIA Corporation", BERTCL_DEVICE_GPU);
  m[3] = fake_device(2, 1, "NVIDIA CUDA", "NVIDIA Corporation", "OpenCL 3.0 CUDA 12.4.131",
                     "NVIDIA GeForce RTX 4090", "NVIDIA Corporation", BERTCL_DEVICE_GPU);
  m[4] = fake_device(3, 0, "Intel(R) OpenCL Graphics", "Intel(R) Corporation",
                     "OpenCL 3.0 ", "Intel(R) UHD Graphics 770", "Intel(R) Corporation",
                     BERTCL_DEVICE_GPU);
  m[2].is_default = 1;
  /* PoCL and Intel's CPU runtime (what CI has) */
  assert_int_equal(pick(m, 2, "intel"), 1); /* the platform, not PoCL's "...-Intel(R) Xeon..." */
  assert_int_equal(pick(m, 2, "INTEL"), 1);
  assert_int_equal(pick(m, 2, "pocl"), 0);     /* platform vendor and version */
  assert_int_equal(pick(m, 2, "portable"), 0); /* platform name */
  assert_int_equal(pick(m, 2, "pthread"), 0);  /* device name */
  assert_int_equal(pick(m, 2, "Intel(R) Xeon(R) Processor"), 1); /* whole device name */
  assert_int_equal(pick(m, 2, "genuineintel"), 0);               /* whole device vendor */
  assert_int_equal(pick(m, 2, "cpu"), 0); /* a type: its first device */
  assert_int_equal(pick(m, 2, "1:0"), 1);
  assert_int_equal(pick(m, 2, "1"), 1);
  assert_int_equal(pick(m, 2, NULL), 0); /* no default marked: the first */
  /* both device names hold "Xeon": refused, both listed, indices suggested */
  assert_int_equal(pick(m, 2, "xeon"), -1);
  const char *e = bertcl_last_error(NULL);
  assert_non_null(strstr(e, "'xeon' is ambiguous"));
  assert_non_null(strstr(e, "0:0 pthread-skylake-avx512-Intel(R) Xeon(R) Processor"));
  assert_non_null(strstr(e, "1:0 Intel(R) Xeon(R) Processor"));
  assert_non_null(strstr(e, "P:D"));
  /* the same from BERTCL_DEVICE says so */
  setenv("BERTCL_DEVICE", "Xeon", 1);
  assert_int_equal(pick(m, 2, NULL), -1);
  assert_non_null(strstr(bertcl_last_error(NULL), "(from BERTCL_DEVICE)"));
  unsetenv("BERTCL_DEVICE");
  /* the whole machine */
  assert_int_equal(pick(m, 5, NULL), 2);   /* the marked default */
  assert_int_equal(pick(m, 5, "gpu"), 2);  /* first GPU */
  assert_int_equal(pick(m, 5, "a100"), 2); /* part of one device's name */
  assert_int_equal(pick(m, 5, "rtx"), 3);
  assert_int_equal(pick(m, 5, "4090"), -1); /* digits are an index (N), not part of a name */
  assert_int_equal(pick(m, 5, "graphics"), 4); /* part of a platform name */
  assert_int_equal(pick(m, 5, "2:1"), 3);
  /* Intel's CPU and GPU platforms both match "intel"; the whole platform name picks one, though
   * "Intel(R) OpenCL" is also part of "Intel(R) OpenCL Graphics" */
  assert_int_equal(pick(m, 5, "intel"), -1);
  e = bertcl_last_error(NULL);
  assert_non_null(strstr(e, "1:0 Intel(R) Xeon(R) Processor"));
  assert_non_null(strstr(e, "3:0 Intel(R) UHD Graphics 770"));
  assert_null(strstr(e, "pthread")); /* PoCL matched only by device name: not a candidate */
  assert_int_equal(pick(m, 5, "intel(r) opencl"), 1);
  assert_int_equal(pick(m, 5, "Intel(R) OpenCL Graphics"), 4);
  /* two GPUs of one platform: "nvidia" names neither */
  assert_int_equal(pick(m, 5, "nvidia"), -1);
  assert_non_null(strstr(bertcl_last_error(NULL), "2 devices"));
  /* nothing matches: every device listed */
  assert_int_equal(pick(m, 5, "radeon"), -1);
  e = bertcl_last_error(NULL);
  assert_non_null(strstr(e, "no OpenCL device matches 'radeon'"));
  for (int i = 0; i < 5; i++) assert_non_null(strstr(e, m[i].name));
  assert_int_equal(pick(m, 5, "9:9"), -1);
  assert_int_equal(pick(m, 5, "5"), -1);
}

/* The real stacks, when both PoCL and Intel's CPU runtime are installed (CI's second test stage,
 * scripts/install-intel-opencl.sh): "intel" picks Intel's platform from the library and the CLI,
 * "pocl" picks PoCL, and `bertcl devices` gives both a clock and a peak. Skipped otherwise. */
static void test_device_select_two_cpu_stacks(void **state) {
  (void)state;
  unsetenv("BERTCL_DEVICE");
  bertcl_device_info *list = NULL;
  size_t n = 0, idx = 0;
  assert_int_equal(bertcl_devices_list(&list, &n), BERTCL_OK);
  long pocl = -1, intel = -1;
  int intel_platforms = 0, last_platform = -1;
  for (size_t i = 0; i < n; i++) {
    if (bc_icontains(list[i].platform_vendor, "pocl")) pocl = (long)i;
    if (!strcmp(list[i].platform_name, "Intel(R) OpenCL") && list[i].type == BERTCL_DEVICE_CPU)
      intel = (long)i;
    if ((bc_icontains(list[i].platform_name, "intel") ||
         bc_icontains(list[i].platform_vendor, "intel")) &&
        list[i].platform_index != last_platform) {
      intel_platforms++;
      last_platform = list[i].platform_index;
    }
  }
  if (pocl < 0 || intel < 0) {
    fprintf(stderr, "skipped: needs PoCL and Intel's OpenCL CPU runtime (found %s%s)\n",
            pocl < 0 ? "" : "PoCL", intel < 0 ? "" : "Intel");
    bertcl_devices_free(list);
    skip();
  }
  assert_int_equal(bertcl_device_select(list, n, "pocl", &idx), BERTCL_OK);
  assert_int_equal(idx, (size_t)pocl);
  if (intel_platforms == 1) {
    assert_int_equal(bertcl_device_select(list, n, "intel", &idx), BERTCL_OK);
    assert_int_equal(idx, (size_t)intel);
  } else { /* Intel's GPU runtime too: refused, Intel's CPU device among those listed */
    assert_int_equal(bertcl_device_select(list, n, "intel", &idx), BERTCL_ERR_NO_DEVICE);
    assert_non_null(strstr(bertcl_last_error(NULL), list[intel].name));
  }
  assert_int_equal(bertcl_device_select(list, n, "Intel(R) OpenCL", &idx), BERTCL_OK);
  assert_int_equal(idx, (size_t)intel);
  /* the CLI: --device intel marks Intel's device; both CPU devices have a clock and a peak */
  char *out = NULL;
  assert_int_equal(bc_test_run(BERTCL_BIN " devices --json --device 'Intel(R) OpenCL'", &out), 0);
  json_error_t jerr;
  json_t *arr = json_loads(out, 0, &jerr);
  assert_non_null(arr);
  free(out);
  int cpus = 0;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *d = json_array_get(arr, i);
    int is_intel = (long)i == intel;
    assert_int_equal(json_is_true(json_object_get(d, "selected")), is_intel);
    if (strcmp(json_string_value(json_object_get(d, "type")), "cpu") != 0) continue;
    cpus++;
    assert_true(json_integer_value(json_object_get(d, "max_clock_mhz")) > 0);
    json_t *peak = json_object_get(d, "fp32_peak_gflops");
    if (!json_is_number(peak))
      fprintf(stderr, "%s: no peak (%s)\n", list[i].name,
              json_string_value(json_object_get(d, "peak_basis")));
    assert_true(json_is_number(peak) && json_number_value(peak) > 0);
  }
  assert_true(cpus >= 2);
  json_decref(arr);
  if (intel_platforms == 1) {
    assert_int_equal(bc_test_run(BERTCL_BIN " devices --device intel", &out), 0);
    char line[160];
    snprintf(line, sizeof line, "*    %d:%d   Intel(R)", list[intel].platform_index,
             list[intel].device_index);
    if (!strstr(out, line)) fprintf(stderr, "want '%s' in:\n%s\n", line, out);
    assert_non_null(strstr(out, line));
    free(out);
  }
  /* a part of both device names is refused by the CLI too, with both listed */
  if (bc_icontains(list[pocl].name, "xeon") && bc_icontains(list[intel].name, "xeon")) {
    assert_int_not_equal(bc_test_run(BERTCL_BIN " devices --device xeon 2>&1", &out), 0);
    assert_non_null(strstr(out, "ambiguous"));
    assert_non_null(strstr(out, list[pocl].name));
    free(out);
  }
  bertcl_devices_free(list);
}

static void test_kernel_runs(void **state) {
  (void)state;
  bertcl_ctx *ctx = bc_test_ctx();
  if (!ctx) skip();
  cl_program prog = NULL;
  assert_int_equal(bc_program_build(ctx, selftest_files, 1, "", &prog), BERTCL_OK);
  /* sizes that are and are not multiples of the work-group size, and n = 1 */
  assert_true(run_saxpy(ctx, prog, 1, 2.5f, 0));
  assert_true(run_saxpy(ctx, prog, 1000, -0.75f, 0));
  assert_true(run_saxpy(ctx, prog, 4096, 3.0f, 0));
  clReleaseProgram(prog);
  bertcl_ctx_free(ctx);
}

/* child mode: build selftest.cl with the cache in argv[2], print the stats, exit 0 when the
 * kernel ran right. */
static int child_build(const char *dir) {
  bertcl_ctx *ctx = ctx_with_cache(dir);
  if (!ctx) return 3;
  cl_program prog = NULL;
  if (bc_program_build(ctx, selftest_files, 1, "-DCHILD_TEST=1", &prog) != BERTCL_OK) {
    fprintf(stderr, "%s\n", bertcl_last_error(ctx));
    return 4;
  }
  int ok = run_saxpy(ctx, prog, 257, 1.5f, 0);
  printf("source_builds=%llu cache_hits=%llu cache_rejects=%llu cache_writes=%llu\n",
         (unsigned long long)ctx->stats.source_builds, (unsigned long long)ctx->stats.cache_hits,
         (unsigned long long)ctx->stats.cache_rejects, (unsigned long long)ctx->stats.cache_writes);
  clReleaseProgram(prog);
  bertcl_ctx_free(ctx);
  return ok ? 0 : 5;
}

static void test_cache_across_processes(void **state) {
  (void)state;
  bertcl_ctx *probe = bc_test_ctx();
  if (!probe) skip();
  char dir[512], cmd[1200], path[2048];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  const char *dev = getenv("BERTCL_TEST_DEVICE");
  snprintf(cmd, sizeof cmd, "BERTCL_TEST_DEVICE='%s' '%s' child '%s/cache' 2>&1",
           (dev && *dev) ? dev : bertcl_ctx_device(probe)->name, self_path, dir);
  char *out = NULL;
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "source_builds=1 cache_hits=0 cache_rejects=0 cache_writes=1"));
  free(out);
  /* the cache file is where the key says */
  char sub[600];
  snprintf(sub, sizeof sub, "%s/cache", dir);
  bertcl_ctx *ctx = ctx_with_cache(sub);
  assert_non_null(ctx);
  char *src = NULL;
  size_t len = 0;
  assert_int_equal(bc_kernel_source(&ctx->err, "selftest.cl", &src, &len), BERTCL_OK);
  /* bc_program_build appends a newline after each file */
  char *withnl = malloc(len + 2);
  memcpy(withnl, src, len);
  withnl[len] = '\n';
  withnl[len + 1] = '\0';
  assert_int_equal(
      bc_program_cache_path(ctx, withnl, len + 1, "-DCHILD_TEST=1", path, sizeof path), BERTCL_OK);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_true(sb.st_size > 32);
  /* a second process loads it from disk: no source build */
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "source_builds=0 cache_hits=1 cache_rejects=0 cache_writes=0"));
  free(out);
  /* corrupt the binary (flip bytes in the middle): the build falls back to source, no error */
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, (long)(sb.st_size / 2), SEEK_SET);
  fputs("garbage garbage garbage", f);
  fclose(f);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "source_builds=1 cache_hits=0 cache_rejects=1 cache_writes=1"));
  free(out);
  /* truncated file: same */
  assert_int_equal(truncate(path, 20), 0);
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "source_builds=1 cache_hits=0 cache_rejects=1 cache_writes=1"));
  free(out);
  /* and the rewritten file is good again */
  assert_int_equal(bc_test_run(cmd, &out), 0);
  assert_non_null(strstr(out, "source_builds=0 cache_hits=1"));
  free(out);
  free(src);
  free(withnl);
  bertcl_ctx_free(ctx);
  bertcl_ctx_free(probe);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

static void test_cache_unwritable_and_off(void **state) {
  (void)state;
  bertcl_ctx *probe = bc_test_ctx();
  if (!probe) skip();
  bertcl_ctx_free(probe);
  char dir[512], blocked[700];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  /* a cache directory below a regular file can never be created */
  snprintf(blocked, sizeof blocked, "%s/file", dir);
  FILE *f = fopen(blocked, "w");
  assert_non_null(f);
  fclose(f);
  strcat(blocked, "/cache");
  bertcl_ctx *ctx = ctx_with_cache(blocked);
  assert_non_null(ctx);
  cl_program prog = NULL;
  assert_int_equal(bc_program_build(ctx, selftest_files, 1, "", &prog), BERTCL_OK);
  assert_true(run_saxpy(ctx, prog, 33, 2.0f, 0));
  assert_int_equal(ctx->stats.source_builds, 1);
  assert_int_equal(ctx->stats.cache_writes, 0);
  clReleaseProgram(prog);
  bertcl_ctx_free(ctx);
  ctx = ctx_with_cache("off");
  assert_non_null(ctx);
  assert_string_equal(ctx->cache_dir, "");
  assert_int_equal(bc_program_build(ctx, selftest_files, 1, "", &prog), BERTCL_OK);
  assert_int_equal(ctx->stats.cache_writes, 0);
  clReleaseProgram(prog);
  bertcl_ctx_free(ctx);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

static void test_build_error_carries_log(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_with_cache("off");
  if (!ctx) skip();
  const char *bad = "__kernel void broken(__global float *y) { y[0] = undeclared_thing + ; }\n";
  cl_program prog = NULL;
  int st = bc_program_build_source(ctx, "broken.cl", bad, strlen(bad), "", &prog);
  assert_int_equal(st, BERTCL_ERR_BUILD);
  assert_null(prog);
  const char *msg = bertcl_last_error(ctx);
  assert_non_null(strstr(msg, "CL_BUILD_PROGRAM_FAILURE"));
  assert_non_null(strstr(msg, "broken.cl"));
  /* the compiler's own words about the bad identifier */
  assert_non_null(strstr(msg, "undeclared_thing"));
  bertcl_ctx_free(ctx);
}

static void test_kernel_dir_override(void **state) {
  (void)state;
  bertcl_ctx *ctx = ctx_with_cache("off");
  if (!ctx) skip();
  char dir[512], path[700];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/selftest.cl", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("__kernel void selftest_saxpy(__global float *y, __global const float *x, const float a,"
        " const int n) { int i = get_global_id(0); if (i < n) y[i] = a * x[i] + y[i] + 1.0f; }\n",
        f);
  fclose(f);
  setenv("BERTCL_KERNEL_DIR", dir, 1);
  cl_program prog = NULL;
  assert_int_equal(bc_program_build(ctx, selftest_files, 1, "", &prog), BERTCL_OK);
  unsetenv("BERTCL_KERNEL_DIR");
  assert_true(run_saxpy(ctx, prog, 100, 2.0f, 1.0f)); /* the edited kernel ran */
  clReleaseProgram(prog);
  /* a missing file in the override directory is a clear error */
  setenv("BERTCL_KERNEL_DIR", "/nonexistent-bertcl-dir", 1);
  assert_int_equal(bc_program_build(ctx, selftest_files, 1, "", &prog), BERTCL_ERR_IO);
  assert_non_null(strstr(bertcl_last_error(ctx), "/nonexistent-bertcl-dir/selftest.cl"));
  unsetenv("BERTCL_KERNEL_DIR");
  /* and a name that is not embedded */
  const char *none[] = {"nosuch.cl"};
  assert_int_equal(bc_program_build(ctx, none, 1, "", &prog), BERTCL_ERR_MISSING);
  bertcl_ctx_free(ctx);
  unlink(path);
  rmdir(dir);
}

static void test_cli_devices(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(bc_test_run(BERTCL_BIN " devices --json 2>/dev/null", &out), 0);
  json_error_t jerr;
  json_t *arr = json_loads(out, 0, &jerr);
  if (!arr) fprintf(stderr, "invalid JSON (%s): %s\n", jerr.text, out);
  assert_non_null(arr);
  assert_true(json_is_array(arr));
  free(out);
  bertcl_device_info *list = NULL;
  size_t n = 0;
  assert_int_equal(bertcl_devices_list(&list, &n), BERTCL_OK);
  assert_int_equal(json_array_size(arr), n);
  int pocl = 0;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *d = json_array_get(arr, i);
    const char *plat = json_string_value(json_object_get(d, "platform"));
    assert_non_null(plat);
    assert_non_null(json_object_get(d, "global_mem_bytes"));
    assert_non_null(json_object_get(d, "fp16"));
    if (bc_icontains(plat, "portable computing")) pocl = 1;
  }
  json_decref(arr);
  if (getenv("CI") && !getenv("BERTCL_TEST_DEVICE")) assert_true(pocl); /* CI has PoCL */
  if (n > 0) {
    assert_int_equal(bc_test_run(BERTCL_BIN " devices", &out), 0);
    char head[21] = {0};
    memcpy(head, list[0].name, sizeof head - 1); /* the table truncates long names */
    assert_non_null(strstr(out, head));
    free(out);
  }
  /* a missing device: non-zero exit, message lists what exists */
  int rc = bc_test_run(BERTCL_BIN " devices --device nosuch 2>&1", &out);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(out, "nosuch"));
  if (n > 0) assert_non_null(strstr(out, list[0].name));
  free(out);
  bertcl_devices_free(list);
  /* help and version */
  assert_int_equal(bc_test_run(BERTCL_BIN " --version", &out), 0);
  assert_non_null(strstr(out, BERTCL_VERSION_STRING));
  free(out);
  assert_int_equal(bc_test_run(BERTCL_BIN " help devices", &out), 0);
  assert_non_null(strstr(out, "usage: bertcl devices"));
  free(out);
  assert_int_equal(bc_test_run(BERTCL_BIN " devices --help", &out), 0);
  assert_non_null(strstr(out, "usage: bertcl devices"));
  free(out);
  assert_int_not_equal(bc_test_run(BERTCL_BIN " frobnicate 2>&1", &out), 0);
  assert_non_null(strstr(out, "unknown command"));
  free(out);
}

/* /proc/cpuinfo texts as Linux writes them: cores, clock, ISA and FMA pipes -> fp32 peak. */
static void test_cpu_info_parse(void **state) {
  (void)state;
  bc_cpu_info ci;
  /* two packages x 2 cores x 2 threads, AVX-512 Intel: 4 cores count, not 8 threads */
  char text[4096] = "";
  const int phys[] = {0, 0, 0, 0, 1, 1, 1, 1}, core[] = {0, 0, 1, 1, 0, 0, 1, 1};
  for (int i = 0; i < 8; i++) {
    char line[512];
    snprintf(line, sizeof line,
             "processor\t: %d\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
             "model name\t: Intel(R) Xeon(R) Gold 6148\ncpu MHz\t\t: 2400.000\n"
             "physical id\t: %d\ncore id\t\t: %d\nflags\t\t: fpu sse2 avx fma avx2 avx512f "
             "avx512bw\n\n", i, phys[i], core[i]);
    strcat(text, line);
  }
  bc_cpu_info_parse(text, 0, &ci);
  assert_int_equal(ci.logical_cpus, 8);
  assert_int_equal(ci.physical_cores, 4);
  assert_int_equal(ci.simd_bits, 512);
  assert_int_equal(ci.fma_units, 2);
  assert_int_equal(ci.flops_per_cycle, 64);
  assert_true(ci.mhz == 2400.0);
  assert_true(ci.peak_gflops > 614.39 && ci.peak_gflops < 614.41); /* 4 x 2.4 x 64 */
  assert_string_equal(ci.model, "Intel(R) Xeon(R) Gold 6148");
  /* cpufreq's maximum wins over the current clock */
  bc_cpu_info_parse(text, 3700000, &ci);
  assert_true(ci.mhz == 3700.0);
  assert_non_null(strstr(ci.basis, "cpufreq"));
  /* AVX2 + FMA without core ids: every processor is a core */
  bc_cpu_info_parse("processor : 0\ncpu MHz : 3000\nflags : sse2 avx fma avx2\n\n"
                    "processor : 1\ncpu MHz : 3000\nflags : sse2 avx fma avx2\n",
                    0, &ci);
  assert_int_equal(ci.physical_cores, 2);
  assert_int_equal(ci.flops_per_cycle, 32);
  assert_true(ci.peak_gflops > 191.9 && ci.peak_gflops < 192.1);
  /* "avx512f" must be a whole word: "avx512fp16" alone is not AVX-512F */
  bc_cpu_info_parse("processor : 0\ncpu MHz : 1000\nflags : sse2 avx512fp16\n", 0, &ci);
  assert_int_equal(ci.simd_bits, 128);
  /* Zen 4: AVX-512 at half rate */
  bc_cpu_info_parse("processor : 0\nvendor_id : AuthenticAMD\ncpu family : 25\n"
                    "cpu MHz : 4000\nflags : sse2 avx fma avx2 avx512f\n", 0, &ci);
  assert_int_equal(ci.flops_per_cycle, 32);
  /* aarch64 */
  bc_cpu_info_parse("processor : 0\nFeatures : fp asimd evtstrm\n", 2000000, &ci);
  assert_string_equal(ci.isa, "NEON");
  assert_int_equal(ci.flops_per_cycle, 16);
  /* nothing known: zero peak, a basis that says why, no crash on NULL */
  bc_cpu_info_parse(NULL, 0, &ci);
  assert_true(ci.peak_gflops == 0);
  assert_non_null(strstr(ci.basis, "unknown"));
  /* this host: a CPU device reports a clock and a peak */
  bertcl_device_info *list = NULL;
  size_t n = 0;
  assert_int_equal(bertcl_devices_list(&list, &n), BERTCL_OK);
  for (size_t i = 0; i < n; i++)
    if (list[i].type == BERTCL_DEVICE_CPU) {
      bc_cpu_info host;
      bc_cpu_info_get(&host);
      if (host.mhz > 0) assert_true(list[i].max_clock_mhz > 0);
      if (host.peak_gflops > 0) assert_true(list[i].fp32_peak_gflops > 0);
      assert_true(list[i].peak_basis[0] != '\0');
    }
  bertcl_devices_free(list);
}

int main(int argc, char **argv) {
  self_path = argv[0];
  if (argc == 3 && strcmp(argv[1], "child") == 0) return child_build(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_table),
      cmocka_unit_test(test_device_select),
      cmocka_unit_test(test_device_select_rule),
      cmocka_unit_test(test_device_select_two_cpu_stacks),
      cmocka_unit_test(test_kernel_runs),
      cmocka_unit_test(test_cache_across_processes),
      cmocka_unit_test(test_cache_unwritable_and_off),
      cmocka_unit_test(test_build_error_carries_log),
      cmocka_unit_test(test_kernel_dir_override),
      cmocka_unit_test(test_cli_devices),
      cmocka_unit_test(test_cpu_info_parse),
  };
  const char *filter = getenv("BERTCL_TEST_FILTER");
  if (filter && *filter) cmocka_set_test_filter(filter);
  return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
