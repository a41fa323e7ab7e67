#!/bin/sh
# Rows/s of `bertcl extract` with length bucketing vs batches in input order, same device, same
# run, on a real corpus. Not a CI test (it needs a corpus and takes minutes on a CPU device).
#
#   bench/bench_jobs.sh BERTCL_BIN MODEL_DIR CORPUS [LINES] [COLUMN] [DEVICE]
#   bench/bench_jobs.sh build/bertcl models/all-MiniLM-L6-v2 ../shared/data/sst2/train.tsv 4000 sentence pocl
#
# CORPUS: plain text (one text a line) or a TSV file with COLUMN; the first LINES texts are used
# (all when LINES is 0 or absent). Runs, after a warm-up that fills the kernel cache:
#   input-order  --no-bucket --batch-size 32    (fixed batches, padded to their longest text)
#   bucketed-32  --batch-size 32                (sorted inside 10000-text windows, same cap)
#   bucketed     defaults: --batch-size 128 --max-tokens 8192
# Prints one JSON object: rows/s of each (the extract summary's figure: whole job, wall clock,
# model load excluded), and the ratios against input-order.
set -eu
BIN=$1 MODEL=$2 CORPUS=$3 LINES=${4:-0} COLUMN=${5:-} DEVICE=${6:-${BERTCL_DEVICE:-}}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
IN=$TMP/in.txt
if [ -n "$COLUMN" ]; then
  IN=$TMP/in.tsv
  if [ "$LINES" -gt 0 ]; then head -n $((LINES + 1)) "$CORPUS" > "$IN"; else cp "$CORPUS" "$IN"; fi
  COL="--column $COLUMN"
else
  if [ "$LINES" -gt 0 ]; then head -n "$LINES" "$CORPUS" > "$IN"; else cp "$CORPUS" "$IN"; fi
  COL=""
fi
DEV=""
[ -n "$DEVICE" ] && DEV="--device $DEVICE"
head -n 50 "$IN" > "$TMP/warm.${IN##*.}"
# shellcheck disable=SC2086
"$BIN" extract -m "$MODEL" -i "$TMP/warm.${IN##*.}" -o "$TMP/warm.safetensors" $COL $DEV --quiet
run() { # name, options...
  name=$1
  shift
  # shellcheck disable=SC2086
  "$BIN" extract -m "$MODEL" -i "$IN" -o "$TMP/$name.safetensors" $COL $DEV "$@" \
    2> "$TMP/$name.log"
  grep -o '[0-9.]* rows/s' "$TMP/$name.log" | tail -n 1 | cut -d' ' -f1
}
A=$(run input-order --no-bucket --batch-size 32)
C=$(run bucketed-32 --batch-size 32)
B=$(run bucketed)
ROWS=$(grep -o '^bertcl: [0-9]* rows,' "$TMP/bucketed.log" | grep -o '[0-9]*')
DEVNAME=$(grep -o ' on [^,]*$' "$TMP/bucketed.log" | tail -n 1 | sed 's/^ on //')
python3 - "$A" "$C" "$B" "$ROWS" "$DEVNAME" "$CORPUS" "$MODEL" <<'PY'
import json, sys
a, c, b = (float(x) for x in sys.argv[1:4])
print(json.dumps({"bench": "extract_bucketing", "corpus": sys.argv[6], "model": sys.argv[7],
                  "rows": int(sys.argv[4]), "device": sys.argv[5],
                  "rows_per_s": {"input_order_b32": a, "bucketed_b32": c, "bucketed_default": b},
                  "ratio_bucketed_b32_vs_input_order": round(c / a, 3),
                  "ratio_bucketed_default_vs_input_order": round(b / a, 3)}, indent=1))
PY
