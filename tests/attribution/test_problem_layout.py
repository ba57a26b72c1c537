"""One-row tree packing of multi-token answers reproduces the separate-row scores; one mask everywhere."""

from __future__ import annotations

import pytest
import torch

from faultlens.attribution import explain
from faultlens.attribution.problem import Problem
from faultlens.attribution.targets import targets
from faultlens.errors import FaultlensError


@pytest.mark.parametrize("family", ["llama", "mistral", "gpt2", "qwen2"])
@pytest.mark.parametrize("answers", [(" Mia", " Ben"), (" Sally", " Samantha")])
def test_tree_packed_row_equals_separate_scoring(make_adapter, prompt, family, answers):
    ad = make_adapter(family, attn="sdpa", dtype=torch.float64)  # mistral: sliding window 8 < prompt length
    t, f = answers
    problem = Problem.build(ad, prompt, t, f)
    assert not problem.is_chain  # both answers need their own prefix branch
    with torch.no_grad():
        packed = problem.run(ad.model, problem.prompt_embeds(ad.model), targets.get("contrastive_logprob"))
    st, sf = ad.score([prompt, prompt], [t, f])  # the scorer runs each answer in its own row
    assert float(packed) == pytest.approx(sf - st, abs=1e-4)


def test_chain_layout_needs_no_custom_mask(make_adapter, prompt):
    ad = make_adapter("llama")
    p = Problem.from_ids((1, 5, 6), (7, 8, 9), (7, 8), bos=1)  # foil prefix inside the target's chain
    assert p.is_chain and p.extra_ids == (7, 8) and p.foil.positions == (2, 3)
    assert p.attention_kwargs(ad.model, 1, torch.float32, "cpu") == {}


def test_same_mask_token_for_ig_baseline_and_deletion(make_adapter, prompt, pair):
    ad = make_adapter("llama")
    t, f = pair(ad)
    e = explain(ad, prompt, t, f, method="ig", mask="eos")
    assert e.faithfulness["mask_token_id"] == ad.tokenizer.eos_token_id
    z = explain(ad, prompt, t, f, method="cp-lrp", mask="zero")
    assert z.faithfulness["mask_token_id"] is None
    with pytest.raises(FaultlensError, match="Unknown mask"):
        explain(ad, prompt, t, f, mask="blank")
