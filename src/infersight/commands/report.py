"""``infersight report TRACE... -o OUT.html``: the self-contained HTML report (methodology §8)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from infersight.commands import _options as opt
from infersight.commands._io import (
    Stages,
    check_outputs,
    input_size,
    read_analysis_report,
    write_output,
)
from infersight.commands._options import request_of
from infersight.errors import InputError
from infersight.ingest.formats import FORMATS_SHORT
from infersight.render.sanitize import sanitize_text


def register(app: typer.Typer) -> None:
    """Add the ``report`` command."""

    @app.command("report")
    @opt.with_options(opt.MODEL_OPTIONS, opt.SCENARIO_OPTIONS)
    def report(
        traces: Annotated[
            list[Path] | None,
            typer.Argument(metavar="TRACE", help=f"Trace files or directories: {FORMATS_SHORT}."),
        ] = None,
        output: Annotated[
            Path, typer.Option("-o", "--output", metavar="OUT.html", help="Where to write the HTML.")
        ] = Path("infersight-report.html"),
        from_report: Annotated[
            Path | None,
            typer.Option(
                "--from-report", metavar="REPORT.json", help="Render an analyze --json report (no timeline)."
            ),
        ] = None,
        window_nvtx: opt.WindowOpt = None,
        top: Annotated[int, typer.Option("--top", min=1, metavar="N", help="Kernels in the ranking.")] = 15,
        no_layers: Annotated[
            bool, typer.Option("--no-layers", help="Skip the per-layer segmentation.")
        ] = False,
        cpu_ops_as_kernels: opt.CpuOpsOpt = False,
        **options: Any,
    ) -> None:
        """Write one self-contained HTML report: timeline, ranking, roofline, per-layer bars, findings."""
        from infersight import api
        from infersight.render.html import render_html

        if from_report is not None:
            if traces:
                raise InputError(from_report, "give traces or --from-report, not both")
            check_outputs([output], [from_report])
            loaded_report = read_analysis_report(from_report)
            write_output(output, render_html(loaded_report, top=top).encode())
            print(sanitize_text(f"wrote {output}"), file=sys.stderr)
            return
        if not traces:
            raise InputError(None, "give at least one trace (or --from-report REPORT.json)")
        request = request_of(api.ReportRequest, locals() | options)
        api.check_window_regex(window_nvtx)
        api.theory_request(request)  # a half-given scenario fails before anything is read
        check_outputs([output], traces)
        stages = Stages(2)
        data = stages.run(
            f"reading and analysing {len(traces)} trace(s), {input_size(traces)}", lambda: api.report(request)
        )
        check_outputs([output], [Path(t) for t in data.traces])
        html = stages.run("rendering HTML", lambda: render_html(data.report, data.extras, top=top))
        write_output(output, html.encode())
        print(sanitize_text(f"wrote {output}"), file=sys.stderr)
