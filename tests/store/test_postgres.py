"""The same store round trip on a real local PostgreSQL server started by the test."""

from __future__ import annotations

import pytest

from tests.pgserver import postgres_server, unavailable_reason
from tests.store.test_store import check, fill

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url():
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"PostgreSQL not available: {reason}")
    with postgres_server() as url:
        yield url


def test_postgres_round_trip(pg_url):
    from faultlens.store import Store

    store = Store(pg_url)
    run = fill(store)
    check(store, run)
    assert store.engine.dialect.name == "postgresql"
    assert "faultlens@127.0.0.1" in store.location


def test_unreachable_postgres_is_one_clear_error():
    from faultlens.errors import FaultlensError
    from faultlens.store import Store

    with pytest.raises(FaultlensError, match="Cannot open the run store"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
