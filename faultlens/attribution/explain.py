"""`explain`: why the wrong answer beat the right one, per input token and internal state.

    expl = explain(adapter, prompt, " Mia", " Ben", method="cp-lrp")
    explanation_to_store(store, run_id, case_id, expl)

The attributed scalar is by default ``logit(foil) − logit(target)`` (see `targets.py`); positive
token relevance means "pushed the model towards the foil". Every explanation carries its own
perturbation faithfulness (deletion / insertion AOPC against a random ranking).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np

from faultlens.attribution.faithfulness import FaithfulnessConfig, curves
from faultlens.attribution.methods import methods
from faultlens.attribution.problem import Problem
from faultlens.attribution.targets import targets
from faultlens.errors import FaultlensError

METHODS = ("cp-lrp", "attnlrp", "grad_x_input", "ig", "rollout")


@dataclass
class Explanation:
    """One attribution of one (prompt, target, foil).

    Attributes:
        tokens: prompt token strings (leading-space markers shown as spaces).
        relevance: per token ``[T]``; sums to ``logit_diff`` for cp-lrp on bias-free models.
        layer_relevance: residual stream ``[L+1, T]`` (None for ig / rollout).
        head_relevance: per attention head ``[L, H]``; attn_relevance / mlp_relevance ``[L]``.
        logit_diff: the attributed scalar (logit(foil) − logit(target) for "contrastive").
        faithfulness: deletion / insertion AOPC and their random baselines (see faithfulness.py).
    """

    prompt: str
    target: str
    foil: str
    method: str
    objective: str
    tokens: list[str]
    token_ids: list[int]
    relevance: np.ndarray
    logit_diff: float
    layer_relevance: np.ndarray | None = None
    head_relevance: np.ndarray | None = None
    attn_relevance: np.ndarray | None = None
    mlp_relevance: np.ndarray | None = None
    answer_prefix_relevance: float = 0.0
    faithfulness: dict = field(default_factory=dict)
    seconds: float = 0.0

    def top_tokens(self, k: int = 5) -> list[tuple[int, str, float]]:
        """(position, token, relevance) of the k most foil-promoting tokens."""
        order = np.argsort(-self.relevance, kind="stable")[:k]
        return [(int(i), self.tokens[i], float(self.relevance[i])) for i in order]

    def to_json(self) -> dict:
        """The store artifact body (see the store conventions in the common brief)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                d[k] = v.tolist()
        d["relevance_sum"] = float(self.relevance.sum())
        return d


def token_strings(tokenizer, ids: Iterable[int]) -> list[str]:
    """Readable token pieces: SentencePiece '▁' and byte-BPE 'Ġ' become a leading space."""
    return [t.replace("\u2581", " ").replace("\u0120", " ").replace("\u010a", "\n")
            for t in tokenizer.convert_ids_to_tokens(list(ids))]


def resolve_objective(objective: str, problem: Problem) -> str:
    """"auto": the logit difference when both answers are one token (the seed's formulation),
    else the log-probability difference (summed logits of different-length answers are not
    comparable; for one token each the two are identical since the normaliser cancels)."""
    if objective != "auto":
        return objective
    single = len(problem.target.ids) == 1 and len(problem.foil.ids) == 1
    return "contrastive" if single else "contrastive_logprob"


def explain(adapter, prompt: str, target: str, foil: str, method: str = "cp-lrp", objective: str = "auto",
            faithfulness: bool | FaithfulnessConfig = True, mask: str = "eos") -> Explanation:
    """Attribute `objective` (default logit(foil) − logit(target)) to the prompt's tokens.

    Args:
        adapter: a white-box adapter with ``model``, ``tokenizer`` and ``encode_pair`` (HFAdapter).
        prompt, target, foil: the case; answers usually start with a space.
        method: one of cp-lrp, attnlrp, grad_x_input, ig, rollout.
        objective: a name in `targets` (contrastive, contrastive_logprob, target_logit, prob_diff)
            or "auto" (see `resolve_objective`).
        faithfulness: compute perturbation curves (True / a config) or skip them (False).
        mask: the absent token for perturbation curves and the IG baseline ("eos", "unk",
            "pad", "zero"; see `masking.py`); the same for every method.

    Returns:
        An `Explanation`. The model is left exactly as it was, also if this raises.
    """
    model = getattr(adapter, "model", None)
    if model is None:
        raise FaultlensError("Attribution needs a white-box model (an HFAdapter); API models cannot be explained.")
    problem = Problem.build(adapter, prompt, target, foil, mask=mask)
    objective = resolve_objective(objective, problem)
    fn = targets.get(objective)
    t0 = time.perf_counter()
    attr = methods.get(method)(model, problem, fn)
    seconds = time.perf_counter() - t0
    faith = {}
    if faithfulness:
        cfg = faithfulness if isinstance(faithfulness, FaithfulnessConfig) else FaithfulnessConfig()
        faith = curves(model, problem, fn, attr.relevance, cfg)
    return Explanation(
        prompt=prompt, target=target, foil=foil, method=method, objective=objective,
        tokens=token_strings(adapter.tokenizer, problem.prompt_ids), token_ids=list(problem.prompt_ids),
        relevance=attr.relevance, logit_diff=attr.value, layer_relevance=attr.layers, head_relevance=attr.heads,
        attn_relevance=attr.attn, mlp_relevance=attr.mlp, answer_prefix_relevance=attr.answer_prefix,
        faithfulness=faith, seconds=seconds,
    )


def explanation_to_store(store, run_id: str, case_id: str, expl: Explanation) -> str:
    """Write ``attribution/{case_id}/{method}``; returns the key. First write wins (store rule)."""
    key = f"attribution/{case_id}/{expl.method}"
    store.put_artifact(run_id, key, expl.to_json(), meta={"tokens": expl.tokens, "method": expl.method,
                                                          "objective": expl.objective})
    return key


def attribute_failures(adapter, store, run_id: str, cases_and_margins, top_n: int = 5,
                       methods_: tuple[str, ...] = ("cp-lrp",), graph: bool = True) -> list[Explanation]:
    """Explain the `top_n` failing cases with the largest |margin| and store the results.

    Args:
        cases_and_margins: iterable of (Case, margin) for failing cases; the margin's sign
            convention does not matter, the most confident failures (largest |margin|) go first.
        methods_: attribution methods to run on each case.
        graph: also store ``attribution/{case_id}/graph`` (cross-layer graph, LRP models only).

    Returns:
        The explanations written (cases without a foil are skipped).
    """
    from faultlens.attribution.graph import attribution_graph, graph_to_store

    ranked = sorted(((c, m) for c, m in cases_and_margins if getattr(c, "foil", "")),
                    key=lambda cm: -abs(float(cm[1])))[:top_n]
    out = []
    for case, margin in ranked:
        for m in methods_:
            expl = explain(adapter, case.prompt, case.target, case.foil, method=m)
            expl.faithfulness["case_margin"] = float(margin)
            explanation_to_store(store, run_id, case.id, expl)
            out.append(expl)
        if graph and methods_[0] in ("cp-lrp", "attnlrp"):
            g = attribution_graph(adapter, case.prompt, case.target, case.foil, variant=methods_[0])
            graph_to_store(store, run_id, case.id, g)
    if out:
        store.update_config(run_id, attribution={"methods": list(methods_), "top_n": top_n,
                                                  "patching": "per-instance hooks, removed after each call"})
    return out
