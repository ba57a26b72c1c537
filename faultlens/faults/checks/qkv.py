"""QKV Projection checks: projection reference, head independence, weight init, gradients, state-dict round trip."""

from __future__ import annotations

import io
import itertools

import torch

from faultlens.faults.checks.base import RTOL, Skip, Verdict, check, finite, rel_diff
from faultlens.faults.kernel import expand_kv
from faultlens.faults.projections import KINDS


def _layer_projections(target):
    projs = target.projections()
    if not any(p is not None for p in projs):
        raise Skip("no recognisable q/k/v projections (name them q_proj/k_proj/v_proj or query/key/value)")
    return projs


@check("projection_reference", "QKV Projection", "Dimension",
       "Split heads with view(B, T, H, d_head).transpose(1, 2), keep q from W_q and k from W_k, and give the "
       "kernel n_heads x d_head exactly as configured.")
def projection_reference(target, ctx) -> Verdict:
    """q/k/v reaching the kernel match x @ W^T + b from the module's own weights (per-head norms for RoPE'd q/k)."""
    projs = _layer_projections(target)
    obs = ctx.default()
    if not obs.records:
        raise Skip("no scaled_dot_product_attention call to compare against")
    by_layer = {}
    for rec in obs.records:
        by_layer.setdefault(rec.call.layer, rec)
    bad, worst = {}, 0.0
    for i, p in enumerate(projs):
        if p is None or i not in obs.inputs or i not in by_layer:
            continue
        exp = p.project(obs.inputs[i].float())
        c = by_layer[i].call
        for kind, got in (("q", c.q), ("k", c.k), ("v", c.v)):
            e = exp[kind]
            if got.shape[1] != e.shape[1] and got.shape[1] == p.n_heads and kind != "q":
                e = expand_kv(e, p.n_heads)  # the model repeated KV heads before the kernel
            if got.shape != e.shape:
                bad[f"L{i}.{kind}"] = {"got_shape": list(got.shape), "expected_shape": list(e.shape)}
                continue
            if kind == "v":
                d = rel_diff(got, e)
            elif p.has_qk_norm:
                continue
            else:  # RoPE rotates pairs of dims: per-head, per-token norms survive it
                d = rel_diff(got.float().norm(dim=-1), e.norm(dim=-1))
            worst = max(worst, d)
            if d > 1e-3:
                bad[f"L{i}.{kind}"] = {"rel_diff": finite(d)}
    if bad:
        return Verdict(True, f"q/k/v given to the kernel do not come from the projections as configured: "
                             f"{', '.join(sorted(bad))}", {"mismatches": bad})
    return Verdict(False, "q/k/v match the projections", {"max_rel_diff": finite(worst)})


def _identical_pairs(x: torch.Tensor) -> list[list[int]]:
    """Pairs of heads (dim 1) whose tensors are equal up to fp32 noise."""
    scale = float(x.abs().max().clamp_min(1e-12))
    pairs = []
    for a, b in itertools.combinations(range(x.shape[1]), 2):
        if float((x[:, a] - x[:, b]).abs().max()) <= 1e-6 * scale:
            pairs.append([a, b])
    return pairs


@check("head_independence", "QKV Projection", "Head Interaction",
       "Give every head its own rows of W_q/W_k/W_v (no tied or copied slices) and keep heads separate "
       "between the split and the merge.")
def head_independence(target, ctx) -> Verdict:
    """No two query heads are identical, and ablating one head's query changes only that head's output."""
    bad = {}
    for rec in ctx.records():
        c = rec.call
        if c.q.shape[1] < 2 or c.q.shape[-2] < 2:
            continue
        tied = _identical_pairs(c.q.float())
        if tied:
            bad[f"L{c.layer}.tied_query_heads"] = tied
        H = c.q.shape[1]
        for h in (0, H - 1):
            q2 = c.q.clone()
            q2[:, h] = 0
            out2 = rec.rerun(c.replace(q=q2))
            others = [j for j in range(H) if j != h]
            if out2.shape != rec.out.shape:
                continue
            d = rel_diff(out2[:, others], rec.out[:, others])
            if d > RTOL:
                bad[f"L{c.layer}.ablate_head{h}"] = {"other_heads_rel_change": finite(d)}
    if bad:
        return Verdict(True, "heads are tied or leak into each other", bad)
    return Verdict(False, "heads are independent", {})


@check("projection_init", "QKV Projection", "Parameter Initialization",
       "Initialise W_q/W_k/W_v with a random init (e.g. normal(0, 0.02) or Xavier), never zeros or a "
       "constant, and check checkpoint loading filled them.")
def projection_init(target, ctx) -> Verdict:
    """No Q/K/V weight (or head slice of it) is all zeros or constant."""
    bad = {}
    for i, p in enumerate(_layer_projections(target)):
        if p is None:
            continue
        for kind in KINDS:
            W, _ = p.get(kind)
            for h in range(p.heads(kind)):
                rows = W[p.head_rows(h)]
                if float(rows.std()) < 1e-8:
                    bad.setdefault(f"L{i}.{kind}", []).append(h)
    if bad:
        return Verdict(True, f"degenerate (zero/constant) projection weights: {bad}", {"heads": bad})
    return Verdict(False, "projection weights are non-degenerate", {})


