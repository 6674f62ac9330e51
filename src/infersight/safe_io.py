"""Reading user files safely: regular files only, bounded sizes, clear one-line errors.

Every reader of a user-supplied file (traces, configs, ncu exports, thresholds, reports, the
knowledge base) goes through these helpers first, so that a FIFO does not block ``open()``
forever, ``/dev/zero`` does not grow until MemoryError, a symlink loop is not a traceback, and
an oversized file is refused with its size before it is read. They raise
:class:`~infersight.errors.InputError` (one line, exit code 2).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from infersight.errors import InputError

MiB = 1024 * 1024
# Size caps of what is read whole into memory (text files that are never legitimately large).
MAX_CONFIG_BYTES = 16 * MiB  # HuggingFace config.json, safetensors index / header
MAX_THRESHOLDS_BYTES = 4 * MiB  # rule / threshold TOML files
MAX_REPORT_BYTES = 512 * MiB  # infersight JSON reports read back (--from-report, kb record)
MAX_CSV_BYTES = 2048 * MiB  # Nsight Compute CSV exports


def check_regular_file(path: str | Path, what: str = "file") -> Path:
    """The path, resolved, when it names an existing regular file; else InputError.

    Refuses what would hang or never end (FIFOs, character/block devices, sockets), symlink
    loops and directories, before anything opens the path.
    """
    given = Path(path)
    try:
        resolved = given.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 raises RuntimeError on a symlink loop
        raise InputError(given, f"{what}: symbolic link loop") from None
    except FileNotFoundError:
        raise InputError(given, f"{what}: no such file") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise InputError(given, f"{what}: symbolic link loop") from None
        raise InputError(given, f"{what}: cannot be read ({exc.strerror or exc})") from None
    try:
        mode = os.stat(resolved).st_mode
    except OSError as exc:
        raise InputError(given, f"{what}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise InputError(given, f"{what}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = (
            "a named pipe (FIFO)"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise InputError(given, f"{what}: is {kind}; give a regular file")
    return resolved


def read_bounded_bytes(path: str | Path, limit_bytes: int, what: str = "file") -> bytes:
    """The whole content of a regular file of at most ``limit_bytes``; else InputError."""
    resolved = check_regular_file(path, what)
    size = resolved.stat().st_size
    if size > limit_bytes:
        raise InputError(
            path,
            f"{what}: {size:,} bytes is larger than the {limit_bytes:,}-byte limit for this kind of file",
        )
    try:
        with open(resolved, "rb") as handle:
            data = handle.read(limit_bytes + 1)
    except OSError as exc:
        raise InputError(path, f"{what}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit_bytes:  # grew while we read it
        raise InputError(path, f"{what}: larger than the {limit_bytes:,}-byte limit for this kind of file")
    return data


def read_bounded_text(path: str | Path, limit_bytes: int, what: str = "file") -> str:
    """The UTF-8 text of a regular file of at most ``limit_bytes``; else InputError."""
    data = read_bounded_bytes(path, limit_bytes, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"{what}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
