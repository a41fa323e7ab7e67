#!/bin/sh
# Peak host memory (maximum resident set, GNU time) of one `bertcl extract` job as the input
# grows: the job streams, so the figure should stay flat. Synthetic corpus (random words, 1-40 a
# line), the tiny test model, mean pooling plus token features written to shards of 10,000 rows
# (a shard is gathered in memory before it is written, so the shard size, not the input, sets
# the level).
#
#   bench/job_memory.sh [BERTCL_BIN] [DEVICE] [LINES...]    (default: build/bertcl pocl 10000 200000)
#
# Measured 2026-11-26 (PoCL, 2 cores, after the readback moved to its own queue): peak RSS 283 MiB
# at 10,000 lines, 306 MiB at 200,000 (20x the input, +8%). With --shard-rows 50000 instead the
# 200,000-line job peaks at 552 MiB: the shard being gathered is what grows, not the input.
set -eu
BIN=${1:-build/bertcl}
DEV=${2:-pocl}
[ $# -ge 2 ] && shift 2 || set --
[ $# -gt 0 ] || set -- 10000 200000
MODEL=$(dirname "$0")/../tests/data/tiny-bert
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for n in "$@"; do
  python3 - "$n" > "$TMP/in.txt" <<'PY'
import random, sys
r = random.Random(7)
words = ["the", "a", "model", "runs", "on", "every", "device", "text", "vector", "layer",
         "token", "word", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "encoder"]
for _ in range(int(sys.argv[1])):
    print(" ".join(r.choice(words) for _ in range(r.randint(1, 40))))
PY
  /usr/bin/time -f "%M" -o "$TMP/rss" "$BIN" extract -m "$MODEL" -i "$TMP/in.txt" -o "$TMP/job" \
    --device "$DEV" --pool mean --tokens --dtype f16 --shard-rows 10000 --quiet
  echo "{\"lines\": $n, \"peak_rss_mib\": $(( $(cat "$TMP/rss") / 1024 ))}"
  rm -rf "$TMP/job"
done
