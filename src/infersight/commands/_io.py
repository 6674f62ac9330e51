"""Terminal and file helpers every CLI command shares (consoles, spinners, safe output paths)."""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console

from infersight.errors import InputError
from infersight.render.sanitize import sanitizing_console
from infersight.safe_io import MAX_REPORT_BYTES, read_bounded_bytes

if TYPE_CHECKING:
    from infersight.analysis_report import AnalysisReport

__all__ = [
    "NON_TTY_WIDTH",
    "Stages",
    "check_outputs",
    "input_size",
    "read_analysis_report",
    "stdout_console",
    "with_spinner",
    "write_output",
]

NON_TTY_WIDTH = 180  # wide enough that kernel-summary rows are not folded when piped
MAX_FOLDER_ENTRIES = 100_000  # files of an input folder compared with the outputs (bounded walk)

T = TypeVar("T")


def stdout_console() -> Console:
    """Rich console for the report; a fixed wide width when piped so rows are not folded.

    Markup is off: kernel and range names such as ``[param|cuda]`` are data, not styles, and
    renderers style with :class:`rich.text.Text` instead. Control characters of input strings
    (terminal escape sequences in a kernel name) are neutralised by the console itself, so no
    renderer can forget it.
    """
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return sanitizing_console(markup=False)
    return sanitizing_console(width=NON_TTY_WIDTH, markup=False)


def with_spinner(message: str, work: Callable[[], T]) -> T:
    """Run ``work`` under a rich spinner on stderr — only when stderr is an interactive terminal."""
    if not sys.stderr.isatty():
        return work()
    with Console(stderr=True).status(f"{message}…"):
        return work()


class Stages:
    """Numbered stages of a long command on stderr, only on an interactive terminal.

    While a stage runs: a spinner, '[2/4] analysing…' and the elapsed time; when it ends, a kept
    line '✓ [2/4] analysing 3.1 s', so the user sees what is done and what is running, and how
    long each step took. (A reader that holds the GIL can still pause the redraw; the stage line
    says which step that is.)
    """

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.total = total
        self.done = 0
        self.console = console if console is not None else Console(stderr=True)
        self.active = console is not None or sys.stderr.isatty()

    def run(self, message: str, work: Callable[[], T]) -> T:
        """Run one stage: ``work()`` under the spinner; its result is returned unchanged."""
        import time

        self.done += 1
        label = f"[{self.done}/{self.total}] {message}"
        if not self.active:
            return work()
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        started = time.perf_counter()
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=self.console, transient=True,
        ) as progress:  # fmt: skip
            progress.add_task(f"{label}…", total=None)
            result = work()
        self.console.print(Text(f"✓ {label} {time.perf_counter() - started:.1f} s", style="dim"))
        return result


def input_size(paths: Iterable[Path]) -> str:
    """Total size of the input files (folders: their files, one level), e.g. '2.9 MB'."""
    total = 0
    for path in paths:
        try:
            if path.is_dir():
                total += sum(p.stat().st_size for p in path.iterdir() if p.is_file())
            else:
                total += path.stat().st_size
        except OSError:
            continue
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if total >= scale:
            return f"{total / scale:.1f} {unit}"
    return f"{total} B"


# ---------------------------------------------------------------- outputs never overwrite inputs


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


def read_analysis_report(path: Path) -> AnalysisReport:
    """An ``analyze --json`` report read back (``report --from-report``, ``narrate``).

    Bounded and regular files only (``/dev/zero`` or a FIFO is refused before it is read);
    damaged JSON or another schema is one line naming the file and the first wrong field.
    """
    from pydantic import ValidationError

    from infersight.analysis_report import AnalysisReport

    data = read_bounded_bytes(path, MAX_REPORT_BYTES, "report")
    try:
        return AnalysisReport.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0] if errors else None
        if first is None:
            detail = exc.title
        elif first["type"].startswith("json_"):
            detail = f"not valid JSON ({first['msg']})"
        else:
            field = ".".join(str(p) for p in first["loc"]) or "top level"
            detail = f"{field}: {first['msg']}"
        raise InputError(path, f"not an infersight analyze --json report: {detail}") from None


def write_output(path: Path, data: bytes) -> None:
    """Write a report file; an unwritable path is the user's input error (exit 2), not a crash."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
        raise InputError(path, f"cannot write: {reason}") from None
