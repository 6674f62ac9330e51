"""``infersight diff BASELINE TARGET``: what changed per step between two traces of one workload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infersight.commands._io import check_outputs, stdout_console, with_spinner, write_output
from infersight.errors import InputError
from infersight.model import Trace


def register(app: typer.Typer) -> None:
    """Add the ``diff`` command."""

    @app.command("diff")
    def diff(
        baseline: Annotated[Path, typer.Argument(help="Baseline trace (one rank).", metavar="BASELINE")],
        target: Annotated[Path, typer.Argument(help="Target trace of the same workload.", metavar="TARGET")],
        labels: Annotated[
            str | None,
            typer.Option("--labels", metavar="A,B", help="Names of the two runs, e.g. before,after."),
        ] = None,
        thresholds: Annotated[
            Path | None,
            typer.Option(
                "--thresholds", metavar="FILE", help="TOML file overriding data/host_thresholds.toml."
            ),
        ] = None,
        json_out: Annotated[
            Path | None, typer.Option("--json", metavar="OUT", help="Also write the JSON report.")
        ] = None,
    ) -> None:
        """Per-step wall, operations, kernels, GPU time and CUDA API calls, ranked by |delta|."""
        from infersight.host.config import load_config
        from infersight.host.diff import diff_traces
        from infersight.render.host import render_diff

        names = _labels(labels)
        config = load_config(thresholds)
        outputs = [json_out] if json_out is not None else []
        check_outputs(outputs, [baseline, target])
        base = with_spinner("reading baseline", lambda: _one(baseline))
        tgt = with_spinner("reading target", lambda: _one(target))
        report = with_spinner("comparing", lambda: diff_traces(base, tgt, config, names))
        if json_out is not None:
            write_output(json_out, report.model_dump_json(indent=2).encode())
        render_diff(report, stdout_console())


def _labels(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise InputError(None, f"--labels {text!r}: give two names separated by a comma, e.g. before,after")
    return parts[0], parts[1]


def _one(path: Path) -> Trace:
    from infersight.host.detect import load_for_host

    traces = [t for t in load_for_host([path]) if not t.kernels.empty]
    if len(traces) != 1:
        raise InputError(path, f"diff needs one rank with GPU kernels per side, found {len(traces)}")
    return traces[0]
