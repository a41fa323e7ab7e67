/* Writers: .npy and safetensors bytes against files numpy and safetensors wrote
 * (tests/data/io, made by tests/gen/gen_io_expected.py), fp16 rounding, atomic replacement,
 * argument errors, and (when Python with numpy and safetensors is present) numpy.load and
 * safetensors.safe_open reading what we wrote. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/durable.h"
#include "io/writers.h"
#include "model/safetensors.h"
#include "testutil.h"

/* The values of tests/gen/gen_io_expected.py, bit for bit. */
static float values[16];

static void init_values(void) {
  const float v[16] = {0x0p+0f,         -0x0p+0f,        0x1p+0f,         0x1.555556p-2f,
                       -0x1.4p+1f,      0x1.ffcp+15f,    0x1.ffdep+15f,   0x1.ffep+15f,
                       0x1.5798eep-27f, 0x1.01b2b2p-24f, 0x1.f75104p-16f, 0x1.002p+0f,
                       0x1.006p+0f,     INFINITY,        -INFINITY,       NAN};
  memcpy(values, v, sizeof v);
}

static char *slurp(const char *path, size_t *len) {
  char *d = NULL;
  if (bc_read_file(NULL, path, &d, len) != BERTCL_OK) fail_msg("cannot read %s", path);
  return d;
}

static void expect_same_file(const char *got_path, const char *expected_rel) {
  char exp[1200];
  bc_test_data_path(exp, sizeof exp, expected_rel);
  size_t gl, el;
  char *g = slurp(got_path, &gl), *e = slurp(exp, &el);
  if (gl != el) fail_msg("%s: %zu bytes, %s has %zu", got_path, gl, expected_rel, el);
  for (size_t i = 0; i < gl; i++)
    if (g[i] != e[i])
      fail_msg("%s differs from %s at byte %zu: 0x%02x, expected 0x%02x", got_path, expected_rel, i,
               (unsigned char)g[i], (unsigned char)e[i]);
  free(g);
  free(e);
}

static void rm_rf(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(bc_test_run(cmd, NULL), 0);
}

static void test_f16_rounding(void **state) {
  (void)state;
  init_values();
  /* what numpy's astype(float16) gives for the 16 values */
  const uint16_t want[16] = {0x0, 0x8000, 0x3c00, 0x3555, 0xc100, 0x7bff, 0x7bff, 0x7c00,
                             0x0, 0x1,    0x1f7,  0x3c00, 0x3c02, 0x7c00, 0xfc00, 0x7e00};
  for (int i = 0; i < 16; i++)
    if (bc_f32_to_f16(values[i]) != want[i])
      fail_msg("f16(%a) = 0x%04x, numpy gives 0x%04x", (double)values[i], bc_f32_to_f16(values[i]),
               want[i]);
  /* every half widens exactly (through the safetensors reader) and narrows back to itself;
   * the midpoint between neighbours rounds to the even one */
  static unsigned char file[8 + 80 + 131072];
  const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}";
  char padded[81];
  snprintf(padded, sizeof padded, "%-80s", hdr);
  memset(file, 0, 8);
  file[0] = 80;
  memcpy(file + 8, padded, 80);
  for (uint32_t h = 0; h < 65536; h++) {
    file[88 + 2 * h] = (unsigned char)(h & 0xFF);
    file[88 + 2 * h + 1] = (unsigned char)(h >> 8);
  }
  bc_st_file *f = NULL;
  bc_err err = {0};
  assert_int_equal(bc_st_open_mem(&err, "halves", file, sizeof file, &f), BERTCL_OK);
  float *w = malloc(65536 * sizeof *w);
  assert_int_equal(bc_st_read_f32(&err, bc_st_find(f, "h"), w, 65536), BERTCL_OK);
  for (uint32_t h = 0; h < 65536; h++) {
    int is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
    if (is_nan) {
      assert_true(isnan(w[h]));
      assert_true((bc_f32_to_f16(w[h]) & 0x7E00) == 0x7E00);
      continue;
    }
    if (bc_f32_to_f16(w[h]) != h)
      fail_msg("half 0x%04x -> %a -> 0x%04x", h, (double)w[h], bc_f32_to_f16(w[h]));
    uint32_t next = h + 1;
    if ((h & 0x7FFF) >= 0x7BFF) continue; /* the largest finite, inf, NaN */
    float mid = (w[h] + w[next]) * 0.5f;
    uint16_t even = (h & 1) ? (uint16_t)next : (uint16_t)h;
    if (bc_f32_to_f16(mid) != even)
      fail_msg("midpoint %a of 0x%04x/0x%04x -> 0x%04x, want 0x%04x", (double)mid, h, next,
               bc_f32_to_f16(mid), even);
  }
  free(w);
  bc_st_close(f);
}

