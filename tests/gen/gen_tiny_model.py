#!/usr/bin/env python3
"""Generates tests/data/tiny-bert/: a tiny random BertModel written by transformers.

    python3 tests/gen/gen_tiny_model.py [--minilm models/all-MiniLM-L6-v2] [--out tests/data/tiny-bert]

The vocabulary is a subset of the all-MiniLM-L6-v2 (bert-base-uncased) vocab.txt: its first 1000
lines (special tokens at their usual ids 0, 100-103), every single ASCII character and its ##
continuation (so any ASCII text tokenizes without [UNK]), the 200 most frequent whole words and
the 60 most frequent multi-character ## pieces. The output is committed, so tests need no Python.
"""
import argparse
import json
import os
import sys

import torch
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertModel, BertTokenizerFast

SEED = 1234


def build_vocab(minilm_vocab):
    with open(minilm_vocab, encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f]
    vocab = list(lines[:1000])
    seen = set(vocab)

    def add(tok):
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)

    for tok in lines:
        core = tok[2:] if tok.startswith("##") else tok
        if len(core) == 1 and 0x21 <= ord(core) < 0x7F:
            add(tok)
    words = [t for t in lines[1996:] if t.isalpha() and t.isascii() and len(t) > 1]
    for tok in words[:200]:
        add(tok)
    pieces = [t for t in lines[1996:] if t.startswith("##") and len(t) > 3 and t[2:].isalpha()
              and t.isascii()]
    for tok in pieces[:60]:
        add(tok)
    return vocab


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", default=os.environ.get(
        "BERTCL_MINILM_DIR", os.path.join(root, "models", "all-MiniLM-L6-v2")))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "tiny-bert"))
    args = ap.parse_args()

    vocab = build_vocab(os.path.join(args.minilm, "vocab.txt"))
    os.makedirs(args.out, exist_ok=True)
    vocab_path = os.path.join(args.out, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")

    torch.manual_seed(SEED)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        position_embedding_type="absolute",
    )
    model = BertModel(config, add_pooling_layer=True)
    # Default init has zero biases and unit LayerNorm; randomise them so tests see every term.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    model.save_pretrained(args.out, safe_serialization=True)

    # transformers 5 ignores vocab_file; build the WordPiece model with tokenizers directly.
    wordpiece = BertWordPieceTokenizer(vocab_path, lowercase=True)
    special = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                   mask_token="[MASK]")
    tok = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=True,
                            model_max_length=config.max_position_embeddings, **special)
    ids = tok("Hello, the world was on fire!")["input_ids"]
    assert ids[0] == 101 and ids[-1] == 102 and 100 not in ids, ids
    tok.save_pretrained(args.out)
    with open(os.path.join(args.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(args.out, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(special, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out}: vocab {len(vocab)}, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
