#!/bin/sh
# Fine-tunes a BERT model (all-MiniLM-L6-v2 by default) for NER on a documented subset of
# CoNLL-2003 with bertcl finetune and with transformers' Trainer in run_ner.py's recipe
# (bench/finetune_ner_hf.py), same subset, epochs, lr, batch, max length, label alignment (the
# first subword of each word; the tag set sorted), warm-up 0, weight decay 0, for each seed;
# scores both on the eval file with seqeval's default mode (bertcl: its own entity metrics, the
# same computation; tests/test_ner.c checks them against seqeval) and prints one JSON line per
# run, then the mean entity F1 of each implementation. A developer script: never a test
# dependency. The data stay outside the repository.
#
#   bench/finetune_ner.sh CONLL_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN]
#                         [SEEDS] [N_EVAL]
#
# CONLL_DIR holds eng.train and eng.testa (CoNLL-2003, IOB1, columns "word POS chunk tag").
# The subset is the first N_TRAIN sentences of eng.train (default 1000; 0 = all), the eval set
# the first N_EVAL sentences of eng.testa (default 0 = all 3250). Defaults: EPOCHS 3, LR 1e-4,
# BATCH 16, MAX_LEN 128, SEEDS "42 1". bertcl evaluates once, after the last step (as
# run_ner.py does); its F1 is that evaluation's.
# Environment: BERTCL (binary, default build/bertcl), BERTCL_DEVICE, PYTHON (default python3),
# OUT (work directory, default /tmp/bertcl-ner), RUN (both, bertcl or hf; default both),
# PARALLEL (1: run bertcl and transformers of a seed at the same time; default 0).
#
# Measured: see bench/README.md, "NER next to transformers".
set -eu
DATA=${1:?usage: $0 CONLL_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEEDS] [N_EVAL]}
MODEL=${2:-models/all-MiniLM-L6-v2}
N=${3:-1000}
EPOCHS=${4:-3}
LR=${5:-1e-4}
BATCH=${6:-16}
MAXLEN=${7:-128}
SEEDS=${8:-42 1}
NEVAL=${9:-0}
BERTCL=${BERTCL:-build/bertcl}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/bertcl-ner}
RUN=${RUN:-both}
PARALLEL=${PARALLEL:-0}
HERE=$(dirname "$0")
mkdir -p "$OUT"

# the first n sentences of a CoNLL file (0 = all), -DOCSTART- lines kept
first_sentences() {
  if [ "$2" -gt 0 ]; then
    awk -v n="$2" '/^[ \t]*$/ { if (had) { s++; had = 0 } }
                   /[^ \t]/ { if ($1 != "-DOCSTART-") had = 1 }
                   { print } s >= n { exit }' "$1"
  else
    cat "$1"
  fi
}
first_sentences "$DATA/eng.train" "$N" > "$OUT/train.conll"
first_sentences "$DATA/eng.testa" "$NEVAL" > "$OUT/eval.conll"
count() { awk '/^[ \t]*$/ { if (had) { s++; had = 0 } } /[^ \t]/ { if ($1 != "-DOCSTART-") had = 1 }
               END { print s + had }' "$1"; }
ntrain=$(count "$OUT/train.conll")
neval=$(count "$OUT/eval.conll")
echo "NER subset: first $ntrain sentences of $DATA/eng.train; eval: $neval sentences of" \
     "$DATA/eng.testa"
echo "recipe: epochs $EPOCHS lr $LR batch $BATCH max-len $MAXLEN seeds $SEEDS, warm-up 0, wd 0," \
     "first-subword labels"

run_bertcl() {
  seed=$1
  log="$OUT/bertcl-$seed.log"
  start=$(date +%s)
  "$BERTCL" finetune -m "$MODEL" --train "$OUT/train.conll" --eval "$OUT/eval.conll" \
    -o "$OUT/bertcl-$seed" --epochs "$EPOCHS" --lr "$LR" --batch-size "$BATCH" \
    --max-len "$MAXLEN" --seed "$seed" --eval-every 1000000000 --log-every 20 \
    2> "$log" || { cat "$log" >&2; return 1; }
  end=$(date +%s)
  last=$(grep '^eval step' "$log" | tail -1)
  p=$(echo "$last" | sed 's/.*precision \([0-9.]*\).*/\1/')
  r=$(echo "$last" | sed 's/.*recall \([0-9.]*\).*/\1/')
  f1=$(echo "$last" | sed 's/.* F1 \([0-9.]*\).*/\1/')
  acc=$(echo "$last" | sed 's/.*accuracy \([0-9.]*\).*/\1/')
  types=$(awk '/^finetune: +(LOC|MISC|ORG|PER) / { printf "%s\"%s\": %s", sep, $2, $5; sep = ", " }' \
          "$log")
  dev=$(grep '^finetune: [0-9]* windows, ' "$log" | head -1 | sed 's/.* on //')
  secs=$((end - start))
  echo "{\"impl\": \"bertcl\", \"seed\": $seed, \"device\": \"$dev\", \"train_sentences\": $ntrain," \
       "\"eval_sentences\": $neval, \"precision\": $p, \"recall\": $r, \"f1\": $f1," \
       "\"accuracy\": $acc, \"type_f1\": {$types}, \"seconds_incl_eval\": $secs}"
}

run_hf() {
  "$PYTHON" "$HERE/finetune_ner_hf.py" "$MODEL" "$OUT/train.conll" "$OUT/eval.conll" "$EPOCHS" \
    "$LR" "$BATCH" "$MAXLEN" "$1" 2> "$OUT/hf-$1.log" || { cat "$OUT/hf-$1.log" >&2; return 1; }
}

: > "$OUT/results.jsonl"
for seed in $SEEDS; do
  if [ "$PARALLEL" = 1 ] && [ "$RUN" = both ]; then
    run_bertcl "$seed" > "$OUT/bertcl-$seed.json" &
    pid=$!
    run_hf "$seed" | tee -a "$OUT/results.jsonl"
    wait "$pid"
    tee -a "$OUT/results.jsonl" < "$OUT/bertcl-$seed.json"
  else
    [ "$RUN" = hf ] || run_bertcl "$seed" | tee -a "$OUT/results.jsonl"
    [ "$RUN" = bertcl ] || run_hf "$seed" | tee -a "$OUT/results.jsonl"
  fi
done
"$PYTHON" - "$OUT/results.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
means = {}
for impl in sorted({r["impl"] for r in rows}):
    f1 = [r["f1"] for r in rows if r["impl"] == impl]
    means[impl] = sum(f1) / len(f1)
    print(json.dumps({"impl": impl, "runs": len(f1), "mean_f1": round(means[impl], 4),
                      "f1": f1}))
if len(means) == 2:
    a, b = means.values()
    print(json.dumps({"mean_f1_difference_points": round(100 * abs(a - b), 2)}))
EOF
