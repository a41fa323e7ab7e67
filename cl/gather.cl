// Token and word features, read back for real tokens only.

// out[row_off[b] + t, col0 + c] = beta * out[...] + alpha * h[b*T + t, c] for t < row_off[b+1] -
// row_off[b] (right-padded rows). One item per element of h; padding items do nothing.
__kernel void gather_tokens_fwd(__global float *out,          // (sum len, out_stride)
                                __global const float *h,      // (B*T, C)
                                __global const int *row_off,  // (B+1) prefix sums of lengths
                                const float alpha, const float beta, const int B, const int T,
                                const int C, const int out_stride, const int col0) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)B * T * C) return;
  const int c = (int)(i % C);
  const int t = (int)((i / C) % T);
  const int b = (int)(i / ((size_t)C * T));
  if (t >= row_off[b + 1] - row_off[b]) return;
  __global float *o = out + (size_t)(row_off[b] + t) * out_stride + col0 + c;
  *o = (beta == 0.0f ? 0.0f : beta * *o) + alpha * h[i];
}

// Word vectors from WordPiece word ids: output row r is word word_w[r] of sequence word_b[r];
// mode 1 takes its first subword, mode 2 the mean of its subwords. One item per (r, c).
__kernel void word_pool_fwd(__global float *out,            // (nwords, out_stride)
                            __global const float *h,        // (B*T, C)
                            __global const int *word_ids,   // (B, T), -1 = no word
                            __global const int *word_b,     // (nwords)
                            __global const int *word_w,     // (nwords)
                            const int mode, const float alpha, const float beta,
                            const int nwords, const int T, const int C, const int out_stride,
                            const int col0) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)nwords * C) return;
  const int c = (int)(i % C);
  const int r = (int)(i / C);
  const int b = word_b[r], w = word_w[r];
  float s = 0.0f, n = 0.0f;
  for (int t = 0; t < T; t++) {
    if (word_ids[(size_t)b * T + t] != w) continue;
    s += h[((size_t)b * T + t) * C + c];
    n += 1.0f;
    if (mode == 1) break;
  }
  const float v = n > 0.0f ? s / n : 0.0f;
  __global float *o = out + (size_t)r * out_stride + col0 + c;
  *o = (beta == 0.0f ? 0.0f : beta * *o) + alpha * v;
}

// out[i] = in[i] as an IEEE half, rounded to nearest even (what bertcl's host writer does for
// --dtype f16), so a job reads back half the bytes. vstore_half needs no cl_khr_fp16.
__kernel void to_half_fwd(__global half *out, __global const float *in, const int n) {
  const int i = (int)get_global_id(0);
  if (i < n) vstore_half_rte(in[i], i, out);
}
