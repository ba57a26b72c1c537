"""Broken chains: two-step items whose intermediate step and conclusion are checked one by one.

Each item has a shared context, a *step* question (the intermediate fact) and a *conclusion*
question that is given the correct step in its prompt (teacher forcing, so each step is checked
on its own). The variable is the stage (step / conclusion). Per item the 2×2 table of
step-correct × conclusion-correct gives the two failure kinds: a correct step followed by a
wrong conclusion ("broken"), or a right conclusion after a wrong step ("reverse", an answer not
reached through the chain; cf. Lanham et al. 2023, arXiv:2307.13702, on unfaithful reasoning).
The paired McNemar test of the base analysis is exactly the test of broken vs reverse counts.

Run `python -m faultlens.probes.broken_chains` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from faultlens.probes.attention_drift import name_pairs
from faultlens.probes.base import case_set, ProbeAnalysis, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.stats import bootstrap_ci
from faultlens.types import Case

COLOURS = [("red", "blue"), ("blue", "green"), ("green", "red"), ("yellow", "blue"), ("big", "small"), ("small", "big")]
OBJECTS = ["ball", "kite", "hat", "box", "car", "book"]


@probes.register("broken_chains")
class BrokenChainsProbe(BatteryProbe):
    """Intermediate step vs conclusion of the same item: broken (step ok, conclusion wrong) or reverse."""

    name = "broken_chains"
    variable = "stage"
    category = "broken chains"
    description = "Two-step items: is the conclusion right exactly when the intermediate step is?"
    value_order = ["step", "conclusion"]
    reference = "step"


    def analyze(self, results: pd.DataFrame, run_id: str, alpha: float = 0.05) -> ProbeAnalysis:
        out = super().analyze(results, run_id, alpha)
        df = results[results["metric"] == "margin"]
        if df.empty:
            return out
        wide = df.assign(pair=df["detail"].map(lambda d: d.get("pair"))).pivot_table(
            index="pair", columns="value", values="passed", aggfunc="max").dropna()
        if {"step", "conclusion"} <= set(wide.columns) and len(wide):
            s, c = wide["step"].astype(bool).to_numpy(), wide["conclusion"].astype(bool).to_numpy()
            broken, reverse = (s & ~c).astype(float), (~s & c).astype(float)
            out.summary["chain"] = {
                "n_items": int(len(wide)), "both_right": float(np.mean(s & c)), "both_wrong": float(np.mean(~s & ~c)),
                "broken_rate": float(broken.mean()), "broken_ci": list(bootstrap_ci(broken)),
                "reverse_rate": float(reverse.mean()), "reverse_ci": list(bootstrap_ci(reverse)),
                "p_conclusion_given_step_right": float(c[s].mean()) if s.any() else None,
                "p_conclusion_given_step_wrong": float(c[~s].mean()) if (~s).any() else None,
            }
        return out


@case_set("broken_chains", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (a, b) in enumerate(name_pairs(rng, n_sets)):
        right, wrong = COLOURS[k % len(COLOURS)]
        obj = OBJECTS[k % len(OBJECTS)]
        ctx = f"Once upon a time, {a} had a {right} {obj}. {a} gave the {obj} to {b}."
        items = (("step", f" Now the {obj} was with", b, a),
                 ("conclusion", f" Now {b} had the {obj}. The {obj} {b} had was", right, wrong))
        for stage, q, t, f in items:
            cases.append(Case(f"broken_chains/{k:03d}/{stage}", ctx + q, f" {t}", f" {f}", "stage", stage,
                              {"pair": f"broken_chains/{k:03d}", "context": ctx}))
    return cases


@case_set("broken_chains", "general")
def _general(rng: random.Random, n_sets: int = 40) -> list[Case]:
    cases = []
    names = ["Ann", "Ravi", "Chen", "Olga", "Marta", "Kofi", "Lena", "Tariq"]
    items = ["apples", "pencils", "marbles", "stickers", "cookies"]
    for k in range(n_sets):
        who, thing = rng.choice(names), rng.choice(items)
        n_box, per, used = rng.randint(3, 9), rng.randint(3, 9), rng.randint(1, 9)
        total = n_box * per
        ctx = f"{who} has {n_box} boxes with {per} {thing} in each box. {who} gives away {used} {thing}."
        step = f"{ctx}\nQuestion: How many {thing} did {who} have before giving any away? Answer with a number.\nAnswer:"
        concl = (f"{ctx} Before giving any away, {who} had {total} {thing}.\nQuestion: How many {thing} does {who} have now? "
                 f"Answer with a number.\nAnswer:")
        for stage, prompt, t, f in (("step", step, total, n_box + per), ("conclusion", concl, total - used, total + used)):
            cases.append(Case(f"broken_chains-general/{k:03d}/{stage}", prompt, f" {t}", f" {f}", "stage", stage,
                              {"pair": f"broken_chains-general/{k:03d}", "context": ctx, "judge": "choice"}))
    return cases


if __name__ == "__main__":
    BrokenChainsProbe.write_case_sets()
