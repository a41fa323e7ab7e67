"""Fine-tuning and prediction: bertcl_finetune, bertcl_classifier / bertcl_classify and
bertcl_predict (include/bertcl.h, "Fine-tuning and prediction")."""

import json
import math
import os
import shutil
import sys
import tempfile
import threading
from ctypes import POINTER, byref, c_float, c_void_p

import numpy as np

from . import _lib
from ._api import _L, _OnDevice, _c_strings, _check, _open, _text, _texts

# as `bertcl finetune --task`
_TASKS = {"auto": _lib.TASK_AUTO, "classification": _lib.TASK_CLASSIFICATION,
          "regression": _lib.TASK_REGRESSION, "token": _lib.TASK_TOKEN_CLASSIFICATION}
_TASK_NAMES = {v: k for k, v in _TASKS.items()}
_SCHEMES = {"auto": _lib.SCHEME_AUTO, "IOB1": _lib.SCHEME_IOB1, "IOB2": _lib.SCHEME_IOB2,
            "IOBES": _lib.SCHEME_IOBES, "none": _lib.SCHEME_NONE}
_FORMATS = {"auto": _lib.INPUT_AUTO, "text": _lib.INPUT_TEXT, "conll": _lib.INPUT_CONLL,
            "jsonl": _lib.INPUT_JSONL}
_EVENTS = {_lib.EVENT_INFO: "info", _lib.EVENT_LOG: "log", _lib.EVENT_EVAL: "eval",
           _lib.EVENT_STEP: "step", _lib.EVENT_DONE: "done"}


def _metrics(m):
    if not m:
        return None
    m = m.contents
    out = {"examples": int(m.examples)}
    for k in ("accuracy", "macro_f1", "f1", "mse", "pearson", "spearman", "precision", "recall",
              "entity_f1"):
        v = getattr(m, k)
        if not math.isnan(v):
            out[k] = v
    if m.n_types > 0:  # token classification: entity scores of each type
        out["types"] = {
            _text(m.type_names[i]): {"precision": m.type_precision[i], "recall": m.type_recall[i],
                                     "f1": m.type_f1[i], "support": int(m.type_support[i])}
            for i in range(m.n_types)}
    return out


def _event(p):
    p = p.contents
    return {"event": _EVENTS.get(p.event, str(p.event)), "message": _text(p.message),
            "step": p.step, "total_steps": p.total_steps, "epoch": p.epoch, "loss": p.loss,
            "lr": p.lr, "grad_norm": p.grad_norm, "examples_per_s": p.examples_per_s,
            "eta_s": p.eta_s, "metrics": _metrics(p.metrics), "improved": bool(p.improved)}


class _Callback:
    """The C progress callback: prints each event's line (verbose), calls the user's function
    (a true result stops the run after the current step) and keeps any exception it raised
    (KeyboardInterrupt included) to re-raise once the library has returned."""

    def __init__(self, fn, verbose):
        self.fn, self.verbose, self.exc = fn, verbose, None
        self.c = _lib.ProgressFn(self)

    def __call__(self, p, user):
        try:
            ev = _event(p)
            if self.verbose and ev["event"] != "step" and ev["message"]:
                print(ev["message"], flush=True)
            return 1 if self.fn and self.fn(ev) else 0
        except BaseException as e:  # noqa: BLE001 - re-raised after bertcl returns
            self.exc = e
            return 1


