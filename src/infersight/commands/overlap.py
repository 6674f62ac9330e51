"""``infersight overlap``: copy/compute and communication/computation overlap of traces."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.errors import InputError

TracesArg = Annotated[
    list[Path],
    typer.Argument(
        help="Trace files or directories of per-rank files (nsys .sqlite, Kineto .json[.gz]).",
        show_default=False,
        metavar="TRACE",
    ),
]
JsonOpt = Annotated[
    Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON result to OUT.")
]


def check_regex(option: str, pattern: str | None) -> None:
    """InputError for an invalid regex option (before the slow load)."""
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InputError(None, f"{option}: invalid regular expression {pattern!r}: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add the ``overlap`` command."""

    @app.command("overlap")
    def overlap(
        traces: TracesArg,
        window_nvtx: Annotated[
            str | None,
            typer.Option(
                "--window-nvtx",
                metavar="REGEX",
                help="Cut the window to NVTX/annotation ranges whose name matches REGEX.",
            ),
        ] = None,
        per_range: Annotated[
            str | None,
            typer.Option(
                "--per-range",
                metavar="REGEX",
                help="Load vs compute per NVTX/annotation range matching REGEX (e.g. 'layer_\\d+').",
            ),
        ] = None,
        json_out: JsonOpt = None,
    ) -> None:
        """Copy/compute overlap (H2D/D2H bandwidth, hidden vs exposed copy time, per-range prefetch) and
        communication/computation overlap (NCCL time, exposed comm, M5, algbw/busbw)."""
        from infersight import api
        from infersight.overlap import analyze_overlap
        from infersight.render.overlap import render_overlap, render_overlap_json

        check_regex("--window-nvtx", window_nvtx)
        check_regex("--per-range", per_range)
        outputs = [json_out] if json_out is not None else []
        check_outputs(outputs, traces)
        loaded = with_spinner("reading traces", lambda: api.load(traces))
        check_outputs(outputs, [Path(t.source) for t in loaded])
        report = with_spinner(
            "analysing", lambda: analyze_overlap(loaded, window_nvtx=window_nvtx, per_range=per_range)
        )
        if json_out is not None:
            write_output(json_out, render_overlap_json(report))
        render_overlap(report, stdout_console())
