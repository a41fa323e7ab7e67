// In place: x = act(x + bias) for an (N, C) matrix. GPU set: one item per element; CPU set: one
// item per row, VW lanes at a time (no 64-bit index division per element, vector erf).
__kernel void bias_act_fwd(__global float *x,            // (N, C)
                           __global const float *bias,   // (C)
                           const int act, const int N, const int C) {
#if KSET == KSET_CPU
  const size_t n = get_global_id(0);
  if (n >= (size_t)N) return;
  __global float *r = x + n * C;
  int c;
  for (c = 0; c + VW <= C; c += VW)
    vstoreV(act_applyV(vloadV(0, r + c) + vloadV(0, bias + c), act), 0, r + c);
  for (; c < C; c++) r[c] = act_apply(r[c] + bias[c], act);
#else
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  x[i] = act_apply(x[i] + bias[i % C], act);
#endif
}
