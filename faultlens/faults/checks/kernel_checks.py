"""Attention Kernel checks: backend parity, silent fallback, mixed-precision parity."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

from faultlens.faults.checks.base import RTOL, Verdict, check, finite, rel_diff

_FUSED = ("flash_attention", "efficient_attention", "cudnn_attention", "fused_attention_overrideable")
_BACKENDS = (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION)


class _OpRecorder(TorchDispatchMode):
    """Counts fused SDPA kernels actually dispatched (the math path decomposes into bmm/softmax)."""

    def __init__(self) -> None:
        super().__init__()
        self.fused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if any(f in str(func) for f in _FUSED):
            self.fused += 1
        return func(*args, **(kwargs or {}))


def _fused_available(c) -> bool:
    try:
        with sdpa_kernel([b for b in _BACKENDS if b != SDPBackend.MATH]):
            F.scaled_dot_product_attention(c.q, c.k, c.v, **c.replace(dropout_p=0.0).kwargs())
        return True
    except RuntimeError:
        return False


@check("backend_parity", "Attention Kernel", "Hardware Incompatibility",
       "Pass contiguous q/k/v of one dtype and a mask of the query dtype or bool; if backends disagree, pin one "
       "with torch.nn.attention.sdpa_kernel and report it.")
def backend_parity(target, ctx) -> Verdict:
    """Every available SDPA backend gives the same result, and the layer is layout-robust (strided inputs)."""
    ev, bad = {}, False
    for rec in ctx.records():
        c = rec.call.replace(dropout_p=0.0)
        ref = None
        for b in _BACKENDS:
            try:
                with sdpa_kernel([b]):
                    out = F.scaled_dot_product_attention(c.q, c.k, c.v, **c.kwargs())
            except RuntimeError:
                continue
            if ref is None:
                ref = out
                continue
            d = rel_diff(out, ref)
            ev[f"L{c.layer}.{b.name}"] = finite(d)
            bad |= d > RTOL
        strided = c.replace(q=c.q.transpose(1, 2).contiguous().transpose(1, 2),
                            k=c.k.transpose(1, 2).contiguous().transpose(1, 2),
                            v=c.v.transpose(1, 2).contiguous().transpose(1, 2))
        dense = c.replace(q=c.q.contiguous(), k=c.k.contiguous(), v=c.v.contiguous())
        d = rel_diff(rec.rerun(strided), rec.rerun(dense))
        ev[f"L{c.layer}.strided"] = finite(d)
        bad |= d > RTOL
    if bad:
        return Verdict(True, "SDPA backends or memory layouts disagree", ev)
    return Verdict(False, "backends agree", ev)


@check("backend_selection", "Attention Kernel", "Silent Fallback",
       "Keep q/k/v contiguous in a supported dtype and drop sdpa_kernel(MATH) pins, so a fused kernel is used "
       "wherever one supports the call.")
def backend_selection(target, ctx) -> Verdict:
    """Calls a fused SDPA backend could run actually dispatch to one (no silent fallback to the math path)."""
    x = target.sample(2, ctx.seq_len)
    rec = _OpRecorder()
    with rec:
        obs = ctx.observe(x)
    recs = obs.records
    if not recs:
        return ctx.records() and Verdict(False, "", {})  # raises Skip
    capable = sum(_fused_available(r.call) for r in recs)
    ev = {"calls": len(recs), "fused_capable": capable, "fused_dispatched": rec.fused}
    if rec.fused < capable:
        return Verdict(True, f"{capable - rec.fused} of {capable} fused-capable attention calls fell back to a "
                             "non-fused path", ev)
    return Verdict(False, "fused kernels used where available", ev)


@check("precision", "Attention Kernel", "Numerical Precision",
       "Upcast scores and softmax to fp32 under autocast, mask with the dtype's finite minimum, and keep "
       "fp16/bf16 outputs within tolerance of fp32.")
def precision(target, ctx) -> Verdict:
    """bf16 autocast outputs are finite and close to fp32; large-norm inputs stay finite in fp32."""
    x = target.sample(2, ctx.seq_len)
    ref = target.run(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = target.run(x)
    d = rel_diff(low, ref)
    ev = {"bf16_rel_diff": finite(d)}
    big_ok = True
    if target.kind == "module":
        big = target.run(x * 300.0)  # scores ~1e5: past fp16 range (65504), fine in fp32
        big_ok = bool(torch.isfinite(big).all())
        ev["large_input_finite"] = big_ok
    if not bool(torch.isfinite(low).all()) or d > 0.25 or not big_ok:
        return Verdict(True, f"reduced precision breaks the output (bf16 rel diff {d:.3g}, large-input finite {big_ok})", ev)
    return Verdict(False, "bf16 parity and finiteness hold", ev)
