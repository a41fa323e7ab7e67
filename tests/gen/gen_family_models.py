#!/usr/bin/env python3
"""Tiny random models of every encoder family bertcl runs, and what transformers computes on them.

    HF_HUB_OFFLINE=1 python3 tests/gen/gen_family_models.py [--out tests/data/families]

Run by developers (needs torch, transformers, sentence-transformers), not by CI; the outputs are
committed. Each model is built from a small transformers config (hidden 32, 4 heads, 2 layers,
intermediate 64, weights at 10x the default spread and every bias and LayerNorm parameter
perturbed, so a wrong mapping or op changes the outputs far past the tests' tolerances), saved
with save_pretrained (safetensors) exactly as a Hugging Face folder holds it, and run in eval mode
with eager attention. Written under --out:

  <name>/                         the model folder: config.json, model.safetensors, the family's
                                  tokenizer (tokenizer.json, tokenizer_config.json: byte-level BPE
                                  for RoBERTa, SentencePiece Unigram for XLM-R and CamemBERT,
                                  WordPiece for DistilBERT and MPNet, trained on or cut from the
                                  test sentences), and for the sentence-transformers folders
                                  modules.json, 1_Pooling/config.json, sentence_bert_config.json
  <name>-ref.safetensors          fixtures, F32/I32, versions in __metadata__:
    input_ids, attention_mask (B, T) I32, token_type_ids (B, T) I32 for families with token types:
        texts tokenized by the folder's tokenizer, right-padded with the pad id: a short text
        (row 0, padded), a text pair (the family's pair template), a row holding only the first
        special token, a longer text; for RoBERTa and MPNet one real token of the pair replaced
        by the pad id (transformers gives it position padding_idx)
    hidden.0 .. hidden.L (B, T, C)  output_hidden_states at every position
    pooler (B, C)                   pooler_output, when the model has a pooler
    logits (B, K) / (B, T, K)       the sequence- / token-classification head (eval mode)
    st.embeddings (B, C)            sentence-transformers' Pooling (+ Normalize) modules on the
                                    last hidden state, for the folders that have modules.json
    single.*                        row 0 alone, unpadded (padding invariance)
    long.*                          (MPNet) a (2, 160) batch of text: relative distances past 128
    rel_buckets (1, 4097) I32       (MPNet) the bucket of relative position -2048 .. 2048
    position_table (P, C)           (DistilBERT sinusoidal) the table transformers computed
    position_ids (B, T) I32         the positions transformers used (its embeddings' rule)

Models:
  tiny-roberta        RobertaForSequenceClassification (3 labels), type_vocab_size 1, eps 1e-5
  tiny-xlm-roberta    XLMRobertaModel with pooler, sentence-transformers CLS pooling + Normalize
  tiny-camembert      CamembertForTokenClassification (5 labels)
  tiny-distilbert     DistilBertForSequenceClassification (2 labels), learned positions
  tiny-distilbert-sin DistilBertForTokenClassification (3 labels), sinusoidal_pos_embds, ReLU; the
                      position table is left out of model.safetensors (transformers then computes
                      the sinusoids)
  tiny-mpnet          MPNetForSequenceClassification (2 labels), 200 positions
  tiny-mpnet-st       MPNetModel with pooler, sentence-transformers mean pooling + Normalize
"""
import argparse
import json
import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # gen_ref_fixtures' texts

import numpy as np
import safetensors
import sentence_transformers
import torch
import transformers
from fixture_io import f32, fnv1a64, i32, save_sorted
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch
try:
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
except ImportError:  # sentence-transformers before 6.x
    from sentence_transformers.models import Normalize, Pooling

SEED = 1818
COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              initializer_range=0.2)


