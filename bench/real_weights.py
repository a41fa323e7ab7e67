#!/usr/bin/env python3
"""Fixture for bertcl's real-weight check of an encoder family (bench/real_weights.sh):
the 50 sentences of tests/gen/gen_ref_fixtures.py tokenised and embedded by sentence-transformers
with the model's own modules (pooling, Normalize), as safetensors:
  input_ids, attention_mask (50, T) I32 (right-padded), embeddings (50, C) F32.
The texts are in the metadata ("texts", JSON): bertcl tokenizes them itself and its ids are
checked against input_ids.

    python3 bench/real_weights.py MODEL_DIR OUT.safetensors      (writes OUT.safetensors.txt too)
    python3 bench/real_weights.py --compare OUT.safetensors BERTCL.npy
        min cosine and max |diff| of `bertcl extract`'s rows against the embeddings
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gen"))

import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer

from gen_ref_fixtures import MINILM_ST as SENTENCES  # the 50 sentences of the MiniLM check


def compare(fixture, npy):
    from safetensors.numpy import load_file
    want = load_file(fixture)["embeddings"].astype(np.float64)
    got = np.load(npy).astype(np.float64)
    cos = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    print(f"bertcl extract ({got.shape[0]} texts, the folder's pooling) vs sentence-transformers: "
          f"min cosine {cos.min():.9f}, max |diff| {np.abs(want - got).max():.3g}")
    return 0 if cos.min() >= 0.99999 else 1


def main():
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    model_dir, out = sys.argv[1:3]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    st = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    emb = st.encode(SENTENCES, convert_to_tensor=True, batch_size=64)
    prep = getattr(st, "preprocess", None) or st.tokenize
    feats = prep(SENTENCES)
    t = {"input_ids": np.ascontiguousarray(feats["input_ids"].numpy().astype(np.int32)),
         "attention_mask": np.ascontiguousarray(feats["attention_mask"].numpy().astype(np.int32)),
         "embeddings": np.ascontiguousarray(emb.cpu().numpy().astype(np.float32))}
    save_file(t, out, metadata={"model": model_dir, "modules": str([type(m).__name__ for m in st]),
                                "max_seq_length": str(st.max_seq_length),
                                "texts": json.dumps(SENTENCES)})
    with open(out + ".txt", "w", encoding="utf-8") as f:
        f.write("\n".join(SENTENCES) + "\n")
    print(f"{out}: {t['input_ids'].shape[0]} sentences, T={t['input_ids'].shape[1]}, modules "
          f"{[type(m).__name__ for m in st]}", file=sys.stderr)


if __name__ == "__main__":
    main()
