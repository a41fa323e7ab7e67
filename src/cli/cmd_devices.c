/* bertcl devices [--json] [--device D] [--gemm auto|clblast|blas] */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertcl.h"
#include "cli.h"

void bc_cmd_devices_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl devices [--json] [--device D] [--gemm auto|clblast|blas]\n\n"
          "Lists every OpenCL device of every platform, with the facts that matter for\n"
          "running an encoder, and marks the default (first GPU, else first device).\n"
          "Each device's matrix-product backend: the host BLAS (library, CPU kernel set,\n"
          "threads) on CPU devices that can run it, else CLBlast, and why.\n\n"
          "options:\n"
          "  --json        print a JSON array instead of a table\n"
          "  --device D    check that selector D resolves (exit 1 if not) and mark it\n"
          "                D: P:D index, N (n-th device), gpu|cpu|accelerator (the first\n"
          "                of that type), or text: a whole platform/device name, else part\n"
          "                of a platform's name/vendor (intel, nvidia, pocl), else part of a\n"
          "                device's name/vendor (xeon); text that matches two devices that\n"
          "                way is refused with the list (README: Choosing a device)\n"
          "  --gemm G      the backend to check (default $BERTCL_GEMM, else auto); exit 1\n"
          "                when the selected (or default) device cannot run it\n"
          "  -h, --help    this text\n");
}

static const char *type_str(bertcl_device_type t) {
  switch (t) {
    case BERTCL_DEVICE_CPU: return "cpu";
    case BERTCL_DEVICE_GPU: return "gpu";
    case BERTCL_DEVICE_ACCELERATOR: return "accelerator";
    default: return "other";
  }
}

/* The GEMM backend a context on device d would use, or why it cannot: one line. */
static int gemm_line(const bertcl_device_info *d, const char *gemm, char *out, size_t n) {
  char sel[32];
  snprintf(sel, sizeof sel, "%d:%d", d->platform_index, d->device_index);
  bertcl_ctx_options o = {.device = sel, .gemm = gemm, .cache_dir = "off"};
  bertcl_ctx *ctx = NULL;
  if (bertcl_ctx_create(&ctx, &o) != BERTCL_OK) {
    snprintf(out, n, "%s", bertcl_last_error(NULL));
    return -1;
  }
  bertcl_ctx_gemm_info(ctx, out, n);
  bertcl_ctx_free(ctx);
  return 0;
}

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

