"""KV Cache injectors (HF decoders): the cache handed to one attention layer is wrapped in a faulty proxy."""

from __future__ import annotations


from faultlens.faults.inject.base import injector, needs


class _CacheProxy:
    """Delegates to the real cache except `update`, which goes through `fault(inner, k, v, layer_idx, *a, **kw)`."""

    def __init__(self, inner, fault) -> None:
        self._inner, self._fault = inner, fault

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        return self._fault(self._inner, key_states, value_states, layer_idx, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _is_cache(x) -> bool:
    return hasattr(x, "update") and hasattr(x, "layers") and hasattr(x, "get_seq_length")


def _wrap_cache(t, undo, fault, layer: int = 0) -> None:
    def pre(_m, args, kwargs):
        for k, v in kwargs.items():
            if _is_cache(v):
                kwargs[k] = _CacheProxy(v, fault)
                return args, kwargs
        return None

    undo.append(t.attn[layer].register_forward_pre_hook(pre, with_kwargs=True).remove)


def _decoder(t):
    return needs(t.supports_cache, "needs an HF decoder with a KV cache")


@injector("CST", applies=_decoder)
def _cst(t, undo):
    state = {}

    def fault(inner, k, v, idx, *a, **kw):
        K, V = inner.update(k, v, idx, *a, **kw)
        if k.shape[-2] > 1:  # prefill: remember how long the cache was when it was last refreshed
            state["n"] = K.shape[-2]
            return K, V
        n = state.get("n", K.shape[-2])
        K, V = K.clone(), V.clone()
        if K.shape[-2] - 1 > n:  # entries written after prefill read back stale (the last prefill entry)
            K[:, :, n:-1], V[:, :, n:-1] = K[:, :, n - 1:n], V[:, :, n - 1:n]
        return K, V
    _wrap_cache(t, undo, fault)


@injector("CDU", applies=_decoder)
def _cdu(t, undo):
    def fault(inner, k, v, idx, *a, **kw):
        K, V = inner.update(k, v, idx, *a, **kw)
        if k.shape[-2] == 1:  # the step attends to itself, but its slot in the cache is never written
            out = K.clone(), V.clone()
            K[:, :, -1:] = 0
            V[:, :, -1:] = 0
            return out
        return K, V
    _wrap_cache(t, undo, fault)


@injector("COB", applies=_decoder)
def _cob(t, undo):
    def fault(inner, k, v, idx, *a, **kw):
        K, V = inner.update(k, v, idx, *a, **kw)
        if k.shape[-2] == 1 and K.shape[-2] > 1:  # written at index pos - 1: overwrites the previous entry
            K[:, :, -2:-1], V[:, :, -2:-1] = K[:, :, -1:].clone(), V[:, :, -1:].clone()
            K[:, :, -1:] = 0
            V[:, :, -1:] = 0
        return K, V
    _wrap_cache(t, undo, fault)


@injector("CTR", applies=_decoder)
def _ctr(t, undo):
    max_len = 6

    def fault(inner, k, v, idx, *a, **kw):
        K, V = inner.update(k, v, idx, *a, **kw)
        layer = inner.layers[idx]
        if K.shape[-2] > max_len and hasattr(layer, "keys"):  # keep only the oldest max_len entries
            layer.keys, layer.values = layer.keys[:, :, :max_len], layer.values[:, :, :max_len]
        return K, V
    _wrap_cache(t, undo, fault, layer=len(t.attn) - 1)


@injector("CLK", applies=_decoder)
def _clk(t, undo):
    prev: dict = {}

    def fault(inner, k, v, idx, *a, **kw):
        K, V = inner.update(k, v, idx, *a, **kw)
        if k.shape[-2] > 1:  # a new request: its first slot still holds the previous request's K/V
            mine = (K[:, :, :1].clone(), V[:, :, :1].clone())
            old = prev.get("kv")
            if old is not None and old[0].shape == mine[0].shape:
                K[:, :, :1], V[:, :, :1] = old
            prev["kv"] = mine
        return K, V
    _wrap_cache(t, undo, fault)
