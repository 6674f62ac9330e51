"""The ``infersight`` command line: a thin front end over :mod:`infersight.api`.

Error contract (tested): anything wrong with what the user gave us — an unreadable or invalid
trace, a bad option, an output path that would overwrite an input — prints exactly one line
``infersight: error: <file>: <problem>`` on stderr and exits 2, never a traceback. Anything
else is our bug: one line asking for a report, exit 1, and the traceback only with
``INFERSIGHT_DEBUG=1``.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar, cast

import typer

from infersight import __version__
from infersight.commands import _options as opt
from infersight.commands import register_all
from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import CpuOpsOpt, TracesArg, WindowOpt, guard_numeric_options, request_of
from infersight.errors import EXIT_BAD_INPUT, InputError
from infersight.render.sanitize import sanitize_text

if TYPE_CHECKING:  # imported where a command runs: `infersight --help` needs neither pandas nor pydantic
    from infersight.analysis_report import AnalysisReport
    from infersight.model import Trace

CliUsageError: type[Exception]
try:  # recent typer vendors click; older releases raise click's own exceptions
    from typer.exceptions import TyperException

    CliUsageError = TyperException
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException

    CliUsageError = ClickException

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

T = TypeVar("T")

_APP_SETTINGS: dict[str, Any] = {
    "name": "infersight",
    "help": "Diagnose LLM inference performance from Nsight Systems and PyTorch-profiler traces.",
    "add_completion": False,
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}
app = typer.Typer(**_APP_SETTINGS)


def _version_callback(value: bool) -> None:
    if value:
        print(f"infersight {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """infersight: what limits your LLM inference run, why, and what to change."""


@app.command()
@opt.with_options(opt.MODEL_OPTIONS, opt.SCENARIO_OPTIONS, opt.MEASURED_OPTIONS)
def analyze(
    traces: TracesArg,
    window_nvtx: WindowOpt = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON report to OUT.")
    ] = None,
    md_out: Annotated[
        Path | None, typer.Option("--md", metavar="OUT", help="Also write the Markdown report to OUT.")
    ] = None,
    cpu_ops_as_kernels: CpuOpsOpt = False,
    top: Annotated[
        int, typer.Option("--top", metavar="N", min=1, help="Rows in the kernel and range summaries.")
    ] = 15,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            metavar="ENGINE",
            help="Where a folder's per-rank files are read: local (this process), process "
            "(one process per rank, default), dask (a Dask cluster; pip install 'infersight[dask]'), "
            "ray (a Ray cluster; pip install 'infersight[ray]').",
        ),
    ] = "process",
    executor_address: Annotated[
        str | None,
        typer.Option(
            "--executor-address",
            metavar="URL",
            help="With --executor dask or ray: join the cluster at URL (dask: tcp://host:8786; ray: "
            "host:6379, ray://host:10001 or auto) instead of starting a local one; its workers need "
            "infersight and must see the trace files at the same paths.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar on stderr (it shows only on a terminal).")
    ] = False,
    **options: Any,
) -> None:
    """Profile the traces, run the rules, and print the diagnosis (with --model: measured vs theory)."""
    from infersight import api
    from infersight.progress import RENDERING
    from infersight.render.progress import progress_for
    from infersight.render.terminal import render_terminal

    request = request_of(api.AnalyzeRequest, locals() | options)
    api.check_window_regex(window_nvtx)
    api.theory_request(request)  # a half-given scenario fails before the outputs are checked
    outputs = [p for p in (json_out, md_out) if p is not None]
    check_outputs(outputs, traces)
    bar = progress_for(quiet) if len(traces) == 1 and not traces[0].is_dir() else None
    if bar is not None:  # one file: a progress bar with stages, bytes and ETA (after ~2 s)
        with bar:
            report = api.analyze(request, progress=bar)
            check_outputs(outputs, [Path(t.source) for t in report.profile.traces])
            bar.stage(RENDERING)
            _write_reports(report, json_out, md_out, top)
        render_terminal(report, stdout_console(), top=top)
        return
    report = with_spinner("reading and analysing traces", lambda: api.analyze(request))
    check_outputs(outputs, [Path(t.source) for t in report.profile.traces])  # what a folder expanded to
    # files first: `infersight analyze ... --json r.json | head` must still write r.json
    _write_reports(report, json_out, md_out, top)
    render_terminal(report, stdout_console(), top=top)


def _write_reports(report: AnalysisReport, json_out: Path | None, md_out: Path | None, top: int) -> None:
    """The --json and --md files of ``analyze``."""
    from infersight.render.json_report import render_json
    from infersight.render.markdown import render_markdown

    if json_out is not None:
        write_output(json_out, render_json(report).encode())
    if md_out is not None:
        write_output(md_out, render_markdown(report, top=top).encode())


@app.command()
def export(
    traces: TracesArg,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", metavar="OUT", help="Where to write the trace-model JSON."),
    ],
    cpu_ops_as_kernels: CpuOpsOpt = False,
) -> None:
    """Write the normalised trace model (kernels, copies, API calls, ranges) as columnar JSON."""
    from infersight import api
    from infersight.render.trace_export import export_traces

    check_outputs([output], traces)
    request = request_of(api.ExportRequest, locals())
    loaded: list[Trace] = with_spinner("reading traces", lambda: api.export(request))
    check_outputs([output], [Path(t.source) for t in loaded])
    write_output(output, export_traces(loaded))
    counts = ", ".join(f"{t.label()}: {len(t.kernels):,} kernels" for t in loaded)
    print(sanitize_text(f"wrote {output} ({len(loaded)} trace(s); {counts})"), file=sys.stderr)


register_all(app)

# ---------------------------------------------------------------- helpers


def _error_line(message: str) -> None:
    print(f"infersight: error: {sanitize_text(' '.join(message.split()))}", file=sys.stderr)


class OutputWriteError(InputError):
    """Standard output could not be written (a full disk, a closed terminal): exit 2, one line."""


class _StdoutClosed(Exception):
    """The reader of our standard output went away (``| head``): stop quietly.

    Deliberately not an OSError, so click's own EPIPE handling (exit 1) does not take it."""


