"""Honest evaluation of the failure predictor: grouped cross-validation against baselines.

Every number is out-of-fold: the folds are grouped (probe family when a run has at least
`min_families` families, else template / minimal set), so near-duplicate cases never sit on both
sides of a split. Three models share the same folds: `FailurePredictor` on the chosen feature
set, the same estimator on the black-box-only set, and `DummyClassifier` (class prior). AUROC
and AUPRC get cluster-bootstrap CIs (resampling whole templates, because cases of one template are
correlated), and the predictor's AUROC gain over the black-box baseline gets a paired bootstrap
CI: if it straddles 0, internals did not help on this data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import calibration_curve
from sklearn.dummy import DummyClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedGroupKFold

from faultlens.errors import FaultlensError
from faultlens.predict.dataset import CaseTable
from faultlens.predict.feature_sets import select
from faultlens.predict.predictor import FailurePredictor


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate.

    Attributes:
        features: feature set of the predictor (see `feature_sets`).
        baseline: feature set of the black-box baseline.
        group_by: "auto" (family if >= `min_families` families, else template), "family", "template".
        n_splits: folds (reduced when there are fewer groups or failures).
        n_boot: bootstrap resamples for the CIs.
        n_repeats: permutation-importance repeats per fold.
        seed: seed of folds, bootstrap and permutations.
        importance: compute permutation importance (the slowest part).
        estimator: the predictor to evaluate (cloned per fold).
    """

    features: str = "all"
    baseline: str = "blackbox"
    group_by: str = "auto"
    min_families: int = 3
    n_splits: int = 5
    n_boot: int = 1000
    n_repeats: int = 5
    seed: int = 0
    importance: bool = True
    estimator: FailurePredictor = field(default_factory=FailurePredictor)


def choose_grouping(data: CaseTable, cfg: EvalConfig) -> str:
    if cfg.group_by != "auto":
        return cfg.group_by
    return "family" if data.meta["probe"].nunique() >= cfg.min_families else "template"


def _folds(y: np.ndarray, groups: np.ndarray, cfg: EvalConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    n_groups = len(np.unique(groups))
    k = min(cfg.n_splits, n_groups, int(y.sum()), int((~y).sum()))
    if k < 2:
        raise FaultlensError(
            f"Cannot cross-validate: {int(y.sum())} failures, {int((~y).sum())} passes in {n_groups} groups; "
            "need at least 2 of each. Scan more probes or cases.")
    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(np.zeros(len(y)), y, groups))


def out_of_fold(est, X: pd.DataFrame, y: np.ndarray, folds) -> np.ndarray:
    """Failure probability of every row from a model that never saw its group, ``[n]``."""
    p = np.full(len(y), np.nan)
    for tr, te in folds:
        m = clone(est).fit(X.iloc[tr], y[tr])
        p[te] = m.predict_proba(X.iloc[te])[:, list(m.classes_).index(True)]
    return p


def _group_bootstrap(y, scores: dict[str, np.ndarray], groups, n_boot: int, seed: int):
    """Cluster-bootstrap draws of AUROC and AUPRC per model: ``{name: (aurocs [b], auprcs [b])}``."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    out = {k: ([], []) for k in scores}
    for _ in range(n_boot):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(uniq), len(uniq))])
        yb = y[idx]
        if yb.all() or not yb.any():
            continue
        for k, s in scores.items():
            out[k][0].append(roc_auc_score(yb, s[idx]))
            out[k][1].append(average_precision_score(yb, s[idx]))
    return {k: (np.array(a), np.array(b)) for k, (a, b) in out.items()}


def _ci(draws: np.ndarray) -> list[float]:
    return [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))] if len(draws) else [float("nan")] * 2


def _importance(est, X: pd.DataFrame, y: np.ndarray, folds, cfg: EvalConfig) -> dict[str, float]:
    """Mean drop of held-out AUROC when one feature's values are shuffled (per fold, then averaged)."""
    total = np.zeros(X.shape[1])
    n = 0
    for tr, te in folds:
        if y[te].all() or not y[te].any():
            continue
        m = clone(est).fit(X.iloc[tr], y[tr])
        r = permutation_importance(m, X.iloc[te], y[te], scoring="roc_auc", n_repeats=cfg.n_repeats, random_state=cfg.seed)
        total += r.importances_mean
        n += 1
    return {c: float(v / max(n, 1)) for c, v in zip(X.columns, total)}


