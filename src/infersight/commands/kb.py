"""``infersight kb record|lookup|history``: the knowledge base of runs and validated optimisations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from infersight.commands._io import check_outputs, stdout_console, write_output
from infersight.commands._options import FINGERPRINT_OPTIONS, JsonOpt, KbOpt, request_of, with_options
from infersight.render.sanitize import sanitize_text


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
    @with_options(FINGERPRINT_OPTIONS)
    def record(
        reports: Annotated[list[Path], typer.Argument(metavar="REPORT.json", help="analyze --json reports.")],
        kb: KbOpt = None,
        label: Annotated[
            str | None, typer.Option("--label", help="Run label (default: trace file names).")
        ] = None,
        **options: Any,
    ) -> None:
        """Store analysed runs (fingerprint, operator measurements, findings); changes make a new version."""
        from infersight import api

        request = request_of(api.KbRecordRequest, locals() | options)
        for path, result in zip(reports, api.kb_record(request), strict=True):
            state = "recorded" if result.created else "unchanged (identical content already stored)"
            print(
                sanitize_text(
                    f"{path}: {state}: run #{result.run_id} key {result.run_key} version "
                    f"{result.version} ({result.measurements} measurements, "
                    f"{result.recommendations} recommendations)"
                )
            )

    @kb_app.command("lookup")
    @with_options(FINGERPRINT_OPTIONS)
    def lookup(
        report: Annotated[
            Path | None,
            typer.Option("--report", metavar="REPORT.json", help="Take the fingerprint from a report."),
        ] = None,
        kb: KbOpt = None,
        top: Annotated[int, typer.Option("--top", min=1, help="Matches to show.")] = 5,
        min_similarity: Annotated[float, typer.Option("--min-similarity", min=0.0, max=1.0)] = 0.0,
        json_out: JsonOpt = None,
        **options: Any,
    ) -> None:
        """Stored runs most similar to a fingerprint (formula in docs/agent.md), best first."""
        from infersight import api
        from infersight.render.kb import render_lookup

        request = request_of(api.KbLookupRequest, locals() | options)
        if json_out is not None:
            check_outputs([json_out], [kb_file(kb)])
        result = api.kb_lookup(request)
        if json_out is not None:
            write_output(json_out, orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        render_lookup(result, stdout_console())
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
        from infersight.render.kb import render_history

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
        render_history(rows, stdout_console())
