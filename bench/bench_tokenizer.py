#!/usr/bin/env python3
"""Single-thread tokenizer throughput: bertcl vs Hugging Face tokenizers (Rust), same process.

Usage:
  python3 bench/bench_tokenizer.py CORPUS [--model DIR ...] [--lib build/libbertcl.so] [--runs N]
CORPUS: a text file, one text a line, or a TSV with a header whose first column is the text
(e.g. ../shared/data/sst2/train.tsv). --model: directories with tokenizer.json, one result each;
default: one per model type: models/all-MiniLM-L6-v2 (WordPiece), tests/data/tokenizer/xlmr
(Unigram with the Precompiled charsmap), tests/data/tokenizer/roberta (byte-level BPE),
tests/data/tokenizer/mpnet (WordPiece, all-mpnet-base-v2). Not part of CI (needs
`pip install tokenizers` and a corpus).

Both sides tokenize the whole corpus in one batch call, with special tokens and no truncation:
bertcl_tokenizer_encode_batch (padded (B, T) arrays) and tokenizers' Tokenizer.encode_batch
(with offsets) / encode_batch_fast (without), on one thread (RAYON_NUM_THREADS=1,
TOKENIZERS_PARALLELISM=false are set before tokenizers is imported). Every row's ids are
compared. Prints one JSON object per model: tokens/s of each and the ratios.
"""
import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


class Options(ctypes.Structure):
    _fields_ = [("max_length", ctypes.c_size_t), ("truncation", ctypes.c_int),
                ("no_special_tokens", ctypes.c_int), ("split_special_tokens", ctypes.c_int),
                ("pad_to_max_length", ctypes.c_int)]


class Batch(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_size_t), ("seq", ctypes.c_size_t),
                ("ids", ctypes.POINTER(ctypes.c_int32)), ("mask", ctypes.POINTER(ctypes.c_int32)),
                ("type_ids", ctypes.POINTER(ctypes.c_int32)),
                ("word_ids", ctypes.POINTER(ctypes.c_int32)),
                ("lengths", ctypes.POINTER(ctypes.c_size_t)),
                ("overflow", ctypes.POINTER(ctypes.c_size_t)),
                ("replaced", ctypes.POINTER(ctypes.c_size_t))]


def read_corpus(path):
    texts = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    tsv = path.endswith(".tsv")
    for i, line in enumerate(lines):
        if tsv and i == 0:
            continue
        if tsv:
            line = line.split("\t")[0]
        if line:
            texts.append(line)
    return texts


def timed(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
    return r, times


DEFAULT_MODELS = ["models/all-MiniLM-L6-v2", "tests/data/tokenizer/xlmr",
                  "tests/data/tokenizer/roberta", "tests/data/tokenizer/mpnet"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--model", action="append")
    ap.add_argument("--lib", default="build/libbertcl.so")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    texts = read_corpus(a.corpus)
    for model in a.model or DEFAULT_MODELS:
        bench_one(a, model, texts)


def bench_one(a, model, texts):
    import tokenizers
    from tokenizers import Tokenizer

    raw = [t.encode("utf-8") for t in texts]
    lib = ctypes.CDLL(os.path.abspath(a.lib))
    lib.bertcl_tokenizer_model_type.restype = ctypes.c_char_p
    lib.bertcl_tokenizer_model_type.argtypes = [ctypes.c_void_p]
    lib.bertcl_tokenizer_load.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p]
    lib.bertcl_tokenizer_encode_batch.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p, ctypes.c_size_t,
        ctypes.POINTER(Options), ctypes.POINTER(ctypes.POINTER(Batch))]
    lib.bertcl_batch_free.argtypes = [ctypes.POINTER(Batch)]
    lib.bertcl_last_error.restype = ctypes.c_char_p
    lib.bertcl_last_error.argtypes = [ctypes.c_void_p]
    tok = ctypes.c_void_p()
    t0 = time.perf_counter()
    if lib.bertcl_tokenizer_load(ctypes.byref(tok), model.encode()) != 0:
        sys.exit(lib.bertcl_last_error(None).decode())
    load_ours = time.perf_counter() - t0
    arr = (ctypes.c_char_p * len(raw))(*raw)
    opt = Options(0, 3, 0, 0, 0)  # no truncation

    prev = [None]

    def ours():
        if prev[0] is not None:  # the previous run's batch
            lib.bertcl_batch_free(prev[0])
        out = ctypes.POINTER(Batch)()
        if lib.bertcl_tokenizer_encode_batch(tok, arr, None, len(raw), ctypes.byref(opt),
                                             ctypes.byref(out)) != 0:
            sys.exit(lib.bertcl_last_error(None).decode())
        prev[0] = out
        return out

    t0 = time.perf_counter()
    hf = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    load_hf = time.perf_counter() - t0

    b, t_ours = timed(ours, a.runs)
    enc, t_hf = timed(lambda: hf.encode_batch(texts, add_special_tokens=True), a.runs)
    fast = getattr(hf, "encode_batch_fast", None)
    t_hf_fast = timed(lambda: fast(texts, add_special_tokens=True), a.runs)[1] if fast else None

    # same ids on every row
    B, T = b.contents.batch, b.contents.seq
    ntok = 0
    for i, e in enumerate(enc):
        n = b.contents.lengths[i]
        ours_ids = b.contents.ids[i * T:i * T + n]
        if ours_ids != e.ids:
            sys.exit(f"row {i} differs: {texts[i]!r}\n ours {ours_ids}\n hf   {e.ids}")
        ntok += n
    lib.bertcl_batch_free(b)
    prev[0] = None

    def rate(ts):
        return ntok / statistics.median(ts)

    res = {
        "bench": "tokenizer", "corpus": a.corpus, "model": model,
        "model_type": lib.bertcl_tokenizer_model_type(tok).decode(), "texts": B,
        "tokens": ntok, "threads": 1, "runs": a.runs, "machine": platform.machine(),
        "processor": platform.processor(), "tokenizers_version": tokenizers.__version__,
        "load_s": {"bertcl": round(load_ours, 4), "hf": round(load_hf, 4)},
        "median_s": {"bertcl": statistics.median(t_ours), "hf_encode_batch": statistics.median(t_hf)},
        "tokens_per_s": {"bertcl": round(rate(t_ours)), "hf_encode_batch": round(rate(t_hf))},
        "ratio_vs_hf_encode_batch": round(rate(t_ours) / rate(t_hf), 2),
    }
    if t_hf_fast:
        res["median_s"]["hf_encode_batch_fast"] = statistics.median(t_hf_fast)
        res["tokens_per_s"]["hf_encode_batch_fast"] = round(rate(t_hf_fast))
        res["ratio_vs_hf_encode_batch_fast"] = round(rate(t_ours) / rate(t_hf_fast), 2)
    print(json.dumps(res, indent=2))
    # tokenizers frees with the interpreter; ours explicitly
    lib.bertcl_tokenizer_free.argtypes = [ctypes.c_void_p]
    lib.bertcl_tokenizer_free(tok)


if __name__ == "__main__":
    main()
