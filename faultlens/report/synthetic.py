"""A synthetic run that fills every report section, for tests, the benchmark and the docs.

The numbers are planted, not measured: probe accuracy per value is drawn from known rates
(`PLANTED`), layer 1 head 2 is a planted attention sink, and a loss spike sits at step
`SPIKE_STEP`. Tests assert the report shows what was planted. Optional hostile text
(`XSS_PROMPT`, `XSS_OUTPUT`) goes into prompts, outputs, tokens, case ids and findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faultlens.store import Store
from faultlens.types import Feature, Finding, Result

PLANTED = {"position": {"start": 0.9, "middle": 0.3, "end": 0.85}, "negation": {False: 0.95, True: 0.4}}
SINK = (1, 2)  # (layer, head) whose attention goes to token 0
SPIKE_STEP = 300
XSS_PROMPT = "Tell me <script>window.__xss=1;alert(1)</script> about"
XSS_OUTPUT = '"><img src=x onerror="window.__xss=2">'


@dataclass(frozen=True)
class SyntheticRun:
    """Sizes of the synthetic run (defaults: small and fast, for tests)."""

    n_pairs: int = 40  # per probe; each pair has one case per value, two metrics each
    layers: int = 4
    heads: int = 4
    tokens: int = 12
    attention_cases: int = 2
    attribution_cases: int = 3
    activation_cases: int = 2
    steps: int = 500
    hostile: bool = True
    stats_as: str = "summary"  # "summary" artifact or "features" (`__run__` rows)
    n_params: int | None = None
    seed: int = 0


def _words(rng: np.random.Generator, n: int, hostile: bool) -> list[str]:
    vocab = ["▁Once", "▁upon", "▁a", "▁time", "▁there", "▁was", "▁Lily", "▁who", "▁liked", "▁the", "▁park", "."]
    toks = [vocab[i % len(vocab)] for i in range(n)]
    if hostile and n > 3:
        toks[2] = "<script>alert(1)</script>"
        toks[3] = '"><img src=x onerror=alert(2)>'
    return toks


def write_synthetic_run(store: Store, cfg: SyntheticRun = SyntheticRun(), model: str = "synthetic-llama",
                        run_id: str | None = None) -> str:
    """Create a run in `store` filled per `cfg`; returns its run id."""
    rng = np.random.default_rng(cfg.seed)
    config = {"source": "faultlens.report.synthetic", "seed": cfg.seed}
    if cfg.n_params:
        config["n_params"] = cfg.n_params
    rid = store.create_run(model, config, kind="scan", run_id=run_id)
    _results(store, rid, model, cfg, rng)
    _attention(store, rid, cfg, rng)
    _attribution(store, rid, cfg, rng)
    _activations(store, rid, cfg, rng)
    _monitor(store, rid, cfg, rng)
    _findings(store, rid, cfg)
    _predictor(store, rid, rng)
    store.set_status(rid, "done")
    return rid


def _results(store: Store, rid: str, model: str, cfg: SyntheticRun, rng: np.random.Generator) -> None:
    rows = []
    for probe, rates in PLANTED.items():
        for k in range(cfg.n_pairs):
            for value, acc in rates.items():
                passed = bool(rng.random() < acc)
                margin = float(abs(rng.normal(1.0, 0.8)) * (1 if passed else -1))
                st = float(-rng.uniform(1, 4))
                prompt = XSS_PROMPT if (cfg.hostile and k == 0) else f"Story {k}: Lily went to the park and"
                detail = {"prompt": prompt, "target": " Lily", "foil": " Tom", "score_target": st,
                          "score_foil": st - margin, "pair": f"{probe}-{k}",
                          "output": XSS_OUTPUT if (cfg.hostile and k == 0) else " Lily smiled."}
                cid = f"{probe}-{k}-{value}"
                rows.append(Result(rid, probe, cid, model, probe, value, "margin", margin, passed, detail))
                rows.append(Result(rid, probe, cid, model, probe, value, "correct", float(passed), passed, detail))
    store.add_results(rows)


def _attention(store: Store, rid: str, cfg: SyntheticRun, rng: np.random.Generator) -> None:
    L, H, T = cfg.layers, cfg.heads, cfg.tokens
    entropy = rng.uniform(1.0, 2.5, size=(L, H))  # [L, H]
    sink = rng.uniform(0.02, 0.2, size=(L, H))  # [L, H]
    entropy[SINK], sink[SINK] = 0.1, 0.97
    uniform = np.linspace(0.3, 0.6, L)
    if cfg.stats_as == "summary":
        store.put_artifact(rid, "attention/summary", {
            "layers": L, "heads": H, "entropy": entropy.tolist(), "sink_mass": sink.tolist(),
            "max_logit": rng.uniform(2, 12, size=(L, H)).tolist(), "token_uniformity": uniform.tolist(),
            "lazy_cos": np.linspace(0.6, 0.995, L).tolist(),
            "position_profile": {"position": list(range(T)), "mass": (1 / (1 + np.arange(T))).tolist()}})
    else:
        store.add_features([Feature(rid, "__run__", f"attn.{name}.L{i}.H{h}", float(arr[i, h]))
                            for name, arr in (("entropy", entropy), ("sink_mass", sink))
                            for i in range(L) for h in range(H)]
                           + [Feature(rid, "__run__", f"resid.token_uniformity.L{i}", float(uniform[i])) for i in range(L)])
    causal = np.tril(np.ones((T, T)))  # [T, T]
    for c in range(cfg.attention_cases):
        case = "case<script>alert(3)</script>" if (cfg.hostile and c == 0) else f"case-{c}"
        for i in range(L):
            logits = rng.normal(0, 1.5, size=(H, T, T))  # [H, T, T]
            logits[:, np.arange(T), np.arange(T)] += 2.0 * (np.arange(H) % 2)[:, None]  # odd heads: diagonal
            if i == SINK[0]:
                logits[SINK[1], :, 0] += 8.0
            p = np.exp(logits) * causal
            p /= p.sum(-1, keepdims=True)
            store.put_artifact(rid, f"attention/{case}/L{i}", p.astype(np.float16),
                               {"tokens": _words(rng, T, cfg.hostile)})


def _attribution(store: Store, rid: str, cfg: SyntheticRun, rng: np.random.Generator) -> None:
    T = cfg.tokens
    for c in range(cfg.attribution_cases):
        toks = _words(rng, T, cfg.hostile and c == 0)
        for method in ("lrp", "grad_x_input"):
            rel = rng.normal(0, 0.2, size=T)
            rel[6 % T] = 1.0  # the name token carries the decision
            store.put_artifact(rid, f"attribution/attr-{c}/{method}", {
                "tokens": toks, "relevance": rel.tolist(), "target": " Lily", "foil": " Tom", "method": method,
                "faithfulness": {"deletion_aopc": float(rng.uniform(0.2, 0.6)), "insertion_aopc": float(rng.uniform(0.3, 0.8))}})
        # A pruned graph, as attribution graphs are stored: the last 16 positions only.
        pos = range(max(0, T - 16), T)
        nodes = [{"id": f"L{l}.P{p}", "layer": l, "pos": p, "relevance": float(rng.normal())}
                 for l in range(cfg.layers) for p in pos]
        edges = [{"source": f"L{l}.P{p}", "target": f"L{l + 1}.P{q}", "weight": float(rng.normal())}
                 for l in range(cfg.layers - 1) for p in pos for q in range(p, min(T, p + 3))]
        store.put_artifact(rid, f"attribution/attr-{c}/graph", {"nodes": nodes, "edges": edges})


def _activations(store: Store, rid: str, cfg: SyntheticRun, rng: np.random.Generator) -> None:
    L, T = cfg.layers, cfg.tokens
    feats = []
    for c in range(cfg.activation_cases):
        norms = (1 + np.arange(L + 1))[:, None] * rng.uniform(0.8, 1.2, size=(L + 1, T))  # [L+1, T]
        norms[:, 0] *= 4  # the first token's norm grows fastest (a massive activation)
        store.put_artifact(rid, f"activations/case-{c}/resid_norm", norms.astype(np.float32),
                           {"tokens": _words(rng, T, cfg.hostile)})
        feats += [Feature(rid, f"case-{c}", f"resid.norm.L{i}", float(norms[i].mean())) for i in range(L + 1)]
    store.add_features(feats)


def _monitor(store: Store, rid: str, cfg: SyntheticRun, rng: np.random.Generator) -> None:
    steps = np.arange(0, cfg.steps, 5)
    loss = 3.0 * np.exp(-steps / 200) + 0.5 + rng.normal(0, 0.03, steps.size)
    loss[steps == SPIKE_STEP] += 2.0
    grad = 1.0 + rng.normal(0, 0.1, steps.size)
    store.add_events(rid, [(int(s), "loss", float(v)) for s, v in zip(steps, loss)]
                     + [(int(s), "grad_norm", float(v)) for s, v in zip(steps, grad)])


def _findings(store: Store, rid: str, cfg: SyntheticRun) -> None:
    hostile = " <script>window.__xss=3</script>" if cfg.hostile else ""
    store.add_findings([
        Finding(rid, "diagnostic:sinks", "attention sink", "warning",
                f"layer {SINK[0]} head {SINK[1]} puts 97% of its attention on token 0",
                {"layer": SINK[0], "head": SINK[1], "sink_mass": 0.97}),
        Finding(rid, "probe:position", "position bias", "error",
                "accuracy drops from 0.90 at the start to 0.30 in the middle" + hostile,
                {"accuracy": PLANTED["position"], "p_value": 1e-6}),
        Finding(rid, "probe:negation", "negation", "warning", "negated prompts fail 60% of the time",
                {"accuracy": {"false": 0.95, "true": 0.4}}),
        Finding(rid, "monitor:loss_spike", "loss spike", "warning", f"loss jumped by 2.0 at step {SPIKE_STEP}",
                {"step": SPIKE_STEP, "name": "loss", "value": 2.0}),
        Finding(rid, "check:causality", "Attention Masking", "error", "future tokens change past outputs",
                {"max_abs_diff": 0.31}),
    ])
    store.put_artifact(rid, "checks/summary", {"checks": [
        {"name": "causality", "passed": False, "category": "Attention Masking"},
        {"name": "row_stochastic", "passed": True, "category": "Attention Score"},
        {"name": "kv_cache_parity", "passed": True, "category": "KV Cache"}]})


def _predictor(store: Store, rid: str, rng: np.random.Generator) -> None:
    fpr = np.linspace(0, 1, 21)
    tpr = np.clip(fpr ** 0.4, 0, 1)
    pred = np.linspace(0.05, 0.95, 10)
    store.put_artifact(rid, "predictor/eval", {
        "auroc": 0.81, "auroc_ci": [0.74, 0.87], "dummy_auroc": 0.5, "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "reliability": {"prob_pred": pred.tolist(), "prob_true": np.clip(pred + rng.normal(0, 0.05, 10), 0, 1).tolist()},
        "importance": {"attn.sink_mass.L1": 0.31, "out.entropy": 0.22, "out.margin": -0.18, "resid.norm.L3": 0.07}})
