"""bertcl.Encoder: shapes and dtypes of every pooling / layer / combine option, encode equal to
`bertcl extract` bit for bit, token embeddings and hidden states against the CLI's --tokens,
the tokenizer against `bertcl tokenize`, the GIL released, errors as exceptions."""
import json
import os
import pathlib
import random
import shutil
import struct
import tempfile
import threading
import time

import numpy as np
import pytest

import bertcl
from conftest import REPO, run_cli

WORDS = ("the cat sat on a mat while quick brown foxes jumped over lazy dogs and unbelievable "
         "tokenization happened in Zürich , naïve café ! 東京 was busy ? running runners ran").split()


def sentences(n, seed=0, maxw=60):
    r = random.Random(seed)
    return [" ".join(r.choice(WORDS) for _ in range(r.randint(1, maxw))) for _ in range(n)]


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        dt = {"F32": np.float32, "F16": np.float16, "I64": np.int64}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return out


def write_lines(tmp_path, texts, name="in.txt"):
    p = tmp_path / name
    p.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return str(p)


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ---- the library --------------------------------------------------------------------------


def test_version():
    hdr = open(os.path.join(REPO, "include", "bertcl.h"), encoding="utf-8").read()
    want = hdr.split('#define BERTCL_VERSION_STRING "')[1].split('"')[0]
    assert bertcl.version() == want
    assert bertcl.__version__ == want


def test_devices(device):
    devs = bertcl.devices()
    assert devs and sum(d.is_default for d in devs) == 1
    for d in devs:
        assert d.type in ("cpu", "gpu", "accelerator", "other")
        assert d.global_mem_bytes > 0 and d.compute_units > 0 and d.name
    assert device in [d.selector for d in devs]


# ---- shapes and dtypes ------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["cls", "mean", "max", "pooler", ["cls", "mean"], None])
@pytest.mark.parametrize("layers", [None, "all", -2, [0, 2], "-2:", "last"])
@pytest.mark.parametrize("combine", ["concat", "mean", "sum"])
def test_shapes(tiny, pool, layers, combine):
    texts = sentences(5, seed=1, maxw=20)
    C, L = tiny.hidden_size, tiny.num_layers
    nl = {"None": 1, "'all'": L + 1, "-2": 1, "[0, 2]": 2, "'-2:'": 2, "'last'": 1}[repr(layers)]
    pools = pool if isinstance(pool, list) else [pool or "cls"]  # tiny-bert: no ST pooling
    per = [C if p == "pooler" or combine != "concat" else nl * C for p in pools]
    x = tiny.encode(texts, pool=pool, layers=layers, combine=combine)
    assert x.dtype == np.float32 and x.shape == (5, sum(per))
    assert np.isfinite(x).all()
    one = tiny.encode(texts[0], pool=pool, layers=layers, combine=combine)
    assert one.shape == (sum(per),) and one.dtype == np.float32
    # another batch: the matrix products may round differently (host BLAS blocking), so close,
    # not equal
    np.testing.assert_allclose(one, x[0], rtol=1e-4, atol=1e-5)


def test_shapes_minilm(minilm):
    texts = sentences(4, seed=2)
    x = minilm.encode(texts)
    assert x.shape == (4, 384) and x.dtype == np.float32
    np.testing.assert_allclose((x.astype(np.float64) ** 2).sum(1), 1, atol=1e-5)
    assert minilm.encode(texts, pool="cls", layers="all").shape == (4, 7 * 384)
    assert minilm.encode(texts, pool=["cls", "max"], layers=[1, 3], combine="sum").shape == (4, 768)
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.get_sentence_embedding_dimension() == 384
    assert minilm.max_seq_length == 256


def test_token_embeddings_and_hidden(tiny):
    texts = sentences(6, seed=3, maxw=30)
    tok = tiny.encode(texts, output_value="token_embeddings")
    ids = tiny.tokenize(texts, padding=False)["input_ids"]
    assert len(tok) == 6
    for t, i in zip(tok, ids):
        assert t.dtype == np.float32 and t.shape == (len(i), tiny.hidden_size)
    hid = tiny.encode_hidden(texts)
    for h, t, i in zip(hid, tok, ids):
        assert h.shape == (tiny.num_layers + 1, len(i), tiny.hidden_size)
        assert same_bits(h[-1], t)  # the last hidden state is the token embedding
    cat = tiny.encode(texts, output_value="token_embeddings", layers=[0, -1])
    for h, c in zip(hid, cat):
        assert same_bits(c, np.concatenate([h[0], h[-1]], axis=1))
    words = tiny.encode_words(texts, mode="first")
    wids = tiny.tokenize(texts, padding=False)["word_ids"]
    assert [w.shape[0] for w in words] == [int(x.max()) + 1 for x in wids]


def test_pairs(tiny):
    a = tiny.encode([("a cat", "sat on a mat"), ("a dog", None)], pool="mean")
    b = tiny.encode(["a cat", "a dog"], pool="mean")
    assert not np.allclose(a[0], b[0], atol=1e-3)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-4, atol=1e-5)  # other batches


