"""bertcl.finetune / Classifier / predict on the tiny test model: a run from in-memory data and
from a file, events through the callback, a stop from the callback, the exported directory
used by Classifier and by `bertcl predict` (same probabilities), regression, and errors."""
import json
import os
import random

import numpy as np
import pytest

import bertcl
from conftest import TINY, run_cli

# whole words of the tiny model's small vocabulary
GOOD = "good best well right high new".split()
BAD = "no not never old little against".split()
FILL = "the film was a story and music with people".split()


def data(n, seed):
    r = random.Random(seed)
    rows = []
    for _ in range(n):
        pos = r.random() < 0.5
        words = [r.choice(GOOD if pos else BAD) for _ in range(r.randint(2, 5))]
        words.insert(r.randint(0, len(words)), r.choice(FILL))
        rows.append((" ".join(words), "pos" if pos else "neg"))
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory, device):
    out = tmp_path_factory.mktemp("ft") / "model"
    events = []
    res = bertcl.finetune(TINY, data(96, 1), out, eval=data(32, 2), device=device, epochs=3,
                          lr=3e-3, batch_size=16, log_every=2, seed=7, verbose=False,
                          callback=events.append)
    return out, res, events


def test_finetune_in_memory(trained):
    out, res, events = trained
    assert res["task"] == "classification" and res["num_labels"] == 2
    assert res["steps"] == 3 * 96 // 16 and not res["stopped"]
    assert res["best_metric"] is not None and res["best_metric"] > 0.8  # accuracy on eval
    kinds = [e["event"] for e in events]
    assert kinds.count("step") == res["steps"] and kinds[-1] == "done"
    logs = [e for e in events if e["event"] == "log"]
    assert logs and all(np.isfinite(e["loss"]) and e["lr"] >= 0 for e in logs)
    evals = [e for e in events if e["event"] == "eval"]
    assert len(evals) == 3 and all(0 <= e["metrics"]["accuracy"] <= 1 for e in evals)
    assert evals[-1]["metrics"]["examples"] == 32
    for f in ("config.json", "model.safetensors", "checkpoint.safetensors"):
        assert os.path.exists(os.path.join(out, f)), f
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert set(cfg["id2label"].values()) == {"pos", "neg"}


def test_classifier_and_predict(trained, device, cli, tmp_path):
    out, _, _ = trained
    clf = bertcl.Classifier(out, device=device)
    assert clf.task == "classification" and sorted(clf.labels) == ["neg", "pos"]
    rows = data(40, 3)
    texts = [t for t, _ in rows]
    p = clf.predict_proba(texts)
    assert p.shape == (40, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    labels = clf.predict(texts)
    assert np.mean([a == b for a, (_, b) in zip(labels, rows)]) > 0.8
    assert clf.predict(texts[0]) == labels[0]
    # bertcl.predict and the bertcl command write the same probabilities
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    bertcl.predict(out, inp, a, device=device)
    run_cli(cli, "predict", "-m", str(out), "-i", str(inp), "-o", str(b), "--device", device)
    ja = [json.loads(x) for x in open(a)]
    jb = [json.loads(x) for x in open(b)]
    assert ja == jb and len(ja) == 40
    for i, row in enumerate(ja):
        assert row["label"] == labels[i]
        got = [row["probabilities"][name] for name in clf.labels]
        np.testing.assert_allclose(got, p[i], rtol=1e-6)  # the file holds the double
    clf.close()


def test_stop_and_resume_from_file(device, tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in data(64, 4)),
                     encoding="utf-8")
    out = tmp_path / "model"
    res = bertcl.finetune(TINY, train, out, device=device, epochs=2, batch_size=16,
                          save_every=1, verbose=False,
                          callback=lambda e: e["event"] == "step" and e["step"] >= 3)
    assert res["stopped"] and res["steps"] == 3
    res = bertcl.finetune(TINY, train, out, device=device, epochs=2, batch_size=16,
                          save_every=1, verbose=False, resume=True)
    assert not res["stopped"] and res["steps"] == 8


def test_callback_exception_propagates(device, tmp_path):
    class Boom(Exception):
        pass

    def cb(e):
        if e["event"] == "step":
            raise Boom("from the callback")

    with pytest.raises(Boom):
        bertcl.finetune(TINY, data(32, 5), tmp_path / "m", device=device, epochs=1,
                        batch_size=16, verbose=False, callback=cb)


def test_regression(device, tmp_path):
    r = random.Random(6)
    rows = [(" ".join(r.choice(GOOD + BAD + FILL) for _ in range(5)), r.uniform(0, 5) + 0.5)
            for _ in range(48)]
    out = tmp_path / "reg"
    res = bertcl.finetune(TINY, rows, out, eval=rows[:16], device=device, epochs=1,
                          batch_size=16, verbose=False)
    assert res["task"] == "regression" and res["num_labels"] == 1
    clf = bertcl.Classifier(out, device=device)
    s = clf.predict([t for t, _ in rows[:5]])
    assert clf.task == "regression" and s.shape == (5,) and s.dtype == np.float32


def test_errors(device, tmp_path):
    with pytest.raises(bertcl.BertclError) as e:
        bertcl.finetune(TINY, tmp_path / "missing.jsonl", tmp_path / "m", device=device,
                        verbose=False)
    assert "missing.jsonl" in str(e.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(bertcl.BertclError) as e:
        bertcl.finetune(TINY, bad, tmp_path / "m", device=device, verbose=False)
    assert "bad.jsonl" in str(e.value)
    with pytest.raises(ValueError):
        bertcl.finetune(TINY, bad, tmp_path / "m", task="ranking")
    with pytest.raises(TypeError):
        bertcl.finetune(TINY, [1, 2, 3], tmp_path / "m", device=device, verbose=False)
    with pytest.raises(bertcl.BertclError) as e:  # a plain encoder has no classifier head
        bertcl.Classifier(TINY, device=device)
    assert "classifier" in str(e.value)
