// Deliberately wrong twin of cl/selftest.cl: no bounds check, so the rounded-up global size
// reads and writes past the end of x and y. scripts/oclgrind-check.sh must flag it.
__kernel void selftest_saxpy(__global float *y, __global const float *x, const float a,
                             const int n) {
  const int i = (int)get_global_id(0);
  y[i] = a * x[i] + y[i];
}
