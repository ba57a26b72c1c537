"""Run store over any SQLAlchemy URL; a SQLite file (WAL mode) by default.

Writes are small transactions with insert-or-ignore on unique keys, so a run killed at any
moment keeps everything committed and a resumed or retried unit never double-writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ArgumentError

from faultlens.errors import FaultlensError
from faultlens.store import schema as S
from faultlens.types import Feature, Finding, Result

DEFAULT_STORE = os.environ.get("FAULTLENS_STORE", "faultlens-store.sqlite")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _url_for(target: str | Path) -> str:
    """A bare path means a SQLite file; anything with '://' is a SQLAlchemy URL."""
    t = str(target)
    if "://" in t:
        return t
    path = Path(t).expanduser().resolve()
    if path.is_dir():
        raise FaultlensError(f"Store path {path} is a directory; pass a file path such as {path / 'store.sqlite'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise FaultlensError(
            f"Cannot write the run store at {path} ({exc.strerror}); pass --store with a writable path."
        ) from None
    return f"sqlite:///{path}"


def _insert_ignore(engine: Engine, table):
    """An INSERT that skips rows whose unique key already exists, for SQLite and PostgreSQL."""
    name = engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other dialects fall back to plain insert
        from sqlalchemy import insert

        return insert(table)
    return insert(table).on_conflict_do_nothing()


def encode_array(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 6)


def decode_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(data)), allow_pickle=False)


class Store:
    """A run store on one database.

    Args:
        target: a SQLite file path or any SQLAlchemy URL (e.g. ``postgresql+psycopg://...``).
    """

    def __init__(self, target: str | Path = DEFAULT_STORE) -> None:
        self.url = _url_for(target)
        # Fail fast on an unreachable PostgreSQL host instead of waiting for the OS timeout.
        connect_args = {"connect_timeout": 10} if self.url.startswith("postgresql") else {}
        try:
            self.engine = create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        except (ArgumentError, ImportError) as exc:
            raise FaultlensError(f"Cannot open store URL {target!r}: {exc}. Check the --store value.") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            S.metadata.create_all(self.engine)
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())  # drivers' messages span lines; keep one
            raise FaultlensError(
                f"Cannot open the run store {self._safe_url()}: {reason}. Check --store and that the database is reachable."
            ) from None

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def location(self) -> str:
        """Where the store is, for humans (file path for SQLite, URL without password otherwise)."""
        if self.engine.dialect.name == "sqlite":
            return str(self.engine.url.database)
        return self._safe_url()

    # ---------------------------------------------------------------- runs
    def create_run(self, model: str, config: dict, kind: str = "scan", run_id: str | None = None) -> str:
        """Create a run (or return `run_id` unchanged if it exists already)."""
        run_id = run_id or f"{kind}-{_now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        with self.engine.begin() as c:
            c.execute(
                _insert_ignore(self.engine, S.runs).values(
                    run_id=run_id, kind=kind, model=model, config=json.dumps(config, default=str),
                    status="running", created=_now(), updated=_now(),
                )
            )
        return run_id

    def get_run(self, run_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(S.runs).where(S.runs.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["config"] = json.loads(out["config"] or "{}")
        return out

    def require_run(self, run_id: str) -> dict:
        run = self.get_run(run_id)
        if run is None:
            raise FaultlensError(f"Unknown run id {run_id!r}; `faultlens runs` lists the runs in {self.location}.")
        return run

    def set_status(self, run_id: str, status: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(S.runs).where(S.runs.c.run_id == run_id).values(status=status, updated=_now()))

    def update_config(self, run_id: str, **extra: Any) -> None:
        """Merge keys into the run's stored config (e.g. recorded preprocessing)."""
        run = self.require_run(run_id)
        cfg = run["config"] | extra
        with self.engine.begin() as c:
            c.execute(update(S.runs).where(S.runs.c.run_id == run_id).values(config=json.dumps(cfg, default=str)))

    # ---------------------------------------------------------------- rows
    def write(self, results: Iterable[Result] = (), features: Iterable[Feature] = (),
              findings: Iterable[Finding] = ()) -> None:
        """Write rows of several kinds in ONE transaction (a chunk of cases lands whole or not at all)."""
        with self.engine.begin() as c:
            for table, vals in ((S.results, self._result_rows(results)), (S.features, self._feature_rows(features)),
                                (S.findings, self._finding_rows(findings))):
                if vals:
                    c.execute(_insert_ignore(self.engine, table), vals)

    def add_results(self, rows: Iterable[Result]) -> None:
        self._insert(S.results, self._result_rows(rows))

    @staticmethod
    def _result_rows(rows: Iterable[Result]) -> list[dict]:
        return [
            dict(run_id=r.run_id, probe=r.probe, case_id=r.case_id, model=r.model, variable=r.variable,
                 value=json.dumps(r.value), metric=r.metric, score=_f(r.score), passed=bool(r.passed),
                 detail=json.dumps(r.detail, default=str))
            for r in rows
        ]

    def add_features(self, rows: Iterable[Feature]) -> None:
        self._insert(S.features, self._feature_rows(rows))

    @staticmethod
    def _feature_rows(rows: Iterable[Feature]) -> list[dict]:
        return [dict(run_id=f.run_id, case_id=f.case_id, name=f.name, value=_f(f.value)) for f in rows]

    def add_findings(self, rows: Iterable[Finding]) -> None:
        self._insert(S.findings, self._finding_rows(rows))

    @staticmethod
    def _finding_rows(rows: Iterable[Finding]) -> list[dict]:
        vals = []
        for f in rows:
            key = hashlib.sha1(f"{f.source}|{f.category}|{f.message}".encode()).hexdigest()[:32]
            vals.append(dict(run_id=f.run_id, source=f.source, category=f.category, severity=f.severity,
                             message=f.message, evidence=json.dumps(f.evidence, default=str), key=key))
        return vals

    def add_events(self, run_id: str, events: Iterable[tuple[int, str, float]]) -> None:
        """Monitor scalars: (step, name, value)."""
        self._insert(S.monitor_events, [dict(run_id=run_id, step=int(s), name=n, value=_f(v)) for s, n, v in events])

    def _insert(self, table, vals: list[dict]) -> None:
        if not vals:
            return
        with self.engine.begin() as c:
            c.execute(_insert_ignore(self.engine, table), vals)

    # ---------------------------------------------------------------- artifacts
    def put_artifact(self, run_id: str, key: str, value: np.ndarray | dict | list, meta: dict | None = None) -> None:
        """Store an array (compressed .npy) or a JSON object under `key`; the first write wins."""
        if isinstance(value, (dict, list)):
            row = dict(kind="json", dtype=None, shape=None, data=zlib.compress(json.dumps(value, default=str).encode()))
        else:
            arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            row = dict(kind="array", dtype=str(arr.dtype), shape=json.dumps(list(arr.shape)), data=encode_array(arr))
        self._insert(S.artifacts, [dict(run_id=run_id, key=key, meta=json.dumps(meta or {}, default=str), **row)])

    def get_artifact(self, run_id: str, key: str) -> np.ndarray | dict | list:
        with self.engine.connect() as c:
            row = c.execute(
                select(S.artifacts.c.kind, S.artifacts.c.data).where(
                    (S.artifacts.c.run_id == run_id) & (S.artifacts.c.key == key))
            ).first()
        if row is None:
            raise FaultlensError(f"Run {run_id!r} has no artifact {key!r}.")
        return decode_array(row.data) if row.kind == "array" else json.loads(zlib.decompress(row.data))

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[dict]:
        t = S.artifacts
        q = select(t.c.key, t.c.kind, t.c.dtype, t.c.shape, t.c.meta).where(t.c.run_id == run_id)
        if prefix:
            q = q.where(t.c.key.startswith(prefix))
        with self.engine.connect() as c:
            return [dict(r._mapping) | {"meta": json.loads(r.meta)} for r in c.execute(q.order_by(t.c.id))]

    # ---------------------------------------------------------------- reads
    def done_case_ids(self, run_id: str, probe: str) -> set[str]:
        t = S.results
        with self.engine.connect() as c:
            rows = c.execute(select(t.c.case_id).where((t.c.run_id == run_id) & (t.c.probe == probe)).distinct())
            return {r[0] for r in rows}

    def count(self, table: str, run_id: str | None = None) -> int:
        t = S.TABLES[table]
        q = select(func.count()).select_from(t)
        if run_id is not None:
            q = q.where(t.c.run_id == run_id)
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())

    def to_pandas(self, table: str, run_id: str | list[str] | None = None) -> pd.DataFrame:
        """One table as a DataFrame (JSON columns decoded), optionally for some runs only."""
        if table not in S.TABLES:
            raise FaultlensError(f"Unknown table {table!r}; tables: {', '.join(S.TABLES)}.")
        t = S.TABLES[table]
        q = select(t)
        if run_id is not None:
            ids = [run_id] if isinstance(run_id, str) else list(run_id)
            q = q.where(t.c.run_id.in_(ids))
        with self.engine.connect() as c:
            df = pd.read_sql(q, c)
        for col in ("detail", "evidence", "config", "meta"):
            if col in df.columns:
                df[col] = df[col].map(lambda s: json.loads(s) if isinstance(s, str) else s)
        if table == "results" and "value" in df.columns:
            df["value"] = df["value"].map(lambda s: json.loads(s) if isinstance(s, str) else s)
        if table == "artifacts":
            df = df.drop(columns=["data"])
        return df

    def runs(self) -> pd.DataFrame:
        return self.to_pandas("runs").sort_values("created", ascending=False)

    def close(self) -> None:
        self.engine.dispose()


def _f(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else x


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_store(target: str | Path | None = None) -> Store:
    """Open the store at `target` (default: $FAULTLENS_STORE or ./faultlens-store.sqlite)."""
    return Store(target or DEFAULT_STORE)
