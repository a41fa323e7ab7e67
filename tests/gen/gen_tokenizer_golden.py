#!/usr/bin/env python3
"""Writes the tokenizer golden files under tests/data/tokenizer/ (developer tool, not run by CI).

Three tokenizers, each a directory with vocab.txt + tokenizer_config.json + tokenizer.json:
  uncased/  all-MiniLM-L6-v2 (lowercase, strip accents), plus config.json and
            sentence_bert_config.json so the default max length (256) is tested
  cased/    the MiniLM vocabulary plus capitalised variants, do_lower_case=False
  toy/      the vocabulary of transformers' BERT tokenizer tests, lowercase without accent
            stripping (exercises Rust's multi-char lowercase of U+0130)
tokenizer.json is what transformers writes from vocab.txt + tokenizer_config.json; the script
checks that both loads give identical encodings, so the C test can load either way.

golden_<name>.jsonl: one case a line:
  {"text": str | "text_hex": bytes as hex (invalid UTF-8, decoded with errors="replace"),
   "pair": str (optional), "max_length": int (0 = no truncation), "truncation": str,
   "special": bool (add_special_tokens), "split": bool (split_special_tokens),
   "ids", "type_ids", "word_ids" (-1 = None), "offsets" (flat start,end list), "overflow": [a, b]}
  or the same inputs with "error": true where transformers raises.

Run from the repository root (needs transformers, tokenizers; models/all-MiniLM-L6-v2 from
scripts/fetch-model.sh):  python3 tests/gen/gen_tokenizer_golden.py
"""
import json
import os
import random
import re
import shutil
import sys
import tempfile
import unicodedata

from tokenizers import AddedToken
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")