@check("grad_reachability", "QKV Projection", "Dynamic Parameter Registration",
       "Register projections as nn.Parameter/nn.Linear attributes (not plain tensors or Python lists), keep "
       "requires_grad=True, and make sure every projection feeds the output.")
def grad_reachability(target, ctx) -> Verdict:
    """After one backward, every Q/K/V weight is a registered, trainable parameter with a non-zero gradient."""
    projs = target.projections()
    registered = {id(p) for p in target.module.parameters()}
    watched: dict[str, torch.Tensor] = {}
    for i, p in enumerate(projs):
        if p is None:
            continue
        for kind in KINDS:
            for owner, attr in p.params(kind):
                watched[f"L{i}.{kind}"] = getattr(owner, attr)
    if not watched:
        watched = dict(target.module.named_parameters())
    saved = {n: (t.grad, t.requires_grad) for n, t in target.module.named_parameters()}
    bad = {}
    try:
        for n, t in watched.items():
            if id(t) not in registered or not isinstance(t, torch.nn.Parameter):
                bad[n] = "not a registered parameter"
            elif not t.requires_grad:
                bad[n] = "requires_grad is False"
        for _, t in target.module.named_parameters():
            t.grad = None
        x = target.sample(2, ctx.seq_len)
        with torch.enable_grad():
            out = target.run(x)
            g = torch.Generator().manual_seed(3)
            (out * torch.randn(out.shape, generator=g)).sum().backward()
        for n, t in watched.items():
            if n in bad:
                continue
            if t.grad is None or float(t.grad.abs().max()) == 0.0:
                bad[n] = "zero gradient"
    finally:
        for n, t in target.module.named_parameters():
            t.grad = saved[n][0]
    if bad:
        return Verdict(True, f"{len(bad)} projection(s) get no training signal: {bad}", {"params": bad})
    return Verdict(False, "all projections receive gradients", {"n_params": len(watched)})


def _transfer_patches(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Give `dst` the same instance-level hooks as `src` (hooks emulate code, so the twin runs the same code)."""
    from faultlens.faults.kernel import _HOOKS_ATTR, add_kernel_hook

    for (_, a), (_, b) in zip(src.named_modules(), dst.named_modules()):
        for h in a.__dict__.get(_HOOKS_ATTR, []):
            if h.stage != "observe":
                add_kernel_hook(b, h.stage, h.fn, a.__dict__.get("_faultlens_layer", 0))
        for k, fn in a._forward_pre_hooks.items():
            b.register_forward_pre_hook(fn, with_kwargs=k in a._forward_pre_hooks_with_kwargs)
        for k, fn in a._forward_hooks.items():
            b.register_forward_hook(fn, with_kwargs=k in a._forward_hooks_with_kwargs)


@torch.no_grad()
def _scramble_unsaved(m: torch.nn.Module) -> None:
    """Re-randomise parameters and plain float tensor attributes of the twin, so only what the state dict
    carries can make it match (a deterministic factory would otherwise rebuild unregistered weights)."""
    g = torch.Generator().manual_seed(1234)
    for mod in m.modules():
        for name, v in list(vars(mod).items()):
            if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter) and v.is_floating_point() \
                    and v.dim() >= 2:
                setattr(mod, name, torch.randn(v.shape, generator=g, dtype=v.dtype))
    for p in m.parameters():
        p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


@check("state_dict_roundtrip", "QKV Projection", "Dynamic Parameter Registration",
       "Keep every weight in the state dict (register parameters/buffers) and load checkpoints with strict=True.")
def state_dict_roundtrip(target, ctx) -> Verdict:
    """Saving the state dict and loading it into a freshly built twin reproduces the outputs, no missing keys."""
    try:
        twin = target.fresh()
    except Exception as exc:  # noqa: BLE001
        raise Skip(f"cannot rebuild the target ({exc})") from None
    _scramble_unsaved(twin)
    buf = io.BytesIO()
    torch.save(target.module.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    res = twin.load_state_dict(sd, strict=False)
    _transfer_patches(target.module, twin)
    x = target.sample(2, ctx.seq_len)
    a = target.run(x)
    saved = target.module
    try:
        target.module = twin
        b = target.run(x)
    finally:
        target.module = saved
    d = rel_diff(b, a)
    ev = {"missing_keys": list(res.missing_keys)[:10], "unexpected_keys": list(res.unexpected_keys)[:10], "rel_diff": finite(d)}
    if d > RTOL or res.unexpected_keys:
        return Verdict(True, f"load(save(model)) does not reproduce the model (rel diff {d:.3g})", ev)
    return Verdict(False, "state dict round trip is exact", ev)
