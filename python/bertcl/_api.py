"""The Python API over libbertcl: devices(), Encoder (encode, encode_hidden, tokenize)."""

import ctypes
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_int64, c_size_t, c_void_p
from dataclasses import dataclass

import numpy as np

from . import _lib

_L = _lib.load()


class BertclError(RuntimeError):
    """A bertcl call failed. str(e) is bertcl's message (file:line, the call, what to do);
    e.status is the bertcl_status code (negative) and e.name its symbolic name
    ("BERTCL_ERR_INVALID_ARG"). Bad arguments and unsupported options also are ValueErrors,
    host or device out-of-memory also MemoryErrors, so `except ValueError` works as usual."""

    def __init__(self, status, message):
        self.status = int(status)
        self.name = _L.bertcl_status_name(self.status).decode()
        super().__init__(message or _L.bertcl_status_str(self.status).decode())


class BertclValueError(BertclError, ValueError):
    """BERTCL_ERR_INVALID_ARG, BERTCL_ERR_UNSUPPORTED"""


class BertclMemoryError(BertclError, MemoryError):
    """BERTCL_ERR_NOMEM, BERTCL_ERR_DEVICE_OOM"""


_ERROR_NAMES = {"BERTCL_ERR_INVALID_ARG": BertclValueError,
                "BERTCL_ERR_UNSUPPORTED": BertclValueError,
                "BERTCL_ERR_NOMEM": BertclMemoryError,
                "BERTCL_ERR_DEVICE_OOM": BertclMemoryError}
# status code -> class, by the library's own names (its X-macro table)
_ERROR_CLASSES = {c: _ERROR_NAMES[n] for c in range(-256, 0)
                  if (n := _L.bertcl_status_name(c).decode()) in _ERROR_NAMES}


def _error(status, handle=None):
    cls = _ERROR_CLASSES.get(int(status), BertclError)
    return cls(status, _text(_L.bertcl_last_error(handle)))


def _text(b):
    return b.decode("utf-8", errors="replace") if b else ""


def _check(status, handle=None):
    if status != 0:
        raise _error(status, handle)


def version():
    """Version of the loaded libbertcl (the same as bertcl.__version__ for a matching build)."""
    return _L.bertcl_version().decode()


# --------------------------------------------------------------------------------------------
# devices

_DEVICE_TYPES = {1: "cpu", 2: "gpu", 4: "accelerator", 8: "other"}


@dataclass(frozen=True)
class Device:
    """One OpenCL device. `selector` ("P:D") picks it in Encoder(model_dir, device=...)."""

    selector: str
    name: str
    vendor: str
    type: str
    platform: str
    version: str
    driver_version: str
    compute_units: int
    max_clock_mhz: int
    global_mem_bytes: int
    max_alloc_bytes: int
    fp16: bool
    is_default: bool

    @classmethod
    def _from(cls, d):
        return cls(
            selector=f"{d.platform_index}:{d.device_index}",
            name=_text(d.name),
            vendor=_text(d.vendor),
            type=_DEVICE_TYPES.get(d.type, "other"),
            platform=_text(d.platform_name),
            version=_text(d.version),
            driver_version=_text(d.driver_version),
            compute_units=int(d.compute_units),
            max_clock_mhz=int(d.max_clock_mhz),
            global_mem_bytes=int(d.global_mem_bytes),
            max_alloc_bytes=int(d.max_alloc_bytes),
            fp16=bool(d.fp16),
            is_default=bool(d.is_default),
        )


def devices():
    """Every OpenCL device of every platform, as `bertcl devices` lists them (empty when there
    is no OpenCL platform)."""
    lst = POINTER(_lib.DeviceInfo)()
    n = c_size_t()
    _check(_L.bertcl_devices_list(byref(lst), byref(n)))
    try:
        return [Device._from(lst[i]) for i in range(n.value)]
    finally:
        _L.bertcl_devices_free(lst)


# --------------------------------------------------------------------------------------------
# option parsing

_POOLS = {
    "cls": _lib.POOL_CLS,
    "mean": _lib.POOL_MEAN,
    "max": _lib.POOL_MAX,
    "pooler": _lib.POOL_POOLER,
}
_COMBINE = {"concat": _lib.COMBINE_CONCAT, "mean": _lib.COMBINE_MEAN, "sum": _lib.COMBINE_SUM}