def versions():
    return {"generator": "tests/gen/gen_family_models.py", "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__}








def perturb(model):
    """Default init has zero biases and unit LayerNorms: randomise them so tests see each term."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            low = name.lower()
            if name.endswith("bias") or "layernorm" in low or "layer_norm" in low:
                p.add_(torch.randn_like(p) * 0.1)


def run(model, ids, mask, types=None):
    kw = dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
              output_hidden_states=True)
    if types is not None:
        kw["token_type_ids"] = torch.tensor(types)
    with torch.no_grad():
        return model(**kw)


def base_of(model):
    return getattr(model, model.base_model_prefix, model)


def position_ids(model, ids):
    emb = base_of(model).embeddings
    t = torch.tensor(ids)
    if hasattr(emb, "create_position_ids_from_input_ids"):
        return emb.create_position_ids_from_input_ids(t, emb.padding_idx)
    if type(base_of(model)).__name__.startswith("MPNet"):
        from transformers.models.mpnet.modeling_mpnet import create_position_ids_from_input_ids
        return create_position_ids_from_input_ids(t, emb.padding_idx)
    return torch.arange(t.shape[1]).expand_as(t)


def st_embed(st_modules, hidden, mask):
    feats = {"token_embeddings": hidden, "attention_mask": torch.tensor(mask)}
    with torch.no_grad():
        for m in st_modules:
            feats = m(feats)
    return feats["sentence_embedding"]


def write_st(folder, mode, C, legacy=False):
    """sentence-transformers module files, as SentenceTransformer.save writes them (legacy: the
    pooling_mode_* flags of sentence-transformers < 6, which published models carry)."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    with open(os.path.join(folder, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
    pooling = Pooling(C, pooling_mode=mode)
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    pcfg = pooling.get_config_dict()
    if legacy:
        pcfg = {"word_embedding_dimension": C}
        for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"):
            pcfg[f"pooling_mode_{m}"] = m.startswith(mode + "_")
    with open(os.path.join(folder, "1_Pooling", "config.json"), "w") as f:
        json.dump(pcfg, f, indent=2)
    with open(os.path.join(folder, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 48, "do_lower_case": False}, f, indent=2)
    return [pooling, Normalize()]


def check_sdpa(cls, folder, ids, mask, types, out, what):
    """The fixtures come from the eager path; the default (sdpa) must agree on real tokens."""
    try:
        other = cls.from_pretrained(folder, attn_implementation="sdpa").eval()
    except (ValueError, ImportError):
        return "n/a"
    o = run(other, ids, mask, types)
    m = torch.tensor(mask, dtype=torch.bool)
    worst = max((a - b)[m].abs().max().item() for a, b in zip(o.hidden_states, out.hidden_states))
    assert worst < 1e-5, f"{what}: eager vs sdpa differ by {worst}"
    return f"{worst:.3e}"


def fixtures(name, model_cls, folder, out_dir, ids, mask, types=None, st=None, long=None,
             extra_meta=None, extra=None):
    model = model_cls.from_pretrained(folder, attn_implementation="eager").eval()
    t = {"input_ids": i32(ids), "attention_mask": i32(mask)}
    if types is not None:
        t["token_type_ids"] = i32(types)
    out = run(model, ids, mask, types)
    cfg = model.config
    L = cfg.num_hidden_layers if hasattr(cfg, "num_hidden_layers") else cfg.n_layers
    assert len(out.hidden_states) == L + 1, (name, len(out.hidden_states))
    for l, h in enumerate(out.hidden_states):
        t[f"hidden.{l}"] = f32(h)
    t["position_ids"] = i32(position_ids(model, ids))
    if getattr(out, "pooler_output", None) is not None:
        t["pooler"] = f32(out.pooler_output)
    if getattr(out, "logits", None) is not None:
        t["logits"] = f32(out.logits)
    if st is not None:
        t["st.embeddings"] = f32(st_embed(st, out.hidden_states[-1], mask))
    n0 = sum(mask[0])
    one = run(model, [ids[0][:n0]], [mask[0][:n0]], None if types is None else [types[0][:n0]])
    t["single.input_ids"] = i32([ids[0][:n0]])
    t["single.attention_mask"] = i32([mask[0][:n0]])
    if types is not None:
        t["single.token_type_ids"] = i32([types[0][:n0]])
    for l, h in enumerate(one.hidden_states):
        t[f"single.hidden.{l}"] = f32(h)
    if getattr(one, "logits", None) is not None:
        t["single.logits"] = f32(one.logits)
    if long is not None:
        lids, lmask = long
        lo = run(model, lids, lmask)
        t["long.input_ids"] = i32(lids)
        t["long.attention_mask"] = i32(lmask)
        for l, h in enumerate(lo.hidden_states):
            t[f"long.hidden.{l}"] = f32(h)
    t.update(extra or {})
    diff = check_sdpa(model_cls, folder, ids, mask, types, out, name)
    meta = versions()
    meta.update({"model": f"tests/data/families/{name}", "architecture": model_cls.__name__,
                 "attn_implementation": "eager", "eager_vs_sdpa_max_abs_diff": diff,
                 "model_fnv1a64": fnv1a64(os.path.join(folder, "model.safetensors"))})
    meta.update(extra_meta or {})
    path = os.path.join(out_dir, f"{name}-ref.safetensors")
    save_sorted(t, path, meta)
    print(f"wrote {path}: B={len(ids)} T={len(ids[0])} ({os.path.getsize(path)} bytes)",
          file=sys.stderr)


def save(model, folder):
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)


