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
  * graph, k = 16 kept targets per layer, every edge method (graph.py) on the same case, whole
    graph and edge phase: "closed" (all targets at once, cp-lrp) vs 16 separate backwards per
    layer through the attention sub-layer ("separate"), and vs Debug-XAI's unpacked procedure
    (whole block re-run + one backward per target, "rerun"); "packed" (vmap batched backward)
    shown too; on each demo case and on a ~480-token version of it (--long)  (target ≥ 4×)
  * peak memory: max-RSS growth of one call per method in a fresh process, on the long case
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


EDGE_METHODS = ("closed", "packed", "separate", "rerun")  # cp-lrp
ATTNLRP = ("attnlrp/closed", "attnlrp/separate")


def graph_bench(ad, prompt: str, target: str, foil: str, reps: int) -> None:
    """Whole-graph and edge-phase time of each edge method (k = 16 kept targets per layer), interleaved."""
    from faultlens.attribution.graph import GraphConfig, attribution_graph

    graphs = {e: [] for e in EDGE_METHODS + ATTNLRP}

    def run(e):
        variant, edges = ("attnlrp", e.split("/")[1]) if "/" in e else ("cp-lrp", e)
        return lambda: graphs[e].append(attribution_graph(ad, prompt, target, foil, variant,
                                                          config=GraphConfig(top_k=16, edges=edges)))

    rg = interleaved({e: run(e) for e in EDGE_METHODS + ATTNLRP}, reps, 1)
    edge_s = {e: [g["seconds"]["edges"] for g in graphs[e][1:]] for e in EDGE_METHODS}  # [0] was the warm-up
    g = {e: graphs[e][0] for e in EDGE_METHODS}
    ids = lambda x: [n["id"] for n in x["nodes"]]  # noqa: E731
    same = all(ids(g[e]) == ids(g["rerun"]) for e in EDGE_METHODS)
    print(f"  graph k=16, {len(g['closed']['tokens'])} tokens ({len(g['closed']['nodes'])} nodes, "
          f"identical nodes across methods: {same}):")
    for e in EDGE_METHODS:
        print(f"    {e:<8} {ms(rg, e):8.1f} ms cpu, edge phase {statistics.median(edge_s[e]) * 1e3:7.1f} ms wall "
              f"({g[e]['n_backward']} backwards)")
    for base in ("separate", "rerun"):
        edge = statistics.median(a / b for a, b in zip(edge_s[base], edge_s["closed"]))
        print(f"    closed vs {base:<8} (one backward per target{', whole block re-run' if base == 'rerun' else ''}): "
              f"whole graph {fmt(rg, base, 'closed')}; edge phase {edge:.2f}x   (target >= 4)")
    print(f"    packed vs separate: whole graph {fmt(rg, 'separate', 'packed')}")
    a_edge = statistics.median(a / b for a, b in zip(*(
        [g["seconds"]["edges"] for g in graphs[e][1:]] for e in ATTNLRP[::-1])))
    print(f"    attnlrp: closed {ms(rg, ATTNLRP[0]):.1f} ms vs separate {ms(rg, ATTNLRP[1]):.1f} ms cpu: whole graph "
          f"{fmt(rg, ATTNLRP[1], ATTNLRP[0])}; edge phase {a_edge:.2f}x   (target >= 4)")


def long_version(ad, prompt: str, n_tokens: int) -> str:
    """`prompt` with neutral story sentences inserted before its last sentence, to ~n_tokens."""
    pre, _, tail = prompt.rpartition(". ")
    filler, out = " The sun was warm and the birds sang in the tall green trees.", pre + "."
    while len(ad.encode(out + filler + " " + tail)) < n_tokens:
        out += filler
    return out + " " + tail


_PEAK = """
import json, resource, sys, torch
torch.set_num_threads(1)
from faultlens.attribution.explain import resolve_objective
from faultlens.attribution.methods import make_ig, methods
from faultlens.attribution.problem import Problem
from faultlens.attribution.targets import targets
from faultlens.models.hf import HFAdapter
model_name, prompt, target, foil, method = json.loads(sys.argv[1])
ad = HFAdapter.load(model_name)
model = ad.model.eval()
problem = Problem.build(ad, prompt, target, foil)
fn = targets.get(resolve_objective("auto", problem))
row = torch.tensor([problem.row_ids])
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
saved = [0]

def pack(t):  # bytes autograd keeps for the backward: the activation memory a method adds
    saved[0] += t.numel() * t.element_size()
    return t

with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    if method == "fwd":
        with torch.no_grad():
            model(input_ids=row)
    else:
        (make_ig(n_steps=50) if method == "ig" else methods.get(method))(model, problem, fn)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024, saved[0] / 2**20)
"""


def peak_rss(model: str, prompt: str, target: str, foil: str, method: str) -> tuple[float, float]:
    """(MB of max-RSS growth, MB autograd saved for the backward) of one call of `method`, in a fresh
    process with the model loaded. RSS growth reads 0 when the call fits in memory the process
    had already touched (model loading); the saved-tensor bytes still tell the methods apart."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PEAK, json.dumps([model, prompt, target, foil, method])],
                         capture_output=True, text=True, check=True).stdout
    rss, saved = out.strip().splitlines()[-1].split()
    return float(rss), float(saved)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="stories260k")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--calls", type=int, default=3, help="calls per timed sample")
    ap.add_argument("--cases", type=int, default=20, help="failing cases for the faithfulness study (0 = skip)")
    ap.add_argument("--mask", default="eos")
    ap.add_argument("--no-ig", action="store_true")
    ap.add_argument("--long", type=int, default=480, help="also time the graph on a ~N-token version of each case (0 = skip)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from faultlens.attribution.demo import DEMO_CASES
    from faultlens.attribution.explain import resolve_objective
    from faultlens.attribution.faithfulness import curves
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

        graph_bench(ad, case.prompt, case.target, case.foil, args.reps)
        if args.long:  # the graph is meant for long inputs: the same question after ~`--long` tokens
            graph_bench(ad, long_version(ad, case.prompt, args.long), case.target, case.foil, args.reps)

    case = DEMO_CASES[0]
    prompt = long_version(ad, case.prompt, args.long) if args.long else case.prompt
    print(f"\npeak memory, fresh process per method, {len(ad.encode(prompt))}-token {case.id}: "
          f"max-RSS growth of one call over the loaded model (fwd = one no-grad forward)")
    for m in ("fwd", "cp-lrp", "attnlrp", "grad_x_input") + (() if args.no_ig else ("ig",)):
        rss, saved = peak_rss(args.model, prompt, case.target, case.foil, m)
        print(f"  {m:<12} max-RSS growth {rss:8.1f} MB, saved for backward {saved:8.1f} MB")

    if args.cases:
        cases = failing_cases(ad, n=args.cases)
        res = faithfulness_study(ad, cases, mask=args.mask)
        print()
        print(format_study(res))


if __name__ == "__main__":
    main()
