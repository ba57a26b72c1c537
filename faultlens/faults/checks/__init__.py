"""Fault property checks, one file per ABNN category group; importing registers them all."""

from faultlens.faults.checks import masking, score, qkv, position, cache, kernel_checks, variant  # noqa: F401
from faultlens.faults.checks.base import CheckOutcome, Skip, Verdict, check, checks, run_checks

__all__ = ["CheckOutcome", "Skip", "Verdict", "check", "checks", "run_checks"]
