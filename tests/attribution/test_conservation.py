"""Conservation and rule correctness of the LRP backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faultlens.attribution import explain, lrp_rules
from faultlens.attribution.rules import identity_rule, norm_rule, scale_grad
from faultlens.attribution.targets import targets



def test_cp_lrp_conserves_logit_difference_on_bias_free_llama(make_adapter, prompt, pair):
    ad = make_adapter("llama", dtype=torch.float64)
    target, foil = pair(ad)
    e = explain(ad, prompt, target, foil, method="cp-lrp", faithfulness=False)
    assert e.objective == "contrastive"
    assert abs(e.logit_diff) > 1e-3
    total = e.relevance.sum() + e.answer_prefix_relevance
    assert abs(total - e.logit_diff) <= 1e-3 * abs(e.logit_diff)
    # every residual state carries the whole difference too (each block is conservative)
    np.testing.assert_allclose(e.layer_relevance.sum(1), e.logit_diff, rtol=1e-3)
    a = explain(ad, prompt, target, foil, method="attnlrp", faithfulness=False)
    print(f"\nAttnLRP relevance sum / logit diff = {a.relevance.sum() / a.logit_diff:.3f} "
          f"(logit diff {a.logit_diff:.3f}; cp-lrp ratio {total / e.logit_diff:.6f})")


def test_multi_token_answers_conserve_with_answer_prefix(make_adapter, prompt):
    ad = make_adapter("llama", dtype=torch.float64)
    e = explain(ad, prompt, " Mia", " Ben", method="cp-lrp", objective="contrastive", faithfulness=False)
    assert len(ad.encode_pair(prompt, " Mia")[1]) > 1  # the case really is multi-token
    np.testing.assert_allclose(e.relevance.sum() + e.answer_prefix_relevance, e.logit_diff, rtol=1e-3)


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "gpt2"])
def test_patched_forward_is_unchanged_and_relevance_finite(make_adapter, family, prompt):
    ad = make_adapter(family)
    ids = torch.tensor([ad.encode(prompt)])
    with torch.no_grad():
        ref = ad.model(input_ids=ids).logits
        with lrp_rules(ad.model, "attnlrp"):
            patched = ad.model(input_ids=ids).logits
    torch.testing.assert_close(patched, ref, rtol=0, atol=1e-6)
    for method in ("cp-lrp", "attnlrp"):
        e = explain(ad, prompt, " Mia", " Ben", method=method, faithfulness=False)
        assert np.isfinite(e.relevance).all() and np.isfinite(e.layer_relevance).all()
        assert e.head_relevance.shape == (2, 4)


def test_eager_and_sdpa_give_the_same_relevance(make_adapter, prompt):
    a = explain(make_adapter("llama", attn="eager", dtype=torch.float64), prompt, " Mia", " Ben", method="attnlrp", faithfulness=False)
    b = explain(make_adapter("llama", attn="sdpa", dtype=torch.float64), prompt, " Mia", " Ben", method="attnlrp", faithfulness=False)
    np.testing.assert_allclose(a.relevance, b.relevance, atol=1e-6)  # eager softmax runs in float32


def test_linearity_in_the_target(make_adapter, prompt, pair):
    ad = make_adapter("llama", dtype=torch.float64)
    t, f = pair(ad)
    d = explain(ad, prompt, t, f, method="attnlrp", objective="contrastive", faithfulness=False)
    rf = explain(ad, prompt, f, t, method="attnlrp", objective="target_logit", faithfulness=False)
    rt = explain(ad, prompt, t, f, method="attnlrp", objective="target_logit", faithfulness=False)
    np.testing.assert_allclose(d.relevance, rf.relevance - rt.relevance, atol=1e-6)  # eager softmax is float32


def test_unsupported_architecture_names_supported_ones(make_adapter, prompt):
    from faultlens.errors import FaultlensError

    ad = make_adapter("gpt_neox")
    with pytest.raises(FaultlensError, match="supported: gpt2, llama, mistral, qwen2"):
        explain(ad, prompt, " Mia", " Ben", method="cp-lrp")


# ---------------------------------------------------------------- rules against closed forms
def test_identity_rule_passes_relevance_through():
    x = torch.tensor([-2.0, -0.5, 0.3, 4.0], dtype=torch.float64, requires_grad=True)
    y = identity_rule(x, torch.nn.functional.silu(x))
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(x.detach() * g, torch.nn.functional.silu(x).detach())  # R_in = R_out


def test_scale_grad_halves_product_relevance():
    a = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([3.0, 0.5], dtype=torch.float64, requires_grad=True)
    out = scale_grad(a * b, 0.5)
    ga, gb = torch.autograd.grad(out.sum(), [a, b])
    torch.testing.assert_close(a * ga + b * gb, (a * b).detach())  # uniform rule: halves sum to the output


@pytest.mark.parametrize("centred", [False, True])
def test_norm_rule_equals_autograd_with_detached_sigma(centred):
    torch.manual_seed(0)
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, dtype=torch.float64)
    xc = x - x.mean(-1, keepdim=True) if centred else x
    var = (xc.pow(2).mean(-1, keepdim=True))
    y_ref = w * xc * (var + 1e-5).rsqrt().detach()
    (g_ref,) = torch.autograd.grad((y_ref * torch.arange(8.0, dtype=torch.float64)).sum(), x)
    y = norm_rule(x, y_ref.detach(), w * (var + 1e-5).rsqrt().detach(), centred)
    (g,) = torch.autograd.grad((y * torch.arange(8.0, dtype=torch.float64)).sum(), x)
    torch.testing.assert_close(g, g_ref)


def test_softmax_gradient_times_input_is_the_deep_taylor_rule():
    # AttnLRP Prop. 3.1: R_in = x ⊙ (R_out − s · ΣR_out) with R_out = s ⊙ c for an upstream c.
    x = torch.tensor([0.2, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([1.0, 3.0, -2.0], dtype=torch.float64)
    s = torch.softmax(x, -1)
    (g,) = torch.autograd.grad((s * c).sum(), x)
    r_out = (s * c).detach()
    torch.testing.assert_close(x.detach() * g, x.detach() * (r_out - s.detach() * r_out.sum()))


def test_targets_registry_has_the_three_kinds():
    assert {"contrastive", "target_logit", "prob_diff", "contrastive_logprob"} <= set(targets.names())
