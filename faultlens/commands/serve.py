"""`faultlens serve [--store URL] [--port P]`: read-only web UI + JSON API on 127.0.0.1."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        store: str = typer.Option(None, "--store", envvar="FAULTLENS_STORE", help="Store path or SQLAlchemy URL."),
        port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port on 127.0.0.1."),
    ) -> None:
        """Browse runs at http://127.0.0.1:PORT (JSON API under /api, schema at /openapi.json). Loopback only."""
        from faultlens.report.serve import LOOPBACK, serve as run_server
        from faultlens.report.view import open_existing

        st = open_existing(store)
        typer.echo(f"serving {st.location} at http://{LOOPBACK}:{port}  (Ctrl+C to stop)")
        run_server(st, port)
