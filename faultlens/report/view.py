"""Read-only access to one run's records, fetched lazily and cached, for the report sections.

Sections ask for exactly what they render (e.g. only the `__run__` features, or only artifact
keys under `attention/`), so a 10,000-result run does not pull every table for every section.
Nothing here writes to the store.
"""

from __future__ import annotations

import json
import re
import zlib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from faultlens.errors import FaultlensError
from faultlens.store import Store
from faultlens.store import schema as S
from faultlens.store.store import decode_array

def open_existing(target: str | Path | None) -> Store:
    """Open a store for reading without creating one: a missing SQLite file is an error.

    `Store()` creates the file when it is absent, which is right for writers but would make
    `report`/`serve` silently show an empty new store after a typo in --store.
    """
    from faultlens.store.store import DEFAULT_STORE

    t = str(target or DEFAULT_STORE)
    if "://" not in t and not Path(t).expanduser().is_file():
        raise FaultlensError(f"No run store at {t}; pass --store with the path of an existing store "
                             "(or set FAULTLENS_STORE).")
    return Store(t)


LAYER_HEAD = re.compile(r"^(?P<stat>.+)\.L(?P<layer>\d+)(?:\.H(?P<head>\d+))?$")


class RunView:
    """One run as the report sees it.

    Args:
        store: the open run store.
        run_id: an existing run (callers check with `store.require_run` first).
    """

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.run: dict = store.require_run(run_id)

    # ------------------------------------------------------------- tables
    @cached_property
    def results(self) -> pd.DataFrame:
        return self.store.to_pandas("results", self.run_id).sort_values("id", kind="stable")

    @cached_property
    def findings(self) -> pd.DataFrame:
        return self.store.to_pandas("findings", self.run_id).sort_values("id", kind="stable")

    @cached_property
    def events(self) -> pd.DataFrame:
        return self.store.to_pandas("monitor_events", self.run_id).sort_values(["name", "step"])

    @cached_property
    def run_features(self) -> dict[str, float]:
        """The run-level features (case_id "__run__"), name → value."""
        t = S.features
        q = select(t.c.name, t.c.value).where((t.c.run_id == self.run_id) & (t.c.case_id == "__run__"))
        with self.store.engine.connect() as c:
            return {r.name: r.value for r in c.execute(q)}

    def case_features(self, prefix: str) -> pd.DataFrame:
        """Per-case features whose name starts with `prefix` (columns case_id, name, value)."""
        t = S.features
        q = select(t.c.case_id, t.c.name, t.c.value).where(
            (t.c.run_id == self.run_id) & (t.c.case_id != "__run__") & t.c.name.startswith(prefix))
        with self.store.engine.connect() as c:
            return pd.DataFrame(c.execute(q).fetchall(), columns=["case_id", "name", "value"])

    def layer_head_stats(self) -> dict[str, np.ndarray]:
        """Run-level `stat.L{i}.H{h}` features as [L, H] arrays and `stat.L{i}` as [L] arrays."""
        grids: dict[str, dict[tuple[int, int | None], float]] = {}
        for name, value in self.run_features.items():
            m = LAYER_HEAD.match(name)
            if m:
                head = None if m["head"] is None else int(m["head"])
                grids.setdefault(m["stat"], {})[(int(m["layer"]), head)] = np.nan if value is None else value
        out = {}
        for stat, cells in grids.items():
            n_layers = max(k[0] for k in cells) + 1
            if all(k[1] is None for k in cells):
                arr = np.full(n_layers, np.nan)
                for (layer, _), v in cells.items():
                    arr[layer] = v
            else:
                n_heads = max(k[1] for k in cells if k[1] is not None) + 1
                arr = np.full((n_layers, n_heads), np.nan)
                for (layer, head), v in cells.items():
                    if head is not None:
                        arr[layer, head] = v
            out[stat] = arr
        return out

    # ------------------------------------------------------------- artifacts
    @cached_property
    def artifact_index(self) -> list[dict]:
        """Every artifact's key, kind, shape and meta (no payloads)."""
        return self.store.list_artifacts(self.run_id)

    def artifact_keys(self, prefix: str) -> list[dict]:
        return [a for a in self.artifact_index if a["key"].startswith(prefix)]

    def has_artifact(self, key: str) -> bool:
        return any(a["key"] == key for a in self.artifact_index)

    def artifact(self, key: str) -> Any:
        return self.store.get_artifact(self.run_id, key)

    def artifacts(self, keys: list[str]) -> dict[str, Any]:
        """Several payloads in one query (the attention section reads hundreds)."""
        if not keys:
            return {}
        t = S.artifacts
        out: dict[str, Any] = {}
        with self.store.engine.connect() as c:
            for i in range(0, len(keys), 500):
                q = select(t.c.key, t.c.kind, t.c.data).where((t.c.run_id == self.run_id) & t.c.key.in_(keys[i:i + 500]))
                for r in c.execute(q):
                    out[r.key] = decode_array(r.data) if r.kind == "array" else json.loads(zlib.decompress(r.data))
        return out

    # ------------------------------------------------------------- overview
    @cached_property
    def counts(self) -> dict[str, int]:
        return {name: self.store.count(name, self.run_id)
                for name in ("results", "features", "findings", "monitor_events", "artifacts")}

    @property
    def is_empty(self) -> bool:
        return sum(self.counts.values()) == 0

    @property
    def model(self) -> str:
        return str(self.run.get("model") or "")

    @property
    def size(self) -> float | None:
        """The model's parameter count if the run config records it (for failure-vs-size)."""
        cfg = self.run.get("config") or {}
        for key in ("n_params", "num_parameters", "params", "model_params", "parameters"):
            value = cfg.get(key)
            if isinstance(value, (int, float)) and value > 0:
                return float(value)
        return None
