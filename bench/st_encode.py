#!/usr/bin/env python3
"""The PyTorch side of bench/extract_vs_st.sh: rows/s of sentence-transformers `encode` (the
model directory's own modules: mean pooling + normalize for all-MiniLM-L6-v2) and of
transformers with output_hidden_states=True (every hidden layer of every real token, copied to
host memory), fp32 (TF32 off), on the same texts with the same batch size and maximum length.
Model loading and a warm-up are excluded, as bertcl's summary excludes them. Prints one JSON
object per mode.

    python3 bench/st_encode.py MODEL_DIR TEXTS.txt BATCH MAX_LEN [mean|layers|both] [cuda|cpu]
"""
import json
import sys
import time


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, path, batch, max_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    modes = sys.argv[5] if len(sys.argv) > 5 else "both"
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        print(f"st_encode.py: {e}; no PyTorch figures", file=sys.stderr)
        return 3
    dev = sys.argv[6] if len(sys.argv) > 6 else ("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    with open(path, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    if modes in ("mean", "both"):
        st = SentenceTransformer(model_dir, device=dev).float()  # an F16 copy computes in fp32
        st.max_seq_length = max_len
        st.encode(texts[:64], batch_size=batch)
        sync()
        t0 = time.perf_counter()
        emb = st.encode(texts, batch_size=batch, convert_to_numpy=True)
        sync()
        dt = time.perf_counter() - t0
        print(json.dumps({"impl": "sentence-transformers encode", "mode": "mean", "rows": len(texts),
                          "shape": list(emb.shape), "seconds": dt, "rows_per_s": len(texts) / dt,
                          "batch": batch, "max_len": max_len, "device": name}))
        del st
    if modes in ("layers", "both"):
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModel.from_pretrained(model_dir).float().to(dev).eval()
        # longest first, as sentence-transformers orders its batches; rows back in input order
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))

        def run(sel):
            out = [None] * len(texts)
            with torch.inference_mode():
                for s in range(0, len(sel), batch):
                    idx = sel[s:s + batch]
                    enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_len, return_tensors="pt").to(dev)
                    hs = torch.stack(model(**enc, output_hidden_states=True).hidden_states, 2)
                    lens = enc["attention_mask"].sum(1).tolist()
                    hs = hs.cpu().numpy()  # (B, T, layers, C)
                    for j, i in enumerate(idx):
                        out[i] = hs[j, :lens[j]]
            return out

        run(order[:64])
        sync()
        t0 = time.perf_counter()
        out = run(order)
        sync()
        dt = time.perf_counter() - t0
        ntok = sum(o.shape[0] for o in out)
        print(json.dumps({"impl": "transformers output_hidden_states", "mode": "layers",
                          "rows": len(texts), "tokens": ntok, "layers": out[0].shape[1],
                          "seconds": dt, "rows_per_s": len(texts) / dt, "batch": batch,
                          "max_len": max_len, "device": name}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
