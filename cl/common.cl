// Shared by every bertcl kernel program (prepended to each). Tunables arrive as -D options.
#ifndef WG
#define WG 128  // work-group size of the row kernels: a power of two <= the device's maximum
#endif
#ifndef KSET             // the kernel set (bc_kset in src/runtime/runtime.h), from -D options
#define KSET_GPU 0
#define KSET_CPU 1
#define KSET KSET_GPU
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

// ---- Straight-line math for the CPU kernel set ---------------------------------------------
// No branches and no library calls (PoCL calls Sleef per element for erf and exp), so CPU
// compilers vectorise it, across work-items or through vector types. Defined for float
// (suffix f1) and float8 (f8) by one macro. Accuracy is proven against double precision by
// tests/test_ops.c (gelu_sweep): dense sweeps of inputs, every kernel set.
//
// exp_S(x): Cephes' expf: x = k ln2 + r (Cody-Waite, |r| <= ln2/2), e^r by a degree-7
//   polynomial, 2^k through the exponent bits. Under about 2 ulp; x < -87 gives 0 (the true
//   value is below 1.7e-38), x > 88 gives e^88.
// gelu_cdf_S(x) = Phi(x) = 0.5 (1 + erf(x / sqrt 2)), with z = x / sqrt 2, t = |z|:
//   t < 0.9: 0.5 + 0.5 z P(z^2), P degree 5 fitted to erf(z)/z (relative error 1.2e-8);
//   t >= 0.9: erfc(t) = exp(Q(t)), Q degree 9 fitted to log erfc on [0.9, 4] (weighted by erfc,
//   absolute error 3e-8 in erfc), Phi = 0.5 erfc(t) for z < 0 and 1 - 0.5 erfc(t) for z > 0:
//   no cancellation in 1 + erf(z) for negative x, unlike the erf form; erfc = 0 beyond t = 4
//   (erfc(4) = 1.5e-8). Coefficients: a weighted least-squares fit on Chebyshev nodes against
//   mpmath (40 digits), rounded to float.
#define BC_CPU_MATH(T, IT, S)                                                                  \
  inline T exp_##S(T x) {                                                                      \
    const T xc = fmin(fmax(x, -87.0f), 88.0f);                                                 \
    const T k = rint(xc * 1.44269504088896341f);                                               \
    const T r = (xc - k * 0.693359375f) - k * -2.12194440e-4f;                                 \
    T p = 1.9875691500e-4f;                                                                    \
    p = p * r + 1.3981999507e-3f;                                                              \
    p = p * r + 8.3334519073e-3f;                                                              \
    p = p * r + 4.1665795894e-2f;                                                              \
    p = p * r + 1.6666665459e-1f;                                                              \
    p = p * r + 5.0000001201e-1f;                                                              \
    const T y = (p * r * r + r + 1.0f) * as_##T((convert_##IT(k) + 127) << 23);               \
    return select(y, (T)0.0f, x < -87.0f);                                                     \
  }                                                                                            \
  inline T gelu_cdf_##S(T x) {                                                                 \
    const T z = x * 0.70710678118654752f, t = fabs(z), u = z * z;                             \
    T p = -6.090357783e-4f;                                                                    \
    p = p * u + 5.011962261e-3f;                                                               \
    p = p * u - 2.677890845e-2f;                                                               \
    p = p * u + 1.128214076e-1f;                                                               \
    p = p * u - 3.761252463e-1f;                                                               \
    p = p * u + 1.128379107e+0f;                                                               \
    const T small = 0.5f + 0.5f * (z * p);                                                     \
    const T tc = fmin(t, 4.0f);                                                                \
    T q = 1.110777589e-6f;                                                                     \
    q = q * tc - 1.786253233e-5f;                                                              \
    q = q * tc + 1.034078159e-4f;                                                              \
    q = q * tc - 5.953126674e-5f;                                                              \
    q = q * tc - 2.940601669e-3f;                                                              \
    q = q * tc + 2.312263846e-2f;                                                              \
    q = q * tc - 1.061673164e-1f;                                                              \
    q = q * tc - 6.347535849e-1f;                                                              \
    q = q * tc - 1.128979683e+0f;                                                              \
    q = q * tc + 8.594123938e-5f;                                                              \
    const T e = select(exp_##S(q), (T)0.0f, t > 4.0f); /* erfc(t) */                           \
    const T tail = select(0.5f * e, 1.0f - 0.5f * e, z > 0.0f);                                \
    return select(tail, small, t < 0.9f);                                                      \
  }
BC_CPU_MATH(float, int, f1)
BC_CPU_MATH(float8, int8, f8)

// Sum of a float8's lanes in a fixed order.
inline float hsum8(float8 v) {
  const float4 a = v.lo + v.hi;
  const float2 b = a.lo + a.hi;
  return b.x + b.y;
}
inline float hmax8(float8 v) {
  const float4 a = fmax(v.lo, v.hi);
  const float2 b = fmax(a.lo, a.hi);
  return fmax(b.x, b.y);
}

// act_apply on 8 lanes (CPU set): erf GELU through gelu_cdf_f8; the tanh forms call the
// builtin tanh on the vector.
inline float8 act_apply8(float8 x, int act) {
  if (act == ACT_GELU) return x * gelu_cdf_f8(x);
  if (act == ACT_GELU_TANH)
    return 0.5f * x * (1.0f + tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  if (act == ACT_RELU) return fmax(x, 0.0f);
  return tanh(x);
}

inline float act_apply(float x, int act) {
#if KSET == KSET_CPU
  if (act == ACT_GELU) return x * gelu_cdf_f1(x);
#else
  if (act == ACT_GELU) return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
#endif
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

// CPU set: the sum of a row of C floats by one work-item, 8 lanes at a time (vload8: any C,
// any alignment).
inline float row_sum_cpu(__global const float *x, const int C) {
  float8 s8 = 0.0f;
  int c;
  for (c = 0; c + 8 <= C; c += 8) s8 += vload8(0, x + c);
  float s = hsum8(s8);
  for (; c < C; c++) s += x[c];
  return s;
}

// CPU set: layernorm_row by one work-item, given the row's sum; out may equal x.
inline void layernorm_row_cpu(__global float *out, __global const float *x,
                              __global const float *w, __global const float *b, const float eps,
                              const int C, const float sum) {
  const float mean = sum / (float)C;
  float8 v8 = 0.0f;
  int c;
  for (c = 0; c + 8 <= C; c += 8) {
    const float8 d = vload8(0, x + c) - mean;
    v8 += d * d;
  }
  float v = hsum8(v8);
  for (; c < C; c++) v += (x[c] - mean) * (x[c] - mean);
  const float rstd = 1.0f / sqrt(v / (float)C + eps);
  for (c = 0; c + 8 <= C; c += 8)
    vstore8((vload8(0, x + c) - mean) * rstd * vload8(0, w + c) + vload8(0, b + c), 0, out + c);
  for (; c < C; c++) out[c] = (x[c] - mean) * rstd * w[c] + b[c];
}
