"""The local executor: several models in one command, one run each, same rows as the single-model runner."""

from __future__ import annotations

import numpy as np
import pytest

from faultlens.store import Store
from tests.run_cli import run_cli
from tests.scale.tables import SCAN_ARGS, features_table, results_table


def test_two_model_local_scan_matches_the_single_model_runner(two_models, tmp_path, capsys):
    """Known answer: `run_scan` model by model is the reference; the multi-model scan must store the same rows."""
    from faultlens.models.hf import HFAdapter
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig, run_scan

    multi = tmp_path / "multi.sqlite"
    code, out, err = run_cli(["scan", *two_models, *SCAN_ARGS, "--run-id", "m", "--store", multi], capsys)
    assert code == 0, err
    assert "failure rate by probe family" in out and "kappa" in out and "faultlens compare m-1 m-2" in out
    st = Store(multi)
    assert {r: st.get_run(r)["status"] for r in ("m-1", "m-2")} == {"m-1": "done", "m-2": "done"}
    cfg1 = st.get_run("m-1")["config"]
    assert cfg1["model"] == str(two_models[0]) and cfg1["executor"]["kind"] == "local" and cfg1["n_params"] > 0

    ref = Store(tmp_path / "ref.sqlite")
    for i, path in enumerate(two_models):
        ad = HFAdapter.load(str(path))
        cfg = ScanConfig(model=str(path), probes=("position", "option_order"), chunk=4,
                         probe=ProbeConfig(n_per_cell=6))
        run_scan(ad, ref, cfg, run_id=f"ref-{i}")
    got, want = results_table(st, ["m-1", "m-2"]), results_table(ref, ["ref-0", "ref-1"])
    assert len(got) == 2 * (30 + 12) and len(got) == len(want)
    assert (got.drop(columns=["score", "detail"]) == want.drop(columns=["score", "detail"])).all().all()
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5, atol=1e-5)  # batches differ: tolerance
    fg, fw = features_table(st, ["m-1", "m-2"]), features_table(ref, ["ref-0", "ref-1"])
    assert (fg[["model", "case_id", "name"]] == fw[["model", "case_id", "name"]]).all().all()
    assert st.count("artifacts", "m-1") == 2 and st.count("artifacts", "m-2") == 2  # one summary per probe


def test_crash_mid_scan_then_resume_scores_every_case_once(two_models, tmp_path):
    """A scan that dies after some units, resumed, stores each (run, probe, case) exactly once."""
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig
    from faultlens.scale import ExecutorConfig, ModelSpec, scan_models

    specs = [ModelSpec(str(p)) for p in two_models]
    cfg = ScanConfig(model="", probes=("position",), features=False, chunk=3, probe=ProbeConfig(n_per_cell=6))
    ex = ExecutorConfig(kind="local", shard_size=7)
    target = str(tmp_path / "s.sqlite")

    class Crash(Exception):
        pass

    def die_after_3(_name, done, _total):
        if done == 3:
            raise Crash

    with pytest.raises(Crash):
        scan_models(specs, target, cfg, ex, run_id="c", progress=die_after_3)
    st = Store(target)
    partial = st.count("results", "c-1") + st.count("results", "c-2")
    assert 0 < partial < 60 and st.get_run("c-1")["status"] == "running"
    again = scan_models(specs, target, cfg, ex, run_id="c", resume=True)
    assert sum(r.n_skipped for r in again.reports) == partial  # nothing stored is scored again
    res = st.to_pandas("results", ["c-1", "c-2"])
    assert len(res) == 60 and not res.duplicated(["run_id", "probe", "case_id", "metric"]).any()
    assert {st.get_run(r)["status"] for r in ("c-1", "c-2")} == {"done"}
