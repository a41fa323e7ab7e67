"""Helpers shared by the fixture generators of tests/gen: array conversions, the model file's
FNV-1a 64 (the C tests compare it with bc_fnv1a64 of the file they load) and a safetensors
writer whose output is a pure function of its inputs (sorted tensors and metadata)."""
import json
import os
import struct

import numpy as np


def f32(x):
    return np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))


def i32(x):
    return np.ascontiguousarray(np.asarray(x, dtype=np.int32))


def fnv1a64(path):
    """FNV-1a 64 of a file, as bc_fnv1a64 in src/common.c."""
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for byte in f.read():
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def save_sorted(tensors, path, metadata):
    """safetensors with tensors and metadata in sorted order (a rerun on the same inputs writes
    the same bytes), written to a temporary file renamed into place, mode 0644."""
    header, blobs, off = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
