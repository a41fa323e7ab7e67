#!/usr/bin/env python3
"""Writes the fixtures that tests/test_ref.c checks the plain-C reference encoder against.

    HF_HUB_OFFLINE=1 python3 tests/gen/gen_ref_fixtures.py [--tiny tests/data/tiny-bert]
        [--minilm models/all-MiniLM-L6-v2] [--out tests/data]

Run by developers (needs torch, transformers, sentence-transformers), not by CI; the outputs are
committed. Every model is loaded from a local directory only (no hub access). Outputs, as
safetensors files with F32/I32 tensors and the versions used in __metadata__:

tests/data/tiny-bert-ref.safetensors (the tiny random BERT of gen_tiny_model.py)
  input_ids, token_type_ids, attention_mask  (B, T) I32   a right-padded batch: texts of different
                                                          lengths, a row with a single real token
                                                          and a sentence pair with token types
  hidden.0 .. hidden.L                       (B, T, C) F32 output_hidden_states, every position
  pooler                                     (B, C) F32   pooler_output
  single.*                                   the same for row 0 alone (batch of one, unpadded)

tests/data/minilm-ref.safetensors (all-MiniLM-L6-v2)
  batch.input_ids, batch.token_type_ids, batch.attention_mask  (8, T) I32
  batch.hidden.0 .. batch.hidden.6                             (8, T, 384) F32
  st.input_ids, st.token_type_ids, st.attention_mask           (50, T2) I32 (tokenised by the model)
  st.embeddings                                                (50, 384) F32 SentenceTransformer
                                                               .encode() with the model's defaults
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local directories only, before transformers loads

import numpy as np
import safetensors
import sentence_transformers
import torch
import transformers
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertModel

TINY_TEXTS = [
    "Hello, the world was on fire!",
    "a b",
    "The quick brown fox jumps over the lazy dog, then it runs away to the forest.",
]
TINY_PAIR = ("The cat sat on the mat.", "It was not happy at all.")

MINILM_BATCH = [
    "A man is eating food.",
    "The new movie is awesome, I would watch it again tomorrow!",
    "Two dogs are playing in the snow near a frozen lake.",
    "How do I reset my password?",
    "OpenCL kernels run on GPUs, CPUs and other accelerators.",
    "The stock market fell sharply after the announcement of new tariffs on imported steel.",
    "Hi",
    "After three days of heavy rain, the river burst its banks and flooded the low-lying "
    "villages downstream, forcing hundreds of families to leave.",
]

MINILM_ST = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The cat sits outside.",
    "The new movie is awesome.",
    "The new movie is so great.",
    "How can I learn Python quickly?",
    "What is the best way to learn a programming language?",
    "Is it going to rain tomorrow in London?",
    "The weather forecast predicts heavy snow this weekend.",
    "I love pizza with extra cheese and mushrooms.",
    "Quantum computers use qubits instead of classical bits.",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy.",
    "She sold seashells by the seashore.",
    "The stock market crashed in 1929, leading to the Great Depression.",
    "In 2023, global temperatures reached record highs.",
    "Please restart your computer and try again.",
    "Error 404: the page you requested could not be found.",
    "Can you recommend a good book about history?",
    "The Eiffel Tower is 330 metres tall.",
    "My flight was delayed by three hours because of fog.",
    "He plays football every Saturday morning with his friends.",
    "Neural networks learn representations from data.",
    "The recipe calls for two cups of flour and one egg.",
    "Don't forget to water the plants while I'm away!",
    "Café au lait is a French coffee drink with hot milk.",
    "Das ist ein deutscher Satz über das Wetter.",
    "¿Dónde está la biblioteca?",
    "東京は日本の首都です。",
    "The price is $19.99 (tax included), or €18.50 online.",
    "e-mail me at someone@example.com before 5 p.m.",
    "Hi",
    "OK.",
    "Yes",
    "The court ruled that the contract was void because one party had not signed it before the "
    "deadline set out in the original agreement.",
    "Astronauts aboard the International Space Station conduct experiments in microgravity, "
    "studying how fluids, flames and living cells behave without gravity.",
    "Machine translation has improved dramatically since the introduction of attention-based "
    "models.",
    "The children built a sandcastle on the beach.",
    "A quick brown fox jumps over the lazy dog.",
    "Never gonna give you up, never gonna let you down.",
    "The GPU ran out of memory with a batch size of 512.",
    "Tokenization splits unaffordable into un ##af ##ford ##able.",
    "Bananas are berries, but strawberries are not.",
]


def versions():
    return {
        "generator": "tests/gen/gen_ref_fixtures.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def i32(x):
    return np.ascontiguousarray(np.asarray(x, dtype=np.int32))


def f32(x):
    return np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))


def fnv1a64(path):
    """FNV-1a 64 of a file, as bc_fnv1a64 in src/common.c: the C test checks that the fixture
    was made from the model file it loads."""
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for byte in f.read():
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def run_bert(model, ids, types, mask):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids, dtype=torch.long),
                    token_type_ids=torch.tensor(types, dtype=torch.long),
                    attention_mask=torch.tensor(mask, dtype=torch.long),
                    output_hidden_states=True)
    return out


def pad_rows(rows, width, value=0):
    return [r + [value] * (width - len(r)) for r in rows]


def check_impls_agree(model_dir, ids, types, mask, out_eager, what):
    """The fixture uses the eager attention path; the default (sdpa) must agree on real tokens."""
    sdpa = BertModel.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    out = run_bert(sdpa, ids, types, mask)
    m = torch.tensor(mask, dtype=torch.bool)
    worst = 0.0
    for a, b in zip(out.hidden_states, out_eager.hidden_states):
        worst = max(worst, (a - b)[m].abs().max().item())
    assert worst < 1e-5, f"{what}: eager vs sdpa differ by {worst}"
    return worst


def gen_tiny(tiny_dir, out_path):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = BertModel.from_pretrained(tiny_dir, attn_implementation="eager").eval()
    rows = []
    for text in TINY_TEXTS:
        enc = tok(text)
        rows.append((enc["input_ids"], enc["token_type_ids"]))
    # a single real token: [CLS] alone
    rows.insert(2, ([tok.cls_token_id], [0]))
    enc = tok(*TINY_PAIR)
    assert 1 in enc["token_type_ids"], "the pair must carry token type 1"
    rows.append((enc["input_ids"], enc["token_type_ids"]))
    assert all(tok.unk_token_id not in r[0] for r in rows), "tiny vocab produced [UNK]"

    T = max(len(r[0]) for r in rows) + 2  # every row has some padding
    ids = pad_rows([r[0] for r in rows], T, tok.pad_token_id)
    types = pad_rows([r[1] for r in rows], T)
    mask = pad_rows([[1] * len(r[0]) for r in rows], T)
    out = run_bert(model, ids, types, mask)
    diff = check_impls_agree(tiny_dir, ids, types, mask, out, "tiny")

    t = {"input_ids": i32(ids), "token_type_ids": i32(types), "attention_mask": i32(mask)}
    for l, h in enumerate(out.hidden_states):
        t[f"hidden.{l}"] = f32(h)
    t["pooler"] = f32(out.pooler_output)

    n0 = len(rows[0][0])
    one = run_bert(model, [rows[0][0]], [rows[0][1]], [[1] * n0])
    t["single.input_ids"] = i32([rows[0][0]])
    t["single.token_type_ids"] = i32([rows[0][1]])
    t["single.attention_mask"] = i32([[1] * n0])
    for l, h in enumerate(one.hidden_states):
        t[f"single.hidden.{l}"] = f32(h)
    t["single.pooler"] = f32(one.pooler_output)

    meta = versions()
    meta.update({"model": "tests/data/tiny-bert", "attn_implementation": "eager",
                 "model_fnv1a64": fnv1a64(os.path.join(tiny_dir, "model.safetensors")),
                 "eager_vs_sdpa_max_abs_diff": f"{diff:.3e}",
                 "texts": json.dumps(TINY_TEXTS[:2] + ["[CLS] only"] + TINY_TEXTS[2:]
                                     + [list(TINY_PAIR)])})
    save_file(t, out_path, metadata=meta)
    print(f"wrote {out_path}: B={len(rows)} T={T} ({os.path.getsize(out_path)} bytes)",
          file=sys.stderr)


def gen_minilm(minilm_dir, out_path):
    assert len(MINILM_BATCH) == 8 and len(MINILM_ST) == 50
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    model = BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    enc = tok(MINILM_BATCH, padding=True, return_tensors="np")
    ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    out = run_bert(model, ids.tolist(), types.tolist(), mask.tolist())
    diff = check_impls_agree(minilm_dir, ids.tolist(), types.tolist(), mask.tolist(), out,
                             "minilm")
    t = {"batch.input_ids": i32(ids), "batch.token_type_ids": i32(types),
         "batch.attention_mask": i32(mask)}
    for l, h in enumerate(out.hidden_states):
        t[f"batch.hidden.{l}"] = f32(h)

    st = SentenceTransformer(minilm_dir, device="cpu", local_files_only=True)
    emb = st.encode(MINILM_ST, convert_to_tensor=True)  # the model's default normalisation
    prep = getattr(st, "preprocess", None) or st.tokenize
    feats = prep(MINILM_ST)
    t["st.input_ids"] = i32(feats["input_ids"].numpy())
    t["st.token_type_ids"] = i32(feats["token_type_ids"].numpy())
    t["st.attention_mask"] = i32(feats["attention_mask"].numpy())
    t["st.embeddings"] = f32(emb)
    modules = [type(m).__name__ for m in st]
    meta = versions()
    meta.update({"model": "all-MiniLM-L6-v2", "attn_implementation": "eager",
                 "eager_vs_sdpa_max_abs_diff": f"{diff:.3e}",
                 "st_modules": json.dumps(modules),
                 "st_max_seq_length": str(st.max_seq_length),
                 "batch_texts": json.dumps(MINILM_BATCH), "st_texts": json.dumps(MINILM_ST)})
    save_file(t, out_path, metadata=meta)
    print(f"wrote {out_path}: batch T={ids.shape[1]}, st T={t['st.input_ids'].shape[1]}, "
          f"modules {modules} ({os.path.getsize(out_path)} bytes)", file=sys.stderr)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", default=os.path.join(root, "tests", "data", "tiny-bert"))
    ap.add_argument("--minilm", default=os.environ.get(
        "BERTCL_MINILM_DIR", os.path.join(root, "models", "all-MiniLM-L6-v2")))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    gen_tiny(args.tiny, os.path.join(args.out, "tiny-bert-ref.safetensors"))
    gen_minilm(args.minilm, os.path.join(args.out, "minilm-ref.safetensors"))


if __name__ == "__main__":
    main()
