"""``infersight ncu`` (kernel deep dive) and ``infersight ncu-plan`` (the ncu commands for the focus set)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands._options import (
    MODEL_OPTIONS,
    SCENARIO_OPTIONS,
    ConfigOpt,
    DtypeOpt,
    ModelOpt,
    request_of,
    with_options,
)
from infersight.render.sanitize import sanitize_text


def register(app: typer.Typer) -> None:
    """Add the ``ncu`` and ``ncu-plan`` commands."""

    @app.command("ncu")
    @with_options(SCENARIO_OPTIONS)
    def ncu(
        exports: Annotated[
            list[Path],
            typer.Argument(
                help="Nsight Compute exports: `ncu --csv --page raw` or `--page details` CSV, or .ncu-rep "
                "(needs ncu on PATH or the ncu-report wheel).",
                show_default=False,
                metavar="NCU_FILE",
            ),
        ],
        trace: Annotated[
            list[Path] | None,
            typer.Option(
                "--trace",
                metavar="TRACE",
                help="nsys/Kineto trace of the same run: kernel time shares, launch counts, NCCL share.",
            ),
        ] = None,
        gpu: Annotated[
            str | None,
            typer.Option(
                "--gpu",
                metavar="NAME",
                help="GPU for E_roof and waves per SM; overrides the GPU named from the export's figures.",
            ),
        ] = None,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Also write JSON to OUT.")
        ] = None,
        md_out: Annotated[
            Path | None, typer.Option("--md", metavar="OUT", help="Also write Markdown to OUT.")
        ] = None,
        html_out: Annotated[
            Path | None,
            typer.Option("--html", metavar="OUT", help="Also write a standalone HTML report to OUT."),
        ] = None,
        plot: Annotated[
            Path | None,
            typer.Option(
                "--plot",
                metavar="OUT",
                help="Write the roofline plot (.png, .svg, .html): measured kernels, plus the theory "
                "operators with --model/--config.",
            ),
        ] = None,
        model: ModelOpt = None,
        config: ConfigOpt = None,
        dtype: DtypeOpt = None,
        **options: Any,
    ) -> None:
        """Analyse Nsight Compute counters: roofline points, bottleneck rules, advice.

        With --model/--config and --batch/--prompt the theory engine's operators for that scenario
        (prefill and decode) are added to the report and drawn on the same roofline as the kernels.
        """
        from infersight import api
        from infersight.render.ncu import render_ncu_json, render_ncu_markdown, render_ncu_terminal

        request = request_of(api.NcuRequest, locals() | options, traces=trace or [])
        api.require_scenario(request)  # a half-given scenario fails before anything is read
        outputs = [p for p in (json_out, md_out, html_out, plot) if p is not None]
        if plot is not None:
            from infersight.render.roofline_plot import check_plot_path

            check_plot_path(plot)
        check_outputs(outputs, [*exports, *(trace or []), *([config] if config else [])])
        result = with_spinner("reading and analysing ncu exports", lambda: api.ncu(request))
        report = result.report
        if json_out is not None:
            write_output(json_out, render_ncu_json(report).encode())
        if md_out is not None:
            write_output(md_out, render_ncu_markdown(report).encode())
        if html_out is not None:
            from infersight.render.ncu_html import render_ncu_html

            write_output(html_out, render_ncu_html(report).encode())
        if plot is not None:
            from infersight.render.ncu import render_ncu_roofline_plot

            write_output(plot, render_ncu_roofline_plot(report, plot, result.estimate))
        render_ncu_terminal(report, stdout_console())

    @app.command("ncu-plan")
    @with_options(MODEL_OPTIONS, SCENARIO_OPTIONS)
    def ncu_plan(
        traces: Annotated[
            list[Path],
            typer.Argument(
                help="nsys/Kineto trace(s) of the run to profile.", show_default=False, metavar="TRACE"
            ),
        ],
        top: Annotated[
            int, typer.Option("--top", metavar="K", min=1, help="Focus-set size (Top-K by GPU time).")
        ] = 10,
        launch_count: Annotated[
            int,
            typer.Option(
                "--launch-count", metavar="N", min=1, help="Steady-state launches to profile per kernel."
            ),
        ] = 5,
        app_command: Annotated[
            str,
            typer.Option("--app", metavar="CMD", help="Your inference command, appended to each ncu line."),
        ] = "<your inference command>",
        output_prefix: Annotated[
            str, typer.Option("--output-prefix", metavar="PREFIX", help="CSV files are PREFIX_01.csv, ...")
        ] = "ncu_focus",
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Also write the plan as JSON.")
        ] = None,
        **options: Any,
    ) -> None:
        """Print the exact ncu command lines that profile the trace's focus kernels.

        With --model/--config and --batch/--prompt the focus set is TopK(time) ∪ {E_roof < 0.3} from the
        theory roofline (methodology §3); without them, the Top-K kernels by GPU time.
        """
        from infersight import api
        from infersight.render.ncu import render_plan_text

        request = request_of(api.NcuPlanRequest, locals() | options, app=app_command)
        check_outputs([json_out] if json_out else [], traces)
        api.require_scenario(request)
        plan = with_spinner("reading and analysing traces", lambda: api.ncu_plan(request))
        if json_out is not None:
            write_output(json_out, (plan.model_dump_json(indent=2) + "\n").encode())
        # plain text: commands must stay copy-pasteable; kernel names in them are sanitised
        typer.echo(sanitize_text(render_plan_text(plan)), nl=False)
