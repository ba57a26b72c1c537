"""Fault checks: the ABNN property checks' findings, one row each with its evidence.

Reads findings whose source is `check:<name>`; a stored `checks/summary` JSON
({"checks": [{"name", "passed", "category", "message"?}]}) adds the checks that passed, so
a clean model shows which checks ran rather than an empty table.
"""

from __future__ import annotations

import json

from faultlens.report.figures import Figures, clean
from faultlens.report.sections import Section, report_sections
from faultlens.report.taxonomy import SEVERITY_RANK
from faultlens.report.view import RunView


def build(view: RunView, figs: Figures) -> dict | None:
    f = view.findings
    rows = []
    if not f.empty:
        for r in f[f["source"].str.startswith("check")].itertuples():
            rows.append({"check": r.source.partition(":")[2] or r.source, "category": r.category,
                         "severity": str(r.severity).lower(), "message": r.message,
                         "evidence": json.dumps(clean(r.evidence), indent=1, ensure_ascii=False)[:4000]})
    ran = []
    if view.has_artifact("checks/summary"):
        summary = view.artifact("checks/summary")
        for c in (summary.get("checks") if isinstance(summary, dict) else None) or []:
            if isinstance(c, dict) and "name" in c:
                ran.append({"name": str(c["name"]), "passed": bool(c.get("passed")),
                            "category": str(c.get("category", "")), "message": str(c.get("message", ""))})
    if not rows and not ran:
        return None
    rows.sort(key=lambda r: SEVERITY_RANK.get(r["severity"], 3))
    return {"rows": rows, "ran": ran}


report_sections.add("checks", Section("Fault checks", 70, "section_checks.html.j2", build))
