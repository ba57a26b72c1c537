"""Cross-layer attribution graph with batch-packed backward passes (Debug-XAI, Appendix A).

Nodes are residual-stream states (layer l, position p) with relevance
``R_l[p] = Σ_k h_l[p,k] · g_l[p,k]`` where ``g_l = ∂f/∂h_l`` under the LRP backward. The edge from
(l, i) to (l+1, j) is the share of R_{l+1}[j] that block l routes to h_l[i] (see `edges.py` for
how it is computed: only the attention sub-layer is re-run, all targets of a chunk in one
batched backward). Because the LRP backward is linear, ``Σ_j A[j, i] = R_l[i]`` over all targets
j (exact), and with cp-lrp on a bias-free model ``Σ_i A[j, i] = R_{l+1}[j]``. The causal mask
makes A lower-triangular.

The graph covers every answer token: the top nodes are all readout positions of target and foil
(for multi-token answers the answer-prefix tokens are positions of the row, see `Problem`), and
the attributed scalar is the same as `explain`'s.

Pruning, top-down from the readout nodes: at each layer keep the `top_k` source positions that
receive the most |edge| mass from the kept targets; per transition keep the largest edges up to
`edge_mass` of the absolute total.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from faultlens.attribution.patching import lrp_rules
from faultlens.attribution.problem import Problem
from faultlens.attribution.edges import block_edge_rows, edge_rows
from faultlens.attribution.recording import record
from faultlens.attribution.targets import targets
from faultlens.capture import decoder_layers


@dataclass(frozen=True)
class GraphConfig:
    """Graph settings.

    Attributes:
        top_k: source nodes kept per layer.
        edge_mass: share of |edge| mass kept per transition.
        batch: targets packed into one batched backward.
        batched: False = one backward per target (same shared forward); for comparison.
        rerun: re-run the whole block for every chunk instead of the attention sub-layer once
            (the Debug-XAI procedure; reference for tests and benchmarks).
    """

    top_k: int = 16
    edge_mass: float = 0.85
    batch: int = 32
    batched: bool = True
    rerun: bool = False


@contextmanager
def eager_attention(model) -> Iterator[None]:
    """Run `model` with HF's eager attention inside the block (restored on exit, also on error).

    Why: the packed backward vmaps over targets, and SDPA's CPU backward has no vmap batching
    rule (PyTorch falls back to a per-target loop, which made packing pointless); eager attention
    is matmul + softmax, which batch. Eager also makes HF materialise the causal mask, so the
    recorded call kwargs re-run causally. Relevance is the same under both (tested).
    """
    cfg = model.config
    old = cfg._attn_implementation
    try:
        cfg._attn_implementation = "eager"
        yield
    finally:
        cfg._attn_implementation = old


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
    with frozen_params(model), eager_attention(model), lrp_rules(model, variant):
        with record(model) as rec, torch.enable_grad():
            pe = problem.prompt_embeds(model).requires_grad_(True)
            value = problem.run(model, pe, fn)
            grads = torch.autograd.grad(value.sum(), rec.states + rec.attn)
        H = [s[0].detach() for s in rec.states]  # L+1 × [T, d]
        G = [g[0].detach() for g in grads[: L + 1]]
        G_mid = [g[0].detach() for g in grads[L + 1:]]  # ∂f/∂(attention output) = ∂f/∂(mid residual)
        R = np.stack([(h * g).sum(-1).double().numpy() for h, g in zip(H, G)])  # [L+1, T]
        calls, attn_calls = list(rec.calls), list(rec.attn_calls)
        kept = {L: readout}
        edges, n_backward = [], 0
        for l in range(L - 1, -1, -1):
            tgt = kept[l + 1]
            batch = config.batch if config.batched else 1
            if config.rerun:
                A = block_edge_rows(blocks[l], H[l], G[l + 1], calls[l], tgt, batch)
            else:
                A = edge_rows(blocks[l], H[l], G_mid[l], attn_calls[l], tgt, batch)
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
