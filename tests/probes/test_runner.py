"""Resumable scans: a real subprocess killed with SIGKILL mid-run, then resumed, scores every case once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from faultlens.models.tiny import save_tiny
from faultlens.store import Store


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny("llama", tmp_path_factory.mktemp("m") / "tiny-llama")


def _scan(tiny_dir, store, *extra):
    return [sys.executable, "-m", "faultlens.cli", "scan", str(tiny_dir), "--probes", "position", "--chunk", "3", "--n-per-cell", "24",
            "--run-id", "r1", "--store", str(store), *extra]


def _count(store_path) -> int:
    try:
        return Store(store_path).count("results", "r1")
    except Exception:  # the child may not have created the tables yet
        return 0


def test_sigkill_then_resume_scores_each_case_exactly_once(tiny_dir, tmp_path):
    store_path = tmp_path / "s.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for kill_after in (9, 60):  # killed twice, at different points
        proc = subprocess.Popen(_scan(tiny_dir, store_path, *(["--resume"] if kill_after != 9 else [])),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 300
        while _count(store_path) < kill_after and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the scan finished before it could be killed: " + proc.stderr.read().decode()[-500:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < _count(store_path) < 120
    done = subprocess.run(_scan(tiny_dir, store_path, "--resume"), capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    store = Store(store_path)
    res = store.to_pandas("results", "r1")
    assert len(res) == 120 and res["case_id"].is_unique
    feats = store.to_pandas("features", "r1")
    per_case = feats.groupby("case_id").size()
    assert len(per_case) == 120 and per_case.nunique() == 1  # a chunk's features land with its results
    assert store.get_run("r1")["status"] == "done"
    assert store.count("artifacts", "r1") == 1  # the probe summary, written once at the end


def test_resume_a_finished_run_scores_nothing(tiny_dir, tmp_path):
    from faultlens.models.hf import HFAdapter
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig, run_scan

    ad = HFAdapter.load(str(tiny_dir))
    store = Store(tmp_path / "s.sqlite")
    cfg = ScanConfig(model=str(tiny_dir), probes=("position",), probe=ProbeConfig(n_per_cell=3), features=False)
    first = run_scan(ad, store, cfg, run_id="r")
    again = run_scan(ad, store, cfg, run_id="r", resume=True)
    assert first.n_scored == 15 and again.n_scored == 0 and again.n_skipped == 15
    assert store.count("results", "r") == 15
