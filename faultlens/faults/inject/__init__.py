"""Fault injectors, one file per mechanism; importing registers every operator."""

from faultlens.faults.inject import cache, kernel_ops, position, weights  # noqa: F401
from faultlens.faults.inject.base import Planted, applicable, faults, plant

__all__ = ["Planted", "applicable", "faults", "plant"]
