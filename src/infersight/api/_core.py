"""The public Python API: every front end (CLI, notebooks, agents) calls these and never computes.

Keeping the pipeline (load -> profile -> rules -> report) in one place means the terminal,
Markdown and JSON views always describe the same numbers.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from infersight import __version__
from infersight.errors import InputError
from infersight.progress import ANALYSES, NO_PROGRESS, Progress

if TYPE_CHECKING:  # imported where used: `from infersight import api` stays light (no pandas, no theory)
    import pandas as pd

    from infersight.analyses.annotations import GapCauses, TraceAnnotation
    from infersight.analyses.results import GlobalProfile
    from infersight.analysis_report import AnalysisReport
    from infersight.executors import Executor
    from infersight.model import Trace
    from infersight.theory.ops import OpsPrediction
    from infersight.theory.run import TheoryRequest

__all__ = [
    "AnnotatedTraces",
    "analyze",
    "annotate",
    "check_window_regex",
    "load",
    "predict_ops",
    "report_from_profile",
    "report_from_traces",
]


def load(
    paths: Sequence[str | Path],
    *,
    cpu_ops_as_kernels: bool = False,
    executor: Executor | str | None = None,
    executor_address: str | None = None,
    progress: Progress = NO_PROGRESS,
    compact_ranges: bool = False,
) -> list[Trace]:
    """Read every path (files or directories of per-rank files) into traces, in argument order.

    A directory's per-rank files are read on ``executor``: an :class:`Executor` (left open, the
    caller owns it), or a name, ``local`` (this process), ``process`` (local worker processes,
    the default), ``dask`` or ``ray`` (a local Dask cluster / Ray runtime, or the cluster at
    ``executor_address``), opened and closed here. ``progress`` hears the stages and bytes of
    a file read here. ``compact_ranges``: an Nsight Systems file's NVTX names are held as
    emit_nvtx forms and numbers (a table without a ``name`` column; only :func:`analyze` asks,
    for the analyses that read names through ``infersight.analyses.range_names``). Raises
    :class:`InputError` when no path is given, a path cannot be read, or the executor cannot be
    opened.
    """
    from infersight.ingest import load_traces

    if not paths:
        raise InputError(None, "no trace given")
    traces: list[Trace] = []
    with _executor(executor, executor_address) as runner:
        for path in paths:
            traces.extend(
                load_traces(
                    path,
                    cpu_ops_as_kernels=cpu_ops_as_kernels,
                    executor=runner,
                    progress=progress,
                    compact_ranges=compact_ranges,
                )
            )
    return traces


@contextlib.contextmanager
def _executor(executor: Executor | str | None, address: str | None) -> Iterator[Executor]:
    """The given executor as is, or the named one opened for this call and closed after it."""
    from infersight.executors import open_executor

    if executor is not None and not isinstance(executor, str):
        if address is not None:
            raise InputError(None, "executor_address applies to a named executor, not an Executor object")
        yield executor
        return
    with open_executor(executor, address) as opened:
        yield opened


def report_from_traces(
    traces: list[Trace], *, window_nvtx: str | None = None, theory: TheoryRequest | None = None
) -> AnalysisReport:
    """Profile already-loaded traces and evaluate the rules on the profile.

    With a ``theory`` request (model, GPU, scenario) the report also carries the roofline
    estimate, measured vs theory per (phase, category), the focus set, and the findings on the
    user's measured TTFT/TPOT/tokens/s (added to ``findings`` too).
    """
    check_window_regex(window_nvtx)
    from infersight.analyses.profile import build_global_profile
    from infersight.analysis_report import AnalysisReport
    from infersight.rules.engine import evaluate_rules

    profile = build_global_profile(traces, window_nvtx=window_nvtx)
    if theory is None:
        return report_from_profile(profile)
    findings = evaluate_rules(profile)
    from infersight.theory.run import theory_for_traces

    theory_part = theory_for_traces(theory, traces, window_nvtx=window_nvtx)
    return AnalysisReport(
        tool_version=__version__,
        profile=profile,
        findings=[*findings, *theory_part.findings],
        theory=theory_part,
    )


def report_from_profile(profile: GlobalProfile) -> AnalysisReport:
    """Evaluate the rules on a global profile and wrap both in a report (no theory part)."""
    from infersight.analysis_report import AnalysisReport
    from infersight.rules.engine import evaluate_rules

    return AnalysisReport(tool_version=__version__, profile=profile, findings=evaluate_rules(profile))


def analyze(
    paths: Sequence[str | Path],
    *,
    window_nvtx: str | None = None,
    cpu_ops_as_kernels: bool = False,
    theory: TheoryRequest | None = None,
    executor: Executor | str | None = None,
    executor_address: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> AnalysisReport:
    """Load all paths, build the global profile, evaluate the rules, and wrap it all in a report.

    ``window_nvtx`` is a regular expression over NVTX/annotation names that cuts the analysis
    window (e.g. a steady-state step range); ``cpu_ops_as_kernels`` lets a CPU-only PyTorch
    capture be analysed with its dominant operators (self time >= half their duration)
    standing in for GPU kernels; ``theory`` adds the roofline theory and measured vs theory;
    ``executor``/``executor_address`` choose where per-rank files are read (see :func:`load`);
    ``progress`` hears the stages (reading with bytes, building columns, analyses).

    Several trace files (a directory of per-rank files, or several paths) without a ``theory``
    request are analysed where they are read: each task digests its rank and only the digest
    comes back (:mod:`infersight.per_rank`), so this process never holds all ranks' events. The
    report is the same as from :func:`load` + :func:`report_from_traces`.
    """
    check_window_regex(window_nvtx)  # fail before the (slow) load, not after it
    if not paths:
        raise InputError(None, "no trace given")
    from infersight.per_rank import profile_ranks, rank_files

    with _executor(executor, executor_address) as runner:
        ranks = rank_files(paths) if theory is None else None
        # one file (or none: load raises the path's error) is profiled from its loaded trace
        if ranks is not None and (len(ranks.files) > 1 or (ranks.files and ranks.error is not None)):
            profile = profile_ranks(
                ranks, executor=runner, window_nvtx=window_nvtx, cpu_ops_as_kernels=cpu_ops_as_kernels
            )
            return report_from_profile(profile)
        # the profile and the rules read range names through analyses.range_names; the window
        # and the theory (scenario inference) read the names themselves
        compact = window_nvtx is None and theory is None
        traces = load(
            paths,
            cpu_ops_as_kernels=cpu_ops_as_kernels,
            executor=runner,
            progress=progress,
            compact_ranges=compact,
        )
    progress.stage(ANALYSES)
    return report_from_traces(traces, window_nvtx=window_nvtx, theory=theory)


def check_window_regex(pattern: str | None) -> None:
    """Raise InputError for an invalid --window-nvtx regex (a user input error, not a crash)."""
    check_regex("--window-nvtx", pattern)


def check_regex(option: str, pattern: str | None) -> None:
    """InputError for an invalid regex option, raised before the (slow) load."""
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InputError(None, f"{option}: invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class AnnotatedTraces:
    """The traces, the report on them, and the annotations: what ``annotate`` writes out."""

    traces: list[Trace]
    report: AnalysisReport
    annotations: list[TraceAnnotation]
    gap_causes: GapCauses


def annotate(
    paths: Sequence[str | Path],
    *,
    window_nvtx: str | None = None,
    cpu_ops_as_kernels: bool = False,
) -> AnnotatedTraces:
    """Load the traces, analyse them, and compute what ``infersight annotate`` lays over them.

    The result holds the traces themselves (their own tracks are written back out), the report
    (its findings become slices), and per trace the wall-time attribution intervals, the host
    gaps' likely causes and the phase/step spans, all from the same windows as the report, so the
    timeline's bucket slices sum to the report's ``time_attribution`` exactly.
    """
    from infersight.analyses.annotations import annotate_trace, gap_causes

    check_window_regex(window_nvtx)
    traces = load(paths, cpu_ops_as_kernels=cpu_ops_as_kernels)
    report = report_from_traces(traces, window_nvtx=window_nvtx)
    from infersight.host.config import load_config

    causes = gap_causes(load_config().section("drilldown"))
    return AnnotatedTraces(
        traces=traces,
        report=report,
        annotations=[annotate_trace(t, causes, window_nvtx) for t in traces],
        gap_causes=causes,
    )


def predict_ops(
    ops: str | Path | pd.DataFrame,
    *,
    gpu: str | None,
    dtype: str,
    peak_tflops: float | None = None,
    bandwidth_gb_per_s: float | None = None,
    link_bandwidth_gb_per_s: float | None = None,
    ranks_per_node: int = 8,
) -> OpsPrediction:
    """Predicted time and bound of every GEMM / all-reduce shape (``infersight roofline --ops``).

    ``ops`` is a CSV path with the columns ``id,op,m,n,k,bytes,ranks`` or a DataFrame of those
    columns as strings; every row is validated (InputError naming the file line of the first bad
    one). The time model is the calibrated one the estimates use (docs/methodology.md §2).
    """
    import pandas

    from infersight.theory.ops import predict_ops_for_gpu, read_ops_csv, validate_ops

    if isinstance(ops, pandas.DataFrame):
        table = validate_ops(ops.fillna("").astype(str))
    else:
        table = read_ops_csv(Path(ops))
    return predict_ops_for_gpu(
        table,
        gpu=gpu,
        dtype=dtype,
        peak_tflops=peak_tflops,
        bandwidth_gb_per_s=bandwidth_gb_per_s,
        link_bandwidth_gb_per_s=link_bandwidth_gb_per_s,
        ranks_per_node=ranks_per_node,
    )
