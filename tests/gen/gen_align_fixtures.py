#!/usr/bin/env python3
"""Writes tests/data/ner/align-<name>.json: word tags aligned to subword tokens the way
transformers' examples/pytorch/token-classification/run_ner.py aligns them (its
tokenize_and_align_labels), for tests/test_ner.c to compare src/train/align.c against.

    python3 tests/gen/gen_align_fixtures.py [--tokenizer DIR --name NAME]

Defaults: tests/data/tiny-bert (name "tiny") and, when present, models/all-MiniLM-L6-v2 (name
"minilm"). Run by developers (needs transformers), not by CI; the output is committed.

For each sentence (words, IOB1 tags): the fast tokenizer with is_split_into_words=True and no
truncation; labels: -100 on special tokens, the word's label id on its first subword, on later
subwords -100 ("labels") or, as --label_all_tokens, the id of I-X for a word tagged B-X when
I-X is a label, else the word's own ("labels_all"). label_list is the sorted set of tags
(run_ner's get_label_list for string tags).
"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers
from transformers import AutoTokenizer

SENTENCES = [
    (["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
     ["I-ORG", "O", "I-MISC", "O", "O", "O", "I-MISC", "O", "O"]),
    (["Peter", "Blackburn"], ["I-PER", "I-PER"]),
    (["BRUSSELS", "1996-08-22"], ["I-LOC", "O"]),
    (["Müller", "visited", "São", "Paulo", "and", "naïve", "Zürich-based", "firms", "."],
     ["I-PER", "O", "I-LOC", "I-LOC", "O", "O", "I-MISC", "O", "O"]),
    (["Germany", "'s", "representative", "to", "the", "European", "Union", "'s",
      "veterinary", "committee", "Werner", "Zwingmann", "said", "on", "Wednesday"],
     ["I-LOC", "O", "O", "O", "O", "I-ORG", "I-ORG", "O", "O", "O", "I-PER", "I-PER", "O", "O",
      "O"]),
    (["東京", "is", "in", "Japan", "(", "JPN", ")", "--", "3,000", "km", "away", "!"],
     ["I-LOC", "O", "O", "I-LOC", "O", "I-LOC", "O", "O", "O", "O", "O", "O"]),
    (["Antidisestablishmentarianism", "B-side", "X"], ["O", "B-MISC", "I-MISC"]),
    (["Cricket", "-", "Leicestershire", "take", "over", "at", "top", "after", "innings",
      "victory", "."],
     ["O", "O", "I-ORG", "O", "O", "O", "O", "O", "O", "O", "O"]),
]


def align(tok, words, tags, label_to_id, b_to_i, all_tokens):
    enc = tok(words, is_split_into_words=True, truncation=False)
    out, prev = [], None
    for w in enc.word_ids():
        if w is None:
            out.append(-100)
        elif w != prev:
            out.append(label_to_id[tags[w]])
        else:
            out.append(b_to_i[label_to_id[tags[w]]] if all_tokens else -100)
        prev = w
    return enc["input_ids"], out


def write(tok_dir, name, out_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)
    assert tok.is_fast
    label_list = sorted({t for _, tags in SENTENCES for t in tags})
    label_to_id = {l: i for i, l in enumerate(label_list)}
    b_to_i = [label_list.index("I-" + l[2:]) if l.startswith("B-") and "I-" + l[2:] in label_list
              else i for i, l in enumerate(label_list)]
    sents = []
    for words, tags in SENTENCES:
        ids, labels = align(tok, words, tags, label_to_id, b_to_i, False)
        ids2, labels_all = align(tok, words, tags, label_to_id, b_to_i, True)
        assert ids == ids2
        sents.append({"tokens": words, "tags": tags, "input_ids": ids, "labels": labels,
                      "labels_all": labels_all})
    doc = {"generator": "tests/gen/gen_align_fixtures.py", "transformers": transformers.__version__,
           "tokenizer": os.path.relpath(tok_dir), "label_list": label_list, "b_to_i": b_to_i,
           "sentences": sents}
    path = os.path.join(out_dir, f"align-{name}.json")
    with open(path, "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(sents)} sentences, {sum(len(s['input_ids']) for s in sents)} tokens")


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer")
    ap.add_argument("--name")
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "ner"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.tokenizer:
        write(args.tokenizer, args.name or "custom", args.out)
        return
    write(os.path.join(root, "tests", "data", "tiny-bert"), "tiny", args.out)
    minilm = os.path.join(root, "models", "all-MiniLM-L6-v2")
    if os.path.isdir(minilm):
        write(minilm, "minilm", args.out)


if __name__ == "__main__":
    main()
