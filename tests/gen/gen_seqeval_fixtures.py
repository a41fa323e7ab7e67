#!/usr/bin/env python3
"""Writes tests/data/ner/seqeval.json: entity-level scores computed by seqeval (default mode,
what run_ner.py's evaluate("seqeval") and conlleval report) for tests/test_ner.c to compare
src/train/entity.c against.

    python3 tests/gen/gen_seqeval_fixtures.py

Run by developers (needs seqeval), not by CI; the output is committed. Cases: gold sequences in
IOB1, IOB2 and IOBES made from random entities, predictions made from them by random edits
(a tag replaced, a type changed, a boundary moved, an entity dropped), sequences of arbitrary
tags (invalid in every scheme), tags without a type ("B", "I"), and predictions with no entity.
For each case: every sentence's gold and predicted tags; seqeval's get_entities of the gold
(sentences joined, as seqeval joins nested lists); micro precision, recall and F1; accuracy;
and per type precision, recall, F1 and support (classification_report).
"""
import importlib.metadata
import json
import os
import random

from seqeval.metrics import accuracy_score, classification_report, f1_score
from seqeval.metrics import precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

TYPES = ["PER", "LOC", "ORG", "MISC"]


def entities_to_tags(n, ents, scheme):
    tags = ["O"] * n
    prev_end, prev_type = -2, None
    for start, end, t in ents:
        for i in range(start, end + 1):
            if scheme == "IOB2":
                tags[i] = ("B-" if i == start else "I-") + t
            elif scheme == "IOBES":
                if start == end:
                    tags[i] = "S-" + t
                else:
                    tags[i] = ("B-" if i == start else "E-" if i == end else "I-") + t
            else:  # IOB1: B- only when the previous word ends an entity of the same type
                b = i == start and prev_end == start - 1 and prev_type == t
                tags[i] = ("B-" if b else "I-") + t
        prev_end, prev_type = end, t
    return tags


def random_entities(rng, n):
    ents, i = [], 0
    while i < n:
        if rng.random() < 0.35:
            length = min(n - i, rng.choice([1, 1, 2, 2, 3, 4]))
            ents.append((i, i + length - 1, rng.choice(TYPES)))
            i += length
        else:
            i += 1
    return ents


def perturb(rng, n, ents):
    out = []
    for s, e, t in ents:
        r = rng.random()
        if r < 0.1:
            continue  # dropped
        if r < 0.2:
            t = rng.choice(TYPES)
        elif r < 0.3 and e + 1 < n:
            e += 1
        elif r < 0.4 and e > s:
            e -= 1
        out.append((s, e, t))
    out.sort()
    clean, last = [], -1  # keep them disjoint
    for s, e, t in out:
        if s > last:
            clean.append((s, e, t))
            last = e
    if rng.random() < 0.3 and n > 0:
        i = rng.randrange(n)
        if all(not (s <= i <= e) for s, e, _ in clean):
            clean.append((i, i, rng.choice(TYPES)))
            clean.sort()
    return clean


def scheme_case(rng, scheme, nsent):
    gold, pred = [], []
    for _ in range(nsent):
        n = rng.randrange(1, 16)
        ents = random_entities(rng, n)
        gold.append(entities_to_tags(n, ents, scheme))
        pred.append(entities_to_tags(n, perturb(rng, n, ents), scheme))
    return gold, pred


def garbage_case(rng, nsent, alphabet):
    gold, pred = [], []
    for _ in range(nsent):
        n = rng.randrange(1, 12)
        gold.append([rng.choice(alphabet) for _ in range(n)])
        pred.append([rng.choice(alphabet) for _ in range(n)])
    return gold, pred


def score(name, gold, pred):
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    types = sorted(k for k in report if k not in ("micro avg", "macro avg", "weighted avg"))
    return {
        "name": name, "gold": gold, "pred": pred,
        "gold_entities": [list(e) for e in get_entities(gold)],
        "precision": precision_score(gold, pred, zero_division=0),
        "recall": recall_score(gold, pred, zero_division=0),
        "f1": f1_score(gold, pred, zero_division=0),
        "accuracy": accuracy_score(gold, pred),
        "types": [{"type": t, "precision": report[t]["precision"], "recall": report[t]["recall"],
                   "f1": report[t]["f1-score"], "support": int(report[t]["support"])}
                  for t in types],
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rng = random.Random(20261201)
    cases = []
    for scheme in ("IOB1", "IOB2", "IOBES"):
        for k in range(3):
            cases.append(score(f"{scheme}-{k}", *scheme_case(rng, scheme, 40)))
    alphabet = ["O", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC",
                "I-ORG"]
    for k in range(3):
        cases.append(score(f"arbitrary-{k}", *garbage_case(rng, 30, alphabet)))
    cases.append(score("untyped", *garbage_case(rng, 20, ["O", "B", "I", "B-X", "I-X"])))
    gold, _ = scheme_case(rng, "IOB2", 10)
    cases.append(score("no-predictions", gold, [["O"] * len(g) for g in gold]))
    cases.append(score("all-correct", gold, gold))
    doc = {"generator": "tests/gen/gen_seqeval_fixtures.py",
           "seqeval": importlib.metadata.version("seqeval"), "cases": cases}
    path = os.path.join(root, "tests", "data", "ner", "seqeval.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
