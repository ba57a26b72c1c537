"""Scoring throughput: faultlens `HFAdapter.score` vs lm-eval-harness `HFLM.loglikelihood`.

Same local model, same ≥2,000 multiple-choice shaped requests, same tokens, one process.
Prints both throughputs, the ratio and the max |score difference|. Target: ≥ 3× at max |Δ| ≤ 1e-4.

    python benchmarks/bench_score.py [--model llama-tiny-shape|stories260k|PATH] [--prompts 500] [--repeats 3]

Needs the bench extra (lm-eval). Run it alone: on 2 cores any concurrent work shows in the timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import llama_tiny_shape_dir, mc_requests, stdlib_texts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-tiny-shape")
    ap.add_argument("--prompts", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from faultlens.models.hf import HFAdapter
    from faultlens.models.zoo import resolve_model_path

    path = llama_tiny_shape_dir() if args.model == "llama-tiny-shape" else resolve_model_path(args.model)
    ours = HFAdapter.load(str(path), attn_implementation="sdpa")
    bos = ours.tokenizer.bos_token_id is not None and ours.encode("a")[0] == ours.tokenizer.bos_token_id
    peer = HFLM(pretrained=str(path), batch_size=32, device="cpu", add_bos_token=bos)
    reqs = mc_requests(stdlib_texts(), args.prompts)
    # Same token ids for both: lm-eval's own pair encoding, fed to our scorer's token path too.
    pairs = [peer._encode_pair(c, x) for c, x in reqs]
    ours_pairs = [ours.encode_pair(c, x) for c, x in reqs]
    n_same = sum(a == (list(b[0]), list(b[1])) for a, b in zip(pairs, ours_pairs))
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i) for i, r in enumerate(reqs)]

    peer.loglikelihood(instances[:8], disable_tqdm=True)  # warm-up, as in peers.md
    ours.score([c for c, _ in reqs[:8]], [x for _, x in reqs[:8]])
    t_peer, t_ours = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        peer_scores = [ll for ll, _ in peer.loglikelihood(instances, disable_tqdm=True)]
        t_peer.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        our_scores = ours.score([c for c, _ in reqs], [x for _, x in reqs])  # text in, tokenisation timed
        t_ours.append(time.perf_counter() - t0)
    diff = max(abs(a - b) for a, b in zip(our_scores, peer_scores))
    tp, to = statistics.median(t_peer), statistics.median(t_ours)
    n = len(reqs)
    print(f"model {args.model} ({ours.n_params / 1e6:.2f} M params), {n} requests ({args.prompts} prompts x 4), "
          f"threads {args.threads}, {args.repeats} repeats")
    print(f"identical token ids for {n_same}/{n} requests")
    print(f"lm-eval HFLM.loglikelihood bs=32 : {tp:7.2f} s  {n / tp:8.1f} req/s   repeats {[round(t, 2) for t in t_peer]}")
    print(f"faultlens HFAdapter.score       : {to:7.2f} s  {n / to:8.1f} req/s   repeats {[round(t, 2) for t in t_ours]}")
    print(f"ratio ours/peer throughput: {tp / to:.2f}x (target >= 3x); max |score diff| = {diff:.2e} (target <= 1e-4)")


if __name__ == "__main__":
    main()
