#!/bin/bash
# Issue 13's acceptance on CPU devices, every figure measured in this one run:
#   1. rows/s of the whole process, warm caches (one untimed run first): `bertcl extract`
#      (all-MiniLM-L6-v2, its pooling: mean + normalize) of the first N SST-2 training sentences
#      on each CPU OpenCL device (PoCL; Intel's CPU runtime when its env.sh exists) next to
#      sentence-transformers `encode` (PyTorch CPU, torch threads = cores, batch 32), also the
#      whole process (interpreter start, imports, model load, encode);
#   2. the encoder's six products (MiniLM, B=32, T=128): `bertcl bench` (device time of each
#      product on the host BLAS backend) next to numpy's matmul (its own OpenBLAS, threads =
#      cores) on the same shapes and transposes;
#   3. one fine-tuning step (MiniLM, B=16, T=128, dropout 0.1, AdamW, clipping): `bertcl bench
#      --finetune 16x128` next to PyTorch (bench/torch_bert.py, the same step).
# Targets (issue 13): extract >= 1.0x sentence-transformers; each product >= 0.8x numpy; the
# step >= 0.7x PyTorch. Wall-clock figures on a shared machine are noisy: run it on a quiet one.
#
#   bench/cpu_vs_torch.sh [BERTCL_BIN] [MODEL_DIR] [SST2_TRAIN_TSV] [N]
#   env: REPEAT (timed runs, default 3), INTEL_OCL_ENV (default /work/opt/intel-ocl/env.sh),
#        GEMM (bertcl's --gemm, default auto), PERF=1 (perf record of the PoCL extract: top lines)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${1:-$ROOT/build/bertcl}
MODEL=${2:-$ROOT/models/all-MiniLM-L6-v2}
DATA=${3:-/work/shared/data/sst2/train.tsv}
N=${4:-1000}
REPEAT=${REPEAT:-3}
GEMM=${GEMM:-auto}
INTEL_OCL_ENV=${INTEL_OCL_ENV:-/work/opt/intel-ocl/env.sh}
CORES=$(python3 -c "import os; print(len(os.sched_getaffinity(0)))")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
awk -F'\t' -v n="$N" 'NR > 1 && NR <= n + 1 { print $1 }' "$DATA" > "$TMP/in.txt"
echo "cpu_vs_torch: $(wc -l < "$TMP/in.txt") sentences, $CORES cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

