"""Knowledge base: versioning, lookup, and durability under concurrent and killed writers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from infersight.kb.store import KnowledgeBase, resolve_kb_url

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kb_writer import MEASUREMENTS_PER_RUN, fake_report  # noqa: E402


def _writer(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "kb_writer.py"), url, *args], stdout=subprocess.PIPE, text=True
    )


def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INFERSIGHT_KB", raising=False)
    assert resolve_kb_url(None) == f"sqlite:///{Path('~/.infersight/kb.sqlite').expanduser()}"
    monkeypatch.setenv("INFERSIGHT_KB", str(tmp_path / "env.sqlite"))
    assert resolve_kb_url(None) == f"sqlite:///{tmp_path / 'env.sqlite'}"
    assert resolve_kb_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_record_is_versioned_never_overwritten(tmp_path: Path) -> None:
    url = str(tmp_path / "kb.sqlite")
    with KnowledgeBase.open(url) as kb:
        assert kb.schema_version() == 1
        report = fake_report(1, 1)
        first = kb.record_report(report)
        again = kb.record_report(report)
        assert (first.created, again.created, again.version) == (True, False, 1)
        changed = fake_report(1, 1)
        changed["profile"]["categories"][0]["total_ns"] += 1  # type: ignore[index]
        second = kb.record_report(changed)
        assert (second.run_key, second.version, second.created) == (first.run_key, 2, True)
        versions = kb.run_versions(first.run_key)
        assert [v["version"] for v in versions] == [1, 2]
        assert versions[0]["content_digest"] != versions[1]["content_digest"]
        assert kb.count("measurements") == 2 * MEASUREMENTS_PER_RUN
    # the file is in WAL mode (durability contract)
    mode = sqlite3.connect(url).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


# The two durability cases start writer processes (slow); the quick run keeps what makes them hold,
# the WAL journal and the versioned record, in test_record_is_versioned_never_overwritten.
@pytest.mark.slow
def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    url = str(tmp_path / "kb.sqlite")
    KnowledgeBase.open(url).close()
    writers, per_writer = 3, 6
    procs = [_writer(url, "loop", str(w), str(per_writer)) for w in range(writers)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers
    ids = [int(line) for out in outputs for line in out.split()]
    assert len(ids) == len(set(ids)) == writers * per_writer
    conn = sqlite3.connect(url)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    per_run = dict(conn.execute("SELECT run_id, COUNT(*) FROM measurements GROUP BY run_id").fetchall())
    assert sorted(per_run) == sorted(ids)
    assert set(per_run.values()) == {MEASUREMENTS_PER_RUN}
    # every stored run's numbers still encode its own writer/index
    for wall_ns, label in conn.execute("SELECT wall_ns, label FROM runs"):
        writer, index = divmod(wall_ns, 1000)
        assert label == f"w{writer}_{index}.json"


@pytest.mark.slow
def test_killed_writer_loses_no_committed_record(tmp_path: Path) -> None:
    url = str(tmp_path / "kb.sqlite")
    # a writer killed at an arbitrary point of a long run of commits
    proc = _writer(url, "loop", "7", "100000")
    assert proc.stdout is not None
    committed = [int(proc.stdout.readline()) for _ in range(20)]
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    committed += [int(line) for line in rest.split()]
    # a writer killed while it holds an open write transaction
    pause = tmp_path / "in-transaction"
    hung = _writer(url, "hang", "8", str(pause))
    deadline = time.monotonic() + 60
    while not pause.exists():
        assert time.monotonic() < deadline, "child never reached the transaction"
        time.sleep(0.05)
    os.kill(hung.pid, signal.SIGKILL)
    hung.wait(timeout=30)

    with KnowledgeBase.open(url) as kb:  # reopening recovers the WAL; the lock is released
        with kb.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            stored = set(conn.execute(text("SELECT id FROM runs")).scalars())
            assert set(committed) <= stored
            assert conn.execute(text("SELECT COUNT(*) FROM runs WHERE run_key = 'doomed'")).scalar() == 0
            orphans = conn.execute(
                text("SELECT COUNT(*) FROM measurements WHERE run_id NOT IN (SELECT id FROM runs)")
            ).scalar()
            assert orphans == 0
            counts = set(conn.execute(text("SELECT COUNT(*) FROM measurements GROUP BY run_id")).scalars())
            assert counts == {MEASUREMENTS_PER_RUN}
        after = kb.record_report(fake_report(9, 9))  # the database still takes writes
        assert after.created
