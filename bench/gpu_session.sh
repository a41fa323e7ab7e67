#!/usr/bin/env bash
# Everything a session with the GPU machine should run, in one device call (15 minutes of device
# time per session: leave room for one rerun). Prepare here, in the project root:
#
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
#   bash ../shared/device/prepare.sh                                   # .devdeps/ (5 MB)
#   bash bench/gpu_session.sh --stage                                  # out/gpu/ (about 50 MB)
#
# then run there with carry [".devdeps", "out/gpu"], timeout_s 600:
#
#   source .devdeps/enter.sh; bash bench/gpu_session.sh
#
# --stage copies what travels into out/gpu (ignored by git): the bertcl program and the test
# programs that hold the device parity checks, an F16 copy of all-MiniLM-L6-v2 (the fp32 model
# does not fit the 64 MiB carry) and 20,000 SST-2 sentences as a corpus. The run writes to $OUT:
#   tests.log       op tables, encoder and trainer parity on the device (tiny fixture), each
#                   test program's exit status
#   parity.json     all-MiniLM-L6-v2 (F16 copy) every layer vs transformers, embeddings vs
#                   sentence-transformers (bench/gpu_parity.py)
#   run_gpu.log ... bench/run_gpu.sh: bench + tune + PyTorch + fine-tuning step + extraction
#   gpu-session.tgz all of the above in one file
# SKIP_BENCH=1 runs only the parity part (how this script was checked on PoCL:
# BENCH_DEVICE=pocl SKIP_BENCH=1 OUT=/tmp/s bash bench/gpu_session.sh).
set -u
cd "$(dirname "$0")/.."
G=out/gpu
if [ "${1:-}" = "--stage" ]; then
  set -e
  rm -rf "$G" && mkdir -p "$G/bin"
  for t in bertcl test_ops test_encoder test_train_ops test_trainer test_runtime; do
    cp "build/$t" "$G/bin/"
  done
  strip "$G"/bin/* 2>/dev/null || true
  python3 bench/make_f16_model.py models/all-MiniLM-L6-v2 "$G/all-MiniLM-L6-v2-f16"
  SST2=${SST2:-../shared/data/sst2/train.tsv}
  cut -f1 "$SST2" | tail -n +2 | head -n 20000 > "$G/corpus.txt"
  du -sh "$G"
  exit 0
fi
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"
DEV=${BENCH_DEVICE:-nvidia}
{
  echo "bench/gpu_session.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # parity of every kernel, the encoder and the training step on the device (tiny fixture; the
  # MiniLM rows need the fp32 model and skip)
  export BERTCL_TEST_DEVICE=$DEV BERTCL_TEST_DATA_DIR=$PWD/tests/data BERTCL_MINILM_DIR=/nonexistent
  for t in test_ops test_encoder test_train_ops test_trainer; do
    timeout 120 "$G/bin/$t" 2>&1 | tail -n 25
    echo "=== $t exit ${PIPESTATUS[0]}"
  done
  BERTCL_TEST_FILTER=test_kernel_runs timeout 60 "$G/bin/test_runtime" 2>&1 | tail -n 5
  echo "=== test_runtime (test_kernel_runs) exit ${PIPESTATUS[0]}"
} > "$OUT/tests.log" 2>&1
grep "^=== " "$OUT/tests.log"
timeout 120 python3 bench/gpu_parity.py "$G/bin/bertcl" "$G/all-MiniLM-L6-v2-f16" "$DEV" \
  --json "$OUT/parity.json" > /dev/null 2> "$OUT/parity.err"
echo "=== gpu_parity exit $?"
cat "$OUT/parity.json" 2>/dev/null || tail -n 5 "$OUT/parity.err"
if [ -z "${SKIP_BENCH:-}" ]; then
  BERTCL_BIN=$G/bin/bertcl EXTRACT_MODEL=$G/all-MiniLM-L6-v2-f16 EXTRACT_CORPUS=$G/corpus.txt \
    OUT=$OUT bash bench/run_gpu.sh > /dev/null 2>&1
  echo "=== run_gpu.sh exit $?"
  cat "$OUT/summary.md" "$OUT/extract.json" 2>/dev/null
fi
# one archive as well, in case fewer files come back than were written
(cd "$OUT" && tar czf ../gpu-session.tgz . && mv ../gpu-session.tgz .)
ls "$OUT"
