"""Benchmark (not a test): the whole probe battery on the shipped model, ours vs lm-eval-harness.

1. Collect every (prompt, continuation) request of every registered probe's tiny set.
2. Time `HFAdapter.score` and lm-eval's `HFLM.loglikelihood` on exactly those requests (same
   token setup: our adapter prepends BOS as the tokenizer does; HFLM gets add_bos_token=True,
   otherwise it would score without BOS), print requests/s, the ratio and max |Δ score|.
3. Time the full `run_scan` (scoring + judging + per-case feature capture + store writes +
   statistics) in cases/s, and print the battery's findings with effect sizes.

Usage: python benchmarks/bench_battery.py [--repeats 3] [--threads 2]
Run alone: on 2 shared cores any concurrent work shows up directly in the timings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-lmeval", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from faultlens.models.hf import HFAdapter
    from faultlens.models.zoo import resolve_model_path
    from faultlens.probes import load_all, probes
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig, run_scan
    from faultlens.store import Store

    load_all()
    names = probes.names()
    ad = HFAdapter.load("stories260k")
    cfg = ProbeConfig(case_set="tiny")
    reqs = [r for n in names for c in probes.get(n)().cases(cfg) for r in probes.get(n)().requests(c)]
    n_cases = sum(len(probes.get(n)().cases(cfg)) for n in names)
    prompts, conts = [p for p, _ in reqs], [c for _, c in reqs]
    print(f"battery: {len(names)} probes, {n_cases} cases, {len(reqs)} scored continuations")

    ad.score(prompts[:64], conts[:64])  # warm-up
    ours_t, ours = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = ad.score(prompts, conts)
        ours_t.append(time.perf_counter() - t0)
    t_ours = statistics.median(ours_t)
    print(f"faultlens HFAdapter.score: median {t_ours:.3f}s {[round(t, 3) for t in ours_t]} -> {len(reqs) / t_ours:,.0f} req/s")

    if not args.skip_lmeval:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=str(resolve_model_path("stories260k")), batch_size=32, device="cpu", add_bos_token=True)
        inst = [Instance(request_type="loglikelihood", doc={}, arguments=(p, c), idx=i) for i, (p, c) in enumerate(reqs)]
        lm.loglikelihood(inst[:8], disable_tqdm=True)  # warm-up
        peer_t, peer = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            peer = [ll for ll, _ in lm.loglikelihood(inst, disable_tqdm=True)]
            peer_t.append(time.perf_counter() - t0)
        t_peer = statistics.median(peer_t)
        diff = max(abs(a - b) for a, b in zip(ours, peer))
        print(f"lm-eval HFLM.loglikelihood (bs 32): median {t_peer:.3f}s {[round(t, 3) for t in peer_t]} -> {len(reqs) / t_peer:,.0f} req/s")
        print(f"ours / peer throughput: {t_peer / t_ours:.2f}x   max |score diff| = {diff:.2e}")
        # the same token ids? (BOS + lm-eval's split of context/continuation)
        p0, c0 = reqs[0]
        ctx_ids, cont_ids = lm._encode_pair(p0, c0)
        print(f"token check on request 0: ours {ad.encode_pair(p0, c0)} vs lm-eval {(ctx_ids, cont_ids)}")

    with tempfile.TemporaryDirectory() as d:
        for features in (False, True):
            store = Store(f"{d}/bench-{features}.sqlite")
            t0 = time.perf_counter()
            rep = run_scan(ad, store, ScanConfig(model="stories260k", probes=tuple(names), probe=cfg, features=features))
            dt = time.perf_counter() - t0
            print(f"run_scan (features={features}): {dt:.2f}s -> {n_cases / dt:,.0f} cases/s incl. judging, store, statistics")
    print("\nfindings on stories260k (tiny sets, Holm-corrected alpha 0.05):")
    for name, a in rep.analyses.items():
        s = a.summary
        accs = ", ".join(f"{v}:{x:.0%}" for v, x in zip(s.get("values", []), s.get("accuracy", [])))
        extra = {k: s[k] for k in ("shape", "spread", "chain", "paraphrase_agreement") if s.get(k)}
        print(f"  {name:22s} {accs}  omnibus p={s['test']['p']:.2g} {extra if extra else ''}")
        for f in a.findings:
            print(f"      FINDING [{f.category}] {f.message}")


if __name__ == "__main__":
    main()