# ---- tokenizers: each tiny model gets the tokenizer its family uses, trained or cut down to a
# small vocabulary, so the folders are whole (bertcl tokenizes real text with them) -----------

def corpus():
    from gen_ref_fixtures import MINILM_BATCH, MINILM_ST, TINY_TEXTS
    return MINILM_ST + MINILM_BATCH + TINY_TEXTS


def tiny_bert_vocab():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "tests", "data", "tiny-bert", "vocab.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def tok_roberta():
    """Byte-level BPE (RoBERTa's), 400 entries, <s> <pad> </s> <unk> <mask> at 0..4."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=400, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tk = bpe._tokenizer
    tk.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False,
                                          trim_offsets=True)
    return RobertaTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                pad_token="<pad>", mask_token="<mask>")


def unigram(special):
    """(tokenizers' Unigram trainer is not deterministic: a rerun changes some piece scores, and
    the fixtures, written in the same run, follow.)"""
    from tokenizers import SentencePieceUnigramTokenizer
    uni = SentencePieceUnigramTokenizer()
    uni.train_from_iterator(corpus(), vocab_size=300, special_tokens=special, unk_token="<unk>")
    return uni._tokenizer


def tok_xlm_roberta():
    """SentencePiece Unigram (XLM-RoBERTa's), 300 pieces + <mask>."""
    from transformers import XLMRobertaTokenizerFast
    return XLMRobertaTokenizerFast(tokenizer_object=unigram(["<s>", "<pad>", "</s>", "<unk>"]),
                                   bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                   mask_token="<mask>")


def tok_camembert():
    """SentencePiece Unigram with CamemBERT's special tokens (<s> 5, </s> 6)."""
    from transformers import CamembertTokenizerFast
    sp = ["<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>", "<unk>NOTUSED", "<s>", "</s>"]
    return CamembertTokenizerFast(tokenizer_object=unigram(sp), bos_token="<s>", eos_token="</s>",
                                  sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                  pad_token="<pad>", mask_token="<mask>",
                                  additional_special_tokens=sp[0:1] + sp[2:3] + sp[4:5])


def wordpiece(vocab):
    import tempfile
    from tokenizers import BertWordPieceTokenizer
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    try:
        return BertWordPieceTokenizer(f.name, lowercase=True)._tokenizer
    finally:
        os.unlink(f.name)


def tok_distilbert():
    """tiny-bert's WordPiece vocabulary (DistilBERT uses BERT's)."""
    from transformers import DistilBertTokenizerFast
    return DistilBertTokenizerFast(tokenizer_object=wordpiece(tiny_bert_vocab()),
                                   unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                                   cls_token="[CLS]", mask_token="[MASK]")


def tok_mpnet():
    """MPNet's: <s> <pad> </s> <unk> before BERT's WordPiece vocabulary, <mask> after it."""
    from transformers import MPNetTokenizerFast
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + tiny_bert_vocab() + ["<mask>"]
    return MPNetTokenizerFast(tokenizer_object=wordpiece(vocab), bos_token="<s>", eos_token="</s>",
                              sep_token="</s>", cls_token="<s>", unk_token="[UNK]",
                              pad_token="<pad>", mask_token="<mask>")


TEXTS = ["Hello, the world was on fire!", "a b",
         "The quick brown fox jumps over the lazy dog, then it runs away."]
PAIR = ("The cat sat on the mat.", "It was not happy at all.")


def text_batch(tok, T=None, pad_inside=False, single=True):
    """Right-padded (B, T) ids and mask from real texts: row 0 a short text (padded), a text
    pair, a longer text, and (single) a row holding only the first special token. pad_inside:
    one real token of the pair replaced by the pad id (transformers gives it position
    padding_idx)."""
    rows = [tok(TEXTS[0])["input_ids"], tok(*PAIR)["input_ids"], tok(TEXTS[2])["input_ids"]]
    assert all(tok.unk_token_id not in r for r in rows), f"{type(tok).__name__} produced <unk>"
    if single:
        rows.insert(2, rows[0][:1])
    if pad_inside:
        rows[1] = list(rows[1])
        rows[1][3] = tok.pad_token_id
    T = T or max(len(r) for r in rows)
    ids = [r + [tok.pad_token_id] * (T - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (T - len(r)) for r in rows]
    assert len(rows[0]) < T, "row 0 must be padded"
    return ids, mask


def long_batch(tok, T):
    """(2, T): the corpus run together, one row cut to T tokens and one to T - 10."""
    text = " ".join(corpus())
    ids = tok(text, truncation=True, max_length=T)["input_ids"]
    short = tok(text, truncation=True, max_length=T - 10)["input_ids"]
    assert len(ids) == T
    return ([ids, short + [tok.pad_token_id] * 10], [[1] * T, [1] * (T - 10) + [0] * 10])


def save_tok(tok, folder, max_len):
    tok.model_max_length = max_len
    tok.save_pretrained(folder)


def gen_roberta(out, rng):
    from transformers import RobertaConfig, RobertaForSequenceClassification
    tok = tok_roberta()
    cfg = RobertaConfig(vocab_size=len(tok), max_position_embeddings=66, type_vocab_size=1,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
                        num_labels=3, **COMMON)
    model = RobertaForSequenceClassification(cfg)
    perturb(model)
    folder = os.path.join(out, "tiny-roberta")
    save(model, folder)
    save_tok(tok, folder, 64)
    ids, mask = text_batch(tok, pad_inside=True)
    fixtures("tiny-roberta", RobertaForSequenceClassification, folder, out, ids, mask,
             types=[[0] * len(ids[0]) for _ in ids])


def gen_xlm_roberta(out, rng):
    from transformers import XLMRobertaConfig, XLMRobertaModel
    tok = tok_xlm_roberta()
    cfg = XLMRobertaConfig(vocab_size=len(tok), max_position_embeddings=66, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
                           **COMMON)
    model = XLMRobertaModel(cfg, add_pooling_layer=True)
    perturb(model)
    folder = os.path.join(out, "tiny-xlm-roberta")
    save(model, folder)
    save_tok(tok, folder, 64)
    st = write_st(folder, "cls", cfg.hidden_size, legacy=True)
    ids, mask = text_batch(tok)
    fixtures("tiny-xlm-roberta", XLMRobertaModel, folder, out, ids, mask, st=st)


def gen_camembert(out, rng):
    from transformers import CamembertConfig, CamembertForTokenClassification
    tok = tok_camembert()
    cfg = CamembertConfig(vocab_size=len(tok), max_position_embeddings=66, type_vocab_size=1,
                          pad_token_id=1, bos_token_id=5, eos_token_id=6, layer_norm_eps=1e-5,
                          num_labels=5, **COMMON)
    model = CamembertForTokenClassification(cfg)
    perturb(model)
    folder = os.path.join(out, "tiny-camembert")
    save(model, folder)
    save_tok(tok, folder, 64)
    ids, mask = text_batch(tok, single=False)
    fixtures("tiny-camembert", CamembertForTokenClassification, folder, out, ids, mask)


def gen_distilbert(out, rng):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification
    tok = tok_distilbert()
    cfg = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                           max_position_embeddings=64, activation="gelu", pad_token_id=0,
                           initializer_range=0.2, num_labels=2)
    model = DistilBertForSequenceClassification(cfg)
    perturb(model)
    folder = os.path.join(out, "tiny-distilbert")
    save(model, folder)
    save_tok(tok, folder, 64)
    ids, mask = text_batch(tok)
    fixtures("tiny-distilbert", DistilBertForSequenceClassification, folder, out, ids, mask)


def gen_distilbert_sin(out, rng):
    from transformers import DistilBertConfig, DistilBertForTokenClassification
    tok = tok_distilbert()
    cfg = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                           max_position_embeddings=64, sinusoidal_pos_embds=True,
                           activation="relu", pad_token_id=0, initializer_range=0.2,
                           num_labels=3)
    model = DistilBertForTokenClassification(cfg)
    perturb(model)
    folder = os.path.join(out, "tiny-distilbert-sin")
    save(model, folder)
    save_tok(tok, folder, 64)
    # leave the (computable) sinusoid table out: transformers initialises a missing table with it
    path = os.path.join(folder, "model.safetensors")
    sd = load_torch(path)
    table = sd.pop("distilbert.embeddings.position_embeddings.weight")
    save_torch(sd, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)
    reloaded = DistilBertForTokenClassification.from_pretrained(folder)
    reloaded = reloaded.distilbert.embeddings.position_embeddings.weight
    assert torch.equal(reloaded, table), "transformers did not rebuild the sinusoid table"
    ids, mask = text_batch(tok, single=False)
    fixtures("tiny-distilbert-sin", DistilBertForTokenClassification, folder, out, ids, mask,
             extra={"position_table": f32(table)})


