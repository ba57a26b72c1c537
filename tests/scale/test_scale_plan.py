"""Unit planning: every missing case lands in exactly one unit; stored cases are skipped."""

from __future__ import annotations

import pickle

import pytest

from faultlens.scale.executor import is_sqlite
from faultlens.scale.plan import Unit, plan_units, shards
from faultlens.scale.scan import run_ids_for
from faultlens.types import Case


def _cases(prefix, n):
    return [Case(f"{prefix}/{i}", f"prompt {i}", " a", " b", "v", i % 3) for i in range(n)]


def test_units_cover_each_missing_case_exactly_once():
    plan = {"p": _cases("p", 23), "q": _cases("q", 5)}
    done = {("r1", "p"): {"p/0", "p/7", "p/22"}, ("r2", "q"): {c.id for c in plan["q"]}}
    units = plan_units(["r1", "r2"], plan, done, shard_size=4, chunk=2)
    seen = [(u.run_id, u.probe, c.id) for u in units for c in u.cases]
    assert len(seen) == len(set(seen))  # nothing twice
    expected = {(r, p, c.id) for r in ("r1", "r2") for p, cs in plan.items() for c in cs
                if c.id not in done.get((r, p), set())}
    assert set(seen) == expected  # nothing missing, nothing already stored
    assert all(1 <= len(u.cases) <= 4 for u in units)
    assert not [u for u in units if u.run_id == "r2" and u.probe == "q"]  # a finished (run, probe) has no unit
    assert [u.model for u in units] == sorted(u.model for u in units)  # model-major order
    assert len({u.key for u in units}) == len(units)


def test_units_travel_by_pickle_unchanged():
    u = plan_units(["r"], {"p": _cases("p", 3)}, {}, shard_size=8)[0]
    assert isinstance(u, Unit) and pickle.loads(pickle.dumps(u)) == u


def test_shards_and_run_ids_and_store_kind():
    assert [len(s) for s in shards(_cases("x", 10), 4)] == [4, 4, 2]
    with pytest.raises(ValueError):
        shards([], 0)
    assert run_ids_for(1, "a") == ["a"] and run_ids_for(3, "a") == ["a-1", "a-2", "a-3"] and run_ids_for(2, None) == [None, None]
    assert is_sqlite("s.sqlite") and is_sqlite("sqlite:///x.db") and is_sqlite("sqlite+pysqlite:///x.db")
    assert not is_sqlite("postgresql+psycopg://u@127.0.0.1:5432/db")
