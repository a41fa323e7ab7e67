#!/usr/bin/env python3
"""Rows/s of the Python module's Encoder.encode next to `bertcl extract` on the same texts and
options, in one script, rounds interleaved (CLI, Python, CLI, Python, ...):

  cli      the rows/s of `bertcl extract`'s summary line (the job: reading, tokenising, every
           batch, the shard written; model load and context creation excluded), run as a process;
  python   encode(texts, batch_size=B) in a fresh Python process after Encoder() (model load and
           context creation excluded, as for the CLI): the wall clock of the call, which adds the
           ctypes call, the UTF-8 encoding of the texts and the copy into a numpy array; `first`
           is the process's first call (as the CLI's job is), `warm` a second call.

It checks that both give the same bits, then prints the medians and python/cli ratios, and one
JSON line. The acceptance line of issue 20: the Python call adds no more than 5% over the CLI.

  python3 bench/python_vs_cli.py [--bin build/bertcl] [--lib build/libbertcl.so]
      [--model models/all-MiniLM-L6-v2] [--corpus FILE [--column NAME]] [--rows 1000]
      [--batch-size 32] [--rounds 3] [--device D]

--corpus: plain text (one text a line) or TSV with --column; default: 1000 deterministic
sentences made from a word list. --lib/PYTHONPATH: the module under python/ over that library
(default: the library beside --bin); set --lib "" to use an installed `bertcl` package instead.
"""
import argparse
import csv
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CHILD = r"""
import json, sys, time
import numpy as np
import bertcl
model, inp, out, bs, dev = sys.argv[1:6]
texts = open(inp, encoding="utf-8").read().split("\n")[:-1]
t0 = time.perf_counter()
enc = bertcl.Encoder(model, device=dev or None)
t1 = time.perf_counter()
x = enc.encode(texts, batch_size=int(bs))
t2 = time.perf_counter()
y = enc.encode(texts, batch_size=int(bs))
t3 = time.perf_counter()
np.save(out, x)
print(json.dumps({"load_s": t1 - t0, "first_s": t2 - t1, "warm_s": t3 - t2, "rows": len(texts),
                  "same": bool(np.array_equal(x, y)), "device": enc.device.name,
                  "lib": bertcl._lib.library_path(), "version": bertcl.version()}))
"""

WORDS = ("the a cat dog man woman child city river film story music team game plan idea "
         "house car road market school world year day night quick slow bright dark happy sad "
         "old new big small runs walks sees finds makes takes gives plays eats reads writes "
         "and but or because while after before with without over under near far very "
         "unbelievable tokenization international , . ! ?").split()


def corpus(args):
    if not args.corpus:
        r = random.Random(0)
        return [" ".join(r.choice(WORDS) for _ in range(r.randint(4, 40)))
                for _ in range(args.rows)]
    with open(args.corpus, encoding="utf-8", newline="") as f:
        if args.column:
            rows = (x[args.column] for x in csv.DictReader(f, delimiter="\t",
                                                            quoting=csv.QUOTE_NONE))
        else:
            rows = (line.rstrip("\n") for line in f)
        out = []
        for t in rows:
            if len(out) == args.rows:
                break
            out.append(t.replace("\n", " ").replace("\r", " "))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bertcl"))
    ap.add_argument("--lib", default=None)
    ap.add_argument("--model", default=os.path.join(REPO, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--corpus")
    ap.add_argument("--column")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default=os.environ.get("BERTCL_DEVICE", ""))
    args = ap.parse_args()
    lib = args.lib if args.lib is not None else os.path.join(os.path.dirname(args.bin),
                                                             "libbertcl.so")
    env = dict(os.environ)
    if lib:
        env["BERTCL_LIBRARY"] = os.path.abspath(lib)
        env["PYTHONPATH"] = os.path.join(REPO, "python") + os.pathsep + env.get("PYTHONPATH", "")
    texts = corpus(args)
    tmp = tempfile.mkdtemp(prefix="bertcl-pyvcli-")
    try:
        run(args, env, texts, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, env, texts, tmp):
    inp = os.path.join(tmp, "in.txt")
    with open(inp, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in texts))
    dev = ["--device", args.device] if args.device else []
    # warm-up: the OpenCL driver's own kernel caches
    with open(os.path.join(tmp, "warm.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in texts[:64]))
    subprocess.run([args.bin, "extract", "-m", args.model, "-i", os.path.join(tmp, "warm.txt"),
                    "-o", os.path.join(tmp, "warm.npy"), "--quiet", *dev], check=True)
    cli, first, warm = [], [], []
    info = {}
    for r in range(args.rounds):
        out_c = os.path.join(tmp, f"cli{r}.npy")
        p = subprocess.run([args.bin, "extract", "-m", args.model, "-i", inp, "-o", out_c,
                            "--batch-size", str(args.batch_size), *dev],
                           capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stderr)
        m = re.search(r"([0-9.]+) rows/s", p.stderr)
        cli.append(float(m.group(1)))
        out_p = os.path.join(tmp, f"py{r}.npy")
        p = subprocess.run([sys.executable, "-c", CHILD, args.model, inp, out_p,
                            str(args.batch_size), args.device], capture_output=True, text=True,
                           env=env)
        if p.returncode:
            sys.exit(p.stderr)
        info = json.loads(p.stdout.strip().split("\n")[-1])
        first.append(info["rows"] / info["first_s"])
        warm.append(info["rows"] / info["warm_s"])
        a, b = np.load(out_c), np.load(out_p)
        same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        print(f"round {r + 1}: cli {cli[-1]:.1f} rows/s, python first call "
              f"{first[-1]:.1f}, warm {warm[-1]:.1f} rows/s; same bits: {same and info['same']}",
              file=sys.stderr)
        if not (same and info["same"]):
            sys.exit("bench/python_vs_cli.py: the Python output differs from the CLI's")
    mc, mf, mw = statistics.median(cli), statistics.median(first), statistics.median(warm)
    print(f"{len(texts)} texts, batch size {args.batch_size}, {info['device']}, bertcl "
          f"{info['version']} ({info['lib']})")
    print(f"median rows/s: cli {mc:.1f}, python first call {mf:.1f} ({mf / mc:.3f} x cli), "
          f"python warm {mw:.1f} ({mw / mc:.3f} x cli)")
    print(json.dumps({"rows": len(texts), "batch_size": args.batch_size, "device": info["device"],
                      "cli_rows_s": cli, "python_first_rows_s": first, "python_warm_rows_s": warm,
                      "ratio_first": mf / mc, "ratio_warm": mw / mc,
                      "load_load1": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
