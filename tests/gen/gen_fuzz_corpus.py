#!/usr/bin/env python3
"""Seed corpora of the fuzz targets fuzz_inputs and fuzz_files (tests/fuzz/corpus_inputs,
tests/fuzz/corpus_files), in the input layouts their comments describe.

    python3 tests/gen/gen_fuzz_corpus.py build/bertcl

Job seeds come from real `bertcl extract` runs of the tiny model (so the fuzzer starts from
manifests and shards bertcl writes); vocabulary seeds from tests/data/tokenizer/toy and
tests/data/tiny-bert."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "tests", "data", "tiny-bert")
TOY = os.path.join(ROOT, "tests", "data", "tokenizer", "toy")


def parts(*chunks):
    """u16-length-prefixed parts, the last one raw."""
    out = b""
    for c in chunks[:-1]:
        assert len(c) < 65536
        out += struct.pack("<H", len(c)) + c
    return out + chunks[-1]


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def inputs_seeds(d):
    texts = {
        # flags: bits 0-1 kind, bit 2 TSV by name, bits 3-4 N-1, bits 5-7 skip
        "plain": (0x00 | 1 << 3 | 1 << 5, 0, b"the cat sat\nhello world\n\nlast line"),
        "plain_bad": (0x00 | 2 << 3, 0, b"ok\n\xff\xfe broken\nnul\x00inside\r\ncrlf\r\n"),
        "jsonl": (0x01 | 1 << 3 | 2 << 5, 0,
                  b'{"text": "a", "text_pair": "b"}\n{"text": 3}\nnot json\n'
                  b'{"text": "\\u00e9t\\u00e9", "text_pair": null}\n{"text": "x\\u0000y"}\n'),
        "tsv_name": (0x02 | 0x04 | 1 << 3, 0, b"id\ttext\tlabel\n1\thello\tpos\n2\tab\xff\tneg\n3\n"),
        "tsv_index": (0x02 | 3 << 3 | 1 << 5, 1, b"a\tb\tc\nd\te\nf\n\tg\n"),
    }
    # the dataset reader: byte 1 = 0x80 | extension (0 jsonl, 1 csv, 2 tsv, 3 txt) | flags << 2
    # (1 need label, 2 plain ok, 4 force plain) | 32 (columns a/b/c)
    texts.update({
        "data_jsonl": (0, 0x80 | 0 | 1 << 2,
                       b'{"text": "good film", "label": "pos"}\n{"text": "bad", "text_pair": "x", '
                       b'"label": "neg"}\n{"text": "ok", "label": 1}\n'),
        "data_csv": (0, 0x80 | 1 | 1 << 2,
                     b'\xef\xbb\xbfsentence,label\n"a, quoted ""text""",0\nplain,1\n"multi\nline",2\n'),
        "data_tsv_pairs": (0, 0x80 | 2 | 1 << 2,
                           b"Quality\t#1 String\t#2 String\n1\tthe cat\tsat\n0\ta\tb\n"),
        "data_tsv_abc": (0, 0x80 | 2 | 32,
                         b"c\ta\tb\n3.5\tfirst\tsecond\n-1e3\tthird\t\n"),
        "data_plain": (0, 0x80 | 3 | 2 << 2, b"just a line\nanother one\n\n"),
        "data_regression": (0, 0x80 | 0 | 1 << 2,
                            b'{"text": "a", "label": 3.8}\n{"text": "b", "label": 5.0}\n'),
    })
    # word readers: byte 0 = 0x80 | tag column (7 = last) | 8 (tags required) | 16 (keys
    # words/ner_tags); byte 1 = 0x80 | extension (0 .conll, 1 .txt, 2 .jsonl, 3 .iob)
    texts.update({
        "words_conll": (0x80 | 7 | 8, 0x80 | 0,
                        b"-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
                        b"German JJ B-NP B-MISC\ncall NN I-NP O\n\nPeter NNP B-NP B-PER\n"
                        b"Blackburn NNP I-NP I-PER\n"),
        "words_conll_iob1": (0x80 | 1, 0x80 | 3, b"a I-LOC\nb I-LOC\nc B-LOC\n\nd O\ne I-PER\n"),
        "words_iobes": (0x80 | 7, 0x80 | 1, b"x\tS-A\ny\tB-B\nz\tE-B\n\nw\tO\n"),
        "words_jsonl": (0x80 | 8, 0x80 | 2,
                        b'{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}\n'
                        b'{"tokens": ["a"], "tags": [3]}\n'),
        "words_jsonl_keys": (0x80 | 16, 0x80 | 2,
                             b'{"words": ["x", "y"], "ner_tags": ["B-X", "I-X"]}\n'),
    })
    for name, (f, g, body) in texts.items():
        write(d, name, bytes([f, g]) + body)


