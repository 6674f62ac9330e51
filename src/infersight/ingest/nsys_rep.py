"""``.nsys-rep`` / ``.qdrep`` reports -> SQLite export, through the user's own ``nsys``.

The binary report format is private to Nsight Systems; only ``nsys export`` reads it. When
``nsys`` is on PATH the report is exported once into a cache directory (``$INFERSIGHT_CACHE``,
else ``~/.cache/infersight``), under a name keyed by the report's path, size and modification
time, and later runs reuse it. Nothing is ever written next to the user's report. Without
``nsys`` the user gets the exact command to run; an export that runs past
``$INFERSIGHT_NSYS_EXPORT_TIMEOUT`` seconds (default 30 minutes) is stopped with the same advice.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from infersight.errors import InputError
from infersight.safe_io import check_regular_file

CACHE_ENV = "INFERSIGHT_CACHE"
DEFAULT_CACHE = Path("~/.cache/infersight")
# nsys export of a multi-GB report takes minutes; one that runs past this is stuck (a licence
# prompt, a hung daemon, a report on a dead network mount) and is killed.
EXPORT_TIMEOUT_ENV = "INFERSIGHT_NSYS_EXPORT_TIMEOUT"
DEFAULT_EXPORT_TIMEOUT_S = 1800.0


def export_command(report: Path, output: str | Path = "report.sqlite") -> list[str]:
    """The ``nsys export`` command line that turns ``report`` into an SQLite file."""
    return ["nsys", "export", "--type", "sqlite", "--output", str(output), str(report)]


def cache_dir() -> Path:
    """Where exports are kept: ``$INFERSIGHT_CACHE`` or ``~/.cache/infersight``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_CACHE.expanduser()


def cached_export_path(report: Path) -> Path:
    """``<cache>/<report stem>-<hash of path, size, mtime>.sqlite``: a changed report gets a new name."""
    stat = report.stat()
    key = f"{report.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
    return cache_dir() / f"{report.stem}-{hashlib.sha256(key).hexdigest()[:16]}.sqlite"


def export_nsys_report(path: Path) -> Path:
    """The SQLite export of an Nsight Systems report (made with ``nsys export`` on first use).

    Raises :class:`InputError` when the report is missing, ``nsys`` is not on PATH (the message
    holds the command to run by hand), or the export fails.
    """
    report = Path(path)
    check_regular_file(report, "Nsight Systems report")
    timeout = export_timeout(report)
    manual = shlex.join(export_command(report))
    nsys = shutil.which("nsys")
    if nsys is None:
        raise InputError(
            report,
            "reading an Nsight Systems report needs `nsys` on PATH (not found); export it yourself "
            f"and pass the .sqlite file: {manual}",
        )
    target = cached_export_path(report)
    if target.is_file() and target.stat().st_size > 0:
        return target
    _run_export(report, nsys, target, manual, timeout)
    return target


def export_timeout(report: Path) -> float:
    """Seconds ``nsys export`` may run: ``$INFERSIGHT_NSYS_EXPORT_TIMEOUT``, else 30 minutes."""
    raw = os.environ.get(EXPORT_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_EXPORT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(report, f"{EXPORT_TIMEOUT_ENV}={raw[:40]!r} is not a positive number of seconds")
    return value


def _run_export(report: Path, nsys: str, target: Path, manual: str, timeout: float) -> None:
    """Export into a temporary name, then rename: an interrupted export is never reused."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            report, f"cannot create the export cache {target.parent}: {exc.strerror or exc}"
        ) from None
    partial = target.with_name(f"{target.stem}.partial-{os.getpid()}.sqlite")
    partial.unlink(missing_ok=True)  # left by a crashed run with the same pid: nsys will not overwrite
    command = [nsys, *export_command(report, partial)[1:]]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:  # run() has killed nsys
        partial.unlink(missing_ok=True)
        raise InputError(
            report,
            f"nsys export did not finish within {timeout:g} s and was stopped; for a very large "
            f"report raise {EXPORT_TIMEOUT_ENV}=<seconds>, or export by hand: {manual}",
        ) from None
    except OSError as exc:
        raise InputError(
            report, f"cannot run nsys ({exc.strerror or exc}); export by hand: {manual}"
        ) from None
    if result.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        detail = _last_line(result.stderr) or _last_line(result.stdout) or f"exit code {result.returncode}"
        raise InputError(report, f"nsys export failed ({detail}); try by hand: {manual}")
    os.replace(partial, target)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
