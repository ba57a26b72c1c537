"""Attribution observes: weights, hooks and forward outputs are unchanged afterwards, even on error."""

from __future__ import annotations

import pytest
import torch

from faultlens.attribution import attribution_graph, explain, lrp_rules
from faultlens.attribution.targets import targets


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def _snapshot(ad, prompt):
    ids = torch.tensor([ad.encode(prompt)])
    with torch.no_grad():
        logits = ad.model(input_ids=ids).logits.clone()
    state = {k: v.clone() for k, v in ad.model.state_dict().items()}
    return state, _hooks(ad.model), logits, ids, ad.model.config._attn_implementation


def _assert_same(ad, snap):
    state, hooks, logits, ids, impl = snap
    now = ad.model.state_dict()
    assert state.keys() == now.keys()
    for k in state:
        assert torch.equal(state[k], now[k]), k
    assert _hooks(ad.model) == hooks
    assert ad.model.config._attn_implementation == impl
    assert all(p.grad is None for p in ad.model.parameters())
    assert all("forward" not in vars(m) for m in ad.model.modules())
    with torch.no_grad():
        assert torch.equal(ad.model(input_ids=ids).logits, logits)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("method", ["cp-lrp", "attnlrp", "grad_x_input", "rollout"])
def test_model_unchanged_after_each_method(make_adapter, prompt, family, method):
    ad = make_adapter(family, attn="sdpa")
    snap = _snapshot(ad, prompt)
    explain(ad, prompt, " Mia", " Ben", method=method)
    _assert_same(ad, snap)


def test_model_unchanged_after_ig_and_graph(make_adapter, prompt):
    from faultlens.attribution.methods import make_ig

    ad = make_adapter("llama")
    snap = _snapshot(ad, prompt)
    make_ig(n_steps=4)(ad.model, __import__("faultlens.attribution.problem", fromlist=["Problem"]).Problem.build(
        ad, prompt, " Mia", " Ben"), targets.get("contrastive"))
    attribution_graph(ad, prompt, " Mia", " Ben")
    _assert_same(ad, snap)


def test_model_unchanged_when_attribution_raises(make_adapter, prompt):
    ad = make_adapter("llama")
    snap = _snapshot(ad, prompt)
    with pytest.raises(RuntimeError, match="boom"):
        with lrp_rules(ad.model, "attnlrp"):
            ad.model(input_ids=snap[3])
            raise RuntimeError("boom")
    _assert_same(ad, snap)

    def bad_target(r, t, f):
        raise RuntimeError("boom in target")

    targets.add("_raises_for_test", bad_target)
    try:
        with pytest.raises(RuntimeError, match="boom in target"):
            explain(ad, prompt, " Mia", " Ben", method="attnlrp", objective="_raises_for_test")
    finally:
        targets._items.pop("_raises_for_test")
    _assert_same(ad, snap)
