"""`faultlens runs`, `faultlens export`, `faultlens list`: look into the store and the registries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from faultlens.commands.common import StoreOpt, console
from faultlens.errors import FaultlensError

EXPORT_FORMATS = {"parquet": "to_parquet", "csv": "to_csv"}


def _import_all_registries() -> None:
    """Import the modules that fill the registries, so `list` shows everything built."""
    import importlib

    from faultlens.probes import load_all

    load_all()
    for mod in ("faultlens.diagnostics", "faultlens.diagnostics.findings", "faultlens.faults", "faultlens.faults.checks",
                "faultlens.faults.inject", "faultlens.organisms", "faultlens.organisms.recipes", "faultlens.monitor",
                "faultlens.attribution", "faultlens.predict.feature_sets", "faultlens.predict.predictor",
                "faultlens.scale.executor", "faultlens.report.sections", "faultlens.models.tiny",
                "faultlens.demo_steps", "faultlens.probes.features", "faultlens.probes.judges"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_(kind: Optional[str] = typer.Argument(None, help="probes | diagnostics | checks | ... (omit to see all kinds)")) -> None:
        """Print a registry: what faultlens can run, with one line each."""
        from faultlens.registry import REGISTRIES

        _import_all_registries()
        if kind is None:
            console.print("kinds: " + ", ".join(sorted(REGISTRIES)))
            return
        if kind not in REGISTRIES:
            import difflib

            close = difflib.get_close_matches(kind, list(REGISTRIES), n=2)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise FaultlensError(f"Unknown kind {kind!r}.{hint} Kinds: {', '.join(sorted(REGISTRIES))}.")
        reg = REGISTRIES[kind]
        t = Table(title=kind)
        t.add_column("name", style="bold")
        t.add_column("what it does")
        for name in reg.names():
            t.add_row(name, reg.doc(name))
        console.print(t)

    @app.command()
    def runs(store: Optional[str] = StoreOpt) -> None:
        """List the runs in the store, newest first."""
        from faultlens.store import open_store

        st = open_store(store)
        df = st.runs()
        t = Table(title=f"runs in {st.location}")
        for col in ("run_id", "kind", "model", "status", "created", "results", "findings"):
            t.add_column(col)
        for _, r in df.iterrows():
            t.add_row(r.run_id, r.kind, str(r.model), r.status, str(r.created)[:19],
                      str(st.count("results", r.run_id)), str(st.count("findings", r.run_id)))
        console.print(t)

    @app.command()
    def export(
        run_id: str = typer.Argument(..., help="Run to export."),
        format: str = typer.Option("parquet", "--format", "-f", help="parquet or csv"),
        out: Path = typer.Option(Path("."), "--out", "-o", help="Directory to write one file per table into."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Write each table of a run (results, features, findings, monitor_events, artifacts index) to files."""
        from faultlens.store import open_store
        from faultlens.store.schema import TABLES

        if format not in EXPORT_FORMATS:
            raise FaultlensError(f"Unknown format {format!r}; use one of: {', '.join(EXPORT_FORMATS)}.")
        st = open_store(store)
        st.require_run(run_id)
        out.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            df = st.to_pandas(table, run_id)
            for col in df.columns:  # JSON columns → text, so parquet/csv take them
                if df[col].map(lambda v: isinstance(v, (dict, list))).any():
                    df[col] = df[col].map(lambda v: json.dumps(v, default=str))
            path = out / f"{run_id}.{table}.{format}"
            getattr(df, EXPORT_FORMATS[format])(path, index=False)
            console.print(f"{table}: {len(df)} rows → {path}")
