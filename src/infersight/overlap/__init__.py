"""Overlap analyses: copy/compute, communication/computation, and the multi-rank view.

``analyze_overlap`` is the one entry point the CLI (``infersight overlap`` / ``ranks``) calls:
it runs the pure analyses of :mod:`copies`, :mod:`comm` and :mod:`ranks` on loaded traces and
turns their typed results into findings (:mod:`findings`, thresholds in data/overlap_rules.toml).
"""

from __future__ import annotations

from infersight import __version__
from infersight.errors import InputError
from infersight.model import Trace
from infersight.overlap.comm import comm_overlaps
from infersight.overlap.copies import NO_COPIES, copy_overlaps, range_overlaps
from infersight.overlap.findings import comm_findings, copy_findings, range_findings, rank_findings
from infersight.overlap.ranks import multi_rank_view
from infersight.overlap.results import OverlapReport, RangeOverlap

__all__ = ["analyze_overlap", "analyze_ranks"]


def analyze_overlap(
    traces: list[Trace],
    *,
    window_nvtx: str | None = None,
    per_range: str | None = None,
    multi_rank: bool | None = None,
) -> OverlapReport:
    """Copy/compute and comm/compute overlap of every trace (and the multi-rank view when
    ``multi_rank`` is true, or is None and there are several ranks / GPUs)."""
    if not traces:
        raise InputError(None, "no trace given")
    copies = [c for t in traces for c in copy_overlaps(t, window_nvtx)]
    comm = [c for t in traces for c in comm_overlaps(t, window_nvtx)]
    notes: list[str] = []
    ranges = _per_range(traces, per_range, notes) if per_range is not None else []
    if copies and all(c.na_reason == NO_COPIES for c in copies):
        notes.append(
            "no copy events in any trace: copy/compute overlap is not applicable (copy tracing off?)"
        )
    if not copies:
        raise InputError(traces[0].source, "no GPU kernels or copies in the trace(s): nothing to overlap")
    several = len(traces) > 1 or len({c.device for c in comm}) > 1
    view = None
    if multi_rank:
        view = multi_rank_view(traces)
    elif multi_rank is None and several:
        try:
            view = multi_rank_view(traces)
        except InputError as exc:  # unrelated files are fine for `overlap`; `ranks` insists
            notes.append(f"multi-rank view skipped: {exc.one_line()}")
    findings = [f for c in copies for f in copy_findings(c)]
    findings += [f for r in ranges for f in range_findings(r, per_range or "")]
    findings += [f for c in comm for f in comm_findings(c)]
    if view is not None:
        findings += rank_findings(view)
    return OverlapReport(
        tool_version=__version__,
        copies=copies,
        ranges=ranges,
        range_regex=per_range,
        comm=comm,
        multi_rank=view,
        findings=findings,
        notes=notes,
    )


def analyze_ranks(traces: list[Trace]) -> OverlapReport:
    """The multi-rank view and per-rank comm overlap of a set of per-rank traces (no copies)."""
    if not traces:
        raise InputError(None, "no trace given")
    view = multi_rank_view(traces)
    comm = [c for t in traces for c in comm_overlaps(t)]
    ranked = {(r.trace, r.device) for r in view.ranks}
    comm = [c for c in comm if (c.trace, c.device) in ranked]
    findings = [f for c in comm for f in comm_findings(c)] + rank_findings(view)
    return OverlapReport(
        tool_version=__version__, copies=[], ranges=[], comm=comm, multi_rank=view, findings=findings
    )


def _per_range(traces: list[Trace], regex: str, notes: list[str]) -> list[RangeOverlap]:
    """Per-range rows of every trace that has a matching range; InputError if none has one."""
    rows: list[RangeOverlap] = []
    errors: list[InputError] = []
    for trace in traces:
        try:
            rows.extend(range_overlaps(trace, regex))
        except InputError as exc:
            errors.append(exc)
    if len(errors) == len(traces):
        raise errors[0]
    notes.extend(f"--per-range skipped: {e.one_line()}" for e in errors)
    return rows