static void test_npy_bytes(void **state) {
  (void)state;
  init_values();
  char dir[1024], p[1200];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  size_t s44[2] = {4, 4}, s5[1] = {5}, s23[2] = {2, 3};
  float five[5] = {-2, -1, 0, 1, 2}, half = 0.5f, six[6];
  for (int i = 0; i < 6; i++) six[i] = 0.25f * (float)i;
  snprintf(p, sizeof p, "%s/a.npy", dir);
  assert_int_equal(bc_npy_write(NULL, p, values, 2, s44, BC_OUT_F32, 0), BERTCL_OK);
  expect_same_file(p, "io/f32_4x4.npy");
  assert_int_equal(bc_npy_write(NULL, p, values, 2, s44, BC_OUT_F16, 0), BERTCL_OK);
  expect_same_file(p, "io/f16_4x4.npy");
  assert_int_equal(bc_npy_write(NULL, p, five, 1, s5, BC_OUT_F32, 0), BERTCL_OK);
  expect_same_file(p, "io/f32_5.npy");
  assert_int_equal(bc_npy_write(NULL, p, &half, 0, NULL, BC_OUT_F32, 1), BERTCL_OK);
  expect_same_file(p, "io/f32_scalar.npy");
  assert_int_equal(bc_npy_write(NULL, p, six, 2, s23, BC_OUT_F32, 2), BERTCL_OK);
  expect_same_file(p, "io/f32_2x3_v2.npy");
  /* header sizes: a multiple of 64, ending in '\n' */
  char hdr[640];
  size_t hl;
  size_t big[8] = {100000, 1, 2, 3, 4, 5, 6, 7};
  assert_int_equal(bc_npy_header(NULL, hdr, sizeof hdr, &hl, 8, big, BC_OUT_F16, 0), BERTCL_OK);
  assert_int_equal(hl % 64, 0);
  assert_int_equal(hdr[hl - 1], '\n');
  assert_int_equal(hdr[6], 1);
  /* errors */
  assert_int_equal(bc_npy_write(NULL, p, values, 9, big, BC_OUT_F32, 0), BERTCL_ERR_INVALID_ARG);
  size_t huge[2] = {SIZE_MAX / 2, 3};
  assert_int_equal(bc_npy_write(NULL, p, values, 2, huge, BC_OUT_F32, 0), BERTCL_ERR_OVERFLOW);
  assert_int_equal(bc_npy_write(NULL, p, values, 2, s44, BC_OUT_F32, 3), BERTCL_ERR_INVALID_ARG);
  snprintf(p, sizeof p, "%s/no/such/dir/a.npy", dir);
  assert_int_equal(bc_npy_write(NULL, p, values, 2, s44, BC_OUT_F32, 0), BERTCL_ERR_IO);
  assert_non_null(strstr(bertcl_last_error(NULL), "no/such/dir/a.npy"));
  rm_rf(dir);
}

