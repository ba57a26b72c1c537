"""Contrastive LRP cost vs a forward pass and vs Captum IntegratedGradients; batched graph cost.

One process, same model and inputs, 1 torch thread (shared CPU). Prints ours / peer ratios:
  * one cp-lrp explanation (forward + one backward) vs one no-grad forward   (target ≤ 3×)
  * Captum IG, 50 steps, vs one cp-lrp explanation                           (target ≥ 15×)
    at equal or better deletion-AOPC (both scored by the same perturbation curves)
  * peak RSS growth of each
  * attribution graph with k = 16 targets per transition: batched vs 16 separate backwards (≥ 4×)

Usage: python benchmarks/bench_attribution.py [MODEL] [--reps 5] [--repeat-prompt N]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch


def _timeit(fn, reps):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="stories260k")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--repeat-prompt", type=int, default=1, help="repeat the story to make the input longer")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from faultlens.attribution.demo import DEMO_CASES
    from faultlens.attribution.explain import resolve_objective
    from faultlens.attribution.faithfulness import curves, mask_token_id
    from faultlens.attribution.graph import GraphConfig, attribution_graph
    from faultlens.attribution.methods import make_ig, methods
    from faultlens.attribution.problem import Problem
    from faultlens.attribution.targets import targets
    from faultlens.models.hf import HFAdapter

    ad = HFAdapter.load(args.model)
    model = ad.model
    rows = []
    for case in DEMO_CASES:
        prompt = " ".join([case.prompt.rsplit(" The girl's", 1)[0]] * (args.repeat_prompt - 1) + [case.prompt])
        problem = Problem.build(ad, prompt, case.target, case.foil)
        fn = targets.get(resolve_objective("auto", problem))
        ids = torch.tensor([problem.prompt_ids])
        T = ids.shape[1]

        def fwd():
            with torch.no_grad():
                model(input_ids=ids, use_cache=False, logits_to_keep=1)

        lrp = lambda: methods.get("cp-lrp")(model, problem, fn)  # noqa: E731
        ig50 = make_ig(n_steps=50, internal_batch_size=50, mask_id=mask_token_id(ad.tokenizer))
        ig = lambda: ig50(model, problem, fn)  # noqa: E731
        r0 = _rss_mb()
        t_fwd = _timeit(fwd, args.reps)
        t_lrp = _timeit(lrp, args.reps)
        r_lrp = _rss_mb()
        t_ig = _timeit(ig, max(1, args.reps // 2))
        r_ig = _rss_mb()
        mid = mask_token_id(ad.tokenizer)
        a_lrp = curves(model, problem, fn, lrp().relevance, mid)["deletion_aopc"]
        a_ig = curves(model, problem, fn, ig().relevance, mid)["deletion_aopc"]
        gcfg = dict(top_k=16)
        t_gb = _timeit(lambda: attribution_graph(ad, prompt, case.target, case.foil, config=GraphConfig(**gcfg, batch=32)), args.reps)
        t_gs = _timeit(lambda: attribution_graph(ad, prompt, case.target, case.foil, config=GraphConfig(**gcfg, batched=False)), args.reps)
        gb = attribution_graph(ad, prompt, case.target, case.foil, config=GraphConfig(**gcfg, batch=32))
        gs = attribution_graph(ad, prompt, case.target, case.foil, config=GraphConfig(**gcfg, batched=False))
        rows.append(dict(case=case.id, T=T, fwd_ms=t_fwd * 1e3, lrp_ms=t_lrp * 1e3, ig_ms=t_ig * 1e3,
                         lrp_over_fwd=t_lrp / t_fwd, ig_over_lrp=t_ig / t_lrp, aopc_lrp=a_lrp, aopc_ig=a_ig,
                         rss_lrp_mb=r_lrp - r0, rss_ig_mb=r_ig - r0, graph_batched_ms=t_gb * 1e3,
                         graph_separate_ms=t_gs * 1e3, graph_speedup=t_gs / t_gb,
                         backwards=f"{gb['n_backward']} vs {gs['n_backward']}"))
    print(f"model {args.model}, torch threads 1, reps {args.reps}")
    for r in rows:
        print(f"{r['case']} T={r['T']}: fwd {r['fwd_ms']:.1f} ms | cp-lrp {r['lrp_ms']:.1f} ms = {r['lrp_over_fwd']:.2f}x fwd "
              f"(target <= 3) | Captum IG-50 {r['ig_ms']:.0f} ms = {r['ig_over_lrp']:.1f}x cp-lrp (target >= 15) | "
              f"deletion-AOPC cp-lrp {r['aopc_lrp']:.3f} vs IG {r['aopc_ig']:.3f} | peak RSS growth lrp {r['rss_lrp_mb']:.0f} MB, "
              f"ig {r['rss_ig_mb']:.0f} MB (ru_maxrss, cumulative) | graph k=16: batched {r['graph_batched_ms']:.0f} ms vs "
              f"separate {r['graph_separate_ms']:.0f} ms = {r['graph_speedup']:.1f}x (target >= 4; backwards {r['backwards']})")


if __name__ == "__main__":
    main()
