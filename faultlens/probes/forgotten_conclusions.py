"""Forgotten intermediate conclusions: a conclusion stated early and needed later, further away.

Unlike attention drift (one plain fact), the early sentence is a *conclusion* drawn from an
event that also names the foil ("Mia and Ben played a game, and Mia won. So Mia was the
winner."), and the late question needs the conclusion, not the event. The single variable is the
number of distractor sentences between conclusion and question.

Run `python -m faultlens.probes.forgotten_conclusions` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random

from faultlens.probes.attention_drift import FILLERS, NOISE, name_pairs
from faultlens.probes.base import case_set, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.stats import VariableEffect
from faultlens.types import Case

DISTANCES = [0, 4, 8, 16]


@probes.register("forgotten_conclusions")
class ForgottenConclusionsProbe(BatteryProbe):
    """Distance between an early conclusion and the question that needs it."""

    name = "forgotten_conclusions"
    variable = "distance"
    category = "forgotten intermediate conclusions"
    description = "Use of an early-stated conclusion as distractor text grows before it is needed."
    value_order = DISTANCES
    reference = 0


    def shape(self, eff: VariableEffect) -> str:
        acc = [v.accuracy for v in eff.values]
        return "" if len(acc) < 2 else ("decays with distance" if acc[-1] < acc[0] - 0.05 else "flat")


@case_set("forgotten_conclusions", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (a, b) in enumerate(name_pairs(rng, n_sets)):
        pool = rng.sample(FILLERS, max(DISTANCES))
        concl = f"So {a} was the winner."
        head = f"Once upon a time, {a} and {b} played a game, and {a} won. {concl}"
        for d in DISTANCES:
            prompt = f"{head} " + " ".join(pool[:d]) + (" " if d else "") + "The winner was"
            start = head.index(concl)
            cases.append(Case(f"forgotten_conclusions/{k:03d}/d{d}", prompt, f" {a}", f" {b}", "distance", d,
                              {"pair": f"forgotten_conclusions/{k:03d}", "key_span": [start, start + len(concl)]}))
    return cases


COLOURS = ["red", "blue", "green", "white", "black", "orange"]


@case_set("forgotten_conclusions", "general")
def _general(rng: random.Random, n_sets: int = 40) -> list[Case]:
    cases = []
    for k in range(n_sets):
        x, y, z = rng.sample(COLOURS, 3)
        head = (f"The {x} crate is heavier than the {y} crate, and the {y} crate is heavier than the {z} crate. "
                f"We concluded that the {x} crate is the heaviest.")
        concl = f"We concluded that the {x} crate is the heaviest."
        pool = rng.sample(NOISE, max(DISTANCES))
        for d in DISTANCES:
            body = " ".join([head] + pool[:d])
            prompt = (f"{body}\nQuestion: Using our earlier conclusion, which crate is the heaviest? Answer with its colour.\n"
                      f"Answer: The")
            start = prompt.index(concl)
            cases.append(Case(f"forgotten_conclusions-general/{k:03d}/d{d}", prompt, f" {x}", f" {y}", "distance", d,
                              {"pair": f"forgotten_conclusions-general/{k:03d}", "key_span": [start, start + len(concl)],
                               "judge": "choice"}))
    return cases


if __name__ == "__main__":
    ForgottenConclusionsProbe.write_case_sets()
