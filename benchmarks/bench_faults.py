"""Detection benchmark for the ABNN fault checker.

Plants every injector (taxonomy.OPERATORS) into each clean target -- tiny GPT-2, Llama, Mistral,
Qwen2, GPT-NeoX, BERT and three hand-written reference attention modules -- runs the full check
suite, and prints recall per ABNN category and overall, findings on the unmodified targets
(must be zero), per-target recall, which checks caught each operator, and the time of a full
clean check. There is no peer tool that checks attention faults, so no ours/peer ratio is printed.

    python benchmarks/bench_faults.py [--targets llama,bert] [--ops MZM,SDS] [--markdown]
"""

from __future__ import annotations

import argparse
import collections
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default=None, help="comma-separated target names (default: all)")
    ap.add_argument("--ops", default=None, help="comma-separated operator ids (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print the per-category table as markdown")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from faultlens.faults.bench import recall_table, run_matrix
    from faultlens.faults.taxonomy import OPS

    t0 = time.perf_counter()
    clean, cells, secs = run_matrix(args.targets.split(",") if args.targets else None,
                                    args.ops.split(",") if args.ops else None)
    wall = time.perf_counter() - t0

    print("\n== findings on unmodified targets (must be 0) ==")
    for name, found in clean.items():
        print(f"{name:18s} {len(found)}  {[o.check for o in found]}  full check {secs[name]:.2f} s")

    table = recall_table(cells)
    print("\n== recall per ABNN category ==")
    if args.markdown:
        print("| category | planted | detected | recall |\n|---|---|---|---|")
    for cat, r in table.items():
        line = (f"| {cat} | {r['planted']} | {r['detected']} | {r['recall']:.1%} |" if args.markdown
                else f"{cat:22s} planted {r['planted']:4d}  detected {r['detected']:4d}  recall {r['recall']:.1%}")
        print(line)

    print("\n== per target ==")
    by_t = collections.defaultdict(lambda: [0, 0, 0])
    for c in cells:
        row = by_t[c.target]
        if c.status == "n/a":
            row[2] += 1
        else:
            row[0] += 1
            row[1] += c.status == "detected"
    for name, (n, d, na) in by_t.items():
        print(f"{name:18s} {d}/{n} detected, {na} operators not applicable")

    print("\n== checks that caught each operator (count over targets) ==")
    by_op = collections.defaultdict(collections.Counter)
    for c in cells:
        if c.status == "detected":
            by_op[c.op].update(c.checks)
    for op in OPS:
        cnt = by_op.get(op)
        print(f"{op} ({OPS[op].category} / {OPS[op].root_cause}): "
              + (", ".join(f"{k}x{v}" for k, v in cnt.most_common()) if cnt else "-"))
    missed = [f"{c.target}:{c.op}" for c in cells if c.status == "missed"]
    crash_only = [f"{c.target}:{c.op}" for c in cells if c.status == "detected" and set(c.checks) == set(c.crashed)]
    print(f"\nmissed: {missed or 'none'}")
    print(f"detected only through a crash: {crash_only or 'none'}")
    print(f"n/a: {sum(c.status == 'n/a' for c in cells)} (operator does not apply, e.g. KV cache on an encoder)")
    print(f"total wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