def extract(bertcl, tmp, name, lines, *opts):
    inp = os.path.join(tmp, name + ".txt")
    with open(inp, "wb") as f:
        f.write(lines)
    out = os.path.join(tmp, name)
    subprocess.run([bertcl, "extract", "-m", TINY, "-i", inp, "-o", out, "--quiet",
                    "--device", os.environ.get("BERTCL_TEST_DEVICE", "pocl"), *opts], check=True)
    man = read(os.path.join(out, "manifest.json"))
    shards = sorted(n for n in os.listdir(out) if n.startswith("shard-"))
    data = [read(os.path.join(out, s)) for s in shards[:2]]
    while len(data) < 2:
        data.append(b"")
    return man, data


def files_seeds(d, bertcl):
    tmp = tempfile.mkdtemp()
    try:
        text = b"the cat sat\nhello world\n\xff bad\nlast line here\nagain\n"
        jobs = {
            "job_tokens": (["--pool", "cls,mean", "--tokens", "--words", "mean",
                            "--shard-rows", "3"], 0),
            "job_f16": (["--pool", "mean", "--dtype", "f16", "--layers", "-2:",
                         "--combine", "mean", "--shard-rows", "3"], 1),
            "job_npy": (["--pool", "mean", "--shard-rows", "4"], 1),
            "job_jsonl": (["--pool", "max,pooler", "--tokens", "--shard-rows", "3"], 2),
        }
        for name, (opts, fmt) in jobs.items():
            man, (s0, s1) = extract(bertcl, tmp, name, text, *opts)
            write(d, name, bytes([fmt << 1]) + parts(man, s0, s1))
    finally:
        shutil.rmtree(tmp)
    # checkpoints: params, adam_m, adam_v of 16 floats, the run signature "fuzz-run"
    for name, meta in {"ckpt": {"step": "6", "best_metric": "0.75", "best_step": "6"},
                       "ckpt_none": {"step": "0", "best_metric": "-inf", "best_step": "-1"}}.items():
        meta = dict(meta, run="fuzz-run")
        hdr, off = {"__metadata__": meta}, 0
        for t in ("params", "adam_m", "adam_v"):
            hdr[t] = {"dtype": "F32", "shape": [16], "data_offsets": [off, off + 64]}
            off += 64
        h = json.dumps(hdr).encode()
        h += b" " * (-len(h) % 8)
        body = b"".join(struct.pack("<16f", *[i * 0.25 - k for i in range(16)]) for k in range(3))
        write(d, name, bytes([8 | 2 << 4]) + struct.pack("<Q", len(h)) + h + body)
    toy_vocab = read(os.path.join(TOY, "vocab.txt"))
    toy_cfg = read(os.path.join(TOY, "tokenizer_config.json"))
    write(d, "vocab_toy", b"\x01" + parts(toy_vocab, toy_cfg, b'{"vocab_size": 40, "type_vocab_size": 2}'))
    write(d, "vocab_toy_nocfg", b"\x01" + parts(toy_vocab, b"", b""))
    # tiny-bert's vocabulary cut to its first 200 tokens (the specials and some words)
    tiny_vocab = b"".join(read(os.path.join(TINY, "vocab.txt")).splitlines(True)[:110] +
                          read(os.path.join(TINY, "vocab.txt")).splitlines(True)[1000:1090])
    write(d, "vocab_tiny", b"\x01" + parts(tiny_vocab, read(os.path.join(TINY, "tokenizer_config.json")),
                                           read(os.path.join(TINY, "config.json"))))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    inputs_seeds(os.path.join(ROOT, "tests", "fuzz", "corpus_inputs"))
    files_seeds(os.path.join(ROOT, "tests", "fuzz", "corpus_files"), sys.argv[1])


if __name__ == "__main__":
    main()