wall() { # seconds of one whole command
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null 2> "$TMP/last.err" || { cat "$TMP/last.err" >&2; return 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}
median() { python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

# ---- 1. extraction, whole process -----------------------------------------------------------
declare -A RPS
extract_rows() { # label, device selector, [env file]
  local label=$1 dev=$2 envf=${3:-} ts=() t
  local cmd=("$BIN" extract -m "$MODEL" -i "$TMP/in.txt" -o "$TMP/$label.npy" --format npy
             --device "$dev" --gemm "$GEMM" --batch-size 32 --quiet)
  if [ -n "$envf" ]; then cmd=(bash -c "source '$envf'; exec \"\$@\"" _ "${cmd[@]}"); fi
  wall "${cmd[@]}" > /dev/null # warm caches (kernels, file cache)
  for _ in $(seq "$REPEAT"); do ts+=("$(wall "${cmd[@]}")"); done
  t=$(median "${ts[@]}")
  RPS[$label]=$(python3 -c "print(f'{$N / $t:.1f}')")
  echo "bertcl extract on $label (--gemm $GEMM): ${ts[*]} s -> ${RPS[$label]} rows/s"
}
extract_rows pocl pocl
INTEL_DEV=""
if [ -f "$INTEL_OCL_ENV" ]; then
  INTEL_DEV=$(bash -c "source '$INTEL_OCL_ENV'; '$BIN' devices --json" | python3 -c "
import json, sys
for d in json.load(sys.stdin):
    if 'Intel' in d['platform'] and 'Portable' not in d['platform']:
        print(d['index']); break")
  [ -n "$INTEL_DEV" ] && extract_rows intel "$INTEL_DEV" "$INTEL_OCL_ENV"
fi
cat > "$TMP/st.py" <<'PY'
import sys, torch
torch.set_num_threads(int(sys.argv[3]))
from sentence_transformers import SentenceTransformer
m = SentenceTransformer(sys.argv[1], device="cpu")
texts = [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8")]
m.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
PY
wall python3 "$TMP/st.py" "$MODEL" "$TMP/in.txt" "$CORES" > /dev/null
ts=()
for _ in $(seq "$REPEAT"); do ts+=("$(wall python3 "$TMP/st.py" "$MODEL" "$TMP/in.txt" "$CORES")"); done
ST_RPS=$(python3 -c "print(f'{$N / $(median "${ts[@]}"):.1f}')")
echo "sentence-transformers encode (torch threads $CORES, batch 32): ${ts[*]} s -> $ST_RPS rows/s"

# ---- 2 and 3. products and the fine-tuning step --------------------------------------------
"$BIN" bench --device pocl --gemm "$GEMM" --config minilm --batch 32 --seq 128 --warmup 2 \
  --repeat 10 --bw-mib 4 --finetune 16x128 --json "$TMP/bench.json" > "$TMP/bench.txt"
OPENBLAS_NUM_THREADS=$CORES python3 - "$TMP/bench.json" > "$TMP/numpy.json" <<'PY'
import json, statistics, sys, time
import numpy as np
rep = json.load(open(sys.argv[1]))
run = rep["devices"][0]["runs"][0]
rng = np.random.default_rng(0)
out = []
for e in run["gemm"]:
    m, n, k, b = e["m"], e["n"], e["k"], e["batch_count"]
    A = rng.standard_normal((b, k, m) if e["trans_a"] else (b, m, k), dtype=np.float32)
    B = rng.standard_normal((b, n, k) if e["trans_b"] else (b, k, n), dtype=np.float32)
    a = A.transpose(0, 2, 1) if e["trans_a"] else A
    bb = B.transpose(0, 2, 1) if e["trans_b"] else B
    C = np.empty((b, m, n), dtype=np.float32)
    def prod():  # one 2-D matmul per product: numpy's stacked matmul of transposed views
        for i in range(b):  # leaves BLAS for a slow loop, so each product calls sgemm itself
            np.matmul(a[i], bb[i], out=C[i])
    for _ in range(3):
        prod()
    ts = []
    for _ in range(10):
        t0 = time.perf_counter(); prod(); ts.append(time.perf_counter() - t0)
    out.append({"shape": e["shape"], "ms": statistics.median(ts) * 1e3,
                "bertcl_ms": e["device_ms"]["median"], "flops": e["flops"]})
print(json.dumps({"numpy": np.__version__,
                  "blas": np.show_config(mode="dicts")["Build Dependencies"]["blas"].get("version", "?"),
                  "variant": run["variant"], "rows": out}))
PY
python3 "$HERE/torch_bert.py" --config minilm --batch 32 --seq 128 --warmup 2 --repeat 5 \
  --finetune 16x128 --device cpu --json "$TMP/torch.json" > "$TMP/torch.txt" 2>&1 || true

python3 - "$TMP/numpy.json" "$TMP/bench.json" "$TMP/torch.json" "$ST_RPS" "${RPS[pocl]}" \
  "${RPS[intel]:-}" "$CORES" <<'PY'
import json, sys
npj, bj, tj = (json.load(open(p)) for p in sys.argv[1:4])
st, pocl, intel, cores = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
dev = bj["devices"][0]
peak = (dev["peak"]["fp32_tflops"] or 0) * 1e3
print("\n== extraction, whole process, warm (rows/s)")
print(f"  sentence-transformers  {st:8.1f}")
print(f"  bertcl PoCL            {pocl:8.1f}  {pocl / st:5.2f}x  (target >= 1.0x)")
if intel:
    print(f"  bertcl Intel runtime   {float(intel):8.1f}  {float(intel) / st:5.2f}x")
print(f"\n== products, MiniLM B=32 T=128: bertcl ({npj['variant']}) vs numpy {npj['numpy']} "
      f"(OpenBLAS {npj['blas']}, {cores} threads); peak {peak:.0f} GFLOP/s")
for r in npj["rows"]:
    g = r["flops"] / r["bertcl_ms"] / 1e6
    print(f"  {r['shape']:13s} bertcl {r['bertcl_ms']:8.3f} ms {g:6.1f} GFLOP/s ({100 * g / peak:4.1f}%)"
          f" | numpy {r['ms']:8.3f} ms | {r['ms'] / r['bertcl_ms']:5.2f}x (target >= 0.8x)")
ft = dev.get("finetune_blas") or dev.get("finetune")
tf = tj.get("finetune", {})
if ft and "step_ms" in ft and "step_ms" in tf:
    b, t = ft["step_ms"]["median"], tf["step_ms"]["median"]
    print(f"\n== fine-tuning step MiniLM B=16 T=128: bertcl ({ft.get('backend', '?')}) {b:.1f} ms, "
          f"PyTorch {t:.1f} ms: {t / b:.2f}x (target >= 0.7x)")
else:
    print("\n== fine-tuning step: missing figures (see bench/torch output)")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${PERF:-0}" = 1 ] && command -v perf > /dev/null; then
  perf record -q -o "$TMP/perf.data" "$BIN" extract -m "$MODEL" -i "$TMP/in.txt" \
    -o "$TMP/p.npy" --format npy --device pocl --gemm "$GEMM" --quiet 2> /dev/null
  echo "== perf, bertcl extract on PoCL (top symbols)"
  perf report -i "$TMP/perf.data" --no-children --sort symbol 2> /dev/null | grep '%' | head -15
fi
