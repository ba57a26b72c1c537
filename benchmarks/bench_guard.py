"""Load test of the faultlens guard on localhost: 200 sequential and 20 concurrent requests
against the guard (risk scoring on) and against the same server with risk scoring off (plain
generation), reporting errors, latency percentiles and the overhead of the risk score.

    python benchmarks/bench_guard.py [--predictor FILE] [--sequential 200] [--concurrent 20] [--max-tokens 16]

Without --predictor it fits one on the real per-case features of every registered extractor
(the `serve` set) for a few dozen prompts with a stand-in label (long prompt = "fails"): the
numbers here are about latency, not accuracy. Bounded: at most --sequential + --concurrent
requests per server, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import time

import httpx
import numpy as np
import pandas as pd
import torch

from faultlens.models.hf import HFAdapter
from faultlens.predict import persist
from faultlens.predict.feature_sets import select
from faultlens.predict.guard import GuardConfig, build_app
from faultlens.predict.predictor import FailurePredictor
from faultlens.predict.risk import RiskScorer, _cases
from faultlens.predict.serve import serve_in_thread
from faultlens.probes.features import case_features, load_providers

SENTENCES = ["Tom had a red ball.", "Sue ran to the park.", "The cat sat on the mat.", "Ben saw a big dog.",
             "Mia was happy to see her mom.", "It was a sunny day.", "Lily found a shiny stone.", "The bird sang a song."]


def prompts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return ["Once upon a time, " + " ".join(rng.choice(SENTENCES, size=int(rng.integers(1, 8)))) for _ in range(n)]


def standin_predictor(adapter) -> FailurePredictor:
    load_providers()
    ps = prompts(48)
    cases = _cases(ps)
    rows = [dict() for _ in ps]
    for name in case_features:
        for r, got in zip(rows, case_features.get(name)(adapter, cases)):
            r.update(got)
    X = pd.DataFrame(rows)
    X = X[select("serve", X.columns)]
    y = np.array([len(p) for p in ps]) > np.median([len(p) for p in ps])
    return FailurePredictor().fit(X, y)


def run_load(url: str, ps: list[str], n_seq: int, n_conc: int, max_tokens: int) -> dict:
    lat, server_risk, server_gen, errors = [], [], [], 0

    def call(client, i):
        t0 = time.perf_counter()
        r = client.post("/v1/completions", json={"prompt": ps[i % len(ps)], "max_tokens": max_tokens})
        return r, time.perf_counter() - t0

    with httpx.Client(base_url=url, timeout=300) as c:
        for i in range(n_seq):
            r, dt = call(c, i)
            if r.status_code != 200:
                errors += 1
                continue
            lat.append(dt)
            tm = r.json()["faultlens"]["timing_ms"]
            server_risk.append(tm.get("risk", 0.0))
            server_gen.append(tm["generate"])
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(n_conc) as ex:
            res = list(ex.map(lambda i: call(c, i), range(n_conc)))
        wall = time.perf_counter() - t0
    errors += sum(r.status_code != 200 for r, _ in res)
    q = lambda xs, p: float(np.quantile(xs, p)) * 1000 if xs else float("nan")  # noqa: E731
    return {"errors": errors, "p50_ms": q(lat, 0.5), "p95_ms": q(lat, 0.95), "mean_ms": statistics.fmean(lat) * 1000,
            "server_risk_ms": statistics.fmean(server_risk), "server_generate_ms": statistics.fmean(server_gen),
            "concurrent_wall_s": wall, "concurrent_max_ms": max(dt for _, dt in res) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictor", default=None)
    ap.add_argument("--sequential", type=int, default=200)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    adapter = HFAdapter.load("stories260k")
    est = persist.load(args.predictor) if args.predictor else standin_predictor(adapter)
    scorer = RiskScorer(adapter, est)
    print(f"predictor: {len(scorer.names)} features from extractors {scorer.extractors}")
    ps = prompts(50)
    out = {}
    for name, sc in (("plain", None), ("guard", scorer)):
        with serve_in_thread(build_app(adapter, sc, GuardConfig(max_tokens_cap=64))) as url:
            out[name] = run_load(url, ps, args.sequential, args.concurrent, args.max_tokens)
    for name, r in out.items():
        print(f"{name:6s} errors {r['errors']}  sequential p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  mean {r['mean_ms']:.1f} ms  "
              f"(server: risk {r['server_risk_ms']:.1f} ms, generate {r['server_generate_ms']:.1f} ms)  "
              f"{args.concurrent} concurrent: wall {r['concurrent_wall_s']:.2f} s, slowest {r['concurrent_max_ms']:.0f} ms")
    g, p = out["guard"], out["plain"]
    print(f"guard/plain mean latency ratio {g['mean_ms'] / p['mean_ms']:.2f}  "
          f"(risk score adds {g['mean_ms'] - p['mean_ms']:+.1f} ms per request; {g['server_risk_ms']:.1f} ms inside the server)")


if __name__ == "__main__":
    main()
