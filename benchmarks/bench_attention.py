"""Benchmark (not a test): all attention metrics for all layers vs TransformerLens `run_with_cache`.

Model: GPT-2-small shape (12 layers, 12 heads, d 768, vocab 50257, n_positions 2048), random
weights (seed 0), built from a config in both libraries: TransformerLens 4.x cannot load a
model offline from the hub and no longer has HookedTransformer, so its row is
`TransformerBridge.boot_native` on the same shape (see ../shared/notes/peers.md, Job 2).

Rows (each a fresh subprocess, batch 1, fp32, inference mode):
    hf_sdpa       plain HF forward, sdpa attention, full logits (the time reference)
    hf_body       the same without the LM head (`model.transformer`): a stricter reference, since
                  faultlens asks the model for the last position's logits only
    faultlens     one streamed forward with every per-layer statistic (entropy, max logit, sink
                  mass + uniform baseline, distance profile, head redundancy, token uniformity,
                  effective rank, lazy cosine), no pattern materialised (one pass over query
                  blocks of 64, `diagnostics.stream`)
    faultlens_nomass  the same without the mass statistics (entropy, max logit, residual stats only)
    tl_cache      TransformerLens native `run_with_cache` (every hook cached)
Not included in the time target: the lazy-layer skip-loss test, which is L extra forwards by
definition (reported separately as `skip_loss` if --skip-loss is given).

Memory: peak extra = VmHWM after the first call − RSS just before it (after gc, malloc_trim and
resetting the high-water mark), outputs kept alive. Time: median of --repeats further calls.

    python benchmarks/bench_attention.py [--seqs 512,2048] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import subprocess
import sys
import time

ROWS = ("hf_sdpa", "hf_body", "faultlens", "faultlens_nomass", "tl_cache")


def _rss_kb(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _rss_kb("VmRSS")


def _hf_model(attn: str):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=2048)
    return GPT2LMHeadModel(cfg).eval().to(torch.float32), cfg


def _call_for(row: str, n: int):
    """Build the model for `row` and return a zero-argument call that does the measured work."""
    import torch

    ids = torch.randint(0, 50257, (1, n), generator=torch.Generator().manual_seed(0))
    if row in ("hf_sdpa", "hf_body", "faultlens", "faultlens_nomass", "skip_loss"):
        model, _ = _hf_model("sdpa")
        model.config._attn_implementation = "sdpa"
        if row == "hf_sdpa":
            return lambda: model(input_ids=ids, use_cache=False).logits
        if row == "hf_body":
            return lambda: model.transformer(input_ids=ids, use_cache=False).last_hidden_state
        from transformers import AutoTokenizer

        from faultlens.diagnostics.collect import CollectConfig, collect
        from faultlens.models.hf import HFAdapter
        from faultlens.models.tiny import TOKENIZER_DIR

        ad = HFAdapter(model, AutoTokenizer.from_pretrained(TOKENIZER_DIR), name="gpt2-small-shape")
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if row == "skip_loss":
            from faultlens.diagnostics.analyze import skip_loss_increase

            ad.tokenize_batch = lambda texts: {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            ad.encode = lambda t: ids[0].tolist()
            return lambda: skip_loss_increase(ad, ["x"])
        cfg = CollectConfig(mode="stream", mass=row == "faultlens", residual=True)
        return lambda: collect(ad, batch, cfg)
    if row == "tl_cache":
        from transformer_lens.model_bridge import TransformerBridge
        from transformer_lens.config import TransformerBridgeConfig

        torch.manual_seed(0)
        tl = TransformerBridge.boot_native(TransformerBridgeConfig(
            d_model=768, d_head=64, n_layers=12, n_heads=12, d_mlp=3072, d_vocab=50257, n_ctx=2048,
            act_fn="gelu_new", normalization_type="LN"))
        return lambda: tl.run_with_cache(ids)
    raise SystemExit(f"unknown row {row}")


def measure(row: str, n: int, repeats: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    call = _call_for(row, n)
    with torch.inference_mode():
        rss0 = _reset_peak()
        t0 = time.perf_counter()
        out = call()
        first = time.perf_counter() - t0
        peak_mb = (_rss_kb("VmHWM") - rss0) / 1024
        del out
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            o = call()
            times.append(time.perf_counter() - t0)
            del o
    return {"row": row, "n": n, "peak_extra_mb": peak_mb, "first_s": first, "median_s": statistics.median(times),
            "times": times}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqs", default="512,2048")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--skip-loss", action="store_true")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.row:  # child process: one measurement, one JSON line
        print(json.dumps(measure(a.row, a.n, a.repeats, a.threads)), flush=True)
        return
    rows = a.rows.split(",") + (["skip_loss"] if a.skip_loss else [])
    res: dict[tuple[str, int], dict] = {}
    for n in (int(x) for x in a.seqs.split(",")):
        for row in rows:
            p = subprocess.run([sys.executable, __file__, "--row", row, "--n", str(n), "--repeats", str(a.repeats),
                                "--threads", str(a.threads)], capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{row} n={n} failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            res[(row, n)] = r
            print(f"{row:17s} n={n:5d}  median {r['median_s']:7.3f} s (first {r['first_s']:.3f}, all "
                  f"{', '.join(f'{t:.3f}' for t in r['times'])})  peak extra {r['peak_extra_mb']:8.1f} MB", flush=True)
        ours, fwd, tl = res.get(("faultlens", n)), res.get(("hf_sdpa", n)), res.get(("tl_cache", n))
        body = res.get(("hf_body", n))
        if ours and fwd:
            print(f"  n={n}: faultlens time / plain sdpa forward = {ours['median_s'] / fwd['median_s']:.2f}x (target <= 1.3)")
        if ours and body:
            print(f"  n={n}: faultlens time / sdpa forward without LM head = {ours['median_s'] / body['median_s']:.2f}x")
        if ours and tl:
            print(f"  n={n}: faultlens peak extra memory / TL run_with_cache = {ours['peak_extra_mb'] / tl['peak_extra_mb']:.3f}x"
                  f" (target <= 0.2 at 2048); time / TL = {ours['median_s'] / tl['median_s']:.2f}x")


if __name__ == "__main__":
    main()
