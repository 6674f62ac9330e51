"""Terminal and file helpers every CLI command shares (consoles, spinners, safe output paths)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from infersight.errors import InputError

__all__ = ["NON_TTY_WIDTH", "check_outputs", "stdout_console", "with_spinner", "write_output"]

NON_TTY_WIDTH = 180  # wide enough that kernel-summary rows are not folded when piped

T = TypeVar("T")


def stdout_console() -> Console:
    """Rich console for the report; a fixed wide width when piped so rows are not folded.

    Markup is off: kernel and range names such as ``[param|cuda]`` are data, not styles, and
    renderers style with :class:`rich.text.Text` instead.
    """
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console(markup=False)
    return Console(width=NON_TTY_WIDTH, markup=False)


def with_spinner(message: str, work: Callable[[], T]) -> T:
    """Run ``work`` under a rich spinner on stderr — only when stderr is an interactive terminal."""
    if not sys.stderr.isatty():
        return work()
    with Console(stderr=True).status(f"{message}…"):
        return work()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_outputs(outputs: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse output paths that would overwrite an input, collide, or cannot be written."""
    for index, out in enumerate(outputs):
        if any(_same_file(out, inp) for inp in inputs):
            raise InputError(out, "output path is one of the input traces; refusing to overwrite it")
        if any(_same_file(out, other) for other in outputs[:index]):
            raise InputError(out, "the same output path is given twice")
        if out.is_dir():
            raise InputError(out, "output path is a directory")
        if not out.parent.is_dir():
            raise InputError(out, f"cannot write: directory {out.parent} does not exist")


def write_output(path: Path, data: bytes) -> None:
    """Write a report file; an unwritable path is the user's input error (exit 2), not a crash."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InputError(path, f"cannot write: {exc.strerror or exc}") from None
