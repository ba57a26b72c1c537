"""`faultlens report` / `faultlens serve` from the command line, and the demo step."""

from __future__ import annotations

from rich.console import Console

from faultlens.demo import DemoContext


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


def cli(capsys, monkeypatch, *args: str) -> Ran:
    """Run `faultlens ARGS` in-process through the real entry point (error line + exit code)."""
    from faultlens.cli import main

    monkeypatch.setattr("sys.argv", ["faultlens", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return Ran(code, out.out, out.err)


def test_report_command_writes_one_file(filled, tmp_path, capsys, monkeypatch):
    store, ids = filled
    out = tmp_path / "sub" / "r.html"
    r = cli(capsys, monkeypatch, "report", ids["rich"], ids["other"], "-o", str(out), "--store", store.location)
    assert r.returncode == 0, r.stderr
    assert out.is_file() and str(out) in r.stdout
    assert 'data-key="compare"' in out.read_text()


def test_report_command_bad_input_is_one_clear_line(filled, tmp_path, capsys, monkeypatch):
    store, _ = filled
    r = cli(capsys, monkeypatch, "report", "nope", "-o", str(tmp_path / "r.html"), "--store", store.location)
    assert r.returncode == 2 and "Unknown run id 'nope'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    missing = tmp_path / "missing.sqlite"
    r = cli(capsys, monkeypatch, "report", "x", "--store", str(missing))
    assert r.returncode == 2 and "No run store" in r.stderr and not missing.exists()


def test_serve_has_no_host_flag(capsys, monkeypatch):
    r = cli(capsys, monkeypatch, "serve", "--help")
    assert r.returncode == 0 and "--port" in r.stdout and "--host" not in r.stdout


def test_demo_step_writes_the_report(filled, tmp_path, capsys):
    import faultlens.report.demo as demo

    store, ids = filled
    ctx = DemoContext(adapter=None, store=store, run_id=ids["rich"], console=Console(), out_dir=tmp_path)
    demo.step(ctx)
    assert demo.step.order == 99
    assert (tmp_path / "report.html").is_file() and "report.html" in capsys.readouterr().out