def _write_jsonl(path, data, what):
    """In-memory data -> a JSONL file bertcl reads: a list of dicts ({"text", "text_pair",
    "label"}, or {"tokens", "tags"} for token classification), or of (text, label) /
    (text, text_pair, label) / (words, tags) tuples, or a pair of lists (texts, labels) /
    (sentences' words, sentences' tags)."""
    if isinstance(data, tuple) and len(data) in (2, 3) and all(
            isinstance(c, (list, tuple, np.ndarray)) for c in data):
        data = list(zip(*data))
    with open(path, "w", encoding="utf-8") as f:
        for i, row in enumerate(data):
            if isinstance(row, dict):
                obj = row
            elif (isinstance(row, (tuple, list)) and len(row) == 2
                  and isinstance(row[0], (list, tuple)) and isinstance(row[1], (list, tuple))):
                obj = {"tokens": list(row[0]), "tags": list(row[1])}  # (words, tags)
            elif isinstance(row, (tuple, list)) and len(row) in (2, 3):
                obj = {"text": row[0], "label": row[-1]}
                if len(row) == 3:
                    obj["text_pair"] = row[1]
            else:
                raise TypeError(f"{what}[{i}]: a dict or a (text, [text_pair,] label) tuple")
            if isinstance(obj.get("label"), np.generic):
                obj = dict(obj, label=obj["label"].item())
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def finetune(model_dir, train, output_dir, eval=None, *, device=None, task="auto", num_labels=0,
             epochs=3, lr=2e-5, batch_size=32, grad_accum=1, max_length=128, warmup_ratio=0.0,
             weight_decay=0.0, max_grad_norm=1.0, seed=42, eval_every=0, save_every=0,
             log_every=10, freeze_encoder=False, resume=False, text_column=None,
             pair_column=None, label_column=None, tag_column=-1, label_all_tokens=False,
             scheme="auto", callback=None, verbose=True):
    """Fine-tunes model_dir's encoder plus a task head, as `bertcl finetune` does, and exports
    output_dir (loadable by transformers' AutoModelForSequenceClassification /
    AutoModelForTokenClassification and by bertcl.Classifier).

    task: "auto" (from the data), "classification", "regression", "token" (token
    classification: NER, tagging).
    train / eval: a file (JSONL {"text", "text_pair", "label"}, TSV or CSV with a header; for
    token classification CoNLL columns or JSONL {"tokens", "tags"}), or the data itself: a list
    of dicts, of (text, label) or (text, text_pair, label) tuples, of (words, tags) pairs of
    lists, or (texts, labels). Labels are names or ints (classification) or floats
    (regression). Token classification: tag_column (CoNLL, -1 = the last), label_all_tokens,
    scheme ("auto", "IOB1", "IOB2", "IOBES", "none").
    callback(event) gets every event as a dict (event: "info", "log", "eval", "step", "done";
    message, step, total_steps, epoch, loss, lr, grad_norm, examples_per_s, eta_s, metrics,
    improved); returning True stops after the current step. verbose prints each line as
    `bertcl finetune` does. Ctrl-C stops after the current step (the checkpoint stays: resume=True
    continues) and raises KeyboardInterrupt.

    Returns {"task", "num_labels", "steps", "best_step", "best_metric", "stopped",
    "output_dir"}.
    """
    if task not in _TASKS:
        raise ValueError(f"task={task!r}: 'auto', 'classification', 'regression' or 'token'")
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme={scheme!r}: one of {', '.join(map(repr, _SCHEMES))}")
    tmp = tempfile.mkdtemp(prefix="bertcl-finetune-")
    ctx = model = tok = None
    try:
        def source(x, name):
            if x is None or isinstance(x, (str, os.PathLike)):
                return None if x is None else os.fspath(x)
            return _write_jsonl(os.path.join(tmp, name + ".jsonl"), x, name)

        train_file, eval_file = source(train, "train"), source(eval, "eval")
        opt = _lib.FinetuneOptions()
        _L.bertcl_finetune_options_init(byref(opt))
        enc = {}  # the bytes the char pointers point to stay alive here

        def cstr(name, v):
            enc[name] = None if v is None else os.fspath(v).encode()
            setattr(opt, name, enc[name])

        cstr("train_file", train_file)
        cstr("eval_file", eval_file)
        cstr("output_dir", output_dir)
        cstr("text_column", text_column)
        cstr("pair_column", pair_column)
        cstr("label_column", label_column)
        opt.task = _TASKS[task]
        opt.num_labels = int(num_labels)
        opt.epochs = int(epochs)
        opt.lr = float(lr)
        opt.batch_size = int(batch_size)
        opt.grad_accum = int(grad_accum)
        opt.max_length = int(max_length)
        opt.warmup_ratio = float(warmup_ratio)
        opt.weight_decay = float(weight_decay)
        opt.max_grad_norm = float(max_grad_norm)
        opt.seed = int(seed)
        opt.eval_every = int(eval_every)
        opt.save_every = int(save_every)
        opt.log_every = int(log_every)
        opt.freeze_encoder = int(bool(freeze_encoder))
        opt.resume = int(bool(resume))
        opt.tag_column = int(tag_column)
        opt.label_all_tokens = int(bool(label_all_tokens))
        opt.scheme = _SCHEMES[scheme]
        ctx, model, tok, _ = _open(model_dir, device)
        cb = _Callback(callback, verbose)
        res = _lib.FinetuneResult()
        st = _L.bertcl_finetune(ctx, model, tok, byref(opt), cb.c, None, byref(res))
        if cb.exc is not None:
            raise cb.exc
        _check(st, ctx)
        return {"task": _TASK_NAMES.get(res.task, str(res.task)), "num_labels": res.num_labels,
                "steps": res.steps, "best_step": res.best_step,
                "best_metric": None if math.isnan(res.best_metric) else res.best_metric,
                "stopped": bool(res.stopped), "output_dir": os.fspath(output_dir)}
    finally:
        _L.bertcl_tokenizer_free(tok)
        _L.bertcl_model_free(model)
        _L.bertcl_ctx_free(ctx)
        shutil.rmtree(tmp, ignore_errors=True)