def _parse_layers(layers, L):
    """None / "last" -> [L]; "all" -> 0..L; an int; a sequence of ints; or a spec as the CLI's
    --layers: "-4:", "2:5", "0,6,12" (0 = embeddings, negative from the end)."""
    if layers is None or (isinstance(layers, str) and layers == "last"):
        return [L]
    if isinstance(layers, str):
        if layers == "all":
            return list(range(L + 1))
        out = []
        idx = list(range(L + 1))
        for part in layers.split(","):
            part = part.strip()
            try:
                if ":" in part:
                    a, b = part.split(":", 1)
                    sl = idx[slice(int(a) if a else None, int(b) if b else None)]
                    if not sl:
                        raise ValueError
                    out.extend(sl)
                else:
                    out.append(int(part))
            except ValueError:
                raise ValueError(
                    f"layers={layers!r}: use 'last', 'all', an int, a list of ints, or a spec "
                    f"like '-4:', '2:5', '0,6,12' (0..{L}, 0 = embeddings)"
                ) from None
        return out
    if isinstance(layers, (int, np.integer)):
        return [int(layers)]
    try:
        out = [int(x) for x in layers]
    except TypeError:
        raise TypeError(f"layers={layers!r}: an int, a list of ints or a string") from None
    if not out:
        raise ValueError("layers: an empty list")
    return out


def _texts(sentences):
    """(texts as UTF-8 bytes, pairs or None, single): a str, a list of str, or of (text, pair)."""
    if isinstance(sentences, (str, bytes)):
        sentences, single = [sentences], True
    else:
        single = False
        if isinstance(sentences, np.ndarray):
            sentences = sentences.tolist()
        sentences = list(sentences)
    texts, pairs, has_pair = [], [], False
    for i, s in enumerate(sentences):
        p = None
        if isinstance(s, (tuple, list)):
            if len(s) != 2:
                raise ValueError(f"sentences[{i}]: a pair is (text, text_pair), got {len(s)} items")
            s, p = s
            has_pair = True
        for x in (s, p):
            if x is not None and not isinstance(x, (str, bytes)):
                raise TypeError(f"sentences[{i}]: expected str, got {type(x).__name__}")
        texts.append(s.encode("utf-8") if isinstance(s, str) else s)
        pairs.append(p.encode("utf-8") if isinstance(p, str) else p)
    for t in texts + [p for p in pairs if p is not None]:
        if b"\0" in t:
            raise ValueError("a text holds a NUL character")
    return texts, (pairs if has_pair else None), single


def _c_strings(items):
    arr = (c_char_p * max(len(items), 1))()
    for i, b in enumerate(items):
        arr[i] = b
    return arr


class _Features:
    """Owns a bertcl_features handle."""

    def __init__(self, handle):
        self.h = handle

    def __del__(self):
        if self.h:
            _L.bertcl_features_free(self.h)
            self.h = None

    def pooled(self, pool):
        w = c_size_t()
        p = _L.bertcl_features_pooled(self.h, pool, byref(w))
        n = _L.bertcl_features_rows(self.h)
        if not p:
            return None
        if n == 0 or w.value == 0:
            return np.zeros((n, w.value), np.float32)
        return np.ctypeslib.as_array(p, shape=(n, w.value)).copy()

    def ragged(self, words=False):
        off = POINTER(c_int64)()
        total, w = c_size_t(), c_size_t()
        fn = _L.bertcl_features_words if words else _L.bertcl_features_tokens
        p = fn(self.h, byref(off), byref(total), byref(w))
        n = _L.bertcl_features_rows(self.h)
        if not p:
            return None, None
        offsets = np.ctypeslib.as_array(off, shape=(n + 1,)).copy()
        if total.value == 0:
            return np.zeros((0, w.value), np.float32), offsets
        return np.ctypeslib.as_array(p, shape=(total.value, w.value)).copy(), offsets

    def stats(self):
        s = _L.bertcl_features_stats(self.h).contents
        return {name: getattr(s, name) for name, _ in s._fields_}


# --------------------------------------------------------------------------------------------
# the encoder


def _ctx_options(device, cache_dir):
    if isinstance(device, Device):
        device = device.selector
    return _lib.CtxOptions(device=device.encode() if device else None,
                           cache_dir=str(cache_dir).encode() if cache_dir else None)


