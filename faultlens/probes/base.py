"""The probe pattern every failure-mode family follows.

A probe never touches a model. It supplies cases (data, generated once by seeded code in the
probe's own file and shipped as JSONL), says which continuations to score for each case, judges
the scores into `Result`s, and turns a run's results into statistics and `Finding`s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import pandas as pd

from faultlens.errors import FaultlensError
from faultlens.probes import stats
from faultlens.probes.cases import load_jsonl, shipped_case_file, write_jsonl
from faultlens.registry import Registry
from faultlens.types import Case, Finding, Result


@dataclass(frozen=True)
class ProbeConfig:
    """Which cases a probe runs.

    Attributes:
        case_set: shipped set name ("tiny" for the shipped TinyStories model, "general" for
            instruction-tuned LLMs).
        cases_file: a user JSONL file instead of the shipped set.
        n_per_cell: keep at most this many minimal sets per probe (seeded choice); None = all.
        seed: seed of that choice.
        alpha: family-wise significance level for findings.
    """

    case_set: str = "tiny"
    cases_file: str | None = None
    n_per_cell: int | None = None
    seed: int = 0
    alpha: float = 0.05


@dataclass
class ProbeAnalysis:
    """What a probe concludes from a run's results."""

    probe: str
    effect: stats.VariableEffect | None
    findings: list[Finding]
    summary: dict


