"""Behavioural probes: minimal pairs that change one variable (see base.py for the pattern)."""

import importlib
import pkgutil

from faultlens.probes.base import Probe, ProbeAnalysis, ProbeConfig, probes

_NOT_PROBES = {"base", "cases", "runner", "stats", "demo", "features", "compare"}


def load_all() -> None:
    """Import every probe module so each registers itself (modules other than the framework's)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_PROBES:
            importlib.import_module(f"{__name__}.{info.name}")


__all__ = ["Probe", "ProbeAnalysis", "ProbeConfig", "probes", "load_all"]
