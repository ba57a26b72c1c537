"""Training monitor: one curve per logged scalar, with the steps where monitor findings fired.

Curves are the run's `monitor_events` rows (step, name, value). A monitor finding marks its
`evidence["step"]` on the curve named by `evidence["name"|"metric"|"curve"]` when there is
one, else as a dashed line across every curve.
"""

from __future__ import annotations

import numpy as np

from faultlens.report.figures import PALETTE, Figures, layout, plot_text
from faultlens.report.sections import Section, report_sections
from faultlens.report.view import RunView

MAX_CURVES = 16
MAX_POINTS = 2000


def _fired(view: RunView) -> list[dict]:
    f = view.findings
    if f.empty:
        return []
    out = []
    for r in f[f["source"].str.startswith("monitor")].itertuples():
        ev = r.evidence if isinstance(r.evidence, dict) else {}
        step = ev.get("step")
        if isinstance(step, (int, float)):
            curve = next((ev[k] for k in ("name", "metric", "curve") if isinstance(ev.get(k), str)), None)
            out.append({"step": step, "curve": curve, "category": r.category, "message": r.message,
                        "severity": r.severity})
    return out


def build(view: RunView, figs: Figures) -> dict | None:
    ev = view.events
    if ev.empty:
        return None
    fired = _fired(view)
    names = list(dict.fromkeys(ev["name"]))
    curves = []
    for i, name in enumerate(names[:MAX_CURVES]):
        g = ev[ev["name"] == name]
        stride = max(1, int(np.ceil(len(g) / MAX_POINTS)))
        gs = g.iloc[::stride]
        color = PALETTE[i % len(PALETTE)]
        traces = [{"type": "scatter", "mode": "lines", "x": gs["step"].tolist(), "y": gs["value"].tolist(),
                   "name": plot_text(name), "line": {"color": color}}]
        shapes = []
        hits = [f for f in fired if f["curve"] == name]
        if hits:
            steps = np.array([h["step"] for h in hits])
            idx = np.searchsorted(g["step"].to_numpy(), steps).clip(0, len(g) - 1)
            traces.append({"type": "scatter", "mode": "markers", "name": "finding", "x": steps.tolist(),
                           "y": g["value"].to_numpy()[idx].tolist(),
                           "text": [plot_text(h["message"], 120) for h in hits],
                           "marker": {"symbol": "x", "size": 12, "color": "#d9534f", "line": {"width": 2}},
                           "hovertemplate": "step %{x}<br>%{text}<extra></extra>"})
        for f in fired:
            if f["curve"] is None:
                shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": f["step"], "x1": f["step"],
                               "y0": 0, "y1": 1, "line": {"color": "#d9534f", "dash": "dash", "width": 1.5}})
        lay = layout(title={"text": plot_text(name)}, height=260, showlegend=False, shapes=shapes,
                     xaxis={"title": {"text": "step"}}, margin={"l": 55, "r": 15, "t": 36, "b": 40})
        curves.append({"name": name, "fig": figs.add(traces, lay)})
    return {"curves": curves, "n_curves": len(names), "fired": fired}


report_sections.add("monitor", Section("Training monitor", 60, "section_monitor.html.j2", build))
