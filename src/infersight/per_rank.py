"""Multi-rank analysis where the ranks are read: one task per rank file reads the trace *and*
digests it (:mod:`infersight.analyses.digest`), and only the digest travels back.

Why: shipping every :class:`Trace` back made the caller's memory and time grow with all ranks'
events; a digest is the rank's per-device results plus value counts of its durations. The caller
merges the digests into the same global profile that ``build_global_profile`` gives on the loaded
traces (``analyses.digest_merge``). Errors come back as data (an exception's pickled form loses
its arguments) and are raised in the order the traces path would raise them: the first file that
cannot be read, then a path that cannot be expanded, then the first rank whose analysis fails.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infersight.analyses.digest import RankDigest, digest_trace
from infersight.analyses.digest_merge import build_global_profile_from_digests
from infersight.analyses.results import GlobalProfile
from infersight.errors import InputError
from infersight.executors import Executor
from infersight.ingest import load_file, trace_files
from infersight.ingest.checks import clock_offset_note

_Problem = tuple[str | None, str]  # an InputError as (source, problem)
# (digest, why the file could not be read, why its analysis failed)
_Outcome = tuple[RankDigest | None, _Problem | None, _Problem | None]


@dataclass(frozen=True)
class RankFiles:
    """The trace files named by the paths, in order, and where each came from."""

    files: list[Path]
    folder: list[int]  # per file: index of the directory path it was listed from (-1: given as a file)
    error: InputError | None  # the first path that could not be expanded; later paths are not listed


def rank_files(paths: Sequence[str | Path]) -> RankFiles:
    """Expand files and directories of per-rank files, as ``api.load`` reads them."""
    files: list[Path] = []
    folder: list[int] = []
    for index, path in enumerate(paths):
        p = Path(path)
        try:
            listed = trace_files(p)
        except InputError as exc:
            return RankFiles(files, folder, exc)
        files.extend(listed)
        folder.extend([index if p.is_dir() else -1] * len(listed))
    return RankFiles(files, folder, None)


def profile_ranks(
    ranks: RankFiles, *, executor: Executor, window_nvtx: str | None = None, cpu_ops_as_kernels: bool = False
) -> GlobalProfile:
    """Read and digest every rank file on ``executor``, merge the digests into the global profile."""
    task = functools.partial(digest_file, window_nvtx=window_nvtx, cpu_ops_as_kernels=cpu_ops_as_kernels)
    outcomes = executor.map(task, ranks.files) if ranks.files else []
    for _, unreadable, _ in outcomes:
        if unreadable is not None:
            raise InputError(*unreadable)
    if ranks.error is not None:
        raise ranks.error
    for _, _, failed in outcomes:
        if failed is not None:
            raise InputError(*failed)
    digests = [digest for digest, _, _ in outcomes if digest is not None]
    _note_clock_offsets(digests, ranks.folder)
    return build_global_profile_from_digests(digests)


def digest_file(path: Path, *, window_nvtx: str | None, cpu_ops_as_kernels: bool) -> _Outcome:
    """One task: read the rank file and digest it (module-level, so executors can pickle it)."""
    try:
        trace = load_file(path, cpu_ops_as_kernels=cpu_ops_as_kernels)
    except InputError as exc:
        return None, (exc.source, exc.problem), None
    try:
        return digest_trace(trace, window_nvtx), None, None
    except InputError as exc:
        return None, None, (exc.source, exc.problem)


def _note_clock_offsets(digests: list[RankDigest], folder: list[int]) -> None:
    """The per-directory clock-offset note of ``ingest.checks.clock_offset_notes``."""
    for index in sorted(set(folder) - {-1}):
        ranks = [d for d, f in zip(digests, folder, strict=True) if f == index and d.kernel_span is not None]
        note = clock_offset_note([(d.label, *d.kernel_span) for d in ranks if d.kernel_span is not None])
        if note is not None:
            for digest in ranks:
                digest.summary.notes.append(note)
