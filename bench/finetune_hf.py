#!/usr/bin/env python3
"""The PyTorch/transformers side of bench/finetune_sst2.sh: fine-tunes
AutoModelForSequenceClassification with the recipe transformers' Trainer uses by default
(AdamW betas 0.9/0.999 eps 1e-8, no weight decay on biases and LayerNorm weights, linear warm-up
and decay, gradient clipping at 1.0, shuffled batches, dynamic padding, dropout from config.json)
as a plain loop (Trainer itself needs the accelerate package), fp32 on the CPU, then prints the
dev accuracy as JSON. Usage: finetune_hf.py MODEL_DIR TRAIN.tsv DEV.tsv EPOCHS LR BATCH MAX_LEN
SEED [WARMUP_RATIO] [WEIGHT_DECAY]"""
import csv, json, math, sys, time

import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                          get_linear_schedule_with_warmup)


def read_tsv(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def main():
    model_dir, train, dev = sys.argv[1:4]
    epochs, lr, batch, max_len, seed = (int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]),
                                        int(sys.argv[7]), int(sys.argv[8]))
    warmup_ratio = float(sys.argv[9]) if len(sys.argv) > 9 else 0.0
    wd = float(sys.argv[10]) if len(sys.argv) > 10 else 0.0
    torch.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    xt, yt = read_tsv(train)
    xd, yd = read_tsv(dev)
    no_decay = [n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    groups = [{"params": [p for n, p in model.named_parameters() if n not in no_decay],
               "weight_decay": wd},
              {"params": [p for n, p in model.named_parameters() if n in no_decay],
               "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    steps = math.ceil(len(xt) / batch) * epochs
    sched = get_linear_schedule_with_warmup(opt, math.ceil(warmup_ratio * steps), steps)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g).tolist()
        for s in range(0, len(xt), batch):
            idx = perm[s:s + batch]
            enc = tok([xt[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                      return_tensors="pt")
            loss = model(**enc, labels=torch.tensor([yt[i] for i in idx])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    train_s = time.time() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(xd), 64):
            enc = tok(xd[s:s + 64], padding=True, truncation=True, max_length=max_len,
                      return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(int(p == y) for p, y in zip(pred, yd[s:s + 64]))
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "train_examples": len(xt),
                      "dev_examples": len(xd), "dev_accuracy": correct / len(xd),
                      "train_seconds": round(train_s, 1), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
