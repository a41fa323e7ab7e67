// out[r, col0 + c] = beta * out[r, col0 + c] + alpha * in[r, c] for an (N, C) input written
// into an (N, out_stride) output: concatenation (beta 0), sum (beta 1) and mean (alpha 1/n) of
// layers. One item per input element.
__kernel void scale_add_fwd(__global float *out,       // (N, out_stride)
                            __global const float *in,  // (N, C)
                            const float alpha, const float beta, const int N, const int C,
                            const int out_stride, const int col0) {
  const size_t i = get_global_id(0);
  if (i >= (size_t)N * C) return;
  const size_t r = i / C;
  const int c = (int)(i % C);
  __global float *o = out + r * out_stride + col0 + c;
  *o = (beta == 0.0f ? 0.0f : beta * *o) + alpha * in[i];
}
