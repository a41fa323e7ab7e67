#!/usr/bin/env python3
"""Writes src/tokenizer/unicode_tables.h: the character classes of Hugging Face's Rust tokenizer.

The Rust BertNormalizer/BertPreTokenizer take their character categories from the
`unicode_categories` crate (old Unicode tables), whitespace from Rust's std, NFD from
`unicode_normalization_alignments` and lowercase from Rust's std (a newer Unicode than
utf8proc 2.8 / Unicode 15). To be identical we probe the installed `tokenizers` for every code
point and store:
  - the sets it removes (clean_text), treats as whitespace, as punctuation, as a nonspacing
    mark (strip_accents): complete range tables, independent of the utf8proc version;
  - where NFD and lowercase differ from utf8proc's (the C code uses utf8proc for both):
    short exception tables.
Developer tool (needs `pip install tokenizers`); CI builds from the committed header.
Run: python3 src/tokenizer/gen_unicode_tables.py > src/tokenizer/unicode_tables.h
"""
import ctypes
import ctypes.util
import sys

import tokenizers
from tokenizers import normalizers, pre_tokenizers

lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so")
lib.utf8proc_tolower.restype = ctypes.c_int32
lib.utf8proc_tolower.argtypes = [ctypes.c_int32]
lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
lib.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                                        ctypes.c_ssize_t, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
lib.utf8proc_unicode_version.restype = ctypes.c_char_p
UTF8PROC_DECOMPOSE = 1 << 4
buf = (ctypes.c_int32 * 32)()
last = ctypes.c_int(0)


def u_nfd(cp):
    n = lib.utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, ctypes.byref(last))
    return [buf[i] for i in range(n)]


clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                   strip_accents=False, lowercase=False)
strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                   strip_accents=True, lowercase=False)
low = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                 strip_accents=False, lowercase=True)
pt = pre_tokenizers.BertPreTokenizer()

remove, space, punct, mn = set(), set(), set(), set()
nfd_keep, lower_exc = [], []
cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
strip_out, nfd = {}, {}
for cp in cps:
    c = chr(cp)
    r = clean.normalize_str(c)
    if r == "":
        remove.add(cp)
    p = pt.pre_tokenize_str("a" + c + "b")
    if len(p) == 2:
        space.add(cp)
    elif len(p) == 3:
        punct.add(cp)
    s = strip.normalize_str(c)
    strip_out[cp] = s
    d = u_nfd(cp)
    nfd[cp] = d
    if d == [cp] and s == "":
        mn.add(cp)
    lo = low.normalize_str(c)
    if cp == 0x130:
        assert lo == "i\u0307", repr(lo)
    else:
        assert len(lo) == 1, (hex(cp), lo)
        if ord(lo) != lib.utf8proc_tolower(cp):
            lower_exc.append((cp, ord(lo)))
for cp in cps:
    exp = "".join(chr(x) for x in nfd[cp] if x not in mn)
    if strip_out[cp] != exp:
        assert strip_out[cp] == chr(cp), hex(cp)
        nfd_keep.append(cp)
# canonical combining classes the Rust NFD (unicode_normalization_alignments, older Unicode)
# does not know: it leaves those marks in place where utf8proc would reorder them
lib.utf8proc_get_property.restype = ctypes.POINTER(ctypes.c_int16 * 2)
lib.utf8proc_get_property.argtypes = [ctypes.c_int32]
nfd = normalizers.NFD()
ccc_unknown = set()
for cp in cps:
    c = lib.utf8proc_get_property(cp).contents[1]
    if c == 0 or len(u_nfd(cp)) != 1 or u_nfd(cp)[0] != cp:
        continue
    probe = (chr(cp) + "\u0334") if c > 1 else ("\u0301" + chr(cp))
    swapped = nfd.normalize_str(probe) != probe
    if not swapped:
        ccc_unknown.add(cp)
# the clean_text map: removed chars vanish, whitespace becomes ' ', everything else stays
for cp in cps:
    exp = "" if cp in remove else (" " if cp in space else chr(cp))
    assert clean.normalize_str(chr(cp)) == exp, hex(cp)

# Classes of the other normalizers / pre-tokenizers:
#  - regex \w of the Rust regex crate (Whitespace pre-tokenizer, single_word added tokens):
#    "a" c "b" stays one piece when c is a word character, gives 2 pieces when c is \s;
#  - char::is_numeric (Digits): isolated as its own piece;
#  - unicode-normalization's is_combining_mark (StripAccents): removed.
ws_pt = pre_tokenizers.Whitespace()
dig_pt = pre_tokenizers.Digits(individual_digits=True)
strip_acc = normalizers.StripAccents()
word, numeric, combining = set(), set(), set()
for cp in cps:
    c = chr(cp)
    p = ws_pt.pre_tokenize_str("a" + c + "b")
    if len(p) == 1:
        word.add(cp)
    elif len(p) == 2:
        assert cp in space, hex(cp)
    if len(dig_pt.pre_tokenize_str("a" + c + "b")) == 3:
        numeric.add(cp)
    if strip_acc.normalize_str(c) == "":
        combining.add(cp)
for cp in space:
    assert len(ws_pt.pre_tokenize_str("a" + chr(cp) + "b")) == 2, hex(cp)

# NFD / NFKD of one character as src/tokenizer/nfx.c computes it (utf8proc decomposition,
# bc_tok_nfd_keep, canonical order by the Rust combining classes), against the Rust crate
# (unicode-normalization-alignments, Unicode 9): the differences become exception tables.
lib.utf8proc_get_property.restype = ctypes.POINTER(ctypes.c_int16 * 2)
lib.utf8proc_get_property.argtypes = [ctypes.c_int32]
UTF8PROC_COMPAT = 1 << 2


