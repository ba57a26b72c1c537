"""Scale-out: cut scans into idempotent units and run them locally or on Ray (see docs/scale.md)."""

from faultlens.scale.executor import Executor, ExecutorConfig, executors, make_executor
from faultlens.scale.plan import ModelSpec, Unit, UnitResult, plan_units
from faultlens.scale.scan import MultiScanReport, scan_models

__all__ = [
           "Executor",
           "ExecutorConfig",
           "ModelSpec",
           "MultiScanReport",
           "Unit",
           "UnitResult",
           "executors",
           "make_executor",
           "plan_units",
           "scan_models",
]
