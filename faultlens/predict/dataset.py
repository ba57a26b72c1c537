"""Training data for the failure predictor: one row per scored case, read from the run store.

Label: the case's ``margin`` Result has ``passed == False`` (the model preferred the foil).
Features: the case's per-case `Feature` rows (case_id ``__run__`` rows are run-level, skipped).
Groups for cross-validation: the probe family (`Result.probe`) and the template / minimal set
(``detail["pair"]``, else the case id up to its last "/"), so near-duplicate cases of one
minimal set never sit on both sides of a split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from faultlens.errors import FaultlensError

LAYER = re.compile(r"^(?P<stem>.+)\.L(?P<layer>\d+)$")


@dataclass
class CaseTable:
    """Cases of one or more runs.

    Attributes:
        X: features, one column per feature name (NaN where a case lacks one), index = row number.
        y: True where the case failed, ``[n]``.
        meta: run_id, case_id, probe, template, model, variable, value per row.
    """

    X: pd.DataFrame
    y: np.ndarray
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask) -> "CaseTable":
        mask = np.asarray(mask, dtype=bool)
        return CaseTable(self.X[mask].reset_index(drop=True), self.y[mask], self.meta[mask].reset_index(drop=True))

    def groups(self, by: str) -> np.ndarray:
        """Group label per row: "family" (probe) or "template" (minimal set, prefixed by run's model)."""
        if by == "family":
            return self.meta["probe"].to_numpy()
        if by == "template":
            return (self.meta["probe"] + "|" + self.meta["template"]).to_numpy()
        raise FaultlensError(f"Unknown grouping {by!r}; use family or template.")


def _template(row) -> str:
    d = row["detail"] if isinstance(row["detail"], dict) else {}
    return str(d.get("pair") or row["case_id"].rsplit("/", 1)[0])


def load_cases(store, run_ids: Sequence[str], metric: str = "margin") -> CaseTable:
    """Join the runs' results (label) with their per-case features.

    Raises:
        FaultlensError: unknown run, or no case with both a result and features.
    """
    run_ids = list(run_ids)
    if not run_ids:
        raise FaultlensError("Give at least one run id; `faultlens runs` lists them.")
    for r in run_ids:
        store.require_run(r)
    res = store.to_pandas("results", run_ids)
    res = res[res["metric"] == metric]
    if res.empty:
        raise FaultlensError(f"Runs {', '.join(run_ids)} have no {metric!r} results; run `faultlens scan MODEL --store ...` first.")
    feats = store.to_pandas("features", run_ids)
    feats = feats[feats["case_id"] != "__run__"]
    if feats.empty:
        raise FaultlensError(f"Runs {', '.join(run_ids)} have no per-case features; scan a white-box model without --no-features.")
    wide = feats.pivot_table(index=["run_id", "case_id"], columns="name", values="value", aggfunc="first")
    res = res.drop_duplicates(["run_id", "case_id"]).set_index(["run_id", "case_id"])
    keep = res.index.intersection(wide.index)
    if len(keep) == 0:
        raise FaultlensError("No case has both a result and features in these runs; re-scan with features on.")
    res, wide = res.loc[keep].reset_index(), wide.loc[keep].reset_index(drop=True)
    wide.columns.name = None
    meta = pd.DataFrame({
        "run_id": res["run_id"], "case_id": res["case_id"], "probe": res["probe"],
        "template": res.apply(_template, axis=1), "model": res["model"], "variable": res["variable"],
        "value": res["value"].map(lambda v: v if isinstance(v, (int, float, str)) or v is None else str(v)),
    })
    y = ~res["passed"].astype(bool).to_numpy()
    return CaseTable(wide.astype(float), y, meta)


def depth_binned(X: pd.DataFrame, n_bins: int = 3) -> pd.DataFrame:
    """Average per-layer columns ``stem.L{i}`` into relative-depth bins ``stem.D{b}``.

    Models with different depths then share feature names (layer i of L goes to bin
    ``floor(b * i / L)``), which cross-model transfer needs. Other columns pass through.
    """
    out, binned = {}, {}
    stems: dict[str, list[tuple[int, str]]] = {}
    for c in X.columns:
        m = LAYER.match(c)
        if m:
            stems.setdefault(m["stem"], []).append((int(m["layer"]), c))
        else:
            out[c] = X[c]
    for stem, cols in stems.items():
        n_layers = max(i for i, _ in cols) + 1
        for b in range(n_bins):
            members = [c for i, c in cols if min(n_bins - 1, i * n_bins // n_layers) == b]
            if members:
                binned[f"{stem}.D{b}"] = X[members].mean(axis=1)
    return pd.DataFrame({**out, **binned}, index=X.index)
