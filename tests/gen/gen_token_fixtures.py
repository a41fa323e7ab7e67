#!/usr/bin/env python3
"""Writes tests/data/tiny-token-ref.safetensors: what tests/test_ref_bwd.c and
tests/test_trainer.c check the token-classification head (BertForTokenClassification) against.

    HF_HUB_OFFLINE=1 python3 tests/gen/gen_token_fixtures.py [--tiny tests/data/tiny-bert]
        [--out tests/data/tiny-token-ref.safetensors]

Run by developers (needs torch and transformers), not by CI; the output is committed. Same
batch, model check (FNV-1a of tiny-bert's model.safetensors) and AdamW recipe as
gen_train_fixtures.py (whose helpers it imports). BertForTokenClassification is loaded from the
tiny BertModel with a classifier initialised under a fixed torch seed, eager attention, dropout
off (model.eval()); it has no pooler (add_pooling_layer=False).

Tensors (F32 unless noted; <name> runs over model.named_parameters()):
  input_ids, token_type_ids, attention_mask  (B, T) I32  as tiny-train-ref.safetensors
  tok.labels                                 (B, T) I32  a tag id in [0, K) per real token, -100
                                                         on [CLS], [SEP], padding and on about a
                                                         quarter of the others (later subwords)
  tok.classifier.weight, tok.classifier.bias (K, C), (K) the classifier before training
  tok.loss (1), tok.logits (B*T, K)          CrossEntropyLoss (mean over labelled tokens)
  tok.grad.<name>                            d loss / d parameter for the whole batch
  tok_adamw.loss (3), tok_adamw.grad_norm (3), tok_adamw.lr (3), tok_adamw.<name>
                                             three AdamW steps (ADAMW of gen_train_fixtures.py:
                                             two micro-batches of loss / 2 each, clipping,
                                             warm-up and decay), parameters after them
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoTokenizer, BertForTokenClassification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_train_fixtures as g  # noqa: E402

K = 5              # e.g. O, B-PER, I-PER, B-LOC, I-LOC
TOK_SEED = 2468    # torch seed for the classifier
LABEL_SEED = 97    # numpy seed for the tags


def tags(tok, ids, mask):
    rng = np.random.default_rng(LABEL_SEED)
    special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    out = []
    for row, mrow in zip(ids, mask):
        r = []
        for t, m in zip(row, mrow):
            if not m or t in special or rng.random() < 0.25:
                r.append(-100)
            else:
                r.append(int(rng.integers(0, K)))
        out.append(r)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", default=os.path.join(root, "tests", "data", "tiny-bert"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data",
                                                  "tiny-token-ref.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.use_deterministic_algorithms(True)

    tok = AutoTokenizer.from_pretrained(args.tiny)
    ids, types, mask = g.batch_tensors(tok)
    labels = tags(tok, ids, mask)
    t = {"input_ids": g.i32(ids), "token_type_ids": g.i32(types),
         "attention_mask": g.i32(mask), "tok.labels": g.i32(labels)}
    torch.manual_seed(TOK_SEED)
    model = BertForTokenClassification.from_pretrained(
        args.tiny, num_labels=K, attn_implementation="eager").eval().float()
    assert not any(n.startswith("bert.pooler") for n, _ in model.named_parameters())
    lab = torch.tensor(labels)
    loss = g.loss_and_grads(model, ids, types, mask, lab, "tok", t)
    t["tok.logits"] = t["tok.logits"].reshape(-1, K)
    fixture = {}
    losses, norms, lrs, no_decay = g.adamw_steps(
        model, len(ids), lambda r: g.run(model, ids[r], types[r], mask[r], lab[r]), fixture)
    for name, value in fixture.items():
        t["tok_" + name] = value

    meta = g.versions()
    meta.update({"generator": "tests/gen/gen_token_fixtures.py",
                 "model": "tests/data/tiny-bert", "attn_implementation": "eager",
                 "dropout": "off (model.eval())", "num_labels": str(K),
                 "model_fnv1a64": g.fnv1a64(os.path.join(args.tiny, "model.safetensors")),
                 "tok_seed": str(TOK_SEED), "label_seed": str(LABEL_SEED),
                 "adamw": json.dumps(g.ADAMW), "no_decay": json.dumps(no_decay)})
    g.save_sorted(t, args.out, meta)
    print(f"wrote {args.out}: B={len(ids)} T={len(ids[0])} K={K} loss {loss:.6f}; AdamW losses "
          f"{losses} grad norms {norms} lr {lrs} ({os.path.getsize(args.out)} bytes)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
