"""What we attribute: small pure functions of a `Readout` (logits only where needed).

The contrastive target of the seed (after Debug-XAI, Tan et al. 2026, arXiv 2604.17761, and
Yin & Neubig 2022) is ``logit(foil) − logit(target)``: positive when the wrong answer wins, so
positive relevance marks what pushed the model to the wrong answer. Multi-token answers sum
their per-token logits (teacher-forced on the answer's own prefix).

A target function is ``fn(readout, target, foil) -> Tensor[N]`` (one scalar per batch item); add
your own with ``@targets.register("name")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from faultlens.registry import Registry


@dataclass(frozen=True)
class Answer:
    """Where an answer's tokens are predicted: the row positions whose next-token logits score them."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]


class Readout:
    """Lazy access to logits at chosen positions from final hidden states.

    Args:
        hidden: final-norm output ``[N, T, d]`` (N batch items, one row each).
        head: the unembedding (``model.get_output_embeddings()``).
    """

    def __init__(self, hidden: torch.Tensor, head: torch.nn.Module) -> None:
        self.hidden, self.head = hidden, head

    def _h(self, a: Answer) -> torch.Tensor:
        return self.hidden[:, list(a.positions)]  # [N, m, d]

    def logit(self, a: Answer) -> torch.Tensor:
        """Summed logits of the answer's tokens ``[N]``: only m × d dot products, no T × V matrix."""
        ids = torch.tensor(a.ids, device=self.hidden.device)
        w = self.head.weight[ids]  # [m, d]
        out = (self._h(a) * w).sum(-1)  # [N, m]
        bias = getattr(self.head, "bias", None)
        if bias is not None:
            out = out + bias[ids]
        return out.sum(-1)

    def logprob(self, a: Answer) -> torch.Tensor:
        """Summed log-probabilities of the answer's tokens ``[N]`` (full vocab at m positions)."""
        lp = F.log_softmax(self.head(self._h(a)).float(), dim=-1)  # [N, m, V]
        ids = torch.tensor(a.ids, device=lp.device)
        return lp[:, torch.arange(len(a.ids)), ids].sum(-1)


TargetFn = Callable[[Readout, Answer, Answer], torch.Tensor]
targets: Registry[TargetFn] = Registry("attribution target", "attribution-targets")


@targets.register("contrastive")
def contrastive(r: Readout, target: Answer, foil: Answer) -> torch.Tensor:
    """logit(foil) − logit(target): why the wrong answer beat the right one."""
    return r.logit(foil) - r.logit(target)


@targets.register("contrastive_logprob")
def contrastive_logprob(r: Readout, target: Answer, foil: Answer) -> torch.Tensor:
    """log p(foil) − log p(target): the probe's margin with the sign flipped.

    For multi-token answers of different lengths summed logits are not comparable (each position
    has its own normaliser); summed log-probabilities are, and they are what probes judge.
    """
    return r.logprob(foil) - r.logprob(target)


@targets.register("target_logit")
def target_logit(r: Readout, target: Answer, foil: Answer) -> torch.Tensor:
    """logit(target): what supports the right answer (not contrastive)."""
    return r.logit(target)


@targets.register("prob_diff")
def prob_diff(r: Readout, target: Answer, foil: Answer) -> torch.Tensor:
    """p(foil) − p(target), sequence probabilities (inseq's contrast_prob_diff, sign flipped)."""
    return r.logprob(foil).exp() - r.logprob(target).exp()
