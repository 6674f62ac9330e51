"""``infersight roofline``: per-operator FLOPs, bytes and roofline time for prefill and decode (§2)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, write_output
from infersight.errors import InputError
from infersight.validate import ensure_finite

if TYPE_CHECKING:
    from infersight.theory.run import TheoryRequest

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", metavar="NAME", help="A built-in model (e.g. llama-3-8b, mixtral-8x7b, deepseek-v3)."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="PATH", help="A HuggingFace config.json (instead of --model)."),
]
GpuOpt = Annotated[
    str | None,
    typer.Option("--gpu", metavar="NAME", help="GPU from the spec table (e.g. H100-SXM, A100-80GB)."),
]
PeakOpt = Annotated[
    float | None,
    typer.Option(
        "--peak-tflops", metavar="X", help="Dense matmul peak of the compute dtype, TFLOP/s (override)."
    ),
]
BandwidthOpt = Annotated[
    float | None, typer.Option("--bandwidth", metavar="GB/S", help="Memory bandwidth, GB/s (override).")
]
LinkOpt = Annotated[
    float | None,
    typer.Option(
        "--link-bandwidth",
        metavar="GB/S",
        help="Per-direction GPU-to-GPU bandwidth for TP all-reduces (default: the GPU's NVLink/PCIe figure).",
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch", metavar="B", min=1, help="Sequences per pass.")]
PromptOpt = Annotated[
    int, typer.Option("--prompt", metavar="S", min=1, help="Prompt tokens per sequence (prefill).")
]
ContextOpt = Annotated[
    int | None,
    typer.Option(
        "--context", metavar="L", min=1, help="KV-cache tokens per sequence at the decode step (default S)."
    ),
]
TpOpt = Annotated[int, typer.Option("--tp", metavar="N", min=1, help="Tensor-parallel degree.")]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--dtype", metavar="D", help="Compute dtype and weight width: fp32, tf32, fp16, bf16, fp8, int8."
    ),
]
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


OptionalBatchOpt = Annotated[
    int | None, typer.Option("--batch", metavar="B", min=1, help="Theory: sequences per pass (with --model).")
]
OptionalPromptOpt = Annotated[
    int | None, typer.Option("--prompt", metavar="S", min=1, help="Theory: prompt tokens per sequence.")
]
MeasuredTtftOpt = Annotated[
    float | None, typer.Option("--measured-ttft", metavar="MS", min=0.0, help="Measured TTFT, ms.")
]
MeasuredTpotOpt = Annotated[
    float | None, typer.Option("--measured-tpot", metavar="MS", min=0.0, help="Measured TPOT, ms.")
]
MeasuredTpsOpt = Annotated[
    float | None,
    typer.Option("--measured-tps", metavar="X", min=0.0, help="Measured decode tokens/s (whole batch)."),
]


def theory_request(
    *,
    model: str | None,
    config: Path | None,
    gpu: str | None,
    peak_tflops: float | None,
    bandwidth: float | None,
    batch: int | None,
    prompt: int | None,
    context: int | None,
    tp: int,
    dtype: str | None,
    measured_ttft: float | None,
    measured_tpot: float | None,
    measured_tps: float | None,
) -> TheoryRequest | None:
    """The theory part of ``analyze``: None without --model/--config; InputError when half-given."""
    from infersight.theory.inputs import TheoryOptions
    from infersight.theory.run import TheoryRequest

    if model is None and config is None:
        given = [
            flag
            for flag, value in (
                ("--gpu", gpu),
                ("--peak-tflops", peak_tflops),
                ("--bandwidth", bandwidth),
                ("--batch", batch),
                ("--prompt", prompt),
                ("--context", context),
                ("--dtype", dtype),
                ("--measured-ttft", measured_ttft),
                ("--measured-tpot", measured_tpot),
                ("--measured-tps", measured_tps),
            )
            if value is not None
        ]
        if given or tp != 1:
            raise InputError(None, f"{', '.join(given) or '--tp'} needs --model NAME or --config PATH")
        return None
    # without --batch/--prompt the scenario is read from the trace (infersight.theory.scenario_check)
    options = TheoryOptions(
        model=model,
        config=config,
        gpu=gpu,
        peak_tflops=peak_tflops,
        bandwidth_gb_per_s=bandwidth,
        dtype=dtype,
    )
    return TheoryRequest(
        options=options,
        batch=batch,
        prompt=prompt,
        context=context,
        tp=tp,
        measured_ttft_ms=measured_ttft,
        measured_tpot_ms=measured_tpot,
        measured_tps=measured_tps,
    )


def register(app: typer.Typer) -> None:
    """Add ``infersight roofline``."""

    @app.command("roofline")
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
        kappa: KappaOpt = 1.0,
        mem_efficiency: MemEffOpt = None,
        measured_ttft: Annotated[
            float | None, typer.Option("--measured-ttft", metavar="MS", min=0.0, help="Measured TTFT, ms.")
        ] = None,
        measured_tpot: Annotated[
            float | None, typer.Option("--measured-tpot", metavar="MS", min=0.0, help="Measured TPOT, ms.")
        ] = None,
        measured_tps: Annotated[
            float | None,
            typer.Option(
                "--measured-tps", metavar="X", min=0.0, help="Measured decode tokens/s (whole batch)."
            ),
        ] = None,
        retest_delta: DeltaOpt = 0.2,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Write the estimate as JSON to OUT.")
        ] = None,
        plot_out: Annotated[
            Path | None,
            typer.Option("--plot", metavar="OUT", help="Write a roofline plot (.png, .svg or .html)."),
        ] = None,
    ) -> None:
        """Per-operator FLOPs, bytes, intensity, bound and roofline time for prefill and decode."""
        from infersight.render.theory import estimate_sections, print_sections
        from infersight.theory.inputs import TheoryOptions
        from infersight.theory.plot import check_plot_path, render_roofline_plot
        from infersight.theory.run import theory_report

        if ops is not None:
            mixed = [
                flag
                for flag, value in (
                    ("--model", model),
                    ("--config", config),
                    ("--batch", batch),
                    ("--prompt", prompt),
                    ("--context", context),
                    ("--plot", plot_out),
                )
                if value is not None
            ]
            if mixed:
                raise InputError(None, f"--ops predicts the CSV's shapes: drop {', '.join(mixed)}")
            _ops_mode(ops, gpu, dtype, peak_tflops, bandwidth, link_bandwidth, ranks_per_node, json_out)
            return
        if batch is None or prompt is None:
            raise InputError(None, "roofline needs --batch B and --prompt S (or --ops OPS.csv)")
        outputs = [p for p in (json_out, plot_out) if p is not None]
        check_outputs(outputs, [config] if config is not None else [])
        if plot_out is not None:
            check_plot_path(plot_out)
        options = TheoryOptions(
            model=model,
            config=config,
            gpu=gpu,
            peak_tflops=peak_tflops,
            bandwidth_gb_per_s=bandwidth,
            link_bandwidth_gb_per_s=link_bandwidth,
            dtype=dtype,
            kappa=kappa,
            memory_efficiency=mem_efficiency,
        )
        report = theory_report(
            options,
            batch=batch,
            prompt=prompt,
            context=context,
            tp=tp,
            attention=attention,
            measured_ttft_ms=measured_ttft,
            measured_tpot_ms=measured_tpot,
            measured_tps=measured_tps,
            retest_delta=retest_delta,
        )
        ensure_finite(report.model_dump(), "roofline report")
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
