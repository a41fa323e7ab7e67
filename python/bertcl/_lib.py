"""ctypes declarations of include/bertcl.h (the part the Python module uses) and the library.

The library is the package's own libbertcl.so (built by `pip install ./python`), or the file
named by $BERTCL_LIBRARY (e.g. a build tree's build/libbertcl.so). ctypes releases the GIL
around every call into it, so other Python threads run while the device works.

The Structure classes mirror the C structs field for field; tests/test_layout.py compiles a
C program against include/bertcl.h and checks every size and offset, so a change to a struct
in the header that is not made here fails the tests.
"""

import ctypes
import os
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int,
    c_int32,
    c_int64,
    c_long,
    c_size_t,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
    CFUNCTYPE,
)


class DeviceInfo(Structure):
    _fields_ = [
        ("platform_index", c_int),
        ("device_index", c_int),
        ("platform_name", c_char * 128),
        ("platform_version", c_char * 128),
        ("name", c_char * 128),
        ("vendor", c_char * 128),
        ("version", c_char * 128),
        ("driver_version", c_char * 128),
        ("type", c_int),
        ("compute_units", c_uint32),
        ("max_clock_mhz", c_uint32),
        ("global_mem_bytes", c_uint64),
        ("max_alloc_bytes", c_uint64),
        ("local_mem_bytes", c_uint64),
        ("max_work_group_size", c_size_t),
        ("fp16", c_int),
        ("subgroups", c_int),
        ("is_default", c_int),
        ("fp32_peak_gflops", c_double),
        ("peak_basis", c_char * 256),
    ]


class CtxOptions(Structure):
    _fields_ = [
        ("device", c_char_p),
        ("profiling", c_int),
        ("cache_dir", c_char_p),
        ("gemm", c_char_p),
    ]


class ModelInfo(Structure):
    _fields_ = [
        ("model_type", c_char * 32),
        ("hidden_act", c_char * 32),
        ("vocab_size", c_int),
        ("hidden_size", c_int),
        ("num_layers", c_int),
        ("num_heads", c_int),
        ("intermediate_size", c_int),
        ("max_position", c_int),
        ("type_vocab_size", c_int),
        ("pad_token_id", c_int),
        ("layer_norm_eps", c_float),
        ("has_pooler", c_int),
        ("num_labels", c_int),
        ("problem_type", c_char * 64),
        ("num_params", c_uint64),
        ("num_files", c_int),
        ("num_unused", c_int),
        ("dtypes", c_char * 64),
        ("pooling", c_char * 48),
        ("normalize", c_int),
        ("st_max_seq_length", c_int),
        ("max_length", c_int),
        ("do_lower_case", c_int),
        ("has_vocab_txt", c_int),
        ("has_tokenizer_json", c_int),
        ("tokenizer_class", c_char * 64),
        ("family", c_char * 16),
    ]


class TokenizeOptions(Structure):
    _fields_ = [
        ("max_length", c_size_t),
        ("truncation", c_int),
        ("no_special_tokens", c_int),
        ("split_special_tokens", c_int),
        ("pad_to_max_length", c_int),
    ]


class Encoding(Structure):
    _fields_ = [
        ("n", c_size_t),
        ("ids", POINTER(c_int32)),
        ("type_ids", POINTER(c_int32)),
        ("word_ids", POINTER(c_int32)),
        ("seq_ids", POINTER(c_int32)),
        ("offsets", POINTER(c_int32)),
        ("tokens", POINTER(c_char_p)),
        ("overflow", c_size_t * 2),
        ("replaced", c_size_t * 2),
    ]


class ExtractOptions(Structure):
    _fields_ = [
        ("pools", c_uint),
        ("layers", POINTER(c_int)),
        ("nlayers", c_int),
        ("combine", c_int),
        ("normalize", c_int),
        ("tokens", c_int),
        ("words", c_int),
        ("max_length", c_size_t),
        ("stride", c_int),
        ("f16", c_int),
        ("batch_size", c_size_t),
        ("max_tokens", c_size_t),
        ("window", c_size_t),
        ("no_bucket", c_int),
        ("threads", c_int),
        ("strict", c_int),
        ("progress", c_int),
    ]


