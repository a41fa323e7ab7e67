#!/usr/bin/env python3
"""Fixture for bertcl's real-weight check of an encoder family (bench/real_weights.sh):
the 50 sentences of tests/gen/gen_ref_fixtures.py tokenised and embedded by sentence-transformers
with the model's own modules (pooling, Normalize), as safetensors:
  input_ids, attention_mask (50, T) I32 (right-padded), embeddings (50, C) F32.
The texts are in the metadata ("texts", JSON): bertcl tokenizes them itself and its ids are
checked against input_ids.

    python3 bench/real_weights.py MODEL_DIR OUT.safetensors
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


def main():
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
    print(f"{out}: {t['input_ids'].shape[0]} sentences, T={t['input_ids'].shape[1]}, modules "
          f"{[type(m).__name__ for m in st]}", file=sys.stderr)


if __name__ == "__main__":
    main()
