"""``infersight diff BASELINE TARGET``: what changed per step between two traces of one workload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import JsonOpt, ThresholdsOpt, request_of


def register(app: typer.Typer) -> None:
    """Add the ``diff`` command."""

    @app.command("diff")
    def diff(
        baseline: Annotated[Path, typer.Argument(help="Baseline trace (one rank).", metavar="BASELINE")],
        target: Annotated[Path, typer.Argument(help="Target trace of the same workload.", metavar="TARGET")],
        labels: Annotated[
            str | None,
            typer.Option("--labels", metavar="A,B", help="Names of the two runs, e.g. before,after."),
        ] = None,
        thresholds: ThresholdsOpt = None,
        json_out: JsonOpt = None,
    ) -> None:
        """Per-step wall, operations, kernels, GPU time and CUDA API calls, ranked by |delta|."""
        from infersight import api
        from infersight.render.host import render_diff

        request = request_of(api.DiffRequest, locals())
        check_outputs([json_out] if json_out is not None else [], [baseline, target])
        report = with_spinner("reading and comparing", lambda: api.diff(request))
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        render_diff(report, stdout_console())
