"""Round trips through the run store (SQLite here; PostgreSQL in test_postgres.py)."""

from __future__ import annotations

import numpy as np
import pytest

from faultlens.errors import FaultlensError
from faultlens.store import Store
from faultlens.types import Feature, Finding, Result


def fill(store: Store) -> str:
    run = store.create_run("tiny", {"model": "tiny", "probes": ["position"]})
    res = [Result(run, "position", f"c{i}", "tiny", "position", i % 3, "margin", 0.5 - i, i < 1, {"prompt": "p<script>"})
           for i in range(5)]
    store.write(results=res, features=[Feature(run, "c0", "out.entropy", 0.25)])
    store.add_results(res[:2])  # re-writing is a no-op (unique keys)
    store.add_findings([Finding(run, "probe:position", "position bias", "warning", "slot 0 is worse", {"p": 0.01})] * 2)
    store.add_events(run, [(1, "loss", 2.0), (2, "loss", 1.5), (2, "loss", 9.9)])
    store.put_artifact(run, "attention/c0/L0", np.arange(12, dtype=np.float16).reshape(1, 3, 4), {"tokens": ["a", "b", "c", "d"]})
    store.put_artifact(run, "probe/position/summary", {"values": [0, 1], "accuracy": [0.5, 1.0]})
    return run


def check(store: Store, run: str) -> None:
    df = store.to_pandas("results", run)
    assert len(df) == 5 and df["value"].tolist() == [0, 1, 2, 0, 1]
    assert df["detail"][0] == {"prompt": "p<script>"}
    assert store.count("findings", run) == 1
    ev = store.to_pandas("monitor_events", run)
    assert ev.sort_values("step")["value"].tolist() == [2.0, 1.5]
    arr = store.get_artifact(run, "attention/c0/L0")
    assert arr.dtype == np.float16 and arr.shape == (1, 3, 4) and float(arr[0, 2, 3]) == 11
    assert store.get_artifact(run, "probe/position/summary")["accuracy"] == [0.5, 1.0]
    assert [a["key"] for a in store.list_artifacts(run, "attention/")] == ["attention/c0/L0"]
    assert store.done_case_ids(run, "position") == {f"c{i}" for i in range(5)}
    assert store.get_run(run)["config"]["model"] == "tiny"


def test_sqlite_round_trip(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run = fill(store)
    check(store, run)
    check(Store(tmp_path / "s.sqlite"), run)  # reopened from disk


def test_unknown_run_and_table(store):
    with pytest.raises(FaultlensError, match="Unknown run id 'nope'"):
        store.require_run("nope")
    with pytest.raises(FaultlensError, match="Unknown table"):
        store.to_pandas("nope")


def test_unwritable_store_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.geteuid() == 0:
            target = "/proc/faultlens/store.sqlite"  # root can write anywhere else
        else:
            target = ro / "sub" / "s.sqlite"
        with pytest.raises(FaultlensError, match="Cannot write the run store"):
            Store(target)
    finally:
        ro.chmod(0o700)
