"""`faultlens compare`: failure rates, Cohen's kappa on shared cases, and the size trend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.probes.probe_fakes import PlantedAdapter
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from faultlens.errors import FaultlensError
from faultlens.probes import compare as C
from faultlens.probes import load_all, probes
from faultlens.probes.base import ProbeConfig
from faultlens.probes.runner import ScanConfig, run_scan
from faultlens.store import Store

load_all()
FAMS = ("frequency", "sycophancy")


def _runs(store, p_goods, sizes=None):
    cfg = ProbeConfig(case_set="tiny", n_per_cell=40)
    cases = [c for f in FAMS for c in probes.get(f)().cases(cfg)]
    ids = []
    for i, p in enumerate(p_goods):
        rid = f"m{i}"
        run_scan(PlantedAdapter(cases, None, p_good=p), store, ScanConfig(model=rid, probes=FAMS, probe=cfg, features=False),
                 run_id=rid)
        if sizes:
            store.update_config(rid, n_params=sizes[i])
        ids.append(rid)
    return ids


def test_rates_agreement_and_trend(store):
    ids = _runs(store, [0.3, 0.6, 0.95], sizes=[1e5, 1e6, 1e7])
    df = C.load_results(store, ids)
    rates = C.failure_rates(df)
    fr = rates[rates["probe"] == "frequency"].set_index("run_id")["failure_rate"]
    assert fr["m0"] > fr["m1"] > fr["m2"]
    assert (rates["ci_low"] <= rates["failure_rate"]).all() and (rates["failure_rate"] <= rates["ci_high"]).all()
    (ag,) = [a for a in C.agreement(df, "m0", "m1") if a.probe == "frequency"]
    a = df[(df.run_id == "m0") & (df.probe == "frequency")].set_index("case_id")["failed"]
    b = df[(df.run_id == "m1") & (df.probe == "frequency")].set_index("case_id")["failed"].loc[a.index]
    assert ag.kappa == pytest.approx(cohen_kappa_score(a, b))
    # the fake draws one uniform per case, so a case failing for p_good=0.6 also fails for 0.3: nested failures
    assert ag.only_b == 0 and ag.both_fail == int(b.sum())
    sizes = C.run_sizes(store, ids)
    assert sizes == {"m0": 1e5, "m1": 1e6, "m2": 1e7}
    trend = {t.probe: t for t in C.scale_trend(df, sizes)}
    assert trend["frequency"].verdict == "improves with size" and trend["frequency"].slope < 0
    assert trend["frequency"].slope_ci[1] < 0 and trend["frequency"].spearman_rho == pytest.approx(-1.0)


def test_flat_scale_is_not_called_an_improvement(store):
    ids = _runs(store, [0.7, 0.7, 0.7])
    df = C.load_results(store, ids)
    trend = C.scale_trend(df, C.parse_sizes("1e5,1e6,1e7", ids))
    assert all(t.verdict == "no clear change with size" for t in trend)
    assert all(np.isnan(a.kappa) or a.kappa == pytest.approx(1.0) for a in C.agreement(df, ids[0], ids[1]))


def test_parse_sizes():
    assert C.parse_sizes("a=125M,b=7B", ["a", "b"]) == {"a": 125e6, "b": 7e9}
    assert C.parse_sizes("2.6e5, 1k", ["a", "b"]) == {"a": 2.6e5, "b": 1e3}
    with pytest.raises(FaultlensError, match="one per run"):
        C.parse_sizes("1,2,3", ["a", "b"])
    with pytest.raises(FaultlensError, match="not a number"):
        C.parse_sizes("big,2", ["a", "b"])
    with pytest.raises(FaultlensError, match="not being compared"):
        C.parse_sizes("z=1", ["a", "b"])


def test_cli_compare(tmp_path):
    path = tmp_path / "s.sqlite"
    st = Store(path)
    ids = _runs(st, [0.4, 0.9])
    out = tmp_path / "cmp.json"
    from faultlens.cli import app

    res = CliRunner().invoke(app, ["compare", *ids, "--sizes", "1e5,1e7", "--store", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "failure rate" in res.output and "agreement" in res.output
    data = json.loads(out.read_text())
    assert {r["probe"] for r in data["rates"]} == set(FAMS) and len(data["scale"]) == 2
    assert all(s["verdict"] == "improves with size" for s in data["scale"]) and len(data["agreement"]) == 2


def test_cli_compare_unknown_run(tmp_path):
    from faultlens.cli import app

    res = CliRunner().invoke(app, ["compare", "nope", "nada", "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code != 0
