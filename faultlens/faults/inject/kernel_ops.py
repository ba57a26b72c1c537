"""Injectors that act on the attention-kernel call: masking, score, kernel, variant and head-layout faults.

`args`-stage faults change what the kernel receives (bugs upstream of the kernel: mask creation,
scale, head reshapes); `kernel`-stage faults change how it computes (bugs in the kernel itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from faultlens.faults.inject.base import injector, needs, on_kernel
from faultlens.faults.kernel import allowed_mask, expand_kv, manual_attention


def _set_allowed(c, allowed: torch.Tensor) -> None:
    c.attn_mask, c.is_causal = allowed, False


def _grid(c):
    T, S = c.q.shape[-2], c.k.shape[-2]
    return torch.arange(S - T, S)[:, None], torch.arange(S)[None, :]  # query / key positions


def _causal(t):
    return needs(bool(t.causal), "needs a causal (decoder) target")


# ---------------------------------------------------------------- Attention Masking
@injector("MZM")
def _mzm(t, undo):
    on_kernel(t, "args", lambda c: _set_allowed(c, torch.ones_like(allowed_mask(c))), undo)


@injector("MIM")
def _mim(t, undo):
    on_kernel(t, "args", lambda c: _set_allowed(c, ~allowed_mask(c)), undo)


@injector("MRM")
def _mrm(t, undo):
    def fn(c):
        a = allowed_mask(c)
        a = a.expand(c.q.shape[0], *a.shape[1:])
        if a.shape[-1] == a.shape[-2]:
            a = a.transpose(-1, -2)  # masks queries instead of keys
        _set_allowed(c, a.roll(1, dims=0))  # and the batch rows are misaligned
    on_kernel(t, "args", fn, undo)


@injector("MCB", applies=_causal)
def _mcb(t, undo):
    def fn(c):
        q, k = _grid(c)
        _set_allowed(c, allowed_mask(c) | (k == q + 1))  # the next token is visible
    on_kernel(t, "args", fn, undo)


@injector("MAS")
def _mas(t, undo):
    def probs(s, allowed):
        return torch.softmax(s.float(), dim=-1).masked_fill(~allowed, 0.0).to(s.dtype)  # masked after softmax
    on_kernel(t, "kernel", lambda c, compute: manual_attention(c, probs_fn=probs), undo)


# ---------------------------------------------------------------- Attention Score
@injector("SDS")
def _sds(t, undo):
    def fn(c):
        c.scale = 1.0
    on_kernel(t, "args", fn, undo)


@injector("SPD")
def _spd(t, undo):
    on_kernel(t, "kernel", lambda c, compute: manual_attention(c, scores_fn=lambda s: F.dropout(s, 0.1)), undo)


@injector("SUC")
def _suc(t, undo):
    on_kernel(t, "kernel", lambda c, compute: manual_attention(c, scores_fn=lambda s: s.half().float()), undo)


@injector("SWD")
def _swd(t, undo):
    def probs(s, allowed):
        return torch.softmax(s.masked_fill(~allowed, torch.finfo(s.dtype).min).float(), dim=-2).to(s.dtype)
    on_kernel(t, "kernel", lambda c, compute: manual_attention(c, probs_fn=probs), undo)


# ---------------------------------------------------------------- Attention Kernel
@injector("KSB")
def _ksb(t, undo):
    def fn(c, compute):
        with sdpa_kernel([SDPBackend.MATH]):
            return compute(c)
    on_kernel(t, "kernel", fn, undo)


@injector("KMD")
def _kmd(t, undo):
    def fn(c):
        c.dropout_p = 0.1
    on_kernel(t, "args", fn, undo)


@injector("KFT")
def _kft(t, undo):
    def fn(c, compute):
        half = c.replace(q=c.q.half(), k=c.k.half(), v=c.v.half(),
                         attn_mask=c.attn_mask.half() if c.attn_mask is not None and c.attn_mask.is_floating_point() else c.attn_mask)
        return compute(half).to(c.q.dtype)
    on_kernel(t, "kernel", fn, undo)


@injector("KRP")
def _krp(t, undo):
    on_kernel(t, "kernel", lambda c, compute: manual_attention(c, dtype=torch.bfloat16), undo)


@injector("KMC")
def _kmc(t, undo):
    chunk = 4

    def fn(c, compute):
        q, k, v = c.q, expand_kv(c.k, c.q.shape[1]), expand_kv(c.v, c.q.shape[1])
        s = (q @ k.transpose(-1, -2)) * c.effective_scale  # [B, H, T, S]
        allowed = allowed_mask(c).expand_as(s)
        outs, has = [], []
        for j in range(0, s.shape[-1], chunk):  # per-chunk softmax merged by plain averaging (wrong merge)
            sj = s[..., j:j + chunk].masked_fill(~allowed[..., j:j + chunk], float("-inf"))
            pj = torch.softmax(sj, dim=-1).nan_to_num(0.0)
            outs.append(pj @ v[..., j:j + chunk, :])
            has.append(allowed[..., j:j + chunk].any(-1, keepdim=True).float())
        return torch.stack(outs).sum(0) / torch.stack(has).sum(0).clamp_min(1.0)
    on_kernel(t, "kernel", fn, undo)


# ---------------------------------------------------------------- Attention Variant
@injector("VSH")
def _vsh(t, undo):
    def fn(c):
        c.q = c.q[:, :1].expand_as(c.q).contiguous()
        c.k = c.k[:, :1].expand_as(c.k).contiguous()
        c.v = c.v[:, :1].expand_as(c.v).contiguous()
    on_kernel(t, "args", fn, undo)


@injector("VEC", applies=lambda t: needs(t.causal is False, "needs an encoder (bidirectional) target"))
def _vec(t, undo):
    def fn(c):
        q, k = _grid(c)
        _set_allowed(c, allowed_mask(c) & (k <= q))
    on_kernel(t, "args", fn, undo)


@injector("VSW")
def _vsw(t, undo):
    windowed = t.expected_window(0) is not None

    def fn(c):
        q, k = _grid(c)
        if windowed:  # layer 0 should slide but gets full (causal) attention
            _set_allowed(c, (k <= q)[None, None])
        else:  # layer 0 should be full but gets a window of 4
            _set_allowed(c, allowed_mask(c) & (q - k < 4))
    on_kernel(t, "args", fn, undo, layers=[0])


def _groups(t) -> int:
    from faultlens.faults.checks.variant import _groups as g

    return g(t)


@injector("VGR", applies=lambda t: needs(1 < _groups(t) and t.projections()[0] is not None
                                         and t.projections()[0].n_kv_heads > 1, "needs GQA with >1 KV head"))
def _vgr(t, undo):
    g = _groups(t)

    def fn(c):
        H = c.q.shape[1]
        k, v = (c.k[:, ::g], c.v[:, ::g]) if c.k.shape[1] == H else (c.k, c.v)
        c.k, c.v, c.enable_gqa = k.repeat(1, g, 1, 1), v.repeat(1, g, 1, 1), False  # tiled, not interleaved
    on_kernel(t, "args", fn, undo)


# ---------------------------------------------------------------- QKV head layout (in the kernel call)
@injector("QSW")
def _qsw(t, undo):
    def fn(c):
        H, Hk = c.q.shape[1], c.k.shape[1]
        if H == Hk:
            c.q, c.k = c.k, c.q
        else:
            c.q, c.k = expand_kv(c.k, H), c.q[:, :: H // Hk].contiguous()
    on_kernel(t, "args", fn, undo)


def _merge_pairs(x: torch.Tensor) -> torch.Tensor:
    B, H, T, dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H // 2, 2 * dh).transpose(1, 2)  # [B, H/2, T, 2 dh]


@injector("QHD", applies=lambda t: needs(all(p is None or (p.n_heads % 2 == 0 and p.n_kv_heads % 2 == 0)
                                             for p in t.projections()), "needs an even number of (KV) heads"))
def _qhd(t, undo):
    def fn(c):
        c.q, c.k, c.v = _merge_pairs(c.q), _merge_pairs(c.k), _merge_pairs(c.v)
    on_kernel(t, "args", fn, undo)


def _no_transpose(x: torch.Tensor) -> torch.Tensor:
    B, H, T, dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * dh).contiguous().view(B, H, T, dh)  # tokens and heads interleaved


@injector("QRS")
def _qrs(t, undo):
    def fn(c):
        if c.q.shape[-2] > 1:
            c.q, c.k, c.v = _no_transpose(c.q), _no_transpose(c.k), _no_transpose(c.v)
    on_kernel(t, "args", fn, undo)
