"""``infersight host TRACE ...``: host-overhead verdicts (M1-M5), iterations, gap drill-down, advice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output


def register(app: typer.Typer) -> None:
    """Add the ``host`` command."""

    @app.command("host")
    def host(
        traces: Annotated[
            list[Path],
            typer.Argument(
                help="Trace files (nsys .sqlite, Kineto .json[.gz]); several = ranks.", metavar="TRACE"
            ),
        ],
        host_prep_range: Annotated[
            str | None,
            typer.Option(
                "--host-prep-range",
                metavar="REGEX",
                help="Name (regex) of the host input-preparation ranges, e.g. _prepare_tp_inputs.",
            ),
        ] = None,
        thresholds: Annotated[
            Path | None,
            typer.Option(
                "--thresholds", metavar="FILE", help="TOML file overriding data/host_thresholds.toml."
            ),
        ] = None,
        phase_regex: Annotated[
            list[str] | None,
            typer.Option(
                "--phase-regex",
                metavar="PHASE=REGEX",
                help="Range names that mark a phase, e.g. context=prefill_step (repeatable; tried first).",
            ),
        ] = None,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON report.")
        ] = None,
    ) -> None:
        """Is host overhead the bottleneck? M1-M5 per aggregate / context / generation phase."""
        from infersight.host.config import compile_regex, load_config
        from infersight.host.detect import analyze_host, load_for_host
        from infersight.render.host import render_host

        if host_prep_range is not None:
            compile_regex(host_prep_range, "--host-prep-range")
        config = load_config(thresholds).with_phase_regex(phase_regex or [])
        outputs = [json_out] if json_out is not None else []
        check_outputs(outputs, traces)
        loaded = with_spinner("reading traces", lambda: load_for_host(traces))
        report = with_spinner(
            "analysing host overhead", lambda: analyze_host(loaded, config, host_prep_range)
        )
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        render_host(report, stdout_console())
