"""Failure risk of a bare prompt: the serve-time half of the predictor.

`RiskScorer` runs the registered per-case feature extractors on a request's prompt (the same
code that produced the training features during the probe run), keeps the columns the predictor
was fitted on, and returns the predicted failure probability with the features that pushed it
most (see `FailurePredictor.contributions`). Only the extractors that produce a needed feature
run, so a predictor fitted on the cheap features stays cheap at serve time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from faultlens.errors import FaultlensError
from faultlens.predict.predictor import FailurePredictor
from faultlens.probes.features import case_features, load_providers
from faultlens.types import Case

PROBE_PROMPT = "Once upon a time, there was a little girl named Lily. She liked to play outside. One day, Lily"


@dataclass
class Risk:
    """One prompt's predicted failure risk.

    Attributes:
        risk: predicted probability that the model fails on this prompt.
        top: the features that moved the risk most: ``{"name", "value", "contribution"}`` with
            the contribution in log-odds (positive = towards failure), largest |contribution| first.
    """

    risk: float
    top: list[dict]


def _cases(prompts: Sequence[str]) -> list[Case]:
    return [Case(id=f"request/{i}", prompt=p, target=" ") for i, p in enumerate(prompts)]


class RiskScorer:
    """Computes `Risk` for prompts with a white-box adapter and a fitted predictor.

    Raises:
        FaultlensError: the predictor needs features a bare prompt cannot give (key-span features:
            refit with ``--features serve``), or the adapter is not white-box.
    """

    def __init__(self, adapter, predictor: FailurePredictor, top_k: int = 5) -> None:
        if not hasattr(adapter, "capture"):
            raise FaultlensError("The guard needs a local white-box model (a Hugging Face directory or a shipped name).")
        if not hasattr(predictor, "feature_names_in_"):
            raise FaultlensError("This predictor was fitted without feature names; fit it with `faultlens predict fit`.")
        self.adapter, self.predictor, self.top_k = adapter, predictor, top_k
        self.names = [str(n) for n in predictor.feature_names_in_]
        load_providers()
        sample = _cases([PROBE_PROMPT])
        self.extractors = []
        have: set[str] = set()
        for name in case_features:
            got = case_features.get(name)(adapter, sample)[0]
            if set(got) & set(self.names):
                self.extractors.append(name)
                have |= set(got)
        missing = [n for n in self.names if n not in have]
        if missing:
            raise FaultlensError(
                f"The predictor uses {len(missing)} feature(s) a bare prompt cannot give ({', '.join(missing[:4])}"
                f"{' …' if len(missing) > 4 else ''}); refit it with `faultlens predict fit ... --features serve`, "
                "or check it was fitted on this model's features.")

    def features(self, prompts: Sequence[str]) -> pd.DataFrame:
        """The predictor's input columns for each prompt, ``[n, f]``."""
        cases = _cases(prompts)
        rows = [dict() for _ in cases]
        for name in self.extractors:
            for r, got in zip(rows, case_features.get(name)(self.adapter, cases)):
                r.update(got)
        return pd.DataFrame(rows).reindex(columns=self.names).astype(float)

    def score(self, prompts: Sequence[str]) -> list[Risk]:
        X = self.features(prompts)
        risk = self.predictor.risk(X)
        contrib = self.predictor.contributions(X)  # [n, f]
        out = []
        for i in range(len(prompts)):
            order = np.argsort(-np.abs(contrib[i]))[: self.top_k]
            top = [{"name": self.names[j], "value": _num(X.iat[i, j]), "contribution": round(float(contrib[i, j]), 4)}
                   for j in order]
            out.append(Risk(float(risk[i]), top))
        return out


def _num(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)
