#!/usr/bin/env python3
"""PyTorch baseline for `bertcl bench`: BertModel forward and the encoder's six GEMM shapes,
fp32 with TF32 off, random weights of the same named configurations, same batch x seq grid;
and one fine-tuning step of BertForSequenceClassification as `bertcl bench --finetune BxT` times
it (2 labels, train mode: dropout 0.1, cross-entropy, backward, clip_grad_norm_ 1.0, AdamW with
weight decay 0.01 on all but biases and LayerNorm weights, zero_grad).

    python3 bench/torch_bert.py --config base --batch 1,8,32,128 --seq 128,512 --json out.json

Times are CUDA-event times (torch.cuda.Event) on a GPU, wall clock on the CPU, after warm-up;
median and min/max of the repeats, as bertcl bench reports them. Exits 3 when torch or
transformers is missing (run_gpu.sh then notes the absence instead of a figure).
"""
import argparse
import json
import platform
import statistics
import sys
import time

CONFIGS = {  # layers, hidden, heads, intermediate, vocab, positions (as src/model/random.c)
    "base": (12, 768, 12, 3072, 30522, 512),
    "large": (24, 1024, 16, 4096, 30522, 512),
    "minilm": (6, 384, 12, 1536, 30522, 512),
    "tiny": (2, 32, 4, 64, 1000, 64),
}


def ints(s):
    return [int(x) for x in s.split(",") if x]