def _open(model_dir, device=None, cache_dir=None):
    """(ctx, model, tokenizer, model info) of a model directory on a device; the caller frees
    them (bertcl_*_free accept NULL)."""
    ctx, model, tok = c_void_p(), c_void_p(), c_void_p()
    opt = _ctx_options(device, cache_dir)
    try:
        _check(_L.bertcl_ctx_create(byref(ctx), byref(opt)))
        d = str(model_dir).encode()
        _check(_L.bertcl_model_load(byref(model), d))
        _check(_L.bertcl_tokenizer_load(byref(tok), d))
        info = _lib.ModelInfo()
        _check(_L.bertcl_model_get_info(model, byref(info)), model)
    except BaseException:
        _L.bertcl_tokenizer_free(tok)
        _L.bertcl_model_free(model)
        _L.bertcl_ctx_free(ctx)
        raise
    return ctx, model, tok, info


class _OnDevice:
    """What Encoder and Classifier share: a context (_ctx), a tokenizer (_tok) and the model's
    handle, freed by close(), at the end of a `with` block, or when garbage-collected.
    _HANDLE names the handle's attribute and its bertcl_*_free function."""

    _HANDLE = None

    def close(self):
        """Frees the device memory now (otherwise when the object is garbage-collected)."""
        name, free = self._HANDLE
        if getattr(self, name, None):
            getattr(_L, free)(getattr(self, name))
            setattr(self, name, c_void_p())
        if getattr(self, "_tok", None):
            _L.bertcl_tokenizer_free(self._tok)
            self._tok = c_void_p()
        if getattr(self, "_ctx", None):
            _L.bertcl_ctx_free(self._ctx)
            self._ctx = c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the library may be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Encoder(_OnDevice):
    """A model directory's encoder on an OpenCL device.

    Encoder(model_dir, device=None): model_dir is a Hugging Face / sentence-transformers model
    directory (config.json, model.safetensors, tokenizer files, optional 1_Pooling /
    2_Normalize modules). device is a selector as `bertcl devices` takes ("0:1", "gpu", "cpu",
    a part of the name such as "nvidia" or "pocl", or a Device's .selector); None =
    $BERTCL_DEVICE, else the first GPU, else the first device.

    encode() runs the same pipeline as `bertcl extract` (length-bucketed batches, device work
    beside the readback) inside the library, with the GIL released: its results are bit for bit
    those of `bertcl extract` with the same options.
    """

    _HANDLE = ("_enc", "bertcl_encoder_free")

    def __init__(self, model_dir, device=None, cache_dir=None):
        self._enc = c_void_p()
        self._lock = threading.Lock()
        self.model_dir = str(model_dir)
        self._ctx, model, self._tok, info = _open(model_dir, device, cache_dir)
        try:
            _check(_L.bertcl_encoder_create(byref(self._enc), self._ctx, model))
        except BaseException:
            self.close()
            raise
        finally:
            _L.bertcl_model_free(model)  # the weights are on the device now
        self.hidden_size = info.hidden_size
        self.num_layers = info.num_layers
        self.max_seq_length = int(_L.bertcl_tokenizer_max_length(self._tok))
        if self.max_seq_length > info.max_position:
            self.max_seq_length = info.max_position
        self.model_type = _text(info.model_type)
        self.has_pooler = bool(info.has_pooler)
        self.pad_token_id = int(info.pad_token_id)
        # the directory's sentence-transformers defaults ("" / False when it has none)
        self.default_pooling = _text(info.pooling)
        self.default_normalize = bool(info.normalize)
        self.device = Device._from(_L.bertcl_ctx_device(self._ctx).contents)

    def __repr__(self):
        return (
            f"bertcl.Encoder({self.model_dir!r}, device={self.device.selector!r} "
            f"({self.device.name}), hidden_size={self.hidden_size}, layers={self.num_layers})"
        )

    def get_sentence_embedding_dimension(self):
        """Width of encode()'s default output (sentence-transformers' name)."""
        return self.hidden_size

    # ---- extraction ------------------------------------------------------------------------

    def _live(self):
        if not self._enc:
            raise ValueError("this Encoder is closed")

    def _pools(self, pool):
        if pool is None:  # the model's own (sentence-transformers order: cls, max, mean)
            names = self.default_pooling.split("+") if self.default_pooling else ["cls"]
            names = [p for p in ("cls", "max", "mean") if p in names]
        else:
            names = [pool] if isinstance(pool, str) else list(pool)
            if not names:
                raise ValueError("pool: an empty list")
        for p in names:
            if p not in _POOLS:
                raise ValueError(f"pool={p!r}: one of 'mean', 'cls', 'max', 'pooler' (or a list)")
        if len(set(names)) != len(names):
            raise ValueError(f"pool={pool!r} names a pooling twice")
        return names

    def _extract(self, texts, pairs, *, pools=0, layers=None, combine="concat", normalize=None,
                 tokens=False, words=0, batch_size=32, max_length=None, show_progress_bar=False,
                 max_tokens=None, f16=False):
        self._live()
        if combine not in _COMBINE:
            raise ValueError(f"combine={combine!r}: 'concat', 'mean' or 'sum'")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: a positive integer")
        lay = _parse_layers(layers, self.num_layers)
        if len(lay) > 64:
            raise ValueError("layers: at most 64")
        larr = (c_int * len(lay))(*lay)
        opt = _lib.ExtractOptions(
            pools=pools,
            layers=larr,
            nlayers=len(lay),
            combine=_COMBINE[combine],
            normalize=_lib.NORMALIZE_AUTO if normalize is None
            else (_lib.NORMALIZE_ON if normalize else _lib.NORMALIZE_OFF),
            tokens=int(bool(tokens)),
            words=int(words),
            max_length=int(max_length or 0),
            f16=int(bool(f16)),
            batch_size=int(batch_size),
            max_tokens=int(max_tokens or 0),
            progress=int(bool(show_progress_bar)),
        )
        ct = _c_strings(texts)
        cp = _c_strings(pairs) if pairs is not None else None
        h = c_void_p()
        with self._lock:  # one extraction at a time on this encoder; the GIL is released inside
            st = _L.bertcl_extract(self._enc, self._tok, ct, cp, len(texts), byref(opt), byref(h))
            if st != 0:
                raise _error(st, self._enc)
        return _Features(h.value)

    def encode(self, sentences, batch_size=32, show_progress_bar=False,
               output_value="sentence_embedding", pool=None, normalize=None, layers=None,
               combine="concat", max_length=None, normalize_embeddings=None, max_tokens=None,
               convert_to_numpy=True, precision="float32"):
        """Sentence embeddings, as sentence_transformers.SentenceTransformer.encode returns them.

        sentences: a str (-> 1-D array), a list of str, or of (text, text_pair) tuples.
        pool: "mean", "cls", "max", "pooler", or a list of them (joined side by side in the
          order given); None = the model directory's pooling (sentence-transformers), else "cls".
        normalize: L2-normalise each row (not the pooler output); None = the model's Normalize
          module (on for all-MiniLM-L6-v2). normalize_embeddings is the same switch under
          sentence-transformers' name.
        layers: None (last layer), "all", an int, a list of ints, or a spec like "-4:";
          0 = embeddings, negative counts from the end. combine: "concat" (width = layers x
          hidden), "mean" or "sum" across the layers.
        batch_size: most texts per device batch (texts are sorted by length and batched to at
          most max_tokens padded tokens, 8192 by default, as `bertcl extract --batch-size`).
        max_length: tokens per text with [CLS]/[SEP] (default: the model's max_seq_length);
          longer texts are truncated.
        output_value: "sentence_embedding" -> float32 array (n, width); "token_embeddings" ->
          a list of n float32 arrays (tokens_i, width), every real token with [CLS]/[SEP]
          (padding excluded, as sentence-transformers returns them).
        show_progress_bar: bertcl's progress bar on stderr.
        """
        if not convert_to_numpy:
            raise ValueError("bertcl returns numpy arrays (convert_to_numpy=True)")
        if precision != "float32":
            raise ValueError("precision: bertcl returns float32 embeddings")
        if normalize is None:
            normalize = normalize_embeddings
        texts, pairs, single = _texts(sentences)
        if output_value == "token_embeddings":
            out = self._extract(texts, pairs, pools=_lib.EXTRACT_NO_POOL, layers=layers,
                                combine=combine, tokens=True, batch_size=batch_size,
                                max_length=max_length, show_progress_bar=show_progress_bar,
                                max_tokens=max_tokens)
            vals, off = out.ragged()
            rows = [vals[off[i]:off[i + 1]] for i in range(len(texts))]
            return rows[0] if single else rows
        if output_value != "sentence_embedding":
            raise ValueError(
                f"output_value={output_value!r}: 'sentence_embedding' or 'token_embeddings'")
        names = self._pools(pool)
        mask = 0
        for p in names:
            mask |= _POOLS[p]
        out = self._extract(texts, pairs, pools=mask, layers=layers, combine=combine,
                            normalize=normalize, batch_size=batch_size, max_length=max_length,
                            show_progress_bar=show_progress_bar, max_tokens=max_tokens)
        parts = [out.pooled(_POOLS[p]) for p in names]
        emb = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return emb[0] if single else emb

    def encode_hidden(self, sentences, layers="all", batch_size=32, max_length=None,
                      show_progress_bar=False, max_tokens=None):
        """Unpooled hidden states, as transformers' output_hidden_states gives them without the
        padding: a list of n float32 arrays (nlayers, tokens_i, hidden); layer 0 is the
        embedding output, layers="all" gives all num_layers + 1."""
        texts, pairs, single = _texts(sentences)
        lay = _parse_layers(layers, self.num_layers)
        out = self._extract(texts, pairs, pools=_lib.EXTRACT_NO_POOL, layers=lay,
                            combine="concat", tokens=True, batch_size=batch_size,
                            max_length=max_length, show_progress_bar=show_progress_bar,
                            max_tokens=max_tokens)
        vals, off = out.ragged()
        C = self.hidden_size
        rows = [np.ascontiguousarray(vals[off[i]:off[i + 1]].reshape(-1, len(lay), C)
                                     .transpose(1, 0, 2)) for i in range(len(texts))]
        return rows[0] if single else rows

    def encode_words(self, sentences, mode="mean", layers=None, combine="concat", batch_size=32,
                     max_length=None):
        """Word vectors from WordPiece word ids (`bertcl extract --words`): a list of n float32
        arrays (words_i, width), each word the first of its subwords (mode="first") or their
        mean ("mean")."""
        if mode not in ("first", "mean"):
            raise ValueError(f"mode={mode!r}: 'first' or 'mean'")
        texts, pairs, single = _texts(sentences)
        out = self._extract(texts, pairs, pools=_lib.EXTRACT_NO_POOL, layers=layers,
                            combine=combine, words=1 if mode == "first" else 2,
                            batch_size=batch_size, max_length=max_length)
        vals, off = out.ragged(words=True)
        rows = [vals[off[i]:off[i + 1]] for i in range(len(texts))]
        return rows[0] if single else rows

    # ---- tokenizer -------------------------------------------------------------------------

    def tokenize(self, sentences, max_length=None, padding=True):
        """Tokenizes as BertTokenizerFast does (the library's tokenizer, the one encode uses).

        Returns a dict of numpy arrays padded to the longest text (padding=True) or lists of
        per-text arrays (padding=False): input_ids, token_type_ids, attention_mask (int64),
        word_ids (-1 for [CLS]/[SEP] and padding), offset_mapping ((start, end) in characters
        of the text, (0, 0) for special tokens), and tokens (lists of str), overflow (tokens
        truncated away per text)."""
        self._live()
        texts, pairs, single = _texts(sentences)
        topt = _lib.TokenizeOptions(max_length=int(max_length or 0))
        rows = []
        for i, t in enumerate(texts):
            p = pairs[i] if pairs is not None else None
            e = POINTER(_lib.Encoding)()
            st = _L.bertcl_tokenizer_encode(self._tok, t, len(t), p, len(p) if p else 0,
                                            byref(topt), byref(e))
            _check(st)
            try:
                c = e.contents
                n = c.n
                def arr(ptr, k=1):
                    return (np.ctypeslib.as_array(ptr, shape=(n * k,)).astype(np.int64)
                            if n else np.zeros(0, np.int64))
                rows.append({
                    "input_ids": arr(c.ids),
                    "token_type_ids": arr(c.type_ids),
                    "word_ids": arr(c.word_ids),
                    "offset_mapping": arr(c.offsets, 2).reshape(n, 2),
                    "tokens": [_text(c.tokens[k]) for k in range(n)],
                    "overflow": int(c.overflow[0] + c.overflow[1]),
                })
            finally:
                _L.bertcl_encoding_free(e)
        if not padding:
            out = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
            if rows:
                out["attention_mask"] = [np.ones(len(r["input_ids"]), np.int64) for r in rows]
            return out
        B, T = len(rows), max((len(r["input_ids"]) for r in rows), default=0)
        out = {
            "input_ids": np.full((B, T), self.pad_token_id, np.int64),
            "token_type_ids": np.zeros((B, T), np.int64),
            "attention_mask": np.zeros((B, T), np.int64),
            "word_ids": np.full((B, T), -1, np.int64),
            "offset_mapping": np.zeros((B, T, 2), np.int64),
        }
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            for k in ("input_ids", "token_type_ids", "word_ids", "offset_mapping"):
                out[k][b, :n] = r[k]
            out["attention_mask"][b, :n] = 1
        out["tokens"] = [r["tokens"] for r in rows]
        out["overflow"] = [r["overflow"] for r in rows]
        return out
