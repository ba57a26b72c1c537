"""skops persistence: round trip, and refusal of files with untrusted types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from faultlens.errors import FaultlensError
from faultlens.predict import persist
from faultlens.predict.predictor import FailurePredictor


def _data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    return X, (X["a"] > 0.3).to_numpy()


@pytest.mark.parametrize("model", ["logistic", "gbm"])
def test_round_trip_keeps_predictions_names_and_info(tmp_path, model):
    X, y = _data()
    est = FailurePredictor(model=model, max_iter=30).fit(X, y)
    est.info_ = {"runs": ["r1"], "feature_set": "serve"}
    back = persist.load(persist.save(est, tmp_path / "p.skops"))
    np.testing.assert_allclose(back.risk(X), est.risk(X))
    assert list(back.feature_names_in_) == ["a", "b", "c"] and back.info_ == est.info_


def test_refuses_file_with_foreign_code(tmp_path):
    X, y = _data()
    est = FailurePredictor().fit(X, y)
    est.pipeline_ = make_pipeline(FunctionTransformer(eval), LogisticRegression())
    sio.dump(est, tmp_path / "evil.skops")
    with pytest.raises(FaultlensError, match="builtins.eval"):
        persist.load(tmp_path / "evil.skops")


def test_clear_errors_for_missing_or_wrong_files(tmp_path):
    with pytest.raises(FaultlensError, match="not found"):
        persist.load(tmp_path / "nope.skops")
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(FaultlensError, match="not a skops"):
        persist.load(tmp_path / "junk.skops")
    with pytest.raises(FaultlensError, match="not fitted"):
        persist.save(FailurePredictor(), tmp_path / "x.skops")
