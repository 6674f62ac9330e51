"""Sanity checks on freshly read tables that every reader runs: odd but valid input gets a note.

Readers drop rows that cannot be used (missing or negative durations) and say so; what is
physically odd but usable stays in the tables and is only noted here, so the user knows why a
figure may look surprising.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from pandas.api.types import is_string_dtype

from infersight.model import Trace, emit_nvtx
from infersight.model.trace import RANGE_FORM_COLUMN, RANGE_NUMBER_COLUMNS

# Overlaps up to this much are timestamp rounding (Kineto writes µs), not real overlap.
OVERLAP_TOLERANCE_NS = 1_000
# Time limits every reader applies at the edge (see docs/methodology.md): start and end within
# ±2**62 ns (±146 years: epoch-based ns are ~1.8e18) so any difference of two times fits in
# int64; a single interval at most 2**50 ns (~13 days) so sums of thousands of them fit too.
# Beyond them int64 arithmetic wraps (busy = -3 ns, wall = 2**64 - 3) instead of failing.
MAX_ABS_TIME_NS = 2**62
MAX_DURATION_NS = 2**50


def time_in_limits(times: np.ndarray) -> np.ndarray:
    """Times strictly inside ±MAX_ABS_TIME_NS (compared, not ``abs``: abs(-2**63) wraps)."""
    return (times > -MAX_ABS_TIME_NS) & (times < MAX_ABS_TIME_NS)


def interval_in_limits(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Rows whose int64 interval is usable: end >= start, both times and the length in limits."""
    in_range = time_in_limits(start) & time_in_limits(end)
    with np.errstate(over="ignore"):
        length = np.where(in_range, end - start, -1)  # no overflow where both are in range
    return in_range & (length >= 0) & (length <= MAX_DURATION_NS)


# Names (kernels, NVTX ranges, API calls, domains) longer than this are cut for display and
# keep a hash of the full name for grouping: a 10 MiB kernel name made every name regex and
# report line cost minutes. The longest real name in the test traces is a 5,123-character
# PyTorch lambda kernel (HTA's AlexNet trace); 16 kiB leaves room for three times that.
MAX_NAME_CHARS = 16384
_NAME_HASH_CHARS = 12
TRACE_TABLES = ("kernels", "memcpy", "memset", "api", "ranges")


def shorten_long_names(trace: Trace) -> None:
    """Cut every name longer than :data:`MAX_NAME_CHARS` in the trace's tables, with a note.

    The shortened name keeps its head, its full length and a hash of the whole name, so two
    long names that differ only past the cut stay two groups, and the same name gets the same
    short form in every file and run. Works on the distinct categories only: costs nothing per
    row, and nothing at all when no name is long.
    """
    shortened = 0
    for table in TRACE_TABLES:
        frame = getattr(trace, table)
        for column in frame.columns:
            if column == RANGE_FORM_COLUMN:  # compact names: shortened where shown, counted here
                shortened += _long_compact_names(frame)
            elif isinstance(frame[column].dtype, pd.CategoricalDtype):
                values, count = _shortened(frame[column].array)
                if count:
                    frame[column] = values
                    shortened += count
    if shortened:
        trace.notes.append(
            f"{shortened} name(s) longer than {MAX_NAME_CHARS:,} characters were shortened for display "
            "(head of the name, its length and a hash of the full name, which keeps them apart)"
        )


def _long_compact_names(ranges: pd.DataFrame) -> int:
    """How many distinct names of a compact range table are longer than :data:`MAX_NAME_CHARS`.

    A name is its form with each 0 the split left replaced by its number, so it is at most
    :data:`emit_nvtx.MAX_EXTRA_CHARS` longer than its form: only forms near the limit are looked at.
    Long names are counted, not rewritten: their shortened form (:func:`short_name`) is what the
    range tables show.
    """
    forms = ranges[RANGE_FORM_COLUMN].array
    form_lengths = np.array([len(str(form)) for form in forms.categories], dtype=np.int64)
    if not len(form_lengths) or int(form_lengths.max()) + emit_nvtx.MAX_EXTRA_CHARS <= MAX_NAME_CHARS:
        return 0
    codes = forms.codes.astype(np.int64)
    numbers = [ranges[key].to_numpy(np.int64) for key in RANGE_NUMBER_COLUMNS]
    lengths = np.where(codes >= 0, form_lengths[codes], 0) + emit_nvtx.extra_chars(numbers)
    long = lengths > MAX_NAME_CHARS
    if not long.any():
        return 0
    return len(pd.unique(emit_nvtx.name_keys(codes[long], [values[long] for values in numbers])))


def negative_sizes_unknown(trace: Trace) -> None:
    """Copy/memset byte counts below zero become 0 (the model's "unknown"), with a note.

    Why: a negative size gives a negative bandwidth downstream, a wrong number shown as fact.
    """
    for table in ("memcpy", "memset"):
        frame = getattr(trace, table)
        sizes = frame["bytes"].to_numpy()
        negative = sizes < 0
        count = int(negative.sum())
        if count:
            frame["bytes"] = np.where(negative, 0, sizes).astype(sizes.dtype)
            trace.notes.append(f"{count} {table} rows have a negative byte count: size taken as unknown (0)")


