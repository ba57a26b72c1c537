"""Every check: catches its planted fault and passes the clean twin (known-answer tests)."""

import pytest
import torch

from faultlens.faults.checks import checks, run_checks
from faultlens.faults.inject import plant
from faultlens.faults.kernel import add_kernel_hook

from faultlens.faults.bench import default_targets


def build(name):
    return default_targets()[name]()

# check -> (target, operator that the check is the natural detector for)
CASES = {
    "causality": ("reference_causal", "MCB"),
    "padding": ("reference_encoder", "MZM"),
    "row_stochastic": ("reference_causal", "MAS"),
    "sdpa_reference": ("reference_causal", "SUC"),
    "scaling": ("reference_causal", "SDS"),
    "eval_determinism": ("reference_causal", "SPD"),
    "projection_reference": ("reference_causal", "QSW"),
    "head_independence": ("reference_causal", "QTH"),
    "projection_init": ("reference_causal", "QZQ"),
    "grad_reachability": ("reference_causal", "QFG"),
    "state_dict_roundtrip": ("reference_causal", "QNR"),
    "order_sensitivity": ("reference_causal", "POE"),
    "permutation_equivariance": ("reference_encoder", "QRS"),
    "rope_shift": ("llama", "PTL"),
    "kv_cache_equality": ("gpt2", "COB"),
    "request_isolation": ("llama", "CLK"),
    "cache_length": ("gpt2", "CTR"),
    "backend_selection": ("reference_causal", "KSB"),
    "precision": ("reference_causal", "SUC"),
    "bidirectionality": ("reference_encoder", "VEC"),
    "head_diversity": ("reference_causal", "VSH"),
    "variant_audit": ("mistral", "VSW"),
    "gqa_parity": ("reference_gqa", "VGR"),
}


def test_every_check_has_a_known_answer_case():
    assert set(CASES) | {"backend_parity"} == set(checks.names())


def _status(target, name):
    (o,) = run_checks(target, [name])
    return o


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_catches_planted_fault_and_passes_clean_twin(name):
    target_name, op = CASES[name]
    t = build(target_name)
    clean = _status(t, name)
    assert clean.status == "pass", (clean.message, clean.evidence)
    with plant(t, op):
        bad = _status(t, name)
    assert bad.status == "fail", (op, bad.status, bad.message)
    assert bad.evidence, "a failing check must carry evidence"
    assert _status(t, name).status == "pass"  # and the fault is gone again


def test_backend_parity_catches_layout_dependent_kernel():
    """A kernel that reads strided q/k/v as if contiguous (a layout bug) disagrees with itself."""
    t = build("reference_causal")
    assert _status(t, "backend_parity").status == "pass"

    def as_if_contiguous(c, compute):
        def raw(x):
            return x if x.is_contiguous() else torch.as_strided(x.contiguous(), x.shape, x.stride())
        return compute(c.replace(q=raw(c.q), k=raw(c.k), v=raw(c.v)))

    h = add_kernel_hook(t.module, "kernel", as_if_contiguous)
    try:
        bad = _status(t, "backend_parity")
    finally:
        h.remove()
    assert bad.status == "fail", bad.message


def test_no_findings_on_stock_targets():
    for name in ("gpt2", "bert", "reference_causal", "reference_encoder", "reference_gqa"):
        found = [(o.check, o.message) for o in run_checks(build(name)) if o.is_finding]
        assert not found, (name, found)