def univariate_auroc(X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """AUROC of each feature alone (oriented: values < 0.5 mean lower values signal failure)."""
    out = {}
    for c in X.columns:
        v = X[c].to_numpy()
        ok = np.isfinite(v)
        if ok.sum() > 2 and y[ok].any() and not y[ok].all() and np.ptp(v[ok]) > 0:
            out[c] = float(roc_auc_score(y[ok], v[ok]))
    return out


def _fold_mean_auroc(y, p, folds) -> float:
    vals = [roc_auc_score(y[te], p[te]) for _, te in folds if y[te].any() and not y[te].all()]
    return float(np.mean(vals)) if vals else float("nan")


def _metrics(y, p, draws) -> dict:
    return {"auroc": float(roc_auc_score(y, p)), "auroc_ci": _ci(draws[0]), "auprc": float(average_precision_score(y, p)),
            "auprc_ci": _ci(draws[1]), "brier": float(brier_score_loss(y, p))}


def evaluate(data: CaseTable, cfg: EvalConfig = EvalConfig()) -> dict:
    """Grouped-CV evaluation; returns the `predictor/eval` JSON (store conventions plus extras).

    Keys: auroc, auroc_ci, auprc, auprc_ci, brier (the predictor); dummy_* and blackbox_* for the
    baselines; delta_vs_blackbox {mean, ci}; roc {fpr, tpr}; reliability {prob_pred, prob_true};
    importance {feature: mean AUROC drop}; univariate {feature: AUROC}; risk_by_value; and the
    setup (grouping, n_groups, n_cases, n_failures, feature names).
    """
    y = data.y.astype(bool)
    grouping = choose_grouping(data, cfg)
    groups = data.groups(grouping)
    folds = _folds(y, groups, cfg)
    cols = select(cfg.features, data.X.columns)
    bcols = select(cfg.baseline, data.X.columns)
    if not cols:
        raise FaultlensError(f"Feature set {cfg.features!r} matches none of the stored features.")
    X = data.X[cols]
    # The dummy's constant score has AUROC 0.5 by definition; fitting it per fold would only add
    # fold-to-fold base-rate noise to a pooled AUROC, so it predicts the overall prior.
    scores = {"predictor": out_of_fold(cfg.estimator, X, y, folds),
              "dummy": DummyClassifier(strategy="prior").fit(X, y).predict_proba(X)[:, 1]}
    if bcols:
        scores["blackbox"] = out_of_fold(cfg.estimator, data.X[bcols], y, folds)
    # bootstrap clusters are templates (the unit of near-duplication), whatever the CV grouping
    draws = _group_bootstrap(y, scores, data.groups("template"), cfg.n_boot, cfg.seed)
    per = {k: _metrics(y, s, draws[k]) for k, s in scores.items()}
    ev = dict(per["predictor"])
    ev["auroc_fold_mean"] = _fold_mean_auroc(y, scores["predictor"], folds)  # pooling-bias check (Forman & Scholz 2010)
    for k in ("dummy", "blackbox"):
        if k in per:
            ev.update({f"{k}_{m}": v for m, v in per[k].items()})
    if "blackbox" in draws:
        d = draws["predictor"][0] - draws["blackbox"][0]
        ev["delta_vs_blackbox"] = {"mean": float(per["predictor"]["auroc"] - per["blackbox"]["auroc"]), "ci": _ci(d)}
    fpr, tpr, _ = roc_curve(y, scores["predictor"])
    prob_true, prob_pred = calibration_curve(y, scores["predictor"], n_bins=min(10, max(2, int(y.sum()) // 4)), strategy="quantile")
    ev["roc"] = {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist()}
    ev["reliability"] = {"prob_pred": prob_pred.round(4).tolist(), "prob_true": prob_true.round(4).tolist()}
    ev["importance"] = _importance(cfg.estimator, X, y, folds, cfg) if cfg.importance else {}
    ev["univariate"] = univariate_auroc(X, y)
    ev["risk_by_value"] = _risk_by_value(data, y, scores["predictor"])
    ev["per_family"] = _per_family(data, y, scores)
    fam = [v for v in ev["per_family"].values() if v.get("auroc") is not None]
    if fam:  # family base rates cannot inflate this one: each AUROC ranks cases of one family only
        w = np.array([v["n"] for v in fam], dtype=float)
        for k in ("auroc", "blackbox_auroc"):
            if all(v.get(k) is not None for v in fam):
                ev[f"within_family_{k}"] = float(np.average([v[k] for v in fam], weights=w))
    ev.update(grouping=grouping, n_groups=int(len(np.unique(groups))), n_folds=len(folds), n_cases=int(len(y)),
              n_failures=int(y.sum()), feature_set=cfg.features, baseline_set=cfg.baseline, n_features=len(cols),
              features=cols, baseline_features=bcols, estimator=repr(cfg.estimator), verdict=verdict(ev))
    return ev


def _risk_by_value(data: CaseTable, y, p) -> list[dict]:
    """Observed failure rate vs mean out-of-fold risk per (probe, variable value)."""
    df = pd.DataFrame({"probe": data.meta["probe"], "value": data.meta["value"].astype(str), "fail": y, "risk": p})
    g = df.groupby(["probe", "value"], sort=False).agg(n=("fail", "size"), fail_rate=("fail", "mean"), mean_risk=("risk", "mean"))
    return [{"probe": k[0], "value": k[1], **{c: float(v) for c, v in r.items()}} for k, r in g.iterrows()]


def _per_family(data: CaseTable, y, scores: dict[str, np.ndarray]) -> dict[str, dict]:
    """Out-of-fold AUROC inside each probe family (None when a family has one class only)."""
    out = {}
    for fam in sorted(data.meta["probe"].unique()):
        m = (data.meta["probe"] == fam).to_numpy()
        row = {"n": int(m.sum()), "n_failures": int(y[m].sum())}
        for k in ("predictor", "blackbox"):
            if k in scores:
                ok = y[m].any() and not y[m].all()
                row["auroc" if k == "predictor" else "blackbox_auroc"] = float(roc_auc_score(y[m], scores[k][m])) if ok else None
        out[fam] = row
    return out


def verdict(ev: dict) -> str:
    """One honest line: does the predictor beat the dummy and the black-box baseline?"""
    lo = ev["auroc_ci"][0]
    beats_dummy = lo > 0.5
    msg = f"AUROC {ev['auroc']:.3f} [{ev['auroc_ci'][0]:.3f}, {ev['auroc_ci'][1]:.3f}]: "
    if beats_dummy:
        msg += "above chance"
    elif ev["auroc_ci"][1] < 0.5:  # grouped CV on label-free data tends to land below 0.5 (anti-learning)
        msg += "NOT better than the dummy baseline (below chance: no usable signal)"
    else:
        msg += "NOT distinguishable from the dummy baseline (CI includes 0.5)"
    if "delta_vs_blackbox" in ev:
        d = ev["delta_vs_blackbox"]
        if d["ci"][0] > 0 and beats_dummy:
            msg += f"; beats the black-box baseline by {d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
        elif d["ci"][0] > 0:
            msg += f"; scores above the black-box baseline ({d['mean']:+.3f}) but neither is above chance"
        elif d["ci"][1] < 0:
            msg += f"; WORSE than the black-box baseline by {d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
        else:
            msg += f"; does NOT beat the black-box baseline ({d['mean']:+.3f}, CI [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] includes 0)"
    return msg


def transfer(train: CaseTable, test: CaseTable, cfg: EvalConfig = EvalConfig(), n_bins: int = 3) -> dict:
    """Fit on `train` (e.g. model A's runs), score `test` (model B's runs).

    Per-layer features are averaged into `n_bins` relative-depth bins first (`depth_binned`), so
    models of different depth share feature names; only features both sides have are used.
    Returns AUROC / AUPRC with cluster-bootstrap CIs (groups of `test`) for the predictor, the
    black-box baseline and the dummy, plus the features used.
    """
    from faultlens.predict.dataset import depth_binned

    Xa, Xb = depth_binned(train.X, n_bins), depth_binned(test.X, n_bins)
    shared = [c for c in Xa.columns if c in set(Xb.columns) and Xa[c].notna().any() and Xb[c].notna().any()]
    cols, bcols = select(cfg.features, shared), select(cfg.baseline, shared)
    ya, yb = train.y.astype(bool), test.y.astype(bool)
    if ya.all() or not ya.any() or yb.all() or not yb.any():
        raise FaultlensError("Transfer needs failures and passes on both sides; scan more cases.")
    if not cols:
        raise FaultlensError("The two sides share no features; were both scanned with features on?")
    scores = {"predictor": clone(cfg.estimator).fit(Xa[cols], ya).risk(Xb[cols]),
              "dummy": np.full(len(yb), ya.mean())}
    if bcols:
        scores["blackbox"] = clone(cfg.estimator).fit(Xa[bcols], ya).risk(Xb[bcols])
    draws = _group_bootstrap(yb, scores, test.groups("template"), cfg.n_boot, cfg.seed)
    per = {k: _metrics(yb, s, draws[k]) for k, s in scores.items()}
    out = dict(per["predictor"])
    for k in ("dummy", "blackbox"):
        if k in per:
            out.update({f"{k}_{m}": v for m, v in per[k].items()})
    if "blackbox" in draws:
        d = draws["predictor"][0] - draws["blackbox"][0]
        out["delta_vs_blackbox"] = {"mean": float(per["predictor"]["auroc"] - per["blackbox"]["auroc"]), "ci": _ci(d)}
    out.update(train_models=sorted(train.meta["model"].unique()), test_models=sorted(test.meta["model"].unique()),
               n_train=int(len(ya)), n_test=int(len(yb)), n_features=len(cols), features=cols, depth_bins=n_bins)
    out["verdict"] = verdict(out)
    return out
