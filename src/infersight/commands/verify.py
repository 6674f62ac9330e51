"""``infersight verify BASE TARGET`` (or ``--baseline A --candidate B``): A/B with a confidence interval.

Exit status: 0 when the comparison concluded (improved, regressed or no change), 3 when it
refused to conclude (samples too noisy or too few), 2 for bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from infersight.commands import _options as opt
from infersight.commands import kb as kb_cli
from infersight.commands._io import check_outputs, stdout_console, write_output
from infersight.commands._options import request_of
from infersight.errors import InputError
from infersight.render.sanitize import sanitize_text

EXIT_INCONCLUSIVE = 3


# Sane bounds of the options that set how long verify runs (a typo such as --repeats 5000000 would
# otherwise run for days): documented in docs/methodology.md with the other input bounds.
MAX_RUNS = 1000
MAX_TIMEOUT_S = 86_400.0


def register(app: typer.Typer) -> None:
    """Add the ``verify`` command."""

    @app.command("verify")
    @opt.with_options(opt.FINGERPRINT_OPTIONS)  # all of the fingerprint, as `kb record` takes it
    def verify(
        base: Annotated[
            str | None,
            typer.Argument(metavar="BASE", help="Baseline (as --baseline), like `diff BASE TARGET`."),
        ] = None,
        target: Annotated[
            str | None, typer.Argument(metavar="TARGET", help="Candidate (as --candidate).")
        ] = None,
        baseline_opt: Annotated[
            str | None,
            typer.Option("--baseline", metavar="CMD_OR_TRACES", help="Command line, or trace file(s)."),
        ] = None,
        candidate_opt: Annotated[
            str | None,
            typer.Option("--candidate", metavar="CMD_OR_TRACES", help="Command line, or trace file(s)."),
        ] = None,
        repeats: Annotated[
            int, typer.Option("--repeats", min=1, max=MAX_RUNS, help="Measured runs per side (commands).")
        ] = 5,
        warmup: Annotated[
            int,
            typer.Option(
                "--warmup", min=0, max=MAX_RUNS, help="Discarded runs per side (commands) / steps (traces)."
            ),
        ] = 1,
        timeout: Annotated[
            float | None,
            typer.Option("--timeout", min=0.001, max=MAX_TIMEOUT_S, metavar="S", help="Per-run time limit."),
        ] = None,
        recommendation: Annotated[
            str | None,
            typer.Option("--recommendation", metavar="TYPE", help="Finding type the change implements."),
        ] = None,
        env_report: Annotated[
            Path | None,
            typer.Option("--env", metavar="REPORT.json", help="Environment fingerprint from a report."),
        ] = None,
        kb: opt.KbOpt = None,
        no_kb: Annotated[
            bool, typer.Option("--no-kb", help="Do not read or write the knowledge base.")
        ] = False,
        json_out: opt.JsonOpt = None,
        allow_env_change: Annotated[
            bool,
            typer.Option(
                "--allow-env-change",
                help="Compare sides from different environments (GPU, count, ...): marked, never stored.",
            ),
        ] = False,
        **options: Any,
    ) -> None:
        """Run or read baseline and candidate: median/std, gain with a 95% CI; conclusive results go to KB."""
        from infersight import api

        baseline, candidate = _sides(base, target, baseline_opt, candidate_opt)
        request = request_of(
            api.VerifyRequest,
            locals() | options,
            baseline=baseline,
            candidate=candidate,
            timeout_s=timeout,
            kb=None if no_kb else kb,
            use_kb=not no_kb,
        )
        if json_out is not None:
            sides = [t for side in (baseline, candidate) for t in _trace_tokens(side)]
            check_outputs([json_out], [*sides, None if no_kb else kb_cli.kb_file(kb)])
        outcome = api.verify(
            request, progress=lambda message: print(sanitize_text(f"verify: {message}"), file=sys.stderr)
        )
        if json_out is not None:
            write_output(json_out, orjson.dumps(outcome.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        console = stdout_console()
        r = outcome.result
        if not r.comparable:
            console.print(
                "WARNING: NOT COMPARABLE — baseline and candidate ran in different environments "
                f"({'; '.join(r.environment_differences)}); the gain below is not the change's",
                style="bold red",
                highlight=False,
                markup=False,
            )
        for name, side in (("baseline", r.baseline), ("candidate", r.candidate)):
            console.print(
                f"{name:9}: median {side.median_s * 1e3:.3f} ms, std {side.std_s * 1e3:.3f} ms, "
                f"CV {side.cv:.1%}, n={len(side.samples_s)}"
                + (f"  ({side.sample_note})" if side.sample_note else ""),
                highlight=False,
            )
        console.print(
            f"gain     : {r.gain:+.1%} of baseline median "
            f"(95% CI [{r.gain_ci_low:+.1%}, {r.gain_ci_high:+.1%}])",
            highlight=False,
        )
        console.print(f"verdict  : {r.verdict} — {r.reason}", highlight=False)
        if outcome.confidence is not None:
            console.print(
                f"confidence: {outcome.confidence.level} ({outcome.confidence.reason})", highlight=False
            )
        console.print(f"knowledge base: {outcome.kb_note}", highlight=False)
        if r.verdict == "inconclusive":
            raise typer.Exit(EXIT_INCONCLUSIVE)


def _trace_tokens(side: str) -> list[Path]:
    """The existing files a ``--baseline``/``--candidate`` value names (trace mode): outputs are
    checked against them. A value that does not parse is left to the verify run to report."""
    import shlex

    try:
        tokens = shlex.split(side)
    except ValueError:
        return []
    return [Path(t) for t in tokens if Path(t).exists()]


def _sides(
    base: str | None, target: str | None, baseline: str | None, candidate: str | None
) -> tuple[str, str]:
    """BASE TARGET (positional, like ``diff``) or --baseline/--candidate: one form, both sides."""
    if base is not None and (baseline is not None or candidate is not None):
        raise InputError(None, "give BASE TARGET or --baseline/--candidate, not both")
    first, second = (base, target) if base is not None else (baseline, candidate)
    if first is None or second is None:
        raise InputError(None, "verify needs both sides: BASE TARGET, or --baseline A --candidate B")
    return first, second
