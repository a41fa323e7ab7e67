// Forward helpers of the training step (cl/common.cl and cl/backward.cl first: philox_first).
// The inference kernels fuse what the backward needs to see, so training keeps the LayerNorm
// inputs itself (encoder/forward.h): embedding sum, plain LayerNorm, bias + dropout + residual.
// Twins: src/ref (ref_embedding_pos_fwd, ref_layernorm_fwd, ref_dropout_fwd).
#pragma OPENCL FP_CONTRACT OFF

// xin = (word[ids] + type[type_ids]) + pos[pos_ids], as transformers adds them; TT 0 (no token
// types: DistilBERT, MPNet): word[ids] + pos[pos_ids]. One item per element.
__kernel void embedding_sum_fwd(__global float *xin,           // (B*T, C)
                                __global const int *ids,       // (B*T)
                                __global const int *pos_ids,   // (B*T)
                                __global const int *type_ids,  // (B*T), not read when TT is 0
                                __global const float *wte,     // (V, C)
                                __global const float *wpe,     // (P, C)
                                __global const float *wtt,     // (TT, C)
                                const int N, const int C, const int TT) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  const int c = (int)(i % C);
  const int row = (int)(i / C);
  const float we = wte[(size_t)ids[row] * C + c], pe = wpe[(size_t)pos_ids[row] * C + c];
  xin[i] = TT > 0 ? (we + wtt[(size_t)type_ids[row] * C + c]) + pe : we + pe;
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
    floatV y = loadV(x + o + c) + loadV(bias + c);
    if (p > 0.0f)
      y = select((floatV)0.0f, y * s, dropout_keepV(o + c, p, seed_lo, seed_hi, step, id));
    storeV(has_res ? y + loadV(res + o + c) : y, out + o + c);
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
