"""CLI and demo step on a real (small) scan of the shipped model."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from faultlens.cli import app
from faultlens.store import Store

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=True)


@pytest.mark.slow
def test_fit_eval_score_round_trip(scanned, tmp_path):
    path, run_id = scanned
    out = tmp_path / "p.skops"
    r = _run("predict", "fit", run_id, "--store", path, "--out", out)
    assert r.exit_code == 0, r.output
    assert out.is_file() and "features" in r.output
    r = _run("predict", "eval", run_id, "--store", path, "--n-boot", 50, "--save")
    assert r.exit_code == 0, r.output
    assert "verdict:" in r.output and re.search(r"dummy \(prior\)\s+│\s+-\s+│\s+0\.500", r.output)
    ev = Store(path).get_artifact(run_id, "predictor/eval")
    assert ev["grouping"] == "family" and 0 <= ev["auroc"] <= 1 and ev["n_cases"] > 20
    r = _run("predict", "score", "stories260k", "--predictor", out, "--prompt", "Tom had a red ball. Tom gave the ball to")
    assert r.exit_code == 0, r.output
    assert re.search(r"risk [01]\.\d{3}", r.output) and "log-odds" in r.output


def test_cli_errors_are_one_line(scanned, tmp_path):
    path, _ = scanned
    from faultlens.errors import FaultlensError

    r = _run("predict", "eval", "no-such-run", "--store", path)
    assert isinstance(r.exception, FaultlensError) and "Unknown run id" in str(r.exception)
    r = _run("predict", "score", "stories260k", "--predictor", tmp_path / "missing.skops", "--prompt", "Hi")
    assert isinstance(r.exception, FaultlensError) and "not found" in str(r.exception)
    r = _run("predict", "fit", scanned[1], "--store", path, "--features", "blackbx", "--out", tmp_path / "x.skops")
    assert isinstance(r.exception, FaultlensError) and "Did you mean: blackbox" in str(r.exception)


@pytest.mark.slow
def test_demo_step_stores_eval(scanned, adapter):
    from rich.console import Console

    from faultlens.demo import DemoContext
    from faultlens.predict.demo import predictor_step

    path, run_id = scanned
    st = Store(path)
    console = Console(record=True, width=140)
    ctx = DemoContext(adapter=adapter, store=st, run_id=run_id, console=console, out_dir=None, fast=True)
    predictor_step(ctx)
    text = console.export_text()
    assert "verdict:" in text and "black-box" in text and "dummy" in text
    ev = ctx.notes["predictor_eval"]
    assert "template_cv" in ev and ev["template_cv"]["grouping"] == "template"
