"""HF parity, batch/padding invariance, prefix sharing and capture side-effect freedom."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faultlens.models.hf import HFAdapter, ScoreConfig
from faultlens.models.tiny import FAMILIES
from tests.conftest import tiny_adapter

PROMPTS = ["Once upon a time there was a girl named Mia.", "The cat sat", "Lily liked to play in the park. One day",
           "Tom had a big red ball. He threw it"] * 2
CONTS = [" Mia", " on the mat and slept", " she", " far away", " Ben", " under", " he ran away fast", "!"]


def reference_scores(model, tok, prompts, conts):
    """Independent one-at-a-time computation with a plain HF forward on the full sequence."""
    ad = HFAdapter(model, tok)
    out = []
    for p, c in zip(prompts, conts):
        ctx, cont = ad.encode_pair(p, c)
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            lp = F.log_softmax(model(ids).logits[0].float(), -1)
        out.append(sum(float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)))
    return out


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_scores_match_plain_hf_forward(family, attn, tokenizer):
    ad = tiny_adapter(family, tokenizer, attn)
    ref = reference_scores(ad.model, tokenizer, PROMPTS, CONTS)
    got = ad.score(PROMPTS, CONTS)
    assert max(abs(a - b) for a, b in zip(got, ref)) < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_logits_equal_hf_forward(family, tokenizer):
    ad = tiny_adapter(family, tokenizer, "sdpa")
    batch = ad.tokenize_batch(["Once upon a time, a little dog ran to the park."])
    with torch.no_grad():
        ref = ad.model(input_ids=batch["input_ids"]).logits
    got = ad.forward(["Once upon a time, a little dog ran to the park."])["logits"]
    assert torch.allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_size_and_padding_invariance(family, tokenizer):
    ad = tiny_adapter(family, tokenizer, "sdpa")
    batched = ad.score(PROMPTS, CONTS)
    ad.score_config = ScoreConfig(max_batch=1)
    single = ad.score(PROMPTS, CONTS)
    ad.score_config = ScoreConfig(prefix_sharing=False)  # right-padded rows, no KV sharing
    right = ad.score(PROMPTS, CONTS)
    assert max(abs(a - b) for a, b in zip(batched, single)) < 1e-5
    assert max(abs(a - b) for a, b in zip(batched, right)) < 1e-5


def test_shipped_model_scores_and_generates(stories):
    s = stories.score(["Once upon a time, there was a little girl named Lily. The girl's name was"] * 2, [" Lily", " Tom"])
    assert s[0] > s[1]
    text = stories.generate(["Once upon a time"], max_new_tokens=12)[0]
    assert text.startswith(", there was a little girl named Lily")  # llama2.c's reference output


@pytest.mark.parametrize("family", FAMILIES)
def test_capture_leaves_model_unchanged(family, tokenizer):
    ad = tiny_adapter(family, tokenizer, "sdpa")
    before = {k: v.clone() for k, v in ad.model.state_dict().items()}
    impl = ad.model.config._attn_implementation
    batch = ad.tokenize_batch(["Once upon a time there was a cat."])
    with torch.no_grad():
        ref = ad.model(**batch).logits
    with ad.capture(["blocks.*.attn.pattern", "blocks.*.attn.q", "blocks.*.resid_post", "embed", "final"]) as cap:
        with torch.no_grad():
            got = ad.model(**batch).logits
    assert torch.allclose(ref, got, atol=1e-5)
    n_layers = ad.model.config.num_hidden_layers
    assert len([k for k in cap if k.endswith("attn.pattern")]) == n_layers
    assert cap["blocks.0.attn.pattern"].shape[-1] == batch["input_ids"].shape[1]
    _assert_pristine(ad.model, before, impl)
    with pytest.raises(RuntimeError, match="boom"):
        with ad.capture(["blocks.*.attn.pattern"]):
            ad.model(**batch)
            raise RuntimeError("boom")
    _assert_pristine(ad.model, before, impl)


def _assert_pristine(model, before, impl):
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.config._attn_implementation == impl
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_sdpa_pattern_equals_eager_output_attentions(stories):
    from faultlens.models.hf import HFAdapter

    eager = HFAdapter.load("stories260k", attn_implementation="eager")
    text = ["Once upon a time, there was a little girl named Mia. She liked to play with her red ball in the park."]
    batch = stories.tokenize_batch(text)
    with torch.no_grad():
        ref = eager.model(**batch, output_attentions=True).attentions
        with stories.capture(["blocks.*.attn.pattern"]) as cap:
            stories.model(**batch)
    for i, r in enumerate(ref):
        assert torch.allclose(cap[f"blocks.{i}.attn.pattern"], r, atol=1e-5)
