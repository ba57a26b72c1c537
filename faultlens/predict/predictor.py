"""`FailurePredictor`: a scikit-learn classifier of "this case will fail" from per-case features.

It follows the estimator contract (`__init__` only stores parameters, `fit` learns and returns
self, fitted state ends in ``_``), so `clone`, `Pipeline`, `cross_val_predict` and
`check_estimator` work on it. The model inside is chosen by name from `predictor_models`:
``logistic`` (default: median imputation + standardisation + L2 logistic regression) or ``gbm``
(histogram gradient boosting, which takes missing values natively).

`contributions` explains one prediction: each feature's change of the failure log-odds when that
feature alone is set back to its training median (occlusion; for the linear model this is exactly
``coef_j * (z_j - median z_j)``).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from faultlens.registry import Registry

ModelBuilder = Callable[["FailurePredictor"], Pipeline]
predictor_models: Registry[ModelBuilder] = Registry("predictor model", "predictor-models")


@predictor_models.register("logistic")
def _logistic(p: "FailurePredictor") -> Pipeline:
    """Median imputation, standardisation, L2-regularised logistic regression (C = inverse strength)."""
    return make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=p.C, class_weight=p.class_weight, max_iter=p.max_iter),
    )


@predictor_models.register("gbm")
def _gbm(p: "FailurePredictor") -> Pipeline:
    """Histogram gradient boosting (shallow trees, early stopping off so small data stay deterministic)."""
    return make_pipeline(HistGradientBoostingClassifier(
        max_depth=3, learning_rate=0.1, max_iter=p.max_iter if p.max_iter < 1000 else 200, l2_regularization=1.0 / p.C,
        class_weight=p.class_weight, early_stopping=False, random_state=p.random_state))


class FailurePredictor(ClassifierMixin, BaseEstimator):
    """Predicts from a case's features whether the model will fail it.

    Args:
        model: name in `predictor_models` ("logistic" or "gbm").
        C: inverse regularisation strength (logistic C; gbm uses ``l2_regularization = 1 / C``).
        class_weight: "balanced" (failures are usually rare) or None.
        max_iter: optimiser iterations (logistic) / boosting rounds (gbm, capped at 200 by default).
        random_state: seed for the gbm.

    Fit with a DataFrame to keep feature names (`feature_names_in_`); the guard and `score`
    build their inputs by those names. Labels can be anything sklearn accepts; `risk` returns
    the probability of the *last* class (True / 1 = "fails").

    Example:
        >>> import numpy as np
        >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2))]; y = np.r_[np.zeros(20), np.ones(20)]
        >>> FailurePredictor().fit(X, y).predict(np.array([[0.0, 0.0], [1.0, 1.0]])).tolist()
        [0.0, 1.0]
    """

    def __init__(self, model: str = "logistic", C: float = 1.0, class_weight: str | None = "balanced",
                 max_iter: int = 1000, random_state: int = 0) -> None:
        self.model = model
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # imputed (logistic) or native (gbm)
        return tags

    def fit(self, X, y) -> "FailurePredictor":
        """Learn from features ``X [n, f]`` and labels ``y [n]``; returns self."""
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self.pipeline_ = predictor_models.get(self.model)(self).fit(X, y)
        with warnings.catch_warnings():  # an all-missing column (a family without key spans) has median NaN → 0
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0) if X.size else np.zeros(X.shape[1])
        self.medians_ = np.nan_to_num(med)
        final = self.pipeline_[-1]
        self.n_iter_ = np.atleast_1d(getattr(final, "n_iter_", self.max_iter)).max()  # iterations run
        return self

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan")

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (columns in `classes_` order)."""
        X = self._checked(X)
        return self.pipeline_.predict_proba(X)

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the last class ``[n]`` (binary) or per-class scores ``[n, k]``."""
        p = np.clip(self.predict_proba(X), 1e-12, 1 - 1e-12)
        if p.shape[1] == 2:
            return np.log(p[:, 1]) - np.log(p[:, 0])
        return np.log(p)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def risk(self, X) -> np.ndarray:
        """Probability of the last class (the failure class for labels False/True or 0/1), ``[n]``."""
        return self.predict_proba(X)[:, -1]

    def contributions(self, X) -> np.ndarray:
        """Per-feature change of the last class's log-odds vs the feature at its training median, ``[n, f]``.

        Occlusion: ``logit(x) - logit(x with feature j := median_j)``. Positive = pushes towards failure.
        """
        Xc = np.asarray(self._checked(X), dtype=float)
        n, f = Xc.shape
        base = _logit(self.pipeline_.predict_proba(Xc)[:, -1])  # [n]
        occl = np.repeat(Xc[:, None, :], f, axis=1)  # [n, f, f]: row j has feature j replaced
        idx = np.arange(f)
        occl[:, idx, idx] = self.medians_[idx]
        alt = _logit(self.pipeline_.predict_proba(occl.reshape(n * f, f))[:, -1]).reshape(n, f)
        return base[:, None] - alt


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)
