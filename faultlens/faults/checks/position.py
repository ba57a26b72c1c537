"""Positional Encoding checks: order sensitivity, permutation equivariance without PE, RoPE shift invariance."""

from __future__ import annotations

import torch

from faultlens.faults.checks.base import RTOL, Skip, Verdict, check, finite, rel_diff


def _swap(x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    y = x.clone()
    y[:, [i, j]] = x[:, [j, i]]
    return y


@check("order_sensitivity", "Positional Encoding", "Indexing",
       "Add (or rotate by) the positional encoding on every forward, index it with the true positions, and do not "
       "clamp positions below the supported length.")
def order_sensitivity(target, ctx) -> Verdict:
    """With positional encoding, swapping two tokens (early and late) changes the first attention layer's other outputs.

    The first layer is the one to test: deeper causal layers learn order from the mask alone even
    without PE (Haviv et al. 2022, "Transformer LMs without positional encodings still learn
    positional information"), so only layer 0 is permutation-invariant when PE is missing.
    """
    if target.positional is None:
        raise Skip("declare `positional` (True/False) on the module to test order sensitivity")
    if not target.positional:
        raise Skip("target declares no positional encoding")
    T = 16

    def first_layer(x):
        obs = ctx.observe(x)
        if obs.records:
            return obs.records[0].out.float().transpose(1, 2)  # [B, T, H, dh]
        return obs.out

    x = target.sample(2, T)
    base = first_layer(x)
    ev = {}
    for i, j in ((0, 1), (T - 4, T - 3)):
        y = first_layer(_swap(x, i, j))
        rest = list(range(j + 1, T)) if target.causal else [t for t in range(T) if t not in (i, j)]
        d = rel_diff(y[:, rest], base[:, rest])
        ev[f"swap_{i}_{j}"] = finite(d)
        if d < 10 * RTOL:
            return Verdict(True, f"swapping tokens {i} and {j} leaves the other outputs unchanged (rel change {d:.3g}): "
                                 "positions are not encoded there", ev)
    return Verdict(False, "token order matters", ev)


@check("permutation_equivariance", "QKV Projection", "Dimension",
       "Without positional encoding attention must be permutation-equivariant; a head split/merge that "
       "interleaves tokens and heads (view without transpose) breaks it.")
def permutation_equivariance(target, ctx) -> Verdict:
    """Without PE: f(x[perm]) == f(x)[perm] (encoder) / swapping two early tokens leaves later outputs alone (decoder)."""
    if target.positional is None or target.causal is None:
        raise Skip("declare `positional` and `is_causal` on the module to test permutation equivariance")
    if target.positional:
        raise Skip("target has positional encoding (see order_sensitivity)")
    T = ctx.seq_len
    x = target.sample(2, T)
    base = target.run(x)
    if target.causal:
        y = target.run(_swap(x, 0, 1))
        d = rel_diff(y[:, 2:], base[:, 2:])
    else:
        perm = torch.randperm(T, generator=torch.Generator().manual_seed(5))
        d = rel_diff(target.run(x[:, perm]), base[:, perm])
    if d > RTOL:
        return Verdict(True, f"outputs are not permutation-equivariant (rel diff {d:.3g})", {"rel_diff": finite(d)})
    return Verdict(False, "permutation-equivariant", {"rel_diff": finite(d)})


@check("rope_shift", "Positional Encoding", "Relative Position",
       "Rotate q and k (never v) by the same RoPE angles from the true position ids; do not clamp or rescale "
       "positions inside the trained range.")
def rope_shift(target, ctx) -> Verdict:
    """With RoPE, shifting every position id by a constant leaves outputs unchanged (scores depend on i - j only)."""
    if target.kind != "hf" or not target.rope:
        raise Skip("needs an HF model with rotary position embeddings")
    T = ctx.seq_len
    x = target.sample(2, T)
    pos = torch.arange(T)[None].expand(2, T)
    ev = {}
    base = target.run(x, position_ids=pos)
    for shift in (5, 40):
        d = rel_diff(target.run(x, position_ids=pos + shift), base)
        ev[f"shift_{shift}"] = finite(d)
        if d > 1e-3:
            return Verdict(True, f"outputs change when all positions shift by {shift} (rel diff {d:.3g})", ev)
    return Verdict(False, "shift-invariant", ev)