static void test_safetensors_bytes(void **state) {
  (void)state;
  init_values();
  char dir[1024], p[1200];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(p, sizeof p, "%s/t.safetensors", dir);
  bc_st_out_tensor ts[3] = {{"emb", values, 2, {4, 4}, BC_OUT_F32},
                            {"row", values + 4, 1, {4}, BC_OUT_F32},
                            {"emb_half", values, 2, {4, 4}, BC_OUT_F16}};
  bc_st_meta meta[1] = {{"model", "tiny-bert"}};
  assert_int_equal(bc_st_write(NULL, p, ts, 3, meta, 1), BERTCL_OK);
  expect_same_file(p, "io/tensors.safetensors");
  /* read back with our reader */
  bc_st_file *f = NULL;
  assert_int_equal(bc_st_open(NULL, p, &f), BERTCL_OK);
  assert_string_equal(bc_st_metadata(f, "model"), "tiny-bert");
  const bc_st_tensor *t = bc_st_find(f, "row");
  assert_non_null(t);
  assert_int_equal(t->ndim, 1);
  assert_int_equal(t->shape[0], 4);
  assert_memory_equal(t->data, values + 4, 16);
  bc_st_close(f);
  /* errors: duplicate names, reserved name, duplicate metadata, invalid UTF-8 name */
  bc_st_out_tensor dup[2] = {{"a", values, 1, {2}, BC_OUT_F32}, {"a", values, 1, {2}, BC_OUT_F32}};
  assert_int_equal(bc_st_write(NULL, p, dup, 2, NULL, 0), BERTCL_ERR_INVALID_ARG);
  dup[1].name = "__metadata__";
  assert_int_equal(bc_st_write(NULL, p, dup, 2, NULL, 0), BERTCL_ERR_INVALID_ARG);
  dup[1].name = "a\xff";
  assert_int_equal(bc_st_write(NULL, p, dup, 2, NULL, 0), BERTCL_ERR_INVALID_ARG);
  bc_st_meta m2[2] = {{"k", "v"}, {"k", "w"}};
  assert_int_equal(bc_st_write(NULL, p, dup, 1, m2, 2), BERTCL_ERR_INVALID_ARG);
  bc_st_meta m3[1] = {{"k\xfe", "v"}};
  assert_int_equal(bc_st_write(NULL, p, dup, 1, m3, 1), BERTCL_ERR_INVALID_ARG);
  /* the failed writes left the earlier file intact and no temporary files behind */
  expect_same_file(p, "io/tensors.safetensors");
  DIR *d = opendir(dir);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') files++;
  closedir(d);
  assert_int_equal(files, 1);
  rm_rf(dir);
}

/* Writing over an existing file replaces it whole. */
static void test_atomic_replace(void **state) {
  (void)state;
  char dir[1024], p[1200];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  snprintf(p, sizeof p, "%s/x.npy", dir);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  for (int i = 0; i < 100000; i++) fputc('z', f);
  fclose(f);
  float v[3] = {1, 2, 3};
  size_t s[1] = {3};
  assert_int_equal(bc_npy_write(NULL, p, v, 1, s, BC_OUT_F32, 0), BERTCL_OK);
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_size, 128 + 12);
  /* a write that fails half-way (a full disk, injected) leaves the previous file as it was and
   * no temporary file, for the whole-file and the streaming writers alike */
  setenv("BERTCL_FAULT_WRITE_BYTES", "100", 1);
  float big[64] = {0};
  size_t s64[1] = {64};
  bc_err err = {0};
  assert_int_equal(bc_npy_write(&err, p, big, 1, s64, BC_OUT_F32, 0), BERTCL_ERR_IO);
  assert_non_null(strstr(err.msg, "No space left on device"));
  assert_int_equal(bc_write_file_atomic(&err, p, big, sizeof big), BERTCL_ERR_IO);
  unsetenv("BERTCL_FAULT_WRITE_BYTES");
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_size, 128 + 12);
  assert_int_equal(bc_test_count_tmp(dir, "x.npy"), 0);
  /* and the same write without the fault goes through */
  assert_int_equal(bc_write_file_atomic(&err, p, big, sizeof big), BERTCL_OK);
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_size, sizeof big);
  assert_int_equal(bc_test_count_tmp(dir, "x.npy"), 0);
  rm_rf(dir);
}

