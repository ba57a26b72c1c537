"""Cross-model comparison of probe runs: failure rates side by side, case agreement, and scale.

Three questions, one function each:
* `failure_rates`: per run and probe family, the share of failing cases with a bootstrap CI over
  minimal sets (sets are the independent unit; their cases are paired).
* `agreement`: for two runs, which shared cases fail in both / only one, and Cohen's kappa of
  the failure indicators (sklearn `cohen_kappa_score`; Cohen 1960).
* `scale_trend`: does a family's failure rate fall with parameter count? OLS slope of failure
  rate on log10(n_params) with a bootstrap CI (sets resampled within each run), and Spearman's
  rho over runs. "Improves with size" only when the whole slope CI is below zero
  (the seed's "scale is not a panacea"; cf. McKenzie et al. 2023, arXiv:2306.09479).
This file does no I/O beyond reading a `Store`; the CLI is `faultlens/commands/compare.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

from faultlens.errors import FaultlensError
from faultlens.probes.stats import bootstrap_ci


def load_results(store, run_ids: list[str]) -> pd.DataFrame:
    """Margin results of the runs: columns run_id, probe, case_id, pair, value, failed."""
    for r in run_ids:
        store.require_run(r)
    df = store.to_pandas("results", run_ids)
    df = df[df["metric"] == "margin"].copy()
    if df.empty:
        raise FaultlensError(f"Runs {', '.join(run_ids)} have no probe results; run `faultlens scan` first.")
    df["pair"] = [d.get("pair") or c.rsplit("/", 1)[0] for d, c in zip(df["detail"], df["case_id"])]
    df["failed"] = ~df["passed"].astype(bool)
    return df[["run_id", "probe", "case_id", "pair", "value", "failed"]]


def run_sizes(store, run_ids: list[str], given: dict[str, float] | None = None) -> dict[str, float | None]:
    """Parameter count per run: `given` first, else the run config's n_params (top level or under 'adapter')."""
    out = {}
    for r in run_ids:
        cfg = store.require_run(r)["config"] or {}
        n = (given or {}).get(r) or cfg.get("n_params") or (cfg.get("adapter") or {}).get("n_params")
        out[r] = float(n) if n else None
    return out


def _set_rates(g: pd.DataFrame) -> np.ndarray:
    return g.groupby("pair")["failed"].mean().to_numpy(dtype=float)  # one failure rate per minimal set


def failure_rates(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (run, probe): n cases, n sets, failure rate and its 95% bootstrap CI over sets."""
    rows = []
    for (run, probe), g in df.groupby(["run_id", "probe"], sort=False):
        per_set = _set_rates(g)
        lo, hi = bootstrap_ci(per_set, seed=seed)
        rows.append({"run_id": run, "probe": probe, "n_cases": len(g), "n_sets": len(per_set),
                     "failure_rate": float(g["failed"].mean()), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


@dataclass
class Agreement:
    run_a: str
    run_b: str
    probe: str
    n_shared: int
    both_fail: int
    only_a: int
    only_b: int
    kappa: float  # NaN when either run's failures are constant (kappa undefined)


def agreement(df: pd.DataFrame, run_a: str, run_b: str) -> list[Agreement]:
    """Per probe: case-level failure agreement between two runs on their shared case ids."""
    out = []
    for probe in sorted(set(df["probe"])):
        a = df[(df["run_id"] == run_a) & (df["probe"] == probe)].set_index("case_id")["failed"]
        b = df[(df["run_id"] == run_b) & (df["probe"] == probe)].set_index("case_id")["failed"]
        shared = a.index.intersection(b.index)
        if len(shared) == 0:
            continue
        fa, fb = a.loc[shared].to_numpy(bool), b.loc[shared].to_numpy(bool)
        kappa = float("nan") if len(set(fa)) < 2 and len(set(fb)) < 2 else float(cohen_kappa_score(fa, fb))
        out.append(Agreement(run_a, run_b, probe, len(shared), int((fa & fb).sum()), int((fa & ~fb).sum()),
                             int((~fa & fb).sum()), kappa))
    return out


@dataclass
class ScaleTrend:
    probe: str
    n_runs: int
    slope: float  # change in failure rate per 10x parameters
    slope_ci: tuple[float, float]
    spearman_rho: float
    spearman_p: float
    verdict: str


def scale_trend(df: pd.DataFrame, sizes: dict[str, float | None], n_boot: int = 1000, seed: int = 0) -> list[ScaleTrend]:
    """Per probe: slope of failure rate on log10(n_params) with a bootstrap CI, and Spearman rho.

    Needs ≥ 2 runs with a known size; runs without one are skipped.
    """
    rng = np.random.default_rng(seed)
    known = {r: s for r, s in sizes.items() if s}
    out = []
    for probe in sorted(set(df["probe"])):
        runs = [r for r in known if ((df["run_id"] == r) & (df["probe"] == probe)).any()]
        if len(runs) < 2 or len({known[r] for r in runs}) < 2:
            continue
        x = np.log10([known[r] for r in runs])
        per_set = [_set_rates(df[(df["run_id"] == r) & (df["probe"] == probe)]) for r in runs]
        y = np.array([s.mean() for s in per_set])
        slope = float(np.polyfit(x, y, 1)[0])
        boots = np.empty(n_boot)
        for i in range(n_boot):  # resample minimal sets within each run, refit
            yb = [s[rng.integers(0, len(s), len(s))].mean() for s in per_set]
            boots[i] = np.polyfit(x, yb, 1)[0]
        ci = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
        rho, p = (sps.spearmanr(x, y) if len(runs) >= 3 else (float(np.sign(slope)), float("nan")))
        eps = 1e-9  # a degenerate bootstrap (e.g. every case fails in every run) gives ±0.0, not a trend
        verdict = ("improves with size" if ci[1] < -eps else "worsens with size" if ci[0] > eps
                   else "no clear change with size")
        out.append(ScaleTrend(probe, len(runs), slope, ci, float(rho), float(p), verdict))
    return out


def parse_sizes(spec: str | None, run_ids: list[str]) -> dict[str, float]:
    """`--sizes` text: "RUN=N,RUN=N" or N,N,... in run order (N may be 2.6e5, 7B, 125M)."""
    if not spec:
        return {}
    mult = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}

    def num(s: str) -> float:
        s = s.strip().lower()
        try:
            return float(s[:-1]) * mult[s[-1]] if s and s[-1] in mult else float(s)
        except ValueError:
            raise FaultlensError(f"--sizes: {s!r} is not a number; use e.g. 260000, 2.6e5, 125M or 7B.") from None

    parts = [p for p in spec.split(",") if p.strip()]
    if all("=" in p for p in parts):
        out = {k.strip(): num(v) for k, v in (p.split("=", 1) for p in parts)}
        unknown = set(out) - set(run_ids)
        if unknown:
            raise FaultlensError(f"--sizes names run(s) {', '.join(sorted(unknown))} that are not being compared.")
        return out
    if len(parts) != len(run_ids):
        raise FaultlensError(f"--sizes gives {len(parts)} sizes for {len(run_ids)} runs; give one per run, in order, or RUN=N pairs.")
    return {r: num(p) for r, p in zip(run_ids, parts)}
