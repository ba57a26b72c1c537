"""The HTML report and the local web UI over the run store.

`build_report(store, run_ids, out)` writes one self-contained offline file; `Report` shows the
same page in a notebook; `faultlens.report.serve.create_app(store)` serves it per run on
127.0.0.1 with a read-only JSON API.
"""

from faultlens.report.builder import ReportConfig, build_report, render
from faultlens.report.notebook import Report

__all__ = ["Report", "ReportConfig", "build_report", "render"]
