"""Output paths a command writes: never an input of the command, never twice, always writable.

Shared by every front end that writes files (the CLI commands, the MCP tools, the agent), so
the rule that an output never overwrites an input is checked one way. The running command's
path options are found through the click context when there is one (the CLI); other callers
name their inputs.
"""

from __future__ import annotations

import errno
import importlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from infersight.errors import InputError

__all__ = ["check_outputs", "write_output"]

MAX_FOLDER_ENTRIES = 100_000  # files of an input folder compared with the outputs (bounded walk)


def _resolved(path: Path) -> Path | None:
    """The path with symlinks resolved (a path that does not exist yet resolves as far as it can)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: writing there fails later with a clear line
        return None


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, following symlinks: hard links share it."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _same_file(a: Path, b: Path) -> bool:
    """Whether writing ``a`` would write ``b``: same path after symlinks, or the same inode."""
    ra, rb = _resolved(a), _resolved(b)
    if ra is not None and ra == rb:
        return True
    ia = _identity(a)
    return ia is not None and ia == _identity(b)


def _folder_files(folder: Path) -> Iterator[Path]:
    """The files directly in an input folder (a folder of per-rank traces is read one level
    deep, so an agent work directory nested inside it is not an input), to a bounded count."""
    try:
        with os.scandir(folder) as entries:
            for seen, entry in enumerate(entries):
                if seen >= MAX_FOLDER_ENTRIES:
                    return
                yield Path(entry.path)
    except OSError:  # unreadable: the reader reports it
        return


def _expand(inputs: Iterable[Path]) -> list[Path]:
    """Inputs with every folder replaced by itself plus the files inside it."""
    out: list[Path] = []
    for path in inputs:
        out.append(path)
        if path.is_dir():
            out.extend(_folder_files(path))
    return out


def _as_paths(value: object) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, Path)]
    return []


def _current_context() -> Any:
    """The running command's click context. Recent typer releases vendor click (``typer._click``)
    with their own context stack; older ones use click itself: try both."""
    for name in ("typer._click.globals", "click.globals"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        ctx = module.get_current_context(silent=True)
        if ctx is not None:
            return ctx
    return None


def _command_inputs(outputs: Sequence[object], output_dirs: Sequence[Path]) -> list[Path]:
    """Every ``Path`` value among the running command's options and arguments that is not one
    of its outputs.

    Gathered from the command-line context so that an input option added later (a config, a
    thresholds file, a report) is protected without anyone remembering to list it. Outputs are
    left out by identity (the very objects the command passed), not by value: ``--config C
    --json C`` must find C among the inputs.
    """
    ctx = _current_context()
    params = getattr(ctx, "params", None)
    if not isinstance(params, dict):
        return []
    skip = {id(o) for o in (*outputs, *output_dirs)}
    return [p for value in params.values() for p in _as_paths(value) if id(p) not in skip]


def check_outputs(
    outputs: Sequence[Path | None],
    inputs: Iterable[Path | str | None] = (),
    *,
    output_dirs: Sequence[Path] = (),
) -> None:
    """Refuse output paths that would overwrite an input, collide, or cannot be written.

    ``inputs`` are the command's inputs not typed as paths (or found only after loading, like
    the files of a trace folder); every path option of the command is added automatically.
    ``output_dirs`` are path options that are output folders (the agent's work directory).
    Symlinks are resolved and hard links caught by inode, so no alias of an input is written.
    """
    outs = [Path(o) for o in outputs if o is not None]
    given = [Path(i) for i in inputs if i is not None and str(i)]
    every_input = _expand([*given, *_command_inputs(outputs, output_dirs)])
    for index, out in enumerate(outs):
        clash = next((inp for inp in every_input if _same_file(out, inp)), None)
        if clash is not None:
            raise InputError(
                out, f"output path is an input of this command ({clash}); refusing to overwrite it"
            )
        if any(_same_file(out, other) for other in outs[:index]):
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
        reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
        raise InputError(path, f"cannot write: {reason}") from None
