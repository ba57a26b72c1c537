"""Symptom → root-cause diagnosis over the ABNN taxonomy.

The ABNN paper reports four diagnostic heuristics, but their wording is not available to us, so
none are reproduced here. Instead every link below is a plain symptom → (category, root cause)
association read off the taxonomy note's category definitions, mutation operators and property
tests (e.g. "mass on padded keys" → masking; "cached decoding differs from the full forward" →
KV cache or positional offset; "loss falls, output does not move" → QKV parameter registration).
Each link carries a weight; a diagnosis ranks (category, root cause) pairs by the summed weight of
the links that matched the evidence, and shows which evidence matched which link.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from faultlens.faults.taxonomy import require


@dataclass(frozen=True)
class Link:
    pattern: str  # regex, case-insensitive, searched in symptom text / log / finding messages
    category: str
    root_cause: str
    weight: float
    why: str


def _links(pattern: str, why: str, *targets: tuple[str, str, float]) -> list[Link]:
    return [Link(pattern, c, r, w, why) for c, r, w in targets]


M, Q, K, P, S, C, V = ("Attention Masking", "QKV Projection", "Attention Kernel", "Positional Encoding",
                       "Attention Score", "KV Cache", "Attention Variant")

LINKS: list[Link] = [
    *_links(r"pad(ded|ding)?\b.*(mass|attend|chang|differ)|mass on pad|padding (changes|affects)",
            "padded keys receive attention: the padding mask is missing, inverted or on the wrong axis",
            (M, "Mask Application", 3), (M, "Mask Generation", 2)),
    *_links(r"future|causal(ity)? leak|peek|look-?ahead|loss (drops|falls) (to|near) (zero|0)",
            "later tokens influence earlier outputs: the causal mask is broken",
            (M, "Dynamic Mask", 3), (M, "Mask Generation", 1.5), (V, "Dynamic Dispatch", 1)),
    *_links(r"mask.*(shape|broadcast|axis|transpos)|(batch|head) (axis|dim).*mask",
            "the mask is built or reshaped on the wrong axes", (M, "Mask Generation", 3)),
    *_links(r"cache|cached|incremental decod|generate.*(differ|mismatch)|past_key_values",
            "cached decoding differs from a full forward: cache contents or the position offset are wrong",
            (C, "Cache-Position", 2), (C, "Cache Invalidation", 2), (C, "Update Synchronization", 1.5),
            (P, "Relative Position", 1.5)),
    *_links(r"(position|offset).*(off by one|off-by-one|shift)|off[- ]by[- ]one",
            "an index is off by one: cache write index or position ids", (C, "Cache-Position", 2),
            (P, "Relative Position", 2), (P, "Indexing", 1)),
    *_links(r"stale|not (reset|cleared)|second (call|request)|after reset",
            "state from an earlier call is reused", (C, "Cache Invalidation", 3), (C, "Distributed Synchronization", 1)),
    *_links(r"other (request|user)|cross-request|another request|batch (row|neighbou?r)s?|contaminat",
            "one request's output depends on another's", (C, "Distributed Synchronization", 3)),
    *_links(r"truncat|(long|longer) (sequence|context|input)|beyond (max|the maximum)|after \d+ tokens|context length",
            "behaviour changes past a length: positions clamp or the cache is truncated",
            (P, "Interpolation", 2.5), (C, "Memory Layout", 2)),
    *_links(r"(loss|training).*(falls|decreas|goes down).*(output|prediction)s? (does|do)(n.?t| not) (move|change)|"
            r"not (updat|learn)|no grad|grad(ient)? (is )?(none|zero)|frozen|requires_grad",
            "the optimiser never reaches the attention projections", (Q, "Dynamic Parameter Registration", 3),
            (Q, "Parameter Initialization", 1)),
    *_links(r"missing keys|unexpected keys|state_?dict|checkpoint.*(load|mismatch)",
            "weights are not (or differently) registered", (Q, "Dynamic Parameter Registration", 3)),
    *_links(r"\bnan\b|\binf\b|overflow|underflow|fp16|bf16|half precision|mixed precision|autocast",
            "non-finite values or precision loss in scores/softmax",
            (S, "Precision Handling", 3), (K, "Numerical Precision", 2), (K, "Hardware Incompatibility", 1)),
    *_links(r"uniform attention|attention (is )?(flat|uniform)|max(imal)? entropy|zero (init|weights)",
            "scores carry no signal: a projection is zero or constant", (Q, "Parameter Initialization", 3),
            (S, "Normalization", 1)),
    *_links(r"(identical|same|duplicate) heads|heads? (are )?(identical|tied)|single head|head diversity",
            "heads collapsed into one", (Q, "Head Interaction", 2.5), (V, "Variant Configuration", 2.5)),
    *_links(r"saturat|one-?hot attention|too (sharp|peaked)|large (logits|scores)|scal(e|ing)",
            "softmax temperature is wrong (missing 1/sqrt(d_k))", (S, "Normalization", 3)),
    *_links(r"(rows?|probabilit(y|ies)).*(sum|normali[sz])|softmax.*(dim|axis)",
            "attention rows do not sum to one", (S, "Normalization", 2.5), (S, "Implementation", 2),
            (M, "Mask Application", 1.5)),
    *_links(r"non-?determin|differs? (between|across) runs|random in eval|dropout",
            "eval outputs change run to run: dropout is active in eval", (S, "Implementation", 2.5),
            (K, "Feature Constraints", 2)),
    *_links(r"\bslow|out of memory|\boom\b|fallback|math (kernel|path|backend)|flash.*(not|isn)|memory[- ]efficient",
            "the intended fused kernel is not used", (K, "Silent Fallback", 3), (K, "Kernel Memory", 2)),
    *_links(r"backend|(cpu|gpu|cuda).*(vs|differ)|kernel.*(differ|mismatch)",
            "backends disagree", (K, "Hardware Incompatibility", 2.5), (K, "Numerical Precision", 1)),
    *_links(r"shape mismatch|size mismatch|head_?dim|num_?heads|view\(|reshape|transpose",
            "head split/merge geometry is wrong", (Q, "Dimension", 3)),
    *_links(r"order (does ?n.?t|doesn.?t) matter|permutation|bag of (words|tokens)|position(s|al)? (ignored|missing|omitted)",
            "the model cannot see token order", (P, "Indexing", 3)),
    *_links(r"rope|rotary|relative position", "rotary/relative positions are mis-applied",
            (P, "Relative Position", 2.5)),
    *_links(r"sliding[- ]window|local attention|layer_types", "the wrong layers use windowed attention",
            (V, "Variant Configuration", 3)),
    *_links(r"encoder.*causal|bidirectional|cannot see (the )?right context",
            "an encoder runs a causal mask", (V, "Dynamic Dispatch", 3)),
    *_links(r"\bgqa\b|grouped[- ]query|kv heads|num_key_value", "KV heads are grouped wrongly",
            (V, "Variant Configuration", 2.5)),
]
for _l in LINKS:
    require(_l.category, _l.root_cause)

# A failing check is strong evidence for its own root cause and weaker for its neighbours.
CHECK_LINKS: dict[str, list[tuple[str, str, float]]] = {
    "causality": [(M, "Dynamic Mask", 4), (M, "Mask Generation", 2), (Q, "Dimension", 1)],
    "padding": [(M, "Mask Application", 4), (M, "Mask Generation", 2)],
    "row_stochastic": [(S, "Normalization", 3), (M, "Mask Application", 2), (S, "Implementation", 2)],
    "sdpa_reference": [(S, "Implementation", 3), (K, "Numerical Precision", 2), (S, "Precision Handling", 2),
                       (K, "Kernel Memory", 1.5)],
    "scaling": [(S, "Normalization", 4)],
    "eval_determinism": [(S, "Implementation", 3), (K, "Feature Constraints", 3)],
    "projection_reference": [(Q, "Dimension", 3), (Q, "Head Interaction", 2), (V, "Variant Configuration", 1)],
    "head_independence": [(Q, "Head Interaction", 4), (V, "Variant Configuration", 2)],
    "projection_init": [(Q, "Parameter Initialization", 4)],
    "grad_reachability": [(Q, "Dynamic Parameter Registration", 4), (Q, "Parameter Initialization", 2)],
    "state_dict_roundtrip": [(Q, "Dynamic Parameter Registration", 4)],
    "order_sensitivity": [(P, "Indexing", 3), (P, "Interpolation", 2)],
    "permutation_equivariance": [(Q, "Dimension", 4)],
    "rope_shift": [(P, "Relative Position", 3), (P, "Interpolation", 2.5)],
    "kv_cache_equality": [(C, "Cache Invalidation", 3), (C, "Cache-Position", 3), (C, "Update Synchronization", 3),
                          (P, "Relative Position", 2), (C, "Distributed Synchronization", 1)],
    "request_isolation": [(C, "Distributed Synchronization", 4), (C, "Cache Invalidation", 2)],
    "cache_length": [(C, "Memory Layout", 4), (C, "Cache-Position", 1.5)],
    "backend_parity": [(K, "Hardware Incompatibility", 3), (K, "Numerical Precision", 2)],
    "backend_selection": [(K, "Silent Fallback", 4), (K, "Kernel Memory", 1.5), (K, "Hardware Incompatibility", 1)],
    "precision": [(K, "Numerical Precision", 3), (S, "Precision Handling", 3)],
    "bidirectionality": [(V, "Dynamic Dispatch", 4)],
    "head_diversity": [(V, "Variant Configuration", 3), (Q, "Head Interaction", 2)],
    "variant_audit": [(V, "Variant Configuration", 4), (V, "Dynamic Dispatch", 2)],
    "gqa_parity": [(V, "Variant Configuration", 4)],
}


@dataclass
class Cause:
    category: str
    root_cause: str
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def to_json(self, total: float) -> dict:
        return {"category": self.category, "root_cause": self.root_cause, "score": round(self.score, 2),
                "share": round(self.score / total, 3) if total else 0.0, "reasons": self.reasons}


def _loss_series(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"loss[^0-9naNinf-]{0,4}(-?[0-9]*\.?[0-9]+(?:e-?\d+)?|nan|inf)", text, re.I)]


def _log_symptoms(text: str) -> list[str]:
    """Symptoms read off a training log's loss curve."""
    out = []
    losses = _loss_series(text)
    if any(not math.isfinite(x) for x in losses):
        out.append("loss became nan/inf")
    finite = [x for x in losses if math.isfinite(x)]
    if len(finite) >= 3 and finite[-1] < 0.05 < finite[0]:
        out.append("loss drops to near zero: possible future-token leak (causal mask)")
    return out


