"""Perturbation faithfulness of a token ranking on the attributed scalar itself.

Deletion (MoRF): replace the top-k ranked prompt tokens by the mask token (`masking.py`) and track the
contrastive logit difference f; AOPC_del = mean_k (f(x) − f(x without top-k)) (Samek et al.
2017, with f the logit difference rather than a probability, as in the AttnLRP ABPC protocol).
Insertion (LeRF's mirror): start from the fully masked prompt and put back the top-k;
AOPC_ins = mean_k (f(x with only top-k) − f(x masked)). Higher is more faithful for both.
A random ranking (mean over `n_random` orders) is the floor. BOS is never ranked or masked.

Everything is scored in batched no-grad forwards of the same `Problem.run`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from faultlens.attribution.methods import baseline_embeds
from faultlens.attribution.problem import Problem
from faultlens.attribution.targets import TargetFn


@dataclass(frozen=True)
class FaithfulnessConfig:
    """Perturbation settings.

    Attributes:
        fractions: share of rankable prompt tokens removed / inserted at each curve point.
        n_random: random orders averaged for the random baseline.
        seed: seed of the random orders.
        batch: perturbed prompts per forward.
    """

    fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    n_random: int = 5
    seed: int = 0
    batch: int = 64


def _ks(n: int, fractions) -> list[int]:
    return sorted({max(1, min(n, int(round(f * n)))) for f in fractions})


def _score(model: nn.Module, problem: Problem, fn: TargetFn, variants: torch.Tensor, batch: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for s in range(0, len(variants), batch):
            out.append(problem.run(model, variants[s: s + batch], fn).double().cpu())
    return torch.cat(out).numpy()


def curves(model: nn.Module, problem: Problem, fn: TargetFn, relevance: np.ndarray,
           config: FaithfulnessConfig = FaithfulnessConfig()) -> dict:
    """Deletion / insertion curves and AOPCs for `relevance` (higher = pushes f up), plus random.

    Tokens are replaced by ``problem.mask_id`` (the same absent token as the IG baseline).

    Returns:
        JSON-able dict: ``deletion_aopc``, ``insertion_aopc``, ``random_deletion_aopc``,
        ``random_insertion_aopc``, ``ks``, ``deletion_curve``, ``insertion_curve``, ``full``,
        ``empty`` (f of the unmasked and of the fully masked prompt).
    """
    x = problem.prompt_embeds(model)[0]  # [Tp, d]
    base = baseline_embeds(model, problem)[0]  # [Tp, d]
    cand = np.arange(problem.bos, problem.n_prompt)
    ks = _ks(len(cand), config.fractions)
    rng = np.random.default_rng(config.seed)
    orders = [cand[np.argsort(-relevance[cand], kind="stable")]]
    orders += [rng.permutation(cand) for _ in range(config.n_random)]
    variants = [x, base]
    for order in orders:
        for k in ks:
            top = torch.as_tensor(order[:k])
            d = x.clone()
            d[top] = base[top]  # deletion: top-k masked
            ins = base.clone()
            ins[top] = x[top]  # insertion: only top-k present
            variants += [d, ins]
    f = _score(model, problem, fn, torch.stack(variants), config.batch)  # [2 + 2·|orders|·|ks|]
    full, empty = float(f[0]), float(f[1])
    per = f[2:].reshape(len(orders), len(ks), 2)
    del_aopc = full - per[:, :, 0].mean(1)  # [orders]
    ins_aopc = per[:, :, 1].mean(1) - empty
    return {
        "deletion_aopc": float(del_aopc[0]), "insertion_aopc": float(ins_aopc[0]),
        "random_deletion_aopc": float(del_aopc[1:].mean()) if config.n_random else None,
        "random_insertion_aopc": float(ins_aopc[1:].mean()) if config.n_random else None,
        "ks": ks, "deletion_curve": per[0, :, 0].tolist(), "insertion_curve": per[0, :, 1].tolist(),
        "full": full, "empty": empty, "mask_token_id": problem.mask_id,
    }