class ExtractStats(Structure):
    _fields_ = [
        ("rows", c_uint64),
        ("tokens", c_uint64),
        ("truncated", c_uint64),
        ("bad", c_uint64),
        ("windows_split", c_uint64),
        ("batches", c_uint64),
        ("readback_bytes", c_uint64),
        ("seconds", c_double),
    ]


class FinetuneOptions(Structure):
    _fields_ = [
        ("train_file", c_char_p),
        ("eval_file", c_char_p),
        ("output_dir", c_char_p),
        ("text_column", c_char_p),
        ("pair_column", c_char_p),
        ("label_column", c_char_p),
        ("task", c_int),
        ("num_labels", c_int),
        ("epochs", c_int),
        ("lr", c_double),
        ("batch_size", c_size_t),
        ("grad_accum", c_int),
        ("max_length", c_size_t),
        ("warmup_ratio", c_double),
        ("weight_decay", c_double),
        ("max_grad_norm", c_double),
        ("seed", c_uint64),
        ("eval_every", c_long),
        ("save_every", c_long),
        ("log_every", c_long),
        ("freeze_encoder", c_int),
        ("resume", c_int),
        ("tag_column", c_int),
        ("label_all_tokens", c_int),
        ("scheme", c_int),
    ]


class Metrics(Structure):
    _fields_ = [
        ("examples", c_size_t),
        ("accuracy", c_double),
        ("macro_f1", c_double),
        ("f1", c_double),
        ("mse", c_double),
        ("pearson", c_double),
        ("spearman", c_double),
        ("precision", c_double),
        ("recall", c_double),
        ("entity_f1", c_double),
        ("n_types", c_int),
        ("type_names", POINTER(c_char_p)),
        ("type_precision", POINTER(c_double)),
        ("type_recall", POINTER(c_double)),
        ("type_f1", POINTER(c_double)),
        ("type_support", POINTER(c_size_t)),
    ]


class Progress(Structure):
    _fields_ = [
        ("event", c_int),
        ("message", c_char_p),
        ("step", c_long),
        ("total_steps", c_long),
        ("epoch", c_int),
        ("loss", c_double),
        ("lr", c_double),
        ("grad_norm", c_double),
        ("examples_per_s", c_double),
        ("eta_s", c_double),
        ("metrics", POINTER(Metrics)),
        ("improved", c_int),
    ]


class FinetuneResult(Structure):
    _fields_ = [
        ("task", c_int),
        ("num_labels", c_int),
        ("steps", c_long),
        ("best_step", c_long),
        ("best_metric", c_double),
        ("stopped", c_int),
    ]


class PredictOptions(Structure):
    _fields_ = [
        ("input_file", c_char_p),
        ("output_file", c_char_p),
        ("text_column", c_char_p),
        ("pair_column", c_char_p),
        ("format", c_int),
        ("batch_size", c_size_t),
        ("max_length", c_size_t),
    ]


# int (*bertcl_progress_fn)(const bertcl_progress *p, void *user)
ProgressFn = CFUNCTYPE(c_int, POINTER(Progress), c_void_p)

# the C structs the layout test checks: Python class -> C type name
STRUCTS = {
    DeviceInfo: "bertcl_device_info",
    CtxOptions: "bertcl_ctx_options",
    ModelInfo: "bertcl_model_info",
    TokenizeOptions: "bertcl_tokenize_options",
    Encoding: "bertcl_encoding",
    ExtractOptions: "bertcl_extract_options",
    ExtractStats: "bertcl_extract_stats",
    FinetuneOptions: "bertcl_finetune_options",
    Metrics: "bertcl_metrics",
    Progress: "bertcl_progress",
    FinetuneResult: "bertcl_finetune_result",
    PredictOptions: "bertcl_predict_options",
}

