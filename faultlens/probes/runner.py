"""Run probes against a model, resumably, writing each chunk of cases in one transaction.

A chunk's results and features land together or not at all, and the store's unique keys skip
anything already written, so a run killed at any moment and resumed scores every case exactly
once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from faultlens.errors import FaultlensError
from faultlens.probes import load_all, probes
from faultlens.probes.base import ProbeAnalysis, ProbeConfig
from faultlens.probes.features import case_features, load_providers
from faultlens.store import Store
from faultlens.types import Feature

Progress = Callable[[str, int, int], None]  # (probe, done, total)


@dataclass(frozen=True)
class ScanConfig:
    """A probe scan, as stored with the run.

    Attributes:
        model: model name or path (for the record).
        probes: probe names to run (validated against the registry).
        probe: which cases (set, file, n per cell, seed).
        features: capture internal per-case features (white-box adapters only).
        chunk: cases per committed transaction.
        attribute_failures: explain this many worst failing cases per probe (0 = none).
    """

    model: str
    probes: tuple[str, ...]
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    features: bool = True
    chunk: int = 48
    attribute_failures: int = 0


@dataclass
class ScanReport:
    run_id: str
    analyses: dict[str, ProbeAnalysis]
    n_scored: int
    n_skipped: int


def start_run(store: Store, cfg: ScanConfig, run_id: str | None, resume: bool) -> str:
    """Create the run, or check that the one being resumed is the same scan."""
    if run_id is not None and store.get_run(run_id) is not None:
        if not resume:
            raise FaultlensError(f"Run {run_id!r} already exists; add --resume to continue it or pick another --run-id.")
        stored = store.get_run(run_id)["config"]
        if stored.get("model") != cfg.model:
            raise FaultlensError(f"Run {run_id!r} was started on model {stored.get('model')!r}, not {cfg.model!r}; resume it with the same model.")
        store.set_status(run_id, "running")
        return run_id
    if resume and run_id is None:
        raise FaultlensError("--resume needs --run-id ID of the run to continue.")
    return store.create_run(cfg.model, asdict(cfg), kind="scan", run_id=run_id)


def run_scan(adapter, store: Store, cfg: ScanConfig, run_id: str | None = None, resume: bool = False,
             progress: Progress | None = None) -> ScanReport:
    """Score every case of every probe, store results/features/findings, return the analyses."""
    load_all()
    names = probes.resolve(list(cfg.probes))
    plan = {n: probes.get(n)().cases(cfg.probe) for n in names}  # validate all inputs before writing
    check_lengths(adapter, plan)
    run_id = start_run(store, cfg, run_id, resume)
    if getattr(adapter, "n_params", None):  # recorded for failure-rate-vs-size comparisons
        store.update_config(run_id, n_params=int(adapter.n_params), adapter=type(adapter).__name__)
    mode = scan_mode(adapter)
    stored_mode = store.get_run(run_id)["config"].get("score_mode")
    if stored_mode and stored_mode != mode:
        raise FaultlensError(f"Run {run_id!r} was scored in {stored_mode} mode but this model needs {mode} mode; start a new run.")
    store.update_config(run_id, score_mode=mode)
    white_box = cfg.features and hasattr(adapter, "capture")
    if white_box:
        load_providers()
    n_scored = n_skipped = 0
    analyses = {}
    for name in names:
        cases = plan[name]
        done = store.done_case_ids(run_id, name)
        todo = [c for c in cases if c.id not in done]
        n_skipped += len(cases) - len(todo)
        base = len(cases) - len(todo)
        if progress:
            progress(name, base, len(cases))
        tick = (lambda k, name=name, base=base, total=len(cases): progress(name, base + k, total)) if progress else None
        n_scored += score_unit(adapter, store, run_id, name, todo, white_box, cfg.chunk, tick, mode)
        analyses[name] = finish_probe(store, run_id, name, cfg.probe.alpha)
        if cfg.attribute_failures:
            attribute_failures_of(adapter, store, run_id, name, cfg.attribute_failures)
    store.set_status(run_id, "done")
    return ScanReport(run_id, analyses, n_scored, n_skipped)


def scan_mode(adapter) -> str:
    """"score" (log-likelihood) unless the adapter says it cannot return prompt log-probs."""
    if not hasattr(adapter, "score"):
        return "generate"
    can = getattr(adapter, "supports_prompt_logprobs", None)
    return "generate" if can is not None and not can() else "score"


def score_unit(adapter, store: Store, run_id: str, probe_name: str, cases, features: bool, chunk: int = 48,
               tick: Callable[[int], None] | None = None, mode: str = "score") -> int:
    """Score one work unit (a model, a probe, a list of cases) into the store; return cases scored.

    Idempotent: each chunk's results and features are one transaction with insert-or-ignore,
    so a retried or resumed unit never double-writes. Executors (local, Ray) call this.
    In "generate" mode (black-box models without log-probs) a per-probe judge reads generations.
    """
    probe = probes.get(probe_name)()
    for i in range(0, len(cases), chunk):
        part = cases[i:i + chunk]
        if mode == "generate":
            from faultlens.probes.judges import generate_chunk

            results = generate_chunk(probe, adapter, part, run_id)
        else:
            results = _score_chunk(probe, adapter, part, run_id)
        feats = _features(adapter, part, run_id) if features else []
        if hasattr(adapter, "blackbox_features"):
            feats += _blackbox_features(adapter, part, results, run_id)
        store.write(results=results, features=feats)
        if tick:
            tick(i + len(part))
    return len(cases)


def finish_probe(store: Store, run_id: str, name: str, alpha: float = 0.05) -> ProbeAnalysis:
    """Analyse a probe's stored results; store its findings and summary artifact."""
    df = store.to_pandas("results", run_id)
    analysis = probes.get(name)().analyze(df[df["probe"] == name], run_id, alpha)
    store.add_findings(analysis.findings)
    store.put_artifact(run_id, f"probe/{name}/summary", analysis.summary)
    return analysis


