"""``infersight profile --nsys|--torch|--ncu -- CMD``: capture a trace with the right flags.

A thin adapter over :func:`infersight.api.profile`: the options become a
:class:`~infersight.api.ProfileRequest`, the API picks and runs the capture(s), and this module
prints each command line before it runs and what it produced after.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infersight.errors import InputError
from infersight.render.sanitize import sanitize_text

if TYPE_CHECKING:
    from infersight.advisor.profiling import CaptureCommand


class _PrintCaptures:
    """The command line of each capture on stdout (copy-pasteable), then what it produced or how it failed."""

    def starting(self, capture: CaptureCommand) -> None:
        print(sanitize_text(capture.shell()))

    def finished(self, capture: CaptureCommand, status: int) -> None:
        if status != 0:
            print(f"infersight: {capture.tool} exited {status}", file=sys.stderr)
        else:
            print(sanitize_text(f"produced: {capture.produces}"), file=sys.stderr)


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
        from infersight import api
        from infersight.commands._options import request_of

        chosen = [name for name, given in (("nsys", nsys), ("torch", torch), ("ncu", ncu)) if given]
        if len(chosen) != 1:
            raise InputError(None, "choose exactly one of --nsys, --torch, --ncu")
        request = request_of(api.ProfileRequest, locals(), tool=chosen[0], command=list(ctx.args))
        result = api.profile(request, progress=_PrintCaptures())
        if result.exit_status != 0:
            raise typer.Exit(result.exit_status)
