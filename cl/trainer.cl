// Forward helpers of the training step (cl/common.cl and cl/backward.cl first: philox_first).
// The inference kernels fuse what the backward needs to see, so training keeps the LayerNorm
// inputs itself: embedding sum, plain LayerNorm, bias + dropout + residual, and the head layout
// conversions of the attention backward. Twins: src/ref/ref_cls.c (ref_cls_fwd_bwd).
#pragma OPENCL FP_CONTRACT OFF

// xin = (word[ids] + type[type_ids]) + pos[t], as transformers adds them; one item per element.
__kernel void embedding_sum_fwd(__global float *xin,           // (B*T, C)
                                __global const int *ids,       // (B*T)
                                __global const int *type_ids,  // (B*T)
                                __global const float *wte,     // (V, C)
                                __global const float *wpe,     // (P, C)
                                __global const float *wtt,     // (TT, C)
                                const int N, const int T, const int C) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  const int c = (int)(i % C);
  const int row = (int)(i / C);
  const int t = row % T;
  xin[i] = (wte[(size_t)ids[row] * C + c] + wtt[(size_t)type_ids[row] * C + c]) +
           wpe[(size_t)t * C + c];
}

// out = LayerNorm(x) per row. GPU set: one work-group per row; CPU set: one work-item per row.
__kernel void layernorm_fwd(__global float *out,          // (N, C)
                            __global const float *x,      // (N, C)
                            __global const float *w,      // (C)
                            __global const float *b,      // (C)
                            const float eps, const int N, const int C) {
#if KSET == KSET_CPU
  const size_t row = get_global_id(0);
  if (row >= (size_t)N) return;
  layernorm_row_cpu(out + row * C, x + row * C, w, b, eps, C, row_sum_cpu(x + row * C, C));
#else
  __local float scratch[WG];
  const size_t row = get_group_id(0);
  layernorm_row(out + row * C, x + row * C, w, b, eps, C, scratch);
#endif
}

// out = dropout(x + bias) (+ res when has_res): the LayerNorm input of a post-LN block
// (dropout site (seed, step, id), element i, as dropout_fwd). out may equal x. GPU set: one item
// per element; CPU set: one item per row, VW lanes at a time.
__kernel void bias_dropout_residual_fwd(__global float *out,         // (N, C)
                                        __global const float *x,     // (N, C)
                                        __global const float *bias,  // (C)
                                        __global const float *res,   // (N, C) or unused
                                        const int has_res, const float p, const uint seed_lo,
                                        const uint seed_hi, const uint step, const uint id,
                                        const int N, const int C) {
#if KSET == KSET_CPU
  const size_t n = get_global_id(0);
  if (n >= (size_t)N) return;
  const size_t o = n * C;
  const float s = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
  int c;
  for (c = 0; c + VW <= C; c += VW) {
    floatV y = vloadV(0, x + o + c) + vloadV(0, bias + c);
    if (p > 0.0f)
      y = select((floatV)0.0f, y * s, dropout_keepV(o + c, p, seed_lo, seed_hi, step, id));
    vstoreV(has_res ? y + vloadV(0, res + o + c) : y, 0, out + o + c);
  }
  for (; c < C; c++) {
    const size_t i = o + c;
    float y = x[i] + bias[c];
    if (p > 0.0f) {
      const uint r = philox_first((uint)i, (uint)((ulong)i >> 32), id, step, seed_lo, seed_hi);
      y = (float)(r >> 8) * (1.0f / 16777216.0f) >= p ? y * s : 0.0f;
    }
    out[i] = has_res ? y + res[i] : y;
  }
#else
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  float y = x[i] + bias[i % C];
  if (p > 0.0f) {
    const uint r = philox_first((uint)i, (uint)((ulong)i >> 32), id, step, seed_lo, seed_hi);
    const float u = (float)(r >> 8) * (1.0f / 16777216.0f);
    const float s = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    y = u >= p ? y * s : 0.0f;
  }
  out[i] = has_res ? y + res[i] : y;
#endif
}

// (B*T, C) -> (B, NH, T, HS): the inverse of merge_heads_fwd (gradient of the context).
__kernel void split_heads_one(__global float *out,       // (B, NH, T, HS)
                              __global const float *x,   // (B*T, C)
                              const int B, const int T, const int C, const int NH) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)B * T * C) return;
  const int HS = C / NH;
  const int d = (int)(i % HS);
  const int t = (int)((i / HS) % T);
  const int h = (int)((i / ((size_t)HS * T)) % NH);
  const int b = (int)(i / ((size_t)HS * T * NH));
  out[i] = x[((size_t)b * T + t) * C + (size_t)h * HS + d];
}

// dq, dk, dv (B, NH, T, HS) -> dqkv (B*T, 3C): the backward of split_heads_fwd.
__kernel void split_heads_bwd(__global float *dqkv,       // (B*T, 3C)
                              __global const float *dq,   // (B, NH, T, HS)
                              __global const float *dk,
                              __global const float *dv,
                              const int B, const int T, const int C, const int NH) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)B * T * C) return;
  const int HS = C / NH;
  const int d = (int)(i % HS);
  const int t = (int)((i / HS) % T);
  const int h = (int)((i / ((size_t)HS * T)) % NH);
  const int b = (int)(i / ((size_t)HS * T * NH));
  const size_t dst = ((size_t)b * T + t) * 3 * C + (size_t)h * HS + d;
  dqkv[dst] = dq[i];
  dqkv[dst + C] = dk[i];
  dqkv[dst + 2 * C] = dv[i];
}
