"""``infersight overlap``: copy/compute and communication/computation overlap of traces."""

from __future__ import annotations

from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import JsonOpt, TracesArg, WindowOpt, request_of


def register(app: typer.Typer) -> None:
    """Add the ``overlap`` command."""

    @app.command("overlap")
    def overlap(
        traces: TracesArg,
        window_nvtx: WindowOpt = None,
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
        from infersight.render.overlap import render_overlap, render_overlap_json

        request = request_of(api.OverlapRequest, locals())
        outputs = [json_out] if json_out is not None else []
        check_outputs(outputs, traces)
        report = with_spinner("reading and analysing", lambda: api.overlap(request))
        if json_out is not None:
            write_output(json_out, render_overlap_json(report))
        render_overlap(report, stdout_console())
