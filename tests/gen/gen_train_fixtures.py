#!/usr/bin/env python3
"""Writes tests/data/tiny-train-ref.safetensors: what tests/test_ref_bwd.c checks the plain-C
training reference (src/ref/ref_train.h) against.

    HF_HUB_OFFLINE=1 python3 tests/gen/gen_train_fixtures.py [--tiny tests/data/tiny-bert]
        [--out tests/data/tiny-train-ref.safetensors]

Run by developers (needs torch and transformers), not by CI; the output is committed. It reads the
current tests/data/tiny-bert (rerun it whenever that model is regenerated: the C test compares the
FNV-1a of model.safetensors recorded here). BertForSequenceClassification is loaded from the
tiny BertModel with a classifier initialised under a fixed torch seed (stored here, since the
model directory has none), eager attention, dropout off (model.eval()).

Tensors (F32 unless noted; <name> runs over every model.named_parameters() name, e.g.
bert.encoder.layer.0.attention.self.query.weight, classifier.bias):
  input_ids, token_type_ids, attention_mask  (B, T) I32  right-padded: three single texts and a
                                                         sentence pair (token types 0 and 1)
  labels                                     (B) I32     class labels for num_labels = 3
  cls.classifier.weight, cls.classifier.bias (3, C), (3) the classifier before training
  cls.loss (1), cls.logits (B, 3)            CrossEntropyLoss (mean) on the whole batch
  cls.grad.<name>                            d loss / d parameter for the whole batch
  adamw.loss (3), adamw.grad_norm (3), adamw.lr (3)  per optimizer step: the accumulated loss,
                                             the global gradient norm before clipping, the lr used
  adamw.<name>                               every parameter after 3 AdamW steps (see ADAMW)
  reg.labels (B)                             float targets for num_labels = 1 (MSE regression)
  reg.classifier.weight, reg.classifier.bias (1, C), (1)
  reg.loss (1), reg.logits (B, 1), reg.grad.<name>
Metadata: versions, the model's FNV-1a, the AdamW recipe, and the Trainer's no-decay names.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local directories only, before transformers loads

import numpy as np
import safetensors
import torch
import transformers
from transformers import AutoTokenizer, BertForSequenceClassification, Trainer
from transformers import get_linear_schedule_with_warmup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import f32, fnv1a64, i32, save_sorted  # noqa: E402

TEXTS = [
    "Hello, the world was on fire!",
    "a b",
    "The quick brown fox jumps over the lazy dog, then it runs away to the forest.",
]
PAIR = ("The cat sat on the mat.", "It was not happy at all.")
LABELS = [0, 2, 1, 2]
TARGETS = [0.5, -1.25, 2.0, 0.75]
CLS_SEED = 4321  # torch seed for the classifier initialisation (num_labels = 3)
REG_SEED = 8765  # and for the regression head (num_labels = 1)

# Three optimizer steps on the same batch, each accumulating two micro-batches (rows 0-1, 2-3)
# with loss / 2, clipping the global gradient norm, then AdamW and the linear schedule.
# max_grad_norm is below the tiny model's gradient norm (about 0.33), so clipping engages.
ADAMW = {"lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.999], "eps": 1e-8,
         "warmup_steps": 1, "total_steps": 3, "max_grad_norm": 0.25, "grad_accum": 2}


def versions():
    return {"generator": "tests/gen/gen_train_fixtures.py", "torch": torch.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__}


def load(tiny_dir, num_labels, seed):
    torch.manual_seed(seed)  # the classifier is newly initialised (initializer_range normal)
    model = BertForSequenceClassification.from_pretrained(
        tiny_dir, num_labels=num_labels, attn_implementation="eager")
    model.eval()  # dropout off
    return model.float()


def batch_tensors(tok):
    rows = [tok(t) for t in TEXTS] + [tok(*PAIR)]
    assert 1 in rows[-1]["token_type_ids"], "the pair must carry token type 1"
    assert all(tok.unk_token_id not in r["input_ids"] for r in rows), "tiny vocab produced [UNK]"
    T = max(len(r["input_ids"]) for r in rows) + 1  # every row has padding

    def pad(key, value):
        return [r[key] + [value] * (T - len(r[key])) for r in rows]

    ids = pad("input_ids", tok.pad_token_id)
    types = pad("token_type_ids", 0)
    mask = [[1] * len(r["input_ids"]) + [0] * (T - len(r["input_ids"])) for r in rows]
    return ids, types, mask


def run(model, ids, types, mask, labels):
    return model(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                 attention_mask=torch.tensor(mask), labels=labels)


def loss_and_grads(model, ids, types, mask, labels, prefix, t):
    model.zero_grad(set_to_none=True)
    out = run(model, ids, types, mask, labels)
    out.loss.backward()
    t[f"{prefix}.loss"] = f32(out.loss.reshape(1))
    t[f"{prefix}.logits"] = f32(out.logits)
    for name, p in model.named_parameters():
        t[f"{prefix}.grad.{name}"] = f32(p.grad)
    t[f"{prefix}.classifier.weight"] = f32(model.classifier.weight)
    t[f"{prefix}.classifier.bias"] = f32(model.classifier.bias)
    return out.loss.item()


def adamw_steps(model, B, micro, t):
    """The ADAMW recipe on a batch of B rows: micro(rows) runs the model on a slice of them and
    returns its output (with the loss). Writes adamw.* into t; returns the per-step losses,
    gradient norms and learning rates, and the names without weight decay."""
    a = ADAMW
    decay = set(Trainer.get_decay_parameter_names(None, model))  # self is unused
    params = list(model.named_parameters())
    groups = [{"params": [p for n, p in params if n in decay], "weight_decay": a["weight_decay"]},
              {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a["lr"], betas=tuple(a["betas"]), eps=a["eps"],
                            foreach=False)
    sched = get_linear_schedule_with_warmup(opt, a["warmup_steps"], a["total_steps"])
    k = a["grad_accum"]
    assert B % k == 0
    mb = B // k
    losses, norms, lrs = [], [], []
    for _ in range(a["total_steps"]):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for j in range(k):
            out = micro(slice(j * mb, (j + 1) * mb))
            (out.loss / k).backward()
            total += out.loss.item() / k
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a["max_grad_norm"])
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(total)
        norms.append(norm.item())
    assert any(n > a["max_grad_norm"] for n in norms), f"clipping never engaged: {norms}"
    t["adamw.loss"] = np.asarray(losses, dtype=np.float32)
    t["adamw.grad_norm"] = np.asarray(norms, dtype=np.float32)
    t["adamw.lr"] = np.asarray(lrs, dtype=np.float32)
    for name, p in model.named_parameters():
        t[f"adamw.{name}"] = f32(p)
    no_decay = [n for n, _ in params if n not in decay]
    return losses, norms, lrs, no_decay


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", default=os.path.join(root, "tests", "data", "tiny-bert"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data",
                                                  "tiny-train-ref.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.use_deterministic_algorithms(True)

    tok = AutoTokenizer.from_pretrained(args.tiny)
    ids, types, mask = batch_tensors(tok)
    t = {"input_ids": i32(ids), "token_type_ids": i32(types), "attention_mask": i32(mask),
         "labels": i32(LABELS), "reg.labels": np.asarray(TARGETS, dtype=np.float32)}
    labels = torch.tensor(LABELS)

    cls = load(args.tiny, 3, CLS_SEED)
    cls_loss = loss_and_grads(cls, ids, types, mask, labels, "cls", t)
    losses, norms, lrs, no_decay = adamw_steps(
        cls, len(ids), lambda r: run(cls, ids[r], types[r], mask[r], labels[r]), t)

    reg = load(args.tiny, 1, REG_SEED)
    assert reg.config.num_labels == 1
    reg_loss = loss_and_grads(reg, ids, types, mask, torch.tensor(TARGETS), "reg", t)
    assert reg.config.problem_type == "regression", reg.config.problem_type

    meta = versions()
    meta.update({"model": "tests/data/tiny-bert", "attn_implementation": "eager",
                 "dropout": "off (model.eval())",
                 "model_fnv1a64": fnv1a64(os.path.join(args.tiny, "model.safetensors")),
                 "cls_seed": str(CLS_SEED), "reg_seed": str(REG_SEED),
                 "adamw": json.dumps(ADAMW), "no_decay": json.dumps(no_decay),
                 "texts": json.dumps(TEXTS + [list(PAIR)])})
    save_sorted(t, args.out, meta)
    print(f"wrote {args.out}: B={len(ids)} T={len(ids[0])} cls loss {cls_loss:.6f} "
          f"reg loss {reg_loss:.6f}; AdamW losses {losses} grad norms {norms} lr {lrs} "
          f"({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
