"""KV Cache checks (HF decoders): cached vs full forward, request isolation, cache length."""

from __future__ import annotations

import torch

from faultlens.faults.checks.base import Skip, Verdict, check, finite, rel_diff

CACHE_RTOL = 1e-4


def decode(target, ids: torch.Tensor, n_prefill: int):
    """Prefill `n_prefill` tokens then feed the rest one at a time; logits ``[B, T, V]`` and the cache."""
    from transformers import DynamicCache

    model = target.module
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids[:, :n_prefill], cache=cache, use_cache=True)
    logits = [out.logits]
    for t in range(n_prefill, ids.shape[1]):
        out = model(input_ids=ids[:, t:t + 1], cache=cache, use_cache=True)
        logits.append(out.logits)
    return torch.cat(logits, dim=1).float(), cache


def _need_cache(target):
    if not target.supports_cache:
        raise Skip("needs an HF decoder (KV cache)")


@check("kv_cache_equality", "KV Cache", "Cache Invalidation",
       "Append each step's K/V to the cache before attending, write at index past_length (not past_length-1), and "
       "offset position ids by the cached length.")
def kv_cache_equality(target, ctx) -> Verdict:
    """Prefill + one-token decoding reproduces the full forward's logits at every position."""
    _need_cache(target)
    T, n0 = ctx.seq_len, 4
    ids = target.sample(2, T, seed=11)
    full = target.run(ids)
    cached, _ = decode(target, ids, n0)
    per = [rel_diff(cached[:, t], full[:, t]) for t in range(T)]
    bad = [t for t, d in enumerate(per) if d > CACHE_RTOL]
    ev = {"prefill": n0, "first_bad_position": bad[0] if bad else None, "max_rel_diff": finite(max(per))}
    if bad:
        return Verdict(True, f"cached decoding differs from the full forward from position {bad[0]}", ev)
    return Verdict(False, "cached decoding matches the full forward", ev)


@check("request_isolation", "KV Cache", "Distributed Synchronization",
       "Give every request its own cache (or reset it), and never reuse cache slots or tensors across requests "
       "or batch rows.")
def request_isolation(target, ctx) -> Verdict:
    """Decoding request B gives the same logits whatever ran before it, and alone or batched with another request."""
    _need_cache(target)
    T, n0 = 8, 3
    a, b, c = (target.sample(1, T, seed=s) for s in (21, 22, 23))
    decode(target, a, n0)
    b1, _ = decode(target, b, n0)
    decode(target, c, n0)
    b2, _ = decode(target, b, n0)
    both, _ = decode(target, torch.cat([a, b]), n0)
    d_seq, d_batch = rel_diff(b2, b1), rel_diff(both[1:], b1)
    ev = {"after_other_request_rel_diff": finite(d_seq), "batched_rel_diff": finite(d_batch)}
    if d_seq > CACHE_RTOL or d_batch > CACHE_RTOL:
        return Verdict(True, "a request's outputs depend on other requests sharing the model/cache", ev)
    return Verdict(False, "requests are isolated", ev)


@check("cache_length", "KV Cache", "Memory Layout",
       "Keep prefill + n entries per full-attention layer (the window for sliding layers); do not truncate or "
       "overwrite entries.")
def cache_length(target, ctx) -> Verdict:
    """After prefill + n steps each layer caches prefill + n positions (or its sliding window)."""
    _need_cache(target)
    T, n0 = ctx.seq_len, 4
    _, cache = decode(target, target.sample(1, T, seed=31), n0)
    bad, got = {}, {}
    for i, layer in enumerate(getattr(cache, "layers", [])):
        keys = getattr(layer, "keys", None)
        if keys is None:
            continue
        n = int(keys.shape[-2])
        got[str(i)] = n
        w = target.expected_window(i)
        ok = n == T if not w else min(T, w - 1) <= n <= min(T, w)
        if not ok:
            bad[str(i)] = {"cached": n, "expected": T if not w else f"{min(T, w - 1)}..{min(T, w)}"}
    if not got:
        raise Skip("cache layers expose no keys")
    if bad:
        return Verdict(True, f"cache length wrong in layer(s) {', '.join(bad)}", {"layers": bad, "tokens": T})
    return Verdict(False, "cache length as expected", {"cached": got, "tokens": T})
