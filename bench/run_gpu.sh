#!/usr/bin/env bash
# The one prepared script for the GPU machine: bertcl bench of BERT-base and MiniLM on NVIDIA's
# OpenCL with CLBlast's defaults and with parameters from bertcl tune (side by side, same
# process), and one fine-tuning step (B=32, T=128), next to PyTorch fp32 (TF32 off) on the same
# shapes, all in one script so the ratios compare runs on one device. See bench/README.md.
#
# Here (project root):
#   cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DBERTCL_BUILD_TESTS=OFF
#   cmake --build build-gpu -j2
#   bash ../shared/device/prepare.sh            # fills .devdeps/ (OpenCL loader, CLBlast, ...)
# There (device run, carry ["build-gpu", ".devdeps"], timeout_s 600):
#   source .devdeps/enter.sh; bash bench/run_gpu.sh
# Results land in $OUT (at most 8 files come back): run_gpu.log (every table), base.json,
# minilm.json, torch-base.json, torch-minilm.json, tune.log, summary.md, extract.json.
#
# Extraction rows/s next to sentence-transformers (issue 7) runs too when a real model and a
# corpus were carried (64 MiB in all, so the model as an F16 copy):
#   python3 bench/make_f16_model.py models/all-MiniLM-L6-v2 models/all-MiniLM-L6-v2-f16
#   mkdir -p out && cut -f1 ../shared/data/sst2/train.tsv | tail -n +2 | head -n 20000 > out/corpus.txt
#   carry ["build-gpu", ".devdeps", "models/all-MiniLM-L6-v2-f16", "out/corpus.txt"]
#
# Environment: BERTCL_BIN (default build-gpu/bertcl), BENCH_DEVICE (default nvidia),
# EXTRACT_MODEL (models/all-MiniLM-L6-v2-f16), EXTRACT_CORPUS (out/corpus.txt),
# TUNE_BUDGET seconds (default 150), BENCH_BATCH (1,8,32,128), BENCH_SEQ (128,512),
# BENCH_REPEAT (5), TUNE_CONFIG/TUNE_BATCH/TUNE_SEQ (base, 32, 128).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
BIN=${BERTCL_BIN:-build-gpu/bertcl}
DEV=${BENCH_DEVICE:-nvidia}
GRID="--batch ${BENCH_BATCH:-1,8,32,128} --seq ${BENCH_SEQ:-128,512}"
REP="--warmup 2 --repeat ${BENCH_REPEAT:-5}"
LOG="$OUT/run_gpu.log"
# a fresh cache: nothing tuned before this script, the kernel cache starts cold
export BERTCL_CACHE_DIR=${BERTCL_CACHE_DIR:-/tmp/bertcl-gpu-cache}
rm -rf "$BERTCL_CACHE_DIR"

step() { # name timeout command...: runs with a time limit, logs, never stops the script
  local name=$1 limit=$2; shift 2
  echo "=== $name: $* ($(date -u +%H:%M:%S), limit ${limit}s)" | tee -a "$LOG"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
}

{
  echo "bench/run_gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  git rev-parse --short HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv 2>/dev/null || true
} | tee "$LOG"
step devices 30 "$BIN" devices

# 1. tune CLBlast's GEMM for the device (BERT-base shapes, batch 32 x seq 128 by default);
#    the parameter file is per device, so both benches below use it
step tune $(( ${TUNE_BUDGET:-150} + 90 )) "$BIN" tune --device "$DEV" \
  --config "${TUNE_CONFIG:-base}" --batch "${TUNE_BATCH:-32}" --seq "${TUNE_SEQ:-128}" \
  --budget-seconds "${TUNE_BUDGET:-150}" --repeat 5
grep -E "^(CLBlast defaults|candidate .*\*|GEMM time|stored|measured)" "$LOG" > "$OUT/tune.log"

# 2. bertcl bench: untuned then tuned, same process
step bench-base 170 "$BIN" bench --device "$DEV" --config base $GRID $REP --json "$OUT/base.json"
step bench-minilm 100 "$BIN" bench --device "$DEV" --config minilm $GRID $REP --json "$OUT/minilm.json"

# 3. PyTorch fp32, TF32 off, eager attention (unfused like bertcl's), same shapes
if python3 -c "import torch, transformers" 2>/dev/null; then
  step torch-base 120 python3 bench/torch_bert.py --config base $GRID $REP --json "$OUT/torch-base.json"
  step torch-minilm 80 python3 bench/torch_bert.py --config minilm $GRID $REP --json "$OUT/torch-minilm.json"
else
  echo "=== PyTorch or transformers not installed: no PyTorch figures" | tee -a "$LOG"
fi

# 4. one table of everything measured above
step summary 30 python3 bench/summarize.py --out "$OUT/summary.md" "$OUT"/base.json \
  "$OUT"/minilm.json "$OUT"/torch-base.json "$OUT"/torch-minilm.json

# 5. extraction jobs vs sentence-transformers / transformers, same texts, batch and length
EM=${EXTRACT_MODEL:-models/all-MiniLM-L6-v2-f16}
EC=${EXTRACT_CORPUS:-out/corpus.txt}
if [ -d "$EM" ] && [ -f "$EC" ]; then
  step extract 240 sh -c "bash bench/extract_vs_st.sh '$BIN' '$EM' '$EC' 0 '' '$DEV' 128 128 > '$OUT/extract.json'"
  cat "$OUT/extract.json" | tee -a "$LOG"
else
  echo "=== no $EM or $EC carried: no extraction figures" | tee -a "$LOG"
fi