def gen_mpnet(out, rng):
    from transformers import MPNetConfig, MPNetForSequenceClassification
    tok = tok_mpnet()
    cfg = MPNetConfig(vocab_size=len(tok), max_position_embeddings=200,
                      relative_attention_num_buckets=32, pad_token_id=1, bos_token_id=0,
                      eos_token_id=2, layer_norm_eps=1e-12, num_labels=2, **COMMON)
    model = MPNetForSequenceClassification(cfg)
    perturb(model)
    folder = os.path.join(out, "tiny-mpnet")
    save(model, folder)
    save_tok(tok, folder, 198)
    ids, mask = text_batch(tok, pad_inside=True)
    long = long_batch(tok, 160)
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder
    rel = torch.arange(-2048, 2049)
    buckets = MPNetEncoder.relative_position_bucket(rel)  # the defaults compute_position_bias uses
    fixtures("tiny-mpnet", MPNetForSequenceClassification, folder, out, ids, mask, long=long,
             extra={"rel_buckets": i32(buckets.reshape(1, -1))})


def gen_mpnet_st(out, rng):
    from transformers import MPNetConfig, MPNetModel
    tok = tok_mpnet()
    cfg = MPNetConfig(vocab_size=len(tok), max_position_embeddings=66,
                      relative_attention_num_buckets=32, pad_token_id=1, bos_token_id=0,
                      eos_token_id=2, layer_norm_eps=1e-5, **COMMON)
    model = MPNetModel(cfg, add_pooling_layer=True)
    perturb(model)
    folder = os.path.join(out, "tiny-mpnet-st")
    save(model, folder)
    save_tok(tok, folder, 64)
    st = write_st(folder, "mean", cfg.hidden_size)
    ids, mask = text_batch(tok)
    fixtures("tiny-mpnet-st", MPNetModel, folder, out, ids, mask, st=st)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "families"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    transformers.logging.set_verbosity_error()
    for k, gen in enumerate([gen_roberta, gen_xlm_roberta, gen_camembert, gen_distilbert,
                             gen_distilbert_sin, gen_mpnet, gen_mpnet_st]):
        torch.manual_seed(SEED + k)
        gen(args.out, np.random.default_rng(SEED + k))


if __name__ == "__main__":
    main()
