"""Injectors are reversible: after remove() the weights, hooks and outputs are exactly as before."""

import pytest
import torch

from faultlens.errors import FaultlensError
from faultlens.faults.inject import applicable, faults, plant
from faultlens.faults.taxonomy import CATEGORIES, OPERATORS

from faultlens.faults.bench import default_targets


def build(name):
    return default_targets()[name]()


def _hooks(m):
    return sum(len(x._forward_hooks) + len(x._forward_pre_hooks) + len(x.__dict__.get("_faultlens_kernel_hooks", []))
               + ("forward" in x.__dict__) for x in m.modules())


def test_every_operator_has_an_injector_and_valid_taxonomy():
    assert set(faults.names()) == {o.op for o in OPERATORS}
    assert sum(len(v) for v in CATEGORIES.values()) == 25
    covered = {(o.category, o.root_cause) for o in OPERATORS}
    assert covered == {(c, r) for c, rs in CATEGORIES.items() for r in rs}  # one operator per root cause at least


@pytest.mark.parametrize("target_name", ["llama", "reference_gqa"])
def test_plant_then_remove_restores_everything(target_name):
    t = build(target_name)
    x = t.sample(2, 10)
    with torch.no_grad():
        y0 = t.run(x)
    sd0 = {k: v.clone() for k, v in t.module.state_dict().items()}
    n_hooks = _hooks(t.module)
    changed = 0
    for op in faults.names():
        if applicable(t, op):
            continue
        with plant(t, op):
            with torch.no_grad():
                try:
                    changed += not torch.equal(t.run(x), y0)
                except Exception:  # noqa: BLE001 - some faults crash the forward; that is a change too
                    changed += 1
        assert _hooks(t.module) == n_hooks, op
        sd = t.module.state_dict()
        assert sd.keys() == sd0.keys() and all(torch.equal(sd[k], sd0[k]) for k in sd0), op
        assert all(p.requires_grad for p in t.module.parameters()), op
        with torch.no_grad():
            assert torch.equal(t.run(x), y0), op
    assert changed > 10  # most faults visibly change a plain forward


def test_inapplicable_fault_is_a_clear_error():
    t = build("bert")
    assert applicable(t, "CDU")
    with pytest.raises(FaultlensError, match="does not apply"):
        plant(t, "CDU")
    with pytest.raises(FaultlensError, match="Did you mean"):
        plant(t, "MZN")
