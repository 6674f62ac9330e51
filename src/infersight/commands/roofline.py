"""``infersight roofline``: per-operator FLOPs, bytes and roofline time for prefill and decode (§2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from infersight.commands._io import check_outputs, stdout_console, write_output
from infersight.commands._options import (
    MEASURED_OPTIONS,
    MODEL_OPTIONS,
    ContextOpt,
    LinkOpt,
    TpOpt,
    request_of,
    with_options,
)
from infersight.errors import InputError

AttentionOpt = Annotated[
    str,
    typer.Option("--attention", metavar="FORM", help="flash (fused, default) or unfused (qk/softmax/sv)."),
]
KappaOpt = Annotated[
    float,
    typer.Option(
        "--kappa", metavar="K", min=1.0, max=2.0, help="Extra margin: T_theory = T_model·κ (default 1)."
    ),
]
MemEffOpt = Annotated[
    float | None,
    typer.Option(
        "--mem-efficiency",
        metavar="ETA",
        min=0.05,
        max=1.0,
        help="B_eff = bandwidth × ETA (default: the GPU generation's calibrated figure).",
    ),
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
    @with_options(MODEL_OPTIONS, MEASURED_OPTIONS)
    def roofline(
        batch: Annotated[
            int | None, typer.Option("--batch", metavar="B", min=1, help="Sequences per pass.")
        ] = None,
        prompt: Annotated[
            int | None,
            typer.Option("--prompt", metavar="S", min=1, help="Prompt tokens per sequence (prefill)."),
        ] = None,
        ops: Annotated[
            Path | None,
            typer.Option(
                "--ops",
                metavar="OPS.csv",
                help="Predict each row of a CSV (id,op,m,n,k,bytes,ranks; op gemm or allreduce) "
                "instead of a model; needs --gpu and --dtype.",
            ),
        ] = None,
        ranks_per_node: Annotated[
            int,
            typer.Option(
                "--ranks-per-node",
                metavar="N",
                min=1,
                help="With --ops: all-reduces over more ranks cross nodes.",
            ),
        ] = 8,
        link_bandwidth: LinkOpt = None,
        context: ContextOpt = None,
        tp: TpOpt = 1,
        attention: AttentionOpt = "flash",
        kappa: KappaOpt = 1.0,
        mem_efficiency: MemEffOpt = None,
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
        **options: Any,
    ) -> None:
        """Per-operator FLOPs, bytes, intensity, bound and roofline time for prefill and decode."""
        from infersight import api
        from infersight.render.roofline_plot import check_plot_path, render_roofline_plot
        from infersight.render.theory import estimate_sections, print_sections

        if ops is not None:
            mixed = [
                flag
                for flag, value in (
                    ("--model", options["model"]),
                    ("--config", options["config"]),
                    ("--batch", batch),
                    ("--prompt", prompt),
                    ("--context", context),
                    ("--plot", plot_out),
                )
                if value is not None
            ]
            if mixed:
                raise InputError(None, f"--ops predicts the CSV's shapes: drop {', '.join(mixed)}")
            theory = {k: options[k] for k in ("gpu", "dtype", "peak_tflops", "bandwidth")}
            _ops_mode(
                ops, **theory, link_bandwidth=link_bandwidth, ranks_per_node=ranks_per_node, json_out=json_out
            )
            return
        if batch is None or prompt is None:
            raise InputError(None, "roofline needs --batch B and --prompt S (or --ops OPS.csv)")
        outputs = [p for p in (json_out, plot_out) if p is not None]
        config = options["config"]
        check_outputs(outputs, [*([config] if config is not None else []), *(trace or [])])
        if plot_out is not None:
            check_plot_path(plot_out)
        report = api.roofline(request_of(api.RooflineRequest, locals() | options, traces=trace or []))
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        if plot_out is not None:
            write_output(plot_out, render_roofline_plot(report.estimate, plot_out))
        print_sections(stdout_console(), estimate_sections(report.estimate), report.findings or None)


def _ops_mode(
    ops: Path,
    gpu: str | None,
    dtype: str | None,
    peak_tflops: float | None,
    bandwidth: float | None,
    link_bandwidth: float | None,
    ranks_per_node: int,
    json_out: Path | None,
) -> None:
    """``roofline --ops``: predict every row, print the table, write the JSON."""
    from infersight import api
    from infersight.render.theory import ops_sections, print_sections

    if dtype is None:
        raise InputError(None, "--ops needs --dtype (the GEMM element type: fp16, bf16, fp8, ...)")
    check_outputs([json_out] if json_out is not None else [], [ops])
    result = api.predict_ops(
        ops,
        gpu=gpu,
        dtype=dtype,
        peak_tflops=peak_tflops,
        bandwidth_gb_per_s=bandwidth,
        link_bandwidth_gb_per_s=link_bandwidth,
        ranks_per_node=ranks_per_node,
    )
    if json_out is not None:
        write_output(json_out, result.model_dump_json(indent=2).encode())
    print_sections(stdout_console(), ops_sections(result))
