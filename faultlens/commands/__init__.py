"""CLI command modules. Each module defines ``register(app: typer.Typer) -> None``.

`faultlens.cli` imports every module in this package, so a capability adds its commands by
adding a file here, never by editing cli.py.
"""
