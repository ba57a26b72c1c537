"""Probe results: accuracy and margin per variable value with CIs, and the pairs that flipped.

A probe's stored summary (`probe/{name}/summary`) is rendered as is when present; otherwise
accuracy and mean margin per value are computed here from the result rows with a percentile
bootstrap CI (Efron & Tibshirani 1993, ch. 13), seeded so the page is reproducible.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from faultlens.report.figures import PALETTE, Figures, layout, plot_text
from faultlens.report.sections import Section, report_sections
from faultlens.report.sections.summary import slug
from faultlens.report.view import RunView

MAX_FLIPS = 12
N_BOOT = 1000


def bootstrap_ci(x: np.ndarray, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `x` (NaNs dropped); (nan, nan) when empty."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))  # [B, n]
    means = x[idx].mean(axis=1)  # [B]
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def ordered_values(values: pd.Series) -> list:
    """Distinct values, numerically sorted when all are numbers, else in order of first appearance."""
    uniq = list(dict.fromkeys(json.dumps(v) for v in values))
    decoded = [json.loads(u) for u in uniq]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in decoded):
        decoded.sort()
    return decoded


def per_value(df: pd.DataFrame) -> dict[str, Any]:
    """Accuracy and mean margin per value of one probe's rows, with bootstrap CIs."""
    values = ordered_values(df["value"])
    key = df["value"].map(json.dumps)
    acc_rows = df[df["metric"] == "correct"] if (df["metric"] == "correct").any() else df
    out: dict[str, list] = {k: [] for k in ("values", "n", "accuracy", "ci_low", "ci_high",
                                              "margin", "margin_low", "margin_high")}
    for v in values:
        k = json.dumps(v)
        passed = acc_rows.loc[key.loc[acc_rows.index] == k, "passed"].astype(float).to_numpy()
        margins = df.loc[(key == k) & (df["metric"] == "margin"), "score"].astype(float).to_numpy()
        lo, hi = bootstrap_ci(passed)
        mlo, mhi = bootstrap_ci(margins)
        out["values"].append(v)
        out["n"].append(int(passed.size))
        out["accuracy"].append(float(passed.mean()) if passed.size else math.nan)
        out["ci_low"].append(lo)
        out["ci_high"].append(hi)
        out["margin"].append(float(np.nanmean(margins)) if margins.size else math.nan)
        out["margin_low"].append(mlo)
        out["margin_high"].append(mhi)
    return out


def _ci_figure(figs: Figures, labels: list[str], mid: list[float], lo: list[float], hi: list[float],
               title: str, ytitle: str, yrange: list[float] | None = None) -> str:
    err_plus = [None if math.isnan(h) or math.isnan(m) else h - m for m, h in zip(mid, hi)]
    err_minus = [None if math.isnan(lw) or math.isnan(m) else m - lw for m, lw in zip(mid, lo)]
    trace = {"type": "scatter", "mode": "lines+markers", "x": labels, "y": mid, "name": ytitle,
             "line": {"color": PALETTE[0]}, "marker": {"size": 8},
             "error_y": {"type": "data", "array": err_plus, "arrayminus": err_minus, "visible": True}}
    yaxis = {"title": {"text": ytitle}, "zeroline": True}
    if yrange:
        yaxis["range"] = yrange
    return figs.add([trace], layout(title={"text": title}, xaxis={"title": {"text": "value"}, "type": "category"},
                                    yaxis=yaxis, height=300))


def flipped_pairs(df: pd.DataFrame) -> tuple[list[dict], bool]:
    """Minimal pairs whose members disagree on pass/fail; falls back to failing cases.

    A pair is the cases sharing `detail["pair"]` (or `detail["meta"]["pair"]`), else the case
    id without its last `-`/`_`/`:`/`.`-separated part. Returns (rows, are_pairs).
    """
    rows = df[df["metric"] == "margin"] if (df["metric"] == "margin").any() else df

    def pair_of(r) -> str:
        d = r.detail if isinstance(r.detail, dict) else {}
        p = d.get("pair") or (d.get("meta") or {}).get("pair")
        if p is not None:
            return str(p)
        cid = str(r.case_id)
        cut = max(cid.rfind(s) for s in "-_:.")
        return cid[:cut] if cut > 0 else cid

    pairs = rows.assign(_pair=[pair_of(r) for r in rows.itertuples()], _v=rows["value"].map(json.dumps),
                        _p=rows["passed"].astype(bool))
    # Vectorised per pair: distinct values, distinct outcomes, and the margin swing.
    agg = pairs.groupby("_pair", sort=False).agg(n_values=("_v", "nunique"), n_outcomes=("_p", "nunique"),
                                                 hi=("score", "max"), lo=("score", "min"))
    agg = agg[(agg["n_values"] > 1) & (agg["n_outcomes"] > 1)]
    # The most dramatic flips (largest margin swing inside the pair) first.
    top = (agg["hi"] - agg["lo"]).fillna(0.0).sort_values(ascending=False, kind="stable").index[:MAX_FLIPS]
    if len(top):
        members = pairs[pairs["_pair"].isin(top)]
        by_pair = {pid: g for pid, g in members.groupby("_pair", sort=False)}
        return [{"pair": pid, "members": [_case_row(r) for r in by_pair[pid].itertuples()]} for pid in top], True
    failing = rows[rows["passed"] == False].head(MAX_FLIPS)  # noqa: E712 (pandas mask)
    return [{"pair": str(r.case_id), "members": [_case_row(r)]} for r in failing.itertuples()], False


