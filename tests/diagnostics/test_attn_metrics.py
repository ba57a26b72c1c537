"""Known answers for the pure attention metrics (hand-built patterns and residual streams)."""

import math

import torch

from faultlens.diagnostics import (
    causal_visible, diagnostics, effective_rank, entropy_summary, head_redundancy, key_span_mass, lazy_cosine,
    max_attention_logit, normalized_entropy, position_profile, sink_heads, sink_mass, sink_positions, token_uniformity,
)

T = 10


def uniform(T=T):
    vis = causal_visible(1, T, T)[0, 0].float()  # [T, T]
    return vis / vis.sum(-1, keepdim=True)


def prev_token(T=T):
    p = torch.zeros(T, T)
    p[0, 0] = 1
    for i in range(1, T):
        p[i, i - 1] = 1
    return p


def to_bos(T=T):
    p = torch.zeros(T, T)
    p[:, 0] = 1
    return p


def test_entropy_known_answers():
    pat = torch.stack([uniform(), prev_token(), to_bos()])[None]  # [1, 3, T, T]
    e = normalized_entropy(pat)
    assert torch.isnan(e[..., 0]).all()  # one visible key: undefined, excluded
    assert torch.allclose(e[0, 0, 1:], torch.ones(T - 1), atol=1e-6)
    assert torch.allclose(e[0, 1:, 1:], torch.zeros(2, T - 1), atol=1e-6)
    s = entropy_summary(e, threshold=0.1)
    assert torch.allclose(s["mean"], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(s["frac_low"], torch.tensor([0.0, 1.0, 1.0]))
    # a half/half row over n = 4 keys has entropy ln 2 / ln 4 = 0.5
    p = torch.zeros(1, 1, 4, 4)
    p[0, 0, 3, :2] = 0.5
    assert math.isclose(float(normalized_entropy(p)[0, 0, 3]), 0.5, abs_tol=1e-6)


def test_entropy_ignores_padding():
    pat = uniform()[None, None].clone()
    km = torch.ones(1, T)
    km[0, :3] = 0  # left padding: rows 0..2 are padding queries
    vis = causal_visible(1, T, T, km)
    p = (vis.float() / vis.float().sum(-1, keepdim=True).clamp_min(1))
    e = normalized_entropy(p, km)
    assert torch.isnan(e[0, 0, :4]).all()  # padding rows and the first real token
    assert torch.allclose(e[0, 0, 4:], torch.ones(T - 4), atol=1e-6)
    del pat


def test_sink_detectors_find_exactly_the_planted_head_and_position():
    pat = torch.stack([uniform(), prev_token(), to_bos(), uniform()])[None]
    alpha = sink_mass(pat)
    assert torch.allclose(alpha[0, 2, 0], torch.tensor(1.0))
    sh = sink_heads(pat, threshold=0.3)
    # uniform on 10 tokens gives alpha(0) = H_10 / 10 = 0.293, just under Gu's 0.3
    assert sh.is_sink.tolist() == [False, False, True, False]
    assert math.isclose(float(sh.share), 0.25)
    assert math.isclose(float(sh.mass[0]), sum(1 / n for n in range(1, T + 1)) / T, rel_tol=1e-5)
    pos = sink_positions(pat, threshold=0.5, min_viewers=4)
    assert pos[0].nonzero().tolist() == [[2, 0]]


def test_sink_heads_left_padding_uses_first_real_token():
    km = torch.ones(2, T)
    km[1, :4] = 0
    p = torch.zeros(2, 1, T, T)
    p[0, 0, :, 0] = 1
    p[1, 0, :, 4] = 1
    sh = sink_heads(p, threshold=0.3, key_mask=km)
    assert torch.allclose(sh.mass, torch.tensor([1.0]))


def test_position_profile_and_span():
    pat = torch.stack([prev_token(), to_bos()])[None]
    prof = position_profile(pat)
    assert math.isclose(float(prof["relative"][0, 0, 1]), 1.0, abs_tol=1e-6)  # all mass at distance 1
    assert float(prof["relative"][0, 0, 0]) < 0.2
    assert math.isclose(float(prof["absolute"][0, 1, 0]), 1.0, abs_tol=1e-6)
    span = key_span_mass(pat, 0, 1)  # [1, 2, T]
    assert torch.allclose(span[0, 1], torch.ones(T))


def test_redundancy_identical_heads():
    same = torch.stack([prev_token(), prev_token()])[None]
    diff = torch.stack([prev_token(), to_bos()])[None]
    assert math.isclose(float(head_redundancy(same)[0, 1]), 1.0, abs_tol=1e-6)
    assert float(head_redundancy(diff)[0, 1]) < 0.5


def test_rank_metrics():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 16)
    same = x[:, :1].expand(-1, 12, -1)
    assert torch.allclose(token_uniformity(same), torch.zeros(2), atol=1e-6)
    assert (token_uniformity(x) > 0.8).all()
    assert torch.allclose(effective_rank(same), torch.ones(2), atol=1e-3)
    assert (effective_rank(x) > 8).all()


def test_max_logit_gqa_matches_manual():
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 6, 8)
    got = max_attention_logit(q, k, 0.5)
    full = q @ k.repeat_interleave(2, 1).transpose(-1, -2) * 0.5
    full = full.masked_fill(~causal_visible(1, 6, 6), float("-inf"))
    assert torch.allclose(got, full.amax((-1, -2)))


def test_lazy_cosine():
    x = torch.randn(2, 5, 8)
    assert torch.allclose(lazy_cosine(x, x + 0 * x), torch.ones(2), atol=1e-6)
    assert (lazy_cosine(x, x + 10 * torch.randn_like(x)) < 0.5).all()


def test_all_metrics_registered():
    for name in ("normalized_entropy", "entropy_summary", "sink_mass", "sink_heads", "sink_positions", "token_uniformity",
                 "effective_rank", "max_attention_logit", "lazy_cosine", "position_profile", "key_span_mass", "head_redundancy"):
        assert name in diagnostics