# transformers' tests/models/bert/test_tokenization_bert.py inputs
UPSTREAM = [
    "UNwant\u00E9d,running", "unwanted, running", " \tHeLLo!how  \n Are yoU?  ", "H\u00E9llo",
    "ah\u535A\u63A8zz", " \tHäLLo!how  \n Are yoU?  ", " \tHeLLo!how  \n Are yoU? [UNK]",
    "a\n'll !!to?'d of, can't.", "\u200E\u200F", "", "unwanted running", "unwantedX running",
    " ", "\t", "\r", "\n", "\u00A0", "A", "-", "\u0005", "$", "`", ".", "Test", "\xad", "test",
    "sequence builders", "multi-sequence build", "A, naïve [MASK] AllenNLP sentence.",
    "的人有", "的", "人", "有",
    # tests/test_tokenization_common.py
    "This is a test", "I was born in 92000, and this is falsé.", "生活的真谛是", "Hi  Hello",
    "Hi   Hello", "  ", "  \t  ", " a", "a ", "HuggingFace is solving NLP one commit at a time",
    "lower newer", "[CLS] lower newer [SEP]", "Hello world! cécé herlolip 418",
]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "¿Dónde está la biblioteca? ¡Allí!",
    "Tiếng Việt có dấu: Hà Nội, Đà Nẵng, Huế.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "مرحبا بالعالم، كيف حالك؟",
    "שלום עולם! מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
    "안녕하세요 세계! 한국어 문장입니다.",
    "日本語のテキスト、カタカナとひらがな。",
    "今天天气很好，我们去公园散步吧！",
    "İstanbul'da ılık bir gün; IŞIK ve ışık.",
    "Ωμέγα ΣΊΣΥΦΟΣ ς σ Σ",
    "Ǆemal ǅ ǆ ﬁne ﬂow ß ẞ",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ！１２３",
    "e\u0301 a\u0300\u0316 o\u0308\u0304 n\u0303 Z\u0335\u0321a\u0336\u0322l\u0337g\u0338o\u0339",
    "👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👍🏽 thumbs 1️⃣ keycap 🇫🇷 🇯🇵",
    "emoji🙂inside😀words🤗and🥰new🫠ones",
    "math: ∑x² ≤ ∞ ± √2 ∈ ℝ, ∀ε>0 ∃δ",
    "currency $5 €10 £3 ¥100 ₹50 ₿0.1 ¢",
    "quotes “double” ‘single’ «guillemets» „low“ ‹›",
    "dashes - – — ― ‒ and ellipsis … and ‰ ‱ † ‡ • ‣",
    "brackets ( ) [ ] { } ⟨ ⟩ 「 」 『 』 【 】 〔 〕",
    "tab\there\nnewline\r\ncrlf\x0bvt\x0cff\x85nel",
    "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom",
    "control\x00nul\x01soh\x1bescape\x7fdel\x9fapc",
    "private\ue000use\U000F0000plane",
    "replacement\ufffdchar and noncharacter\ufdd0 and \uffff",
    "spaces\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000end",
    "line\u2028sep\u2029para\u1680ogham\u180emongolian",
    "soft\xadhyphen and bidi\u202aembed\u202c\u2066iso\u2069",
    "Hangul jamo 각 and syllables 갂 똠 힣",
    "CJK ext: 𠀀𠀁 𪜀 𫝀 𫠠 𬺰 㐀 豈 丽",
    "ligatures ﬀ ﬃ ﬄ ﬅ ﬆ and roman Ⅻ ⅻ",
    "accents: àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞŸ",
    "Ælfred ŒUVRE Łódź Øresund Ħamrun Đorđe",
    "URLs https://example.com/path?q=1&b=2#frag and emails first.last@mail.co.uk",
    "code: if (a[i] != b->c) { return x_y * 2; } // done",
    "numbers 3.14159 1,000,000 10^6 1e-9 ½ ¾ ² ³ ١٢٣ ४५६",
    "hashtags #NLP @user ##not_a_subword ## #",
    "Mixed CASE WordS and ALLCAPS and camelCaseWords",
    "Armenian Հայաստան, Georgian საქართველო, Ethiopic ኢትዮጵያ",
    "Tamil தமிழ், Bengali বাংলা, Gujarati ગુજરાતી, Khmer ភាសាខ្មែរ",
    "Tibetan བོད་ཡིག, Myanmar မြန်မာ, Sinhala සිංහල, Lao ລາວ",
    "ancient 𐌰𐌱𐌲 gothic, 𓀀𓀁 hieroglyphs, cuneiform 𒀀",
    "Dives Akuru 𑤸 and new Mn 𑴱 and ؝ arabic end of text mark",
    "Canadian ᙭ syllabics chi sign and ᐃᓄᒃᑎᑐᑦ",
    "ＡＢＣ ａｂｃ ｶﾀｶﾅ ＠＃％",
]

SPECIAL_CASES = [
    "[SEP]", "[CLS]", "[MASK]", "[UNK]", "[PAD]", "[CLS] hi [SEP]", "a[SEP]b", "[sep]", "[Sep]",
    "[SEP][SEP]", "[[SEP]]", "[ SEP ]", "[SE P]", "x[SEP", "SEP]", "[CLS][MASK][PAD][UNK][SEP]",
    "hello [MASK] world", "[MASK]ed", "un[MASK]able", "  [SEP]  ", "[SEP]\t[SEP]\n[SEP]",
    "[CLS]] [[CLS]", "ＳＥＰ [SEP\u0301]", "[MASK] é [MASK]",
    "a<ent>b", "<ent> [NEW] x", "[NEW]<ent>[SEP]", "<ENT> <ent", "[new] [NEW]ing",
]

WORDS = ("the of and to in is was for on that with as by at from his her an were are which "
         "this be has had not but one their its also after new first two been other who more "
         "university government during world year school united states national between "
         "international unbelievable antidisestablishmentarianism floccinaucinihilipilification "
         "naïve café résumé jalapeño façade coöperate Zürich São Paulo Kraków Ångström "
         "don't can't won't it's o'clock rock'n'roll e.g. i.e. U.S.A. Ph.D. 3-4 5/6 7:30 "
         "COVID-19 GPT-4 C++ C# .NET node.js").split()