int bc_cmd_devices(int argc, char **argv) {
  int json = 0;
  const char *selector = NULL, *gemm = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
      selector = argv[++i];
    } else if (strncmp(argv[i], "--device=", 9) == 0) {
      selector = argv[i] + 9;
    } else if (strcmp(argv[i], "--gemm") == 0 && i + 1 < argc) {
      gemm = argv[++i];
    } else {
      bc_cli_error("devices: unknown option '%s' (see bertcl devices --help)", argv[i]);
      return 2;
    }
  }
  bertcl_device_info *list = NULL;
  size_t n = 0;
  if (bertcl_devices_list(&list, &n) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    return 1;
  }
  long selected = -1;
  if (selector || getenv("BERTCL_DEVICE")) {
    size_t idx = 0;
    if (bertcl_device_select(list, n, selector, &idx) != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(NULL));
      bertcl_devices_free(list);
      return 1;
    }
    selected = (long)idx;
  }
  /* the matrix-product backend of each device (a context each: the check runs a native kernel) */
  char(*gl)[1024] = n ? calloc(n, sizeof *gl) : NULL;
  int gemm_failed = 0;
  for (size_t i = 0; i < n && gl; i++) {
    int bad = gemm_line(&list[i], gemm, gl[i], sizeof gl[i]) != 0;
    if (bad && (selected >= 0 ? (long)i == selected : list[i].is_default)) gemm_failed = 1;
  }
  if (json) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
      const bertcl_device_info *d = &list[i];
      char index[32];
      snprintf(index, sizeof index, "%d:%d", d->platform_index, d->device_index);
      json_t *o = json_pack(
          "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, "
          "s:b}",
          "index", index, "platform", d->platform_name, "platform_version", d->platform_version,
          "name", d->name, "vendor", d->vendor, "type", type_str(d->type), "opencl_version",
          d->version, "driver_version", d->driver_version, "compute_units",
          (json_int_t)d->compute_units, "max_clock_mhz", (json_int_t)d->max_clock_mhz,
          "global_mem_bytes", (json_int_t)d->global_mem_bytes, "max_alloc_bytes",
          (json_int_t)d->max_alloc_bytes, "local_mem_bytes", (json_int_t)d->local_mem_bytes,
          "max_work_group_size", (json_int_t)d->max_work_group_size, "fp16", d->fp16,
          "subgroups", d->subgroups, "default", d->is_default);
      json_object_set_new(o, "fp32_peak_gflops",
                          d->fp32_peak_gflops > 0 ? json_real(d->fp32_peak_gflops) : json_null());
      json_object_set_new(o, "peak_basis", json_string(d->peak_basis));
      json_object_set_new(o, "platform_vendor", json_string(d->platform_vendor));
      if (gl) json_object_set_new(o, "gemm", json_string(gl[i]));
      if (selected >= 0) json_object_set_new(o, "selected", json_boolean((long)i == selected));
      json_array_append_new(arr, o);
    }
    char *s = json_dumps(arr, JSON_INDENT(2));
    if (s) puts(s);
    free(s);
    json_decref(arr);
  } else if (n == 0) {
    printf("No OpenCL platform or device found.\n"
           "Install an OpenCL driver (ICD): on Debian/Ubuntu 'apt-get install pocl-opencl-icd'\n"
           "for the CPU, or your GPU vendor's OpenCL package; then check that a .icd file\n"
           "exists in /etc/OpenCL/vendors (and 'clinfo -l' lists the device).\n");
  } else {
    printf("%-4s %-5s %-32s %-22s %-5s %-11s %4s %6s %9s %9s %7s %4s %4s\n", "", "index",
           "device", "platform", "type", "opencl", "CUs", "MHz", "mem GiB", "alloc GiB",
           "local", "fp16", "sg");
    for (size_t i = 0; i < n; i++) {
      const bertcl_device_info *d = &list[i];
      char index[32], ocl[16];
      snprintf(index, sizeof index, "%d:%d", d->platform_index, d->device_index);
      snprintf(ocl, sizeof ocl, "%.11s", d->version);
      printf("%-4s %-5s %-32.32s %-22.22s %-5s %-11s %4u %6u %9.2f %9.2f %6lluK %4s %4s\n",
             (selected >= 0 ? (long)i == selected : d->is_default) ? "*" : "", index, d->name,
             d->platform_name, type_str(d->type), ocl, d->compute_units, d->max_clock_mhz,
             gib(d->global_mem_bytes), gib(d->max_alloc_bytes),
             (unsigned long long)(d->local_mem_bytes / 1024), d->fp16 ? "yes" : "no",
             d->subgroups ? "yes" : "no");
    }
    for (size_t i = 0; i < n; i++) {
      const bertcl_device_info *d = &list[i];
      printf("%s %d:%d driver %s, vendor %s\n", i ? "" : "\n", d->platform_index,
             d->device_index, d->driver_version, d->vendor);
      if (d->fp32_peak_gflops > 0)
        printf("     fp32 peak %.0f GFLOP/s (%s)\n", d->fp32_peak_gflops, d->peak_basis);
      else
        printf("     fp32 peak unknown (%s)\n", d->peak_basis);
      if (gl) printf("     gemm %s\n", gl[i]);
    }
    printf("\n* = %s. Choose another with --device or BERTCL_DEVICE.\n",
           selected >= 0 ? "selected device" : "default device (first GPU, else first device)");
  }
  if (gemm_failed)
    for (size_t i = 0; i < n; i++)
      if (selected >= 0 ? (long)i == selected : list[i].is_default)
        bc_cli_error("%d:%d: %s", list[i].platform_index, list[i].device_index, gl[i]);
  free(gl);
  bertcl_devices_free(list);
  return gemm_failed ? 1 : 0;
}