def _case_row(r) -> dict:
    d = r.detail if isinstance(r.detail, dict) else {}
    return {"case_id": r.case_id, "value": json.dumps(r.value, ensure_ascii=False), "prompt": str(d.get("prompt", "")),
            "target": str(d.get("target", "")), "foil": str(d.get("foil", "")), "output": str(d.get("output", "")),
            "score_target": d.get("score_target"), "score_foil": d.get("score_foil"),
            "score": r.score, "passed": bool(r.passed)}


def probe_block(view: RunView, figs: Figures, probe: str, df: pd.DataFrame) -> dict:
    """Everything the template shows for one probe of one run."""
    key = f"probe/{probe}/summary"
    stored = view.artifact(key) if view.has_artifact(key) else None
    stats = per_value(df)
    if isinstance(stored, dict) and stored.get("values"):
        shown = {k: stored.get(k) or [math.nan] * len(stored["values"])
                 for k in ("values", "accuracy", "ci_low", "ci_high", "margin")}
        source, test = "stored summary", stored.get("test") or {}
    else:
        shown = {k: stats[k] for k in ("values", "accuracy", "ci_low", "ci_high", "margin")}
        source, test = f"computed here: percentile bootstrap, {N_BOOT} resamples", {}
    labels = [plot_text(v if isinstance(v, str) else json.dumps(v)) for v in shown["values"]]
    nan = [math.nan if v is None else float(v) for v in shown["accuracy"]]
    fig_acc = _ci_figure(figs, labels, nan, [math.nan if v is None else v for v in shown["ci_low"]],
                         [math.nan if v is None else v for v in shown["ci_high"]],
                         f"{plot_text(probe)}: accuracy by {plot_text(df['variable'].iloc[0] or 'value')}",
                         "accuracy", [0, 1.02])
    fig_margin = None
    if (df["metric"] == "margin").any():
        fig_margin = _ci_figure(figs, [plot_text(v if isinstance(v, str) else json.dumps(v)) for v in stats["values"]],
                                stats["margin"], stats["margin_low"], stats["margin_high"],
                                "mean margin log p(target) − log p(foil)", "margin")
    table = [{"value": json.dumps(v, ensure_ascii=False), "n": stats["n"][i] if i < len(stats["n"]) else None,
              "accuracy": shown["accuracy"][i], "ci": (shown["ci_low"][i], shown["ci_high"][i]),
              "margin": (shown["margin"] or [None] * len(shown["values"]))[i]}
             for i, v in enumerate(shown["values"])]
    flips, are_pairs = flipped_pairs(df)
    f = view.findings
    notes = [] if f.empty else f.loc[f["source"] == f"probe:{probe}", "message"].tolist()
    acc_rows = df[df["metric"] == "correct"] if (df["metric"] == "correct").any() else df
    return {"name": probe, "anchor": slug(f"probe-{probe}"), "variable": df["variable"].iloc[0],
            "n_cases": int(df["case_id"].nunique()), "accuracy": float(acc_rows["passed"].astype(float).mean()),
            "fig_acc": fig_acc, "fig_margin": fig_margin, "table": table, "source": source,
            "test": {k: v for k, v in test.items() if not isinstance(v, (list, dict))},
            "flips": flips, "are_pairs": are_pairs, "findings": notes}


def build(view: RunView, figs: Figures) -> dict | None:
    df = view.results
    if df.empty:
        return None
    return {"probes": [probe_block(view, figs, p, g) for p, g in df.groupby("probe", sort=True)]}


report_sections.add("probes", Section("Probe results", 20, "section_probes.html.j2", build))
