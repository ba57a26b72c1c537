"""Imports every module that registers a demo step (one line per capability)."""

import importlib

for _mod in (
    "faultlens.probes.demo",
    "faultlens.diagnostics.demo",
    "faultlens.monitor.demo",
    "faultlens.faults.demo",
    "faultlens.attribution.demo",
    "faultlens.predict.demo",
    "faultlens.report.demo",
):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as exc:  # a capability not built yet
        if exc.name != _mod:
            raise
