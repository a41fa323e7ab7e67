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
import struct
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


def st_bytes(tensors, metadata=None):
    """safetensors bytes from [(name, dtype, shape, raw bytes)], in the given order."""
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def mini_tensors(prefix="", legacy=False, dtypes=("F32",), pooler=True, labels=0):
    """A 1-layer BERT with V=8, C=4, I=8, P=8, TT=2 as safetensors tensors."""
    import numpy as np
    rng = np.random.default_rng(5)
    V, C, I, P, TT = 8, 4, 8, 8, 2
    shapes = [("embeddings.word_embeddings.weight", (V, C)),
              ("embeddings.position_embeddings.weight", (P, C)),
              ("embeddings.token_type_embeddings.weight", (TT, C)),
              ("embeddings.LayerNorm.weight", (C,)), ("embeddings.LayerNorm.bias", (C,))]
    for part, (o, i) in [("attention.self.query", (C, C)), ("attention.self.key", (C, C)),
                         ("attention.self.value", (C, C)), ("attention.output.dense", (C, C)),
                         ("attention.output.LayerNorm", (C, 0)), ("intermediate.dense", (I, C)),
                         ("output.dense", (C, I)), ("output.LayerNorm", (C, 0))]:
        shapes.append((f"encoder.layer.0.{part}.weight", (o, i) if i else (o,)))
        shapes.append((f"encoder.layer.0.{part}.bias", (o,)))
    if pooler:
        shapes += [("pooler.dense.weight", (C, C)), ("pooler.dense.bias", (C,))]
    out = []
    for k, (name, shape) in enumerate(shapes):
        x = rng.standard_normal(shape).astype(np.float32)
        dt = dtypes[k % len(dtypes)]
        if dt == "F16":
            raw = x.astype("<f2").tobytes()
        elif dt == "BF16":
            raw = (x.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = x.astype("<f4").tobytes()
        if legacy:
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta")
        out.append((prefix + name, dt, shape, raw))
    if labels:
        w = rng.standard_normal((labels, C)).astype("<f4")
        out += [("classifier.weight", "F32", (labels, C), w.tobytes()),
                ("classifier.bias", "F32", (labels,), w[:, 0].copy().tobytes())]
    return out


def write_fuzz_corpus(out):
    """Seeds for tests/fuzz/fuzz_model.c: u16 config length, config.json, safetensors bytes."""
    os.makedirs(out, exist_ok=True)
    cfg = {"model_type": "bert", "vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1,
           "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8,
           "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    cls_cfg = dict(cfg, id2label={"0": "neg", "1": "neu", "2": "pos"},
                   label2id={"neg": 0, "neu": 1, "pos": 2}, hidden_act="gelu_new",
                   problem_type="single_label_classification")
    pos_ids = ("embeddings.position_ids", "I64", (1, 8), struct.pack("<8q", *range(8)))
    seeds = {
        "valid_f32": (cfg, st_bytes(mini_tensors(), {"format": "pt"})),
        "valid_mixed": (cls_cfg, st_bytes(mini_tensors("bert.", True, ("F32", "F16", "BF16"),
                                                       labels=3) + [pos_ids])),
        "valid_nopooler": (dict(cfg, hidden_act="relu"),
                           st_bytes([pos_ids] + mini_tensors(pooler=False))),
        "shape_mismatch": (dict(cfg, intermediate_size=6), st_bytes(mini_tensors())),
        "dup_key": (cfg, struct.pack("<Q", 96) + (b'{"a":{"dtype":"F32","shape":[1],'
                                                  b'"data_offsets":[0,4]},"a":{"dtype":"F32",'
                                                  b'"shape":[1],"data_offsets":[4,8]}}').ljust(96)
                    + bytes(8)),
        "modules": ([{"idx": 0, "name": "0", "path": "", "type":
                      "sentence_transformers.models.Transformer"},
                     {"idx": 1, "name": "1", "path": "1_Pooling", "type":
                      "sentence_transformers.models.Pooling"},
                     {"idx": 2, "name": "2", "path": "2_Normalize", "type":
                      "sentence_transformers.models.Normalize"}], b""),
        "pooling": ({"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
                     "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True,
                     "max_seq_length": 128, "do_lower_case": True,
                     "model_max_length": 10**30, "tokenizer_class": "BertTokenizer"}, b""),
    }
    for name, (c, st) in seeds.items():
        text = json.dumps(c).encode()
        with open(os.path.join(out, name), "wb") as f:
            f.write(struct.pack("<H", len(text)) + text + st)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", default=os.environ.get(
        "BERTCL_MINILM_DIR", os.path.join(root, "models", "all-MiniLM-L6-v2")))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "tiny-bert"))
    ap.add_argument("--fuzz-corpus", nargs="?", const=os.path.join(root, "tests", "fuzz",
                                                                     "corpus_model"),
                    help="write the fuzz_model seed corpus (default tests/fuzz/corpus_model) "
                         "instead of the model")
    args = ap.parse_args()
    if args.fuzz_corpus:
        write_fuzz_corpus(args.fuzz_corpus)
        return

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
        # Weights 10x BERT's default spread: attention far from uniform and GELU far from
        # linear, so a wrong activation, scale or weight changes the outputs well past the
        # tests' tolerances (at 0.02 an erf/tanh GELU swap moved them by only 1.7e-6).
        initializer_range=0.2,
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