class _GuardedStdout:
    """``sys.stdout`` for the duration of a command: a failed write becomes :class:`OutputWriteError`.

    Every report path (rich consoles, ``print``) writes through ``sys.stdout``, so this is the one
    place where ``> /dev/full`` turns into "cannot write output: No space left on device" instead
    of an internal error. A closed pipe (``| head``) ends the command quietly (exit 0: the files
    are written before the terminal report).
    """

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _guard(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except BrokenPipeError:
            raise _StdoutClosed from None
        except OSError as exc:
            reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
            raise OutputWriteError(None, f"cannot write output: {reason}") from None

    def write(self, text: str) -> int:
        return self._guard(lambda: self._inner.write(text))

    def writelines(self, lines: Iterable[str]) -> None:
        self._guard(lambda: self._inner.writelines(lines))

    def flush(self) -> None:
        self._guard(self._inner.flush)


def _detach_stdout() -> None:
    """Point file descriptor 1 at /dev/null so the interpreter's final flush of data that could
    not be written (a closed pipe, a full device) does not print a second, confusing error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # captured stdout in tests: nothing to do
        pass


@contextmanager
def _guarded_stdout() -> Iterator[None]:
    """Run a command with :class:`_GuardedStdout`, flushing inside the guard so buffered output
    that cannot be written is reported here; ``| head`` ends quietly (no BrokenPipeError trace)."""
    original = sys.stdout
    if original is None:  # no standard output at all (pythonw): nothing to guard
        yield
        return
    sys.stdout = cast(TextIO, _GuardedStdout(original))
    try:
        yield
        sys.stdout.flush()
    except (_StdoutClosed, BrokenPipeError):
        _detach_stdout()
    except OutputWriteError:
        _detach_stdout()
        raise
    finally:
        sys.stdout = original


def _command_for(args: Sequence[str]) -> Any:
    """The click command that parses ``args``, built once per process for each command named first.

    Why: building it (typer reads signatures and type hints, makes converters) costs ~0.1 s of CPU,
    and a process that runs the CLI many times (a notebook, an agent, the test suite) would pay it
    on every call; the built command keeps no state between runs (click makes a new context each
    time).
    """
    return _built_command(_command_name(args))


@functools.cache
def _built_command(name: str) -> Any:
    """The built (and numeric-option-guarded) command of :func:`_app_named`."""
    return guard_numeric_options(typer.main.get_command(_app_named(name)))


def _app_for(args: Sequence[str]) -> typer.Typer:
    """The application to build for ``args``: with a sub-command named first, that one alone."""
    return _app_named(_command_name(args))


def _command_name(args: Sequence[str]) -> str:
    """The command or group named first in ``args`` when it is exactly one registered name, else ""
    (no argument, an option first, a name that is no command: the whole application)."""
    first = args[0] if args else ""
    if not first or first.startswith("-"):
        return ""
    matches = len(_registered_commands(first)) + sum(g.name == first for g in app.registered_groups)
    return first if matches == 1 else ""


def _registered_commands(name: str) -> list[Any]:
    return [
        c
        for c in app.registered_commands
        if (c.name or typer.main.get_command_name(getattr(c.callback, "__name__", ""))) == name
    ]


def _app_named(name: str) -> typer.Typer:
    """The whole application for "", else one holding only the command or group ``name``.

    Why: typer builds every command's parameters (signatures, type hints, converters) before it
    parses a word, ~0.1 s of each start for twenty commands (0.4 s on a loaded machine), and a run
    of one command needs one. The one-command application keeps the root callback (``--version``)
    and the settings, so its parsing, help and errors are the whole application's.
    """
    if not name:
        return app
    only = typer.Typer(**_APP_SETTINGS)
    only.registered_callback = app.registered_callback
    only.registered_commands = _registered_commands(name)
    only.registered_groups = [g for g in app.registered_groups if g.name == name]
    return only


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (what :func:`main` exits with)."""
    result: object = None
    try:
        with _guarded_stdout():
            args = list(argv) if argv is not None else sys.argv[1:]
            command = _command_for(args)
            result = command.main(args=args, prog_name="infersight", standalone_mode=False)
        return result if isinstance(result, int) else EXIT_OK
    except InputError as exc:
        _error_line(exc.one_line())
        return EXIT_BAD_INPUT
    except typer.Abort:
        _error_line("interrupted")
        return EXIT_INTERRUPTED
    except CliUsageError as exc:  # usage errors: bad option, missing argument
        formatter = getattr(exc, "format_message", None)
        message = str(formatter()) if callable(formatter) else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `infersight`: the help is the message
            print(message, file=sys.stderr)
        else:
            _error_line(message)
        code = getattr(exc, "exit_code", EXIT_BAD_INPUT)
        return code if isinstance(code, int) and code != 1 else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _error_line("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("INFERSIGHT_DEBUG") == "1":
            traceback.print_exc()
        if isinstance(exc, OSError) and exc.filename is not None:
            # a file the system refused (permissions, a full disk, a vanished directory) is the
            # user's environment, not our bug: one line naming it, exit 2
            reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
            _error_line(f"{exc.filename}: cannot be read or written: {reason}")
            return EXIT_BAD_INPUT
        detail = sanitize_text(" ".join(str(exc).split())[:300])
        print(
            f"infersight: internal error: {type(exc).__name__}: {detail} — this is a bug, please report it "
            "with the command line (rerun with INFERSIGHT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def main() -> None:
    """Console-script entry point (``infersight = "infersight.cli:main"``)."""
    sys.exit(run())