# ---- same bits as the CLI ------------------------------------------------------------------

def extract_cli(cli, model_dir, device, tmp_path, texts, *args):
    d = tempfile.mkdtemp(dir=tmp_path)
    inp = write_lines(pathlib.Path(d), texts)
    out = os.path.join(d, "out.safetensors")
    run_cli(cli, "extract", "-m", model_dir, "-i", inp, "-o", out, "--device", device, "--quiet",
            *args)
    return read_safetensors(out)


def assert_same_bits(got, want):
    assert got.shape == want.shape
    if not same_bits(got, want):
        bad = np.argwhere(got != want)
        pytest.fail(f"{len(bad)} values differ, first at {bad[0]}: encode "
                    f"{got[tuple(bad[0])]!r}, bertcl extract {want[tuple(bad[0])]!r}")


# (encode keywords, bertcl extract options, poolings in the file)
CLI_CASES = [
    ({"pool": ["cls", "max", "pooler"], "layers": "-2:", "normalize": False, "batch_size": 7},
     ["--pool", "cls,max,pooler", "--layers", "-2:", "--no-normalize", "--batch-size", "7"],
     ["cls", "max", "pooler"]),
    ({"pool": "mean", "layers": "all", "combine": "mean", "normalize": True, "max_length": 12},
     ["--pool", "mean", "--layers", "all", "--combine", "mean", "--normalize", "--max-len", "12",
      "--batch-size", "32"], ["mean"]),
    ({"pool": "max", "layers": [0, -1], "combine": "sum", "batch_size": 100, "max_tokens": 300},
     ["--pool", "max", "--layers", "0,-1", "--combine", "sum", "--batch-size", "100",
      "--max-tokens", "300"], ["max"]),
]


@pytest.mark.parametrize("kw,args,pools", CLI_CASES)
def test_encode_equals_cli(tiny, device, cli, tmp_path, kw, args, pools):
    texts = sentences(120, seed=4, maxw=40)
    texts[17] = ""  # an empty text is a row, as an empty line is
    f = extract_cli(cli, tiny.model_dir, device, tmp_path, texts, *args)
    assert_same_bits(tiny.encode(texts, **kw), np.concatenate([f[p] for p in pools], axis=1))


def test_encode_equals_cli_minilm(minilm, minilm_dir, device, cli, tmp_path):
    """The model's own pooling and normalisation, and every hidden state of every token."""
    texts = sentences(12, seed=5, maxw=30)
    f = extract_cli(cli, minilm_dir, device, tmp_path, texts, "--batch-size", "32", "--tokens",
                    "--layers", "all", "--pool", "mean")
    assert_same_bits(minilm.encode(texts, layers="all"), f["mean"])
    hid = minilm.encode_hidden(texts)
    off = f["tokens.offsets"]
    for i, h in enumerate(hid):
        rows = f["tokens"][off[i]:off[i + 1]]  # (tokens_i, 7 * 384): layers side by side
        assert_same_bits(h, rows.reshape(len(rows), 7, 384).transpose(1, 0, 2))
    f = extract_cli(cli, minilm_dir, device, tmp_path, texts, "--batch-size", "32")
    assert_same_bits(minilm.encode(texts), f["mean"])  # defaults: mean + L2


def test_tokenize_equals_cli(minilm, minilm_dir, cli, tmp_path):
    texts = ["Hello world, unbelievable!", "naïve café in Zürich", "東京タワー 🎉 ok",
             "  spaces\tand\ttabs  ", "", "[SEP] inside [MASK] text", "x" * 300,
             " ".join(["word"] * 400)] + sentences(20, seed=6)
    pairs = [("What is this?", "It is a test."), ("single", None)]
    lines = [json.dumps({"text": t}) for t in texts]
    lines += [json.dumps({"text": a, **({"text_pair": b} if b else {})}) for a, b in pairs]
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_cli(cli, "tokenize", "-m", minilm_dir, "-i", str(inp))
    want = [json.loads(line) for line in r.stdout.splitlines()]
    got = minilm.tokenize(texts + pairs, padding=False)
    assert len(want) == len(texts) + len(pairs)
    for i, w in enumerate(want):
        assert got["input_ids"][i].tolist() == w["ids"], i
        assert got["tokens"][i] == w["tokens"], i
        assert got["token_type_ids"][i].tolist() == w["type_ids"], i
        assert got["offset_mapping"][i].tolist() == w["offsets"], i
        assert got["word_ids"][i].tolist() == [-1 if x is None else x for x in w["word_ids"]], i
        assert got["overflow"][i] == sum(w["overflow"]), i
    # padded form: the same rows, padding 0 and mask 0, word ids -1
    pad = minilm.tokenize(texts[:3])
    T = max(len(x) for x in got["input_ids"][:3])
    assert pad["input_ids"].shape == (3, T) and pad["input_ids"].dtype == np.int64
    for i in range(3):
        n = len(got["input_ids"][i])
        assert pad["input_ids"][i, :n].tolist() == got["input_ids"][i].tolist()
        assert pad["attention_mask"][i].tolist() == [1] * n + [0] * (T - n)
        assert (pad["word_ids"][i, n:] == -1).all()
    # offsets index the Python string
    t = texts[1]
    for (a, b), tk in zip(got["offset_mapping"][1][1:-1], got["tokens"][1][1:-1]):
        assert t[a:b].lower().replace("ï", "i").replace("é", "e").replace("ü", "u") == \
            tk.replace("##", "")


