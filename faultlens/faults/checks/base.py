"""The check registry, the outcome record, and the shared observation machinery.

A check is a function ``fn(target, ctx) -> Verdict`` registered with
``@check("name", category, root_cause, suggestion)``. It raises `Skip` when it does not apply
(e.g. a cache check on an encoder) and returns a `Verdict` (``failed``, ``message``, ``evidence``).
`run_checks` turns verdicts into `CheckOutcome` rows; failures become `Finding`s.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import torch

from faultlens.faults.kernel import KernelRecord, add_kernel_hook
from faultlens.faults.target import Target
from faultlens.faults.taxonomy import require
from faultlens.registry import Registry

# Relative tolerance for "equal" in fp32: float reassociation noise is ~1e-6 here.
RTOL = 1e-4


class Skip(Exception):
    """The check does not apply to this target; the message says why."""


@dataclass
class Verdict:
    failed: bool
    message: str
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    category: str
    root_cause: str
    suggestion: str
    fn: Callable[[Target, "Context"], Verdict]
    doc: str = ""


checks: Registry[CheckSpec] = Registry("check")


def check(name: str, category: str, root_cause: str, suggestion: str):
    """Register ``fn(target, ctx) -> Verdict`` as a check mapped to an ABNN (category, root cause)."""
    require(category, root_cause)

    def deco(fn):
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        checks.add(name, CheckSpec(name, category, root_cause, suggestion, fn, doc), doc)
        return fn

    return deco


@dataclass
class CheckOutcome:
    check: str
    category: str
    root_cause: str
    status: str  # "pass" | "fail" | "skip" | "error"
    message: str
    evidence: dict
    suggestion: str
    seconds: float = 0.0

    @property
    def is_finding(self) -> bool:
        return self.status in ("fail", "error")

    def to_json(self) -> dict:
        return {"check": self.check, "category": self.category, "root_cause": self.root_cause,
                "status": self.status, "message": self.message, "evidence": self.evidence,
                "suggestion": self.suggestion}


# ---------------------------------------------------------------------- numbers
def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|; inf when shapes differ or either side is non-finite where the other is not."""
    if a.shape != b.shape:
        return math.inf
    a, b = a.detach().float(), b.detach().float()
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb):
        return math.inf
    if not fa.any():
        return 0.0
    scale = b[fb].abs().max().clamp_min(1e-12)
    return float((a[fa] - b[fb]).abs().max() / scale)


def finite(x: float) -> float | str:
    """JSON-safe number for evidence."""
    return x if math.isfinite(x) else "inf"


# ---------------------------------------------------------------------- observation
@dataclass
class Observation:
    out: torch.Tensor
    records: list[KernelRecord]
    inputs: dict[int, torch.Tensor]  # layer -> hidden states entering its attention module


class Context:
    """Per-run helpers shared by the checks (memoised observation of the default sample)."""

    def __init__(self, target: Target, seq_len: int = 12) -> None:
        self.target = target
        self.seq_len = seq_len
        self._default: Observation | None = None

    def observe(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> Observation:
        """Run the target once, recording every attention-kernel call and each layer's input."""
        records: list[KernelRecord] = []
        inputs: dict[int, torch.Tensor] = {}
        handles = []
        try:
            for i, attn in enumerate(self.target.attn):
                handles.append(add_kernel_hook(attn, "observe", records.append, layer=i))

                def pre(_m, args, kwargs, i=i):
                    h = args[0] if args else kwargs.get("hidden_states")
                    if isinstance(h, torch.Tensor):
                        inputs[i] = h.detach()

                handles.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
            with torch.no_grad():
                out = self.target.run(x, mask, position_ids)
        finally:
            for h in handles:
                h.remove()
        return Observation(out, records, inputs)

    def default(self) -> Observation:
        if self._default is None:
            self._default = self.observe(self.target.sample(2, self.seq_len))
        return self._default

    def records(self) -> list[KernelRecord]:
        recs = self.default().records
        if not recs:
            raise Skip("the target makes no torch.nn.functional.scaled_dot_product_attention call; "
                       "kernel-level checks need it")
        return recs


# ---------------------------------------------------------------------- running
def run_checks(target: Target, names: list[str] | None = None, seq_len: int = 12) -> list[CheckOutcome]:
    """Run the named checks (default: all) on `target`; the model is left as it was."""
    import faultlens.faults.checks  # noqa: F401  (registers the checks)

    ctx = Context(target, seq_len)
    out = []
    for name in names or checks.names():
        spec = checks.get(name)
        t0 = time.perf_counter()
        with target.eval_mode():
            try:
                v = spec.fn(target, ctx)
                status, msg, ev = ("fail" if v.failed else "pass"), v.message, v.evidence
            except Skip as s:
                status, msg, ev = "skip", str(s), {}
            except Exception as exc:  # noqa: BLE001 - a crash inside the target is itself a finding
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                status, msg = "error", f"check crashed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                ev = {"exception": type(exc).__name__, "where": f"{tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}"}
        out.append(CheckOutcome(name, spec.category, spec.root_cause, status, msg, ev, spec.suggestion,
                                time.perf_counter() - t0))
    return out
