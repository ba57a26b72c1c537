"""FailurePredictor: the sklearn contract, contributions, and a planted signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import check_estimator

from faultlens.errors import FaultlensError
from faultlens.predict.predictor import FailurePredictor


def _failed_checks(est):
    return [r for r in check_estimator(est, on_fail=None) if r["status"] == "failed"]


def test_logistic_passes_check_estimator():
    assert _failed_checks(FailurePredictor()) == []


@pytest.mark.slow
def test_gbm_passes_check_estimator():
    assert _failed_checks(FailurePredictor(model="gbm", max_iter=20)) == []


def test_unknown_model_fails_with_suggestion():
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.r_[np.zeros(10), np.ones(10)]
    with pytest.raises(FaultlensError, match="Did you mean: logistic"):
        FailurePredictor(model="logistc").fit(X, y)


def _planted(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["signal", "noise1", "noise2", "noise3"])
    y = (X["signal"] + 0.5 * rng.normal(size=n)) > 0.8
    return X, y.to_numpy()


@pytest.mark.parametrize("model", ["logistic", "gbm"])
def test_learns_planted_signal_and_not_noise(model):
    X, y = _planted()
    est = FailurePredictor(model=model, max_iter=100)
    assert cross_val_score(est, X, y, scoring="roc_auc", cv=5).mean() > 0.85
    rng = np.random.default_rng(1)
    y_noise = rng.random(len(y)) < y.mean()  # the clean twin: labels unrelated to X
    assert cross_val_score(clone(est), X, y_noise, scoring="roc_auc", cv=5).mean() < 0.65


def test_linear_contributions_are_exact_occlusion():
    X, y = _planted()
    est = FailurePredictor(C=0.5).fit(X, y)
    c = est.contributions(X.iloc[:7])
    lr, imp, sc = est.pipeline_[-1], est.pipeline_[0], est.pipeline_[1]
    z = sc.transform(imp.transform(X.iloc[:7].to_numpy()))
    zmed = sc.transform(est.medians_[None])
    np.testing.assert_allclose(c, lr.coef_[0] * (z - zmed), atol=1e-6)
    assert np.abs(c[:, 0]).mean() > 5 * np.abs(c[:, 1:]).mean()  # the signal dominates


def test_risk_is_probability_of_failure_class_and_nan_is_imputed():
    X, y = _planted()
    est = FailurePredictor().fit(X, y)
    hi = X.iloc[[int(np.argmax(X["signal"]))]]
    lo = X.iloc[[int(np.argmin(X["signal"]))]]
    assert est.risk(hi)[0] > 0.9 > 0.1 > est.risk(lo)[0]
    withnan = hi.copy()
    withnan.iloc[0, 1] = np.nan
    assert np.isfinite(est.risk(withnan)).all()
