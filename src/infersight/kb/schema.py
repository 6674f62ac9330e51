"""Knowledge-base tables (SQLAlchemy Core, so SQLite and PostgreSQL share one definition) and migrations.

Every table that holds a record users may re-submit carries ``(key, version)`` with a unique
constraint: a re-submission with different content becomes version n+1 and the older versions
stay, so nothing is ever silently overwritten. ``schema_version`` lists the migrations applied;
:func:`migrate` applies the missing ones inside one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (  # store.py checks that SQLAlchemy is installed before importing us
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "METADATA",
    "ab_results",
    "measurements",
    "migrate",
    "recommendations",
    "runs",
]

METADATA = MetaData()

schema_version = Table(
    "schema_version",
    METADATA,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", String(40), nullable=False),
)

runs = Table(
    "runs",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_key", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("content_digest", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("label", Text, nullable=False),
    Column("tool_version", String(40)),
    Column("gpu", Text),
    Column("gpu_count", Integer),
    Column("driver", Text),
    Column("cuda", Text),
    Column("torch", Text),
    Column("engine", Text),
    Column("engine_version", Text),
    Column("model", Text),
    Column("dtype", Text),
    Column("tp", Integer),
    Column("ep", Integer),
    Column("pp", Integer),
    Column("batch", Integer),
    Column("prompt_len", Integer),
    Column("context_len", Integer),
    Column("fingerprint_json", Text, nullable=False),
    Column("wall_ns", BigInteger),
    Column("busy_ns", BigInteger),
    Column("idle_ratio", Float),
    UniqueConstraint("run_key", "version", name="uq_runs_key_version"),
)

measurements = Table(
    "measurements",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # 'kernel', 'category' or 'theory'
    Column("phase", String(32), nullable=False),
    Column("operator", Text, nullable=False),
    Column("category", Text),
    Column("count", BigInteger),
    Column("total_ns", BigInteger),
    Column("share", Float),
    Column("ns_per_step", Float),
    Column("e_roof", Float),
    Column("flops", Float),
    Column("bytes", Float),
)

recommendations = Table(
    "recommendations",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("finding_id", Text, nullable=False),
    Column("type", Text, nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("severity", String(16)),
    Column("advice_json", Text, nullable=False),
    Column("gain_low", Float),
    Column("gain_high", Float),
    Column("confidence", String(16)),
    Column("confidence_reason", Text),
    Column("evidence_json", Text, nullable=False),
)

ab_results = Table(
    "ab_results",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ab_key", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("recommendation_type", Text, index=True),
    Column("run_id", Integer, ForeignKey("runs.id")),
    Column("fingerprint_json", Text, nullable=False),
    Column("mode", String(16), nullable=False),  # 'command' or 'traces'
    Column("baseline", Text, nullable=False),
    Column("candidate", Text, nullable=False),
    Column("repeats", Integer, nullable=False),
    Column("warmup", Integer, nullable=False),
    Column("baseline_median_s", Float, nullable=False),
    Column("baseline_std_s", Float, nullable=False),
    Column("candidate_median_s", Float, nullable=False),
    Column("candidate_std_s", Float, nullable=False),
    Column("baseline_cv", Float, nullable=False),
    Column("candidate_cv", Float, nullable=False),
    Column("gain", Float, nullable=False),
    Column("gain_ci_low", Float, nullable=False),
    Column("gain_ci_high", Float, nullable=False),
    Column("verdict", String(16), nullable=False),  # 'improved', 'regressed', 'no_change'
    Column("samples_json", Text, nullable=False),
    UniqueConstraint("ab_key", "version", name="uq_ab_key_version"),
)


def _create_v1(conn: Connection) -> None:
    for table in (runs, measurements, recommendations, ab_results):
        table.create(conn, checkfirst=True)


# (version, description, apply) — append only; never edit an applied migration.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "runs, measurements, recommendations, ab_results", _create_v1),
]
CURRENT_SCHEMA_VERSION = MIGRATIONS[-1][0]


def now_utc() -> str:
    """ISO-8601 UTC timestamp (text, so SQLite and PostgreSQL store the same value)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def migrate(conn: Connection) -> int:
    """Apply the migrations newer than the database's version; returns the resulting version.

    Runs inside the caller's transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: under an
    advisory lock) so two processes opening a fresh database do not both create the tables.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7412019)"))
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > CURRENT_SCHEMA_VERSION:
        raise RuntimeError(
            f"knowledge base schema version {current} is newer than this infersight "
            f"({CURRENT_SCHEMA_VERSION}): upgrade infersight"
        )
    for version, description, apply in MIGRATIONS:
        if version > current:
            apply(conn)
            conn.execute(
                schema_version.insert().values(version=version, description=description, applied_at=now_utc())
            )
            current = version
    return current
