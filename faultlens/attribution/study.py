"""Faithfulness study: deletion-AOPC of several methods over many failing cases, with CIs.

    cases = failing_cases(adapter, ["position", "frequency"], n=20)
    res = faithfulness_study(adapter, cases, methods=("cp-lrp", "attnlrp", "grad_x_input", "ig"))
    res["summary"]["cp-lrp"]  # {"mean", "ci95", "n"}; res["paired"]["cp-lrp - ig"] likewise

Every method explains the same scalar (`explain`'s objective for the case) and is scored by the
same perturbation curves with the same absent token (the IG baseline is that token too). CIs are
Student-t 95 % intervals over cases; "paired" gives per-case differences, so a case that is hard
for every method does not widen the comparison.
"""

from __future__ import annotations

import math

import numpy as np

from faultlens.attribution.explain import explain
from faultlens.attribution.faithfulness import FaithfulnessConfig


def _t95(n: int) -> float:
    """Two-sided 95 % Student-t quantile for n − 1 degrees of freedom (scipy-free table + normal tail)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000}
    df = n - 1
    if df <= 0:
        return math.nan
    keys = [k for k in sorted(table) if k <= df]
    return table[keys[-1]] if df <= 60 else 1.96


def mean_ci(x) -> dict:
    """Mean, 95 % CI half-width (Student t) and n of a sample."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    half = _t95(n) * x.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    return {"mean": float(x.mean()), "ci95": float(half), "n": n}


def failing_cases(adapter, probe_sets=("position", "frequency"), n: int = 20, case_set: str = "tiny"):
    """The first `n` cases (round-robin over `probe_sets`) the model gets wrong: log p(target) < log p(foil)."""
    from faultlens.probes.cases import CASES_DIR, load_jsonl

    pools = [[c for c in load_jsonl(CASES_DIR / p / f"{case_set}.jsonl") if c.foil] for p in probe_sets]
    out, idx = [], [0] * len(pools)
    while len(out) < n and any(i < len(p) for i, p in zip(idx, pools)):
        for k, pool in enumerate(pools):
            while idx[k] < len(pool) and len(out) < n:
                c = pool[idx[k]]
                idx[k] += 1
                t, f = adapter.score([c.prompt, c.prompt], [c.target, c.foil])
                if t < f:
                    out.append(c)
                    break
    return out


def faithfulness_study(adapter, cases, methods=("cp-lrp", "attnlrp", "grad_x_input", "ig"), mask: str = "eos",
                       config: FaithfulnessConfig = FaithfulnessConfig(), baseline: str = "ig") -> dict:
    """Deletion- and insertion-AOPC per case and method, plus random, summarised with 95 % CIs.

    Returns:
        ``{"per_case": [{"case", "objective", "<method>": aopc, ..., "random": aopc}], "summary":
        {method: mean_ci}, "insertion": {method: mean_ci}, "paired": {"<m> - <baseline>": mean_ci},
        "wins": {method: share of cases where m ≥ baseline}, "mask": mask}``.
    """
    rows, ins = [], {m: [] for m in methods}
    for c in cases:
        row = {"case": c.id}
        for m in methods:
            e = explain(adapter, c.prompt, c.target, c.foil, method=m, faithfulness=config, mask=mask)
            row[m] = e.faithfulness["deletion_aopc"]
            ins[m].append(e.faithfulness["insertion_aopc"])
            row["random"] = e.faithfulness["random_deletion_aopc"]
            row["objective"] = e.objective
        rows.append(row)
    cols = list(methods) + ["random"]
    summary = {m: mean_ci([r[m] for r in rows]) for m in cols}
    paired, wins = {}, {}
    if baseline in methods:
        for m in methods:
            if m != baseline:
                d = [r[m] - r[baseline] for r in rows]
                paired[f"{m} - {baseline}"] = mean_ci(d)
                wins[m] = float(np.mean([x >= 0 for x in d]))
    return {"per_case": rows, "summary": summary, "insertion": {m: mean_ci(v) for m, v in ins.items()},
            "paired": paired, "wins": wins, "mask": mask}


def format_study(res: dict) -> str:
    """Human-readable lines of a `faithfulness_study` result."""
    s = res["summary"]
    lines = [f"deletion-AOPC over {s[next(iter(s))]['n']} failing cases, mask={res['mask']} (mean ± 95% CI):"]
    lines += [f"  {m:<13} {v['mean']:+.3f} ± {v['ci95']:.3f}" for m, v in s.items()]
    lines += [f"  paired {k:<22} {v['mean']:+.3f} ± {v['ci95']:.3f} (m ≥ baseline on {res['wins'][k.split(' - ')[0]]:.0%} of cases)"
              for k, v in res["paired"].items()]
    lines += ["insertion-AOPC: " + ", ".join(f"{m} {v['mean']:+.3f} ± {v['ci95']:.3f}" for m, v in res["insertion"].items())]
    return "\n".join(lines)
