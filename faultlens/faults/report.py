"""Turn check outcomes into stored `Finding`s and printable / JSON output (shared by CLI and demo)."""

from __future__ import annotations

import json

from faultlens.faults.checks.base import CheckOutcome
from faultlens.types import Finding


def to_findings(run_id: str, outcomes: list[CheckOutcome]) -> list[Finding]:
    """One `Finding` per failing (or crashing) check; source "check:<name>", category = ABNN category."""
    return [
        Finding(run_id, f"check:{o.check}", o.category, "error", o.message,
                {**o.evidence, "root_cause": o.root_cause, "suggestion": o.suggestion, "status": o.status})
        for o in outcomes if o.is_finding
    ]


def json_lines(outcomes: list[CheckOutcome]) -> list[str]:
    """`--json`: one object per finding with category, root_cause, check, evidence, suggestion."""
    return [json.dumps({"category": o.category, "root_cause": o.root_cause, "check": o.check,
                        "evidence": o.evidence, "suggestion": o.suggestion, "message": o.message}, default=str)
            for o in outcomes if o.is_finding]


def table(outcomes: list[CheckOutcome], title: str):
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col in ("check", "category / root cause", "status", "detail"):
        t.add_column(col, overflow="fold")
    style = {"pass": "green", "fail": "bold red", "error": "bold red", "skip": "dim"}
    for o in outcomes:
        t.add_row(o.check, f"{o.category} / {o.root_cause}", f"[{style[o.status]}]{o.status}[/]",
                  o.message if o.status != "fail" else f"{o.message}\n[dim]fix: {o.suggestion}[/]")
    return t
