"""``infersight layers TRACE``: forward passes, per-layer tables, layer types, compute flow, layer diff."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import (
    MODEL_OPTIONS,
    SCENARIO_OPTIONS,
    CpuOpsOpt,
    LinkOpt,
    request_of,
    with_options,
)
from infersight.ingest.formats import FORMATS_SHORT
from infersight.render.sanitize import json_for_terminal
from infersight.validate import MAX_LAYERS


class LayersFormat(StrEnum):
    """What ``infersight layers`` prints."""

    text = "text"
    compute_flow = "compute-flow"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add the ``layers`` command."""

    @app.command("layers")
    @with_options(MODEL_OPTIONS, SCENARIO_OPTIONS)
    def layers(
        trace: Annotated[Path, typer.Argument(help=f"One rank's trace: {FORMATS_SHORT}.", metavar="TRACE")],
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
        cpu_ops_as_kernels: CpuOpsOpt = False,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON.")
        ] = None,
        link_bandwidth: LinkOpt = None,
        phase: Annotated[
            str | None,
            typer.Option(
                "--phase",
                metavar="PHASE",
                help="Theory: prefill or decode for the selected pass (default: guessed from the passes).",
            ),
        ] = None,
        **options: Any,
    ) -> None:
        """Forward passes and layers found by an anchor kernel: per-layer and layer-type tables, flow."""
        from infersight import api
        from infersight.render.layers import render_compute_flow, render_layers

        request = request_of(api.LayersRequest, locals() | options)
        check_outputs([json_out] if json_out is not None else [], [trace])
        report = with_spinner("reading trace and segmenting layers", lambda: api.layers(request))
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        if output_format is LayersFormat.json:
            print(json_for_terminal(report.model_dump_json(indent=2)))
        elif output_format is LayersFormat.compute_flow:
            render_compute_flow(report, stdout_console())
        else:
            render_layers(report, stdout_console(), show_all_passes=show_all_passes)
