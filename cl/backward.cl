// Backward kernels for fine-tuning (cl/common.cl first). Twins: src/ref/ref_train.h.
// Gradients named "written" overwrite their output; "accumulated" add to it (+=).
// No contraction into fused multiply-adds here: LayerNorm's backward subtracts nearly equal
// terms scaled by 1/sigma, where an FMA's different rounding shows up.
#pragma OPENCL FP_CONTRACT OFF

// Philox-4x32-10, as ref_philox4x32_10; element i of dropout site (seed, step, id) is kept when
// (philox({i lo, i hi, id, step}, {seed lo, seed hi})[0] >> 8) * 2^-24 >= p.
// The CPU set forms each 32x32 -> 64-bit product with one 64-bit multiply of zero-extended
// operands (what CPU vector units do: vpmuludq), where mul_hi is a call on PoCL that stops
// vectorisation; the bits are the same.
inline uint philox_first(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1) {
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
#if KSET == KSET_CPU
    const ulong p0 = (ulong)c0 * 0xD2511F53ul, p1 = (ulong)c2 * 0xCD9E8D57ul;
    const uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
    const uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
#else
    const uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
#endif
    const uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return c0;
}

// philox_first on VW counters at once (CPU set): lanes differ in c0 and c1 only.
inline uintV philox_firstV(uintV c0, uintV c1, uint c2s, uint c3s, uint k0, uint k1) {
  uintV c2 = (uintV)c2s, c3 = (uintV)c3s;
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const ulongV p0 = convert_ulongV(c0) * 0xD2511F53ul, p1 = convert_ulongV(c2) * 0xCD9E8D57ul;
    const uintV n0 = convert_uintV(p1 >> 32) ^ c1 ^ k0, n2 = convert_uintV(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = convert_uintV(p1);
    c2 = n2;
    c3 = convert_uintV(p0);
  }
  return c0;
}

// Keep flags (-1 kept, 0 dropped) of elements i0 .. i0+VW-1 of dropout site (seed, step, id): the
// bits of philox_first, VW lanes at a time (the low counter word may carry into the high one).
inline intV dropout_keepV(ulong i0, float p, uint seed_lo, uint seed_hi, uint step, uint id) {
  const uint lo = (uint)i0, hi = (uint)(i0 >> 32);
  const uintV c0 = lo + LANE_IDS;
  const uintV c1 = hi - as_uintV(c0 < lo);
  const uintV r = philox_firstV(c0, c1, id, step, seed_lo, seed_hi);
  return convert_floatV(r >> 8) * (1.0f / 16777216.0f) >= p;
}

// out = x * keep(i) / (1 - p) (out may equal x): dropout forward, and its own backward. GPU set:
// one item per element; CPU set: one item per CHUNK elements, VW lanes at a time.
#ifndef CHUNK
#define CHUNK 64  // elements per work-item of the CPU set's flat kernels (a multiple of VW)
#endif
#ifndef SUMSQ_CHUNK
#define SUMSQ_CHUNK 4096  // elements per work-item of the CPU set's sumsq_partial
#endif
__kernel void dropout_fwd(__global float *out, __global const float *x, const float p,
                          const uint seed_lo, const uint seed_hi, const uint step, const uint id,
                          const ulong n) {
#if KSET == KSET_CPU
  const size_t base = get_global_id(0) * (size_t)CHUNK;
  if (base >= n) return;
  const size_t end = min((size_t)(base + CHUNK), (size_t)n);
  const float s = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
  size_t i = base;
  for (; i + VW <= end; i += VW) {
    const intV keep = dropout_keepV(i, p, seed_lo, seed_hi, step, id);
    storeV(select((floatV)0.0f, loadV(x + i) * s, keep), out + i);
  }
  for (; i < end; i++) {
    const uint r = philox_first((uint)i, (uint)((ulong)i >> 32), id, step, seed_lo, seed_hi);
    const float u = (float)(r >> 8) * (1.0f / 16777216.0f);
    out[i] = u >= p ? x[i] * s : 0.0f;
  }
#else
  const size_t i = get_global_id(0);
  if (i >= n) return;
  const uint r = philox_first((uint)i, (uint)((ulong)i >> 32), id, step, seed_lo, seed_hi);
  const float u = (float)(r >> 8) * (1.0f / 16777216.0f);
  const float s = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
  out[i] = u >= p ? x[i] * s : 0.0f;
#endif
}

