// Shared by every bertcl kernel program (prepended to each). Tunables arrive as -D options.
#ifndef WG
#define WG 128  // work-group size of the row kernels: a power of two <= the device's maximum
#endif
#ifndef KSET             // the kernel set (bc_kset in src/runtime/runtime.h), from -D options
#define KSET_GPU 0
#define KSET_CPU 1
#define KSET KSET_GPU
#endif
// The CPU set's vector code runs VW lanes at a time (-DVW: 16 where the CPU has AVX-512, else 8;
// bc_cpu_vector_width): floatV and friends are VW-lane types.
#ifndef VW
#define VW 8
#endif
#if VW == 16
#define floatV float16
#define intV int16
#define uintV uint16
#define ulongV ulong16
#define LANE_IDS (uintV)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#elif VW == 8
#define floatV float8
#define intV int8
#define uintV uint8
#define ulongV ulong8
#define LANE_IDS (uintV)(0, 1, 2, 3, 4, 5, 6, 7)
#else
#error "VW must be 8 or 16"
#endif
#define VCAT_(a, b) a##b
#define VCAT(a, b) VCAT_(a, b)
#define vloadV VCAT(vload, VW)
#define vstoreV VCAT(vstore, VW)
#define as_floatV VCAT(as_float, VW)
#define as_uintV VCAT(as_uint, VW)
#define convert_intV VCAT(convert_int, VW)
#define convert_uintV VCAT(convert_uint, VW)
#define convert_ulongV VCAT(convert_ulong, VW)
#define convert_floatV VCAT(convert_float, VW)
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
// (suffix f1) and floatV (fV) by one macro. tests/test_ops.c and tests/test_train_ops.c prove
// the accuracy on dense sweeps of inputs against double precision (the gelu sweep rows).
//
// exp_S(x): Cephes' expf: x = k ln2 + r (Cody-Waite, |r| <= ln2/2), e^r by a degree-7
//   polynomial, 2^k through the exponent bits. About 1 ulp; x < -87 gives 0 (the true value is
//   below 1.7e-38), x > 88 gives e^88.
// gelu_S(x) = x Phi(x) and gelu_grad_S(x) = Phi(x) + x phi(x) (the erf GELU and its derivative)
// from gelu_parts_S(x, &g) = Phi(x) = 0.5 (1 + erf(z)), z = x / sqrt 2, t = |z|, and
// g = exp(-x^2 / 2) (phi(x) = g / sqrt(2 pi)):
//   t < 0.9: Phi = 0.5 + 0.5 z P(z^2), P of degree 5 fitted to erf(z)/z (relative error 1.2e-8);
//   t >= 0.9: erfc(t) = g F(1/t) / (t sqrt(pi)), F of degree 11 in 1/t - 0.6 fitted to
//     erfc(t) exp(t^2) t sqrt(pi) on [0.9, 9.3] (relative error 2e-8, 0.7 ulp evaluated in
//     float); Phi = erfc(t) / 2 for z < 0 and 1 - erfc(t) / 2 for z > 0. No cancellation in the
//     far negative tail, where the erf form's 1 + erf(z) loses every digit; erfc = 0 beyond
//     t = 9.3 (below 1e-38 there).
//   g = exp(-xx / 2) (1 - xl / 2) with x^2 = xx + xl split exactly by an fma: rounding x^2 (or
//     z) first would cost 2 t^2 2^-24 of relative accuracy (70 ulp at t = 8).
//   Coefficients: weighted least-squares fits on Chebyshev nodes against mpmath (30 digits),
//   rounded to float. Measured (the sweep rows): at most 6 ulp from x Phi(x) in double over
//   [-12, 12] wherever GELU is a normal float.
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
  /* Phi(x), and g = exp(-x^2 / 2) (the normal density's factor) */                          \
  inline T gelu_parts_##S(T x, T *g) {                                                         \
    const T z = x * 0.70710678118654752f, t = fabs(z), u = z * z;                             \
    T p = -6.090357783e-4f;                                                                    \
    p = p * u + 5.011962261e-3f;                                                               \
    p = p * u - 2.677890845e-2f;                                                               \
    p = p * u + 1.128214076e-1f;                                                               \
    p = p * u - 3.761252463e-1f;                                                               \
    p = p * u + 1.128379107e+0f;                                                               \
    const T small = 0.5f + 0.5f * (z * p);                                                     \
    const T tc = clamp(t, 0.9f, 9.3f), rt = 1.0f / tc, w = rt - 0.6f;                          \
    T f = 9.713803232e-2f;                                                                     \
    f = f * w - 2.278324403e-2f;                                                               \
    f = f * w - 1.310734898e-1f;                                                               \
    f = f * w + 1.291102916e-1f;                                                               \
    f = f * w - 5.720255524e-2f;                                                               \
    f = f * w - 1.276772283e-2f;                                                               \
    f = f * w + 8.969907463e-2f;                                                               \
    f = f * w - 1.492097974e-1f;                                                               \
    f = f * w + 1.421910077e-1f;                                                               \
    f = f * w - 1.241714135e-2f;                                                               \
    f = f * w - 3.037645519e-1f;                                                               \
    f = f * w + 8.752598166e-1f;                                                               \
    const T xx = x * x, xl = fma(x, x, -xx); /* x^2 = xx + xl exactly, t^2 = x^2 / 2 */         \
    *g = exp_##S(-0.5f * xx) * (1.0f - 0.5f * xl);                                             \
    const T ec = *g * (f * (0.56418958354775629f * rt));                                       \
    const T e = select(ec, (T)0.0f, t > 9.3f); /* erfc(t) */                                   \
    const T tail = select(0.5f * e, 1.0f - 0.5f * e, z > 0.0f);                                \
    return select(tail, small, t < 0.9f);                                                      \
  }                                                                                            \
  /* GELU(x) = x Phi(x) and its derivative Phi(x) + x phi(x) */                                \
  inline T gelu_##S(T x) {                                                                     \
    T g;                                                                                       \
    return x * gelu_parts_##S(x, &g);                                                          \
  }                                                                                            \
  inline T gelu_grad_##S(T x) {                                                                \
    T g;                                                                                       \
    const T cdf = gelu_parts_##S(x, &g);                                                       \
    return cdf + x * (0.39894228040143268f * g);                                               \
  }
