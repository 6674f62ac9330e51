"""``infersight kb record|lookup|history``: the knowledge base of runs and validated optimisations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from infersight.commands._io import check_outputs, stdout_console, write_output
from infersight.render.sanitize import sanitize_text

KbOpt = Annotated[
    str | None,
    typer.Option(
        "--kb",
        metavar="URL",
        help="SQLite path or SQLAlchemy URL of the knowledge base (default: $INFERSIGHT_KB).",
    ),
]
GpuOpt = Annotated[str | None, typer.Option("--gpu", help="GPU name (fingerprint).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name (fingerprint).")]
DtypeOpt = Annotated[str | None, typer.Option("--dtype", help="Compute dtype, e.g. bf16 (fingerprint).")]
TpOpt = Annotated[int | None, typer.Option("--tp", min=1, help="Tensor-parallel degree.")]
EpOpt = Annotated[int | None, typer.Option("--ep", min=1, help="Expert-parallel degree.")]
EngineOpt = Annotated[str | None, typer.Option("--engine", help="Inference engine, e.g. vllm, sglang.")]
EngineVersionOpt = Annotated[str | None, typer.Option("--engine-version", help="Engine version.")]
TorchOpt = Annotated[str | None, typer.Option("--torch", help="torch version.")]
CudaOpt = Annotated[str | None, typer.Option("--cuda", help="CUDA version.")]
DriverOpt = Annotated[str | None, typer.Option("--driver", help="NVIDIA driver version.")]
BatchOpt = Annotated[int | None, typer.Option("--batch", min=1, help="Batch size (shape vector).")]
PromptOpt = Annotated[int | None, typer.Option("--prompt", min=1, help="Prompt length (shape vector).")]
ContextOpt = Annotated[
    int | None, typer.Option("--context", min=1, help="Decode context length (shape vector).")
]
JsonOpt = Annotated[Path | None, typer.Option("--json", metavar="OUT", help="Also write the result as JSON.")]


def overrides(**values: Any) -> dict[str, Any]:
    """Fingerprint fields given on the command line (``prompt``/``context`` map to the shape names)."""
    renames = {"prompt": "prompt_len", "context": "context_len"}
    return {renames.get(k, k): v for k, v in values.items() if v is not None}


def kb_file(kb: str | None) -> Path | None:
    """The SQLite file a ``--kb`` value (or $INFERSIGHT_KB, or the default) names; None for a
    server URL. Output paths are checked against it: ``--json`` must never overwrite the KB."""
    from infersight.kb.store import resolve_kb_url

    url = resolve_kb_url(kb)
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return None
    return Path(url[len(prefix) :].split("?", 1)[0])


def _print_skipped(notes: list[str]) -> None:
    """Rows of the knowledge base that could not be read back: one line each, on stderr."""
    for note in notes:
        print(f"infersight: note: {sanitize_text(note)}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add the ``kb`` command group."""
    kb_app = typer.Typer(
        help="Knowledge base of measured runs and validated optimisations.", no_args_is_help=True
    )
    app.add_typer(kb_app, name="kb")

    @kb_app.command("record")
    def record(
        reports: Annotated[list[Path], typer.Argument(metavar="REPORT.json", help="analyze --json reports.")],
        kb: KbOpt = None,
        label: Annotated[
            str | None, typer.Option("--label", help="Run label (default: trace file names).")
        ] = None,
        gpu: GpuOpt = None,
        model: ModelOpt = None,
        dtype: DtypeOpt = None,
        tp: TpOpt = None,
        ep: EpOpt = None,
        engine: EngineOpt = None,
        engine_version: EngineVersionOpt = None,
        torch: TorchOpt = None,
        cuda: CudaOpt = None,
        driver: DriverOpt = None,
        batch: BatchOpt = None,
        prompt: PromptOpt = None,
        context: ContextOpt = None,
    ) -> None:
        """Store analysed runs (fingerprint, operator measurements, findings); changes make a new version."""
        from infersight.kb.store import KnowledgeBase, check_report, load_report_json

        given = overrides(
            gpu=gpu,
            model=model,
            dtype=dtype,
            tp=tp,
            ep=ep,
            engine=engine,
            engine_version=engine_version,
            torch=torch,
            cuda=cuda,
            driver=driver,
            batch=batch,
            prompt=prompt,
            context=context,
        )
        loaded = [load_report_json(p) for p in reports]
        for path, report in zip(reports, loaded, strict=True):  # all checked before the first is stored
            check_report(report, label=label, overrides=given, source=path)
        with KnowledgeBase.open(kb) as store:
            for path, report in zip(reports, loaded, strict=True):
                result = store.record_report(report, label=label, overrides=given, source=path)
                state = "recorded" if result.created else "unchanged (identical content already stored)"
                print(
                    sanitize_text(
                        f"{path}: {state}: run #{result.run_id} key {result.run_key} version "
                        f"{result.version} ({result.measurements} measurements, "
                        f"{result.recommendations} recommendations)"
                    )
                )

    @kb_app.command("lookup")
    def lookup(
        report: Annotated[
            Path | None,
            typer.Option("--report", metavar="REPORT.json", help="Take the fingerprint from a report."),
        ] = None,
        kb: KbOpt = None,
        gpu: GpuOpt = None,
        model: ModelOpt = None,
        dtype: DtypeOpt = None,
        tp: TpOpt = None,
        ep: EpOpt = None,
        engine: EngineOpt = None,
        engine_version: EngineVersionOpt = None,
        torch: TorchOpt = None,
        cuda: CudaOpt = None,
        driver: DriverOpt = None,
        batch: BatchOpt = None,
        prompt: PromptOpt = None,
        context: ContextOpt = None,
        top: Annotated[int, typer.Option("--top", min=1, help="Matches to show.")] = 5,
        min_similarity: Annotated[float, typer.Option("--min-similarity", min=0.0, max=1.0)] = 0.0,
        json_out: JsonOpt = None,
    ) -> None:
        """Stored runs most similar to a fingerprint (formula in docs/agent.md), best first."""
        from infersight.agent.lookup import kb_lookup

        given = overrides(
            gpu=gpu,
            model=model,
            dtype=dtype,
            tp=tp,
            ep=ep,
            engine=engine,
            engine_version=engine_version,
            torch=torch,
            cuda=cuda,
            driver=driver,
            batch=batch,
            prompt=prompt,
            context=context,
        )
        if json_out is not None:
            check_outputs([json_out], [kb_file(kb)])
        result = kb_lookup(kb=kb, report=report, overrides=given, top=top, min_similarity=min_similarity)
        if json_out is not None:
            write_output(json_out, orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        console = stdout_console()
        if not result.matches:
            console.print(
                f"no stored run in {result.kb_url_redacted} (searched {result.runs_searched} run(s))"
            )
            return
        table = Table(title=f"Similar runs in {result.kb_url_redacted}")
        for column in (
            "run",
            "v",
            "label",
            "GPU",
            "model",
            "similarity",
            "env/shape/ops",
            "coverage",
            "reuse",
        ):
            table.add_column(column)
        for m in result.matches:
            parts = "/".join(
                "-" if v is None else f"{v:.2f}"
                for v in (m.similarity.env, m.similarity.shape, m.similarity.ops)
            )
            table.add_row(
                str(m.run_id),
                str(m.version),
                m.label,
                m.fingerprint.gpu or "-",
                m.fingerprint.model or "-",
                f"{m.similarity.score:.3f}",
                parts,
                f"{m.similarity.coverage:.2f}",
                "direct answer" if m.direct_answer else "",
            )
        console.print(table)
        console.print(result.summary)
        _print_skipped(result.skipped)

    @kb_app.command("history")
    def history(
        recommendation: Annotated[
            str | None, typer.Option("--recommendation", metavar="TYPE", help="Only this finding type.")
        ] = None,
        kb: KbOpt = None,
        json_out: JsonOpt = None,
    ) -> None:
        """Stored A/B verification results, oldest first."""
        from infersight.kb.store import AbHistory, KnowledgeBase

        if json_out is not None:
            check_outputs([json_out], [kb_file(kb)])
        skipped: list[str] = []
        with KnowledgeBase.open(kb) as store:
            rows = store.ab_history(recommendation, skipped=skipped)
        if json_out is not None:
            history = AbHistory(recommendation_type=recommendation, results=rows, skipped=skipped)
            write_output(json_out, orjson.dumps(history.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        _print_skipped(skipped)
        if not rows:
            print("no A/B results stored", file=sys.stderr)
            return
        table = Table(title="A/B results")
        for column in (
            "id",
            "v",
            "recommendation",
            "verdict",
            "gain",
            "95% CI",
            "CV b/c",
            "baseline",
            "candidate",
        ):
            table.add_column(column, overflow="fold")
        for ab in rows:
            baseline, candidate = distinguishing_parts(ab.baseline, ab.candidate)
            table.add_row(
                str(ab.id),
                str(ab.version),
                ab.recommendation_type or "-",
                ab.verdict,
                f"{ab.gain:+.1%}",
                f"[{ab.gain_ci_low:+.1%}, {ab.gain_ci_high:+.1%}]",
                f"{ab.baseline_cv:.1%}/{ab.candidate_cv:.1%}",
                baseline,
                candidate,
            )
        stdout_console().print(table)


def distinguishing_parts(baseline: str, candidate: str) -> tuple[str, str]:
    """Both sides without the directory prefix they share ("…/"), so a narrow table shows what differs.

    Long shared folders (``/work/shared/data/kineto/hta_trace_diff_…``) otherwise fill the column
    and a terminal cuts both cells to the same text.
    """
    if baseline == candidate:
        return baseline, candidate
    pairs = enumerate(zip(baseline, candidate, strict=False))
    length = next((i for i, (a, b) in pairs if a != b), min(len(baseline), len(candidate)))
    shared = baseline[:length]
    cut = shared.rfind("/") + 1
    if cut <= 1 or " " in shared[:cut]:  # no common folder, or the prefix spans a command's words
        return baseline, candidate
    return "…/" + baseline[cut:], "…/" + candidate[cut:]