// LayerNorm backward, per row: with xin the LayerNorm input and g = dout * w,
// dy = rstd * (g - mean(g) - xhat * mean(g * xhat)), written. Also writes the row's mean and
// rstd for layernorm_bwd_params. GPU set: one work-group per row; CPU set: one work-item per
// row, VW lanes at a time.
__kernel void layernorm_bwd(__global float *dy,          // (N, C) written
                            __global float *stats,       // (N, 2) mean, rstd written
                            __global const float *dout,  // (N, C)
                            __global const float *xin,   // (N, C) LayerNorm input
                            __global const float *w,     // (C)
                            const float eps, const int N, const int C) {
#if KSET == KSET_CPU
  const size_t row = get_global_id(0);
  if (row >= (size_t)N) return;
  __global const float *x = xin + row * C;
  __global const float *d = dout + row * C;
  __global float *o = dy + row * C;
  const float mean = row_sum_cpu(x, C) / (float)C;
  floatV vv = 0.0f;
  int c;
  for (c = 0; c + VW <= C; c += VW) {
    const floatV e = loadV(x + c) - mean;
    vv += e * e;
  }
  float v = hsumV(vv);
  for (; c < C; c++) v += (x[c] - mean) * (x[c] - mean);
  const float rstd = 1.0f / sqrt(v / (float)C + eps);
  floatV sgv = 0.0f, sgxv = 0.0f;
  for (c = 0; c + VW <= C; c += VW) {
    const floatV g = loadV(d + c) * loadV(w + c);
    sgv += g;
    sgxv += g * (loadV(x + c) - mean) * rstd;
  }
  float sg = hsumV(sgv), sgx = hsumV(sgxv);
  for (; c < C; c++) {
    const float g = d[c] * w[c];
    sg += g;
    sgx += g * (x[c] - mean) * rstd;
  }
  const float mg = sg / (float)C, mgx = sgx / (float)C;
  for (c = 0; c + VW <= C; c += VW) {
    const floatV xhat = (loadV(x + c) - mean) * rstd;
    const floatV g = loadV(d + c) * loadV(w + c);
    storeV(rstd * (g - mg - xhat * mgx), o + c);
  }
  for (; c < C; c++) {
    const float xhat = (x[c] - mean) * rstd;
    const float g = d[c] * w[c];
    o[c] = rstd * (g - mg - xhat * mgx);
  }
  stats[2 * row] = mean;
  stats[2 * row + 1] = rstd;
#else
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  const int lid = (int)get_local_id(0);
  __global const float *x = xin + row * C;
  __global const float *d = dout + row * C;
  float s = 0.0f;
  for (int c = lid; c < C; c += WG) s += x[c];
  const float mean = wg_sum(s, scratch) / (float)C;
  float v = 0.0f;
  for (int c = lid; c < C; c += WG) v += (x[c] - mean) * (x[c] - mean);
  const float rstd = 1.0f / sqrt(wg_sum(v, scratch) / (float)C + eps);
  float sg = 0.0f, sgx = 0.0f;
  for (int c = lid; c < C; c += WG) {
    const float g = d[c] * w[c];
    sg += g;
    sgx += g * (x[c] - mean) * rstd;
  }
  const float mg = wg_sum(sg, scratch) / (float)C;
  const float mgx = wg_sum(sgx, scratch) / (float)C;
  for (int c = lid; c < C; c += WG) {
    const float xhat = (x[c] - mean) * rstd;
    const float g = d[c] * w[c];
    dy[row * C + c] = rstd * (g - mg - xhat * mgx);
  }
  if (lid == 0) {
    stats[2 * row] = mean;
    stats[2 * row + 1] = rstd;
  }
#endif
}

