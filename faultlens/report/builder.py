"""Build the one-file HTML report of one or more runs (also the page the `serve` app returns).

The file is self-contained: plotly.js, our CSS and JS and every figure's data are inlined, and
a Content-Security-Policy forbids any network request (`default-src 'none'`), so it opens
offline and leaks nothing. Scripts carry a per-page nonce, so even text that escaped escaping
could not run. Model text reaches the page only through Jinja autoescaping or `script_json`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import jinja2

from faultlens import __version__ as faultlens_version
from faultlens.errors import FaultlensError
from faultlens.report.compare import build_compare
from faultlens.report.figures import Figures
from faultlens.report.sections import ordered
from faultlens.report.view import RunView
from faultlens.store import Store

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ReportConfig:
    """How a page is assembled.

    Attributes:
        title: page title.
        plotly_src: None inlines plotly.js (the offline file); a URL path such as
            "/static/plotly.min.js" references it (the local server, same origin only).
        home: optional link back to a run list (the server sets "/").
    """

    title: str = "faultlens report"
    plotly_src: str | None = None
    home: str | None = None


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js from the installed plotly package (no CDN), safe to inline in a script element."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    return env


def _num(x, digits: int = 3) -> str:
    """Numbers for tables: 3 significant digits, '–' for missing."""
    if x is None:
        return "–"
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if f != f:
        return "–"
    return f"{f:.{digits}g}" if abs(f) >= 1e-3 or f == 0 else f"{f:.2e}"


def static_text(name: str) -> str:
    """A file of `report/static/` (our CSS and JS), read from the installed package."""
    return (HERE / "static" / name).read_text(encoding="utf-8")


def run_context(store: Store, run_id: str, figs: Figures, rid: str) -> tuple[RunView, dict]:
    """One run's panel: its metadata and the sections that have data."""
    view = RunView(store, run_id)
    sections = []
    for name, section in ordered():
        ctx = section.build(view, figs)
        if ctx is not None:
            sections.append({"name": name, "title": section.title, "template": section.template, "ctx": ctx})
    run = dict(view.run)
    run["config"] = {k: v for k, v in (run.get("config") or {}).items()}
    return view, {"rid": rid, "run": run, "counts": view.counts, "empty": view.is_empty, "sections": sections}


def render(store: Store, run_ids: list[str], config: ReportConfig = ReportConfig()) -> str:
    """The report page for `run_ids` as an HTML string.

    Raises:
        FaultlensError: no run ids, or an unknown one (the message names the store).
    """
    if not run_ids:
        raise FaultlensError("Give at least one run id; `faultlens runs` lists them.")
    for rid in run_ids:
        store.require_run(rid)
    figs = Figures()
    views, runs = [], []
    for i, run_id in enumerate(dict.fromkeys(run_ids)):
        view, ctx = run_context(store, run_id, figs, f"r{i}")
        views.append(view)
        runs.append(ctx)
    compare = build_compare(views, figs) if len(views) > 1 else None
    nonce = secrets.token_urlsafe(16)
    page = environment().get_template("report.html.j2").render(
        title=config.title, runs=runs, compare=compare, nonce=nonce, figs_json=figs.to_json(),
        plotly_inline=None if config.plotly_src else plotly_js(), plotly_src=config.plotly_src,
        css=static_text("report.css"), app_js=static_text("report.js"), home=config.home,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), version=faultlens_version,
        store=store.location,
    )
    return page


def build_report(store: Store, run_ids: list[str], out: str | Path, config: ReportConfig = ReportConfig()) -> Path:
    """Write the self-contained report of `run_ids` to `out`; returns the written path.

    Raises:
        FaultlensError: unknown run id, or `out` cannot be written.
    """
    html_text = render(store, run_ids, config)
    path = Path(out).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html_text, encoding="utf-8")
    except OSError as exc:
        raise FaultlensError(f"Cannot write the report to {path} ({exc.strerror}); pass -o with a writable path.") from None
    return path.resolve()
