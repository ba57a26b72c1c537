"""Format overfitting: the same item in meaning-preserving prompt formats.

The single variable is the format (separators, casing, punctuation, field names); content,
target and foil are fixed within a minimal set. FormatSpread (Sclar et al. 2023,
arXiv:2310.11324) reports the spread, best minus worst accuracy over formats; the summary adds
it, and the paired tests compare every format with the best one.

Run `python -m faultlens.probes.format` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random
from typing import Callable

import pandas as pd

from faultlens.probes.attention_drift import named_items
from faultlens.probes.base import case_set, ProbeAnalysis, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.sycophancy import QA
from faultlens.types import Case

# Tiny formats of one story: "{n}" is the name, "{a}" an activity; each must say the same thing.
TINY_FORMATS: dict[str, Callable[[str], str]] = {
    "plain": lambda n, a: f"Once upon a time, there was a child named {n}. The child liked to {a}. The child's name was",
    "lowercase": lambda n, a: f"once upon a time, there was a child named {n}. the child liked to {a}. the child's name was",
    "newlines": lambda n, a: f"Once upon a time, there was a child named {n}.\nThe child liked to {a}.\nThe child's name was",
    "no_punctuation": lambda n, a: f"Once upon a time there was a child named {n} the child liked to {a} the child's name was",
    "field": lambda n, a: f"Once upon a time, there was a child named {n}. The child liked to {a}.\nName:",
    "dialogue": lambda n, a: f"Once upon a time, there was a child named {n}. The child liked to {a}. Mom said, \"Your name is",
}

GENERAL_FORMATS: dict[str, Callable[[str], str]] = {
    "question_answer": lambda q: f"Question: {q}\nAnswer:",
    "q_a": lambda q: f"Q: {q}\nA:",
    "upper_fields": lambda q: f"QUESTION: {q}\nANSWER:",
    "dash_lower": lambda q: f"question - {q}\nanswer -",
    "input_output": lambda q: f"Input: {q}\nOutput:",
    "single_line": lambda q: f"{q} Answer:",
}


@probes.register("format")
class FormatProbe(BatteryProbe):
    """Equivalent prompt formats: accuracy spread across formats (worst vs best)."""

    name = "format"
    variable = "format"
    category = "format overfitting"
    description = "Accuracy of the same items under equivalent prompt formats (FormatSpread)."


    def analyze(self, results: pd.DataFrame, run_id: str, alpha: float = 0.05) -> ProbeAnalysis:
        out = super().analyze(results, run_id, alpha)
        if out.effect is not None:
            acc = {str(v.value): v.accuracy for v in out.effect.values}
            best, worst = max(acc, key=acc.get), min(acc, key=acc.get)
            out.summary["spread"] = {"best": best, "worst": worst, "best_acc": acc[best], "worst_acc": acc[worst],
                                     "spread": acc[best] - acc[worst]}
        return out


@case_set("format", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (name, foil, act) in enumerate(named_items(rng, n_sets)):
        for fmt, make in TINY_FORMATS.items():
            cases.append(Case(f"format/{k:03d}/{fmt}", make(name, act), f" {name}", f" {foil}", "format", fmt,
                              {"pair": f"format/{k:03d}"}))
    return cases


@case_set("format", "general")
def _general(rng: random.Random) -> list[Case]:
    cases = []
    for k, (q, right, wrong) in enumerate(QA):
        for fmt, make in GENERAL_FORMATS.items():
            cases.append(Case(f"format-general/{k:03d}/{fmt}", make(q), f" {right}", f" {wrong}", "format", fmt,
                              {"pair": f"format-general/{k:03d}", "judge": "choice"}))
    return cases


if __name__ == "__main__":
    FormatProbe.write_case_sets()
