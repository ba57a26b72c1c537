"""`Report`: a run's report as a notebook object (`_repr_html_`) that can also be saved.

Jupyter shows it in a sandboxed iframe (`srcdoc`, scripts allowed, no same-origin), so the
report's own CSS/JS and CSP neither leak into nor depend on the notebook page.
"""

from __future__ import annotations

import html
from pathlib import Path

from faultlens.report.builder import ReportConfig, build_report, render
from faultlens.store import Store, open_store


class Report:
    """The report of one or more runs.

    Args:
        store: an open `Store`, or a path/URL to open.
        run_ids: the runs to show (one tab each, plus a comparison when several).
        height: iframe height in pixels for notebook display.

    Example:
        >>> Report("faultlens-store.sqlite", ["scan-..."])  # doctest: +SKIP
    """

    def __init__(self, store: Store | str | Path, run_ids: str | list[str], height: int = 900,
                 config: ReportConfig = ReportConfig()) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self.run_ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        self.height = height
        self.config = config

    def html(self) -> str:
        """The whole self-contained page."""
        return render(self.store, self.run_ids, self.config)

    def save(self, path: str | Path) -> Path:
        """Write the page to `path`; returns the resolved path."""
        return build_report(self.store, self.run_ids, path, self.config)

    def _repr_html_(self) -> str:
        doc = html.escape(self.html(), quote=True)
        return (f'<iframe srcdoc="{doc}" sandbox="allow-scripts allow-popups" '
                f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd;border-radius:6px"></iframe>')

    def __repr__(self) -> str:
        return f"Report(store={self.store.location!r}, run_ids={self.run_ids!r})"
