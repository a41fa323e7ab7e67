// Self-test kernel for the runtime layer: y[i] = a * x[i] + y[i] for i < n.
// The global size may be rounded up past n (any work-group size), so every item checks n.
__kernel void selftest_saxpy(__global float *y,        // (n)
                             __global const float *x,  // (n)
                             const float a, const int n) {
  const int i = (int)get_global_id(0);
  if (i < n) y[i] = a * x[i] + y[i];
}
