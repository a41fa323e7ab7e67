// In place: x = act(x + bias) for an (N, C) matrix; one item per element.
__kernel void bias_act_fwd(__global float *x,            // (N, C)
                           __global const float *bias,   // (C)
                           const int act, const int N, const int C) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  x[i] = act_apply(x[i] + bias[i % C], act);
}
