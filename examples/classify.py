#!/usr/bin/env python3
"""Sentence embeddings from bertcl, then a separate scikit-learn model on them.

    pip install ./python scikit-learn
    python3 examples/classify.py                                   # the small set below
    python3 examples/classify.py models/all-MiniLM-L6-v2 train.tsv dev.tsv   # TSV: sentence, label

With TSV files (a header naming the columns `sentence` and `label`, as GLUE's SST-2), it trains
on the first and reports accuracy on the second; without, it cross-validates on the examples
below. The device is $BERTCL_DEVICE, else the default one (`bertcl devices`).
"""
import csv
import sys

import bertcl
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

EXAMPLES = [  # (text, label): 1 positive, 0 negative
    ("a charming and often affecting journey", 1), ("unflinchingly bleak and desperate", 0),
    ("the acting is superb and the story moving", 1), ("a tedious, joyless slog", 0),
    ("one of the most delightful films of the year", 1), ("the plot makes no sense at all", 0),
    ("funny, warm and beautifully shot", 1), ("i walked out after half an hour", 0),
    ("a triumph of imagination", 1), ("dull characters and a lifeless script", 0),
    ("you will laugh and you will cry", 1), ("an overlong mess with nothing to say", 0),
    ("gorgeous music and a clever script", 1), ("the jokes fall flat every time", 0),
    ("a must-see for the whole family", 1), ("painfully slow and badly acted", 0),
    ("smart, surprising and full of heart", 1), ("a waste of a talented cast", 0),
    ("the best performance of her career", 1), ("predictable from the first scene", 0),
]


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [r["label"] for r in rows]


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "models/all-MiniLM-L6-v2"
    # ---- the ten lines: embeddings, then a classifier on them ----
    enc = bertcl.Encoder(model)                        # weights on the OpenCL device
    if len(sys.argv) > 3:
        (tr_x, tr_y), (ev_x, ev_y) = read_tsv(sys.argv[2]), read_tsv(sys.argv[3])
        clf = LogisticRegression(max_iter=1000).fit(enc.encode(tr_x, batch_size=128), tr_y)
        print(f"accuracy on {sys.argv[3]}: {clf.score(enc.encode(ev_x, batch_size=128), ev_y):.4f}")
    else:
        texts, labels = zip(*EXAMPLES)
        X = enc.encode(list(texts))                    # (20, 384) float32, mean-pooled, L2-normed
        clf = LogisticRegression(max_iter=1000)
        print(f"5-fold accuracy: {cross_val_score(clf, X, labels, cv=5).mean():.3f}")
        clf.fit(X, labels)
        new = ["what a wonderful film", "a dull, lifeless plot"]
        print(dict(zip(new, map(int, clf.predict(enc.encode(new))))))


if __name__ == "__main__":
    main()
