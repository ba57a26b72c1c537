"""Failure predictor: ROC against the dummy baseline, reliability curve, feature importance.

Reads `predictor/eval` JSON {"auroc", "auroc_ci", "dummy_auroc", "roc": {"fpr", "tpr"},
"reliability": {"prob_pred", "prob_true"}, "importance": {name: value}}.
"""

from __future__ import annotations

from faultlens.report.figures import PALETTE, Figures, layout, plot_text
from faultlens.report.sections import Section, report_sections
from faultlens.report.view import RunView

MAX_FEATURES = 20


def build(view: RunView, figs: Figures) -> dict | None:
    if not view.has_artifact("predictor/eval"):
        return None
    ev = view.artifact("predictor/eval")
    if not isinstance(ev, dict):
        return None
    diag = {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "chance",
            "line": {"dash": "dot", "color": "#999"}}
    ctx: dict = {"auroc": ev.get("auroc"), "auroc_ci": ev.get("auroc_ci"), "dummy_auroc": ev.get("dummy_auroc"),
                 "extra": {k: v for k, v in ev.items() if isinstance(v, (int, float, str)) and
                           k not in ("auroc", "dummy_auroc")},
                 "roc_fig": None, "rel_fig": None, "imp_fig": None}
    roc = ev.get("roc") or {}
    if roc.get("fpr") and roc.get("tpr"):
        name = "predictor" + (f" (AUROC {ev['auroc']:.3f})" if isinstance(ev.get("auroc"), (int, float)) else "")
        ctx["roc_fig"] = figs.add(
            [diag, {"type": "scatter", "mode": "lines", "x": roc["fpr"], "y": roc["tpr"], "name": name,
                    "line": {"color": PALETTE[0], "width": 2.5}}],
            layout(title={"text": "ROC"}, xaxis={"title": {"text": "false-positive rate"}, "range": [0, 1]},
                   yaxis={"title": {"text": "true-positive rate"}, "range": [0, 1.02]}, height=360,
                   legend={"x": 0.45, "y": 0.08}))
    rel = ev.get("reliability") or {}
    if rel.get("prob_pred") and rel.get("prob_true"):
        ctx["rel_fig"] = figs.add(
            [diag | {"name": "perfectly calibrated"},
             {"type": "scatter", "mode": "lines+markers", "x": rel["prob_pred"], "y": rel["prob_true"],
              "name": "predictor", "line": {"color": PALETTE[1]}}],
            layout(title={"text": "reliability"}, xaxis={"title": {"text": "predicted failure probability"}, "range": [0, 1]},
                   yaxis={"title": {"text": "observed failure rate"}, "range": [0, 1.02]}, height=360,
                   legend={"x": 0.02, "y": 0.98}))
    imp = ev.get("importance") or {}
    if isinstance(imp, dict) and imp:
        top = sorted(((k, float(v)) for k, v in imp.items() if isinstance(v, (int, float))),
                     key=lambda kv: -abs(kv[1]))[:MAX_FEATURES][::-1]
        ctx["imp_fig"] = figs.add(
            [{"type": "bar", "orientation": "h", "x": [v for _, v in top], "y": [plot_text(k, 40) for k, _ in top],
              "marker": {"color": [PALETTE[0] if v >= 0 else PALETTE[1] for _, v in top]}}],
            layout(title={"text": f"feature importance (top {len(top)})"}, height=max(260, 40 + 22 * len(top)),
                   margin={"l": 220, "r": 20, "t": 40, "b": 40}))
    return ctx


report_sections.add("predictor", Section("Failure predictor", 80, "section_predictor.html.j2", build))