# enum and macro values (checked by the layout test too)
POOL_CLS, POOL_MEAN, POOL_MAX, POOL_POOLER = 1, 2, 4, 8
EXTRACT_NO_POOL = 0x100
COMBINE_CONCAT, COMBINE_MEAN, COMBINE_SUM = 0, 1, 2
NORMALIZE_AUTO, NORMALIZE_ON, NORMALIZE_OFF = 0, 1, 2
TRUNC_LONGEST_FIRST, TRUNC_ONLY_FIRST, TRUNC_ONLY_SECOND, TRUNC_NONE = 0, 1, 2, 3
TASK_AUTO, TASK_CLASSIFICATION, TASK_REGRESSION, TASK_TOKEN_CLASSIFICATION = 0, 1, 2, 3
SCHEME_AUTO, SCHEME_IOB1, SCHEME_IOB2, SCHEME_IOBES, SCHEME_NONE = 0, 1, 2, 3, 4
INPUT_AUTO, INPUT_TEXT, INPUT_CONLL, INPUT_JSONL = 0, 1, 2, 3
EVENT_INFO, EVENT_LOG, EVENT_EVAL, EVENT_STEP, EVENT_DONE = 1, 2, 3, 4, 5
CONSTANTS = {
    "BERTCL_TASK_AUTO": TASK_AUTO,
    "BERTCL_TASK_CLASSIFICATION": TASK_CLASSIFICATION,
    "BERTCL_TASK_REGRESSION": TASK_REGRESSION,
    "BERTCL_TASK_TOKEN_CLASSIFICATION": TASK_TOKEN_CLASSIFICATION,
    "BERTCL_SCHEME_AUTO": SCHEME_AUTO,
    "BERTCL_SCHEME_IOB1": SCHEME_IOB1,
    "BERTCL_SCHEME_IOB2": SCHEME_IOB2,
    "BERTCL_SCHEME_IOBES": SCHEME_IOBES,
    "BERTCL_SCHEME_NONE": SCHEME_NONE,
    "BERTCL_INPUT_AUTO": INPUT_AUTO,
    "BERTCL_INPUT_TEXT": INPUT_TEXT,
    "BERTCL_INPUT_CONLL": INPUT_CONLL,
    "BERTCL_INPUT_JSONL": INPUT_JSONL,
    "BERTCL_EVENT_INFO": EVENT_INFO,
    "BERTCL_EVENT_LOG": EVENT_LOG,
    "BERTCL_EVENT_EVAL": EVENT_EVAL,
    "BERTCL_EVENT_STEP": EVENT_STEP,
    "BERTCL_EVENT_DONE": EVENT_DONE,
    "BERTCL_POOL_CLS": POOL_CLS,
    "BERTCL_POOL_MEAN": POOL_MEAN,
    "BERTCL_POOL_MAX": POOL_MAX,
    "BERTCL_POOL_POOLER": POOL_POOLER,
    "BERTCL_EXTRACT_NO_POOL": EXTRACT_NO_POOL,
    "BERTCL_COMBINE_CONCAT": COMBINE_CONCAT,
    "BERTCL_COMBINE_MEAN": COMBINE_MEAN,
    "BERTCL_COMBINE_SUM": COMBINE_SUM,
    "BERTCL_NORMALIZE_AUTO": NORMALIZE_AUTO,
    "BERTCL_NORMALIZE_ON": NORMALIZE_ON,
    "BERTCL_NORMALIZE_OFF": NORMALIZE_OFF,
    "BERTCL_TRUNC_LONGEST_FIRST": TRUNC_LONGEST_FIRST,
    "BERTCL_TRUNC_ONLY_FIRST": TRUNC_ONLY_FIRST,
    "BERTCL_TRUNC_ONLY_SECOND": TRUNC_ONLY_SECOND,
    "BERTCL_TRUNC_NONE": TRUNC_NONE,
}

