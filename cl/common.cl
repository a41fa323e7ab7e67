// Shared by every bertcl kernel program (prepended to each). Tunables arrive as -D options.
#ifndef WG
#define WG 128  // work-group size of the row kernels: a power of two <= the device's maximum
#endif
#define ACT_GELU 0       // erf form (config "gelu")
#define ACT_GELU_TANH 1  // tanh form ("gelu_new", "gelu_pytorch_tanh")
#define ACT_RELU 2
#define ACT_TANH 3       // the pooler

// Sum of v over the work-group (WG items, a power of two). All items get the result.
// scratch: (WG) local floats. Ends with a barrier, so scratch may be reused right after.
inline float wg_sum(float v, __local float *scratch) {
  const int lid = (int)get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] += scratch[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

inline float wg_max(float v, __local float *scratch) {
  const int lid = (int)get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] = fmax(scratch[lid], scratch[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

inline float act_apply(float x, int act) {
  if (act == ACT_GELU) return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
  if (act == ACT_GELU_TANH)
    return 0.5f * x * (1.0f + tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  if (act == ACT_RELU) return fmax(x, 0.0f);
  return tanh(x);
}

// LayerNorm of one row held in `row` (C values, global), written to out: two-pass mean/variance
// (biased, as torch), eps inside the square root. Called by all WG items of a group.
inline void layernorm_row(__global float *out, __global const float *row,
                          __global const float *w, __global const float *b, const float eps,
                          const int C, __local float *scratch) {
  const int lid = (int)get_local_id(0);
  float s = 0.0f;
  for (int c = lid; c < C; c += WG) s += row[c];
  const float mean = wg_sum(s, scratch) / (float)C;
  float v = 0.0f;
  for (int c = lid; c < C; c += WG) {
    const float d = row[c] - mean;
    v += d * d;
  }
  const float rstd = 1.0f / sqrt(wg_sum(v, scratch) / (float)C + eps);
  for (int c = lid; c < C; c += WG) out[c] = (row[c] - mean) * rstd * w[c] + b[c];
}
