"""Ray executor against a real local Ray instance and a real local PostgreSQL server, both started here.

The default suite keeps one equality test (a two-model scan on Ray stores exactly the rows the
local executor stores); the worker-kill test lives in test_scale_ray_fault.py (slow).
"""

from __future__ import annotations

import json
import logging
import os

import pandas as pd
import pytest

from faultlens.store import Store
from tests.pgserver import postgres_server, unavailable_reason
from tests.run_cli import run_cli
from tests.scale.tables import SCAN_ARGS, features_table, results_table

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.postgres,
              pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))]


@pytest.fixture(scope="module")
def ray_local():
    saved = os.environ.get("RAY_AUTH_MODE")  # ray.init sets it for the whole process; put it back after
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.ERROR,
             log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_two_model_ray_scan_equals_local_scan(two_models, ray_local, pg_url, tmp_path, capsys):
    local = tmp_path / "local.sqlite"
    code, _, err = run_cli(["scan", *two_models, *SCAN_ARGS, "--run-id", "loc", "--store", local], capsys)
    assert code == 0, err
    code, out, err = run_cli(["scan", *two_models, *SCAN_ARGS, "--run-id", "ray", "--executor", "ray", "--store", pg_url], capsys)
    assert code == 0, err
    assert "executor: ray" in out and "faultlens compare ray-1 ray-2" in out

    lo, pg = Store(local), Store(pg_url)
    got, want = results_table(pg, ["ray-1", "ray-2"]), results_table(lo, ["loc-1", "loc-2"])
    assert len(got) == 2 * (30 + 12)
    pd.testing.assert_frame_equal(got, want, check_exact=True)  # same units, same batches: bit-identical
    pd.testing.assert_frame_equal(features_table(pg, ["ray-1", "ray-2"]), features_table(lo, ["loc-1", "loc-2"]),
                                  check_exact=True)
    for r, l in (("ray-1", "loc-1"), ("ray-2", "loc-2")):
        cfg = pg.get_run(r)["config"]
        assert cfg["executor"]["kind"] == "ray" and cfg["executor"]["workers"] == 2
        assert lo.get_run(l)["config"]["executor"]["kind"] == "local"
        assert pg.get_run(r)["status"] == "done"
        fr = pg.to_pandas("findings", r)[["category", "message"]].sort_values("message").reset_index(drop=True)
        fl = lo.to_pandas("findings", l)[["category", "message"]].sort_values("message").reset_index(drop=True)
        pd.testing.assert_frame_equal(fr, fl)
    assert pg.get_artifact("ray-1", "probe/position/summary") == lo.get_artifact("loc-1", "probe/position/summary")


@pytest.mark.slow
def test_case_too_long_for_a_model_fails_on_the_workers_before_any_run(two_models, ray_local, pg_url, tmp_path, capsys):
    cases = tmp_path / "long.jsonl"
    cases.write_text(json.dumps({"id": "l", "prompt": "word " * 400, "target": " a", "foil": " b"}) + "\n")
    before = len(Store(pg_url).runs())
    code, _, err = run_cli(["scan", *two_models, "--cases", cases, "--executor", "ray", "--store", pg_url], capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "the model's context is 256" in lines[0], err
    assert len(Store(pg_url).runs()) == before
