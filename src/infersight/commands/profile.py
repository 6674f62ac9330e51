"""``infersight profile --nsys|--torch|--ncu -- CMD``: capture a trace with the right flags."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from infersight.errors import InputError
from infersight.render.sanitize import sanitize_text


def register(app: typer.Typer) -> None:
    """Add the ``profile`` command."""

    @app.command("profile", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def profile(
        ctx: typer.Context,
        nsys: Annotated[
            bool, typer.Option("--nsys", help="Nsight Systems: cuda,nvtx,osrt, graph nodes, sqlite.")
        ] = False,
        torch: Annotated[
            bool, typer.Option("--torch", help="Set the vLLM/SGLang torch-profiler dirs.")
        ] = False,
        ncu: Annotated[
            bool, typer.Option("--ncu", help="Nsight Compute on the focus kernels of a plan.")
        ] = False,
        output: Annotated[
            Path,
            typer.Option("-o", "--output", metavar="PATH", help="nsys: report base name; torch: directory."),
        ] = Path("infersight_profile"),
        plan: Annotated[
            Path | None, typer.Option("--plan", metavar="PLAN.json", help="ncu: an `ncu-plan --json` file.")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the command(s), run nothing.")
        ] = False,
        capture_range: Annotated[
            str | None,
            typer.Option(
                "--capture-range",
                metavar="cudaProfilerApi",
                help="nsys: capture only between cudaProfilerStart/Stop (engine profiler endpoints).",
            ),
        ] = None,
        delay: Annotated[
            float | None, typer.Option("--delay", metavar="S", help="nsys: start capturing after S seconds.")
        ] = None,
        duration: Annotated[
            float | None, typer.Option("--duration", metavar="S", help="nsys: capture for S seconds.")
        ] = None,
    ) -> None:
        """Run CMD (after --) under a profiler with the flags infersight's analyses need."""
        from infersight.agent.profiling import ncu_commands, nsys_command, run_capture, torch_command

        command = list(ctx.args)
        if sum((nsys, torch, ncu)) != 1:
            raise InputError(None, "choose exactly one of --nsys, --torch, --ncu")
        if not nsys and (capture_range or delay or duration):
            raise InputError(None, "--capture-range, --delay and --duration are nsys options: add --nsys")
        if nsys:
            captures = [
                nsys_command(
                    command,
                    output,
                    check_tool=not dry_run,
                    capture_range=capture_range,
                    delay_s=delay,
                    duration_s=duration,
                )
            ]
        elif torch:
            captures = [torch_command(command, output)]
        else:
            if plan is None:
                raise InputError(
                    None, "--ncu needs --plan PLAN.json (from `infersight ncu-plan TRACE --json PLAN.json`)"
                )
            captures = ncu_commands(_plan_commands(plan), command, check_tool=not dry_run)
        for capture in captures:
            print(sanitize_text(capture.shell()))
            if dry_run:
                continue
            if capture.tool == "torch":
                output.mkdir(parents=True, exist_ok=True)
            status = run_capture(capture)
            if status != 0:
                print(f"infersight: {capture.tool} exited {status}", file=sys.stderr)
                raise typer.Exit(status)
            print(f"produced: {capture.produces}", file=sys.stderr)


def _plan_commands(path: Path) -> list[str]:
    import orjson

    from infersight.safe_io import MAX_REPORT_BYTES, read_bounded_bytes

    raw = read_bounded_bytes(path, MAX_REPORT_BYTES, "ncu plan")
    try:
        data = orjson.loads(raw)
        return [str(k["command"]) for k in data["kernels"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise InputError(path, "not an ncu-plan JSON (expected kernels[].command)") from None