def short_name(name: str) -> str:
    """``name`` itself, or its first characters + ``…[<length> chars #<hash>]`` when too long."""
    if len(name) <= MAX_NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_NAME_HASH_CHARS]
    tail = f"…[{len(name):,} chars #{digest}]"
    return name[: MAX_NAME_CHARS - len(tail)] + tail


def _shortened(values: pd.Categorical) -> tuple[pd.Categorical, int]:
    """(the column with long categories shortened, how many were); merges any that collide."""
    categories = values.categories
    if not len(categories) or not is_string_dtype(categories.dtype):
        return values, 0
    names = categories.tolist()
    texts = names if isinstance(categories.dtype, pd.StringDtype) else map(str, names)  # str already
    if max(map(len, texts)) <= MAX_NAME_CHARS:
        return values, 0
    new_names = [short_name(n) if isinstance(n, str) else n for n in names]
    count = sum(a is not b for a, b in zip(names, new_names, strict=True))
    position, distinct = pd.factorize(pd.Index(new_names, dtype=categories.dtype))
    codes = np.asarray(values.codes, dtype=np.int64)
    new_codes = np.where(codes >= 0, position[np.maximum(codes, 0)], -1)
    return pd.Categorical.from_codes(new_codes, categories=distinct), count


def stream_overlap_note(kernels: pd.DataFrame) -> str | None:
    """A note when kernels start before the previous kernel of their (device, stream) ended.

    Kernels of one stream run one after the other, except with programmatic dependent launch
    (Hopper+) or when the profiler's clock is off. Busy time uses the union of intervals, so
    figures stay right; the note says why per-kernel times may add up to more than busy time.
    Cost: one stable argsort by a small stream code (radix sort) over start-ordered kernels.
    """
    if len(kernels) < 2:
        return None
    codes = _stream_codes(kernels)
    starts = kernels["start"].to_numpy(np.int64)
    ends = kernels["end"].to_numpy(np.int64)
    if bool((starts[1:] >= starts[:-1]).all()) and codes.max() < 2**15:
        order = np.argsort(codes.astype(np.int16), kind="stable")  # radix sort; keeps start order
    else:
        order = np.lexsort((starts, codes))
    s, e, c = starts[order], ends[order], codes[order]
    overlap = (c[1:] == c[:-1]) & (s[1:] < e[:-1] - OVERLAP_TOLERANCE_NS)
    count = int(overlap.sum())
    if not count:
        return None
    return (
        f"{count} kernel(s) start more than {OVERLAP_TOLERANCE_NS // 1000} µs before the previous kernel "
        "on their stream ended (overlap on one stream: programmatic dependent launch, or a clock "
        "problem); busy time counts the union of kernel intervals"
    )


def _stream_codes(kernels: pd.DataFrame) -> np.ndarray:
    """One small integer per (device, stream)."""
    device_codes, devices = pd.factorize(kernels["device"].to_numpy())
    stream_codes, _ = pd.factorize(kernels["stream"].to_numpy())
    return stream_codes.astype(np.int64) * max(len(devices), 1) + device_codes


def clock_offset_notes(traces: list[Trace]) -> None:
    """Note on every trace when the kernel time spans of per-rank traces do not all overlap.

    Ranks of one job run at the same time, so disjoint spans mean each rank's clock has its own
    zero (different hosts, no common time base). Per-rank figures are unaffected; comparing
    timestamps across ranks is not meaningful. Appends to ``Trace.notes``.
    """
    with_kernels = [t for t in traces if not t.kernels.empty]
    note = clock_offset_note(
        [(t.label(), int(t.kernels["start"].min()), int(t.kernels["end"].max())) for t in with_kernels]
    )
    if note is not None:
        for trace in with_kernels:
            trace.notes.append(note)


def clock_offset_note(spans: list[tuple[str, int, int]]) -> str | None:
    """The note of :func:`clock_offset_notes` from (rank label, first kernel start, last kernel end)
    of the ranks with kernels; None when the spans overlap (or fewer than two ranks have kernels).

    Separate so that a multi-rank analysis that keeps only per-rank digests can note it too.
    """
    if len(spans) < 2:
        return None
    latest_start = max(spans, key=lambda span: span[1])
    earliest_end = min(spans, key=lambda span: span[2])
    if latest_start[1] <= earliest_end[2]:
        return None
    gap_s = (latest_start[1] - earliest_end[2]) / 1e9
    return (
        f"the ranks' kernel time spans do not overlap ({latest_start[0]} starts {gap_s:,.3f} s after "
        f"{earliest_end[0]} ends): their clocks are probably offset; per-rank figures are "
        "unaffected, cross-rank timestamps are not comparable"
    )
