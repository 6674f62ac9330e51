"""The knowledge base's tables in the terminal: similar runs (``kb lookup``) and A/B results (``kb history``).

Moved out of ``commands/kb.py`` (front ends parse options and call the API; drawing is here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from infersight.kb.lookup import LookupResult
    from infersight.kb.store import StoredAb

__all__ = ["distinguishing_parts", "render_history", "render_lookup"]


def render_lookup(result: LookupResult, console: Console) -> None:
    """The similar runs, best first, and the lookup's summary line."""
    if not result.matches:
        console.print(f"no stored run in {result.kb_url_redacted} (searched {result.runs_searched} run(s))")
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
            "-" if v is None else f"{v:.2f}" for v in (m.similarity.env, m.similarity.shape, m.similarity.ops)
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


def render_history(rows: Sequence[StoredAb], console: Console) -> None:
    """The stored A/B results, oldest first, with only the differing part of the two sides."""
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
    console.print(table)


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
