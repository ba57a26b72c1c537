"""Known answer: a hand-built model with a planted spurious cue token.

Llama (tiny config, one live layer, real HF modules) whose weights are set by hand:
* every token embedding carries a constant "default" feature (dim 2) that the unembedding reads as
  support for the target; the cue token's embedding instead carries a large "cue" feature (dim 0);
* q = k = 0, so attention is uniform over the prefix; v/o copy the cue feature into dim 1 of the
  last position; the MLP is off;
* the foil's unembedding row reads dim 1.
So the foil wins exactly when the cue token is somewhere in the prompt. The organisms issue has not
landed, hence the hand-built model. The clean twin replaces the cue by a neutral token.
"""

from __future__ import annotations

import pytest
import torch

from faultlens.attribution import explain
from faultlens.models.hf import HFAdapter
from faultlens.models.tiny import tiny_model

CUE, NEUTRAL = " purple", " small"
BASE = "Tom went to the park with his dog. The dog saw a{} ball. The dog was happy. Tom said"
TARGET, FOIL = " yes", " no"


def cue_model(tokenizer):
    model = tiny_model("llama", seed=0)  # 2 layers; layer 1 is switched off below
    cue_id = tokenizer(CUE, add_special_tokens=False).input_ids[-1]
    tgt = tokenizer(TARGET, add_special_tokens=False).input_ids[-1]
    foil = tokenizer(FOIL, add_special_tokens=False).input_ids[-1]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight  # [V, 32]
        emb.copy_(torch.randn(emb.shape, generator=g) * 0.05)
        emb[:, 2] = 1.0
        emb[cue_id] = 0.0
        emb[cue_id, 0] = 1.0
        layer = model.model.layers[0]
        attn = layer.self_attn
        attn.q_proj.weight.zero_()
        attn.k_proj.weight.zero_()
        attn.v_proj.weight.zero_()
        attn.v_proj.weight[0, 0] = 1.0  # v head 0, dim 0 <- cue feature
        attn.o_proj.weight.zero_()
        attn.o_proj.weight[1, 0] = 1.0  # residual dim 1 <- head 0 dim 0 (kv head 0 feeds heads 0 and 1)
        layer.mlp.down_proj.weight.zero_()
        off = model.model.layers[1]  # identity block: residual passes through unchanged
        off.self_attn.o_proj.weight.zero_()
        off.mlp.down_proj.weight.zero_()
        head = model.get_output_embeddings().weight
        head.zero_()
        head[tgt, 2] = 1.0
        head[foil, 1] = 40.0
    return model


@pytest.fixture(scope="module")
def cue_adapter(tokenizer):
    return HFAdapter(cue_model(tokenizer), tokenizer, name="cue")


def _cue_position(ad, prompt):
    ids = ad.encode_pair(prompt, TARGET)[0]
    cue_id = ad.tokenizer(CUE, add_special_tokens=False).input_ids[-1]
    return ids.index(cue_id)


@pytest.mark.parametrize("method", ["cp-lrp", "attnlrp"])
def test_top_relevance_on_planted_cue_and_not_on_clean_twin(cue_adapter, method):
    ad = cue_adapter
    cued, clean = BASE.format(CUE), BASE.format(NEUTRAL)
    e = explain(ad, cued, TARGET, FOIL, method=method)
    assert e.logit_diff > 0, "the cue must make the foil win"
    pos = _cue_position(ad, cued)
    assert e.top_tokens(1)[0][0] == pos
    twin = explain(ad, clean, TARGET, FOIL, method=method)
    assert twin.logit_diff < 0, "without the cue the target wins"
    assert twin.top_tokens(1)[0][0] != pos
    # the clean twin has no position standing out the way the cue does
    assert twin.relevance.max() < 0.2 * e.relevance[pos]


def test_faithfulness_ordering_on_planted_cue(cue_adapter):
    """Deletion-AOPC: LRP ≥ gradient × input > random, on the cued case."""
    ad = cue_adapter
    cued = BASE.format(CUE)
    f = {m: explain(ad, cued, TARGET, FOIL, method=m).faithfulness for m in ("cp-lrp", "attnlrp", "grad_x_input")}
    print("\ncue model deletion-AOPC: " + ", ".join(f"{m} {v['deletion_aopc']:.3f}" for m, v in f.items())
          + f", random {f['cp-lrp']['random_deletion_aopc']:.3f}")
    assert f["cp-lrp"]["deletion_aopc"] >= f["grad_x_input"]["deletion_aopc"] - 1e-9
    assert f["grad_x_input"]["deletion_aopc"] > f["cp-lrp"]["random_deletion_aopc"]
