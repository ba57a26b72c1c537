"""Bad executor input: one clear error line, exit code 2, and nothing written (no store file, no run)."""

from __future__ import annotations

import socket

import pytest

from faultlens.store import Store
from tests.pgserver import postgres_server, unavailable_reason
from tests.run_cli import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dead_pg() -> str:
    return f"postgresql+psycopg://faultlens@127.0.0.1:{_free_port()}/postgres"


def _one_error_line(code, err, pattern):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert pattern in lines[0], err


def test_sqlite_with_ray_is_refused_before_anything_is_created(two_models, tmp_path, capsys):
    target = tmp_path / "s.sqlite"
    code, _, err = run_cli(["scan", *two_models, "--executor", "ray", "--store", target], capsys)
    _one_error_line(code, err, "SQLite works only with --executor local")
    assert not target.exists()


@pytest.mark.parametrize("address,pattern", [
    (None, "Cannot reach the Ray cluster at 127.0.0.1:"),
    ("not-an-address", "is not HOST:PORT"),
])
def test_unreachable_or_malformed_ray_address(two_models, address, pattern, capsys):
    address = address or f"127.0.0.1:{_free_port()}"
    code, _, err = run_cli(["scan", *two_models, "--executor", "ray", "--ray-address", address, "--store", _dead_pg()], capsys)
    _one_error_line(code, err, pattern)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_unreachable_store_url(two_models, executor, capsys):
    code, _, err = run_cli(["scan", *two_models, "--executor", executor, "--store", _dead_pg()], capsys)
    _one_error_line(code, err, "Cannot open the run store")


def test_unknown_executor(two_models, tmp_path, capsys):
    code, _, err = run_cli(["scan", two_models[0], "--executor", "rya", "--store", tmp_path / "s.sqlite"], capsys)
    _one_error_line(code, err, "Did you mean: ray?")


def test_clash_on_the_second_model_creates_no_run_for_the_first(two_models, tmp_path, capsys):
    target = tmp_path / "s.sqlite"
    st = Store(target)
    st.create_run(str(two_models[1]), {"model": str(two_models[1])}, run_id="x-2")
    code, _, err = run_cli(["scan", *two_models, "--run-id", "x", "--store", target], capsys)
    _one_error_line(code, err, "Run 'x-2' already exists")
    assert st.get_run("x-1") is None and len(st.runs()) == 1


@pytest.mark.postgres
@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_unreachable_ray_leaves_a_live_postgres_store_untouched(two_models, capsys):
    from sqlalchemy import create_engine, inspect

    with postgres_server() as url:
        code, _, err = run_cli(["scan", *two_models, "--executor", "ray", "--ray-address", f"127.0.0.1:{_free_port()}",
                                "--store", url], capsys)
        _one_error_line(code, err, "Cannot reach the Ray cluster")
        engine = create_engine(url)
        assert inspect(engine).get_table_names() == []  # not even the schema was created
        engine.dispose()
