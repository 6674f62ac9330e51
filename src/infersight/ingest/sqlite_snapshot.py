"""The committed state of an SQLite file, read without ever writing to the user's files.

Why: an export is opened ``immutable=1`` (no locks, no journal, fastest), which tells SQLite
the file cannot change and has no sidecar files. That is false when a ``-wal`` (write-ahead
log) or ``-journal`` (rollback journal) lies beside it: committed changes that sit in an
un-checkpointed WAL are ignored, and the half-written pages of an interrupted or live
transaction are read as if committed. Both gave silent wrong numbers (36 kernels where SQLite
sees 18; a wall time 10^6 x too long).

Opening such a file the normal way would *modify* it: SQLite creates ``-shm``, rolls back a
hot journal into the database, and checkpoints the WAL when the last connection closes. So
when a sidecar is present the database and its sidecars are copied into a private temporary
folder (log/journal first, then the database, checked unchanged across the copy, while no
process holds a write lock), SQLite applies the log or rolls back the journal *there*, and the
reader opens that settled copy ``immutable=1``. The plain case (no sidecar) keeps reading the
user's file directly.

A process writing to the database (a write lock held, or files changing during the copy) is
waited for :data:`BUSY_WAIT_S` seconds, then reported as one clear error.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infersight.errors import InputError
from infersight.safe_io import check_regular_file

BUSY_WAIT_S = 2.0  # how long a database held by a writer is waited for
_POLL_S = 0.05
SIDECAR_SUFFIXES = ("-wal", "-journal")
# Unix VFS lock bytes (sqlite3.c, os_unix.c): PENDING, RESERVED, then the 510-byte SHARED range;
# WAL-index (-shm) locks start at byte 120: WRITE, CHECKPOINT, RECOVER.
_PENDING_BYTE = 0x40000000
_LOCK_RANGE = 2 + 510
_SHM_LOCK_BASE = 120
_SHM_WRITER_LOCKS = 3


@dataclass(frozen=True)
class Snapshot:
    """Where to open the database ``immutable=1``, and notes on how it was obtained."""

    path: Path
    notes: list[str] = field(default_factory=list)


def sidecars(path: Path) -> list[Path]:
    """The ``-wal`` / ``-journal`` files beside ``path`` (empty: the file stands alone)."""
    found = [path.with_name(path.name + suffix) for suffix in SIDECAR_SUFFIXES]
    return [p for p in found if os.path.lexists(p)]


@contextmanager
def committed_database(path: Path) -> Iterator[Snapshot]:
    """A path whose content is the committed state of ``path`` (valid inside the ``with``).

    Without sidecar files that is ``path`` itself. Otherwise a settled private copy, removed on
    exit. Raises :class:`InputError` when the database stays locked by a writer, or when the
    copy cannot be made (no room in the temporary folder).
    """
    present = sidecars(path)
    for sidecar in present:  # a FIFO or device named *-wal must not hang or fill the copy
        check_regular_file(sidecar, "file beside the SQLite export")
    if not present:
        yield Snapshot(path)
        return
    with tempfile.TemporaryDirectory(prefix="infersight-sqlite-") as folder:
        copy = Path(folder) / "export.sqlite"
        _stable_copy(path, present, copy)
        _settle(path, copy)
        yield Snapshot(copy, [_sidecar_note(path, present)])


def _sidecar_note(path: Path, present: list[Path]) -> str:
    """Say which sidecar was folded in, and that the user's files were left as they were."""
    what = {
        "-wal": "its committed changes, not yet in the file, were applied",
        "-journal": "the interrupted write it records was rolled back",
    }
    done = "; ".join(f"{p.name}: {what[p.name[len(path.name) :]]}" for p in present)
    return f"read in its committed state from a private copy ({done}); the files themselves were not changed"


def _stable_copy(path: Path, present: list[Path], copy: Path) -> None:
    """Copy sidecars then database while no writer holds a lock and no file changes meanwhile.

    The log is copied before the database: a checkpoint that runs in between then only moves
    pages our log copy already holds. The (size, mtime) check catches any write we raced with.
    """
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        if not _writer_active(path):
            before = _stats(path, present)
            _copy_files(path, present, copy)
            if _stats(path, present) == before and not _writer_active(path):
                return
        if time.monotonic() >= deadline:
            raise InputError(
                path,
                f"the database is being written by another process (locked or changing for more "
                f"than {BUSY_WAIT_S:g} s); retry when the writer (e.g. nsys export) has finished",
            )
        time.sleep(_POLL_S)


def _copy_files(path: Path, present: list[Path], copy: Path) -> None:
    try:
        for sidecar in present:
            shutil.copyfile(sidecar, copy.with_name(copy.name + sidecar.name[len(path.name) :]))
        shutil.copyfile(path, copy)
    except OSError as exc:
        raise InputError(
            path,
            f"cannot make the private copy needed to read it past its {present[0].name} "
            f"({exc.strerror or exc}); free space in {copy.parent.parent} or set TMPDIR",
        ) from None


def _stats(path: Path, present: list[Path]) -> list[tuple[int, int]]:
    stats = []
    for p in (path, *present):
        try:
            st = os.stat(p)
        except OSError:
            stats.append((-1, -1))
            continue
        stats.append((st.st_size, st.st_mtime_ns))
    return stats


def _settle(path: Path, copy: Path) -> None:
    """Let SQLite roll back / apply the copied journal or log, leaving one standalone file.

    Raises :class:`sqlite3.DatabaseError` for a corrupt file (the reader reports it).
    """
    with closing(sqlite3.connect(copy, isolation_level=None)) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]  # reads: rolls back a hot journal
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        if str(mode).lower() == "wal":
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            conn.execute("PRAGMA journal_mode=DELETE").fetchone()
    left = sidecars(copy)
    if left:  # SQLite could not fold them in: reading the copy immutably would be wrong again
        raise InputError(path, f"could not apply {', '.join(p.name for p in left)} to a private copy")


def _writer_active(path: Path) -> bool:
    """True when another process holds an SQLite write lock on ``path`` (or its ``-shm``).

    Uses ``F_GETLK``, which only asks: nothing is locked or written. Linux only (the
    ``struct flock`` layout differs elsewhere); other systems rely on the unchanged-copy check.
    """
    if not sys.platform.startswith("linux"):
        return False
    shm = path.with_name(path.name + "-shm")
    return _write_locked(path, _PENDING_BYTE, _LOCK_RANGE) or (
        os.path.exists(shm) and _write_locked(shm, _SHM_LOCK_BASE, _SHM_WRITER_LOCKS)
    )


def _write_locked(path: Path, start: int, length: int) -> bool:
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        query = struct.pack("hhqqi", fcntl.F_RDLCK, os.SEEK_SET, start, length, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query + b"\0" * 8)
        return struct.unpack("hhqqi", answer[: struct.calcsize("hhqqi")])[0] != fcntl.F_UNLCK
    except OSError:
        return False
    finally:
        os.close(fd)
