// Attention around CLBlast's strided-batched GEMMs:
//   qkv (B*T, 3C) [+ bias]  --split_heads-->  q, k, v each (B, NH, T, HS)
//   scores = q k^T (GEMM)   --softmax-->      probs (B, NH, T, T)
//   ctx = probs v (GEMM)    --merge_heads-->  (B*T, C)

// One item per element of q/k/v; adds the projection bias on the way.
__kernel void split_heads_fwd(__global float *q,           // (B, NH, T, HS)
                              __global float *k,           // (B, NH, T, HS)
                              __global float *v,           // (B, NH, T, HS)
                              __global const float *qkv,   // (B*T, 3C)
                              __global const float *bias,  // (3C)
                              const int B, const int T, const int C, const int NH) {
  const size_t i = get_global_id(0);
  const int HS = C / NH;
  if (i >= (size_t)B * T * C) return;
  const int d = (int)(i % HS);
  const int t = (int)((i / HS) % T);
  const int h = (int)((i / ((size_t)HS * T)) % NH);
  const int b = (int)(i / ((size_t)HS * T * NH));
  const size_t src = ((size_t)b * T + t) * 3 * C + (size_t)h * HS + d;
  q[i] = qkv[src] + bias[h * HS + d];
  k[i] = qkv[src + C] + bias[C + h * HS + d];
  v[i] = qkv[src + 2 * C] + bias[2 * C + h * HS + d];
}

// In place over each row of (B, NH, T, T): s = s*scale + (mask[b,j] ? 0 : -FLT_MAX), softmax
// over j, as transformers' eager attention with its additive mask (a fully masked row comes out
// uniform, never NaN). GPU set: one work-group per row; CPU set: one work-item per row, VW lanes
// at a time (rows = B*NH*T).
// With has_bias (MPNet): s * scale + bias[h, i, j] before the mask, bias (NH, T, T) shared by
// the batch (rel_position_bias_fwd); without, bias is not read.
__kernel void softmax_fwd(__global float *scores,      // (B, NH, T, T)
                          __global const int *mask,    // (B, T)
                          __global const float *bias,  // (NH, T, T)
                          const float scale, const int rows, const int NH, const int T,
                          const int has_bias) {
#if KSET == KSET_CPU
  const size_t row = get_global_id(0);
  if (row >= (size_t)rows) return;
  const int b = (int)(row / ((size_t)NH * T));
  __global float *s = scores + row * T;
  __global const int *m = mask + (size_t)b * T;
  __global const float *pb = bias + (row % ((size_t)NH * T)) * T; // row (h, i) of the bias
  floatV mxv = -INFINITY;
  int j;
  if (has_bias) {
    for (j = 0; j + VW <= T; j += VW) {
      const floatV x = loadV(s + j) * scale + loadV(pb + j);
      const floatV y = select(x + -FLT_MAX, x, loadVi(m + j) != 0);
      storeV(y, s + j);
      mxv = fmax(mxv, y);
    }
  } else {
    for (j = 0; j + VW <= T; j += VW) {
      const floatV x = loadV(s + j) * scale;
      const floatV y = select(x + -FLT_MAX, x, loadVi(m + j) != 0);
      storeV(y, s + j);
      mxv = fmax(mxv, y);
    }
  }
  float mx = hmaxV(mxv);
  for (; j < T; j++) {
    float x = s[j] * scale;
    if (has_bias) x = x + pb[j];
    if (!m[j]) x = x + -FLT_MAX;
    s[j] = x;
    mx = fmax(mx, x);
  }
  floatV sumv = 0.0f;
  for (j = 0; j + VW <= T; j += VW) {
    const floatV e = exp_fV(loadV(s + j) - mx);
    storeV(e, s + j);
    sumv += e;
  }
  float sum = hsumV(sumv);
  for (; j < T; j++) {
    const float e = exp_f1(s[j] - mx);
    s[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
  for (j = 0; j + VW <= T; j += VW) storeV(loadV(s + j) * inv, s + j);
  for (; j < T; j++) s[j] *= inv;
#else
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  const int lid = (int)get_local_id(0);
  const int b = (int)(row / ((size_t)NH * T));
  __global float *s = scores + row * T;
  __global const int *m = mask + (size_t)b * T;
  __global const float *pb = bias + (row % ((size_t)NH * T)) * T; // row (h, i) of the bias
  float mx = -INFINITY;
  for (int j = lid; j < T; j += WG) {
    float x = s[j] * scale;
    if (has_bias) x += pb[j];
    if (!m[j]) x = x + -FLT_MAX;
    s[j] = x;
    mx = fmax(mx, x);
  }
  mx = wg_max(mx, scratch);
  float sum = 0.0f;
  for (int j = lid; j < T; j += WG) {
    const float e = exp(s[j] - mx);
    s[j] = e;
    sum += e;
  }
  sum = wg_sum(sum, scratch);
  const float inv = 1.0f / sum;
  for (int j = lid; j < T; j += WG) s[j] *= inv;
#endif
}

// (B, NH, T, HS) -> (B*T, C); one item per element of the output.
__kernel void merge_heads_fwd(__global float *out,        // (B*T, C)
                              __global const float *ctx,  // (B, NH, T, HS)
                              const int B, const int T, const int C, const int NH) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)B * T * C) return;
  const int HS = C / NH;
  const int c = (int)(i % C);
  const int t = (int)((i / C) % T);
  const int b = (int)(i / ((size_t)C * T));
  const int h = c / HS, d = c % HS;
  out[i] = ctx[(((size_t)b * NH + h) * T + t) * HS + d];
}