def diagnose(symptom: str = "", findings: list[dict] | None = None, log: str = "", top: int = 5) -> list[dict]:
    """Rank (category, root cause) pairs for the given evidence.

    Args:
        symptom: free text ("generation differs from the full forward after the first token").
        findings: check/monitor findings as dicts (keys `check` or `source`, `message`, `category`).
        log: a training log; its loss curve adds symptoms (nan, collapse to ~0).
        top: how many causes to return.

    Returns:
        Dicts with category, root_cause, score, share and the reasons that matched, best first.
    """
    causes: dict[tuple[str, str], Cause] = {}

    def add(cat: str, rc: str, w: float, why: str) -> None:
        c = causes.setdefault((cat, rc), Cause(cat, rc))
        c.score += w
        if why not in c.reasons:
            c.reasons.append(why)

    texts = [("symptom", symptom)] + [("log", s) for s in _log_symptoms(log)]
    for f in findings or []:
        name = str(f.get("check") or str(f.get("source", "")).split(":", 1)[-1])
        for cat, rc, w in CHECK_LINKS.get(name, []):
            add(cat, rc, w, f"failing check {name!r}: {f.get('message', '')}".strip())
        if name not in CHECK_LINKS:
            texts.append((f"finding {name}", f"{f.get('category', '')} {f.get('message', '')}"))
    for where, text in texts:
        if not text:
            continue
        for link in LINKS:
            m = re.search(link.pattern, text, re.I)
            if m:
                add(link.category, link.root_cause, link.weight, f"{where} mentions {m.group(0)!r}: {link.why}")
    ranked = sorted(causes.values(), key=lambda c: -c.score)
    total = sum(c.score for c in ranked)
    return [c.to_json(total) for c in ranked[:top]]


def read_findings(path: str) -> list[dict]:
    """Findings from `faultlens check --json` output (JSON lines) or a JSON list."""
    from pathlib import Path

    from faultlens.errors import FaultlensError

    p = Path(path)
    if not p.is_file():
        raise FaultlensError(f"{path} does not exist; pass the saved output of `faultlens check --json`.")
    text = p.read_text()
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        pass
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise FaultlensError(f"{path}:{i} is not JSON; pass --log for plain-text training logs.") from None
    return out