def rust_ccc(cp):
    if cp in ccc_unknown:
        return 0
    return lib.utf8proc_get_property(cp).contents[1]


def c_decompose(cp, compat):
    if cp in nfd_keep:
        d = [cp]
    else:
        n = lib.utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE | (UTF8PROC_COMPAT if compat else 0),
                                        ctypes.byref(last))
        d = [buf[i] for i in range(n)] if n > 0 else [cp]
    out, run = [], []
    for x in d:
        if rust_ccc(x) == 0:
            out += sorted(run, key=rust_ccc)
            run = []
            out.append(x)
        else:
            run.append(x)
    return out + sorted(run, key=rust_ccc)


nfd_n, nfkd_n = normalizers.NFD(), normalizers.NFKD()
dec_exc = []  # (cp, compat, sequence)
for cp in cps:
    c = chr(cp)
    for compat, nz in ((0, nfd_n), (1, nfkd_n)):
        r = [ord(x) for x in nz.normalize_str(c)]
        if r != c_decompose(cp, compat):
            dec_exc.append((cp, compat, r))

# Canonical compositions of the Rust crate: pairs (a, b) -> c from the canonical
# decompositions Python knows (unicodedata), kept where the Rust NFC composes them.
import unicodedata
nfc_n = normalizers.NFC()
compose = []
for cp in cps:
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        continue
    parts = [int(x, 16) for x in d.split()]
    if len(parts) != 2:
        continue
    if nfc_n.normalize_str(chr(parts[0]) + chr(parts[1])) == chr(cp):
        compose.append((parts[0], parts[1], cp))
compose.sort()


def ranges(s):
    out, prev, start = [], None, None
    for cp in sorted(s):
        if prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            out.append((start, prev))
        start = prev = cp
    if start is not None:
        out.append((start, prev))
    return out


def emit(name, s):
    rs = ranges(s)
    print(f"static const uint32_t {name}[][2] = {{  /* {len(rs)} ranges, {len(s)} code points */")
    line = " "
    for a, b in rs:
        item = f" {{0x{a:X}, 0x{b:X}}},"
        if len(line) + len(item) > 98:
            print(line)
            line = " "
        line += item
    print(line)
    print("};")


print("/* Generated by src/tokenizer/gen_unicode_tables.py from tokenizers "
      f"{tokenizers.__version__} and utf8proc {lib.utf8proc_unicode_version().decode()} "
      "(Unicode version of utf8proc). Do not edit. */")
print("#ifndef BC_TOK_UNICODE_TABLES_H\n#define BC_TOK_UNICODE_TABLES_H\n#include <stdint.h>\n")
print(f'#define BC_TOK_TABLES_UTF8PROC_UNICODE "{lib.utf8proc_unicode_version().decode()}"\n')
print("/* clean_text removes these (NUL, U+FFFD, control/format/private-use except \\t\\n\\r). */")
emit("bc_tok_remove", remove)
print("/* Rust char::is_whitespace: split by the pre-tokenizer, mapped to ' ' by clean_text. */")
emit("bc_tok_space", space)
print("/* BertPreTokenizer punctuation: ASCII punctuation + the crate's P* categories. */")
emit("bc_tok_punct", punct)
print("/* Nonspacing marks (Mn) as the unicode_categories crate knows them: strip_accents drops them. */")
emit("bc_tok_mn", mn)
print("/* Code points that utf8proc decomposes but the Rust NFD leaves whole. */")
emit("bc_tok_nfd_keep", set(nfd_keep))
print("/* Marks with a combining class in utf8proc that the Rust NFD treats as class 0. */")
emit("bc_tok_ccc_zero", ccc_unknown)
print("/* Rust lowercase where it differs from utf8proc_tolower (besides U+0130 -> i U+0307). */")
print(f"static const uint32_t bc_tok_lower_exc[][2] = {{  /* {len(lower_exc)} pairs */")
for i in range(0, len(lower_exc), 5):
    print("  " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in lower_exc[i:i + 5]))
print("};")
print("/* Rust regex \\w (Unicode word characters): Whitespace pre-tokenizer, single_word. */")
emit("bc_tok_word", word)
print("/* Rust char::is_numeric: Digits pre-tokenizer. */")
emit("bc_tok_numeric", numeric)
print("/* unicode-normalization's is_combining_mark: the StripAccents normalizer drops them. */")
emit("bc_tok_combining", combining)
print("/* NFD (compat 0) / NFKD (compat 1) of one character where the Rust crate differs from")
print(" * utf8proc + canonical ordering: {code point, compat, length, offset into bc_tok_dec_seq}. */")
seq = []
print(f"static const uint32_t bc_tok_dec_exc[][4] = {{  /* {len(dec_exc)} entries */")
for i in range(0, len(dec_exc), 4):
    items = []
    for cp, compat, r in dec_exc[i:i + 4]:
        items.append(f"{{0x{cp:X}, {compat}, {len(r)}, {len(seq)}}},")
        seq += r
    print("  " + " ".join(items))
print("};")
print(f"static const uint32_t bc_tok_dec_seq[] = {{  /* {len(seq)} code points */")
for i in range(0, len(seq), 10):
    print("  " + " ".join(f"0x{x:X}," for x in seq[i:i + 10]))
if not seq:
    print("  0")
print("};")
print("/* Canonical compositions {first, second, composite}, sorted (Hangul is algorithmic). */")
print(f"static const uint32_t bc_tok_compose[][3] = {{  /* {len(compose)} pairs */")
for i in range(0, len(compose), 4):
    print("  " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in compose[i:i + 4]))
print("};")
print("\n#endif")

