"""Report sections: one module per view, each registered in `report_sections`.

A section is a `Section(title, order, template, build)`. `build(view, figs)` returns the
template's context dict, or `None` when the run has no data for it, so each section appears
only when its data is present. Adding a view means adding a module here, never an `if` in the
builder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from faultlens.registry import Registry


@dataclass(frozen=True)
class Section:
    """One view of a run.

    Attributes:
        title: heading shown in the page and the navigation.
        order: position in the page (lower first).
        template: Jinja template file under `report/templates/` that renders `ctx`.
        build: `(RunView, Figures) -> dict | None`; None hides the section.
    """

    title: str
    order: int
    template: str
    build: Callable


report_sections: Registry[Section] = Registry("report section", "report-sections")

for _name in ("summary", "probes", "attention", "tokens", "activations", "monitor", "checks", "predictor"):
    importlib.import_module(f"faultlens.report.sections.{_name}")


def ordered() -> list[tuple[str, Section]]:
    """(name, section) pairs in page order."""
    return sorted(((n, report_sections.get(n)) for n in report_sections.names()), key=lambda p: p[1].order)
