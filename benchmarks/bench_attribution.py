"""Contrastive LRP cost vs a forward pass and vs Captum IntegratedGradients; graph cost; faithfulness.

One process, same model and inputs, 1 torch thread, model in eval mode. The machine is shared, so
every ratio is taken per repetition from calls INTERLEAVED in the same loop (a load spike hits
both sides), and the median over repetitions is printed, for CPU time of this thread
(time.thread_time: what the computation costs) and for wall time.

  * one cp-lrp / attnlrp explanation vs one forward pass                       (target ≤ 3×)
    forward pass = one plain HF forward, ``model(input_ids=row)`` under no_grad, full logits,
    of exactly the token row the explanation runs: prompt + the teacher-forced answer-prefix
    tokens (both answers' prefixes, packed as a tree in that one row; none when both answers are
    one token). Also shown: vs a prompt-only forward with logits_to_keep=1 (stricter).
  * Captum IG-50 vs one cp-lrp explanation (same scalar, same mask-token baseline)
  * graph, k = 16 targets per transition: packed vs one backward per target (same attention-only
    re-run), and vs the previous unpacked procedure (whole block re-run + backward per target)
                                                                               (target ≥ 4×)
  * deletion-AOPC over N failing position / frequency cases, mean ± 95 % CI, paired vs IG.

Usage: python benchmarks/bench_attribution.py [MODEL] [--reps 7] [--calls 3] [--cases 20] [--mask eos]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def interleaved(fns: dict, reps: int, calls: int) -> dict:
    """{name: {"cpu": [s per call], "wall": [...]}} with the callables run round-robin per repetition."""
    for f in fns.values():
        f()  # warm-up
    out = {k: {"cpu": [], "wall": []} for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            c, w = time.thread_time(), time.perf_counter()
            for _ in range(calls):
                f()
            out[k]["cpu"].append((time.thread_time() - c) / calls)
            out[k]["wall"].append((time.perf_counter() - w) / calls)
    return out


def ratio(res: dict, a: str, b: str, clock: str) -> tuple[float, float, float]:
    """Median, min and max over repetitions of res[a] / res[b] (same repetition)."""
    r = [x / y for x, y in zip(res[a][clock], res[b][clock])]
    return statistics.median(r), min(r), max(r)


def fmt(res, a, b):
    (mc, lc, hc), (mw, lw, hw) = ratio(res, a, b, "cpu"), ratio(res, a, b, "wall")
    return f"{mc:.2f}x cpu [{lc:.2f}–{hc:.2f}], {mw:.2f}x wall [{lw:.2f}–{hw:.2f}]"


def ms(res, k, clock="cpu"):
    return statistics.median(res[k][clock]) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="stories260k")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--calls", type=int, default=3, help="calls per timed sample")
    ap.add_argument("--cases", type=int, default=20, help="failing cases for the faithfulness study (0 = skip)")
    ap.add_argument("--mask", default="eos")
    ap.add_argument("--no-ig", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from faultlens.attribution.demo import DEMO_CASES
    from faultlens.attribution.explain import resolve_objective
    from faultlens.attribution.faithfulness import curves
    from faultlens.attribution.graph import GraphConfig, attribution_graph
    from faultlens.attribution.methods import make_ig, methods
    from faultlens.attribution.problem import Problem
    from faultlens.attribution.study import failing_cases, faithfulness_study, format_study
    from faultlens.attribution.targets import targets
    from faultlens.models.hf import HFAdapter

    ad = HFAdapter.load(args.model)
    model = ad.model.eval()
    print(f"model {args.model} ({model.config._attn_implementation}), torch threads 1, eval, "
          f"{args.reps} reps × {args.calls} calls, ratios = median over reps [min–max] of same-rep pairs")
    print("forward baseline = plain HF forward (no_grad, full logits) of the explanation's own token row "
          "(prompt + answer-prefix tokens)")
    for case in DEMO_CASES:
        problem = Problem.build(ad, case.prompt, case.target, case.foil, mask=args.mask)
        fn = targets.get(resolve_objective("auto", problem))
        row = torch.tensor([problem.row_ids])
        pids = torch.tensor([problem.prompt_ids])

        def fwd():
            with torch.no_grad():
                model(input_ids=row)

        def fwd_prompt_keep1():
            with torch.no_grad():
                model(input_ids=pids, logits_to_keep=1)

        fns = {"fwd": fwd, "fwd_prompt_keep1": fwd_prompt_keep1,
               "cp-lrp": lambda: methods.get("cp-lrp")(model, problem, fn),
               "attnlrp": lambda: methods.get("attnlrp")(model, problem, fn),
               "grad_x_input": lambda: methods.get("grad_x_input")(model, problem, fn)}
        res = interleaved(fns, args.reps, args.calls)
        print(f"\n{case.id}: prompt {problem.n_prompt} tokens, row {len(problem.row_ids)} tokens "
              f"(target {len(problem.target.ids)} tok, foil {len(problem.foil.ids)} tok, objective {fn.__name__})")
        print(f"  fwd {ms(res, 'fwd'):.2f} ms cpu ({ms(res, 'fwd', 'wall'):.2f} wall); "
              f"prompt-only keep-1 fwd {ms(res, 'fwd_prompt_keep1'):.2f} ms")
        for m in ("cp-lrp", "attnlrp", "grad_x_input"):
            print(f"  {m:<12} {ms(res, m):.2f} ms = {fmt(res, m, 'fwd')} vs fwd (target ≤ 3); "
                  f"{ratio(res, m, 'fwd_prompt_keep1', 'cpu')[0]:.2f}x cpu vs prompt-only keep-1 fwd")

        if not args.no_ig:
            ig50 = make_ig(n_steps=50)
            r2 = interleaved({"cp-lrp": fns["cp-lrp"], "ig": lambda: ig50(model, problem, fn)}, max(3, args.reps // 2), 1)
            a_lrp = curves(model, problem, fn, methods.get("cp-lrp")(model, problem, fn).relevance)["deletion_aopc"]
            a_ig = curves(model, problem, fn, ig50(model, problem, fn).relevance)["deletion_aopc"]
            print(f"  Captum IG-50 {ms(r2, 'ig'):.0f} ms = {fmt(r2, 'ig', 'cp-lrp')} cp-lrp; deletion-AOPC "
                  f"(mask {args.mask}) cp-lrp {a_lrp:+.3f} vs IG {a_ig:+.3f}")

        graph = lambda **kw: attribution_graph(ad, case.prompt, case.target, case.foil,  # noqa: E731
                                               config=GraphConfig(top_k=16, **kw))
        g = {"packed": graph(), "separate": graph(batched=False), "rerun": graph(batched=False, rerun=True)}
        rg = interleaved({"packed": lambda: graph(), "separate": lambda: graph(batched=False),
                          "rerun": lambda: graph(batched=False, rerun=True)}, max(5, args.reps // 2), 1)
        same = [n["id"] for n in g["packed"]["nodes"]] == [n["id"] for n in g["rerun"]["nodes"]]
        print(f"  graph k=16 ({len(g['packed']['nodes'])} nodes, readout positions {g['packed']['readout']}, "
              f"identical nodes packed vs rerun: {same}): packed {ms(rg, 'packed'):.0f} ms "
              f"({g['packed']['n_backward']} backwards)")
        print(f"    vs previous unpacked procedure (block re-run + backward per target, {g['rerun']['n_backward']} "
              f"backwards): {fmt(rg, 'rerun', 'packed')} (target ≥ 4)")
        print(f"    vs same attention-only re-run, one backward per target: {fmt(rg, 'separate', 'packed')}")

    if args.cases:
        cases = failing_cases(ad, n=args.cases)
        res = faithfulness_study(ad, cases, mask=args.mask)
        print()
        print(format_study(res))


if __name__ == "__main__":
    main()
