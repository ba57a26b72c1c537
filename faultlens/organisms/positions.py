"""Positional encodings for the organism model, one small class per scheme, looked up by name.

Each scheme can act at up to three places: add to the token embeddings (`embed`), rotate q and
k (`rotate`), or add a bias to the attention logits (`bias`). The model calls all three; a
scheme implements only the ones it uses. This file does not know about training or monitoring.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from faultlens.registry import Registry

position_encodings: Registry[type[PositionEncoding]] = Registry("positional encoding", "positional-encodings")


class PositionEncoding(nn.Module):
    """No positional information (NoPE): the base class's three hooks are identities."""

    def __init__(self, d_model: int, n_head: int, block_size: int, emb_std: float) -> None:
        super().__init__()
        self.d_model, self.n_head, self.block_size = d_model, n_head, block_size

    def embed(self, x: Tensor) -> Tensor:  # x [B, T, d]
        return x

    def rotate(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:  # [B, H, T, dh]
        return q, k

    def bias(self, T: int, S: int) -> Tensor | None:  # [1|H, T, S] or None
        return None


position_encodings.add("none", PositionEncoding, "no positional encoding (NoPE)")


@position_encodings.register("learned")
class Learned(PositionEncoding):
    """Learned absolute positions (GPT-2); undefined past `block_size`, so we clamp there."""

    def __init__(self, d_model: int, n_head: int, block_size: int, emb_std: float) -> None:
        super().__init__(d_model, n_head, block_size, emb_std)
        self.wpe = nn.Embedding(block_size, d_model)
        nn.init.normal_(self.wpe.weight, std=emb_std)

    def embed(self, x: Tensor) -> Tensor:
        pos = torch.arange(x.shape[1], device=x.device).clamp(max=self.block_size - 1)  # [T]
        return x + self.wpe(pos)[None]


@position_encodings.register("sinusoidal")
class Sinusoidal(PositionEncoding):
    """Vaswani et al. (2017) fixed sin/cos table, added to the embeddings; defined at any length."""

    def embed(self, x: Tensor) -> Tensor:
        T, d = x.shape[1], x.shape[2]
        pos = torch.arange(T, device=x.device, dtype=torch.float32)[:, None]  # [T, 1]
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, device=x.device).float() / d)  # [d/2]
        pe = torch.zeros(T, d, device=x.device)  # [T, d]
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
        return x + pe[None].to(x.dtype)


@position_encodings.register("rope")
class Rotary(PositionEncoding):
    """Su et al. (RoFormer, 2021): rotate q and k pairs by angle pos * 10000^(-2k/dh)."""

    def rotate(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        T, dh = q.shape[-2], q.shape[-1]
        inv = 1.0 / (10000 ** (torch.arange(0, dh, 2, device=q.device).float() / dh))  # [dh/2]
        ang = torch.arange(T, device=q.device).float()[:, None] * inv[None]  # [T, dh/2]
        cos, sin = ang.cos().to(q.dtype), ang.sin().to(q.dtype)

        def rot(x: Tensor) -> Tensor:
            x1, x2 = x[..., 0::2], x[..., 1::2]
            out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # [B, H, T, dh/2, 2]
            return out.flatten(-2)

        return rot(q), rot(k)


@position_encodings.register("alibi")
class ALiBi(PositionEncoding):
    """Press et al. (2022): add -m_h * (i - j) to the logits, slopes m_h = 2^(-8h/H)."""

    def __init__(self, d_model: int, n_head: int, block_size: int, emb_std: float) -> None:
        super().__init__(d_model, n_head, block_size, emb_std)
        slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / n_head) for h in range(n_head)])
        self.register_buffer("slopes", slopes, persistent=False)

    def bias(self, T: int, S: int) -> Tensor:
        qpos = torch.arange(S - T, S, device=self.slopes.device)[:, None]  # [T, 1]
        kpos = torch.arange(S, device=self.slopes.device)[None, :]  # [1, S]
        dist = (qpos - kpos).abs().float()  # [T, S]; abs keeps the bidirectional case symmetric
        return -self.slopes[:, None, None] * dist[None]  # [H, T, S]
