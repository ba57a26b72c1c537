"""Table definitions of the run store (SQLAlchemy Core).

Unique keys make every write idempotent: a resumed or retried unit re-inserts rows that are
silently skipped, so no case is ever counted twice.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

from sqlalchemy import Table  # noqa: E402  (kept next to its uses)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False, default="scan"),
    Column("model", Text, nullable=False, default=""),
    Column("config", Text, nullable=False, default="{}"),  # resolved config, JSON
    Column("status", String(16), nullable=False, default="running"),
    Column("created", DateTime(timezone=True)),
    Column("updated", DateTime(timezone=True)),
)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("probe", String(64), nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("model", Text, nullable=False, default=""),
    Column("variable", String(64), nullable=False, default=""),
    Column("value", Text),  # JSON scalar
    Column("metric", String(64), nullable=False),
    Column("score", Float),
    Column("passed", Boolean),
    Column("detail", Text, nullable=False, default="{}"),
    UniqueConstraint("run_id", "probe", "case_id", "metric", name="uq_results_case"),
)

features = Table(
    "features",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("case_id", String(200), nullable=False),
    Column("name", String(128), nullable=False),
    Column("value", Float),
    UniqueConstraint("run_id", "case_id", "name", name="uq_features"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("source", String(128), nullable=False),
    Column("category", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence", Text, nullable=False, default="{}"),
    Column("key", String(64), nullable=False),  # hash of (source, category, message)
    UniqueConstraint("run_id", "key", name="uq_findings"),
)

monitor_events = Table(
    "monitor_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("step", Integer, nullable=False),
    Column("name", String(128), nullable=False),
    Column("value", Float),
    UniqueConstraint("run_id", "step", "name", name="uq_events"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("key", String(200), nullable=False),  # e.g. "attention/case_3/blocks.2.attn.pattern"
    Column("kind", String(16), nullable=False),  # "array" | "json"
    Column("dtype", String(16)),
    Column("shape", String(64)),
    Column("data", LargeBinary, nullable=False),  # zlib-compressed .npy bytes, or zlib JSON
    Column("meta", Text, nullable=False, default="{}"),
    UniqueConstraint("run_id", "key", name="uq_artifacts"),
)

TABLES = {t.name: t for t in (runs, results, features, findings, monitor_events, artifacts)}
