"""Case sets as data: JSONL files, loaded with line-numbered errors, written by generators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from faultlens.errors import FaultlensError
from faultlens.types import Case

CASES_DIR = Path(__file__).resolve().parent.parent / "data" / "cases"


def load_jsonl(path: str | Path) -> list[Case]:
    """Read a JSONL case file; each line a JSON object with at least id, prompt, target.

    Raises:
        FaultlensError: missing file, bad JSON or missing/empty fields, naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FaultlensError(f"Case file {str(path)!r} not found; pass an existing JSONL file to --cases.")
    cases, seen = [], set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FaultlensError(f"{path}:{lineno}: not valid JSON ({exc.msg}); each line must be one JSON object.") from None
            if not isinstance(obj, dict):
                raise FaultlensError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}.")
            missing = [k for k in ("id", "prompt", "target") if k not in obj]
            if missing:
                raise FaultlensError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}; every case needs id, prompt, target.")
            if not str(obj["prompt"]).strip():
                raise FaultlensError(f"{path}:{lineno}: empty prompt in case {obj['id']!r}; give it prompt text.")
            if str(obj["id"]) in seen:
                raise FaultlensError(f"{path}:{lineno}: duplicate case id {obj['id']!r}; ids must be unique.")
            seen.add(str(obj["id"]))
            cases.append(Case.from_dict(obj))
    if not cases:
        raise FaultlensError(f"Case file {path} has no cases.")
    return cases


def write_jsonl(cases: Iterable[Case], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for c in cases:
            fh.write(c.to_json() + "\n")
    return path


def shipped_case_file(probe: str, case_set: str) -> Path:
    """Path of a shipped case set: data/cases/<probe>/<case_set>.jsonl."""
    return CASES_DIR / probe / f"{case_set}.jsonl"
