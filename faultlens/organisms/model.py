"""The organism model: one small nanoGPT-style decoder whose switches pick the architecture
choices that make or prevent each training pathology.

Pre-LN / Post-LN / no norm, five positional encodings (`positions.py`), QK-LayerNorm,
σReparam, an optional learnable per-head sink logit, causal or bidirectional attention, and
residual/MLP switches for pure-attention stacks. Attention is computed explicitly (no fused
kernel), so `forward(idx, record=...)` can hand the monitor the probabilities, q/k and the
residual streams under the same dotted names `faultlens.capture` uses for HF models.
This file holds the model only; the loop is `train.py`, the data `data.py`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faultlens.errors import FaultlensError
from faultlens.organisms.positions import position_encodings


@dataclass(frozen=True)
class OrganismConfig:
    """Architecture switches. Defaults are a healthy small Pre-LN causal LM.

    Attributes:
        norm: "pre" (LN before each branch), "post" (LN after each residual add, the original
            Transformer) or "none".
        pos: "none" | "learned" | "sinusoidal" | "rope" | "alibi".
        qk_norm: LayerNorm over head_dim on q and k (Dehghani et al. 2023).
        sigma_reparam: every block Linear becomes γ·W/σ(W) (Zhai et al. 2023).
        sink_logit: a learnable per-head logit appended as an extra softmax column whose value
            is zero, so a head can "attend to nothing" (the learnable sink of Gu et al. 2024).
        sink_key: a learnable per-head key vector k*_h with zero value, also an extra softmax
            column (logit q·k*_h/√d_h, plus s_h with `sink_logit`). Unlike the scalar logit it is
            query-dependent, so a head can no-op on some queries and attend on others; Gu et
            al. (2024, §7) found the sink moves from the first token onto such a k*/v*=0 bias.
        attn_fn: "softmax" or "sigmoid": element-wise sigmoid(z − log T) without normalisation
            (Ramapuram et al. 2024's bias b = −log n). A head can then give every key ~0 weight,
            so it needs no sink; Gu et al. (2024) found sigmoid attention has no first-token sink.
        causal: False gives bidirectional attention.
        residual / mlp: switch the skip connections and the MLP off (pure-attention stacks).
        init_std: std of block Linear weights; `emb_std` of the token embedding.
    """

    vocab_size: int = 97
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    norm: str = "pre"
    pos: str = "learned"
    qk_norm: bool = False
    sigma_reparam: bool = False
    sink_logit: bool = False
    sink_key: bool = False
    attn_fn: str = "softmax"
    causal: bool = True
    residual: bool = True
    mlp: bool = True
    init_std: float = 0.02
    emb_std: float = 0.02

    def __post_init__(self) -> None:
        if self.norm not in ("pre", "post", "none"):
            raise FaultlensError(f"norm must be 'pre', 'post' or 'none', not {self.norm!r}.")
        position_encodings.get(self.pos)
        if self.attn_fn not in ("softmax", "sigmoid"):
            raise FaultlensError(f"attn_fn must be 'softmax' or 'sigmoid', not {self.attn_fn!r}.")
        if self.d_model % self.n_head:
            raise FaultlensError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}.")

    def to_dict(self) -> dict:
        return asdict(self)


class SigmaReparamLinear(nn.Linear):
    """Zhai et al. (2023) σReparam: ``Ŵ = (γ / σ(W)) W`` with σ from one power-iteration step
    per training forward (exact SVD at `reset_sigma`); γ is learnable and starts at σ(W₀), so
    the initial function equals the plain Linear's (apple/ml-sigma-reparam `vision/layers.py`)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.gamma = nn.Parameter(torch.ones(()))
        self.register_buffer("u", torch.zeros(out_features))
        self.register_buffer("v", torch.zeros(in_features))

    @torch.no_grad()
    def reset_sigma(self) -> None:
        U, S, Vh = torch.linalg.svd(self.weight, full_matrices=False)
        self.u.copy_(U[:, 0])
        self.v.copy_(Vh[0])
        self.gamma.fill_(S[0])

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            with torch.no_grad():  # one power-iteration step
                self.v.copy_(F.normalize(self.weight.T @ self.u, dim=0))
                self.u.copy_(F.normalize(self.weight @ self.v, dim=0))
        sigma = torch.einsum("o,oi,i->", self.u, self.weight, self.v)  # gradient flows through W
        return F.linear(x, self.weight * (self.gamma / sigma))


def _linear(cfg: OrganismConfig, n_in: int, n_out: int) -> nn.Linear:
    return SigmaReparamLinear(n_in, n_out) if cfg.sigma_reparam else nn.Linear(n_in, n_out, bias=False)


class Attention(nn.Module):
    """Multi-head self-attention computed explicitly so it can record what it did."""

    def __init__(self, cfg: OrganismConfig, pe: nn.Module) -> None:
        super().__init__()
        self.cfg, self.pe = cfg, [pe]  # list: share the PE module without registering it twice
        self.n_head, self.d_head = cfg.n_head, cfg.d_model // cfg.n_head
        self.qkv = _linear(cfg, cfg.d_model, 3 * cfg.d_model)
        self.proj = _linear(cfg, cfg.d_model, cfg.d_model)
        self.q_norm = nn.LayerNorm(self.d_head) if cfg.qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.d_head) if cfg.qk_norm else nn.Identity()
        self.sink = nn.Parameter(torch.zeros(cfg.n_head)) if cfg.sink_logit else None
        self.sink_key = nn.Parameter(torch.zeros(cfg.n_head, self.d_head)) if cfg.sink_key else None

    def forward(self, x: Tensor, rec: dict | None = None, prefix: str = "") -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.d_head).permute(2, 0, 3, 1, 4)  # 3 × [B, H, T, dh]
        q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.pe[0].rotate(q, k)
        scale = 1.0 / math.sqrt(self.d_head)
        att = (q @ k.transpose(-1, -2)) * scale  # [B, H, T, T]
        bias = self.pe[0].bias(T, T)
        if bias is not None:
            att = att + bias
        if self.cfg.causal:
            allowed = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # [T, T]
            att = att.masked_fill(~allowed, float("-inf"))
        if self.sink is not None or self.sink_key is not None:  # extra column with value 0
            col = att.new_zeros(B, self.n_head, T, 1)  # [B, H, T, 1]
            if self.sink is not None:
                col = col + self.sink.view(1, -1, 1, 1).to(att.dtype)
            if self.sink_key is not None:
                col = col + (q @ self.sink_key.to(q.dtype)[None, :, :, None]) * scale  # [B, H, T, 1]
            probs = F.softmax(torch.cat([col, att], dim=-1), dim=-1)[..., 1:]  # [B, H, T, T]
        elif self.cfg.attn_fn == "sigmoid":  # masked logits are -inf → weight 0
            probs = torch.sigmoid(att - math.log(T))  # [B, H, T, T], rows need not sum to 1
        else:
            probs = F.softmax(att, dim=-1)  # [B, H, T, T]
        y = (probs @ v).transpose(1, 2).reshape(B, T, C)  # [B, T, C]
        out = self.proj(y)
        if rec is not None:
            rec[f"{prefix}.pattern"] = probs.detach()
            rec[f"{prefix}.q"] = q.detach()
            rec[f"{prefix}.k"] = k.detach()
            rec[f"{prefix}.meta"] = {"scaling": scale, "causal": self.cfg.causal}
            rec[f"{prefix}.out"] = out.detach()
        return out