/* numpy.load and safetensors.safe_open read what we write (skipped without them). */
static void test_python_reads(void **state) {
  (void)state;
  if (bc_test_run("python3 -c 'import numpy, safetensors' 2>/dev/null", NULL) != 0) {
    printf("python3 with numpy and safetensors not available: skipped\n");
    skip();
  }
  char dir[1024], p[1200];
  assert_int_equal(bc_test_tmpdir(dir, sizeof dir), 0);
  enum { B = 7, C = 33 };
  float *x = malloc(B * C * sizeof *x);
  bc_rng r;
  bc_rng_seed(&r, 7);
  bc_rng_fill(&r, x, B * C, -3, 3);
  x[5] = 70000.0f; /* f16 overflow to inf */
  x[6] = 1e-7f;    /* f16 subnormal */
  snprintf(p, sizeof p, "%s/x.f32", dir);
  FILE *f = fopen(p, "wb");
  assert_int_equal(fwrite(x, sizeof *x, B * C, f), B * C);
  fclose(f);
  size_t s[2] = {B, C};
  snprintf(p, sizeof p, "%s/a.npy", dir);
  assert_int_equal(bc_npy_write(NULL, p, x, 2, s, BC_OUT_F32, 0), BERTCL_OK);
  snprintf(p, sizeof p, "%s/h.npy", dir);
  assert_int_equal(bc_npy_write(NULL, p, x, 2, s, BC_OUT_F16, 0), BERTCL_OK);
  snprintf(p, sizeof p, "%s/v2.npy", dir);
  assert_int_equal(bc_npy_write(NULL, p, x, 2, s, BC_OUT_F32, 2), BERTCL_OK);
  snprintf(p, sizeof p, "%s/e.safetensors", dir);
  bc_st_out_tensor ts[2] = {{"embeddings", x, 2, {B, C}, BC_OUT_F32},
                            {"embeddings_f16", x, 2, {B, C}, BC_OUT_F16}};
  bc_st_meta meta[3] = {{"model", "tiny-bert"}, {"pooling", "mean"}, {"layers", "-1"}};
  assert_int_equal(bc_st_write(NULL, p, ts, 2, meta, 3), BERTCL_OK);
  free(x);
  char script[1200];
  snprintf(script, sizeof script, "%s/check.py", dir);
  f = fopen(script, "w");
  fputs(
      "import sys, warnings\n"
      "import numpy as np\n"
      "from safetensors import safe_open\n"
      "warnings.simplefilter('ignore')\n"
      "d = sys.argv[1]\n"
      "x = np.fromfile(d + '/x.f32', dtype='<f4').reshape(7, 33)\n"
      "a = np.load(d + '/a.npy')\n"
      "assert a.dtype == np.dtype('<f4') and a.shape == (7, 33), (a.dtype, a.shape)\n"
      "assert a.flags.c_contiguous and np.array_equal(a, x)\n"
      "v2 = np.load(d + '/v2.npy')\n"
      "assert v2.dtype == np.float32 and np.array_equal(v2, x)\n"
      "assert open(d + '/v2.npy', 'rb').read(8)[6:8] == bytes([2, 0])\n"
      "h = np.load(d + '/h.npy')\n"
      "assert h.dtype == np.dtype('<f2') and h.shape == (7, 33), (h.dtype, h.shape)\n"
      "assert np.array_equal(h.view(np.uint16), x.astype(np.float16).view(np.uint16))\n"
      "with safe_open(d + '/e.safetensors', 'np') as f:\n"
      "    m = f.metadata()\n"
      "    assert m == {'model': 'tiny-bert', 'pooling': 'mean', 'layers': '-1'}, m\n"
      "    e = f.get_tensor('embeddings')\n"
      "    assert e.dtype == np.float32 and e.shape == (7, 33) and np.array_equal(e, x)\n"
      "    e16 = f.get_tensor('embeddings_f16')\n"
      "    assert e16.dtype == np.float16 and e16.shape == (7, 33)\n"
      "    assert np.array_equal(e16.view(np.uint16), x.astype(np.float16).view(np.uint16))\n"
      "print('python check ok')\n",
      f);
  fclose(f);
  char cmd[2600], *out = NULL;
  snprintf(cmd, sizeof cmd, "python3 '%s' '%s' 2>&1", script, dir);
  int rc = bc_test_run(cmd, &out);
  if (rc != 0 || !strstr(out, "python check ok")) fail_msg("python check failed (%d): %s", rc, out);
  free(out);
  rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f16_rounding),      cmocka_unit_test(test_npy_bytes),
      cmocka_unit_test(test_safetensors_bytes), cmocka_unit_test(test_atomic_replace),
      cmocka_unit_test(test_python_reads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
