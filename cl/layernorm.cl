// out = LayerNorm(x + bias + residual): the post-LN step after a projection. One group per row.
// x and out may be the same buffer; residual must not alias out.
__kernel void bias_residual_layernorm_fwd(__global float *out,           // (N, C)
                                          __global const float *x,        // (N, C) GEMM output
                                          __global const float *bias,     // (C)
                                          __global const float *residual, // (N, C)
                                          __global const float *w,        // (C)
                                          __global const float *b,        // (C)
                                          const float eps, const int C) {
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  const int lid = (int)get_local_id(0);
  __global float *o = out + row * C;
  __global const float *xr = x + row * C;
  __global const float *rr = residual + row * C;
  for (int c = lid; c < C; c += WG) o[c] = xr[c] + bias[c] + rr[c];
  barrier(CLK_GLOBAL_MEM_FENCE);
  layernorm_row(o, o, w, b, eps, C, scratch);
}
