#!/bin/bash
# Runs the kernel tests under oclgrind with its memory, uninitialised-value and data-race checks
# and fails on anything it reports. First proves the check can fail: a kernel with a known
# out-of-bounds access (tests/data/oclgrind-bad/) must be caught.
# Usage: scripts/oclgrind-check.sh BUILD_DIR
set -uo pipefail
set -f  # the cmocka filters below are patterns, not file globs
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pattern='Invalid (read|write)|Uninitialized value|[Dd]ata race|Oclgrind - |Work-group divergence|Unaligned'
# each line: test executable, cmocka filter, checks. The op table (every kernel against its
# reference) runs with all checks. The small end-to-end run (model load, weight upload, a whole
# forward with CLBlast's GEMMs, pooling) runs without --uninitialized: oclgrind 21.10 tracks
# initialisation per buffer and misses writes made through the parent of a sub-buffer (our
# weights are sub-buffers of one upload), so it reports every weight read as uninitialised.
all="--check-api --data-races --uninitialized"
checks=("test_runtime test_kernel_runs $all")
[ -x "$build/test_ops" ] && checks+=("test_ops * $all")
[ -x "$build/test_train_ops" ] && checks+=("test_train_ops * $all")
[ -x "$build/test_encoder" ] && checks+=("test_encoder test_bad_input_and_oom --check-api --data-races")
run_one() { # exe filter checks...
  local exe=$1 filter=$2
  shift 2
  BERTCL_TEST_DEVICE=oclgrind BERTCL_CACHE_DIR=off BERTCL_TEST_FILTER="$filter" BERTCL_OCLGRIND=1 \
    oclgrind "$@" --build-options -cl-opt-disable "$build/$exe" >"$log" 2>&1
}
# 1. the check itself can fail
BERTCL_KERNEL_DIR="$root/tests/data/oclgrind-bad" run_one test_runtime test_kernel_runs $all
if ! grep -Eq "$pattern" "$log"; then
  echo "oclgrind-check: the known-bad kernel was NOT flagged; the check is broken" >&2
  cat "$log" >&2
  exit 1
fi
echo "oclgrind-check: known-bad kernel flagged as expected"
# 2. the real kernels
fail=0
for c in "${checks[@]}"; do
  set -- $c
  if ! run_one "$@"; then
    echo "oclgrind-check: $1 failed under oclgrind" >&2; cat "$log" >&2; fail=1; continue
  fi
  if grep -Eq "$pattern" "$log"; then
    echo "oclgrind-check: oclgrind reported errors in $1:" >&2
    grep -E -A6 "$pattern" "$log" | head -n 80 >&2
    fail=1
  else
    ok=$(grep -c '\[       OK \]' "$log")
    if [ "$ok" -eq 0 ]; then
      echo "oclgrind-check: $1 ($2) ran no test under oclgrind" >&2; cat "$log" >&2; fail=1
    else
      echo "oclgrind-check: $1 ($2) clean: $ok tests"
    fi
  fi
done
exit $fail
