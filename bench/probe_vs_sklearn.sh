#!/bin/bash
# bertcl probe next to the Python pipeline it replaces (transformers output_hidden_states +
# scikit-learn LogisticRegression per layer), same model, data, C, max length, machine:
# eval score per layer and the wall time of the whole table on both sides.
#   bench/probe_vs_sklearn.sh sst2 DATA_DIR [N_TRAIN=2000]     (mean and [CLS] pooling, accuracy)
#   bench/probe_vs_sklearn.sh conll DATA_DIR [N_TRAIN=2000]    (first-subword word vectors, entity F1)
# DATA_DIR: ../shared/data/sst2 or ../shared/data/conll2003. MODEL (default
# models/all-MiniLM-L6-v2), BERTCL (build/bertcl), THREADS (torch threads, default: cores).
# C = 1 on both sides: bertcl's default l2 = 1/N is scikit-learn's default C = 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
task=${1:?usage: $0 sst2|conll DATA_DIR [N_TRAIN]}
data=${2:?usage: $0 sst2|conll DATA_DIR [N_TRAIN]}
n=${3:-2000}
model=${MODEL:-$root/models/all-MiniLM-L6-v2}
bertcl=${BERTCL:-$root/build/bertcl}
threads=${THREADS:-$(nproc)}
maxlen=${MAXLEN:-128}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$task" in
  sst2)
    head -n $((n + 1)) "$data/train.tsv" > "$tmp/train.tsv"
    cp "$data/dev.tsv" "$tmp/dev.tsv"
    probe_args=(--task sequence --pool cls,mean)
    py_args=(--task sequence --pools cls,mean)
    ;;
  conll)
    # the first N sentences of eng.train (-DOCSTART- lines and blank lines kept), all of eng.testa
    awk -v n="$n" 'BEGIN{s=0} /^-DOCSTART-/{print; next} /^[[:space:]]*$/{if(w){s++; w=0}; print; if(s>=n) exit; next} {w=1; print}' \
      "$data/eng.train" > "$tmp/train.tsv"
    cp "$data/eng.testa" "$tmp/dev.tsv"
    probe_args=(--task token --words first)
    py_args=(--task token)
    ;;
  *) echo "unknown task $task (sst2 or conll)"; exit 2 ;;
esac
echo "== bertcl probe ($("$bertcl" --version 2>/dev/null | head -1)), $n training examples"
t0=$(date +%s.%N)
"$bertcl" probe -m "$model" --train "$tmp/train.tsv" --eval "$tmp/dev.tsv" -o "$tmp/probe" \
  "${probe_args[@]}" --combine none --max-len "$maxlen" -q
t1=$(date +%s.%N)
echo "== transformers + scikit-learn (torch threads $threads)"
python3 "$root/bench/probe_vs_sklearn.py" --model "$model" --train "$tmp/train.tsv" \
  --eval "$tmp/dev.tsv" "${py_args[@]}" --max-len "$maxlen" --threads "$threads" > "$tmp/py.json"
t2=$(date +%s.%N)
python3 - "$tmp/probe/probe.json" "$tmp/py.json" "$t0" "$t1" "$t2" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
t0, t1, t2 = map(float, sys.argv[3:6])
ps = {(c["row"], c["col"]): c["score"] for c in p["cells"]}
print(f"{'layer':>6} {'pool':>6} {'bertcl':>8} {'sklearn':>8} {'diff (points)':>14}")
worst = 0
for c in b["cells"]:
    k = (c["row"], c["col"])
    if k not in ps: continue
    d = 100 * (c["score"] - ps[k]); worst = max(worst, abs(d))
    print(f"{c['row']:>6} {c['col']:>6} {c['score']:8.4f} {ps[k]:8.4f} {d:+14.2f}")
print(f"largest difference {worst:.2f} points")
print(f"wall time of the whole table: bertcl {t1 - t0:.1f} s (extraction {b['extract_seconds']:.1f} s, "
      f"{len(b['cells'])} probes {b['fit_seconds']:.1f} s); Python {t2 - t1:.1f} s (extraction "
      f"{p['extract_seconds']:.1f} s, fits {p['fit_seconds']:.1f} s); ratio {(t2 - t1) / (t1 - t0):.2f}x")
PY
