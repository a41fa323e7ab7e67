#!/usr/bin/env python3
"""The Python pipeline bertcl probe replaces, for comparison (bench/probe_vs_sklearn.sh):
transformers hidden states (output_hidden_states) -> per-layer features -> StandardScaler ->
scikit-learn LogisticRegression(C) per layer, scored on the eval set.

sequence: mean pooling over real tokens (and [CLS]), accuracy.
token:    word vectors (first subword of each word), entity F1 (seqeval, IOB1 -> default mode).

Prints one JSON object: per layer and pooling the eval score, and the wall time of the whole
pipeline (extraction + fits). Run with the same model, data, C and max length as bertcl."""
import argparse, json, sys, time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from transformers import AutoModel, AutoTokenizer


def read_tsv(path, n):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        ti, li = head.index("sentence"), head.index("label")
        for line in f:
            if n and len(texts) >= n:
                break
            c = line.rstrip("\n").split("\t")
            texts.append(c[ti])
            labels.append(c[li])
    return texts, labels


def read_conll(path, n):
    sents, tags, words, ts = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    sents.append(words), tags.append(ts)
                    words, ts = [], []
                    if n and len(sents) >= n:
                        break
                continue
            c = line.split()
            words.append(c[0]), ts.append(c[-1])
    if words and (not n or len(sents) < n):
        sents.append(words), tags.append(ts)
    return sents, tags


@torch.no_grad()
def sequence_features(model, tok, texts, max_len, batch):
    out = None
    for s in range(0, len(texts), batch):
        enc = tok(texts[s:s + batch], padding=True, truncation=True, max_length=max_len,
                  return_tensors="pt")
        hs = model(**enc, output_hidden_states=True).hidden_states
        m = enc["attention_mask"].unsqueeze(-1).float()
        mean = [((h * m).sum(1) / m.sum(1)).numpy() for h in hs]
        cls = [h[:, 0].numpy() for h in hs]
        if out is None:
            out = {"mean": [[] for _ in hs], "cls": [[] for _ in hs]}
        for l in range(len(hs)):
            out["mean"][l].append(mean[l])
            out["cls"][l].append(cls[l])
    return {k: [np.concatenate(v) for v in vs] for k, vs in out.items()}


@torch.no_grad()
def word_features(model, tok, sents, max_len, batch):
    layers = None
    for s in range(0, len(sents), batch):
        enc = tok(sents[s:s + batch], is_split_into_words=True, padding=True, truncation=True,
                  max_length=max_len, return_tensors="pt")
        hs = model(**{k: v for k, v in enc.items()}, output_hidden_states=True).hidden_states
        if layers is None:
            layers = [[] for _ in hs]
        for b in range(len(sents[s:s + batch])):
            wid = enc.word_ids(b)
            first = {}
            for t, w in enumerate(wid):
                if w is not None and w not in first:
                    first[w] = t
            idx = [first[w] for w in sorted(first)]
            for l, h in enumerate(hs):
                layers[l].append(h[b, idx].numpy())
    return [np.concatenate(v) for v in layers]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", choices=["sequence", "token"], default="sequence")
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--n-train", type=int, default=0)
    ap.add_argument("--n-eval", type=int, default=0)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pools", default="cls,mean")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModel.from_pretrained(a.model).eval()
    res = {"C": a.C, "cells": []}
    if a.task == "sequence":
        tx, ty = read_tsv(a.train, a.n_train)
        ex, ey = read_tsv(a.eval, a.n_eval)
        ftr = sequence_features(model, tok, tx, a.max_len, a.batch)
        fev = sequence_features(model, tok, ex, a.max_len, a.batch)
        t1 = time.time()
        for pool in a.pools.split(","):
            for l in range(len(ftr[pool])):
                sc = StandardScaler().fit(ftr[pool][l])
                clf = LogisticRegression(C=a.C, max_iter=5000, tol=1e-6).fit(sc.transform(ftr[pool][l]), ty)
                acc = float((clf.predict(sc.transform(fev[pool][l])) == np.array(ey)).mean())
                res["cells"].append({"row": str(l), "col": pool, "score": acc})
    else:
        from seqeval.metrics import f1_score
        ts, tt = read_conll(a.train, a.n_train)
        es, et = read_conll(a.eval, a.n_eval)
        ftr = word_features(model, tok, ts, a.max_len, a.batch)
        fev = word_features(model, tok, es, a.max_len, a.batch)
        ytr = [t for s in tt for t in s]
        t1 = time.time()
        for l in range(len(ftr)):
            if len(ftr[l]) != len(ytr):
                sys.exit(f"layer {l}: {len(ftr[l])} word vectors for {len(ytr)} tags (a sentence "
                         "longer than --max-len?)")
            sc = StandardScaler().fit(ftr[l])
            clf = LogisticRegression(C=a.C, max_iter=5000, tol=1e-6).fit(sc.transform(ftr[l]), ytr)
            pred = clf.predict(sc.transform(fev[l]))
            out, i = [], 0
            for s in et:
                out.append(list(pred[i:i + len(s)]))
                i += len(s)
            res["cells"].append({"row": str(l), "col": "first", "score": float(f1_score(et, out))})
    t2 = time.time()
    res["extract_seconds"] = t1 - t0
    res["fit_seconds"] = t2 - t1
    res["total_seconds"] = t2 - t0
    print(json.dumps(res))


if __name__ == "__main__":
    main()
