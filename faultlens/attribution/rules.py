"""The three gradient surrogates that turn gradient × input into LRP (AttnLRP / CP-LRP).

In the Input×Gradient formulation of LRP (Arras et al. 2025, arXiv 2502.15886; AttnLRP, Achtibat
et al. ICML 2024, arXiv 2402.05602) relevance at any tensor is ``h ⊙ ∂f/∂h`` where the backward
pass is ordinary autograd except at a few operations. Each `autograd.Function` here returns the
*unchanged* forward value and only replaces the backward:

* `identity_rule(x, y)`: elementwise non-linearity y = f(x) (SiLU, GELU) passes relevance
  through unchanged (AttnLRP Eq. 9): backward ``g · y / x``.
* `scale_grad(x, k)`: uniform rule for products (AttnLRP Prop. 3.2 / 3.3): every factor of an
  n-ary product gets ``1/n`` of the relevance, i.e. the gradient scaled by ``k``.
* `norm_rule(x, y, scale, centred)`: LayerNorm / RMSNorm with the normaliser 1/σ held constant
  (AttnLRP Prop. 3.4): backward ``g · scale`` (minus the mean for LayerNorm, whose centring is
  linear and stays).

Detaching (CP-LRP, Ali et al. 2022) is plain ``Tensor.detach``. Everything else is autograd.
"""

from __future__ import annotations

import torch

# Sign-safe stabiliser for y/x: keeps the ratio finite at x = 0 without flipping its sign.
_EPS = 1e-10


def _stab(x: torch.Tensor) -> torch.Tensor:
    return x + torch.where(x >= 0, _EPS, -_EPS)


class _IdentityRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, ratio, y):
        ctx.save_for_backward(ratio)
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        (ratio,) = ctx.saved_tensors
        return g * ratio, None, None


def identity_rule(x: torch.Tensor, y: torch.Tensor, ratio: torch.Tensor | None = None) -> torch.Tensor:
    """Return `y` (= f(x), already computed) with backward ``g · y / x`` to `x` only.

    Args:
        ratio: ``f(x) / x`` in closed form when the caller knows it (SiLU: sigmoid(x), exact also
            at x = 0 where y/x is 0/0); default ``y / x`` with a sign-safe epsilon.
    """
    if ratio is None:
        ratio = y.detach() / _stab(x.detach())
    return _IdentityRule.apply(x, ratio.detach(), y.detach())


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


def scale_grad(x: torch.Tensor, k: float) -> torch.Tensor:
    """Return `x` unchanged; its gradient is multiplied by `k` on the way back."""
    return _ScaleGrad.apply(x, float(k))


class _ScaleGradSlices(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, factors):
        ctx.factors = factors
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        parts = g.chunk(len(ctx.factors), dim=-1)
        return torch.cat([p * f for p, f in zip(parts, ctx.factors)], dim=-1), None


def scale_grad_slices(x: torch.Tensor, factors: tuple[float, ...]) -> torch.Tensor:
    """`scale_grad` with one factor per equal slice of the last dim (GPT-2's fused q|k|v)."""
    return _ScaleGradSlices.apply(x, tuple(float(f) for f in factors))


class _NormRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, scale, centred):
        ctx.save_for_backward(scale)
        ctx.centred = centred
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        (scale,) = ctx.saved_tensors
        u = g * scale  # [..., d] gradient of  w ⊙ (x − μ) / σ  with σ constant
        if ctx.centred:
            u = u - u.mean(-1, keepdim=True)  # the centring x − mean(x) is linear: its Jacobian is I − 11ᵀ/d
        return u, None, None, None


def norm_rule(x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor, centred: bool) -> torch.Tensor:
    """Return `y` with the backward of ``w ⊙ (x [− mean x]) · (1/σ)`` where 1/σ is a constant.

    Args:
        x: norm input ``[..., d]``.
        y: norm output computed by the model (value kept bit-exact).
        scale: ``w / σ`` broadcastable to x (detached).
        centred: True for LayerNorm (mean subtracted), False for RMSNorm.
    """
    return _NormRule.apply(x, y.detach(), scale.detach(), centred)
