"""The `faultlens` command line: thin wrappers, flags → typed config → library call.

Commands live in `faultlens/commands/*.py` (one file per concept, each with `register(app)`).
Every `FaultlensError` becomes one red line on stderr and a non-zero exit.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from faultlens.errors import FaultlensError

app = typer.Typer(
    name="faultlens",
    help="Find, explain and predict how transformer language models fail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _load_commands() -> None:
    import faultlens.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"faultlens.commands.{info.name}")
        if hasattr(mod, "register"):
            mod.register(app)


_load_commands()


def main() -> None:
    """Entry point: run the app, turning user errors into one line + exit code."""
    try:
        rc = app(standalone_mode=False)  # click returns typer.Exit codes instead of raising here
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except FaultlensError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[yellow]interrupted[/]; everything scored so far is in the store (resume with --resume).")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