// Column c of layernorm_bwd_params, one float at a time.
inline void layernorm_bwd_params_col(__global float *dw, __global float *db,
                                     __global const float *dout, __global const float *xin,
                                     __global const float *stats, const int N, const int C,
                                     const int c) {
  float sw = 0.0f, sb = 0.0f;
  for (int n = 0; n < N; n++) {
    const float d = dout[(size_t)n * C + c];
    sw += d * (xin[(size_t)n * C + c] - stats[2 * n]) * stats[2 * n + 1];
    sb += d;
  }
  dw[c] += sw;
  db[c] += sb;
}

// dw[c] += sum_n dout * xhat, db[c] += sum_n dout (accumulated); rows in order (deterministic,
// no atomics). GPU set: one item per column; CPU set: one item per VW columns (loadV along
// the row, so a work-item reads whole cache lines; the same sums in the same order).
__kernel void layernorm_bwd_params(__global float *dw, __global float *db,  // (C), (C)
                                   __global const float *dout,              // (N, C)
                                   __global const float *xin,               // (N, C)
                                   __global const float *stats,             // (N, 2)
                                   const int N, const int C) {
#if KSET == KSET_CPU
  const int c0 = (int)get_global_id(0) * VW;
  if (c0 >= C) return;
  if (c0 + VW <= C) {
    floatV sw = 0.0f, sb = 0.0f;
    for (int n = 0; n < N; n++) {
      const floatV d = loadV(dout + (size_t)n * C + c0);
      sw += d * (loadV(xin + (size_t)n * C + c0) - stats[2 * n]) * stats[2 * n + 1];
      sb += d;
    }
    storeV(loadV(dw + c0) + sw, dw + c0);
    storeV(loadV(db + c0) + sb, db + c0);
    return;
  }
  for (int c = c0; c < C; c++) layernorm_bwd_params_col(dw, db, dout, xin, stats, N, C, c);
#else
  const int c = (int)get_global_id(0);
  if (c >= C) return;
  layernorm_bwd_params_col(dw, db, dout, xin, stats, N, C, c);
#endif
}

// Column c of colsum_bwd, one float at a time.
inline void colsum_bwd_col(__global float *db, __global const float *d, const int N, const int C,
                           const int c) {
  float s = 0.0f;
  for (int n = 0; n < N; n++) s += d[(size_t)n * C + c];
  db[c] += s;
}

// db[c] += sum_n d[n, c] (bias gradients), rows in order. GPU set: one item per column; CPU set:
// one item per VW columns.
__kernel void colsum_bwd(__global float *db, __global const float *d, const int N, const int C) {
#if KSET == KSET_CPU
  const int c0 = (int)get_global_id(0) * VW;
  if (c0 >= C) return;
  if (c0 + VW <= C) {
    floatV s = 0.0f;
    for (int n = 0; n < N; n++) s += loadV(d + (size_t)n * C + c0);
    storeV(loadV(db + c0) + s, db + c0);
    return;
  }
  for (int c = c0; c < C; c++) colsum_bwd_col(db, d, N, C, c);
#else
  const int c = (int)get_global_id(0);
  if (c >= C) return;
  colsum_bwd_col(db, d, N, C, c);
#endif
}

