"""``infersight agent``: the closed loop (methodology §7); ``infersight narrate``: checked LLM prose."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from infersight.commands import kb as kb_cli
from infersight.commands._io import check_outputs, read_analysis_report, stdout_console
from infersight.commands._options import KbOpt
from infersight.errors import InputError
from infersight.render.sanitize import sanitize_text, sanitizing_console

T = TypeVar("T")
ProgressFn = Callable[[int, int, str], None]

LlmUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--llm-url", metavar="URL", help="OpenAI-compatible endpoint (key: $INFERSIGHT_LLM_API_KEY)."
    ),
]
LlmModelOpt = Annotated[
    str | None, typer.Option("--llm-model", metavar="NAME", help="Model name for --llm-url.")
]


def register(app: typer.Typer) -> None:
    """Add the ``agent`` and ``narrate`` commands."""

    @app.command("agent")
    def agent(
        trace: Annotated[
            list[Path], typer.Option("--trace", metavar="TRACE", help="Trace file(s) (repeatable).")
        ],
        workdir: Annotated[
            Path,
            typer.Option("--workdir", metavar="DIR", help="Where steps, logs and reports go (resumable)."),
        ] = Path("infersight-agent"),
        model: Annotated[str | None, typer.Option("--model", help="Built-in model name (theory).")] = None,
        config: Annotated[
            str | None, typer.Option("--config", help="HuggingFace config.json (theory).")
        ] = None,
        gpu: Annotated[str | None, typer.Option("--gpu", help="GPU name (default: from the trace).")] = None,
        batch: Annotated[int | None, typer.Option("--batch", min=1)] = None,
        prompt: Annotated[int | None, typer.Option("--prompt", min=1)] = None,
        context: Annotated[int | None, typer.Option("--context", min=1)] = None,
        tp: Annotated[int, typer.Option("--tp", min=1)] = 1,
        dtype: Annotated[str | None, typer.Option("--dtype")] = None,
        ncu: Annotated[
            list[Path] | None,
            typer.Option("--ncu", metavar="CSV", help="Nsight Compute exports (repeatable)."),
        ] = None,
        window_nvtx: Annotated[str | None, typer.Option("--window-nvtx", metavar="REGEX")] = None,
        app_command: Annotated[
            str | None,
            typer.Option("--app", metavar="CMD", help="Your inference command (for ncu/A-B lines)."),
        ] = None,
        kb: KbOpt = None,
        no_kb: Annotated[
            bool, typer.Option("--no-kb", help="Do not read or write the knowledge base.")
        ] = False,
        llm_url: LlmUrlOpt = None,
        llm_model: LlmModelOpt = None,
        fresh: Annotated[bool, typer.Option("--fresh", help="Ignore the saved state in --workdir.")] = False,
    ) -> None:
        """KB lookup -> theory -> profile -> focus -> ncu -> rules (+narrator) -> report -> A/B plan -> KB."""
        from infersight.agent.workflow import WORKDIR_FILES, AgentInputs, run_agent

        if workdir.is_dir():  # a new work directory holds no input
            kb_path = None if no_kb else kb_cli.kb_file(kb)
            check_outputs(
                [workdir / name for name in WORKDIR_FILES], [config, kb_path], output_dirs=[workdir]
            )
        inputs = AgentInputs(
            traces=[str(t) for t in trace],
            model=model,
            config=config,
            gpu=gpu,
            batch=batch,
            prompt=prompt,
            context=context,
            tp=tp,
            dtype=dtype,
            ncu=[str(p) for p in ncu or []],
            window_nvtx=window_nvtx,
            kb=kb,
            use_kb=not no_kb,
            llm_url=llm_url,
            llm_model=llm_model,
            app_command=app_command,
        )
        state = _with_progress(lambda progress: run_agent(inputs, workdir, fresh=fresh, progress=progress))
        console = stdout_console()
        for record in state.steps.values():
            files = f"  [{', '.join(record.artifacts)}]" if record.artifacts else ""
            console.print(
                f"{record.name:19} {record.status:11} {record.message}{files}", highlight=False, markup=False
            )
        console.print(f"work directory: {workdir} (log: agent_log.jsonl; rerun to resume)", highlight=False)
        if any(r.status == "failed" for r in state.steps.values()):
            raise typer.Exit(1)

    @app.command("narrate")
    def narrate_cmd(
        report: Annotated[Path, typer.Argument(metavar="REPORT.json", help="An analyze --json report.")],
        llm_url: LlmUrlOpt = None,
        llm_model: LlmModelOpt = None,
        json_out: Annotated[
            Path | None,
            typer.Option(
                "--json", metavar="OUT", help="Also write kept sentences (with claims) and dropped ones."
            ),
        ] = None,
    ) -> None:
        """LLM prose for a report's findings; a sentence with a claim the evidence lacks is dropped."""
        from infersight.advisor.narrator import narrate
        from infersight.commands._io import check_outputs, write_output

        if not llm_url or not llm_model:
            raise InputError(None, "give --llm-url and --llm-model (the narrator is off by default)")
        check_outputs([json_out] if json_out is not None else [], [report])
        parsed = read_analysis_report(report)
        narration = narrate(parsed.findings, url=llm_url, model=llm_model)
        if json_out is not None:
            write_output(json_out, narration.model_dump_json(indent=2).encode())
        for dropped in narration.dropped:
            print(sanitize_text(f"dropped: {dropped.text} — {dropped.reason}"), file=sys.stderr)
        if parsed.findings and not narration.kept:
            raise InputError(
                None, f"--llm-url {llm_url}: no sentence of the reply passed the evidence check (all dropped)"
            )
        print(sanitize_text(narration.text or "(no findings to narrate)"))


def _with_progress(work: Callable[[ProgressFn], T]) -> T:
    """Run ``work(progress)`` with a rich progress bar on an interactive stderr, plain lines otherwise."""
    if not sys.stderr.isatty():
        return work(
            lambda done, total, message: print(
                sanitize_text(f"agent [{done}/{total}] {message}"), file=sys.stderr
            )
        )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=sanitizing_console(stderr=True),
    ) as bar:
        task = bar.add_task("agent", total=1)

        def progress(done: int, total: int, message: str) -> None:
            bar.update(task, total=total, completed=done, description=sanitize_text(f"agent: {message}"))

        return work(progress)
