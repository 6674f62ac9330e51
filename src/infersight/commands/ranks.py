"""``infersight ranks``: the multi-rank view of a directory of per-rank traces."""

from __future__ import annotations

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import JsonOpt, TracesArg, request_of


def register(app: typer.Typer) -> None:
    """Add the ``ranks`` command."""

    @app.command("ranks")
    def ranks(traces: TracesArg, json_out: JsonOpt = None) -> None:
        """Per-rank busy/idle/comm table, clock alignment, collective wait per rank, stragglers and
        MoE all-to-all imbalance (a directory of per-rank traces, or one multi-GPU nsys export)."""
        from infersight import api
        from infersight.render.overlap import render_overlap, render_overlap_json

        request = request_of(api.RanksRequest, locals())
        outputs = [json_out] if json_out is not None else []
        check_outputs(outputs, traces)
        report = with_spinner("reading and analysing", lambda: api.ranks(request))
        if json_out is not None:
            write_output(json_out, render_overlap_json(report))
        render_overlap(report, stdout_console(), command="ranks")