BC_CPU_MATH(float, int, f1)
BC_CPU_MATH(floatV, intV, fV)

// Sum (maximum) of a vector's lanes in a fixed order.
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
#if VW == 16
inline float hsumV(floatV v) { return hsum8(v.lo + v.hi); }
inline float hmaxV(floatV v) { return hmax8(fmax(v.lo, v.hi)); }
#else
#define hsumV hsum8
#define hmaxV hmax8
#endif

// act_apply on VW lanes (CPU set): erf GELU through gelu_fV; the tanh forms call the
// builtin tanh on the vector.
inline floatV act_applyV(floatV x, int act) {
  if (act == ACT_GELU) return gelu_fV(x);
  if (act == ACT_GELU_TANH)
    return 0.5f * x * (1.0f + tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  if (act == ACT_RELU) return fmax(x, 0.0f);
  return tanh(x);
}

inline float act_apply(float x, int act) {
#if KSET == KSET_CPU
  if (act == ACT_GELU) return gelu_f1(x);
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

// CPU set: the sum of a row of C floats by one work-item, VW lanes at a time (vloadV: any C,
// any alignment).
inline float row_sum_cpu(__global const float *x, const int C) {
  floatV sv = 0.0f;
  int c;
  for (c = 0; c + VW <= C; c += VW) sv += vloadV(0, x + c);
  float s = hsumV(sv);
  for (; c < C; c++) s += x[c];
  return s;
}

// CPU set: layernorm_row by one work-item, given the row's sum; out may equal x.
inline void layernorm_row_cpu(__global float *out, __global const float *x,
                              __global const float *w, __global const float *b, const float eps,
                              const int C, const float sum) {
  const float mean = sum / (float)C;
  floatV vv = 0.0f;
  int c;
  for (c = 0; c + VW <= C; c += VW) {
    const floatV d = vloadV(0, x + c) - mean;
    vv += d * d;
  }
  float v = hsumV(vv);
  for (; c < C; c++) v += (x[c] - mean) * (x[c] - mean);
  const float rstd = 1.0f / sqrt(v / (float)C + eps);
  for (c = 0; c + VW <= C; c += VW)
    vstoreV((vloadV(0, x + c) - mean) * rstd * vloadV(0, w + c) + vloadV(0, b + c), 0, out + c);
  for (; c < C; c++) out[c] = (x[c] - mean) * rstd * w[c] + b[c];
}
