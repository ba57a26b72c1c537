"""Grouped-CV evaluation: a planted internal signal is found and beats the black-box baseline;
its clean twin (labels unrelated to any feature) is reported as no better than chance."""

from __future__ import annotations

import numpy as np
import pytest

from faultlens.errors import FaultlensError
from faultlens.predict.dataset import depth_binned, load_cases
from faultlens.predict.evaluate import EvalConfig, evaluate, transfer

CFG = EvalConfig(n_boot=200, n_repeats=2)


def test_planted_signal_beats_dummy_and_blackbox(planted_store):
    data = load_cases(planted_store, ["planted"])
    ev = evaluate(data, CFG)
    assert ev["grouping"] == "family" and ev["n_groups"] == 3  # >= 3 families: leave-family-out
    assert ev["auroc_ci"][0] > 0.75
    assert ev["dummy_auroc"] == pytest.approx(0.5)
    assert ev["blackbox_auroc_ci"][0] < 0.5 < ev["blackbox_auroc_ci"][1]  # black-box features are noise
    assert ev["delta_vs_blackbox"]["ci"][0] > 0.1
    assert "beats the black-box baseline" in ev["verdict"]
    top = max(ev["importance"], key=ev["importance"].get)
    assert top.startswith("attn.key_span_mass")
    assert ev["univariate"]["attn.key_span_mass.L0"] < 0.25  # low span mass ⇒ failure
    # store-convention keys the report reads
    for k in ("auroc", "auroc_ci", "dummy_auroc", "roc", "reliability", "importance"):
        assert k in ev
    assert len(ev["roc"]["fpr"]) == len(ev["roc"]["tpr"]) and len(ev["reliability"]["prob_pred"]) >= 2


def test_clean_twin_is_reported_as_chance(clean_store):
    ev = evaluate(load_cases(clean_store, ["clean"]), CFG)
    assert ev["auroc_ci"][0] < 0.5  # never "above chance" on labels unrelated to the features
    assert "NOT" in ev["verdict"] and "above chance" not in ev["verdict"] and "beats" not in ev["verdict"]


def test_template_grouping_keeps_minimal_sets_together(planted_store):
    from faultlens.predict.evaluate import _folds

    data = load_cases(planted_store, ["planted"])
    groups = data.groups("template")
    for tr, te in _folds(data.y, groups, CFG):
        assert not set(groups[tr]) & set(groups[te])
    ev = evaluate(data, EvalConfig(group_by="template", n_boot=100, n_repeats=1))
    assert ev["grouping"] == "template" and ev["n_groups"] == 40


def test_transfer_across_models_of_different_depth(tmp_path, make_store):
    a = load_cases(make_store(tmp_path / "a.sqlite", "a", seed=1, model="A"), ["a"])
    b = load_cases(make_store(tmp_path / "b.sqlite", "b", seed=2, model="B"), ["b"])
    # model B is "deeper": rename its layer 1 to layer 3 and add a duplicate in between
    b.X = b.X.rename(columns={"attn.key_span_mass.L1": "attn.key_span_mass.L3"})
    b.X["attn.key_span_mass.L2"] = b.X["attn.key_span_mass.L3"]
    tr = transfer(a, b, CFG)
    assert tr["train_models"] == ["A"] and tr["test_models"] == ["B"]
    assert any(c.startswith("attn.key_span_mass.D") for c in tr["features"])
    assert tr["auroc_ci"][0] > 0.7 and tr["dummy_auroc"] == pytest.approx(0.5)


def test_depth_binning_averages_layers_into_thirds():
    import pandas as pd

    X = pd.DataFrame({f"x.L{i}": [float(i)] for i in range(6)} | {"other": [7.0]})
    out = depth_binned(X, 3)
    assert out.loc[0, "x.D0"] == 0.5 and out.loc[0, "x.D1"] == 2.5 and out.loc[0, "x.D2"] == 4.5
    assert out.loc[0, "other"] == 7.0


def test_too_few_failures_is_a_clear_error(tmp_path, make_store):
    st = make_store(tmp_path / "s.sqlite", "r", n_templates=4, per_template=2, planted=False, seed=5)
    data = load_cases(st, ["r"])
    data.y[:] = False
    data.y[0] = True
    with pytest.raises(FaultlensError, match="need at least 2 of each"):
        evaluate(data, CFG)


def test_unknown_run_and_featureless_runs_fail_clearly(tmp_path, planted_store):
    with pytest.raises(FaultlensError, match="Unknown run id"):
        load_cases(planted_store, ["nope"])
    planted_store.create_run("m", {}, run_id="empty")
    with pytest.raises(FaultlensError, match="no 'margin' results"):
        load_cases(planted_store, ["empty"])
    np.testing.assert_array_equal(load_cases(planted_store, ["planted"]).y.dtype, np.dtype(bool))
