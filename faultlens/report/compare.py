"""Cross-run comparison (shown when a report covers two or more runs).

Per probe shared by several runs: accuracy per value, one line per run (model); and the
failure rate (1 − accuracy) against model size when the runs' configs record a parameter
count (`n_params`), else per model.
"""

from __future__ import annotations

import json
import math

from faultlens.report.figures import PALETTE, Figures, layout, plot_text
from faultlens.report.sections.probes import per_value
from faultlens.report.view import RunView


def _label(view: RunView, i: int) -> str:
    return f"{view.model or 'model'} [{view.run_id}]" if i >= 0 else view.model


def build_compare(views: list[RunView], figs: Figures) -> dict | None:
    """Context for the comparison block, or None when fewer than two runs have probe results."""
    with_results = [v for v in views if not v.results.empty]
    if len(with_results) < 2:
        return None
    probes = sorted({p for v in with_results for p in v.results["probe"].unique()})
    blocks, rates = [], {}
    for probe in probes:
        traces = []
        for i, v in enumerate(with_results):
            df = v.results[v.results["probe"] == probe]
            if df.empty:
                continue
            s = per_value(df)
            acc_rows = df[df["metric"] == "correct"] if (df["metric"] == "correct").any() else df
            rates.setdefault(probe, []).append((v, 1.0 - float(acc_rows["passed"].astype(float).mean())))
            traces.append({"type": "scatter", "mode": "lines+markers", "name": plot_text(_label(v, i), 50),
                           "x": [plot_text(x if isinstance(x, str) else json.dumps(x)) for x in s["values"]],
                           "y": s["accuracy"], "line": {"color": PALETTE[i % len(PALETTE)]},
                           "error_y": {"type": "data", "visible": True,
                                       "array": [None if math.isnan(h) else h - a for a, h in zip(s["accuracy"], s["ci_high"])],
                                       "arrayminus": [None if math.isnan(lo) else a - lo for a, lo in zip(s["accuracy"], s["ci_low"])]}})
        if len(traces) >= 2:
            blocks.append({"probe": probe, "fig": figs.add(traces, layout(
                title={"text": f"{plot_text(probe)}: accuracy by value across runs"}, height=340,
                xaxis={"type": "category", "title": {"text": "value"}},
                yaxis={"title": {"text": "accuracy"}, "range": [0, 1.02]}, legend={"orientation": "h", "y": -0.25}))})
    sized = all(v.size for v in with_results)
    traces = []
    for j, (probe, pts) in enumerate(rates.items()):
        pts = sorted(pts, key=lambda p: p[0].size or 0) if sized else pts
        x = [p[0].size for p in pts] if sized else [plot_text(_label(p[0], 0), 50) for p in pts]
        traces.append({"type": "scatter" if sized else "bar", "name": plot_text(probe), "x": x,
                       "y": [p[1] for p in pts], "marker": {"color": PALETTE[j % len(PALETTE)]},
                       **({"mode": "lines+markers"} if sized else {})})
    xaxis = {"type": "log", "title": {"text": "parameters"}} if sized else {"title": {"text": "run"}}
    size_fig = figs.add(traces, layout(title={"text": "failure rate against model size" if sized else "failure rate per run"},
                                       xaxis=xaxis, yaxis={"title": {"text": "failure rate"}, "range": [0, 1.02]},
                                       height=360, barmode="group"))
    return {"blocks": blocks, "size_fig": size_fig, "sized": sized,
            "runs": [{"run_id": v.run_id, "model": v.model, "size": v.size} for v in with_results]}
