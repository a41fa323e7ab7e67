#!/bin/bash
# Long fuzzing runs with a persistent corpus: each libFuzzer target of tests/fuzz for a given
# time, one after the other (one core), and a summary of executions, coverage and findings.
#
#   bench/fuzz_long.sh [-t SECONDS_PER_TARGET] [-d CORPUS_ROOT] [-b BUILD_DIR] [TARGET...]
#
#   -t   seconds per target (default 900)
#   -d   where corpora, crash artifacts, logs and summaries live (default
#        $BERTCL_FUZZ_DIR, else ~/.cache/bertcl-fuzz): outside the repository, so the corpus
#        grows from run to run without touching git. Each target's corpus is
#        CORPUS_ROOT/<target>; the committed seeds (tests/fuzz/corpus_<name>) are read too.
#   -b   fuzz build directory (default build-fuzz; configured with clang, ASan + UBSan and
#        -DBERTCL_FUZZ=ON when it does not exist yet)
#   TARGET  fuzz_model, fuzz_tokenizer, ... (default: every tests/fuzz/fuzz_*.c)
#
# Output: per target a log (CORPUS_ROOT/logs/<target>-<stamp>.log), crash/timeout/oom inputs
# under CORPUS_ROOT/artifacts/<target>/, and a summary table (also as JSON in
# CORPUS_ROOT/summary-<stamp>.json): executions, executions/s, coverage (edges "cov" and
# features "ft" as libFuzzer counts them), corpus files, new findings. Exit status 1 when any
# target found a crash, a leak, a timeout or ran out of memory.
#
# Reproduce a finding: BUILD_DIR/tests/fuzz/<target> CORPUS_ROOT/artifacts/<target>/crash-...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=900
corpus_root=${BERTCL_FUZZ_DIR:-$HOME/.cache/bertcl-fuzz}
build=$root/build-fuzz
while getopts "t:d:b:h" opt; do
  case $opt in
    t) secs=$OPTARG ;;
    d) corpus_root=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in "$root"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTCL_WERROR=ON \
    -DBERTCL_SANITIZE=ON -DBERTCL_FUZZ=ON -DBERTCL_BUILD_TESTS=OFF -DBERTCL_BUILD_BENCH=OFF \
    >/dev/null
fi
mkdir -p "$corpus_root/logs"
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$corpus_root/logs/build.log" 2>&1 ||
  { cat "$corpus_root/logs/build.log"; exit 1; }

export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$corpus_root/logs"
summary=$corpus_root/summary-$stamp.json
echo "[" >"$summary"
status=0
first=1
printf '%-16s %8s %12s %9s %7s %7s %8s %s\n' target seconds executions exec/s cov ft corpus findings
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus=$corpus_root/$t
  arts=$corpus_root/artifacts/$t
  mkdir -p "$corpus" "$arts"
  seeds=()
  [ -d "$root/tests/fuzz/corpus_$name" ] && seeds=("$root/tests/fuzz/corpus_$name")
  log=$corpus_root/logs/$t-$stamp.log
  before=$(find "$arts" -type f | wc -l)
  start=$(date +%s)
  # -error_exitcode/-timeout_exitcode keep the run's verdict in the exit status; a finding
  # stops the target (libFuzzer's default), the next target still runs
  set +e
  "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 \
    -timeout=30 -artifact_prefix="$arts/" "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E ' cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  files=$(find "$corpus" -type f | wc -l)
  after=$(find "$arts" -type f | wc -l)
  found=$((after - before))
  [ "$rc" -ne 0 ] && [ "$found" -eq 0 ] && found=1
  [ "$found" -ne 0 ] && status=1
  printf '%-16s %8s %12s %9s %7s %7s %8s %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "$files" "$found"
  [ $first -eq 1 ] || echo "," >>"$summary"
  first=0
  printf '  {"target": "%s", "seconds": %s, "executions": %s, "exec_per_sec": %s, "cov": %s, '\
'"ft": %s, "corpus_files": %s, "findings": %s, "exit": %s, "log": "%s"}' \
    "$t" "$took" "${execs:-null}" "${rate:-null}" "${cov:-null}" "${ft:-null}" "$files" \
    "$found" "$rc" "$log" >>"$summary"
  if [ "$found" -ne 0 ]; then
    echo "  $t: see $log and $arts/"
  fi
done
printf '\n]\n' >>"$summary"
echo "summary: $summary"
exit $status
