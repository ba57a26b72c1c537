"""Cross-layer attribution graph with batch-packed backward passes (Debug-XAI, Appendix A).

Nodes are residual-stream states (layer l, position p) with relevance
``R_l[p] = Σ_k h_l[p,k] · g_l[p,k]`` where ``g_l = ∂f/∂h_l`` under the LRP backward. The edge from
(l, i) to (l+1, j) is the share of R_{l+1}[j] that block l routes to h_l[i]:

    A[j, i] = Σ_k h_l[i,k] · ∂⟨h_{l+1}[j], g_{l+1}[j]⟩ / ∂h_l[i,k]      (g held constant)

Because the LRP backward is linear, ``Σ_j A[j, i] = R_l[i]`` over all targets j (exact), and with
cp-lrp on a bias-free model ``Σ_i A[j, i] = R_{l+1}[j]``. The causal mask makes A lower-triangular.

Batch packing (Tan et al. 2026, after Hanna et al. 2025): the B target nodes of a transition
share ONE re-run of block l on h_l (not B copies) and one batched backward: ``autograd.grad``
with ``is_grads_batched=True`` vmaps the backward over B output gradients, gradient b being g
at position j_b only — B edge rows per backward instead of one, without replicating the forward.
The block is re-run with the exact (args, kwargs) the model gave it (rotary tables, the tree
mask of `Problem`), so eager attention stays causal and answer branches stay apart.

The graph covers every answer token: the top nodes are all readout positions of target and foil
(the answer-prefix tokens of multi-token answers are row positions like the prompt's).

Pruning, top-down from the readout node: at each layer keep the `top_k` source positions that
receive the most |edge| mass from the kept targets; per transition keep the largest edges up to
`edge_mass` of the absolute total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faultlens.attribution.patching import lrp_rules
from faultlens.attribution.problem import Problem
from faultlens.attribution.recording import _first, record
from faultlens.attribution.targets import targets
from faultlens.capture import decoder_layers


@dataclass(frozen=True)
class GraphConfig:
    """Graph settings.

    Attributes:
        top_k: source nodes kept per layer.
        edge_mass: share of |edge| mass kept per transition.
        batch: targets packed into one batched backward.
        batched: False = one backward per target (same shared block forward); for comparison.
        rerun: with batched=False, also re-run the block for every target (the unpacked
            Debug-XAI procedure; only for benchmarks).
    """

    top_k: int = 16
    edge_mass: float = 0.85
    batch: int = 32
    batched: bool = True
    rerun: bool = False


def edge_rows(block, h: torch.Tensor, g: torch.Tensor, call: tuple[tuple, dict], targets_pos: list[int],
              batch: int, rerun: bool = False) -> torch.Tensor:
    """Edge rows A[j, :] for each target position j, `batch` targets per backward.

    Args:
        block: decoder block l (rules attached by the caller).
        h: its input ``[T, d]``; g: ∂f/∂h_{l+1} ``[T, d]``.
        call: the (args, kwargs) the model called the block with.
        targets_pos: target positions j at layer l+1.
        batch: targets per backward (1 = one plain backward per target).
        rerun: re-run the block forward before every backward (unpacked reference procedure).

    Returns:
        ``[len(targets_pos), T]``.
    """
    args, kwargs = call
    T, d = h.shape
    rows: list[torch.Tensor] = []
    out = x = None
    with torch.enable_grad():
        for s in range(0, len(targets_pos), batch):
            js = torch.tensor(targets_pos[s: s + batch])
            B = len(js)
            if out is None or rerun:
                x = h.detach()[None].clone().requires_grad_(True)  # [1, T, d]
                out = _first(block(x, *args, **kwargs))  # [1, T, d]
            keep = not rerun and s + batch < len(targets_pos)
            go = torch.zeros(B, 1, T, d, dtype=out.dtype)  # [B, 1, T, d]: g only at each target's own position
            go[torch.arange(B), 0, js] = g[js].detach().to(out.dtype)
            if B == 1:
                (grad,) = torch.autograd.grad(out, x, go[0], retain_graph=keep)
                grad = grad[None]
            else:
                (grad,) = torch.autograd.grad(out, x, go, retain_graph=keep, is_grads_batched=True)
            rows.append((x.detach()[None] * grad).sum(-1)[:, 0])  # [B, T]
    return torch.cat(rows)


def _prune_edges(A: np.ndarray, keep_src: list[int], mass: float) -> list[tuple[int, int, float]]:
    """(row index, source pos, weight) of the largest |A| entries up to `mass` of the total."""
    sub = A[:, keep_src]  # [J, S]
    flat = np.abs(sub).ravel()
    total = flat.sum()
    if total == 0:
        return []
    order = np.argsort(-flat, kind="stable")
    n = int(np.searchsorted(np.cumsum(flat[order]), mass * total) + 1)
    out = []
    for idx in order[:n]:
        r, c = divmod(int(idx), sub.shape[1])
        out.append((r, keep_src[c], float(sub[r, c])))
    return out


def attribution_graph(adapter, prompt: str, target: str, foil: str, variant: str = "cp-lrp",
                      objective: str = "auto", config: GraphConfig = GraphConfig()) -> dict:
    """The pruned cross-layer graph of one case, as the store's ``attribution/{case}/graph`` JSON.

    The top nodes are every position that reads out an answer token (target and foil, all
    tokens); `objective` resolves as in `explain` ("auto": logit difference for one-token
    answers, log-prob difference otherwise).

    Returns:
        ``{"nodes": [{"id", "layer", "pos", "token", "relevance"}], "edges": [{"source", "target",
        "weight"}], "logit_diff", "method", "tokens", "readout", "n_backward"}``.
    """
    from faultlens.attribution.explain import resolve_objective, token_strings
    from faultlens.attribution.methods import frozen_params

    model = adapter.model
    problem = Problem.build(adapter, prompt, target, foil)
    objective = resolve_objective(objective, problem)
    fn = targets.get(objective)
    blocks = decoder_layers(model)
    L = len(blocks)
    readout = sorted(set(problem.target.positions) | set(problem.foil.positions))
    with frozen_params(model), lrp_rules(model, variant):
        with record(model) as rec, torch.enable_grad():
            pe = problem.prompt_embeds(model).requires_grad_(True)
            value = problem.run(model, pe, fn)
            grads = torch.autograd.grad(value.sum(), rec.states)
        H = [s[0].detach() for s in rec.states]  # L+1 × [T, d]
        G = [g[0].detach() for g in grads]
        R = np.stack([(h * g).sum(-1).double().numpy() for h, g in zip(H, G)])  # [L+1, T]
        calls = list(rec.calls)
        kept = {L: readout}
        edges, n_backward = [], 0
        for l in range(L - 1, -1, -1):
            tgt = kept[l + 1]
            batch = config.batch if config.batched else 1
            A = edge_rows(blocks[l], H[l], G[l + 1], calls[l], tgt, batch, rerun=config.rerun and not config.batched)
            n_backward += -(-len(tgt) // batch)
            A = A.double().numpy()  # [J, T]
            score = np.abs(A).sum(0)
            src = [int(i) for i in np.argsort(-score, kind="stable")[: config.top_k] if score[i] > 0]
            kept[l] = sorted(src)
            for r, i, w in _prune_edges(A, kept[l], config.edge_mass):
                edges.append({"source": f"L{l}.P{i}", "target": f"L{l + 1}.P{tgt[r]}", "weight": w})
    toks = token_strings(adapter.tokenizer, problem.row_ids)
    nodes = [{"id": f"L{l}.P{p}", "layer": l, "pos": p, "token": toks[p], "relevance": float(R[l, p])}
             for l in sorted(kept) for p in kept[l]]
    return {"nodes": nodes, "edges": edges, "logit_diff": float(value.detach().sum()), "method": variant,
            "objective": objective, "tokens": toks, "n_prompt": problem.n_prompt, "readout": readout,
            "n_backward": n_backward, "top_k": config.top_k, "edge_mass": config.edge_mass}


def graph_to_store(store, run_id: str, case_id: str, graph: dict) -> str:
    key = f"attribution/{case_id}/graph"
    store.put_artifact(run_id, key, graph, meta={"method": graph.get("method"), "tokens": graph.get("tokens")})
    return key
