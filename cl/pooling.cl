// Sentence pooling over the attention mask, as sentence-transformers computes it; one item per
// (b, c). mode: 1 = CLS (token 0), 2 = mean (sum / max(count, 1e-9)), 4 = max (masked -> -1e9).
__kernel void pool_fwd(__global float *out,        // (B, out_stride), written at column col0
                       __global const float *h,    // (B*T, C)
                       __global const int *mask,   // (B, T)
                       const int mode, const int B, const int T, const int C,
                       const int out_stride, const int col0) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)B * C) return;
  const int c = (int)(i % C);
  const int b = (int)(i / C);
  __global const float *hb = h + (size_t)b * T * C + c;
  __global const int *m = mask + (size_t)b * T;
  float r;
  if (mode == 1) {
    r = hb[0];
  } else if (mode == 2) {
    float s = 0.0f, n = 0.0f;
    for (int t = 0; t < T; t++)
      if (m[t]) {
        s += hb[(size_t)t * C];
        n += 1.0f;
      }
    r = s / fmax(n, 1e-9f);
  } else {
    r = -INFINITY;
    for (int t = 0; t < T; t++) r = fmax(r, m[t] ? hb[(size_t)t * C] : -1e9f);
  }
  out[(size_t)b * out_stride + col0 + c] = r;
}

// x = x / max(||x||_2, 1e-12) per row, in place. GPU set: one work-group per row; CPU set: one
// work-item per row (rows = N).
__kernel void l2norm_fwd(__global float *x, const int N, const int C) {
#if KSET == KSET_CPU
  const size_t row = get_global_id(0);
  if (row >= (size_t)N) return;
  __global float *r = x + row * C;
  floatV sv = 0.0f;
  int c;
  for (c = 0; c + VW <= C; c += VW) {
    const floatV v = vloadV(0, r + c);
    sv += v * v;
  }
  float s = hsumV(sv);
  for (; c < C; c++) s += r[c] * r[c];
  const float inv = 1.0f / fmax(sqrt(s), 1e-12f);
  for (c = 0; c + VW <= C; c += VW) vstoreV(vloadV(0, r + c) * inv, 0, r + c);
  for (; c < C; c++) r[c] *= inv;
#else
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  const int lid = (int)get_local_id(0);
  __global float *r = x + row * C;
  float s = 0.0f;
  for (int c = lid; c < C; c += WG) s += r[c] * r[c];
  const float inv = 1.0f / fmax(sqrt(wg_sum(s, scratch)), 1e-12f);
  for (int c = lid; c < C; c += WG) r[c] *= inv;
#endif
}

// Gathers token 0 of each sequence: out (B, C) = h[b*T, :] (the pooler's input).
__kernel void gather_cls_fwd(__global float *out, __global const float *h, const int B,
                             const int T, const int C) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)B * C) return;
  const int c = (int)(i % C), b = (int)(i / C);
  out[i] = h[(size_t)b * T * C + c];
}
