#!/bin/sh
# Fine-tunes a BERT model (all-MiniLM-L6-v2 by default) on a documented subset of a GLUE task
# with bertcl finetune and with transformers (bench/finetune_hf.py: transformers.Trainer when
# accelerate imports, else its plain PyTorch loop), same subset, epochs, lr, batch, max length,
# seed, warm-up 0, weight decay 0; prints the dev accuracy (and F1 of label 1 for MRPC) of both
# as JSON lines. A developer script: never a test dependency. The data stay outside the repo.
#
#   bench/finetune_glue.sh TASK DATA_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEED]
#
# TASK sst2: DATA_DIR/train.tsv and dev.tsv are GLUE's "sentence<TAB>label" with a header.
#   Defaults: N_TRAIN 2000, EPOCHS 3, LR 5e-5, BATCH 32, MAX_LEN 64, SEED 42.
# TASK mrpc: GLUE's MRPC files, header (with a UTF-8 BOM)
#   "Quality<TAB>#1 ID<TAB>#2 ID<TAB>#1 String<TAB>#2 String"; label = Quality, text = #1 String,
#   pair = #2 String. Defaults: N_TRAIN 1000, EPOCHS 2, LR 5e-5, BATCH 16, MAX_LEN 128, SEED 42.
# The subset is the first N_TRAIN rows of train.tsv (0 = all); dev.tsv is used whole (SST-2 872,
# MRPC 408).
# Environment: BERTCL (binary, default build/bertcl), BERTCL_DEVICE, PYTHON (default python3),
# OUT (work directory, default /tmp/bertcl-TASK), RUN (both, bertcl or hf; default both),
# HF_ARGS (extra options of finetune_hf.py, e.g. --loop).
#
# Measured 2026-11-26, all-MiniLM-L6-v2, 2 CPU cores (shared with other work), bertcl on PoCL,
# transformers 5.24 / PyTorch 2.15 fp32 with 2 threads; recipes: warm-up 0, weight decay 0, seed 42
# (details and caveats: bench/README.md, "Fine-tuning next to transformers"):
#   SST-2, first 2000 rows, 2 epochs, lr 5e-5, batch 32, max-len 64; dev 872:
#     bertcl   dev accuracy 0.8016                 1390 s with eval, 2.88 examples/s
#     Trainer  dev accuracy 0.7970 (F1 0.8031)     85.7 s of training, 46.7 examples/s
#     --loop   dev accuracy 0.7993 (F1 0.8058)     75.2 s of training, 53.2 examples/s
#   MRPC, first 1000 pairs, 2 epochs, lr 5e-5, batch 16, max-len 128; dev 408:
#     bertcl   dev accuracy 0.6961, F1 0.8086      1008 s with eval, 1.98 examples/s
#     Trainer  dev accuracy 0.7010, F1 0.8129      174.2 s of training, 11.5 examples/s
#   (MRPC dev's majority class alone scores accuracy 0.6838, F1 0.8122: this short recipe
#   barely moves MiniLM off it, in both implementations.)
#   MRPC, all 3668 pairs, 1 epoch, lr 1e-4, batch 32, max-len 128; dev 408:
#     bertcl   dev accuracy 0.7279, F1 0.8279      1341 s with eval, 2.74 examples/s (seed 42)
#              seed 1: 0.7255, F1 0.8298 (mean of the two 0.7267; Trainer's four seeds 0.7298)
#     Trainer  dev accuracy 0.7157, F1 0.8210      121.6 s of training (seed 42); seeds 1, 2, 3:
#              0.7353 / 0.7525 / 0.7157 (F1 0.8286 / 0.8429 / 0.8193)
set -eu
TASK=${1:?usage: $0 sst2|mrpc DATA_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEED]}
DATA=${2:?usage: $0 sst2|mrpc DATA_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEED]}
case "$TASK" in
  sst2)
    D_N=2000 D_EPOCHS=3 D_BATCH=32 D_MAXLEN=64
    TEXT=sentence PAIR= LABEL=label ;;
  mrpc)
    D_N=1000 D_EPOCHS=2 D_BATCH=16 D_MAXLEN=128
    TEXT='#1 String' PAIR='#2 String' LABEL=Quality ;;
  *) echo "$0: unknown task '$TASK' (sst2 or mrpc)" >&2; exit 2 ;;
