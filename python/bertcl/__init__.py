"""bertcl: BERT-family encoders on OpenCL devices, from Python.

    import bertcl
    enc = bertcl.Encoder("models/all-MiniLM-L6-v2")        # device=None: the default device
    emb = enc.encode(["A man is eating food.", "A man rides a horse."])   # (2, 384) float32

    bertcl.finetune("models/all-MiniLM-L6-v2", "train.jsonl", "my-model", eval="dev.jsonl")
    bertcl.Classifier("my-model").predict(["great film", "dull plot"])   # label names

The same library and pipelines as the `bertcl` command (extract, finetune, predict), through
ctypes; the GIL is released while the library works. See python/README.md.
"""

from ._api import BertclError, BertclMemoryError, BertclValueError, Device, Encoder, devices, version
from ._train import Classifier, finetune, predict

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _dist_version

    try:
        __version__ = _dist_version("bertcl")
    except PackageNotFoundError:  # used from a source tree with $BERTCL_LIBRARY
        __version__ = version()
except ImportError:  # Python < 3.8
    __version__ = version()

__all__ = ["BertclError", "BertclMemoryError", "BertclValueError", "Classifier", "Device",
           "finetune", "predict", "Encoder", "devices", "version", "__version__"]
