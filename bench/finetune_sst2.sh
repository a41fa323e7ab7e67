#!/bin/sh
# Fine-tunes a BERT model (all-MiniLM-L6-v2 by default) on a documented SST-2 subset with
# bertcl finetune and with PyTorch (bench/finetune_hf.py, transformers' Trainer recipe), same
# subset, epochs, lr, batch, max length, seed; prints both dev accuracies. A developer script:
# never a test dependency.
#
#   bench/finetune_sst2.sh SST2_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEED]
#
# SST2_DIR holds train.tsv and dev.tsv (GLUE: "sentence<TAB>label" with a header). The subset is
# the first N_TRAIN rows of train.tsv (default 2000; 0 = all 67349); dev.tsv is used whole (872).
# Environment: BERTCL (binary, default build/bertcl), BERTCL_DEVICE, PYTHON (default python3),
# OUT (work directory, default /tmp/bertcl-sst2).
#
# Measured 2026-11-26, all-MiniLM-L6-v2, first 2000 rows, 2 epochs, lr 5e-5, batch 32, max-len 64,
# seed 42, on 2 CPU cores: bertcl (PoCL) dev accuracy 0.8016 (1390 s, about 2.5 examples/s);
# PyTorch 2.15 fp32 (2 threads) 0.7993 (74 s of training). No GPU figures yet.
set -eu
SST2=${1:?usage: $0 SST2_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEED]}
MODEL=${2:-models/all-MiniLM-L6-v2}
N=${3:-2000}
EPOCHS=${4:-3}
LR=${5:-5e-5}
BATCH=${6:-32}
MAXLEN=${7:-64}
SEED=${8:-42}
BERTCL=${BERTCL:-build/bertcl}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/bertcl-sst2}
HERE=$(dirname "$0")
mkdir -p "$OUT"
if [ "$N" -gt 0 ]; then
  head -n $((N + 1)) "$SST2/train.tsv" > "$OUT/train.tsv"
else
  cp "$SST2/train.tsv" "$OUT/train.tsv"
fi
ntrain=$(($(wc -l < "$OUT/train.tsv") - 1))
echo "SST-2 subset: first $ntrain rows of $SST2/train.tsv; dev: $SST2/dev.tsv"
echo "recipe: epochs $EPOCHS lr $LR batch $BATCH max-len $MAXLEN seed $SEED, warm-up 0, wd 0"
start=$(date +%s)
"$BERTCL" finetune -m "$MODEL" --train "$OUT/train.tsv" --eval "$SST2/dev.tsv" \
  -o "$OUT/bertcl" --text-column sentence --epochs "$EPOCHS" --lr "$LR" --batch-size "$BATCH" \
  --max-len "$MAXLEN" --seed "$SEED" --log-every 10 2> "$OUT/bertcl.log" || {
  cat "$OUT/bertcl.log"; exit 1; }
end=$(date +%s)
acc=$(grep '^eval step' "$OUT/bertcl.log" | tail -1 | sed 's/.*accuracy \([0-9.]*\).*/\1/')
best=$(grep '^finetune: done' "$OUT/bertcl.log" | sed 's/.*accuracy \([0-9.]*\).*/\1/')
dev=$(grep '^finetune:.*examples' "$OUT/bertcl.log" | sed 's/.* on //')
echo "{\"impl\": \"bertcl\", \"device\": \"$dev\", \"train_examples\": $ntrain," \
     "\"dev_accuracy\": $acc, \"best_epoch_dev_accuracy\": $best, \"seconds\": $((end - start))}"
"$PYTHON" "$HERE/finetune_hf.py" "$MODEL" "$OUT/train.tsv" "$SST2/dev.tsv" "$EPOCHS" "$LR" \
  "$BATCH" "$MAXLEN" "$SEED"
