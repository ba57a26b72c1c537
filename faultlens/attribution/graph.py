"""Cross-layer attribution graph: every target of a layer in one pass, not one backward each.

Nodes are residual-stream states (layer l, position p) with relevance
``R_l[p] = Σ_k h_l[p,k] · g_l[p,k]`` where ``g_l = ∂f/∂h_l`` under the LRP backward. The edge from
(l, i) to (l+1, j) is the share of R_{l+1}[j] that block l routes to h_l[i]. How the edge rows
of a layer's kept targets are computed is a registered edge method (`edge_methods`):

* ``closed`` (the default): all targets at once in closed form from the global pass, two small
  backwards per layer (`closed_edges.py`);
* ``packed``: the attention sub-layer re-run once, the targets of a chunk packed into one
  batched backward (Debug-XAI, Appendix A; `edges.py`);
* ``separate``: the same re-run, one backward per target (the unpacked baseline);
* ``rerun``: the whole block re-run and one backward per target (Debug-XAI's procedure unpacked).

Because the LRP backward is linear, ``Σ_j A[j, i] = R_l[i]`` over all targets j (exact), and with
cp-lrp on a bias-free model ``Σ_i A[j, i] = R_{l+1}[j]``. The causal mask makes A lower-triangular.

The graph covers every answer token: the top nodes are all readout positions of target and foil
(for multi-token answers the answer-prefix tokens are positions of the row, see `Problem`), and
the attributed scalar is the same as `explain`'s.

Pruning, top-down from the readout nodes: at each layer keep the `top_k` source positions that
receive the most |edge| mass from the kept targets; per transition keep the largest edges up to
`edge_mass` of the absolute total.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from faultlens.attribution.closed_edges import POINTS, closed_edge_rows, input_linear
from faultlens.attribution.edges import block_edge_rows, edge_rows
from faultlens.attribution.patching import lrp_rules
from faultlens.attribution.problem import Problem
from faultlens.attribution.recording import Recording, record
from faultlens.attribution.targets import targets
from faultlens.capture import capture, decoder_layers
from faultlens.registry import Registry


@dataclass(frozen=True)
class GraphConfig:
    """Graph settings.

    Attributes:
        top_k: source nodes kept per layer.
        edge_mass: share of |edge| mass kept per transition.
        edges: edge method (see `edge_methods`); "auto" = "closed".
        batch: targets packed into one batched backward ("packed").
    """

    top_k: int = 16
    edge_mass: float = 0.85
    edges: str = "auto"
    batch: int = 32


@dataclass
class _Pass:
    """What the one global LRP pass left for the edge methods (index l = block l)."""

    blocks: list
    rec: Recording
    H: list[torch.Tensor]  # block inputs, L+1 × [T, d]
    G: list[torch.Tensor]  # ∂f/∂h, L+1 × [T, d]
    G_mid: list[torch.Tensor]  # ∂f/∂(attention output), L × [T, d]
    U: list[torch.Tensor] | None  # ∂f/∂(output-projection input), L × [T, H·dh]
    cap: dict  # live kernel capture (q, k, v, mask, meta per block) for "closed"


# edge method: (pass, layer l, target positions at l+1, batch) -> (rows [J, T], backward calls)
EdgeMethod = Callable[[_Pass, int, list[int], int], tuple[torch.Tensor, int]]
edge_methods: Registry[EdgeMethod] = Registry("graph edge method", "graph-edge-methods")


@edge_methods.register("closed", "all targets at once in closed form, 2 small backwards per layer")
def _closed(p: _Pass, l: int, tgt: list[int], batch: int) -> tuple[torch.Tensor, int]:
    cap = {x: p.cap[f"blocks.{l}.attn.{x}"] for x in ("q", "k", "v", "mask", "meta")}
    lin = input_linear(p.rec.states[l], {x: cap[x] for x in ("q", "k", "v")})
    return closed_edge_rows(p.H[l], p.G_mid[l], p.U[l], cap, lin, tgt), 2


@edge_methods.register("packed", "attention sub-layer re-run once, `batch` targets per batched backward")
def _packed(p: _Pass, l: int, tgt: list[int], batch: int) -> tuple[torch.Tensor, int]:
    return edge_rows(p.blocks[l], p.H[l], p.G_mid[l], p.rec.attn_calls[l], tgt, batch), -(-len(tgt) // batch)


@edge_methods.register("separate", "attention sub-layer re-run once, one backward per target")
def _separate(p: _Pass, l: int, tgt: list[int], batch: int) -> tuple[torch.Tensor, int]:
    return edge_rows(p.blocks[l], p.H[l], p.G_mid[l], p.rec.attn_calls[l], tgt, 1), len(tgt)


@edge_methods.register("rerun", "whole block re-run and one backward per target (Debug-XAI unpacked)")
def _rerun(p: _Pass, l: int, tgt: list[int], batch: int) -> tuple[torch.Tensor, int]:
    return block_edge_rows(p.blocks[l], p.H[l], p.G[l + 1], p.rec.calls[l], tgt, 1), len(tgt)


def resolve_edges(name: str) -> str:
    """The edge method to use ("auto": closed); unknown names fail with a suggestion."""
    if name == "auto":
        return "closed"
    edge_methods.get(name)
    return name


@contextmanager
def eager_attention(model) -> Iterator[None]:
    """Run `model` with HF's eager attention inside the block (restored on exit, also on error).

    Used by the re-running edge methods only ("closed" runs on the model's own kernel). Why: the
    packed backward vmaps over targets, and SDPA's CPU backward has no vmap batching rule
    (PyTorch falls back to a per-target loop, which made packing pointless); eager attention is
    matmul + softmax, which batch. Eager also makes HF materialise the causal mask, so the
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
        "weight"}], "logit_diff", "method", "tokens", "readout", "edge_method", "n_backward",
        "seconds": {"global_pass", "edges"}}`` (wall seconds of the one LRP pass and of the edge phase).
    """
    from faultlens.attribution.explain import resolve_objective, token_strings
    from faultlens.attribution.methods import frozen_params

    model = adapter.model
    problem = Problem.build(adapter, prompt, target, foil)
    objective = resolve_objective(objective, problem)
    fn = targets.get(objective)
    method = resolve_edges(config.edges)
    edge_fn = edge_methods.get(method)
    blocks = decoder_layers(model)
    L = len(blocks)
    readout = sorted(set(problem.target.positions) | set(problem.foil.positions))
    closed = method == "closed"
    t0 = time.perf_counter()
    # closed reads q/k/v at the model's own kernel (SDPA fine); the re-run methods need eager (see eager_attention)
    attention = nullcontext() if closed else eager_attention(model)
    with frozen_params(model), attention, lrp_rules(model, variant):
        points = POINTS if closed else ()
        with record(model) as rec, capture(model, points, live=True) as cap, torch.enable_grad():
            pe = problem.prompt_embeds(model).requires_grad_(True)
            value = problem.run(model, pe, fn)
            wrt = rec.states + rec.attn + (rec.heads if closed else [])
            grads = torch.autograd.grad(value.sum(), wrt, retain_graph=closed)  # closed: J·h needs the graph
        gp = _Pass(blocks, rec, H=[s[0].detach() for s in rec.states], G=[g[0].detach() for g in grads[: L + 1]],
                  G_mid=[g[0].detach() for g in grads[L + 1: 2 * L + 1]],
                  U=[g[0].detach() for g in grads[2 * L + 1:]] if closed else None, cap=cap)
        R = np.stack([(h * g).sum(-1).double().numpy() for h, g in zip(gp.H, gp.G)])  # [L+1, T]
        kept = {L: readout}
        edges, n_backward = [], 0
        t1 = time.perf_counter()
        with torch.enable_grad():  # recording hooks are off again: re-runs below must not overwrite it
            for l in range(L - 1, -1, -1):
                tgt = kept[l + 1]
                A, n = edge_fn(gp, l, tgt, config.batch)
                n_backward += n
                A = A.double().numpy()  # [J, T]
                score = np.abs(A).sum(0)
                src = [int(i) for i in np.argsort(-score, kind="stable")[: config.top_k] if score[i] > 0]
                kept[l] = sorted(src)
                for r, i, w in _prune_edges(A, kept[l], config.edge_mass):
                    edges.append({"source": f"L{l}.P{i}", "target": f"L{l + 1}.P{tgt[r]}", "weight": w})
    t2 = time.perf_counter()
    toks = token_strings(adapter.tokenizer, problem.row_ids)
    nodes = [{"id": f"L{l}.P{p}", "layer": l, "pos": p, "token": toks[p], "relevance": float(R[l, p])}
             for l in sorted(kept) for p in kept[l]]
    return {"nodes": nodes, "edges": edges, "logit_diff": float(value.detach().sum()), "method": variant,
            "objective": objective, "tokens": toks, "n_prompt": problem.n_prompt, "readout": readout,
            "edge_method": method, "n_backward": n_backward, "top_k": config.top_k, "edge_mass": config.edge_mass,
            "seconds": {"global_pass": t1 - t0, "edges": t2 - t1}}


def graph_to_store(store, run_id: str, case_id: str, graph: dict) -> str:
    key = f"attribution/{case_id}/graph"
    store.put_artifact(run_id, key, graph, meta={"method": graph.get("method"), "tokens": graph.get("tokens")})
    return key
