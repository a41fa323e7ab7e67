#!/usr/bin/env python3
"""Writes tests/data/io/: the bytes numpy and safetensors produce for the arrays that
tests/test_io.c writes with bertcl's writers (which must produce the same bytes).

    python3 tests/gen/gen_io_expected.py
"""
import os

import numpy as np
import safetensors.numpy

# f32 values as hex, so C and Python start from the same bits; f16 rounding cases included:
# ties to even (1+2^-11, 1+3*2^-11), overflow (65520 -> inf, 65519 -> 65504), subnormals, NaN.
VALUES = ["0x0p+0", "-0x0p+0", "0x1p+0", "0x1.555556p-2", "-0x1.4p+1", "0x1.ffcp+15",
          "0x1.ffdep+15", "0x1.ffep+15", "0x1.5798eep-27", "0x1.01b2b2p-24", "0x1.f75104p-16",
          "0x1.002p+0", "0x1.006p+0", "inf", "-inf", "nan"]


def values():
    return np.array([float.fromhex(v) if v not in ("inf", "-inf", "nan") else float(v)
                     for v in VALUES], dtype=np.float32)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(root, "tests", "data", "io")
    os.makedirs(out, exist_ok=True)
    x = values().reshape(4, 4)
    np.save(os.path.join(out, "f32_4x4.npy"), x)
    np.save(os.path.join(out, "f16_4x4.npy"), x.astype(np.float16))
    np.save(os.path.join(out, "f32_5.npy"), np.arange(5, dtype=np.float32) - 2)
    np.save(os.path.join(out, "f32_scalar.npy"), np.float32(0.5).reshape(()))
    with open(os.path.join(out, "f32_2x3_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, (np.arange(6, dtype=np.float32) * 0.25).reshape(2, 3),
                                  version=(2, 0))
    # the reference orders tensors by dtype size, then name: F32 first
    safetensors.numpy.save_file(
        {"emb": x, "row": x[1].copy(), "emb_half": x.astype(np.float16)},
        os.path.join(out, "tensors.safetensors"), metadata={"model": "tiny-bert"})


if __name__ == "__main__":
    main()
