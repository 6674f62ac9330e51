"""``infersight roofline``: per-operator FLOPs, bytes and roofline time for prefill and decode (§2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, write_output
from infersight.commands._options import (
    BandwidthOpt,
    BatchOpt,
    ConfigOpt,
    ContextOpt,
    DtypeOpt,
    GpuOpt,
    LinkOpt,
    MeasuredTpotOpt,
    MeasuredTpsOpt,
    MeasuredTtftOpt,
    ModelOpt,
    PeakOpt,
    PromptOpt,
    TpOpt,
    request_of,
)

AttentionOpt = Annotated[
    str,
    typer.Option("--attention", metavar="FORM", help="flash (fused, default) or unfused (qk/softmax/sv)."),
]
KappaOpt = Annotated[
    float, typer.Option("--kappa", metavar="K", min=1.0, max=2.0, help="κ in T = max(F/P, B/B_eff)·κ.")
]
MemEffOpt = Annotated[
    float,
    typer.Option("--mem-efficiency", metavar="ETA", min=0.05, max=1.0, help="B_eff = bandwidth × ETA."),
]
DeltaOpt = Annotated[
    float,
    typer.Option(
        "--retest-delta", metavar="D", min=0.0, help="Flag measured vs theory beyond this fraction."
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``infersight roofline``."""

    @app.command("roofline")
    def roofline(
        batch: BatchOpt,
        prompt: PromptOpt,
        model: ModelOpt = None,
        config: ConfigOpt = None,
        gpu: GpuOpt = None,
        peak_tflops: PeakOpt = None,
        bandwidth: BandwidthOpt = None,
        link_bandwidth: LinkOpt = None,
        context: ContextOpt = None,
        tp: TpOpt = 1,
        dtype: DtypeOpt = None,
        attention: AttentionOpt = "flash",
        kappa: KappaOpt = 1.1,
        mem_efficiency: MemEffOpt = 0.85,
        measured_ttft: MeasuredTtftOpt = None,
        measured_tpot: MeasuredTpotOpt = None,
        measured_tps: MeasuredTpsOpt = None,
        retest_delta: DeltaOpt = 0.2,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Write the estimate as JSON to OUT.")
        ] = None,
        plot_out: Annotated[
            Path | None,
            typer.Option("--plot", metavar="OUT", help="Write a roofline plot (.png, .svg or .html)."),
        ] = None,
        trace: Annotated[
            list[Path] | None,
            typer.Option(
                "--trace", metavar="TRACE", help="Trace of the run: measured vs theory and the focus set."
            ),
        ] = None,
    ) -> None:
        """Per-operator FLOPs, bytes, intensity, bound and roofline time for prefill and decode."""
        from infersight import api
        from infersight.render.roofline_plot import check_plot_path, render_roofline_plot
        from infersight.render.theory import estimate_sections, print_sections

        outputs = [p for p in (json_out, plot_out) if p is not None]
        check_outputs(outputs, [*([config] if config is not None else []), *(trace or [])])
        if plot_out is not None:
            check_plot_path(plot_out)
        report = api.roofline(request_of(api.RooflineRequest, locals(), traces=trace or []))
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        if plot_out is not None:
            write_output(plot_out, render_roofline_plot(report.estimate, plot_out))
        print_sections(stdout_console(), estimate_sections(report.estimate), report.findings or None)
