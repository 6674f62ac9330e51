"""``infersight layers TRACE``: forward passes, per-layer tables, layer types, compute flow, layer diff."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands.roofline import (
    BandwidthOpt,
    ConfigOpt,
    ContextOpt,
    DtypeOpt,
    GpuOpt,
    LinkOpt,
    ModelOpt,
    OptionalBatchOpt,
    OptionalPromptOpt,
    PeakOpt,
    TpOpt,
)
from infersight.errors import InputError
from infersight.render.sanitize import json_for_terminal
from infersight.validate import MAX_LAYERS

if TYPE_CHECKING:
    from infersight.layers.theory import LayerTheoryRequest
    from infersight.theory.inputs import TheoryOptions
    from infersight.theory.model_config import ModelConfig


class LayersFormat(StrEnum):
    """What ``infersight layers`` prints."""

    text = "text"
    compute_flow = "compute-flow"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add the ``layers`` command."""

    @app.command("layers")
    def layers(
        trace: Annotated[
            Path, typer.Argument(help="One trace (Kineto .json[.gz] or nsys .sqlite).", metavar="TRACE")
        ],
        model: ModelOpt = None,
        config: ConfigOpt = None,
        num_layers: Annotated[
            int | None,
            typer.Option(
                "--num-layers",
                "--layers",
                min=1,
                max=MAX_LAYERS,
                metavar="N",
                help="Layers per forward pass when no config is at hand (else found from the trace).",
            ),
        ] = None,
        profile: Annotated[
            str | None,
            typer.Option("--profile", metavar="NAME", help="Model profile from data/model_profiles.toml."),
        ] = None,
        anchor_kernel: Annotated[
            str | None,
            typer.Option(
                "--anchor-kernel",
                metavar="REGEX",
                help="Kernel (regex) that runs once per layer, e.g. the input norm.",
            ),
        ] = None,
        show_all_passes: Annotated[
            bool, typer.Option("--show-all-passes", help="List every forward pass.")
        ] = False,
        fwd_pass: Annotated[
            int | None,
            typer.Option(
                "--fwd-pass", min=0, metavar="N", help="Pass to tabulate (default: first steady-state)."
            ),
        ] = None,
        layer: Annotated[
            int | None, typer.Option("--layer", min=0, metavar="I", help="Layer for the compute flow / diff.")
        ] = None,
        compare_layer: Annotated[
            int | None,
            typer.Option("--compare-layer", min=0, metavar="J", help="Diff --layer against this layer."),
        ] = None,
        output_format: Annotated[
            LayersFormat, typer.Option("--format", help="text, compute-flow or json.")
        ] = (LayersFormat.text),
        device: Annotated[
            int | None,
            typer.Option("--device", metavar="D", help="GPU (default: the one with the most kernels)."),
        ] = None,
        cpu_ops_as_kernels: Annotated[
            bool,
            typer.Option(
                "--cpu-ops-as-kernels",
                help="CPU-only PyTorch capture: dominant CPU operators stand in for kernels.",
            ),
        ] = False,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON.")
        ] = None,
        batch: OptionalBatchOpt = None,
        prompt: OptionalPromptOpt = None,
        context: ContextOpt = None,
        tp: TpOpt = 1,
        gpu: GpuOpt = None,
        dtype: DtypeOpt = None,
        peak_tflops: PeakOpt = None,
        bandwidth: BandwidthOpt = None,
        link_bandwidth: LinkOpt = None,
        phase: Annotated[
            str | None,
            typer.Option(
                "--phase",
                metavar="PHASE",
                help="Theory: prefill or decode for the selected pass (default: guessed from the passes).",
            ),
        ] = None,
    ) -> None:
        """Forward passes and layers found by an anchor kernel: per-layer and layer-type tables, flow."""
        from infersight import api
        from infersight.layers.analysis import analyze_layers
        from infersight.layers.profiles import check_regex
        from infersight.render.layers import render_compute_flow, render_layers
        from infersight.theory.inputs import TheoryOptions

        if model is not None and config is not None:
            raise InputError(None, "give --model or --config, not both")
        if anchor_kernel is not None:
            check_regex(anchor_kernel, "--anchor-kernel")
        options = TheoryOptions(
            model=model,
            config=config,
            gpu=gpu,
            dtype=dtype,
            peak_tflops=peak_tflops,
            bandwidth_gb_per_s=bandwidth,
            link_bandwidth_gb_per_s=link_bandwidth,
        )
        theory = _theory_request(options, batch, prompt, context, tp, phase)
        model_config = _model_config(options)
        check_outputs([json_out] if json_out is not None else [], [trace])
        loaded = with_spinner(
            "reading trace", lambda: api.load([trace], cpu_ops_as_kernels=cpu_ops_as_kernels)
        )
        if len(loaded) != 1:
            raise InputError(trace, f"holds {len(loaded)} ranks; give one rank's file")
        report = with_spinner(
            "segmenting layers",
            lambda: analyze_layers(
                loaded[0],
                config=model_config,
                num_layers=num_layers,
                profile=profile,
                anchor_kernel=anchor_kernel,
                device=device,
                fwd_pass=fwd_pass,
                layer=layer,
                compare_layer=compare_layer,
                theory=theory,
            ),
        )
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        if output_format is LayersFormat.json:
            print(json_for_terminal(report.model_dump_json(indent=2)))
        elif output_format is LayersFormat.compute_flow:
            render_compute_flow(report, stdout_console())
        else:
            render_layers(report, stdout_console(), show_all_passes=show_all_passes)


def _model_config(options: TheoryOptions) -> ModelConfig | None:
    """The model of --model/--config (with --dtype applied), None without either."""
    from infersight.theory.inputs import load_model

    if options.model is None and options.config is None:
        return None
    return load_model(options)


def _theory_request(
    options: TheoryOptions,
    batch: int | None,
    prompt: int | None,
    context: int | None,
    tp: int,
    phase: str | None,
) -> LayerTheoryRequest | None:
    """The per-layer theory request: None without --batch; InputError for options that cannot apply."""
    from infersight.layers.theory import LayerTheoryRequest, check_request_inputs
    from infersight.theory.operators import PHASES

    check_request_inputs(
        options.model is not None or options.config is not None,
        batch,
        {
            "--prompt": prompt,
            "--context": context,
            "--tp": tp if tp != 1 else None,
            "--gpu": options.gpu,
            "--dtype": options.dtype,
            "--peak-tflops": options.peak_tflops,
            "--bandwidth": options.bandwidth_gb_per_s,
            "--link-bandwidth": options.link_bandwidth_gb_per_s,
            "--phase": phase,
        },
    )
    if batch is None:
        return None
    if phase is not None and phase not in PHASES:
        raise InputError(None, f"--phase {phase!r}: expected prefill or decode")
    return LayerTheoryRequest(
        options=options,
        batch=batch,
        prompt=prompt,
        context=context,
        tp=tp,
        phase=phase,
    )
