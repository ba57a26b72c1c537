"""ABNN attention fault checks, fault injectors and the symptom → root-cause diagnoser.

See docs/faults.md. Import lazily: `from faultlens.faults.checks import run_checks`.
"""