inline float act_grad(float x, int act) {
  if (act == ACT_GELU) {
#if KSET == KSET_CPU
    return gelu_grad_f1(x);
#else
    const float cdf = 0.5f * (1.0f + erf(x * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * exp(-0.5f * x * x);
    return cdf + x * pdf;
#endif
  }
  if (act == ACT_GELU_TANH) {
    const float k = 0.79788456080286536f;
    const float u = k * (x + 0.044715f * x * x * x);
    const float t = tanh(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
  }
  if (act == ACT_RELU) return x > 0.0f ? 1.0f : 0.0f;
  const float t = tanh(x);
  return 1.0f - t * t;
}

// act_grad on VW lanes (CPU set).
inline floatV act_gradV(floatV x, int act) {
  if (act == ACT_GELU) return gelu_grad_fV(x);
  if (act == ACT_GELU_TANH) {
    const float k = 0.79788456080286536f;
    const floatV u = k * (x + 0.044715f * x * x * x);
    const floatV t = tanh(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
  }
  if (act == ACT_RELU) return select((floatV)0.0f, (floatV)1.0f, x > 0.0f);
  const floatV t = tanh(x);
  return 1.0f - t * t;
}

// dx = dout * act'(x + bias), written (dx may equal dout); x is the forward input before bias.
// GPU set: one item per element; CPU set: one item per row, VW lanes at a time.
__kernel void bias_act_bwd(__global float *dx, __global const float *dout,
                           __global const float *x, __global const float *bias, const int act,
                           const int N, const int C) {
#if KSET == KSET_CPU
  const size_t n = get_global_id(0);
  if (n >= (size_t)N) return;
  const size_t o = n * C;
  int c;
  for (c = 0; c + VW <= C; c += VW)
    storeV(loadV(dout + o + c) * act_gradV(loadV(x + o + c) + loadV(bias + c), act), dx + o + c);
  for (; c < C; c++) dx[o + c] = dout[o + c] * act_grad(x[o + c] + bias[c], act);
#else
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  dx[i] = dout[i] * act_grad(x[i] + bias[i % C], act);
#endif
}

// y = tanh(x): dx = dout * (1 - y^2), written.
__kernel void tanh_bwd(__global float *dx, __global const float *dout, __global const float *y,
                       const ulong n) {
  const size_t i = get_global_id(0);
  if (i >= n) return;
  dx[i] = dout[i] * (1.0f - y[i] * y[i]);
}

// ds = scale * p * (dp - sum_j p dp), written (ds may equal dp). GPU set: one work-group per
// row; CPU set: one work-item per row, VW lanes at a time.
__kernel void softmax_bwd(__global float *ds, __global const float *dp,
                          __global const float *p, const float scale, const int rows,
                          const int T) {
#if KSET == KSET_CPU
  const size_t row = get_global_id(0);
  if (row >= (size_t)rows) return;
  __global const float *pr = p + row * T;
  __global const float *dr = dp + row * T;
  __global float *o = ds + row * T;
  floatV sv = 0.0f;
  int j;
  for (j = 0; j + VW <= T; j += VW) sv += loadV(pr + j) * loadV(dr + j);
  float dot = hsumV(sv);
  for (; j < T; j++) dot += pr[j] * dr[j];
  for (j = 0; j + VW <= T; j += VW)
    storeV(scale * loadV(pr + j) * (loadV(dr + j) - dot), o + j);
  for (; j < T; j++) o[j] = scale * pr[j] * (dr[j] - dot);
#else
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  const int lid = (int)get_local_id(0);
  float s = 0.0f;
  for (int j = lid; j < T; j += WG) s += p[row * T + j] * dp[row * T + j];
  const float dot = wg_sum(s, scratch);
  for (int j = lid; j < T; j += WG) {
    const size_t k = row * T + j;
    ds[k] = scale * p[k] * (dp[k] - dot);
  }
#endif
}

// Embedding tables' gradients from dy, the gradient at the embedding LayerNorm's input
// (accumulated, deterministic). Word and position rows: the host sorts the tokens by their id
// (token id, or position id: RoBERTa's and MPNet's positions follow the padding); segment u
// (tokens order[seg[u]..seg[u+1])) all carry row uid[u]. One item per (u, c).
__kernel void embedding_bwd_rows(__global float *dtable,       // (rows, C)
                                 __global const float *dy,     // (B*T, C)
                                 __global const int *order,    // (B*T) tokens by row
                                 __global const int *seg,      // (U+1)
                                 __global const int *uid,      // (U)
                                 const int U, const int C) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)U * C) return;
  const int c = (int)(i % C), u = (int)(i / C);
  float s = 0.0f;
  for (int k = seg[u]; k < seg[u + 1]; k++) s += dy[(size_t)order[k] * C + c];
  dtable[(size_t)uid[u] * C + c] += s;
}

// dtype[tt] += sum of dy over the tokens of type tt. One item per (tt, c).
__kernel void embedding_bwd_type(__global float *dtype,          // (TT, C)
                                 __global const float *dy,       // (N, C)
                                 __global const int *type_ids,   // (N)
                                 const int N, const int TT, const int C) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)TT * C) return;
  const int c = (int)(i % C), tt = (int)(i / C);
  float s = 0.0f;
  for (size_t n = 0; n < (size_t)N; n++)
    if (type_ids[n] == tt) s += dy[n * C + c];
  dtype[(size_t)tt * C + c] += s;
}

