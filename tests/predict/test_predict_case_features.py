"""Per-case internal features: known answers against independent computations."""

from __future__ import annotations

import pytest
import torch

from faultlens.predict.case_features import internal_features
from faultlens.probes.features import case_features, load_providers, output_features
from faultlens.types import Case

PROMPTS = ["Once upon a time, there was a girl named Lily. Lily liked to", "Tom had a ball.",
           "The sun was shining and the sky was blue. A small dog ran past the house. The dog was"]


def test_last_layer_lens_equals_output_entropy_and_norms_match_hidden_states(adapter):
    feats = internal_features(adapter, PROMPTS)
    out = output_features(adapter, [Case(id=str(i), prompt=p, target=" x") for i, p in enumerate(PROMPTS)])
    L = adapter.model.config.num_hidden_layers
    for i, p in enumerate(PROMPTS):
        assert feats[i][f"lens.entropy.L{L - 1}"] == pytest.approx(out[i]["out.entropy"], abs=1e-5)
        ids = torch.tensor([adapter.encode(p)])
        with torch.inference_mode():
            hs = adapter.model(input_ids=ids, output_hidden_states=True).hidden_states  # L+1 × [1, T, d]
        for layer in range(L - 1):  # the last hidden state HF returns is after the final norm
            assert feats[i][f"resid.norm.L{layer}"] == pytest.approx(float(hs[layer + 1][0, -1].norm()), rel=1e-4)
        assert 0.0 <= feats[i]["lens.pred_depth"] <= 1.0 and feats[i]["prompt.n_chars"] == len(p)


def test_features_do_not_depend_on_batch_company(adapter):
    alone = internal_features(adapter, [PROMPTS[1]])[0]
    batched = internal_features(adapter, PROMPTS)[1]  # padded next to longer prompts
    for k, v in alone.items():
        assert batched[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k


def test_registered_and_no_target_leak(adapter):
    load_providers()
    assert "internals" in case_features
    a = case_features.get("internals")(adapter, [Case(id="a", prompt=PROMPTS[0], target=" play", foil=" eat")])
    b = case_features.get("internals")(adapter, [Case(id="a", prompt=PROMPTS[0], target=" sing", foil=" run")])
    assert a == b  # features never look at target or foil
