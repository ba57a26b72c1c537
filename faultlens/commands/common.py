"""Options and helpers shared by CLI commands (kept here, beside the commands they serve)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()

StoreOpt = typer.Option(None, "--store", help="Run store: a SQLite file path or a SQLAlchemy URL (default: $FAULTLENS_STORE or ./faultlens-store.sqlite).")
ModelArg = typer.Argument("stories260k", help="Shipped model name (stories260k) or a local Hugging Face model directory.")


def load_adapter(model: str, attn: str = "sdpa", trust_remote_code: bool = False):
    """Load a white-box adapter for a shipped name or local path (errors are one line)."""
    from faultlens.models.hf import HFAdapter

    with console.status(f"loading {model} …"):
        return HFAdapter.load(model, attn_implementation=attn, trust_remote_code=trust_remote_code)


@contextmanager
def progress_bar() -> Iterator:
    """A rich progress bar; yields `update(task_name, done, total)`."""
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
    tasks: dict[str, int] = {}

    def update(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = prog.add_task(name, total=total)
        prog.update(tasks[name], completed=done, total=total)

    with prog:
        yield update