def stats(v):
    v = sorted(v)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="base", choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=ints, default=[1, 8, 32, 128])
    ap.add_argument("--seq", type=ints, default=[128, 512])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"],
                    help="transformers attention implementation (eager: unfused, as bertcl)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--finetune", default="32x128",
                    help="fine-tuning step shape BxT, or none (default 32x128)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    try:
        import torch
        import transformers
        from transformers import BertConfig, BertForSequenceClassification, BertModel
    except ImportError as e:
        print(f"torch_bert.py: {e}; no PyTorch figures", file=sys.stderr)
        return 3

    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    L, C, NH, I, V, P = CONFIGS[a.config]
    cfg = BertConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=NH,
                     intermediate_size=I, max_position_embeddings=P, hidden_act="gelu",
                     layer_norm_eps=1e-12, attn_implementation=a.attn)
    torch.manual_seed(0)
    model = BertModel(cfg).to(dev).eval()

    def timed(fn):
        for _ in range(a.warmup):
            fn()
        out = []
        for _ in range(a.repeat):
            if dev.type == "cuda":
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                fn()
                e.record()
                torch.cuda.synchronize()
                out.append(s.elapsed_time(e))
            else:
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1e3)
        return stats(out)

    report = {
        "tool": "bench/torch_bert.py", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv), "config": a.config, "attn_implementation": a.attn,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "device": str(dev),
        "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                        else platform.processor() or platform.machine()),
        "tf32": False, "dtype": "float32", "warmup": a.warmup, "repeat": a.repeat,
        "encoder": [], "gemm": [],
    }
    print(f"PyTorch {torch.__version__} fp32 (TF32 off), transformers {transformers.__version__}, "
          f"{report['device_name']}, BertModel {a.config} attn={a.attn}")
    print("   B    T |       ms     seqs/s    tokens/s | GEMM ms per layer (torch.matmul)")
    for B in a.batch:
        for T in a.seq:
            if T > P:
                continue
            g = torch.Generator(device="cpu").manual_seed(1)
            ids = torch.randint(1, V, (B, T), generator=g).to(dev)
            mask = torch.ones(B, T, dtype=torch.long, device=dev)
            entry = {"batch": B, "seq": T}
            try:
                with torch.inference_mode():
                    st = timed(lambda: model(input_ids=ids, attention_mask=mask))
                entry.update({"ms": st, "seqs_per_s": B / (st["median"] * 1e-3),
                              "tokens_per_s": B * T / (st["median"] * 1e-3)})
            except RuntimeError as e:  # out of memory at the largest shapes
                entry["error"] = str(e).split("\n")[0]
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
            report["encoder"].append(entry)
            # the encoder's six products, as bertcl times them (one layer)
            N, HS = B * T, C // NH
            shapes = [("qkv", N, 3 * C, C, 1), ("attn_out", N, C, C, 1), ("ffn_up", N, I, C, 1),
                      ("ffn_down", N, C, I, 1), ("attn_scores", T, T, HS, B * NH),
                      ("attn_context", T, HS, T, B * NH)]
            layer = 0.0
            for name, m, n, k, bt in shapes:
                x = torch.rand(bt, m, k, device=dev) - 0.5
                w = torch.rand(bt, k, n, device=dev) - 0.5
                try:
                    st = timed(lambda: torch.matmul(x, w))
                except RuntimeError as e:
                    report["gemm"].append({"batch": B, "seq": T, "shape": name, "error": str(e)})
                    continue
                fl = 2.0 * m * n * k * bt
                layer += st["median"]
                report["gemm"].append({"batch": B, "seq": T, "shape": name, "m": m, "n": n, "k": k,
                                       "batch_count": bt, "ms": st,
                                       "tflops": fl / (st["median"] * 1e-3) / 1e12})
                del x, w
            if "error" in entry:
                print(f"{B:4d} {T:4d} | {entry['error']}")
            else:
                print(f"{B:4d} {T:4d} | {entry['ms']['median']:8.2f} {entry['seqs_per_s']:10.1f} "
                      f"{entry['tokens_per_s']:11.0f} | {layer:8.3f}")
    report["finetune"] = None
    if a.finetune != "none":
        B, T = (int(x) for x in a.finetune.split("x"))
        T = min(T, P)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        torch.manual_seed(0)
        clf = BertForSequenceClassification(BertConfig(**{**cfg.to_dict(), "num_labels": 2}))
        clf = clf.to(dev).train()
        nd = ("bias", "LayerNorm.weight")
        groups = [{"params": [p for n, p in clf.named_parameters() if not n.endswith(nd)],
                   "weight_decay": 0.01},
                  {"params": [p for n, p in clf.named_parameters() if n.endswith(nd)],
                   "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=2e-5, foreach=True)
        g = torch.Generator(device="cpu").manual_seed(1)
        ids = torch.randint(1, V, (B, T), generator=g).to(dev)
        labels = torch.randint(0, 2, (B,), generator=g).to(dev)
        mask = torch.ones(B, T, dtype=torch.long, device=dev)
        fb = []

        def step():
            opt.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                s0, s1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s0.record()
            else:
                t0 = time.perf_counter()
            out = clf(input_ids=ids, attention_mask=mask, labels=labels)
            out.loss.backward()
            if dev.type == "cuda":
                s1.record()
            else:
                fb.append((time.perf_counter() - t0) * 1e3)
            torch.nn.utils.clip_grad_norm_(clf.parameters(), 1.0)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
                fb.append(s0.elapsed_time(s1))

        try:
            t0 = time.perf_counter()
            step()
            first = (time.perf_counter() - t0) * 1e3
            fb.clear()
            st = timed(step)
            fbs = stats(fb[a.warmup:])
            report["finetune"] = {"batch": B, "seq": T, "num_labels": 2, "dropout": 0.1,
                                  "optimizer": "adamw (foreach), clip 1.0", "first_ms": first,
                                  "step_ms": st, "fwd_bwd_ms": fbs,
                                  "examples_per_s": B / (st["median"] * 1e-3)}
            print(f"fine-tuning step B={B} T={T}: {st['median']:.2f} ms (forward+backward "
                  f"{fbs['median']:.2f}), {B / (st['median'] * 1e-3):.1f} examples/s")
        except RuntimeError as e:
            report["finetune"] = {"batch": B, "seq": T, "error": str(e).split("\n")[0]}
            print(f"fine-tuning step B={B} T={T}: {report['finetune']['error']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"JSON report: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
