"""Anchor events -> forward passes -> layers (positions in the structural kernel sequence).

How it works (methodology §5):

1. **Pass boundaries.** Between two consecutive anchor events there are ``n_j`` kernels. Inside a
   pass ``n_j`` repeats layer after layer; the interval that spans a pass boundary also holds the
   final norm, lm_head, sampling and the next pass's embedding, so it has *excess* kernels over its
   neighbourhood (the 25th percentile of a 9-interval window). With a known layer count L, passes
   repeat with a period of ``anchors_per_layer * L (+ extra anchors)`` events, so the boundaries
   are the residue class (mod that period) with the largest mean excess. Without one, the pass
   structure comes from the trace itself (:mod:`.passes`: boundary kernels, step ranges, idle
   gaps, or one pass, with a plausibility check). A trace that begins or ends mid-pass yields
   shorter edge passes (labelled truncated) instead of shifted layers.
2. **Layer starts.** Every ``anchors_per_layer``-th event marks a layer. With the
   ``attention_walk_back`` boundary the layer opens at its input norm: from the attention kernel
   walk back over RoPE / KV-cache writes to the q/k/v projection GEMM(s), then over the norm to
   just after the previous layer's last GEMM, collective or MoE kernel. The first layer of a pass
   walks no further back than the other layers do (so the embedding stays in the prologue).
3. **Last layer end.** The last layer of a pass has as many kernels as the layer before it of the
   same type; what follows is the epilogue (final norm, lm_head, sampling).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from infersight.layers.anchors import Anchor
from infersight.layers.kernels import ATTENTION, COPY, GEMM, MOE, NCCL, NORM, DeviceKernels, IntArray
from infersight.layers.passes import PassInference, infer_passes
from infersight.layers.steps import step_event_groups

WINDOW = 9  # intervals in the neighbourhood an interval is compared with
MAX_QKV_GEMMS = 3  # separate q, k, v projections
MIN_BREAK_EXCESS = 1.0  # mean extra kernels that make a residue class pass boundaries
IDLE_BONUS = 1.0  # an interval holding a long idle gap (host work between steps) counts as one extra kernel
_STOP = np.array([GEMM, NCCL, MOE, ATTENTION])
_VARIANT_CATEGORIES = (NORM, GEMM, ATTENTION, NCCL, MOE)


@dataclass
class PassSpan:
    """One forward pass: its layers as [start, end) positions in the structural sequence."""

    layer_starts: IntArray
    layer_ends: IntArray
    first_layer: int  # layer number of the first layer found (> 0 when the trace starts mid-pass)
    truncated: bool


@dataclass
class Segmentation:
    structural: IntArray  # device kernel indices of the structural sequence
    events: IntArray  # positions of anchor events in the structural sequence
    passes: list[PassSpan]
    layers_per_pass: int | None  # expected (config) or inferred
    layers_inferred: bool
    period_kernels: int | None
    period_stability: float | None
    warnings: list[str] = field(default_factory=list)
    inference: PassInference | None = None  # how the passes were found without a layer count


def segment(
    kernels: DeviceKernels,
    anchor: Anchor,
    structural: IntArray,
    events: IntArray,
    expected_layers: int | None,
    layer_types: list[str] | None,
) -> Segmentation:
    """Split the anchor events into passes and layers (see the module docstring)."""
    warnings: list[str] = []
    per_layer = anchor.anchors_per_layer
    category = kernels.category[structural]
    intervals = np.diff(events)
    period_kernels, stability = _period_stats(intervals)
    if len(events) == 0:
        return Segmentation(structural, events, [], expected_layers, False, None, None, warnings)
    inference: PassInference | None = None
    if expected_layers is None:
        idle = _interval_idle(kernels, structural, events)
        steps = step_event_groups(kernels, structural, events)
        inference = infer_passes(kernels.short_code[structural], events, idle, per_layer, steps)
        groups = [g for g in np.split(np.arange(len(events), dtype=np.int64), inference.cuts + 1) if len(g)]
        layers, inferred = inference.layers, True
    else:
        extra_kernels, long_idle = _excess(kernels, structural, events, per_layer)
        groups, layers, inferred = _pass_groups(
            extra_kernels, long_idle, len(events), per_layer, expected_layers, warnings
        )
    passes: list[PassSpan] = []
    for number, group in enumerate(groups):
        mark_events, first_layer = _layer_marks(group, per_layer, layers, at_start=number == 0)
        marks = events[mark_events]
        if len(marks) == 0:
            continue
        truncated = layers is not None and len(marks) < layers and number in (0, len(groups) - 1)
        first = first_layer if truncated and number == 0 else 0
        passes.append(PassSpan(marks, marks.copy(), first, truncated))
    _place_starts(passes, category, kernels.short_code[structural], anchor, warnings)
    _place_ends(passes, kernels, structural, layer_types, warnings)
    return Segmentation(
        structural, events, passes, layers, inferred, period_kernels, stability, warnings, inference
    )


def _period_stats(intervals: IntArray) -> tuple[int | None, float | None]:
    if len(intervals) == 0:
        return None, None
    mode, count = Counter(intervals.tolist()).most_common(1)[0]
    return int(mode), count / len(intervals)


def _excess(
    kernels: DeviceKernels, structural: IntArray, events: IntArray, per_layer: int
) -> tuple[np.ndarray, np.ndarray]:
    """Extra kernels of every inter-event interval over its neighbourhood, and whether it holds a long
    idle gap (host work between steps).

    Kernels are counted over layer-long windows (``per_layer`` events): with several anchor events per
    layer the single intervals differ inside a layer (input norm -> post-attention norm is longer than
    post-attention norm -> next input norm), a layer-long window does not. An interval's excess is the
    smallest excess of the windows that contain it, so only a boundary that every such window crosses
    (a pass boundary) counts.
    """
    n_intervals = len(events) - 1
    if n_intervals <= 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    span = min(per_layer, n_intervals)
    windows = (events[span:] - events[:-span]).astype(float)
    rolling = pd.Series(windows).rolling(WINDOW * span, center=True, min_periods=1)
    reference = rolling.quantile(0.25, interpolation="lower").to_numpy()
    padding = np.full(n_intervals - len(windows), np.inf)  # the last intervals lie in fewer windows
    window_excess = np.r_[np.clip(windows - reference, 0.0, None), padding]
    excess = pd.Series(window_excess).rolling(span, min_periods=1).min().to_numpy()
    idle_max = _interval_idle(kernels, structural, events)
    threshold = 5 * float(np.median(idle_max)) + 20_000
    return excess, idle_max > threshold


def _interval_idle(kernels: DeviceKernels, structural: IntArray, events: IntArray) -> IntArray:
    """The longest idle gap of the structural stream inside every inter-event interval."""
    if len(events) < 2:
        return np.zeros(0, dtype=np.int64)
    starts = kernels.start[structural]
    ends = np.maximum.accumulate(kernels.end[structural])
    idle = np.r_[np.clip(starts[1:] - ends[:-1], 0, None), 0]
    result: IntArray = np.maximum.reduceat(idle[: events[-1]], events[:-1]).astype(np.int64)
    return result


def _pass_groups(
    extra_kernels: np.ndarray,
    long_idle: np.ndarray,
    n_events: int,
    per_layer: int,
    expected: int,
    warnings: list[str],
) -> tuple[list[IntArray], int, bool]:
    """Event indices of every pass for a known layer count (config or --num-layers)."""
    excess = extra_kernels + IDLE_BONUS * long_idle
    everything = [np.arange(n_events, dtype=np.int64)]
    periods = [per_layer * expected + extra for extra in range(per_layer + 1)]
    if n_events <= periods[-1]:
        return _at_most_one_cut(extra_kernels, long_idle, n_events), expected, False
    best: tuple[float, int, int] | None = None
    for period in periods:
        for residue in range(min(period, len(excess))):
            score = float(excess[residue::period].mean())
            if best is None or score > best[0] + 1e-9:
                best = (score, period, residue)
    if best is None or best[0] < MIN_BREAK_EXCESS:
        return everything, expected, False
    _, period, residue = best
    cuts = np.arange(residue, len(excess), period)
    weak = [int(c) for c in cuts if excess[c] < MIN_BREAK_EXCESS]
    if weak:
        warnings.append(
            f"{len(weak)} expected pass boundaries (after anchor events {weak[:5]}) show no extra kernels "
            "(final norm / lm_head / sampling): passes may be cut where they should not be"
        )
    groups = np.split(np.arange(n_events, dtype=np.int64), cuts + 1)
    return [g for g in groups if len(g)], expected, False


def _at_most_one_cut(extra_kernels: np.ndarray, long_idle: np.ndarray, n_events: int) -> list[IntArray]:
    """A trace with at most one pass's anchors: cut only at an interval with both extra kernels and a
    long idle gap (the tail of one pass and the head of the next), else it is one pass.

    Extra kernels alone are not enough here: a dense -> MoE transition (DeepSeek's dense prefix) also
    adds kernels once per pass.
    """
    events = np.arange(n_events, dtype=np.int64)
    candidates = extra_kernels * ((extra_kernels >= MIN_BREAK_EXCESS) & long_idle)
    if len(candidates) == 0 or candidates.max() <= 0:
        return [events]
    candidate = int(np.argmax(candidates))
    return [events[: candidate + 1], events[candidate + 1 :]]


def _layer_marks(group: IntArray, per_layer: int, layers: int | None, at_start: bool) -> tuple[IntArray, int]:
    """Every per_layer-th event of a pass (extra events assumed at the pass end), and the first layer number.

    A first pass shorter than a full one is the tail of a pass the trace cut: its layers are the
    last ones, so its layer groups are aligned from the end.
    """
    full = layers is not None and len(group) >= per_layer * layers
    if per_layer == 1:
        body = group
    elif full and layers is not None:
        body = group[: per_layer * layers : per_layer]
    elif at_start:
        body = group[len(group) % per_layer :: per_layer]
    else:
        body = group[::per_layer]
    first_layer = layers - len(body) if layers is not None and at_start and len(body) < layers else 0
    return body.astype(np.int64), first_layer


def _place_starts(
    passes: list[PassSpan], category: IntArray, names: IntArray, anchor: Anchor, warnings: list[str]
) -> None:
    """Layer start positions from the event marks (see the module docstring).

    A layer whose walk back ran into the pass prologue (layer 0: the embedding has no GEMM to stop at)
    gets the typical pre-attention length of the other layers, minus its leading kernels that do not
    match the typical layer's (layer 0 has no residual add in front of its norm in HF models).
    """
    if anchor.boundary == "anchor_start":
        return
    walked: list[tuple[int, int, bool]] = []  # (pass, layer, reached_a_stop)
    lengths: dict[int, list[tuple[int, int]]] = {}  # pass -> (pre-attention length, start) per natural layer
    previous_mark = -1
    for pass_number, span in enumerate(passes):
        for layer, mark in enumerate(span.layer_starts.tolist()):
            start, natural = _walk_back(category, mark, previous_mark)
            span.layer_starts[layer] = start
            walked.append((pass_number, layer, natural))
            if natural and layer > 0:
                lengths.setdefault(pass_number, []).append((mark - start, start))
            previous_mark = mark
    if not lengths:
        return
    overall = [item for items in lengths.values() for item in items]
    marks = [s.layer_ends.copy() for s in passes]  # layer_ends still hold the marks here
    for pass_number, layer, natural in walked:
        span = passes[pass_number]
        mark = int(marks[pass_number][layer])
        # the same pass has the same shapes, hence the same kernels (prefill and decode can differ)
        typical, template = _typical(lengths.get(pass_number, overall))
        if (layer == 0 or not natural) and mark - span.layer_starts[layer] > typical:
            start = mark - typical
            span.layer_starts[layer] = start + _leading_mismatches(category, names, start, template, typical)


def _typical(items: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common pre-attention length and the start of a layer that has it."""
    length = Counter(length for length, _ in items).most_common(1)[0][0]
    return length, next(start for candidate, start in items if candidate == length)


def _leading_mismatches(category: IntArray, names: IntArray, start: int, template: int, length: int) -> int:
    """How many kernels at ``start`` do not correspond to the template layer's, counted from the front.

    Kernels correspond when their names agree, or when both are of a category whose kernel name varies
    between layers (layer 0's plain RMSNorm vs the fused residual-add RMSNorm of the others, GEMM tiles).
    """
    for offset in range(length):
        a, b = start + offset, template + offset
        same_name = names[a] == names[b]
        same_role = category[a] == category[b] and category[a] in _VARIANT_CATEGORIES
        if same_name or same_role:
            return offset
    return 0


def _walk_back(category: IntArray, mark: int, limit: int) -> tuple[int, bool]:
    """Input-norm start of the layer whose attention is at ``mark``; (position, found a stop kernel)."""
    position = mark - 1
    while position > limit and category[position] != GEMM:  # RoPE, q/k norm, KV-cache writes
        if category[position] in _STOP:
            return position + 1, True
        position -= 1
    gemms = 0
    while position > limit and category[position] in (GEMM, COPY):  # q/k/v projection(s), views between
        if category[position] == GEMM:
            if gemms == MAX_QKV_GEMMS:
                break
            gemms += 1
        position -= 1
    while position > limit and category[position] not in _STOP:  # the input norm (and residual add)
        position -= 1
    return position + 1, position > limit


def _place_ends(
    passes: list[PassSpan],
    kernels: DeviceKernels,
    structural: IntArray,
    layer_types: list[str] | None,
    warnings: list[str],
) -> None:
    """Each layer ends where the next starts; the last one of a pass after as many kernels as its twin."""
    names = kernels.short_code[structural]
    total = len(structural)
    all_counts = [int(c) for s in passes for c in np.diff(s.layer_starts)]
    fallback = Counter(all_counts).most_common(1)[0][0] if all_counts else None
    for number, span in enumerate(passes):
        starts = span.layer_starts
        limit = int(passes[number + 1].layer_starts[0]) if number + 1 < len(passes) else total
        ends = np.r_[starts[1:], 0].astype(np.int64)
        counts = np.diff(starts)
        last = len(starts) - 1
        twin = _twin(span, last, layer_types)
        size = int(counts[twin]) if twin is not None else fallback
        if size is None:
            size = limit - int(starts[last])
        ends[last] = min(int(starts[last]) + size, limit)
        if twin is not None:
            closing = _closing_position(names, int(starts[last]), size, int(names[ends[twin] - 1]), limit)
            if closing is None:
                warnings.append(
                    f"pass {number}: the last layer does not end with the kernel that closes layer "
                    f"{span.first_layer + twin} ({kernels.short_names[int(names[ends[twin] - 1])]}); "
                    "its end (by kernel count) is an estimate"
                )
            else:
                ends[last] = closing + 1
        if ends[last] - starts[last] < size and ends[last] == limit:
            warnings.append(
                f"pass {number}: the last layer has fewer kernels than the layer before it "
                "(trace ends mid-layer?)"
            )
        span.layer_ends = ends


def _closing_position(names: IntArray, start: int, size: int, closer: int, limit: int) -> int | None:
    """Position of the kernel that closes the last layer: the twin layer's last kernel name, nearest to
    the twin's kernel count (layer sizes vary by a kernel or two when CPU operators stand in for kernels)."""
    target = start + size - 1
    slack = max(2, size // 10)
    low, high = max(start, target - slack), min(limit - 1, target + slack)
    if high < low:
        return None
    candidates = np.flatnonzero(names[low : high + 1] == closer) + low
    if len(candidates) == 0:
        return None
    return int(candidates[np.argmin(np.abs(candidates - target))])


def _twin(span: PassSpan, last: int, layer_types: list[str] | None) -> int | None:
    """The nearest earlier layer of the same type as the pass's last layer."""
    if last == 0:
        return None
    if layer_types is None:
        return last - 1
    number = span.first_layer + last
    wanted = layer_types[number] if number < len(layer_types) else None
    for layer in range(last - 1, -1, -1):
        index = span.first_layer + layer
        if wanted is None or (index < len(layer_types) and layer_types[index] == wanted):
            return layer
    return last - 1
