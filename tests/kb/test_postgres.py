"""The same knowledge base on a real PostgreSQL server (``.ci/postgres.sh`` starts one in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from infersight.kb.fingerprint import fingerprint_from_report
from infersight.kb.store import KnowledgeBase

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kb_writer import MEASUREMENTS_PER_RUN, fake_report  # noqa: E402

PG_URL = os.environ.get("INFERSIGHT_TEST_PG_URL")


@pytest.fixture(scope="module")
def pg_url() -> str:
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("INFERSIGHT_TEST_PG_URL is not set in CI: source .ci/postgres.sh before pytest")
        pytest.skip("INFERSIGHT_TEST_PG_URL not set (no PostgreSQL server); run `. .ci/postgres.sh` first")
    with KnowledgeBase.open(PG_URL) as kb, kb.transaction() as conn:
        for table in ("ab_results", "recommendations", "measurements", "runs", "schema_version"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    return PG_URL


def test_postgres_record_version_lookup(pg_url: str) -> None:
    with KnowledgeBase.open(pg_url) as kb:
        assert kb.schema_version() == 1
        first = kb.record_report(fake_report(1, 1))
        assert not kb.record_report(fake_report(1, 1)).created
        changed = fake_report(1, 1)
        changed["profile"]["total"]["wall_ns"] = 5  # type: ignore[index]
        changed["profile"]["categories"][0]["count"] = 5  # type: ignore[index]
        assert kb.record_report(changed).version == 2
        matches = kb.lookup(fingerprint_from_report(fake_report(1, 1)))
        assert matches[0].run_key == first.run_key and matches[0].version == 2


def test_postgres_concurrent_writers(pg_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "kb_writer.py"), pg_url, "loop", str(w), "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in (20, 21)
    ]
    ids = [int(x) for p in procs for x in p.communicate(timeout=120)[0].split()]
    assert [p.returncode for p in procs] == [0, 0]
    with KnowledgeBase.open(pg_url) as kb, kb.engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT run_id, COUNT(*) FROM measurements GROUP BY run_id")).all())
        assert set(ids) <= set(counts) and {counts[i] for i in ids} == {MEASUREMENTS_PER_RUN}
