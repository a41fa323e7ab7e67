#!/usr/bin/env python3
"""One markdown table from `bertcl bench --json` reports and `bench/torch_bert.py --json`
reports: encoder forward ms and sequences/s (bertcl with CLBlast's defaults, bertcl tuned,
PyTorch) and GEMM time per layer, per batch x sequence length. Missing files are skipped.

    python3 bench/summarize.py [--out summary.md] base.json minilm.json torch-base.json ...
"""
import argparse
import json
import os
import sys


def load(paths):
    bert, torch = [], []
    for p in paths:
        if not os.path.exists(p):
            print(f"summarize.py: {p} missing, skipped", file=sys.stderr)
            continue
        with open(p) as f:
            d = json.load(f)
        (bert if d.get("schema") == "bertcl-bench/1" else torch).append(d)
    return bert, torch


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    bert, torch = load(a.files)
    lines = []
    for rep in bert:
        cfg = rep["model"]["name"]
        tref = next((t for t in torch if t.get("config") == cfg), None)
        for dev in rep["devices"]:
            if "facts" not in dev or "runs" not in dev:
                lines.append(f"device failed: {dev.get('error')}")
                continue
            f = dev["facts"]
            lines.append(f"### {cfg}: {f['name']} ({f['platform']}, {f['opencl_version']}, driver "
                         f"{f['driver']}, CLBlast {f['clblast']}), {rep['date']}")
            peak = dev["peak"]["fp32_tflops"]
            lines.append(f"fp32 peak: {fmt(peak)} TFLOP/s ({dev['peak']['basis']}); tuning: "
                         f"{dev['tuning']['state']} {dev['tuning']['parameters']}")
            if tref:
                lines.append(f"PyTorch {tref['torch']} fp32 TF32 off, attention "
                             f"{tref['attn_implementation']}, {tref['device_name']}, {tref['date']}")
            lines.append("")
            runs = {r["variant"]: r for r in dev["runs"]}
            lines.append("| B | T | bertcl ms | seqs/s | tuned ms | seqs/s | PyTorch ms | seqs/s | "
                         "PyTorch ms / bertcl best ms | GEMM/layer ms | tuned | torch.matmul |")
            lines.append("|---" * 12 + "|")
            for e in runs["untuned"]["encoder"]:
                B, T = e["batch"], e["seq"]
                u = e.get("wall_ms", {}).get("median")
                t = next((x for x in runs.get("tuned", {}).get("encoder", [])
                          if x["batch"] == B and x["seq"] == T), {})
                tm = t.get("wall_ms", {}).get("median")
                p = next((x for x in (tref or {}).get("encoder", [])
                          if x["batch"] == B and x["seq"] == T), {})
                pm = p.get("ms", {}).get("median")
                best = min(x for x in (u, tm) if x is not None) if u is not None else None

                def layer(run):
                    s = [g["device_ms"]["median"] for g in run.get("gemm", [])
                         if g.get("batch") == B and g.get("seq") == T and "device_ms" in g]
                    return sum(s) if len(s) == 6 else None

                tg = [g["ms"]["median"] for g in (tref or {}).get("gemm", [])
                      if g["batch"] == B and g["seq"] == T and "ms" in g]
                lines.append(
                    f"| {B} | {T} | {fmt(u)} | {fmt(u and B / u * 1e3, '.1f')} | {fmt(tm)} | "
                    f"{fmt(tm and B / tm * 1e3, '.1f')} | {fmt(pm)} | "
                    f"{fmt(pm and B / pm * 1e3, '.1f')} | {fmt(pm and best and pm / best, '.2f')} | "
                    f"{fmt(layer(runs['untuned']), '.3f')} | "
                    f"{fmt(layer(runs['tuned']) if 'tuned' in runs else None, '.3f')} | "
                    f"{fmt(sum(tg) if len(tg) == 6 else None, '.3f')} |")
            ft, pft = dev.get("finetune") or {}, (tref or {}).get("finetune") or {}
            if "step_ms" in ft:
                bm, pm = ft["step_ms"]["median"], pft.get("step_ms", {}).get("median")
                lines.append(
                    f"\nFine-tuning step (BertForSequenceClassification, B={ft['batch']} "
                    f"T={ft['seq']}, dropout 0.1, AdamW): bertcl {bm:.2f} ms "
                    f"(forward+backward {ft['fwd_bwd_ms']['median']:.2f}), PyTorch "
                    f"{fmt(pm)} ms; PyTorch ms / bertcl ms {fmt(pm and pm / bm)}")
            elif "error" in ft:
                lines.append(f"\nFine-tuning step: failed: {ft['error']}")
            lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
