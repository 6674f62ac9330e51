"""``infersight report TRACE... -o OUT.html``: the self-contained HTML report (methodology §8)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from infersight.commands import roofline as theory_cli
from infersight.commands._io import (
    Stages,
    check_outputs,
    input_size,
    read_analysis_report,
    write_output,
)
from infersight.errors import InputError
from infersight.render.sanitize import sanitize_text


def register(app: typer.Typer) -> None:
    """Add the ``report`` command."""

    @app.command("report")
    def report(
        traces: Annotated[
            list[Path] | None,
            typer.Argument(
                metavar="TRACE", help="Trace files (nsys .sqlite, Kineto .json[.gz]) or directories."
            ),
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
        window_nvtx: Annotated[
            str | None,
            typer.Option("--window-nvtx", metavar="REGEX", help="Cut the window to matching NVTX ranges."),
        ] = None,
        top: Annotated[int, typer.Option("--top", min=1, metavar="N", help="Kernels in the ranking.")] = 15,
        no_layers: Annotated[
            bool, typer.Option("--no-layers", help="Skip the per-layer segmentation.")
        ] = False,
        cpu_ops_as_kernels: Annotated[
            bool,
            typer.Option(
                "--cpu-ops-as-kernels", help="CPU-only captures: dominant CPU ops stand in for kernels."
            ),
        ] = False,
        model: theory_cli.ModelOpt = None,
        config: theory_cli.ConfigOpt = None,
        gpu: theory_cli.GpuOpt = None,
        peak_tflops: theory_cli.PeakOpt = None,
        bandwidth: theory_cli.BandwidthOpt = None,
        batch: theory_cli.OptionalBatchOpt = None,
        prompt: theory_cli.OptionalPromptOpt = None,
        context: theory_cli.ContextOpt = None,
        tp: theory_cli.TpOpt = 1,
        dtype: theory_cli.DtypeOpt = None,
    ) -> None:
        """Write one self-contained HTML report: timeline, ranking, roofline, per-layer bars, findings."""
        from infersight import api
        from infersight.agent.html_data import html_extras
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
        api.check_window_regex(window_nvtx)
        theory = theory_cli.theory_request(
            model=model,
            config=config,
            gpu=gpu,
            peak_tflops=peak_tflops,
            bandwidth=bandwidth,
            batch=batch,
            prompt=prompt,
            context=context,
            tp=tp,
            dtype=dtype,
            measured_ttft=None,
            measured_tpot=None,
            measured_tps=None,
        )
        check_outputs([output], traces)
        stages = Stages(4)
        loaded = stages.run(
            f"reading {len(traces)} trace(s), {input_size(traces)}",
            lambda: api.load(traces, cpu_ops_as_kernels=cpu_ops_as_kernels),
        )
        check_outputs([output], [Path(t.source) for t in loaded])
        analysed = stages.run(
            "analysing", lambda: api.report_from_traces(loaded, window_nvtx=window_nvtx, theory=theory)
        )
        extras = stages.run(
            "timeline and chart data",
            lambda: html_extras(loaded, window_nvtx=window_nvtx, with_layers=not no_layers),
        )
        html = stages.run("rendering HTML", lambda: render_html(analysed, extras, top=top))
        write_output(output, html.encode())
        print(sanitize_text(f"wrote {output}"), file=sys.stderr)
