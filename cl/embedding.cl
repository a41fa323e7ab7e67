// out = LayerNorm((word_emb[ids] + type_emb[type_ids]) + pos_emb[pos_ids]). TT 0: the family
// has no token types (DistilBERT, MPNet): word + position only.
// pos_ids come from position_ids_fwd (cl/position.cl): t, or RoBERTa's and MPNet's count.
// The word embedding may be split in two buffers at row `split` (a large vocabulary can exceed
// CL_DEVICE_MAX_MEM_ALLOC_SIZE): rows < split come from wte0, the rest from wte1.
// Ids outside [0, V) read row 0, positions outside [0, P) row 0, instead of memory they do not
// own (the host validates ids).
// GPU set: one work-group per token; CPU set: one work-item per token (rows = B*T).
__kernel void embedding_fwd(__global float *out,            // (B*T, C)
                            __global const int *ids,         // (B*T)
                            __global const int *pos_ids,     // (B*T)
                            __global const int *type_ids,    // (B*T), not read when TT is 0
                            __global const float *wte0,      // (split, C)
                            __global const float *wte1,      // (V - split, C)
                            __global const float *wpe,       // (P, C)
                            __global const float *wtt,       // (TT, C)
                            __global const float *ln_w,      // (C)
                            __global const float *ln_b,      // (C)
                            const float eps, const int rows, const int C, const int V,
                            const int split, const int P, const int TT) {
#if KSET == KSET_CPU
  const int row = (int)get_global_id(0);
  if (row >= rows) return;
#else
  __local float scratch[WG];
  const int row = (int)get_group_id(0);
  const int lid = (int)get_local_id(0);
#endif
  int t = pos_ids[row];
  if (t < 0 || t >= P) t = 0;
  int id = ids[row];
  if (id < 0 || id >= V) id = 0;
  int tt = TT > 0 ? type_ids[row] : 0;
  if (tt < 0 || tt >= TT) tt = 0;
  __global const float *we = id < split ? wte0 + (size_t)id * C : wte1 + (size_t)(id - split) * C;
  __global const float *pe = wpe + (size_t)t * C;
  __global const float *te = wtt + (size_t)tt * C;
  __global float *o = out + (size_t)row * C;
#if KSET == KSET_CPU
  floatV sv = 0.0f;
  int c;
  if (TT > 0) {
    for (c = 0; c + VW <= C; c += VW) {
      const floatV y = (loadV(we + c) + loadV(te + c)) + loadV(pe + c);
      storeV(y, o + c);
      sv += y;
    }
  } else {
    for (c = 0; c + VW <= C; c += VW) {
      const floatV y = loadV(we + c) + loadV(pe + c);
      storeV(y, o + c);
      sv += y;
    }
  }
  float s = hsumV(sv);
  for (; c < C; c++) {
    const float y = TT > 0 ? (we[c] + te[c]) + pe[c] : we[c] + pe[c];
    o[c] = y;
    s += y;
  }
  layernorm_row_cpu(o, o, ln_w, ln_b, eps, C, s);
#else
  if (TT > 0)
    for (int c = lid; c < C; c += WG) o[c] = (we[c] + te[c]) + pe[c];
  else
    for (int c = lid; c < C; c += WG) o[c] = we[c] + pe[c];
  barrier(CLK_GLOBAL_MEM_FENCE);
  layernorm_row(o, o, ln_w, ln_b, eps, C, scratch);
#endif
}