_p = c_void_p
_pp = POINTER(c_void_p)
# name: (restype, argtypes)
_FUNCS = {
    "bertcl_version": (c_char_p, []),
    "bertcl_status_str": (c_char_p, [c_int]),
    "bertcl_status_name": (c_char_p, [c_int]),
    "bertcl_last_error": (c_char_p, [_p]),
    "bertcl_devices_list": (c_int, [POINTER(POINTER(DeviceInfo)), POINTER(c_size_t)]),
    "bertcl_devices_free": (None, [POINTER(DeviceInfo)]),
    "bertcl_ctx_create": (c_int, [_pp, POINTER(CtxOptions)]),
    "bertcl_ctx_free": (None, [_p]),
    "bertcl_ctx_device": (POINTER(DeviceInfo), [_p]),
    "bertcl_model_load": (c_int, [_pp, c_char_p]),
    "bertcl_model_free": (None, [_p]),
    "bertcl_model_get_info": (c_int, [_p, POINTER(ModelInfo)]),
    "bertcl_model_label": (c_char_p, [_p, c_int]),
    "bertcl_tokenizer_load": (c_int, [_pp, c_char_p]),
    "bertcl_tokenizer_free": (None, [_p]),
    "bertcl_tokenizer_max_length": (c_size_t, [_p]),
    "bertcl_tokenizer_vocab_size": (c_size_t, [_p]),
    "bertcl_tokenizer_encode": (
        c_int,
        [_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(TokenizeOptions),
         POINTER(POINTER(Encoding))],
    ),
    "bertcl_encoding_free": (None, [POINTER(Encoding)]),
    "bertcl_encoder_create": (c_int, [_pp, _p, _p]),
    "bertcl_encoder_free": (None, [_p]),
    "bertcl_extract": (
        c_int,
        [_p, _p, POINTER(c_char_p), POINTER(c_char_p), c_size_t, POINTER(ExtractOptions), _pp],
    ),
    "bertcl_finetune_options_init": (None, [POINTER(FinetuneOptions)]),
    "bertcl_finetune": (
        c_int,
        [_p, _p, _p, POINTER(FinetuneOptions), ProgressFn, c_void_p, POINTER(FinetuneResult)],
    ),
    "bertcl_classifier_create": (c_int, [_pp, _p, _p]),
    "bertcl_classifier_free": (None, [_p]),
    "bertcl_classifier_task": (c_int, [_p]),
    "bertcl_classifier_num_labels": (c_int, [_p]),
    "bertcl_classifier_label": (c_char_p, [_p, c_int]),
    "bertcl_classify": (
        c_int,
        [_p, _p, POINTER(c_char_p), POINTER(c_char_p), c_size_t, c_size_t, POINTER(c_float),
         c_size_t],
    ),
    "bertcl_predict": (c_int, [_p, _p, _p, POINTER(PredictOptions), ProgressFn, c_void_p]),
    "bertcl_features_free": (None, [_p]),
    "bertcl_features_rows": (c_size_t, [_p]),
    "bertcl_features_stats": (POINTER(ExtractStats), [_p]),
    "bertcl_features_pooled": (POINTER(c_float), [_p, c_int, POINTER(c_size_t)]),
    "bertcl_features_tokens": (
        POINTER(c_float),
        [_p, POINTER(POINTER(c_int64)), POINTER(c_size_t), POINTER(c_size_t)],
    ),
    "bertcl_features_words": (
        POINTER(c_float),
        [_p, POINTER(POINTER(c_int64)), POINTER(c_size_t), POINTER(c_size_t)],
    ),
}


def library_path():
    """The libbertcl.so this module loads: $BERTCL_LIBRARY, else the package's own copy."""
    env = os.environ.get("BERTCL_LIBRARY")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libbertcl.so")


def load():
    path = library_path()
    if not os.path.exists(path):
        raise ImportError(
            f"bertcl: no library at {path}. Install the package with `pip install ./python` "
            "from the bertcl repository (it builds libbertcl.so into the package), or point "
            "$BERTCL_LIBRARY at a built libbertcl.so"
        )
    lib = ctypes.CDLL(path)  # CDLL (not PyDLL): the GIL is released during every call
    for name, (res, args) in _FUNCS.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib
