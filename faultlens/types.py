"""The central records every capability reads and writes (see DESIGN.md).

They are frozen dataclasses with JSON-able fields, so the store, the report and the predictor
never need to know where a number came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One probe item.

    Cases that share `meta["pair"]` (or the same id stem) and differ only in `value` form a
    minimal pair/set for the single `variable` the probe varies.

    Attributes:
        id: unique within a probe, stable across runs (it keys resumption).
        prompt: text given to the model.
        target: the right continuation (leading space included where the tokenizer needs it).
        foil: the wrong continuation we contrast with.
        variable: name of the one variable this case set varies (e.g. "position").
        value: the value of that variable in this case (JSON scalar).
        meta: anything else (pair id, key-span character offsets, options, judge hints).
    """

    id: str
    prompt: str
    target: str
    foil: str = ""
    variable: str = ""
    value: Any = None
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        known = {"id", "prompt", "target", "foil", "variable", "value", "meta"}
        extra = {k: v for k, v in d.items() if k not in known}
        meta = dict(d.get("meta") or {})
        meta.update(extra)
        return cls(
            id=str(d["id"]),
            prompt=d["prompt"],
            target=d["target"],
            foil=d.get("foil", "") or "",
            variable=d.get("variable", "") or "",
            value=d.get("value"),
            meta=meta,
        )


@dataclass(frozen=True)
class Result:
    """One scored case: one store row, one fact per column."""

    run_id: str
    probe: str
    case_id: str
    model: str
    variable: str
    value: Any
    metric: str
    score: float
    passed: bool
    detail: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Feature:
    """One named number about one case: what the failure predictor learns from."""

    run_id: str
    case_id: str
    name: str
    value: float


@dataclass(frozen=True)
class Finding:
    """Something wrong that a probe, diagnostic, monitor or fault check reports.

    Attributes:
        source: what produced it (e.g. "probe:position", "diagnostic:sinks", "monitor", "check:causality").
        category: taxonomy name (ABNN category or seed failure mode, e.g. "attention sink").
        severity: "info" | "warning" | "error".
        message: one human line.
        evidence: JSON-able dict with the numbers behind it.
    """

    run_id: str
    source: str
    category: str
    severity: str
    message: str
    evidence: dict = field(default_factory=dict, hash=False, compare=False)
