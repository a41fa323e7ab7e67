// out = LayerNorm(x + bias + residual): the post-LN step after a projection. x and out may be
// the same buffer; residual must not alias out. GPU set: one work-group per row; CPU set: one
// work-item per row (rows = N).
__kernel void bias_residual_layernorm_fwd(__global float *out,           // (N, C)
                                          __global const float *x,        // (N, C) GEMM output
                                          __global const float *bias,     // (C)
                                          __global const float *residual, // (N, C)
                                          __global const float *w,        // (C)
                                          __global const float *b,        // (C)
                                          const float eps, const int N, const int C) {
#if KSET == KSET_CPU
  const size_t row = get_global_id(0);
  if (row >= (size_t)N) return;
  __global float *o = out + row * C;
  __global const float *xr = x + row * C;
  __global const float *rr = residual + row * C;
  floatV sv = 0.0f;
  int c;
  for (c = 0; c + VW <= C; c += VW) {
    const floatV y = vloadV(0, xr + c) + vloadV(0, bias + c) + vloadV(0, rr + c);
    vstoreV(y, 0, o + c);
    sv += y;
  }
  float s = hsumV(sv);
  for (; c < C; c++) {
    const float y = xr[c] + bias[c] + rr[c];
    o[c] = y;
    s += y;
  }
  layernorm_row_cpu(o, o, w, b, eps, C, s);
#else
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  const int lid = (int)get_local_id(0);
  __global float *o = out + row * C;
  __global const float *xr = x + row * C;
  __global const float *rr = residual + row * C;
  for (int c = lid; c < C; c += WG) o[c] = xr[c] + bias[c] + rr[c];
  barrier(CLK_GLOBAL_MEM_FENCE);
  layernorm_row(o, o, w, b, eps, C, scratch);
#endif
}
