"""``infersight ncu`` (kernel deep dive) and ``infersight ncu-plan`` (the ncu commands for the focus set)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.commands.roofline import (
    ConfigOpt,
    ContextOpt,
    DtypeOpt,
    GpuOpt,
    ModelOpt,
    OptionalBatchOpt,
    OptionalPromptOpt,
    TpOpt,
)
from infersight.errors import InputError
from infersight.render.sanitize import sanitize_text
from infersight.validate import ensure_finite


def register(app: typer.Typer) -> None:
    """Add the ``ncu`` and ``ncu-plan`` commands."""

    @app.command("ncu")
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
        batch: OptionalBatchOpt = None,
        prompt: OptionalPromptOpt = None,
        context: ContextOpt = None,
        tp: TpOpt = 1,
        dtype: DtypeOpt = None,
    ) -> None:
        """Analyse Nsight Compute counters: roofline points, bottleneck rules, advice.

        With --model/--config and --batch/--prompt the theory engine's operators for that scenario
        (prefill and decode) are added to the report and drawn on the same roofline as the kernels.
        """
        from infersight import api
        from infersight.ncu.analysis import analyze_ncu
        from infersight.ncu.reader import read_ncu
        from infersight.render.ncu import render_ncu_json, render_ncu_markdown, render_ncu_terminal

        with_theory = model is not None or config is not None
        if with_theory and (batch is None or prompt is None):
            raise InputError(None, "--model/--config needs the scenario: --batch B and --prompt S")
        outputs = [p for p in (json_out, md_out, html_out, plot) if p is not None]
        if plot is not None:
            from infersight.theory.plot import check_plot_path

            check_plot_path(plot)
        check_outputs(outputs, [*exports, *(trace or []), *([config] if config else [])])
        loaded = with_spinner("reading ncu exports", lambda: [read_ncu(path) for path in exports])
        from infersight.ncu.trace_join import launch_configs

        traces = with_spinner("reading traces", lambda: api.load(trace)) if trace else None
        trace_report = (
            with_spinner("analysing trace", lambda: api.report_from_traces(traces)) if traces else None
        )
        report = analyze_ncu(
            loaded, gpu=gpu, trace=trace_report, trace_configs=launch_configs(traces) if traces else None
        )
        estimate = None
        if with_theory and batch is not None and prompt is not None:
            from infersight.ncu.theory_overlay import theory_overlay
            from infersight.theory.inputs import TheoryOptions
            from infersight.theory.run import theory_report

            gpu_key = report.gpu.key if report.gpu is not None and report.gpu.key else report.gpu_name
            options = TheoryOptions(model=model, config=config, gpu=gpu_key, dtype=dtype)
            estimate = theory_report(options, batch=batch, prompt=prompt, context=context, tp=tp).estimate
            report.theory = theory_overlay(estimate)
        ensure_finite(report.model_dump(), "ncu report")
        if json_out is not None:
            write_output(json_out, render_ncu_json(report).encode())
        if md_out is not None:
            write_output(md_out, render_ncu_markdown(report).encode())
        if html_out is not None:
            from infersight.render.ncu_html import render_ncu_html

            write_output(html_out, render_ncu_html(report).encode())
        if plot is not None:
            from infersight.render.ncu import render_ncu_roofline_plot

            write_output(plot, render_ncu_roofline_plot(report, plot, estimate))
        render_ncu_terminal(report, stdout_console())

    @app.command("ncu-plan")
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
        model: ModelOpt = None,
        config: ConfigOpt = None,
        gpu: GpuOpt = None,
        batch: OptionalBatchOpt = None,
        prompt: OptionalPromptOpt = None,
        context: ContextOpt = None,
        tp: TpOpt = 1,
        dtype: DtypeOpt = None,
    ) -> None:
        """Print the exact ncu command lines that profile the trace's focus kernels.

        With --model/--config and --batch/--prompt the focus set is TopK(time) ∪ {E_roof < 0.3} from the
        theory roofline (methodology §3); without them, the Top-K kernels by GPU time.
        """
        import pandas as pd

        from infersight import api
        from infersight.ncu.plan import build_plan
        from infersight.render.ncu import render_plan_text

        check_outputs([json_out] if json_out else [], traces)
        with_theory = model is not None or config is not None
        if with_theory and (batch is None or prompt is None):
            raise InputError(None, "--model/--config needs the scenario: --batch B and --prompt S")
        loaded = with_spinner("reading traces", lambda: api.load(traces))
        report = with_spinner("analysing", lambda: api.report_from_traces(loaded))
        if not report.profile.kernels:
            raise InputError(traces[0], "no GPU kernels in the trace: nothing to profile")
        focus = None
        if with_theory and batch is not None and prompt is not None:
            from infersight.theory.inputs import TheoryOptions
            from infersight.theory.run import theory_report

            options = TheoryOptions(model=model, config=config, gpu=gpu, dtype=dtype)
            theory = theory_report(
                options, batch=batch, prompt=prompt, context=context, tp=tp, traces=loaded, top_k=top
            )
            focus = theory.focus
        names = sorted({str(name) for t in loaded for name in pd.unique(t.kernels["name"].astype(str))})
        plan = build_plan(
            report,
            names,
            top_k=top,
            launch_count=launch_count,
            output_prefix=output_prefix,
            app=app_command,
            focus=focus,
        )
        if json_out is not None:
            write_output(json_out, (plan.model_dump_json(indent=2) + "\n").encode())
        # plain text: commands must stay copy-pasteable; kernel names in them are sanitised
        typer.echo(sanitize_text(render_plan_text(plan)), nl=False)
