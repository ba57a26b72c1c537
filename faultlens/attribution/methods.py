"""Attribution methods, one registered function each: LRP (two variants) and three baselines.

Every method maps ``(model, problem, target_fn) -> Attribution``. The LRP variants and plain
gradient × input share one code path (forward with recording, one ``autograd.grad`` over all
recorded tensors); they differ only in which rules are attached during the forward.

* ``cp-lrp``: attention probabilities constant (Ali et al. 2022); conservative on bias-free models.
* ``attnlrp``: AttnLRP (Achtibat et al. 2024) with the softmax / bilinear rules.
* ``grad_x_input``: plain gradient × input, same tensors, no rules.
* ``ig``: Captum ``IntegratedGradients`` (the peer implementation) on the prompt embeddings.
* ``rollout``: attention rollout (Abnar & Zuidema 2020); not target-specific, so not contrastive.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from faultlens.attribution.patching import lrp_rules
from faultlens.attribution.problem import Problem
from faultlens.attribution.recording import record
from faultlens.attribution.targets import TargetFn
from faultlens.registry import Registry


@dataclass
class Attribution:
    """Raw output of one method on one problem (numpy, float64).

    Attributes:
        relevance: per prompt token ``[Tp]``.
        value: the attributed scalar (e.g. logit(foil) − logit(target)).
        layers: residual-stream relevance ``[L+1, Tp]`` (state into block i; last = after block L−1).
        heads: total relevance of each attention head's output ``[L, H]``.
        attn, mlp: total relevance of each attention / MLP block output ``[L]``.
        answer_prefix: relevance on teacher-forced answer tokens (multi-token answers), summed.
    """

    relevance: np.ndarray
    value: float
    layers: np.ndarray | None = None
    heads: np.ndarray | None = None
    attn: np.ndarray | None = None
    mlp: np.ndarray | None = None
    answer_prefix: float = 0.0


Method = Callable[[nn.Module, Problem, TargetFn], Attribution]
methods: Registry[Method] = Registry("attribution method", "attribution-methods")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


@contextmanager
def frozen_params(model: nn.Module) -> Iterator[None]:
    """Inside the block no parameter requires grad, so autograd records and runs only the paths
    to the activations we read relevance from (no weight-gradient bookkeeping). Restored on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)


def gradient_attribution(model: nn.Module, problem: Problem, fn: TargetFn, variant: str | None) -> Attribution:
    """Relevance ``h ⊙ ∂f/∂h`` at every recorded tensor, with LRP rules `variant` (None = plain).

    One forward of the problem's single row with autograd, one ``autograd.grad`` over all recorded
    tensors (embeddings, residual states, head outputs, attention / MLP outputs).
    """
    Tp = problem.n_prompt
    rules = lrp_rules(model, variant) if variant else nullcontext()
    with frozen_params(model), rules, record(model) as rec, torch.enable_grad():
        pe = problem.prompt_embeds(model).requires_grad_(True)  # [1, Tp, d]
        value = problem.run(model, pe, fn)  # [1]
        L = len(rec.mlp)
        tensors = rec.states + rec.heads + rec.attn + rec.mlp
        grads = torch.autograd.grad(value.sum(), tensors, allow_unused=True)
    with torch.no_grad():
        prods = [t[0] * g[0] if g is not None else torch.zeros_like(t[0]) for t, g in zip(tensors, grads)]  # each [T, ·]
        states = torch.stack([p.sum(-1) for p in prods[: L + 1]])  # [L+1, T]
        H = rec.n_heads
        heads = torch.stack([p.reshape(p.shape[0], H, -1).sum((0, 2)) for p in prods[L + 1: 2 * L + 1]])  # [L, H]
        attn = torch.stack([p.sum() for p in prods[2 * L + 1: 3 * L + 1]])  # [L]
        mlp = torch.stack([p.sum() for p in prods[3 * L + 1:]])  # [L]
    return Attribution(
        relevance=_np(states[0, :Tp]), value=float(value.detach().sum()), layers=_np(states[:, :Tp]),
        heads=_np(heads), attn=_np(attn), mlp=_np(mlp), answer_prefix=float(states[0, Tp:].sum()),
    )


@methods.register("cp-lrp")
def cp_lrp(model, problem, fn):
    """CP-LRP: attention probabilities held constant (conservative)."""
    return gradient_attribution(model, problem, fn, "cp-lrp")


@methods.register("attnlrp")
def attnlrp(model, problem, fn):
    """AttnLRP: softmax and bilinear-product rules."""
    return gradient_attribution(model, problem, fn, "attnlrp")


@methods.register("grad_x_input")
def grad_x_input(model, problem, fn):
    """Gradient × input (no LRP rules)."""
    return gradient_attribution(model, problem, fn, None)


def baseline_embeds(model: nn.Module, problem: Problem) -> torch.Tensor:
    """Per-position replacement embeddings ``[1, Tp, d]``: the problem's mask token, BOS kept.

    The same tensor is the IG baseline and the deletion / insertion replacement (`masking.py`).
    """
    pe = problem.prompt_embeds(model)
    if problem.mask_id is None:
        base = torch.zeros_like(pe)
    else:
        ids = torch.tensor([[problem.mask_id]], device=pe.device)
        base = model.get_input_embeddings()(ids).detach().expand_as(pe).clone()
    base[:, : problem.bos] = pe[:, : problem.bos]
    return base


def make_ig(n_steps: int = 50, internal_batch_size: int | None = None) -> Method:
    """Captum IntegratedGradients on the prompt embeddings, baseline = the problem's mask-token embeddings."""

    def ig(model, problem, fn):
        from captum.attr import IntegratedGradients

        pe = problem.prompt_embeds(model)
        alg = IntegratedGradients(lambda x: problem.run(model, x, fn))
        with frozen_params(model), torch.enable_grad():
            attr = alg.attribute(pe, baselines=baseline_embeds(model, problem), n_steps=n_steps,
                                 internal_batch_size=internal_batch_size)  # [1, Tp, d]
            with torch.no_grad():
                value = problem.run(model, pe, fn)
        return Attribution(relevance=_np(attr.sum(-1)[0]), value=float(value.sum()))

    ig.__doc__ = f"Integrated Gradients (Captum, {n_steps} steps)."
    return ig


methods.add("ig", make_ig(), "Integrated Gradients (Captum, 50 steps, mask-token baseline).")


@methods.register("rollout")
def rollout(model, problem, fn):
    """Attention rollout (Abnar & Zuidema 2020): head-mean attention, + identity, multiplied."""
    from faultlens.capture import capture

    Tp = problem.n_prompt
    ids = torch.tensor([problem.prompt_ids], device=model.get_input_embeddings().weight.device)
    with torch.no_grad():
        with capture(model, ["blocks.*.attn.pattern"]) as cap:
            model(input_ids=ids, use_cache=False)
        value = problem.run(model, problem.prompt_embeds(model), fn)
    L = len([k for k in cap if k.endswith("pattern")])
    roll = torch.eye(Tp, dtype=torch.float64)
    for i in range(L):
        a = cap[f"blocks.{i}.attn.pattern"][0].double().mean(0)  # [T, T] head mean
        a = 0.5 * a + 0.5 * torch.eye(Tp, dtype=torch.float64)
        roll = (a / a.sum(-1, keepdim=True)) @ roll
    return Attribution(relevance=roll[Tp - 1].numpy(), value=float(value.sum()))
