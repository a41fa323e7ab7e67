"""The ctypes structs and constants of bertcl/_lib.py against include/bertcl.h: a C program
compiled against the header prints every struct's size and every field's offset and size, and
the constants; a field added, removed, reordered or resized in the header and not here fails."""
import ctypes
import os
import shutil
import subprocess

import pytest

from bertcl import _lib
from conftest import REPO


def test_structs_match_header(tmp_path):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler to read include/bertcl.h with")
    lines, want = [], []
    for cls, cname in _lib.STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof({cname}));')
        want.append(f"{cname} {ctypes.sizeof(cls)}")
        for f in cls._fields_:
            name = f[0]
            fld = getattr(cls, name)
            lines.append(f'printf("{cname}.{name} %zu %zu\\n", offsetof({cname}, {name}), '
                         f"sizeof((({cname} *)0)->{name}));")
            want.append(f"{cname}.{name} {fld.offset} {fld.size}")
    for name, value in _lib.CONSTANTS.items():
        lines.append(f'printf("{name} %lld\\n", (long long)({name}));')
        want.append(f"{name} {value}")
    src = tmp_path / "layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include <bertcl.h>\n"
                   "int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", os.path.join(REPO, "include"), "-o", str(exe), str(src)],
                   check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    diff = [f"header: {g!r}  python: {w!r}" for g, w in zip(got, want) if g != w]
    assert not diff, "bertcl/_lib.py differs from include/bertcl.h:\n" + "\n".join(diff)

