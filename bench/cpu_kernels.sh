#!/bin/bash
# Our own kernels on CPU OpenCL devices, GPU-shaped set against CPU-shaped set (bc_kset), each
# pair measured back to back in one process or one script (the figures of issue 13's kernel
# half). For every device given:
#   1. bench/ops_bench at the fine-tuning shape (B 32, T 128) and an extraction shape (B 32,
#      T 32): per-kernel time of both sets, wall (minimum, median) and process CPU time;
#   2. `bertcl extract` of LINES SST-2 sentences (all-MiniLM-L6-v2, batch 32) with
#      BERTCL_KERNEL_PROFILE=1 in each set: every kernel's device time over the whole job;
#   3. one fine-tuning step (`bertcl bench --config minilm --finetune 16x128`) with the profile;
#   4. with perf (PoCL, whose kernels perf can name), the top lines of `perf record` of 2 and 3.
# Not a CI test. Usage:
#   bench/cpu_kernels.sh BUILD_DIR [OUT_DIR] [LINES]
# Environment: DEVICES (default "pocl"; add "1:0" or "intel" for Intel's runtime, after
# `source /work/opt/intel-ocl/env.sh` or with INTEL_OCL_ENV=path/to/env.sh), MODEL (default
# models/all-MiniLM-L6-v2), CORPUS (default /work/shared/data/sst2/train.tsv, column
# "sentence"), SKIP_FINETUNE=1, SKIP_PERF=1.
set -euo pipefail
BUILD=${1:?usage: bench/cpu_kernels.sh BUILD_DIR [OUT_DIR] [LINES]}
OUT=${2:-cpu-kernels-$(date +%Y%m%d-%H%M%S)}
LINES=${3:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=${MODEL:-$HERE/../models/all-MiniLM-L6-v2}
CORPUS=${CORPUS:-/work/shared/data/sst2/train.tsv}
DEVICES=${DEVICES:-pocl}
[ -n "${INTEL_OCL_ENV:-}" ] && source "$INTEL_OCL_ENV"
mkdir -p "$OUT"
python3 - "$CORPUS" "$LINES" > "$OUT/texts.txt" <<'PY'
import csv, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, encoding="utf-8", newline="") as f:
    rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    for i, r in enumerate(rows):
        if i >= n:
            break
        print(r["sentence"].replace("\n", " "))
PY
have_perf=0
[ "${SKIP_PERF:-0}" != 1 ] && command -v perf >/dev/null && have_perf=1
uptime | tee "$OUT/load.txt"
for dev in $DEVICES; do
  tag=$(echo "$dev" | tr -c 'A-Za-z0-9\n' '_')
  echo "== $dev: ops_bench"
  for shape in "32 128" "32 32"; do
    set -- $shape
    "$BUILD/bench/ops_bench" --device "$dev" --batch "$1" --seq "$2" --rounds 7 --calls 3 \
      > "$OUT/ops-$tag-b$1-t$2.jsonl" 2> "$OUT/ops-$tag-b$1-t$2.txt"
    cat "$OUT/ops-$tag-b$1-t$2.txt"
  done
  # warm both sets' program caches, then the profiled jobs back to back
  for set in gpu cpu; do
    BERTCL_KERNEL_SET=$set "$BUILD/bertcl" extract -m "$MODEL" -i "$OUT/texts.txt" \
      -o "$OUT/warm.npy" --device "$dev" --batch-size 32 --quiet 2>/dev/null || true
  done
  for set in gpu cpu; do
    echo "== $dev: extract, $set set"
    BERTCL_KERNEL_SET=$set BERTCL_KERNEL_PROFILE=1 "$BUILD/bertcl" extract -m "$MODEL" \
      -i "$OUT/texts.txt" -o "$OUT/extract-$tag-$set.npy" --device "$dev" --batch-size 32 \
      2> "$OUT/extract-$tag-$set.txt"
    grep -E "rows/s|kernel|^[a-z_]+ +[0-9]|^all" "$OUT/extract-$tag-$set.txt"
    if [ "$have_perf" = 1 ] && [[ "$dev" == *pocl* ]]; then
      BERTCL_KERNEL_SET=$set perf record -q -F 499 -o "$OUT/perf-extract-$tag-$set.data" \
        "$BUILD/bertcl" extract -m "$MODEL" -i "$OUT/texts.txt" -o "$OUT/p.npy" --device "$dev" \
        --batch-size 32 --quiet 2>/dev/null
      perf report -i "$OUT/perf-extract-$tag-$set.data" --sort symbol -n 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -20 | tee "$OUT/perf-extract-$tag-$set.txt"
    fi
  done
  if [ "${SKIP_FINETUNE:-0}" != 1 ]; then
    for set in gpu cpu; do
      echo "== $dev: fine-tuning step 16x128, $set set"
      run=("$BUILD/bertcl" bench --device "$dev" --config minilm --batch 1 --seq 8 --warmup 1
           --repeat 2 --bw-mib 1 --finetune 16x128 --json "$OUT/finetune-$tag-$set.json")
      if [ "$have_perf" = 1 ] && [[ "$dev" == *pocl* ]]; then
        BERTCL_KERNEL_SET=$set BERTCL_KERNEL_PROFILE=1 perf record -q -F 199 \
          -o "$OUT/perf-finetune-$tag-$set.data" "${run[@]}" > "$OUT/finetune-$tag-$set.txt" 2>&1
        perf report -i "$OUT/perf-finetune-$tag-$set.data" --sort symbol -n 2>/dev/null |
          grep -v '^#' | grep -v '^$' | head -25 > "$OUT/perf-finetune-$tag-$set.top"
        cat "$OUT/perf-finetune-$tag-$set.top"
      else
        BERTCL_KERNEL_SET=$set BERTCL_KERNEL_PROFILE=1 "${run[@]}" > "$OUT/finetune-$tag-$set.txt" 2>&1
      fi
      grep -A3 "fine-tuning step" "$OUT/finetune-$tag-$set.txt" || true
      sed -n '/kernel profile/,/^all/p' "$OUT/finetune-$tag-$set.txt"
    done
  fi
done
uptime | tee -a "$OUT/load.txt"
echo "results in $OUT"
