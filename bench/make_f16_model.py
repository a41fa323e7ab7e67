#!/usr/bin/env python3
"""Copies a model directory with its weights stored as F16 (half the bytes), for carrying a real
model to a machine with a transfer limit (the GPU machine takes 64 MiB: all-MiniLM-L6-v2 is 90 MB
in fp32, 45 MB in fp16). Both sides then compute in fp32 from the same rounded weights: bertcl
widens F16 on load; load the copy in PyTorch with .float() (bench/st_encode.py does).

    python3 bench/make_f16_model.py models/all-MiniLM-L6-v2 models/all-MiniLM-L6-v2-f16
"""
import os
import shutil
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.h5",
                                                            "*.onnx", "*.msgpack", "*.ot",
                                                            "onnx", "openvino"))
    t = load_file(os.path.join(src, "model.safetensors"))
    out = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in t.items()}
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(dst) for f in fs)
    print(f"{dst}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