esac
MODEL=${3:-models/all-MiniLM-L6-v2}
N=${4:-$D_N}
EPOCHS=${5:-$D_EPOCHS}
LR=${6:-5e-5}
BATCH=${7:-$D_BATCH}
MAXLEN=${8:-$D_MAXLEN}
SEED=${9:-42}
BERTCL=${BERTCL:-build/bertcl}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/bertcl-$TASK}
RUN=${RUN:-both}
HERE=$(dirname "$0")
mkdir -p "$OUT"
if [ "$N" -gt 0 ]; then
  head -n $((N + 1)) "$DATA/train.tsv" > "$OUT/train.tsv"
else
  cp "$DATA/train.tsv" "$OUT/train.tsv"
fi
ntrain=$(($(wc -l < "$OUT/train.tsv") - 1))
echo "$TASK subset: first $ntrain rows of $DATA/train.tsv; dev: $DATA/dev.tsv (whole)"
echo "recipe: epochs $EPOCHS lr $LR batch $BATCH max-len $MAXLEN seed $SEED, warm-up 0, wd 0"
if [ "$RUN" != hf ]; then
  start=$(date +%s)
  if [ -n "$PAIR" ]; then
    set -- --pair-column "$PAIR"
  else
    set --
  fi
  "$BERTCL" finetune -m "$MODEL" --train "$OUT/train.tsv" --eval "$DATA/dev.tsv" \
    -o "$OUT/bertcl" --text-column "$TEXT" --label-column "$LABEL" "$@" --epochs "$EPOCHS" \
    --lr "$LR" --batch-size "$BATCH" --max-len "$MAXLEN" --seed "$SEED" --log-every 10 \
    2> "$OUT/bertcl.log" || { cat "$OUT/bertcl.log"; exit 1; }
  end=$(date +%s)
  last=$(grep '^eval step' "$OUT/bertcl.log" | tail -1)
  acc=$(echo "$last" | sed 's/.*accuracy \([0-9.]*\).*/\1/')
  f1=null
  case "$last" in *" F1 "*) f1=$(echo "$last" | sed 's/.* F1 \([0-9.]*\).*/\1/') ;; esac
  best=$(grep '^finetune: done' "$OUT/bertcl.log" | sed 's/.*accuracy \([0-9.]*\).*/\1/')
  dev=$(grep '^finetune:.*examples' "$OUT/bertcl.log" | head -1 | sed 's/.* on //')
  secs=$((end - start))
  eps=$(awk "BEGIN { printf \"%.2f\", $ntrain * $EPOCHS / $secs }")
  echo "{\"impl\": \"bertcl\", \"task\": \"$TASK\", \"device\": \"$dev\"," \
       "\"train_examples\": $ntrain, \"dev_accuracy\": $acc, \"dev_f1\": $f1," \
       "\"best_epoch_dev_accuracy\": $best, \"seconds\": $secs," \
       "\"examples_per_s_incl_eval\": $eps}"
fi
if [ "$RUN" != bertcl ]; then
  # shellcheck disable=SC2086 # HF_ARGS is a list of options
  "$PYTHON" "$HERE/finetune_hf.py" ${HF_ARGS:-} --text-column "$TEXT" --pair-column "$PAIR" \
    --label-column "$LABEL" "$MODEL" "$OUT/train.tsv" "$DATA/dev.tsv" "$EPOCHS" "$LR" \
    "$BATCH" "$MAXLEN" "$SEED"
fi