def _score_chunk(probe, adapter, part, run_id):
    reqs = [probe.requests(c) for c in part]
    flat = [r for rs in reqs for r in rs]
    scores = adapter.score([p for p, _ in flat], [c for _, c in flat])
    results, k = [], 0
    for c, rs in zip(part, reqs):
        results += probe.judge(c, scores[k:k + len(rs)], run_id, adapter.name)
        k += len(rs)
    return results


def _blackbox_features(adapter, part, results, run_id) -> list[Feature]:
    """Features an API model allows (lengths, output entropy from top logprobs)."""
    texts = {r.case_id: (r.detail.get("generations") or [None])[0] for r in results}
    missing = [c.prompt for c in part if texts.get(c.id) is None]  # score mode: no text yet
    gens = dict(zip(missing, adapter.generate(missing, max_new_tokens=8))) if missing else {}
    out = []
    for c in part:
        text = texts.get(c.id) or gens.get(c.prompt, "")
        out += [Feature(run_id, c.id, k, v) for k, v in adapter.blackbox_features(c.prompt, text).items() if v == v]
    return out


def check_lengths(adapter, plan: dict) -> None:
    """Fail before the run starts if any prompt cannot fit the model's context."""
    limit = getattr(adapter, "max_length", None)
    if not limit or not hasattr(adapter, "encode"):
        return
    for name, cases in plan.items():
        for c in cases:
            n = len(adapter.encode(c.prompt))
            if n >= limit:
                raise FaultlensError(f"Case {c.id!r} of probe {name!r} has a {n}-token prompt but the model's context is "
                                     f"{limit} tokens; shorten it or drop the case.")


def _features(adapter, chunk, run_id) -> list[Feature]:
    out = []
    for fname in case_features:
        rows = case_features.get(fname)(adapter, chunk)
        for c, row in zip(chunk, rows):
            out += [Feature(run_id, c.id, k, v) for k, v in row.items()]
    return out


def attribute_failures_of(adapter, store, run_id, name, top_n) -> None:
    """Explain the `top_n` worst failing cases of probe `name` (contrastive LRP), if built."""
    try:
        from faultlens.attribution import attribute_failures
    except ImportError:
        return
    from faultlens.types import Case

    df = store.to_pandas("results", run_id)
    failing = df[(df["probe"] == name) & (~df["passed"].astype(bool))].sort_values("score")
    pairs = [(Case(id=r.case_id, prompt=r.detail["prompt"], target=r.detail["target"], foil=r.detail.get("foil", ""),
                   variable=r.variable, value=r.value), r.score) for r in failing.itertuples() if "prompt" in r.detail]
    attribute_failures(adapter, store, run_id, pairs, top_n=top_n)