def predict(model_dir, input_file, output_file=None, *, device=None, batch_size=32,
            max_length=None, text_column=None, pair_column=None, format="auto"):
    """`bertcl predict`: runs a fine-tuned directory over a file (JSONL, TSV/CSV with a header,
    CoNLL columns for token classifiers, or plain text; format "auto", "text", "conll",
    "jsonl") and writes one JSON object a line ({"label": ..., "probabilities": {...}},
    {"score": x}, or a sentence's words and entities; CoNLL input: its lines with the tag
    appended) to output_file (written durably), or to standard output when it is None."""
    if format not in _FORMATS:
        raise ValueError(f"format={format!r}: one of {', '.join(map(repr, _FORMATS))}")
    ctx = model = tok = None
    try:
        ctx, model, tok, _ = _open(model_dir, device)
        keep = [os.fspath(x).encode() if x is not None else None
                for x in (input_file, output_file, text_column, pair_column)]
        opt = _lib.PredictOptions(input_file=keep[0], output_file=keep[1], text_column=keep[2],
                                  pair_column=keep[3], format=_FORMATS[format],
                                  batch_size=int(batch_size),
                                  max_length=int(max_length or 0))
        if output_file is None:
            sys.stdout.flush()
        st = _L.bertcl_predict(ctx, model, tok, byref(opt), _lib.ProgressFn(), None)
        _check(st, ctx)
    finally:
        _L.bertcl_tokenizer_free(tok)
        _L.bertcl_model_free(model)
        _L.bertcl_ctx_free(ctx)


class Classifier(_OnDevice):
    """A fine-tuned directory on a device, as `bertcl finetune` exports it: a sequence
    classifier or regressor (BertForSequenceClassification) or a token classifier
    (BertForTokenClassification).

    Sequence tasks: predict_proba(texts) -> (n, num_labels) float32 probabilities (regression:
    (n, 1) scores); predict(texts) -> the label names (regression: the scores, an (n,) array).
    Token classification (task "token"): tag(text or list of words) -> one dict per word
    {"word", "tag", "probability", "start", "end"} (start/end: characters of the text; None for
    given words); predict(texts) -> [tag(t) for t in texts]."""

    _HANDLE = ("_cls", "bertcl_classifier_free")

    def __init__(self, model_dir, device=None):
        self._cls = c_void_p()
        self._lock = threading.Lock()
        self.model_dir = str(model_dir)
        self._ctx, model, self._tok, _ = _open(model_dir, device)
        try:
            st = _L.bertcl_classifier_create(byref(self._cls), self._ctx, model)
            _check(st)
        except BaseException:
            self.close()
            raise
        finally:
            _L.bertcl_model_free(model)
        self.task = _TASK_NAMES[_L.bertcl_classifier_task(self._cls)]
        self.num_labels = _L.bertcl_classifier_num_labels(self._cls)
        self.labels = [_text(_L.bertcl_classifier_label(self._cls, k))
                       for k in range(self.num_labels)]

    def __repr__(self):
        return (f"bertcl.Classifier({self.model_dir!r}, task={self.task!r}, "
                f"labels={self.labels!r})")

    def _live(self):
        if not self._cls:
            raise ValueError("this Classifier is closed")

    def tag(self, text, max_length=None):
        """Tags every word of one text (words as the tokenizer splits them) or of a list of
        words; a text longer than max_length tokens runs in several windows."""
        self._live()
        if self.task != "token":
            raise ValueError(f"tag() is for token classifiers; this is a {self.task} model "
                             "(predict / predict_proba)")
        t = POINTER(_lib.Tagging)()
        ml = int(max_length or 0)
        if isinstance(text, str):
            b = text.encode("utf-8")
            if b"\0" in b:
                raise ValueError("the text holds a NUL character")
            with self._lock:
                st = _L.bertcl_tag_text(self._cls, self._tok, b, len(b), ml, byref(t))
                _check(st, self._cls)
        else:
            words = [w.encode("utf-8") for w in text]
            if not words or any(not w or b"\0" in w for w in words):
                raise ValueError("tag(words): a non-empty list of non-empty words")
            with self._lock:
                st = _L.bertcl_tag_words(self._cls, self._tok, _c_strings(words), len(words), ml,
                                         byref(t))
                _check(st, self._cls)
        try:
            c = t.contents
            out = []
            for i in range(c.n):
                a, b = c.offsets[2 * i], c.offsets[2 * i + 1]
                out.append({"word": _text(c.words[i]), "tag": self.labels[c.tags[i]],
                            "probability": float(c.probs[i]),
                            "start": None if a < 0 else a, "end": None if b < 0 else b})
            return out
        finally:
            _L.bertcl_tagging_free(t)

    def predict_proba(self, sentences, max_length=None):
        self._live()
        if self.task == "token":
            raise ValueError("a token classifier tags words: use tag() or predict()")
        texts, pairs, single = _texts(sentences)
        n, K = len(texts), self.num_labels
        out = np.zeros((n, K), np.float32)
        ct = _c_strings(texts)
        cp = _c_strings(pairs) if pairs is not None else None
        with self._lock:
            st = _L.bertcl_classify(self._cls, self._tok, ct, cp, n, int(max_length or 0),
                                    out.ctypes.data_as(POINTER(c_float)), out.size)
            _check(st, self._cls)
        return out[0] if single else out

    def predict(self, sentences, max_length=None):
        if self.task == "token":
            if isinstance(sentences, str):
                return self.tag(sentences, max_length=max_length)
            return [self.tag(s, max_length=max_length) for s in sentences]
        p = self.predict_proba(sentences, max_length=max_length)
        if self.task == "regression":
            return p[..., 0]
        if p.ndim == 1:
            return self.labels[int(p.argmax())]
        return [self.labels[k] for k in p.argmax(axis=1)]


__all__ = ["Classifier", "finetune", "predict"]
