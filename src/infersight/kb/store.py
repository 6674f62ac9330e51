"""The knowledge base: open by URL, record analysed runs and A/B results, look up similar runs.

SQLite is the default (``~/.infersight/kb.sqlite``; ``--kb URL`` or ``INFERSIGHT_KB`` override
it); any SQLAlchemy URL works, e.g. ``postgresql+psycopg://user@host/db`` for a team database.
Durability: SQLite runs in WAL mode with ``synchronous=FULL`` and every write is one
``BEGIN IMMEDIATE`` transaction, so concurrent writers queue (busy timeout) instead of failing
and a writer killed mid-transaction leaves only its uncommitted work behind. Versions come from
``max(version)+1`` inside the transaction, guarded by a unique constraint and retried on
conflict, so two writers never produce the same (key, version).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError

from infersight.kb import MissingDependencyError

try:
    from sqlalchemy import Connection, Engine, create_engine, event, func, select
    from sqlalchemy.engine import CursorResult, make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise MissingDependencyError(
        None, f"the knowledge base needs {exc.name}: pip install 'infersight[kb]'"
    ) from exc

from infersight.errors import InputError
from infersight.kb import schema
from infersight.kb.fingerprint import Fingerprint, Similarity, fingerprint_from_report, similarity
from infersight.kb.validate import (
    MEASUREMENT_COLUMNS,
    RECOMMENDATION_COLUMNS,
    RUN_COLUMNS,
    WHERE_KEY,
    RecordError,
    as_input_error,
    check_rows,
    check_values,
    checked_float,
    checked_int,
    report_list,
)
from infersight.safe_io import MAX_REPORT_BYTES, check_regular_file, read_bounded_bytes

__all__ = [
    "AB_HISTORY_SCHEMA_VERSION",
    "DEFAULT_KB_PATH",
    "AbHistory",
    "AbRecord",
    "KnowledgeBase",
    "LookupMatch",
    "RecordResult",
    "check_report",
    "check_sqlite_kb_path",
    "load_report_json",
    "resolve_kb_url",
]

DEFAULT_KB_PATH = Path("~/.infersight/kb.sqlite")
SQLITE_BUSY_TIMEOUT_S = 60.0
VERSION_RETRIES = 8
DIRECT_ANSWER_SIMILARITY = 0.95  # a match this close (with >= MIN_COVERAGE) can answer without a new profile
MIN_COVERAGE = 0.5


def resolve_kb_url(kb: str | None = None) -> str:
    """``--kb`` > ``$INFERSIGHT_KB`` > the default SQLite file; a plain path means SQLite."""
    value = kb or os.environ.get("INFERSIGHT_KB") or str(DEFAULT_KB_PATH)
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return f"sqlite:///{path}"


def _digest(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class RecordResult(BaseModel):
    """Outcome of :meth:`KnowledgeBase.record_report`."""

    run_id: int
    run_key: str
    version: int
    created: bool = Field(description="False when the identical content was already stored (no new version)")
    measurements: int
    recommendations: int


class AbRecord(BaseModel):
    """One A/B verification as stored (see :mod:`infersight.advisor.verify`)."""

    recommendation_type: str | None
    fingerprint: Fingerprint
    mode: str
    baseline: str
    candidate: str
    repeats: int
    warmup: int
    baseline_median_s: float
    baseline_std_s: float
    candidate_median_s: float
    candidate_std_s: float
    baseline_cv: float
    candidate_cv: float
    gain: float
    gain_ci_low: float
    gain_ci_high: float
    verdict: str
    samples: dict[str, list[float]]
    run_id: int | None = None


class StoredAb(AbRecord):
    """An A/B result read back, with its identity."""

    id: int
    ab_key: str
    version: int
    created_at: str


# MAJOR.MINOR of `kb history --json`: a new optional field bumps the minor, a breaking change the major.
AB_HISTORY_SCHEMA_VERSION = "1.0"


class AbHistory(BaseModel):
    """What ``infersight kb history --json`` writes: the stored A/B results, oldest first."""

    schema_version: str = AB_HISTORY_SCHEMA_VERSION
    recommendation_type: str | None = Field(default=None, description="the --recommendation filter, if any")
    results: list[StoredAb]
    skipped: list[str] = Field(default_factory=list, description="rows that could not be read back")


class LookupMatch(BaseModel):
    """A stored run similar to the query, with why and what it holds."""

    run_id: int
    run_key: str
    version: int
    label: str
    created_at: str
    fingerprint: Fingerprint
    similarity: Similarity
    wall_ns: int | None
    idle_ratio: float | None
    top_operators: list[dict[str, Any]] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list, description="finding types recorded for the run")
    direct_answer: bool = Field(
        description=f"similarity >= {DIRECT_ANSWER_SIMILARITY} with coverage >= {MIN_COVERAGE}: reuse it"
    )


class KnowledgeBase:
    """A knowledge-base connection. Use :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    # ------------------------------------------------------------------ open / close
    @classmethod
    def open(cls, kb: str | None = None) -> KnowledgeBase:
        """Open (creating and migrating when needed) the knowledge base at ``kb`` (URL or path)."""
        url = resolve_kb_url(kb)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InputError(None, f"--kb: not a database URL or path: {url!r} ({exc})") from None
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(url, parsed.database)
        else:
            try:
                engine = create_engine(url, pool_pre_ping=True)
            except Exception as exc:  # missing driver (psycopg) or bad URL
                raise InputError(None, f"--kb {parsed.render_as_string()}: {exc}") from None
        kb_obj = cls(engine, url)
        try:
            with kb_obj.transaction() as conn:
                schema.migrate(conn)
        except OperationalError as exc:
            raise InputError(None, f"knowledge base {parsed.render_as_string()}: {exc.orig}") from None
        except RuntimeError as exc:
            raise InputError(None, str(exc)) from None
        return kb_obj

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE), committed on success, rolled back otherwise."""
        with self._database_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read connection whose database errors are the user's (one line, exit 2)."""
        with self._database_errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        """A damaged, locked, read-only or unreachable database is an input error, not a crash.

        IntegrityError passes: record_report retries on it (another writer took the version).
        """
        try:
            yield
        except IntegrityError:
            raise
        except DBAPIError as exc:
            where = make_url(self.url).render_as_string(hide_password=True)
            detail = " ".join(str(exc.orig).split())[:200]
            raise InputError(None, f"knowledge base {where}: {detail}") from None

    def schema_version(self) -> int:
        """The migration version the database is at."""
        with self._reading() as conn:
            return int(conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0)

    # ------------------------------------------------------------------ runs
    def record_report(
        self,
        report: Mapping[str, Any],
        *,
        label: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        source: str | Path | None = None,
    ) -> RecordResult:
        """Store an ``analyze --json`` report as a run with its operator measurements and findings.

        The run key is the fingerprint key plus the label (default: the trace file names); a
        report whose content equals the latest version under that key is not stored again.
        Every value is checked first (:mod:`infersight.kb.validate`): a report that cannot be
        stored faithfully is refused with an InputError naming ``source`` and the field.
        """
        try:
            fingerprint, run_values, measured, found = _checked_record(report, label, overrides)
        except RecordError as exc:
            raise as_input_error(exc, source) from None
        label = run_values["label"]
        run_key = hashlib.sha256(f"{fingerprint.key()}|{label}".encode()).hexdigest()[:32]
        content = _digest({"fingerprint": fingerprint.model_dump(), "m": measured, "r": found})
        for _attempt in range(VERSION_RETRIES):
            try:
                with self.transaction() as conn:
                    latest = conn.execute(
                        select(schema.runs.c.id, schema.runs.c.version, schema.runs.c.content_digest)
                        .where(schema.runs.c.run_key == run_key)
                        .order_by(schema.runs.c.version.desc())
                        .limit(1)
                    ).first()
                    if latest is not None and latest.content_digest == content:
                        return RecordResult(
                            run_id=latest.id,
                            run_key=run_key,
                            version=latest.version,
                            created=False,
                            measurements=len(measured),
                            recommendations=len(found),
                        )
                    version = (latest.version if latest is not None else 0) + 1
                    run_id = _inserted_id(
                        conn.execute(
                            schema.runs.insert().values(
                                run_key=run_key,
                                version=version,
                                content_digest=content,
                                created_at=schema.now_utc(),
                                fingerprint_json=fingerprint.model_dump_json(),
                                **run_values,
                            )
                        )
                    )
                    if measured:
                        conn.execute(
                            schema.measurements.insert(), [{**m, "run_id": run_id} for m in measured]
                        )
                    if found:
                        conn.execute(
                            schema.recommendations.insert(), [{**r, "run_id": run_id} for r in found]
                        )
                    return RecordResult(
                        run_id=run_id,
                        run_key=run_key,
                        version=version,
                        created=True,
                        measurements=len(measured),
                        recommendations=len(found),
                    )
            except IntegrityError:
                continue  # another writer took this version: re-read and take the next one
        raise RuntimeError(f"could not allocate a version for run {run_key} after {VERSION_RETRIES} attempts")

    def run_versions(self, run_key: str) -> list[dict[str, Any]]:
        """Every stored version of a run key, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                select(schema.runs).where(schema.runs.c.run_key == run_key).order_by(schema.runs.c.version)
            ).mappings()
            return [dict(r) for r in rows]

    def count(self, table: str) -> int:
        """Rows in one of the knowledge-base tables."""
        tables = {
            t.name: t for t in (schema.runs, schema.measurements, schema.recommendations, schema.ab_results)
        }
        with self._reading() as conn:
            return int(conn.execute(select(func.count()).select_from(tables[table])).scalar() or 0)

    # ------------------------------------------------------------------ lookup
    def lookup(
        self,
        query: Fingerprint,
        *,
        top: int = 5,
        min_similarity: float = 0.0,
        skipped: list[str] | None = None,
    ) -> list[LookupMatch]:
        """Latest versions of stored runs ranked by similarity to ``query`` (formula: fingerprint.py).

        A stored row that cannot be read back (damaged by hand, or stored by an older infersight
        that did not check values) is left out and described in ``skipped``: one bad row must not
        make every lookup fail.
        """
        skipped = skipped if skipped is not None else []
        with self._reading() as conn:
            latest = (
                select(schema.runs.c.run_key, func.max(schema.runs.c.version).label("v"))
                .group_by(schema.runs.c.run_key)
                .subquery()
            )
            rows = (
                conn.execute(
                    select(schema.runs).join(
                        latest,
                        (schema.runs.c.run_key == latest.c.run_key) & (schema.runs.c.version == latest.c.v),
                    )
                )
                .mappings()
                .all()
            )
            scored = []
            for row in rows:
                try:
                    stored = _stored_fingerprint(row)
                    sim = similarity(query, stored)
                except (ValueError, TypeError, RecordError) as exc:
                    skipped.append(_skip_note("run", row.get("id"), exc))
                    continue
                if sim.score >= min_similarity:
                    scored.append((sim, row, stored))
            scored.sort(key=lambda item: (-item[0].score, -item[1]["id"]))
            matches = []
            for sim, row, stored in scored[:top]:
                ops = (
                    conn.execute(
                        select(
                            schema.measurements.c.operator,
                            schema.measurements.c.share,
                            schema.measurements.c.total_ns,
                        )
                        .where(
                            schema.measurements.c.run_id == row["id"],
                            schema.measurements.c.kind == "category",
                        )
                        .order_by(schema.measurements.c.total_ns.desc())
                        .limit(3)
                    )
                    .mappings()
                    .all()
                )
                types = (
                    conn.execute(
                        select(schema.recommendations.c.type)
                        .where(schema.recommendations.c.run_id == row["id"])
                        .distinct()
                    )
                    .scalars()
                    .all()
                )
                try:
                    match = LookupMatch(
                        run_id=row["id"],
                        run_key=row["run_key"],
                        version=row["version"],
                        label=row["label"],
                        created_at=row["created_at"],
                        fingerprint=stored,
                        similarity=sim,
                        wall_ns=checked_int(row["wall_ns"], "wall_ns"),
                        idle_ratio=checked_float(row["idle_ratio"], "idle_ratio"),
                        top_operators=[_stored_operator(o) for o in ops],
                        recommendations=sorted(str(t) for t in types),
                        direct_answer=sim.score >= DIRECT_ANSWER_SIMILARITY and sim.coverage >= MIN_COVERAGE,
                    )
                except (ValueError, TypeError, RecordError) as exc:
                    skipped.append(_skip_note("run", row.get("id"), exc))
                    continue
                matches.append(match)
            return matches

    # ------------------------------------------------------------------ A/B results
    def record_ab(self, record: AbRecord) -> StoredAb:
        """Store one A/B verification as a new version under its key (never overwriting).

        Refused (InputError) when a figure is not finite or a count is outside int64: a CV of
        inf stored today would be read back as a confidence input by every later verify.
        """
        try:
            _check_ab(record)
        except RecordError as exc:
            raise InputError(None, f"A/B result cannot be stored in the knowledge base: {exc}") from None
        ab_key = hashlib.sha256(
            f"{record.fingerprint.key()}|{record.recommendation_type}|{record.baseline}|{record.candidate}".encode()
        ).hexdigest()[:32]
        values = record.model_dump(exclude={"fingerprint", "samples"})
        for _attempt in range(VERSION_RETRIES):
            try:
                with self.transaction() as conn:
                    current = conn.execute(
                        select(func.max(schema.ab_results.c.version)).where(
                            schema.ab_results.c.ab_key == ab_key
                        )
                    ).scalar()
                    version = (current or 0) + 1
                    created_at = schema.now_utc()
                    ab_id = _inserted_id(
                        conn.execute(
                            schema.ab_results.insert().values(
                                ab_key=ab_key,
                                version=version,
                                created_at=created_at,
                                fingerprint_json=record.fingerprint.model_dump_json(),
                                samples_json=orjson.dumps(record.samples).decode(),
                                **values,
                            )
                        )
                    )
                return StoredAb(
                    id=ab_id, ab_key=ab_key, version=version, created_at=created_at, **record.model_dump()
                )
            except IntegrityError:
                continue
        raise RuntimeError(f"could not allocate a version for A/B result {ab_key}")

    def ab_history(
        self, recommendation_type: str | None = None, *, skipped: list[str] | None = None
    ) -> list[StoredAb]:
        """Stored A/B results (optionally of one recommendation type), oldest first; rows that
        cannot be read back are left out and described in ``skipped`` (as in :meth:`lookup`)."""
        skipped = skipped if skipped is not None else []
        query = select(schema.ab_results).order_by(schema.ab_results.c.id)
        if recommendation_type is not None:
            query = query.where(schema.ab_results.c.recommendation_type == recommendation_type)
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for row in rows:
            data = dict(row)
            try:
                data["fingerprint"] = Fingerprint.model_validate_json(data.pop("fingerprint_json"))
                data["samples"] = orjson.loads(data.pop("samples_json"))
                stored = StoredAb.model_validate(data)
                _check_ab(stored)
                out.append(stored)
            except (ValueError, TypeError) as exc:  # pydantic, orjson and RecordError are ValueErrors
                skipped.append(_skip_note("A/B result", row.get("id"), exc))
        return out


# ---------------------------------------------------------------------- helpers

KB_TABLES = frozenset({"schema_version", "runs", "measurements", "recommendations", "ab_results"})


def check_sqlite_kb_path(path: Path) -> None:
    """Refuse a ``--kb`` file that exists but is not an infersight knowledge base.

    Opening it read-write would switch it to WAL mode and add our tables: an Nsight Systems
    export or any other SQLite file given by mistake would be modified. A new path or an empty
    (0-byte) file is created; an existing file is inspected through a read-only connection
    first and must hold our ``schema_version`` table (or be a database with no tables at all).
    """
    if not path.exists() and not path.is_symlink():
        return
    resolved = check_regular_file(path, "knowledge base")  # FIFOs, devices, directories, loops
    if resolved.stat().st_size == 0:
        return
    with resolved.open("rb") as handle:
        header = handle.read(16)
    if header != b"SQLite format 3\x00":
        raise InputError(path, "not an infersight knowledge base (not a SQLite database); give a new path")
    try:
        conn = sqlite3.connect(f"{resolved.as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise InputError(path, f"knowledge base cannot be read: {exc}") from None
    if tables and "schema_version" not in tables:
        shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        raise InputError(
            path,
            f"not an infersight knowledge base (it holds other tables: {shown}); "
            "refusing to add tables to it — give a new path",
        )


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        path = Path(database).expanduser()
        check_sqlite_kb_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                path, f"cannot create the knowledge-base directory: {exc.strerror or exc}"
            ) from None
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is deferred)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlocks

    return engine


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every insert here has an autoincrement key
        raise RuntimeError("insert returned no primary key")
    return int(key[0])


def check_report(
    report: Mapping[str, Any],
    *,
    label: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    source: str | Path | None = None,
) -> None:
    """Raise the InputError :meth:`KnowledgeBase.record_report` would raise, without a database:
    ``kb record A B`` checks every report before it stores the first one."""
    try:
        _checked_record(report, label, overrides)
    except RecordError as exc:
        raise as_input_error(exc, source) from None


def _default_label(report: Mapping[str, Any]) -> str:
    traces = report_list(report, "profile", "traces")
    names = sorted(Path(str(t.get("source", ""))).name for t in traces)
    return ", ".join(names) or "unnamed run"


def _checked_record(
    report: Mapping[str, Any], label: str | None, overrides: Mapping[str, Any] | None
) -> tuple[Fingerprint, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Fingerprint, run columns, measurement and recommendation rows — every value checked."""
    try:
        fingerprint = fingerprint_from_report(report).merged(overrides or {})
    except (ValueError, TypeError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        raise RecordError(f"fingerprint: {' '.join(str(exc).split())[:160]}") from None
    for name, share in fingerprint.operator_shares.items():
        checked_float(share, f"profile.categories[{name!r}].share")
    total = (report.get("profile") or {}).get("total") or {}
    if not isinstance(total, Mapping):
        raise RecordError(f"profile.total: expected an object, got {type(total).__name__}")
    totals = {key: total.get(key) for key in ("wall_ns", "busy_ns", "idle_ratio")}
    run = {
        "label": label or _default_label(report),
        "tool_version": report.get("tool_version"),
        **check_values(totals, RUN_COLUMNS, "profile.total"),
        **check_values(fingerprint.model_dump(exclude={"operator_shares"}), RUN_COLUMNS, "fingerprint"),
    }
    run = check_values(run, RUN_COLUMNS, "report")
    measured = check_rows(_measurement_rows(report), MEASUREMENT_COLUMNS, "measurements")
    found = check_rows(_recommendation_rows(report), RECOMMENDATION_COLUMNS, "findings")
    return fingerprint, run, measured, found


def _measurement_row(
    where: str, kind: str, phase: Any, operator: Any, category: Any, **numbers: Any
) -> dict[str, Any]:
    row = {WHERE_KEY: where, "kind": kind, "phase": phase, "operator": operator, "category": category}
    for name in ("count", "total_ns", "share", "ns_per_step", "e_roof", "flops", "bytes"):
        row[name] = numbers.get(name)
    return row


def _measurement_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for index, cat in enumerate(report_list(report, "profile", "categories")):
        name = cat.get("category")
        rows.append(
            _measurement_row(
                f"profile.categories[{index}]",
                "category",
                "all",
                name,
                name,
                count=cat.get("count"),
                total_ns=cat.get("total_ns"),
                share=cat.get("share"),
            )
        )
    for index, kern in enumerate(report_list(report, "profile", "kernels")):
        rows.append(
            _measurement_row(
                f"profile.kernels[{index}]",
                "kernel",
                "all",
                kern.get("name"),
                kern.get("category"),
                count=kern.get("count"),
                total_ns=kern.get("total_ns"),
                share=kern.get("share"),
            )
        )
    for index, row in enumerate(report_list(report, "theory", "measured", "rows")):
        name = row.get("category")
        rows.append(
            _measurement_row(
                f"theory.measured.rows[{index}]",
                "theory",
                row.get("phase", "all"),
                name,
                name,
                count=row.get("kernel_count"),
                total_ns=row.get("total_ns"),
                ns_per_step=row.get("measured_ns_per_step"),
                e_roof=row.get("e_roof"),
                flops=row.get("theory_flops"),
                bytes=row.get("theory_bytes"),
            )
        )
    return rows


def _json_text(value: Any, where: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:  # orjson.JSONEncodeError: an integer beyond 64 bits, say
        raise RecordError(f"{where}: cannot be stored ({exc})") from None


def _recommendation_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for index, finding in enumerate(report_list(report, "findings")):
        gain = finding.get("expected_gain") or {}
        if not isinstance(gain, Mapping):
            raise RecordError(f"findings[{index}].expected_gain: expected an object")
        rows.append(
            {
                WHERE_KEY: f"findings[{index}]",
                "finding_id": finding.get("id"),
                "type": finding.get("type"),
                "title": finding.get("title", ""),
                "severity": finding.get("severity"),
                "advice_json": _json_text(finding.get("advice") or [], f"findings[{index}].advice"),
                "gain_low": gain.get("low"),
                "gain_high": gain.get("high"),
                "confidence": finding.get("confidence"),
                "confidence_reason": finding.get("confidence_reason"),
                "evidence_json": _json_text(finding.get("evidence") or [], f"findings[{index}].evidence"),
            }
        )
    return rows


AB_FLOATS = (
    "baseline_median_s",
    "baseline_std_s",
    "candidate_median_s",
    "candidate_std_s",
    "baseline_cv",
    "candidate_cv",
    "gain",
    "gain_ci_low",
    "gain_ci_high",
)


def _check_ab(record: AbRecord) -> None:
    """Finite figures, counts within int64, finite samples; RecordError naming the field."""
    for name in AB_FLOATS:
        checked_float(getattr(record, name), name)
    for name in ("repeats", "warmup"):
        checked_int(getattr(record, name), name)
    for side, samples in record.samples.items():
        for index, value in enumerate(samples):
            checked_float(value, f"samples.{side}[{index}]")


def _stored_fingerprint(row: Any) -> Fingerprint:
    """A stored run's fingerprint, checked as a new record would be (ints within int64, ...)."""
    stored = Fingerprint.model_validate_json(row["fingerprint_json"])
    check_rows([stored.model_dump(exclude={"operator_shares"})], RUN_COLUMNS, "fingerprint")
    for name, share in stored.operator_shares.items():
        checked_float(share, f"operator share {name!r}")
    return stored


def _stored_operator(row: Any) -> dict[str, Any]:
    return {
        "operator": str(row["operator"]),
        "share": checked_float(row["share"], "share"),
        "total_ns": checked_int(row["total_ns"], "total_ns"),
    }


def _skip_note(what: str, row_id: Any, exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():  # pydantic: the first problem, no URL
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or exc.title
        first = f"{field}: {error['msg']}"
    else:
        first = " ".join(str(exc).split())[:160]
    return f"stored {what} #{row_id} left out: it cannot be read back ({first})"


def load_report_json(path: Path) -> dict[str, Any]:
    """Read an ``analyze --json`` report; InputError when it is not one.

    Bounded (regular files only, at most MAX_REPORT_BYTES): ``/dev/zero`` or a FIFO given as a
    report is refused up front instead of being read until memory runs out.
    """
    data_bytes = read_bounded_bytes(path, MAX_REPORT_BYTES, "report")
    try:
        data = orjson.loads(data_bytes)
    except orjson.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("profile"), dict):
        raise InputError(path, "not an infersight analyze report (no 'profile' object); make one with --json")
    return data