def rand_text(rng, nwords):
    out = []
    for _ in range(nwords):
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.1:
            w = w.upper()
        elif r < 0.2:
            w = w.capitalize()
        out.append(w)
        if rng.random() < 0.1:
            out.append(rng.choice(",.;:!?-()\"'"))
    return " ".join(out)


def interesting_codepoints():
    """Samples of every general category, and the code points where Rust's tables differ
    from current Unicode (see src/tokenizer/unicode_tables.h)."""
    by_cat = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        by_cat.setdefault(unicodedata.category(chr(cp)), []).append(cp)
    return by_cat


def build_cases(rng):
    cases = []

    def add(text, pair=None, max_length=0, truncation="longest_first", special=True, split=False):
        cases.append(dict(text=text, pair=pair, max_length=max_length, truncation=truncation,
                          special=special, split=split))

    for t in UPSTREAM + SENTENCES:
        add(t)
    for t in UPSTREAM[:12] + SENTENCES[:20]:
        add(t, special=False)
    for t in SPECIAL_CASES:
        add(t)
        add(t, split=True)
    add("[SEP] a [CLS]", "[MASK] b", split=False)
    add("[SEP] a [CLS]", "[MASK] b", split=True)
    # empty strings and whitespace-only texts, alone and in pairs
    for t in ["", " ", "\n", "\x00", "\ufffd", "\u200b", "\t \u3000 "]:
        add(t)
        add(t, "")
        add("", t)
        add(t, "x")
    # long words around max_input_chars_per_word = 100 (counted in normalized characters)
    for n in (99, 100, 101):
        add("a" * n)
        add("b" * n + " c")
        add("x" * (n - 1) + "é")                      # accent stripped or kept
        add("é" * n)
        add("İ" * (n // 2) + "i" * (n % 2))           # lowercase -> 2 chars each (toy)
        add("ab" * (n // 2) + "a" * (n % 2), "z" * n)
        add("中" + "a" * n)
        add("un" + "want" * ((n - 2) // 4) + "ed"[: (n - 2) % 4])
    add("갂" * 34)  # NFD: 3 jamo each -> 102 chars when stripping accents
    add("갂" * 33)
    # every category: characters alone, inside a word, around punctuation
    by_cat = interesting_codepoints()
    for cat in sorted(by_cat):
        cps = by_cat[cat]
        picks = rng.sample(cps, min(len(cps), 12))
        for cp in picks:
            c = chr(cp)
            add(f"a{c}b {c} x{c}{c}y")
        add(" ".join(chr(cp) for cp in rng.sample(cps, min(len(cps), 24))))
    # code points whose class differs between Rust's crate and current Unicode
    diff_cps = [0x61D, 0x166D, 0x11938, 0x1734, 0x890, 0x891, 0x8E2, 0x110CD, 0x13430, 0x1C89,
                0xA7CB, 0x10D50, 0x16EA0, 0x2E43, 0x2E4F, 0x2E52, 0x2E5D, 0x1AC0, 0x1E08F,
                0x10EFD, 0x1E4EC, 0x11F00, 0x0898, 0x1DFA, 0x16FE4, 0x1CF00, 0x11C92]
    for cp in diff_cps:
        c = chr(cp)
        add(f"a{c}b {c} Ab{c}{c}Cd é{c}")
    # random code point soup from all planes
    assigned = [cp for cat, cps in by_cat.items() if cat != "Cs" for cp in cps]
    for _ in range(450):
        n = rng.randint(1, 12)
        add("".join(chr(rng.choice(assigned)) for _ in range(n)) + " " +
            "".join(chr(rng.choice(assigned)) for _ in range(rng.randint(0, 6))))
    # combining-mark soup: NFD canonical reordering (offsets follow tokenizers' positional
    # alignment), marks unknown to the Rust tables, CJK compatibility ideographs (decomposed
    # after the CJK spacing), edges of every table in src/tokenizer/unicode_tables.h
    marks = [cp for cp in assigned if unicodedata.combining(chr(cp))]
    tables = open(os.path.join(ROOT, "src", "tokenizer", "unicode_tables.h")).read()
    edges = [int(x, 16) for x in re.findall(r"0x([0-9A-F]+)", tables.split("#define")[-1])]
    edges = [cp for cp in edges if cp < 0x110000 and not 0xD800 <= cp <= 0xDFFF]
    base = list("abcXYZ019 .,'-#") + ["[SEP]", "İ", "Σ", "갂", "中", "\uf967", "\U0002f901", "é", "e\u0301"]
    for _ in range(300):
        out = []
        for _ in range(rng.randint(1, 24)):
            r = rng.random()
            pool = base if r < 0.4 else marks if r < 0.7 else edges if r < 0.9 else assigned
            c = rng.choice(pool)
            out.append(c if isinstance(c, str) else chr(c))
        add("".join(out))
    # random ASCII (letters, digits, punctuation, whitespace, controls)
    for _ in range(300):
        n = rng.randint(0, 40)
        add("".join(chr(rng.randint(0, 127)) for _ in range(n)))
    # random sentences, single and pairs, with and without truncation
    strategies = ["longest_first", "only_first", "only_second"]
    for i in range(500):
        a = rand_text(rng, rng.randint(0, 30))
        if i % 2 == 0:
            add(a, max_length=rng.choice([0, 0, 8, 16, 32]),
                truncation=rng.choice(["longest_first", "only_first"]))
        else:
            b = rand_text(rng, rng.randint(0, 30))
            add(a, b, max_length=rng.choice([0, 5, 8, 13, 16, 32, 64]),
                truncation=rng.choice(strategies))
    # tiny max lengths: below the template, equal to it, just above
    for ml in (1, 2, 3, 4, 5, 6):
        for strat in strategies:
            add("hello world foo bar", max_length=ml, truncation=strat)
            add("hello world foo bar", "x y z", max_length=ml, truncation=strat)
            add("a", "b c d e f g h", max_length=ml, truncation=strat)
    # very long texts that need truncation (default max_length of each tokenizer or 512)
    for i in range(12):
        a = rand_text(rng, rng.randint(150, 300))
        b = rand_text(rng, rng.randint(5, 200))
        ml = [128, 64, 256, 77][i % 4]
        add(a, max_length=ml)
        add(a, b, max_length=ml, truncation=strategies[i % 3])
    # invalid UTF-8 (decoded with errors="replace")
    bad = [b"\xff", b"\xc3", b"a\xc3b", b"\xe2\x82", b"\xe2\x82\xac\xe2", b"\xf0\x9f\x98",
           b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\x80\x80abc",
           b"caf\xe9", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"ok \xfe\xfe ok", b"\xef\xbf\xbd",
           b"[SEP]\xff[CLS]", b"\xf0\x9f\x98\x80\xf0\x9f", b"\xe4\xb8\xad\xe4\xb8", b"\xdf"]
    for b in bad:
        cases.append(dict(text_hex=b.hex(), pair=None, max_length=0, truncation="longest_first",
                          special=True, split=False))
    for _ in range(40):
        b = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 24)))
        cases.append(dict(text_hex=b.hex(), pair=None, max_length=0, truncation="longest_first",
                          special=True, split=False))
    # no special tokens with pairs and truncation
    for i in range(40):
        add(rand_text(rng, 12), rand_text(rng, 9), max_length=rng.choice([0, 6, 10]),
            truncation=strategies[i % 3], special=False)
    return cases


def encode(tok, case):
    text = case.get("text")
    if text is None:
        text = bytes.fromhex(case["text_hex"]).decode("utf-8", errors="replace")
    pair = case["pair"]
    ml = case["max_length"]
    kw = dict(add_special_tokens=case["special"], split_special_tokens=case["split"],
              return_offsets_mapping=True)
    if ml:
        kw.update(truncation=case["truncation"], max_length=ml)
    else:
        kw.update(truncation=False)
    try:
        enc = tok(text, pair, **kw)
    except Exception:  # transformers raises: the C side must fail too
        return {"error": True}
    full = [len(tok(t, add_special_tokens=False, split_special_tokens=case["split"],
                    truncation=False)["input_ids"]) if t is not None else 0
            for t in (text, pair)]
    seq = enc.sequence_ids()
    kept = [sum(1 for s in seq if s == k) for k in (0, 1)]
    offs = []
    for a, b in enc["offset_mapping"]:
        offs += [a, b]
    return {"ids": enc["input_ids"], "type_ids": enc["token_type_ids"],
            "word_ids": [-1 if w is None else w for w in enc.word_ids()],
            "offsets": offs, "overflow": [full[0] - kept[0], full[1] - kept[1]]}


def make_dirs(tmp):
    """Writes uncased/, cased/, toy/ under OUT (vocab.txt + tokenizer_config.json first; then the
    tokenizer.json transformers builds from them). Returns {name: dir}."""
    dirs = {}
    # uncased: the real model's files
    d = os.path.join(OUT, "uncased")
    os.makedirs(d, exist_ok=True)
    for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "config.json",
              "sentence_bert_config.json"):
        shutil.copy(os.path.join(MODEL, f), d)
    dirs["uncased"] = d
    # cased: MiniLM vocabulary + capitalised words
    vocab = open(os.path.join(MODEL, "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]
    have = set(vocab)
    extra = []
    for t in vocab:
        if t.isalpha() and len(t) > 1 and not t.startswith("##"):
            for v in (t.capitalize(), t.upper() if len(t) <= 4 else None):
                if v and v not in have:
                    have.add(v)
                    extra.append(v)
    cased_cfg = {"do_lower_case": False, "tokenizer_class": "BertTokenizer",
                 "model_max_length": 512}
    toy_vocab = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "want", "##want", "##ed", "wa",
                 "un", "runn", "##ing", ",", "low", "lowest", "i", "##i", "\u0307", "##\u0307",
                 "a", "##a", "b", "##b", "x", "##x", "é", "##é", "z", "##z"]
    toy_cfg = {"do_lower_case": True, "strip_accents": False, "tokenizer_class": "BertTokenizer"}
    for name, voc, cfg in (("cased", vocab + extra, cased_cfg), ("toy", toy_vocab, toy_cfg)):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in voc))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        tok = AutoTokenizer.from_pretrained(d)
        if name == "toy":
            # added tokens past the vocabulary: one plain (matched even with
            # split_special_tokens), one special
            tok.add_tokens([AddedToken("<ent>", normalized=False, special=False)])
            tok.add_tokens([AddedToken("[NEW]", normalized=False, special=True)],
                           special_tokens=True)
        sd = os.path.join(tmp, name)
        tok.save_pretrained(sd)
        if name == "toy":
            # transformers 5 keeps added tokens in tokenizer.json only; it still reads the 4.x
            # "added_tokens_decoder" of tokenizer_config.json, which lets vocab.txt loads agree
            cfg = dict(cfg, added_tokens_decoder={
                str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                         "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special}
                for i, t in tok.added_tokens_decoder.items() if i >= len(voc)})
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
        with open(os.path.join(sd, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
        dirs[name] = d
    return dirs


def main():
    rng = random.Random(20261126)
    cases = build_cases(rng)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = make_dirs(tmp)
        for name, d in dirs.items():
            tok = AutoTokenizer.from_pretrained(d)
            assert tok.is_fast
            # the same tokenizer from vocab.txt + tokenizer_config.json only
            vd = os.path.join(tmp, name + "-vocab")
            os.makedirs(vd, exist_ok=True)
            for f in ("vocab.txt", "tokenizer_config.json"):
                shutil.copy(os.path.join(d, f), vd)
            vtok = AutoTokenizer.from_pretrained(vd)
            path = os.path.join(OUT, f"golden_{name}.jsonl")
            n = 0
            with open(path, "w", encoding="utf-8") as f:
                for case in cases:
                    res = encode(tok, case)
                    if encode(vtok, case) != res:
                        sys.exit(f"{name}: vocab.txt and tokenizer.json loads differ on {case}")
                    row = {k: v for k, v in case.items() if v is not None}
                    row.update(res)
                    f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                    n += 1
            print(f"{path}: {n} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
