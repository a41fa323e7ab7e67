// Positions of the encoder families (src/model/family.h): position ids from the token ids, and
// MPNet's relative position bias. Twins: ref_position_ids, ref_rel_position_bias_fwd (src/ref).
#ifndef REL_BUCKETS
#define REL_BUCKETS 32  // BC_REL_BUCKETS; the buckets reach distance 128 (BC_REL_MAX_DISTANCE)
#endif

// pos (B*T) from ids (B*T); one work-item per row, a scan over its T tokens.
// padded 0: pos = t (BERT, DistilBERT). padded 1 (RoBERTa, MPNet; transformers'
// create_position_ids_from_input_ids): a token whose id is not padding_idx gets padding_idx +
// the count of such tokens up to it, a padding id keeps padding_idx.
__kernel void position_ids_fwd(__global int *pos,        // (B*T)
                               __global const int *ids,  // (B*T)
                               const int B, const int T, const int padded,
                               const int padding_idx) {
  const int b = (int)get_global_id(0);
  if (b >= B) return;
  __global int *p = pos + (size_t)b * T;
  __global const int *id = ids + (size_t)b * T;
  int count = 0;
  for (int t = 0; t < T; t++) {
    if (!padded) {
      p[t] = t;
    } else {
      const int real = id[t] != padding_idx;
      count += real;
      p[t] = real ? padding_idx + count : padding_idx;
    }
  }
}

// MPNet's bucket of rel = key position - query position (transformers'
// MPNetEncoder.relative_position_bucket with 32 buckets and distance 128), in integers:
// half the buckets for keys after the query, distances below 8 exact, then
// 8 + floor(2 log2(n / 8)) up to 15, i.e. the largest k < 8 with n^2 >= 64 * 2^k.
inline int rel_position_bucket(int rel) {
  const int side = REL_BUCKETS / 2, exact = side / 2;  // ("half" is a type in OpenCL C)
  long n = -(long)rel;
  int ret = n < 0 ? side : 0;
  if (n < 0) n = -n;
  if (n < exact) return ret + (int)n;
  int k = 0;
  while (k + 1 < side - exact && n * n >= ((long)exact * exact << (k + 1))) k++;
  return ret + exact + k;
}

// bias[h, i, j] = table[bucket(j - i), h]: shared by every layer and sequence; one item per
// element of the output.
__kernel void rel_position_bias_fwd(__global float *bias,         // (NH, T, T)
                                    __global const float *table,  // (NB, NH)
                                    const int NH, const int T) {
  const size_t e = get_global_id(0);
  if (e >= (size_t)NH * T * T) return;
  const int j = (int)(e % T);
  const int i = (int)((e / T) % T);
  const int h = (int)(e / ((size_t)T * T));
  bias[e] = table[(size_t)rel_position_bucket(j - i) * NH + h];
}

// Gradient of the bias table, in two passes (every bucket is a run of diagonals d = j - i):
// 1. ddiag[h, d + T - 1] = sum over b and i of dz[b, h, i, i + d], WRITTEN; one item per (h, d).
__kernel void rel_position_bias_bwd_diag(__global float *ddiag,     // (NH, 2T-1)
                                         __global const float *dz,  // (B, NH, T, T)
                                         const int B, const int NH, const int T) {
  const size_t e = get_global_id(0);
  const int D = 2 * T - 1;
  if (e >= (size_t)NH * D) return;
  const int h = (int)(e / D), d = (int)(e % D) - (T - 1);
  float s = 0.0f;
  for (int b = 0; b < B; b++) {
    __global const float *z = dz + ((size_t)b * NH + h) * T * T;
    for (int i = d < 0 ? -d : 0; i < T && i + d < T; i++) s += z[(size_t)i * T + i + d];
  }
  ddiag[e] = s;
}

// 2. dtable[k, h] += sum of ddiag[h, d] over the diagonals d in bucket k; one item per (k, h).
__kernel void rel_position_bias_bwd_table(__global float *dtable,        // (NB, NH)
                                          __global const float *ddiag,   // (NH, 2T-1)
                                          const int NH, const int T) {
  const size_t e = get_global_id(0);
  if (e >= (size_t)REL_BUCKETS * NH) return;
  const int k = (int)(e / NH), h = (int)(e % NH);
  float s = 0.0f;
  for (int d = -(T - 1); d <= T - 1; d++)
    if (rel_position_bucket(d) == k) s += ddiag[(size_t)h * (2 * T - 1) + d + T - 1];
  dtable[e] += s;
}
