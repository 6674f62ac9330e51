"""``infersight annotate TRACE... -o OUT.json.gz``: the trace plus infersight's tracks, for Perfetto UI."""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infersight.commands._io import check_outputs, with_spinner
from infersight.commands._options import TracesArg
from infersight.errors import InputError

if TYPE_CHECKING:
    from infersight.render.perfetto import ByteSink

HELP = (
    "Write the trace plus infersight's tracks (attribution, gaps, findings) for Perfetto.\n\n"
    "The file (Chrome trace-event JSON, gzip when OUT ends in .gz) holds the traces' own GPU and "
    "host tracks (kernels and copies per stream, CUDA API calls and annotation ranges per thread) "
    "plus infersight's tracks per GPU: where the time goes (gpu / communication / copy / host slices, "
    "docs/methodology.md §3.2), idle gaps named by their likely cause, phases and steps, and each "
    "finding over the time it is about. Open it at https://ui.perfetto.dev. The input files are "
    "only read."
)


def register(app: typer.Typer) -> None:
    """Add the ``annotate`` command."""

    @app.command("annotate", help=HELP)
    def annotate(
        traces: TracesArg,
        output: Annotated[
            Path,
            typer.Option(
                "-o", "--output", metavar="OUT.json.gz", help="Where to write the trace (.json or .json.gz)."
            ),
        ],
        window_nvtx: Annotated[
            str | None,
            typer.Option(
                "--window-nvtx",
                metavar="REGEX",
                help="Cut the analysis window to NVTX/annotation ranges whose name matches REGEX.",
            ),
        ] = None,
        cpu_ops_as_kernels: Annotated[
            bool,
            typer.Option(
                "--cpu-ops-as-kernels", help="CPU-only captures: dominant CPU ops stand in for kernels."
            ),
        ] = False,
    ) -> None:
        from infersight import api
        from infersight.render.perfetto import write_chrome_trace

        check_outputs([output], traces)
        annotated = with_spinner(
            "reading and analysing traces",
            lambda: api.annotate(traces, window_nvtx=window_nvtx, cpu_ops_as_kernels=cpu_ops_as_kernels),
        )
        check_outputs([output], [Path(t.source) for t in annotated.traces])
        with _output_stream(output) as stream:
            counts = with_spinner("writing", lambda: write_chrome_trace(annotated, stream))
        own = sum(counts.get(k, 0) for k in ("kernels", "memcpy", "memset", "api", "ranges", "gpu_ranges"))
        ours = sum(counts.get(k, 0) for k in ("attribution", "gaps", "phases", "steps", "findings"))
        print(
            f"wrote {output} ({own:,} trace events, {counts.get('flows', 0) // 2:,} launch arrows, "
            f"{ours:,} infersight slices; "
            "open it at https://ui.perfetto.dev)",
            file=sys.stderr,
        )


@contextmanager
def _output_stream(path: Path) -> Iterator[ByteSink]:
    """The output opened for writing (gzip for .gz), written to a temporary name then renamed.

    Why the rename: an interrupted or failed write leaves no half file under the name asked for.
    An unwritable path is the user's input error (exit 2).
    """
    partial = path.with_name(f".{path.name}.partial")
    try:
        raw = open(partial, "wb")  # noqa: SIM115 - closed below, renamed only when complete
    except OSError as exc:
        raise InputError(path, f"cannot write: {exc.strerror or exc}") from None
    try:
        with raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as zipped:
                    yield zipped
            else:
                yield raw
        os.replace(partial, path)
    except OSError as exc:
        raise InputError(path, f"cannot write: {exc.strerror or exc}") from None
    finally:
        if partial.exists():
            partial.unlink()
