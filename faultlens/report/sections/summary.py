"""Summary: every finding, grouped by fault family, most severe first, one line each."""

from __future__ import annotations

import json
import re

from faultlens.report.figures import Figures, clean
from faultlens.report.sections import Section, report_sections
from faultlens.report.taxonomy import FAMILIES, SEVERITY_RANK, anchor_of, family_of
from faultlens.report.view import RunView


def slug(text: str) -> str:
    """A string safe as (part of) an HTML id: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def build(view: RunView, figs: Figures) -> dict | None:
    df = view.findings
    if df.empty:
        return None
    groups: dict[str, list[dict]] = {f: [] for f in FAMILIES}
    for row in df.itertuples():
        groups[family_of(row.category, row.source)].append({
            "source": row.source, "category": row.category, "severity": str(row.severity).lower(),
            "message": row.message, "anchor": slug(anchor_of(row.source)),
            "evidence": json.dumps(clean(row.evidence), indent=1, ensure_ascii=False)[:4000],
        })
    for items in groups.values():
        items.sort(key=lambda f: SEVERITY_RANK.get(f["severity"], 3))
    counts = {s: int((df["severity"].str.lower() == s).sum()) for s in ("error", "warning", "info")}
    return {"groups": [(f, items) for f, items in groups.items() if items], "counts": counts, "total": len(df)}


report_sections.add("summary", Section("Summary of findings", 10, "section_summary.html.j2", build))