class Probe:
    """Base class: subclasses set `name`, `variable`, `category`, and implement `generate`.

    Override `requests`/`judge` for cases that score more than target vs foil, and `shape`
    to describe the pattern of an effect (e.g. primacy / recency / U).
    """

    name: ClassVar[str] = ""
    variable: ClassVar[str] = ""
    category: ClassVar[str] = ""  # taxonomy name of the failure mode
    description: ClassVar[str] = ""
    value_order: ClassVar[list | None] = None  # display order of the variable's values
    reference: ClassVar[Any] = None  # value others are compared with (None: the best one)

    # ---------------------------------------------------------------- cases
    @classmethod
    def generate(cls, case_set: str, seed: int = 0) -> list[Case]:
        """Build a case set from the seeded templates registered with `@case_set(probe, name)`.

        Run once per release; the output is shipped as JSONL data.
        """
        return case_sets.get(f"{cls.name}/{case_set}")(random.Random(seed))

    @classmethod
    def write_case_sets(cls, sets: tuple[str, ...] = ("tiny", "general"), seed: int = 0) -> None:
        for s in sets:
            write_jsonl(cls.generate(s, seed), shipped_case_file(cls.name, s))

    def cases(self, cfg: ProbeConfig) -> list[Case]:
        """Cases from the user's file or the shipped set, thinned to `n_per_cell` minimal sets."""
        if cfg.cases_file:
            cases = load_jsonl(cfg.cases_file)
        else:
            path = shipped_case_file(self.name, cfg.case_set)
            if not path.is_file():
                raise FaultlensError(f"Probe {self.name!r} has no shipped case set {cfg.case_set!r}; use tiny or general, or --cases FILE.")
            cases = load_jsonl(path)
        if cfg.n_per_cell:
            sets = sorted({pair_of(c) for c in cases})
            keep = set(random.Random(cfg.seed).sample(sets, min(cfg.n_per_cell, len(sets))))
            cases = [c for c in cases if pair_of(c) in keep]
        return cases

    # ---------------------------------------------------------------- scoring
    def requests(self, case: Case) -> list[tuple[str, str]]:
        """(prompt, continuation) pairs to score; default: target then foil."""
        return [(case.prompt, case.target), (case.prompt, case.foil)]

    def judge(self, case: Case, scores: list[float], run_id: str, model: str) -> list[Result]:
        """Default judge: margin = log p(target) − log p(foil); passed when the target wins."""
        s_t, s_f = scores[0], scores[1]
        margin = s_t - s_f
        detail = {"prompt": case.prompt, "target": case.target, "foil": case.foil, "score_target": s_t,
                  "score_foil": s_f, "pair": pair_of(case)}
        return [Result(run_id, self.name, case.id, model, case.variable or self.variable, case.value,
                       "margin", margin, margin > 0, detail)]

    # ---------------------------------------------------------------- analysis
    def analyze(self, results: pd.DataFrame, run_id: str, alpha: float = 0.05) -> ProbeAnalysis:
        """Per-value accuracy/margin with CIs, paired tests, and a Finding when significant."""
        df = results[results["metric"] == "margin"].copy()
        if df.empty:
            return ProbeAnalysis(self.name, None, [], {"n": 0})
        df["pair"] = df["detail"].map(lambda d: d.get("pair"))
        df["margin"] = df["score"]
        df["passed"] = df["passed"].astype(float)
        present = set(map(stats.value_key, df["value"]))
        order = self.value_order
        if order is not None and {stats.value_key(v) for v in order} != present:
            order = None  # a user's case file with its own value labels: use them as they are
        reference = self.reference if self.reference is not None and stats.value_key(self.reference) in present else None
        eff = stats.variable_effect(df, self.variable, order=order, reference=reference)
        summary = {
            "probe": self.name, "variable": self.variable, "category": self.category, "n_cases": int(len(df)),
            "n_sets": eff.n_sets, "values": [v.value for v in eff.values], "accuracy": [v.accuracy for v in eff.values],
            "ci_low": [v.acc_ci[0] for v in eff.values], "ci_high": [v.acc_ci[1] for v in eff.values],
            "margin": [v.margin for v in eff.values], "margin_ci": [list(v.margin_ci) for v in eff.values],
            "test": {"omnibus": eff.omnibus_test, "p": eff.omnibus_p, "correction": "Holm (Bonferroni within each comparison)",
                     "comparisons": [c.__dict__ for c in eff.comparisons]},
            "shape": self.shape(eff),
        }
        findings = []
        # A failure mode means more failures: a value must lower accuracy, not just confidence.
        # (Margin-only shifts stay visible in summary["test"], but raise no finding.)
        sig = [c for c in eff.significant(alpha) if c.acc_diff < 0]
        if sig and eff.omnibus_p < alpha:
            worst = min(sig, key=lambda c: c.acc_diff)
            findings.append(Finding(
                run_id, f"probe:{self.name}", self.category, "warning",
                self.finding_message(eff, worst),
                {"probe": self.name, "variable": self.variable, "value": worst.value, "reference": worst.reference,
                 "acc_diff": worst.acc_diff, "margin_diff": worst.margin_diff, "cohens_h": worst.cohens_h,
                 "rank_biserial": worst.rank_biserial, "p_holm": worst.p_holm, "omnibus_p": eff.omnibus_p,
                 "shape": summary["shape"]},
            ))
        return ProbeAnalysis(self.name, eff, findings, summary)

    def shape(self, eff: stats.VariableEffect) -> str:
        return ""

    def finding_message(self, eff: stats.VariableEffect, worst: stats.Comparison) -> str:
        acc = {stats.value_key(v.value): v.accuracy for v in eff.values}
        return (f"{self.variable}={worst.value!r} lowers accuracy by {-worst.acc_diff:.0%} vs {worst.reference!r} "
                f"({acc[stats.value_key(worst.value)]:.0%} vs {acc[stats.value_key(worst.reference)]:.0%}; Cohen's h {worst.cohens_h:.2f}, "
                f"Holm p={worst.p_holm:.2g})")


def pair_of(case: Case) -> str:
    """The minimal-set id of a case (meta['pair'], else the id up to its last '/')."""
    return str(case.meta.get("pair") or case.id.rsplit("/", 1)[0])


probes: Registry[type[Probe]] = Registry("probe")
case_sets: Registry[Callable[[random.Random], list[Case]]] = Registry("case set")


def case_set(probe: str, name: str):
    """Register a seeded case-set builder: ``@case_set("position", "tiny") def build(rng) -> list[Case]``."""
    return case_sets.register(f"{probe}/{name}")
