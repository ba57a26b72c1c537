"""`faultlens explain` prints coloured tokens, stores the artifact, and fails cleanly on bad input."""

from __future__ import annotations

from typer.testing import CliRunner

from faultlens.cli import app
from faultlens.store import Store

P = "Once upon a time, there was a little girl named Lily. One day, Lily met a boy named Tom. The girl's name was"


def test_explain_command_stores_and_reports_faithfulness(tmp_path):
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(app, ["explain", "stories260k", "--prompt", P, "--target", " Lily", "--foil", " Tom",
                                 "--store", str(db), "--case-id", "c1", "--graph"])
    assert r.exit_code == 0, r.output
    assert "deletion-AOPC" in r.output and "stored attribution/c1/cp-lrp" in r.output
    st = Store(db)
    run = st.runs().iloc[0]["run_id"]
    keys = {a["key"] for a in st.list_artifacts(run)}
    assert keys == {"attribution/c1/cp-lrp", "attribution/c1/graph"}


def test_explain_command_unknown_method_is_one_clear_error(tmp_path):
    from faultlens.errors import FaultlensError

    r = CliRunner().invoke(app, ["explain", "stories260k", "--prompt", P, "--target", " Lily", "--foil", " Tom",
                                 "--method", "lrpp", "--store", str(tmp_path / "s.sqlite")])
    assert r.exit_code != 0 and isinstance(r.exception, FaultlensError)
    assert "Did you mean" in str(r.exception)


def test_explain_command_unknown_graph_edge_method_fails_before_anything_is_stored(tmp_path):
    from faultlens.errors import FaultlensError

    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(app, ["explain", "stories260k", "--prompt", P, "--target", " Lily", "--foil", " Tom",
                                 "--graph", "--graph-edges", "closd", "--store", str(db)])
    assert r.exit_code != 0 and isinstance(r.exception, FaultlensError)
    assert "Did you mean: closed" in str(r.exception) and not db.exists()
