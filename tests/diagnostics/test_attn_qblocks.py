"""The single-pass query-block statistics (`stream.attention_stats`) on raw q/k equal the dense
reference (`collect._eager_layer_stats`: the registered pure metrics on a materialised pattern),
for shapes the model tests do not reach: a KV-cache offset (T < S), blocks that do not divide T
or exceed it, one-query blocks, GQA, softcap, a sliding window and padding on either side."""

import pytest
import torch

from faultlens.diagnostics.collect import _eager_layer_stats
from faultlens.diagnostics.stream import StreamConfig, attention_stats, visible_block


def dense_reference(q, k, scaling, key_mask, window, softcap, spans):
    H, T = q.shape[1], q.shape[2]
    S = k.shape[2]
    kk = k.repeat_interleave(H // k.shape[1], dim=1)  # [B, H, S, dh]
    lg = torch.matmul(q, kk.transpose(-1, -2)) * scaling  # [B, H, T, S]
    if softcap:
        lg = softcap * torch.tanh(lg / softcap)
    vis = visible_block(None, T, S, 0, S, key_mask, window, q.device)  # [B, 1, T, S]
    p = torch.softmax(lg.masked_fill(~vis, -1e30), -1).masked_fill(~vis, 0.0)  # [B, H, T, S]
    meta = {"scaling": scaling, "sliding_window": window}
    return _eager_layer_stats(p, q, kk, None, meta, key_mask, spans, True), lg.masked_fill(~vis, float("-inf"))


CASES = [  # B, H, Hkv, T, S, window, softcap, left pad, right pad, block
    (2, 4, 2, 13, 13, None, None, 3, 0, 5),
    (2, 4, 4, 13, 13, 4, None, 0, 2, 3),
    (1, 6, 2, 9, 9, None, 2.5, 0, 0, 1),
    (2, 4, 1, 11, 11, None, None, 4, 0, 64),
    (1, 4, 2, 6, 17, None, None, 0, 0, 4),  # 6 new queries after 11 cached keys
    (1, 4, 2, 6, 17, 5, None, 0, 0, 4),
]


@pytest.mark.parametrize("B,H,Hkv,T,S,window,softcap,lpad,rpad,block", CASES)
def test_query_blocks_match_dense(B, H, Hkv, T, S, window, softcap, lpad, rpad, block):
    g = torch.Generator().manual_seed(T * 100 + S + block)
    q = torch.randn(B, H, T, 8, generator=g) * 2
    k = torch.randn(B, Hkv, S, 8, generator=g) * 2
    key_mask = torch.ones(B, S, dtype=torch.long)
    key_mask[-1, :lpad] = 0
    if rpad:
        key_mask[-1, S - rpad:] = 0
    spans = (torch.tensor([1] * B), torch.tensor([4] * B))
    ours = attention_stats(q, k, 8 ** -0.5, None, key_mask, window, softcap, spans, StreamConfig(block=block))
    ref, logits = dense_reference(q, k, 8 ** -0.5, key_mask, window, softcap, spans)
    assert set(ours) == set(ref)
    for name in ref:
        if name == "max_logit" and softcap:
            continue  # the reference reports the uncapped q·k; the kernel softmaxes the capped logit
        a, b = ours[name], ref[name]
        assert a.shape == b.shape, name
        assert torch.equal(a.isnan(), b.isnan()), name
        assert float((a - b).nan_to_num().abs().max()) < 1e-4, (name, float((a - b).nan_to_num().abs().max()))
    # the max logit is the largest visible logit, and mass-free mode gives the same entropy
    assert torch.allclose(ours["max_logit"], logits.flatten(2).amax(-1), atol=1e-5)
    lean = attention_stats(q, k, 8 ** -0.5, None, key_mask, window, softcap, spans, StreamConfig(block=block, mass=False))
    assert set(lean) == {"entropy", "max_logit", "n_visible"}
    assert torch.equal(lean["entropy"].isnan(), ours["entropy"].isnan())
    assert torch.allclose(lean["entropy"].nan_to_num(), ours["entropy"].nan_to_num(), atol=1e-6)


def test_distance_profile_known_answer():
    """Keys identical and queries zero → uniform attention: query i puts 1/(i+1) on each of its
    keys, so the mean mass at distance d is the mean of 1/(i+1) over the queries i >= d."""
    T = 10
    q, k = torch.zeros(1, 2, T, 4), torch.ones(1, 2, T, 4)
    rel = attention_stats(q, k, 1.0, config=StreamConfig(block=3))["relative"][0, 0]  # [T]
    inv = 1.0 / torch.arange(1, T + 1, dtype=torch.float32)
    want = torch.stack([inv[d:].mean() for d in range(T)])
    assert torch.allclose(rel, want, atol=1e-6)


def test_worker_threads_change_nothing():
    """Splitting query blocks over worker threads gives the same numbers as one thread, and the
    caller's torch thread count is what it was."""
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 4, 23, 8, generator=g), torch.randn(2, 2, 23, 8, generator=g)
    key_mask = torch.ones(2, 23, dtype=torch.long)
    key_mask[1, :5] = 0
    threads = torch.get_num_threads()
    one = attention_stats(q, k, 0.3, None, key_mask, config=StreamConfig(block=4, workers=1))
    three = attention_stats(q, k, 0.3, None, key_mask, config=StreamConfig(block=4, workers=3))
    assert torch.get_num_threads() == threads
    for name in one:
        assert torch.equal(one[name].isnan(), three[name].isnan()), name
        assert torch.allclose(one[name].nan_to_num(), three[name].nan_to_num(), atol=1e-6), name