# ---- the GIL ----------------------------------------------------------------------------


def test_gil_released(tiny):
    """While encode runs in the library, another Python thread keeps running. With the GIL held
    during the call (ctypes.PyDLL) that thread would stand still for the whole call, so the
    longest pause between its clock readings would be about the call's length. Asserted: no pause
    longer than half the call (a rate would depend on how busy the machine is; a pause that long
    would need the scheduler to starve a runnable thread for hundreds of milliseconds)."""
    texts = sentences(300, seed=7, maxw=60)
    tiny.encode(texts[:8])  # warm
    stamps, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    t0 = time.perf_counter()
    tiny.encode(texts)
    once = time.perf_counter() - t0
    texts = texts * max(1, int(0.4 / max(once, 1e-3)) + 1)  # one call long enough to tell
    th = threading.Thread(target=tick)
    th.start()
    time.sleep(0.05)
    t1 = time.perf_counter()
    tiny.encode(texts)
    t2 = time.perf_counter()
    time.sleep(0.05)
    stop.set()
    th.join()
    inside = [t1] + [t for t in stamps if t1 < t < t2] + [t2]
    pause = max(b - a for a, b in zip(inside, inside[1:]))
    print(f"encode of {len(texts)} texts {t2 - t1:.2f} s; the other thread's longest pause {pause * 1e3:.1f} ms")
    assert pause < 0.5 * (t2 - t1)


def test_threads_share_an_encoder(tiny):
    """Calls from several threads on one Encoder are serialised and give what one thread gets."""
    texts = [sentences(40, seed=s, maxw=30) for s in range(4)]
    want = [tiny.encode(t, pool="mean") for t in texts]
    got = [None] * 4

    def work(i):
        got[i] = tiny.encode(texts[i], pool="mean")

    ths = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert all(same_bits(a, b) for a, b in zip(got, want))


# ---- errors -----------------------------------------------------------------------------


def test_errors(tiny, device, tmp_path):
    with pytest.raises(bertcl.BertclError) as e:
        bertcl.Encoder(str(tmp_path / "no-such-model"), device=device)
    assert "no-such-model" in str(e.value) and e.value.status < 0
    with pytest.raises(bertcl.BertclError) as e:
        bertcl.Encoder(os.path.join(REPO, "tests", "data", "tiny-bert"), device="no-such-device")
    assert "no-such-device" in str(e.value) and e.value.name == "BERTCL_ERR_NO_DEVICE"
    broken = tmp_path / "broken"
    shutil.copytree(os.path.join(REPO, "tests", "data", "tiny-bert"), broken)
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(bertcl.BertclError) as e:
        bertcl.Encoder(str(broken), device=device)
    assert "config.json" in str(e.value)
    # bad options: ValueError (from bertcl, with its message, or from the argument checks)
    with pytest.raises(ValueError) as e:
        tiny.encode(["a"], layers=[99])
    assert isinstance(e.value, bertcl.BertclError) and "layer" in str(e.value)
    assert e.value.name == "BERTCL_ERR_INVALID_ARG"
    with pytest.raises(ValueError, match="max_length"):
        tiny.encode(["a"], max_length=100000)
    for kw in ({"pool": "median"}, {"combine": "stack"}, {"layers": "x:y"}, {"batch_size": 0},
               {"output_value": "logits"}, {"pool": []}, {"pool": ["cls", "cls"]}):
        with pytest.raises(ValueError):
            tiny.encode(["a"], **kw)
    with pytest.raises(TypeError):
        tiny.encode([1, 2])
    with pytest.raises(ValueError, match="NUL"):
        tiny.encode(["a\0b"])
    with pytest.raises(UnicodeEncodeError):
        tiny.encode(["lone \ud800 surrogate"])
    # odd but valid input: no crash
    odd = ["", " ", "\n\t", "x" * 5000, "🎉" * 300, "[CLS] [SEP] [PAD]"]
    x = tiny.encode(odd, pool="mean")
    assert x.shape == (len(odd), tiny.hidden_size) and np.isfinite(x).all()
    assert len(tiny.tokenize(odd)["input_ids"]) == len(odd)
    # a closed encoder
    enc = bertcl.Encoder(os.path.join(REPO, "tests", "data", "tiny-bert"), device=device)
    enc.close()
    with pytest.raises(ValueError, match="closed"):
        enc.encode(["a"])
