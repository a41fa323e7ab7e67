#!/usr/bin/env python3
"""Training-step fixtures of every encoder family's classification heads: what transformers
computes for one batch (loss, logits, every parameter's gradient) and after three AdamW steps
(the recipe of gen_train_fixtures.py: gradient accumulation over two micro-batches, clipping by
global norm, AdamW with the Trainer's no-decay group, linear schedule with warm-up).

    HF_HUB_OFFLINE=1 python3 tests/gen/gen_family_train_fixtures.py [--dir tests/data/families]

Run by developers (needs torch, transformers), not by CI; the outputs are committed. It reads the
tiny model folders gen_family_models.py wrote (rerun it whenever those are regenerated: the C
tests compare the FNV-1a of model.safetensors recorded here) and writes
<dir>/<name>-train-ref.safetensors for

  tiny-roberta     RobertaForSequenceClassification (3 labels: dense, tanh, out_proj on <s>)
  tiny-distilbert  DistilBertForSequenceClassification (2 labels: pre_classifier, ReLU, classifier)
  tiny-mpnet       MPNetForSequenceClassification (2 labels, relative attention bias)
  tiny-camembert   CamembertForTokenClassification (5 labels on every token, -100 on padding)

Dropout is off (model.eval()): torch's RNG is not bertcl's Philox, so parity is checked without
it (the dropout masks are checked against the plain-C reference instead). No real token carries
the pad id (nn.Embedding(padding_idx) would zero its gradient row).

Tensors (F32 unless noted; <name> runs over model.named_parameters()):
  input_ids, attention_mask (B, T) I32, token_type_ids (B, T) I32 where the family has types
  labels (B) or (B, T) I32
  loss (1), logits (B, K) or (B, T, K), grad.<name>    one forward + backward on the batch
  adamw.loss (3), adamw.grad_norm (3), adamw.lr (3)    per optimizer step
  adamw.<name>                                         every parameter after the 3 steps
Metadata: versions, the model's FNV-1a, the recipe, the Trainer's no-decay names, the parameter
names in named_parameters() order.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fixture_io

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import safetensors
import torch
import transformers
from fixture_io import f32, fnv1a64, i32, save_sorted
from gen_train_fixtures import ADAMW, adamw_steps  # BERT's recipe, the same for every family



def versions():
    return {"generator": "tests/gen/gen_family_train_fixtures.py", "torch": torch.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__}










def make_batch(rng, lengths, T, pad, first, last, special, V):
    ids, mask = [], []
    for length in lengths:
        row = [int(x) for x in rng.integers(special, V, size=length)]
        assert pad not in row[1:-1] or pad < special
        row[0] = first
        if length > 1:
            row[-1] = last
        ids.append(row + [pad] * (T - length))
        mask.append([1] * length + [0] * (T - length))
    return ids, mask


def run(model, b, labels):
    kw = {k: torch.tensor(v) for k, v in b.items()}
    return model(**kw, labels=labels)


def rows(b, sl):
    return {k: v[sl] for k, v in b.items()}


def gen(folder, cls, out_path, b, labels):
    torch.manual_seed(0)
    model = cls.from_pretrained(folder, attn_implementation="eager").float()
    model.eval()  # dropout off
    t = {k: i32(v) for k, v in b.items()}
    t["labels"] = i32(labels)
    lab = torch.tensor(labels)
    model.zero_grad(set_to_none=True)
    out = run(model, b, lab)
    out.loss.backward()
    t["loss"] = f32(out.loss.reshape(1))
    t["logits"] = f32(out.logits)
    names = []
    for name, p in model.named_parameters():
        names.append(name)
        assert p.grad is not None, f"{name} got no gradient"
        t[f"grad.{name}"] = f32(p.grad)

    losses, norms, _, no_decay = adamw_steps(
        model, len(labels), lambda sl: run(model, rows(b, sl), lab[sl]), t)
    meta = versions()
    meta.update({"model": folder, "architecture": cls.__name__, "attn_implementation": "eager",
                 "dropout": "off (model.eval())",
                 "model_fnv1a64": fnv1a64(os.path.join(folder, "model.safetensors")),
                 "adamw": json.dumps(ADAMW), "parameters": json.dumps(names),
                 "no_decay": json.dumps(no_decay)})
    save_sorted(t, out_path, meta)
    print(f"wrote {out_path}: loss {out.loss.item():.6f}, AdamW losses {losses}, grad norms "
          f"{norms} ({os.path.getsize(out_path)} bytes)", file=sys.stderr)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(root, "tests", "data", "families"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    from transformers import (CamembertForTokenClassification, DistilBertForSequenceClassification,
                              MPNetForSequenceClassification, RobertaForSequenceClassification)
    rng = np.random.default_rng(1818)
    T = 10
    d = args.dir

    def vocab(name):
        with open(os.path.join(d, name, "config.json")) as f:
            return json.load(f)["vocab_size"]

    ids, mask = make_batch(rng, [10, 6, 8, 3], T, pad=1, first=0, last=2, special=5,
                           V=vocab("tiny-roberta"))
    gen(os.path.join(d, "tiny-roberta"), RobertaForSequenceClassification,
        os.path.join(d, "tiny-roberta-train-ref.safetensors"),
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": [[0] * T for _ in ids]},
        [0, 2, 1, 2])

    ids, mask = make_batch(rng, [7, 10, 4, 9], T, pad=0, first=101, last=102, special=1000,
                           V=vocab("tiny-distilbert"))
    gen(os.path.join(d, "tiny-distilbert"), DistilBertForSequenceClassification,
        os.path.join(d, "tiny-distilbert-train-ref.safetensors"),
        {"input_ids": ids, "attention_mask": mask}, [1, 0, 0, 1])

    ids, mask = make_batch(rng, [9, 5, 10, 6], T, pad=1, first=0, last=2, special=1004,
                           V=vocab("tiny-mpnet") - 1)
    gen(os.path.join(d, "tiny-mpnet"), MPNetForSequenceClassification,
        os.path.join(d, "tiny-mpnet-train-ref.safetensors"),
        {"input_ids": ids, "attention_mask": mask}, [1, 1, 0, 1])

    ids, mask = make_batch(rng, [8, 10, 5, 7], T, pad=1, first=5, last=6, special=7,
                           V=vocab("tiny-camembert") - 1)
    labels = [[int(x) for x in rng.integers(0, 5, size=T)] for _ in ids]
    labels = [[l if m else -100 for l, m in zip(lr, mr)] for lr, mr in zip(labels, mask)]
    gen(os.path.join(d, "tiny-camembert"), CamembertForTokenClassification,
        os.path.join(d, "tiny-camembert-train-ref.safetensors"),
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": [[0] * T for _ in ids]},
        labels)


if __name__ == "__main__":
    main()
