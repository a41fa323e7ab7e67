#!/bin/sh
# SST-2 form of bench/finetune_glue.sh (kept for its old usage): fine-tunes on the first N_TRAIN
# rows of SST2_DIR/train.tsv with bertcl finetune and with transformers (finetune_hf.py), dev.tsv
# whole (872); prints both dev accuracies. A developer script: never a test dependency.
#
#   bench/finetune_sst2.sh SST2_DIR [MODEL_DIR] [N_TRAIN] [EPOCHS] [LR] [BATCH] [MAX_LEN] [SEED]
#
# Defaults: all-MiniLM-L6-v2, 2000 rows, 3 epochs, lr 5e-5, batch 32, max-len 64, seed 42.
# Environment as finetune_glue.sh (BERTCL, BERTCL_DEVICE, PYTHON, OUT, RUN, HF_ARGS).
#
# Measured 2026-11-26, all-MiniLM-L6-v2, first 2000 rows, 2 epochs, lr 5e-5, batch 32, max-len 64,
# seed 42, warm-up 0, weight decay 0, on 2 CPU cores:
#   bertcl (PoCL): dev accuracy 0.8016 (1390 s, about 2.5 examples/s with eval);
#   PyTorch loop (finetune_hf.py --loop), PyTorch 2.15 fp32, 2 threads: 0.7993, F1 0.8058
#     (75.2 s of training, 53.2 examples/s);
#   transformers.Trainer (finetune_hf.py's default), same threads: 0.7970, F1 0.8031
#     (85.7 s of training, 46.7 examples/s; 360 and 592 s in two runs beside other jobs).
exec sh "$(dirname "$0")/finetune_glue.sh" sst2 "$@"
