#!/usr/bin/env python3
"""The transformers side of bench/finetune_glue.sh (and finetune_sst2.sh): fine-tunes
AutoModelForSequenceClassification on a TSV with the recipe given, fp32 on the CPU, then prints
the dev accuracy (and F1 of label 1 when binary) as one JSON line.

Two modes, same recipe (epochs, lr, batch, max length, seed, warm-up ratio, weight decay):
  default (when accelerate imports): transformers.Trainer with TrainingArguments: linear
    schedule, max_grad_norm 1.0, the Trainer's default optimizer (AdamW, betas 0.9/0.999,
    eps 1e-8, no decay on biases and LayerNorm weights), no evaluation or checkpoints during
    training, dynamic padding (DataCollatorWithPadding), dropout from config.json. Data order:
    the Trainer's own RandomSampler seeded from `seed` (its order differs from bertcl's
    splitmix64 permutation and from --loop's).
  --loop: a plain PyTorch loop with the Trainer's defaults (the fallback when accelerate is
    missing): torch.randperm per epoch from a generator seeded with `seed`.

Usage: finetune_hf.py [--loop] [--threads 2] [--optim NAME] [--text-column sentence]
  [--pair-column NAME] [--label-column label] MODEL_DIR TRAIN.tsv DEV.tsv EPOCHS LR BATCH MAX_LEN SEED
  [WARMUP_RATIO] [WEIGHT_DECAY]
TSV files are read with a header (a UTF-8 BOM is dropped) and no quoting, as GLUE writes them;
labels are integers 0..K-1."""
import argparse, contextlib, csv, json, math, sys, tempfile, time

import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                          get_linear_schedule_with_warmup)


def read_tsv(path, text_col, pair_col, label_col):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return ([r[text_col] for r in rows], [r[pair_col] for r in rows] if pair_col else None,
            [int(r[label_col]) for r in rows])


def encode(tok, texts, pairs, max_len, **kw):
    return tok(texts, pairs, truncation=True, max_length=max_len, **kw)


def train_loop(a, tok, model, xt, pt, yt):
    no_decay = [n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    groups = [{"params": [p for n, p in model.named_parameters() if n not in no_decay],
               "weight_decay": a.weight_decay},
              {"params": [p for n, p in model.named_parameters() if n in no_decay],
               "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    steps = math.ceil(len(xt) / a.batch) * a.epochs
    sched = get_linear_schedule_with_warmup(opt, math.ceil(a.warmup_ratio * steps), steps)
    g = torch.Generator().manual_seed(a.seed)
    for _ in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g).tolist()
        for s in range(0, len(xt), a.batch):
            idx = perm[s:s + a.batch]
            enc = encode(tok, [xt[i] for i in idx], [pt[i] for i in idx] if pt else None,
                         a.max_len, padding=True, return_tensors="pt")
            loss = model(**enc, labels=torch.tensor([yt[i] for i in idx])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    return {"mode": "loop"}


class Examples(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        d = {k: v[i] for k, v in self.enc.items()}
        d["labels"] = self.labels[i]
        return d


def train_trainer(a, tok, model, xt, pt, yt):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    ds = Examples(encode(tok, xt, pt, a.max_len), yt)
    with tempfile.TemporaryDirectory(prefix="finetune_hf_") as out:
        args = TrainingArguments(
            output_dir=out, num_train_epochs=a.epochs, learning_rate=a.lr,
            per_device_train_batch_size=a.batch, per_device_eval_batch_size=64, seed=a.seed,
            warmup_steps=a.warmup_ratio if a.warmup_ratio < 1 else int(a.warmup_ratio),
            weight_decay=a.weight_decay, max_grad_norm=1.0, lr_scheduler_type="linear",
            eval_strategy="no", save_strategy="no", logging_strategy="no", report_to="none",
            use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
            **({"optim": a.optim} if a.optim else {}))
        trainer = Trainer(model=model, args=args, train_dataset=ds,
                          data_collator=DataCollatorWithPadding(tok))
        with contextlib.redirect_stdout(sys.stderr):  # its log lines; stdout is the JSON
            res = trainer.train()
    return {"mode": "trainer", "optim": str(args.optim.value if hasattr(args.optim, "value")
                                           else args.optim),
            "steps": res.global_step, "train_loss": round(res.training_loss, 4)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--loop", action="store_true", help="plain PyTorch loop instead of Trainer")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--optim", default="", help="Trainer's optim (default: its default)")
    p.add_argument("--text-column", default="sentence")
    p.add_argument("--pair-column", default="")
    p.add_argument("--label-column", default="label")
    for n, t in (("model_dir", str), ("train", str), ("dev", str), ("epochs", int), ("lr", float),
                 ("batch", int), ("max_len", int), ("seed", int)):
        p.add_argument(n, type=t)
    p.add_argument("warmup_ratio", type=float, nargs="?", default=0.0)
    p.add_argument("weight_decay", type=float, nargs="?", default=0.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    loop = a.loop
    if not loop:
        try:
            import accelerate  # noqa: F401  (Trainer needs it)
        except ImportError:
            print("finetune_hf.py: accelerate is missing; using the PyTorch loop (--loop)",
                  file=sys.stderr)
            loop = True
    torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    xt, pt, yt = read_tsv(a.train, a.text_column, a.pair_column, a.label_column)
    xd, pd, yd = read_tsv(a.dev, a.text_column, a.pair_column, a.label_column)
    K = max(max(yt), 1) + 1
    model = AutoModelForSequenceClassification.from_pretrained(a.model_dir, num_labels=K)
    t0 = time.time()
    info = (train_loop if loop else train_trainer)(a, tok, model, xt, pt, yt)
    train_s = time.time() - t0
    model.eval()
    pred = []
    with torch.no_grad():
        for s in range(0, len(xd), 64):
            enc = encode(tok, xd[s:s + 64], pd[s:s + 64] if pd else None, a.max_len,
                         padding=True, return_tensors="pt")
            pred += model(**enc).logits.argmax(-1).tolist()
    acc = sum(int(q == y) for q, y in zip(pred, yd)) / len(yd)
    tp = sum(int(q == 1 and y == 1) for q, y in zip(pred, yd))
    fp = sum(int(q == 1 and y != 1) for q, y in zip(pred, yd))
    fn = sum(int(q != 1 and y == 1) for q, y in zip(pred, yd))
    f1 = 2 * tp / (2 * tp + fp + fn) if K == 2 and tp + fp + fn else None
    n_ex = len(xt) * a.epochs
    print(json.dumps({"impl": "transformers-" + info.pop("mode"), "torch": torch.__version__,
                      "train_examples": len(xt), "dev_examples": len(xd), "dev_accuracy": acc,
                      "dev_f1": f1, "train_seconds": round(train_s, 1),
                      "examples_per_s": round(n_ex / train_s, 2),
                      "threads": torch.get_num_threads(), **info}))


if __name__ == "__main__":
    main()
