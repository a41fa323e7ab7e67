#!/usr/bin/env python3
"""Converts a Hugging Face model directory that has only pytorch_model.bin (a Python pickle,
which bertcl does not read) to model.safetensors, in place:

    python3 scripts/convert_pytorch_bin.py MODEL_DIR [--out OUT_DIR]

Sharded checkpoints (pytorch_model.bin.index.json + pytorch_model-0000N-of-0000M.bin) become
model-0000N-of-0000M.safetensors + model.safetensors.index.json. Needs torch and safetensors
(pip install torch safetensors). Tensors are loaded with torch.load(weights_only=True), so a
malicious pickle cannot run code; tied (shared) tensors are stored as separate copies, and every
tensor is made contiguous. The .bin files are left where they are.
"""
import argparse
import json
import os
import sys


def load_bin(path):
    import torch
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        sys.exit(f"{path}: not a state dict (got {type(sd).__name__})")
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out, storages = {}, set()
    for name, t in sd.items():
        if not hasattr(t, "contiguous"):
            continue
        t = t.detach().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in storages:
            t = t.clone()  # tied weights: safetensors refuses shared storage
        else:
            storages.add(ptr)
        out[name] = t
    return out


def save(tensors, path):
    from safetensors.torch import save_file
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--out", help="output directory (default: MODEL_DIR)")
    args = ap.parse_args()
    src, dst = args.model_dir, args.out or args.model_dir
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        sys.exit(f"convert_pytorch_bin.py needs torch and safetensors ({e}); "
                 "pip install torch safetensors")
    os.makedirs(dst, exist_ok=True)
    index = os.path.join(src, "pytorch_model.bin.index.json")
    single = os.path.join(src, "pytorch_model.bin")
    if os.path.exists(single):
        tensors = load_bin(single)
        save(tensors, os.path.join(dst, "model.safetensors"))
        print(f"wrote {os.path.join(dst, 'model.safetensors')}: {len(tensors)} tensors")
    elif os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        new_map = {}
        for shard in sorted(set(wmap.values())):
            if os.path.basename(shard) != shard:
                sys.exit(f"{index}: shard {shard!r} is not a file in the directory")
            tensors = load_bin(os.path.join(src, shard))
            name = shard.replace("pytorch_model", "model").replace(".bin", ".safetensors")
            save(tensors, os.path.join(dst, name))
            new_map.update({k: name for k in tensors})
            print(f"wrote {os.path.join(dst, name)}: {len(tensors)} tensors")
        with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": new_map}, f, indent=2)
    else:
        sys.exit(f"{src}: no pytorch_model.bin or pytorch_model.bin.index.json")
    if dst != src:
        import shutil
        for name in os.listdir(src):
            p = os.path.join(src, name)
            if os.path.isfile(p) and not name.startswith("pytorch_model"):
                shutil.copy2(p, os.path.join(dst, name))


if __name__ == "__main__":
    main()
