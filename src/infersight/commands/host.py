"""``infersight host TRACE ...``: host-overhead verdicts (M1-M5), iterations, gap drill-down, advice."""

from __future__ import annotations

from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import JsonOpt, ThresholdsOpt, TracesArg, request_of


def register(app: typer.Typer) -> None:
    """Add the ``host`` command."""

    @app.command("host")
    def host(
        traces: TracesArg,
        host_prep_range: Annotated[
            str | None,
            typer.Option(
                "--host-prep-range",
                metavar="REGEX",
                help="Name (regex) of the host input-preparation ranges, e.g. _prepare_tp_inputs.",
            ),
        ] = None,
        thresholds: ThresholdsOpt = None,
        phase_regex: Annotated[
            list[str] | None,
            typer.Option(
                "--phase-regex",
                metavar="PHASE=REGEX",
                help="Range names that mark a phase, e.g. context=prefill_step (repeatable; tried first).",
            ),
        ] = None,
        json_out: JsonOpt = None,
    ) -> None:
        """Is host overhead the bottleneck? M1-M5 per aggregate / context / generation phase."""
        from infersight import api
        from infersight.render.host import render_host

        request = request_of(api.HostRequest, locals(), phase_regex=phase_regex or [])
        check_outputs([json_out] if json_out is not None else [], traces)
        report = with_spinner("reading and analysing host overhead", lambda: api.host(request))
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        render_host(report, stdout_console())
