"""The detection matrix: every injector on every clean target, scored by the full check suite.

Used by `benchmarks/bench_faults.py` (prints the tables) and the slow test. A fault counts as
detected when at least one check reports it (status fail or error); the clean targets must give
zero findings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from faultlens.faults.checks import run_checks
from faultlens.faults.inject import faults, plant
from faultlens.faults.target import Target, from_hf, from_module
from faultlens.faults.taxonomy import OPS


def default_targets() -> dict[str, Callable[[], Target]]:
    """Name → builder of each clean target: the tiny HF families, BERT, and the reference modules."""
    from faultlens.faults import targets as T
    from faultlens.models.tiny import FAMILIES, tiny_model

    out: dict[str, Callable[[], Target]] = {
        f: (lambda f=f: from_hf(tiny_model(f, attn_implementation="sdpa"), f)) for f in FAMILIES}
    out["bert"] = lambda: from_hf(T.tiny_bert(), "bert")
    for fn in (T.reference_causal, T.reference_encoder, T.reference_gqa):
        out[fn.__name__] = lambda fn=fn: from_module(fn(), fn.__name__, fn)
    return out


@dataclass
class Cell:
    target: str
    op: str
    status: str  # "detected" | "missed" | "n/a"
    checks: list = field(default_factory=list)
    reason: str = ""
    crashed: list = field(default_factory=list)  # checks that detected it only by the forward raising


def _snapshot(t: Target):
    return {k: v.clone() for k, v in t.module.state_dict().items()}


def run_matrix(target_names: list[str] | None = None, ops: list[str] | None = None,
               progress: Callable[[str], None] | None = None) -> tuple[dict, list[Cell], dict]:
    """Returns (clean findings per target, cells, seconds per target for a full clean check)."""
    builders = default_targets()
    clean, cells, secs = {}, [], {}
    for name in target_names or list(builders):
        t = builders[name]()
        t0 = time.perf_counter()
        clean[name] = [o for o in run_checks(t) if o.is_finding]
        secs[name] = time.perf_counter() - t0
        before = _snapshot(t)
        for op in ops or faults.names():
            why = faults.get(op).applies(t)
            if why:
                cells.append(Cell(name, op, "n/a", reason=why))
                continue
            with plant(t, op):
                outs = run_checks(t)
            found = [o.check for o in outs if o.is_finding]
            after = _snapshot(t)
            assert all(torch.equal(before[k], after[k]) for k in before), f"{op} not reverted on {name}"
            cells.append(Cell(name, op, "detected" if found else "missed", found,
                              crashed=[o.check for o in outs if o.status == "error"]))
            if progress:
                progress(f"{name} {op}: {'detected by ' + ','.join(found) if found else 'MISSED'}")
    return clean, cells, secs


def recall_table(cells: list[Cell]) -> dict[str, dict]:
    """Per ABNN category: planted, detected, recall (n/a cells excluded)."""
    table: dict[str, dict] = {}
    for c in cells:
        if c.status == "n/a":
            continue
        row = table.setdefault(OPS[c.op].category, {"planted": 0, "detected": 0})
        row["planted"] += 1
        row["detected"] += c.status == "detected"
    total = {"planted": sum(r["planted"] for r in table.values()), "detected": sum(r["detected"] for r in table.values())}
    table["overall"] = total
    for r in table.values():
        r["recall"] = r["detected"] / r["planted"] if r["planted"] else float("nan")
    return table
