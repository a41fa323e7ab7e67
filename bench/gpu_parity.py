#!/usr/bin/env python3
"""Parity of `bertcl extract` on a device with transformers on the same model directory: the
hidden state of every layer for every real token (atol 1e-4, as test_encoder asserts on PoCL)
and the sentence-transformers embedding (cosine >= 0.99999). For a device the test suite cannot
reach with the real model (the GPU machine takes an F16 copy: both sides then compute in fp32
from the same rounded weights; PyTorch runs on CUDA when present, TF32 off, else on the CPU).

    python3 bench/gpu_parity.py BERTCL_BIN MODEL_DIR DEVICE [TEXTS.txt] [--json OUT]

Exit status 0 when both hold, 1 when not (the JSON says by how much), 3 without torch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

DEFAULT_TEXTS = [
    "A man is eating food.", "The girl is carrying a baby.",
    "Un homme mange de la nourriture. Ünïcödé, emoji 🙂 and CJK 汉字 too.",
    "short", "A much longer sentence that goes on for a while, with punctuation; numbers like "
    "3.14159 and 2026, and words the WordPiece vocabulary splits: antidisestablishmentarianism.",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin")
    ap.add_argument("model")
    ap.add_argument("device")
    ap.add_argument("texts", nargs="?")
    ap.add_argument("--json")
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
        from safetensors.numpy import load_file
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        print(f"gpu_parity.py: {e}", file=sys.stderr)
        return 3
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    texts = DEFAULT_TEXTS
    if a.texts:
        with open(a.texts, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.txt")
        with open(inp, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        outs = {}
        for name, extra in (("layers", ["--pool", "none", "--layers", "all", "--tokens"]),
                            ("embed", [])):
            out = os.path.join(tmp, name + ".safetensors")
            r = subprocess.run([a.bin, "extract", "-m", a.model, "-i", inp, "-o", out,
                                "--device", a.device, "--quiet"] + extra,
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            outs[name] = load_file(out)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModel.from_pretrained(a.model).float().to(dev).eval()
    report = {"device_arg": a.device, "torch_device": dev, "texts": len(texts), "layers": []}
    lay, off = outs["layers"]["tokens"], outs["layers"]["tokens.offsets"]
    nl = model.config.num_hidden_layers + 1
    C = model.config.hidden_size
    worst = [0.0] * nl
    with torch.inference_mode():
        for i, t in enumerate(texts):
            enc = tok(t, truncation=True, max_length=model.config.max_position_embeddings,
                      return_tensors="pt").to(dev)
            hs = model(**enc, output_hidden_states=True).hidden_states
            got = lay[off[i]:off[i + 1]].reshape(-1, nl, C)
            if got.shape[0] != hs[0].shape[1]:
                print(f"text {i}: bertcl {got.shape[0]} tokens, transformers {hs[0].shape[1]}",
                      file=sys.stderr)
                return 1
            for layer in range(nl):
                d = np.abs(got[:, layer] - hs[layer][0].float().cpu().numpy()).max()
                worst[layer] = max(worst[layer], float(d))
    report["layers"] = worst
    st = SentenceTransformer(a.model, device=dev).float()
    want = st.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    key = next(k for k in outs["embed"] if not k.endswith(".offsets"))
    got = outs["embed"][key]
    cos = [float(np.dot(g, w) / (np.linalg.norm(g) * np.linalg.norm(w))) for g, w in zip(got, want)]
    report["embedding"] = key
    report["min_cosine"] = min(cos)
    report["pass"] = max(worst) <= 1e-4 and min(cos) >= 0.99999
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
