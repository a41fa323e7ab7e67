#!/bin/bash
# Proves the kernel tests can fail: each mutation below breaks one kernel (a copy of cl/ loaded
# through BERTCL_KERNEL_DIR), then the test program that covers it must FAIL. Not part of CI
# (minutes: every mutation recompiles the programs); run it after changing a kernel or a test.
# Usage: scripts/kernel-mutations.sh BUILD_DIR [PATTERN]   (PATTERN: run only matching mutations)
set -uo pipefail
build=${1:-build}
only=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BERTCL_TEST_DEVICE=${BERTCL_TEST_DEVICE:-pocl} BERTCL_CACHE_DIR=off
# each line: name | file | text to find (its first occurrence) | replacement | test program
mutations=$(cat <<'EOF'
exp polynomial (CPU set)|common.cl|p = p * r + 5.0000001201e-1f;|p = p * r + 5.01e-1f;|test_ops
gelu small branch P (CPU set)|common.cl|p = p * u + 1.128379107e+0f;|p = p * u + 1.1284e+0f;|test_ops
gelu tail F (CPU set)|common.cl|f = f * w + 8.752598166e-1f;|f = f * w + 8.7527e-1f;|test_ops
gelu exact square dropped (CPU set)|common.cl|*g = exp_##S(-0.5f * xx) * (1.0f - 0.5f * xl);|*g = exp_##S(-0.5f * xx);|test_ops
gelu derivative's density (CPU set)|common.cl|return cdf + x * (0.39894228040143268f * g);|return cdf + x * (0.3989f * g);|test_train_ops
layernorm_row_cpu variance|common.cl|const float rstd = 1.0f / sqrt(v / (float)C + eps);|const float rstd = 1.0f / sqrt(v / (float)(C + 1) + eps);|test_ops
layernorm_row_cpu scalar tail|common.cl|for (; c < C; c++) out[c] = (x[c] - mean) * rstd * w[c] + b[c];|for (; c < C - 1; c++) out[c] = (x[c] - mean) * rstd * w[c] + b[c];|test_ops
row_sum_cpu tail|common.cl|for (; c < C; c++) s += x[c];|for (; c < C; c++) s += 2 * x[c];|test_train_ops
bias_residual_layernorm_fwd residual (CPU set)|layernorm.cl|vloadV(0, rr + c);|vloadV(0, xr + c);|test_ops
bias_residual_layernorm_fwd (GPU set)|layernorm.cl|o[c] = xr[c] + bias[c] + rr[c];|o[c] = xr[c] + rr[c];|test_ops
embedding_fwd type row (CPU set)|embedding.cl|(vloadV(0, we + c) + vloadV(0, te + c))|(vloadV(0, we + c) + vloadV(0, pe + c))|test_ops
embedding_fwd position ids|embedding.cl|int t = pos_ids[row];|int t = pos_ids[row] + 1;|test_ops
embedding_fwd without token types (CPU set)|embedding.cl|const floatV y = vloadV(0, we + c) + vloadV(0, pe + c);|const floatV y = vloadV(0, we + c) + vloadV(0, pe + c) + vloadV(0, te + c);|test_ops
softmax_fwd position bias (CPU set)|attention.cl|vloadV(0, s + j) * scale + vloadV(0, pb + j)|vloadV(0, s + j) * scale + vloadV(0, pb + j + 1)|test_ops
softmax_fwd position bias (GPU set)|attention.cl|if (has_bias) x += pb[j];|if (has_bias) x += pb[0];|test_ops
softmax_fwd mask (CPU set)|attention.cl|vloadV(0, m + j) != 0|vloadV(0, m + j) == 0|test_ops
softmax_fwd tail (CPU set)|attention.cl|for (; j < T; j++) s[j] *= inv;|for (; j < T - 1; j++) s[j] *= inv;|test_ops
softmax_fwd (GPU set)|attention.cl|for (int j = lid; j < T; j += WG) s[j] *= inv;|for (int j = lid; j < T; j += WG) s[j] *= inv * 1.001f;|test_ops
l2norm_fwd (CPU set)|pooling.cl|sv += v * v;|sv += v;|test_ops
bias_act_fwd tail (CPU set)|activation.cl|for (; c < C; c++) r[c] = act_apply(r[c] + bias[c], act);|for (; c < C; c++) r[c] = act_apply(r[c], act);|test_ops
philox_firstV multiplier|backward.cl|p1 = convert_ulongV(c2) * 0xCD9E8D57ul;|p1 = convert_ulongV(c2) * 0xCD9E8D59ul;|test_train_ops
dropout_keepV threshold bits|backward.cl|return convert_floatV(r >> 8)|return convert_floatV(r >> 9)|test_train_ops
dropout_fwd scalar tail (CPU set)|backward.cl|out[i] = u >= p ? x[i] * s : 0.0f;|out[i] = u > p ? x[i] : 0.0f;|test_train_ops
layernorm_bwd dx (CPU set)|backward.cl|vstoreV(rstd * (g - mg - xhat * mgx), 0, o + c);|vstoreV(rstd * (g - mg + xhat * mgx), 0, o + c);|test_train_ops
layernorm_bwd_params db (CPU set)|backward.cl|sb += d;|sb += 2.0f * d;|test_train_ops
layernorm_bwd_params accumulation (CPU set)|backward.cl|vstoreV(vloadV(0, dw + c0) + sw, 0, dw + c0);|vstoreV(sw, 0, dw + c0);|test_train_ops
colsum_bwd (CPU set)|backward.cl|vstoreV(vloadV(0, db + c0) + s, 0, db + c0);|vstoreV(s, 0, db + c0);|test_train_ops
softmax_bwd (CPU set)|backward.cl|(vloadV(0, dr + j) - dot)|(vloadV(0, dr + j) + dot)|test_train_ops
sumsq_partial (CPU set)|backward.cl|sv += x * x;|sv += x;|test_train_ops
bias_act_bwd tail (CPU set)|backward.cl|for (; c < C; c++) dx[o + c] = dout[o + c] * act_grad(x[o + c] + bias[c], act);|for (; c < C; c++) dx[o + c] = act_grad(x[o + c] + bias[c], act);|test_train_ops
bias_dropout_residual_fwd residual (CPU set)|trainer.cl|vstoreV(has_res ? y + vloadV(0, res + o + c) : y, 0, out + o + c);|vstoreV(y, 0, out + o + c);|test_train_ops
layernorm_fwd (CPU set)|trainer.cl|layernorm_row_cpu(out + row * C, x + row * C, w, b, eps, C, row_sum_cpu(x + row * C, C));|layernorm_row_cpu(out + row * C, x + row * C, w, b, eps, C, 0.0f);|test_train_ops
EOF
)
caught=0
missed=0
while IFS='|' read -r name file find repl exe; do
  [ -z "$name" ] && continue
  [ -n "$only" ] && [[ "$name" != *$only* ]] && continue
  rm -rf "$tmp/cl"
  cp -r "$root/cl" "$tmp/cl"
  if ! python3 - "$tmp/cl/$file" "$find" "$repl" <<'PY'
import sys
path, find, repl = sys.argv[1:4]
s = open(path).read()
if find not in s:
    sys.exit(1)
open(path, "w").write(s.replace(find, repl, 1))
PY
  then
    echo "kernel-mutations: '$name': text not found in cl/$file (update this script)" >&2
    missed=$((missed + 1))
    continue
  fi
  if BERTCL_KERNEL_DIR="$tmp/cl" "$build/$exe" >"$tmp/log" 2>&1; then
    echo "MISSED  $name ($exe passed)"
    missed=$((missed + 1))
  else
    first=$( (grep -m1 "MISMATCH" "$tmp/log" || grep -m1 -A1 "ERROR \]" "$tmp/log" | tr '\n' ' ') |
      cut -c1-150)
    echo "caught  $name: $first"
    caught=$((caught + 1))
  fi
done <<< "$mutations"
echo "kernel-mutations: $caught caught, $missed missed"
[ "$missed" -eq 0 ]