// Cross-entropy over logits (B, K) with labels (B) (-100 ignored): loss_b and
// dlogits = scale * (softmax - onehot) / count, written. One item per row; count is the number
// of counted labels (the host knows it).
__kernel void cross_entropy_fwd_bwd(__global float *dlogits, __global float *losses,
                                    __global const float *logits, __global const int *labels,
                                    const int B, const int K, const float scale,
                                    const float count) {
  const int b = (int)get_global_id(0);
  if (b >= B) return;
  __global const float *z = logits + (size_t)b * K;
  __global float *dz = dlogits + (size_t)b * K;
  const int y = labels[b];
  if (y < 0 || y >= K) {
    for (int k = 0; k < K; k++) dz[k] = 0.0f;
    losses[b] = 0.0f;
    return;
  }
  float mx = z[0];
  for (int k = 1; k < K; k++) mx = fmax(mx, z[k]);
  float sum = 0.0f;
  for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
  const float lse = mx + log(sum);
  for (int k = 0; k < K; k++)
    dz[k] = scale * (exp(z[k] - lse) - (k == y ? 1.0f : 0.0f)) / count;
  losses[b] = lse - z[y];
}

// torch.optim.AdamW on one tensor (step t >= 1, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t):
// p *= 1 - lr*wd; m = m + (g - m)(1 - beta1); v = beta2 v + (1 - beta2) g^2;
// p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps). g is multiplied by gscale first (clipping).
// One item per element in both kernel sets: memory-bound (on PoCL the scalar loop streams as fast
// as a vectorised one did in bench/ops_bench).
__kernel void adamw_step(__global float *p, __global float *m, __global float *v,
                         __global const float *g, const float gscale, const float lr,
                         const float beta1, const float beta2, const float eps, const float wd,
                         const float bc1, const float bc2, const ulong off, const ulong n) {
  const size_t j = get_global_id(0);
  if (j >= n) return;
  const size_t i = off + j; // the tensor's elements inside the flat buffers
  const float gi = g[i] * gscale;
  float pi = p[i] * (1.0f - lr * wd);
  const float mi = m[i] + (gi - m[i]) * (1.0f - beta1);
  const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
  pi -= lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
  p[i] = pi;
  m[i] = mi;
  v[i] = vi;
}

// Partial sums of squares for the global gradient norm. GPU set: one work-group per WG*16
// elements; CPU set: one work-item per SUMSQ_CHUNK elements, VW lanes at a time.
__kernel void sumsq_partial(__global float *partial, __global const float *g, const ulong n) {
#if KSET == KSET_CPU
  const size_t base = get_global_id(0) * (size_t)SUMSQ_CHUNK;
  if (base >= n) return;
  const size_t end = min((size_t)(base + SUMSQ_CHUNK), (size_t)n);
  floatV sv = 0.0f;
  size_t i = base;
  for (; i + VW <= end; i += VW) {
    const floatV x = loadV(g + i);
    sv += x * x;
  }
  float s = hsumV(sv);
  for (; i < end; i++) s += g[i] * g[i];
  partial[get_global_id(0)] = s;
#else
  __local float scratch[WG];
  const size_t base = get_group_id(0) * (size_t)WG * 16;
  const int lid = (int)get_local_id(0);
  float s = 0.0f;
  for (int k = 0; k < 16; k++) {
    const size_t i = base + (size_t)k * WG + lid;
    if (i < n) s += g[i] * g[i];
  }
  s = wg_sum(s, scratch);
  if (lid == 0) partial[get_group_id(0)] = s;
#endif
}
