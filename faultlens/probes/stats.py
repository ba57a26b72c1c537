"""Statistics for minimal-pair probes: bootstrap CIs, paired tests, effect sizes, Holm.

All tests are paired: the unit is a minimal *set* (cases sharing `meta["pair"]` that differ only
in the probe's variable), so between-item variance never masquerades as an effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_ci(x: np.ndarray, stat=np.mean, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of `stat` over the rows of `x` (vectorised resampling)."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return (float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))  # [n_boot, n]
    boots = stat(x[idx], axis=1)
    a = (1 - level) / 2
    return float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), same order as given."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return adj.tolist()


def cohens_h(p1: float, p2: float) -> float:
    """Effect size for a difference of two proportions (Cohen 1988): 2·asin√p1 − 2·asin√p2."""
    return float(2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2)))


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Exact McNemar p-value for paired booleans (binomial test on discordant pairs)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
    if n01 + n10 == 0:
        return 1.0
    return float(stats.binomtest(n01, n01 + n10, 0.5).pvalue)


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[~np.isnan(d)]
    if len(d) < 2 or np.allclose(d, 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="zsplit").pvalue)


def rank_biserial(x: np.ndarray, y: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014): effect size for Wilcoxon, in [-1, 1]."""
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[d != 0]
    if len(d) == 0:
        return 0.0
    r = stats.rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


def value_key(v: object) -> str:
    """Canonical text key of a variable value (numpy scalars and Python scalars agree)."""
    import json

    if hasattr(v, "item"):
        v = v.item()
    return json.dumps(v, sort_keys=True, default=str)


def plain(v: object) -> object:
    return v.item() if hasattr(v, "item") else v


@dataclass
class ValueStats:
    value: object
    n: int
    accuracy: float
    acc_ci: tuple[float, float]
    margin: float
    margin_ci: tuple[float, float]


@dataclass
class Comparison:
    value: object
    reference: object
    acc_diff: float
    margin_diff: float
    cohens_h: float
    rank_biserial: float
    p_mcnemar: float
    p_wilcoxon: float
    p_holm: float = 1.0


@dataclass
class VariableEffect:
    """Per-value statistics and paired comparisons of one variable."""

    variable: str
    values: list[ValueStats]
    omnibus_test: str
    omnibus_p: float
    comparisons: list[Comparison] = field(default_factory=list)
    correction: str = "holm"
    n_sets: int = 0

    def significant(self, alpha: float = 0.05) -> list[Comparison]:
        return [c for c in self.comparisons if c.p_holm < alpha]

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def variable_effect(df: pd.DataFrame, variable: str, order: list | None = None, reference: object | None = None,
                    seed: int = 0) -> VariableEffect:
    """Effect of one variable on paired margins/accuracy.

    Args:
        df: rows with columns ``pair`` (minimal-set id), ``value``, ``margin`` (target − foil
            log-prob), ``passed``.
        order: the values in display order (default: sorted).
        reference: value every other value is compared with (default: the best by accuracy).

    Tests: Friedman over complete sets when ≥3 values (Wilcoxon for 2); each value vs the
    reference with exact McNemar (accuracy) and Wilcoxon signed-rank (margin), combined per
    comparison by Bonferroni (2·min p), then Holm-corrected across comparisons.
    """
    df = df.copy()
    df["vkey"] = df["value"].map(value_key)
    values = [plain(v) for v in (order if order is not None else sorted(df["value"].unique(), key=lambda v: (str(type(v)), v)))]
    keys = [value_key(v) for v in values]
    margin = df.pivot_table(index="pair", columns="vkey", values="margin", aggfunc="mean").reindex(columns=keys)
    passed = df.pivot_table(index="pair", columns="vkey", values="passed", aggfunc="mean").reindex(columns=keys)
    complete = margin.dropna()
    vstats = []
    for v, k in zip(values, keys):
        m = margin[k].dropna().to_numpy()
        p = passed[k].dropna().to_numpy()
        vstats.append(ValueStats(v, len(m), float(p.mean()) if len(p) else float("nan"),
                                 bootstrap_ci(p, seed=seed), float(m.mean()) if len(m) else float("nan"),
                                 bootstrap_ci(m, seed=seed)))
    if len(keys) >= 3 and len(complete) >= 2:
        omnibus, p_omni = "friedman", float(stats.friedmanchisquare(*[complete[k] for k in keys]).pvalue)
    elif len(keys) == 2 and len(complete) >= 2:
        omnibus, p_omni = "wilcoxon", wilcoxon_p(complete[keys[0]], complete[keys[1]])
    else:
        omnibus, p_omni = "none", 1.0
    if reference is None:
        reference = max(vstats, key=lambda s: (s.accuracy, s.margin)).value
    reference = plain(reference)
    rk = value_key(reference)
    comps = []
    for v, k in zip(values, keys):
        if k == rk:
            continue
        both = complete[[k, rk]] if len(complete) else margin[[k, rk]].dropna()
        pb = passed.loc[both.index]
        comps.append(Comparison(
            value=v, reference=reference,
            acc_diff=float(pb[k].mean() - pb[rk].mean()), margin_diff=float((both[k] - both[rk]).mean()),
            cohens_h=cohens_h(float(pb[k].mean()), float(pb[rk].mean())),
            rank_biserial=rank_biserial(both[k], both[rk]),
            p_mcnemar=mcnemar_exact(pb[k] > 0.5, pb[rk] > 0.5), p_wilcoxon=wilcoxon_p(both[k], both[rk]),
        ))
    # Two tests per comparison: Bonferroni within it (2·min p), then Holm across comparisons.
    for c, ph in zip(comps, holm([min(1.0, 2 * min(c.p_mcnemar, c.p_wilcoxon)) for c in comps])):
        c.p_holm = ph
    return VariableEffect(variable, vstats, omnibus, p_omni, comps, n_sets=len(complete))
