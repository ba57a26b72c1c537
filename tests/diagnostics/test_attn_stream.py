"""Streaming statistics from q/k agree with the eager (materialised-pattern) computation."""

import pytest
import torch

from faultlens.diagnostics.collect import CollectConfig, collect
from faultlens.models.tiny import FAMILIES
from tests.conftest import tiny_adapter

TEXTS = ["Once upon a time there was a little girl named Lily who liked to play in the park with her dog.",
         "Tom ran home. He was happy."]


def left_padded(ad, texts):
    b = ad.tokenize_batch(texts)
    for r in range(len(texts)):
        n = int(b["attention_mask"][r].sum())
        b["input_ids"][r] = b["input_ids"][r].roll(-n + b["input_ids"].shape[1])
        b["attention_mask"][r] = b["attention_mask"][r].roll(-n + b["input_ids"].shape[1])
    return b


def assert_agree(a: dict, b: dict, tol: float = 1e-4):
    assert a.keys() == b.keys()
    for layer in a:
        assert a[layer].keys() == b[layer].keys()
        for key in a[layer]:
            x, y = a[layer][key], b[layer][key]
            assert torch.equal(x.isnan(), y.isnan()), (layer, key)
            assert float((x - y).nan_to_num().abs().max()) < tol, (layer, key, float((x - y).nan_to_num().abs().max()))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_stream_matches_eager(family, attn, tokenizer):
    ad = tiny_adapter(family, tokenizer, attn)
    spans = (torch.tensor([2, 1]), torch.tensor([6, 4]))
    for batch in (ad.tokenize_batch(TEXTS), left_padded(ad, TEXTS)):
        assert batch["input_ids"].shape[1] > 7  # several query blocks of 7
        s = collect(ad, batch, CollectConfig(mode="stream", block=7), spans)
        e = collect(ad, batch, CollectConfig(mode="eager"), spans)
        assert_agree(s, e)
        assert len(s) == 2 and "sink_mass" in s[0] and "span_mass" in s[1]


def test_left_padding_changes_nothing(tokenizer):
    ad = tiny_adapter("llama", tokenizer, "sdpa")
    right = collect(ad, ad.tokenize_batch(TEXTS), CollectConfig(block=5))
    left = collect(ad, left_padded(ad, TEXTS), CollectConfig(block=5))
    n = int(ad.tokenize_batch(TEXTS)["attention_mask"][1].sum())
    for layer in right:  # the short row: right-padded real tokens first, left-padded real tokens last
        a, b = right[layer]["entropy"][1, :, :n], left[layer]["entropy"][1, :, -n:]
        assert torch.allclose(a.nan_to_num(), b.nan_to_num(), atol=1e-4)


def test_capture_leaves_model_unchanged(tokenizer):
    ad = tiny_adapter("mistral", tokenizer, "sdpa")
    before = {k: v.clone() for k, v in ad.model.state_dict().items()}
    n_hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in ad.model.modules())
    collect(ad, ad.tokenize_batch(TEXTS), CollectConfig(block=4))
    assert ad.model.config._attn_implementation == "sdpa"
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in ad.model.modules()) == n_hooks
    assert all(torch.equal(before[k], v) for k, v in ad.model.state_dict().items())


def test_stream_matches_eager_on_shipped_model(stories):
    texts = ["Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
             "One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
             "Lily asked her mom for help, and her mom got the ball down. Lily said thank you and they played.",
             "Tom had a dog named Max."]
    batch = stories.tokenize_batch(texts)
    assert batch["input_ids"].shape[1] > 64
    assert_agree(collect(stories, batch, CollectConfig(mode="stream", block=32)),
                 collect(stories, batch, CollectConfig(mode="eager")))
