"""`faultlens report RUN_ID [RUN_ID...] -o report.html`: one self-contained offline HTML file."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_ids: list[str] = typer.Argument(..., help="Run id(s) to show; several get a comparison tab."),
        out: Path = typer.Option(Path("report.html"), "-o", "--out", help="HTML file to write."),
        store: str = typer.Option(None, "--store", envvar="FAULTLENS_STORE", help="Store path or SQLAlchemy URL."),
        title: str = typer.Option("faultlens report", "--title", help="Page title."),
    ) -> None:
        """Write one HTML report (works offline: every script and number is inlined)."""
        from faultlens.report.builder import ReportConfig, build_report
        from faultlens.report.view import open_existing

        path = build_report(open_existing(store), run_ids, out, ReportConfig(title=title))
        size = path.stat().st_size / 1e6
        typer.echo(f"report: {path} ({size:.1f} MB)")