class Block(nn.Module):
    def __init__(self, cfg: OrganismConfig, pe: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.ln1 = nn.LayerNorm(cfg.d_model) if cfg.norm != "none" else nn.Identity()
        self.attn = Attention(cfg, pe)
        if cfg.mlp:
            self.ln2 = nn.LayerNorm(cfg.d_model) if cfg.norm != "none" else nn.Identity()
            self.fc = _linear(cfg, cfg.d_model, 4 * cfg.d_model)
            self.fc_out = _linear(cfg, 4 * cfg.d_model, cfg.d_model)

    def _mlp(self, x: Tensor) -> Tensor:
        return self.fc_out(F.gelu(self.fc(x)))

    def forward(self, x: Tensor, rec: dict | None = None, prefix: str = "") -> Tensor:
        keep = 1.0 if self.cfg.residual else 0.0  # skip connections on/off
        if self.cfg.norm == "post":  # x = LN(x + f(x)) (Vaswani et al. 2017)
            x = self.ln1(keep * x + self.attn(x, rec, f"{prefix}.attn"))
            if self.cfg.mlp:
                x = self.ln2(keep * x + self._mlp(x))
            return x
        x = keep * x + self.attn(self.ln1(x), rec, f"{prefix}.attn")  # Pre-LN or no norm
        if self.cfg.mlp:
            x = keep * x + self._mlp(self.ln2(x))
        return x


class OrganismLM(nn.Module):
    """Token embedding → blocks → final norm (Pre-LN only) → untied LM head."""

    def __init__(self, cfg: OrganismConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pe = position_encodings.get(cfg.pos)(cfg.d_model, cfg.n_head, cfg.block_size, cfg.emb_std)
        self.blocks = nn.ModuleList(Block(cfg, self.pe) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.wte.weight, std=self.cfg.emb_std)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=self.cfg.init_std)
            if isinstance(m, SigmaReparamLinear):
                m.reset_sigma()
        nn.init.normal_(self.lm_head.weight, std=0.02)

    def forward(self, idx: Tensor, record: bool | set[int] = False) -> Tensor:
        """Logits ``[B, T, V]`` for token ids ``[B, T]``.

        Args:
            record: True (all layers) or a set of layer indices whose internals are written to
                `self.records` under capture-style names: ``blocks.{i}.resid_pre`` /
                ``.resid_post`` ``[B, T, d]``, ``blocks.{i}.attn.pattern`` ``[B, H, T, T]``,
                ``.q``/``.k`` ``[B, H, T, dh]``, ``.out`` ``[B, T, d]``, ``.meta``; plus
                ``embed`` and ``final``. Tensors are detached; nothing is kept otherwise.
        """
        self.records: dict = {}
        x = self.pe.embed(self.wte(idx))  # [B, T, d]
        if record is not False:
            self.records["embed"] = x.detach()
        for i, block in enumerate(self.blocks):
            rec = self.records if (record is True or (record and i in record)) else None
            if rec is not None:
                rec[f"blocks.{i}.resid_pre"] = x.detach()
            x = block(x, rec, f"blocks.{i}")
            if rec is not None:
                rec[f"blocks.{i}.resid_post"] = x.detach()
        x = self.ln_f(x)
        if record is not False:
            self.records["final"] = x.detach()
        return self.lm_head(x)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
