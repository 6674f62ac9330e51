"""The pass structure of a trace without a model config: where one forward pass ends and the next begins.

Without ``--config`` / ``--num-layers`` the layer count per pass has to come from the trace itself
(methodology §5). Inside a pass the kernels between two anchor events repeat layer after layer,
with a short *layer-type period* ``q`` (1 for a uniform model, 2 when sliding-window and full
attention layers alternate, as gpt-oss does): the shortest q for which at least
:data:`PERIODIC_SHARE` of the anchor intervals hold as many kernels as the one q layers on. The
evidence for a pass boundary, strongest first — the first that applies decides and is recorded as
``method``:

1. ``boundary-kernels`` (pass markers): an anchor interval with at least :data:`MIN_BOUNDARY_EXTRA`
   more kernels than the larger of its same-type neighbours (q layers before and after) that runs
   a kernel no other interval runs — the final norm, lm_head, sampling and the next pass's
   embedding run there. Comparing with neighbours of the same layer type keeps an alternating layer
   pattern from looking like a pass boundary (the "12 passes x 2 layers" of a 24-layer model);
   comparing with the larger one keeps a dense -> MoE transition from looking like one; anchor
   kernels never count as a kernel of its own (a global-attention variant among sliding-window
   layers).
2. ``step-ranges``: the engine's step annotation ranges (:mod:`.steps`), when each holds the same
   number of anchor events. A step may run several passes (speculative decoding), so they only
   decide where no boundary kernel does, and otherwise are reported as agreeing or not.
3. ``boundary-kernels`` (periodic): intervals with extra kernels but none of their own, only when
   they cut at least :data:`MIN_CONSISTENT_PASSES` whole passes of one length, of at least
   :data:`MIN_PERIODIC_PASS_LAYERS` layers (an extra copy in one layer, a lazily launched helper, a
   global-attention layer every 6 is no pass boundary).
4. ``idle-gaps``: intervals holding an idle gap of more than :data:`IDLE_FACTOR` x the median one
   plus :data:`IDLE_FLOOR_NS` (the host between two steps), trusted only when they too cut at
   least :data:`MIN_CONSISTENT_PASSES` whole passes of one length, or the anchors exactly in half —
   eager runs stall the host at random points as well.
5. ``single-pass``: no boundary between anchors — every anchor event belongs to one pass.

A pass that decided the count and sits at the trace's start (end) is whole when a kernel that no
layer runs precedes its first (follows its last) anchor; otherwise the count is marked as a lower
bound.

Then the result is checked for plausibility, and every problem is reported with the advice to give
``--config`` or ``--num-layers N`` instead of being shown as a layer count: whole passes that
disagree in their layer count, an edge pass longer than the whole ones, a shorter side of a single
boundary that is whole too (its prologue / epilogue is in the trace), a pass of fewer than
``min_layers_per_pass`` layers (``[plausibility]`` in
``data/model_profiles.toml``) or no longer than the layer-type period, and anchor intervals
that do not repeat inside a pass (fewer than :data:`PERIODIC_SHARE` within
:data:`REPEAT_SLACK_KERNELS` kernels or :data:`REPEAT_SLACK_SHARE` of the one q layers on).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from infersight.layers.kernels import IntArray
from infersight.layers.profiles import load_profiles

Method = Literal["boundary-kernels", "step-ranges", "idle-gaps", "single-pass"]

MIN_BOUNDARY_EXTRA = 2  # kernels a pass boundary adds at least: final norm + lm_head (+ sampling, embedding)
MAX_LAYER_TYPE_PERIOD = 4  # longest repeating layer-type pattern looked for (longer: like short passes)
PERIODIC_SHARE = 0.8  # share of intervals equal to the one q layers on that makes q the layer-type period
MIN_CONSISTENT_PASSES = 2  # whole passes of one count that idle gaps / weak boundaries must cut
# boundaries without kernels of their own, at a constant spacing, cut passes only this long: a shorter
# repeat is rather a layer-type pattern (Gemma-3: 5 sliding-window + 1 global layer; Jamba: 1 attention in 8)
MIN_PERIODIC_PASS_LAYERS = 12
# two layers "repeat" when their kernel counts differ by at most this many kernels or this share of
# the larger count, whichever is more (CPU operators standing in for kernels, lazily launched helpers)
REPEAT_SLACK_KERNELS = 2
REPEAT_SLACK_SHARE = 0.1
IDLE_FACTOR = 5.0  # an interval's longest idle gap this many times the median one ...
IDLE_FLOOR_NS = 20_000  # ... plus this floor is host work between steps


@dataclass
class PassInference:
    """Where the passes are cut (after which anchor events), the layers of a whole pass, and why."""

    cuts: IntArray  # the pass ends after these event indices
    layers: int | None
    method: Method
    reason: str
    layer_type_period: int
    problems: list[str] = field(default_factory=list)
    # "start" / "end": edges of the deciding pass with no prologue / epilogue kernel in the trace
    open_edges: list[str] = field(default_factory=list)

    @property
    def plausible(self) -> bool:
        """Whether the layer count per pass can be shown as a finding."""
        return not self.problems and self.layers is not None


def infer_passes(
    codes: IntArray, events: IntArray, idle_ns: IntArray, per_layer: int, steps: list[IntArray] | None = None
) -> PassInference:
    """The pass structure of the structural kernel sequence (see the module docstring).

    ``codes`` are the simplified-name codes of the structural kernels, ``events`` the positions of
    the anchor events among them, ``idle_ns[i]`` the longest idle gap between events ``i`` and
    ``i + 1``, ``per_layer`` the anchor events per layer, and ``steps`` the anchor events of every
    engine step annotation range (:mod:`.steps`).
    """
    counts = np.diff(events).astype(np.int64)
    window = _layer_windows(counts, per_layer)
    q = _layer_type_period(window, per_layer)
    inference = _decide(codes, events, idle_ns, counts, window, per_layer, q, steps or [])
    inference.problems.extend(repeat_problems(window, inference.cuts, per_layer, q))
    whole_edges = _whole_edges(codes, events, inference.cuts)
    inference.open_edges = _open_edges(inference.cuts, len(events), whole_edges)
    if inference.open_edges:
        sides = " and ".join(
            "before its first layer" if side == "start" else "after its last layer"
            for side in inference.open_edges
        )
        inference.reason += (
            f"; a lower bound: no kernel that no layer runs (embedding, lm_head, sampling) {sides}, so the "
            "trace may cut that pass"
        )
    elif len(inference.cuts) < 2:
        inference.reason += "; kernels that no layer runs before and after it show the pass is whole"
    inference.problems.extend(_short_side_problems(inference, len(events), per_layer, whole_edges))
    return inference


def _whole_edges(codes: IntArray, events: IntArray, cuts: IntArray) -> dict[str, bool]:
    """Whether a kernel that no layer runs precedes the first anchor ("start": the embedding) and
    follows the last one ("end": a final-norm variant, lm_head, sampling) — the trace holds that
    edge of its first / last pass."""
    positions = np.arange(int(events[0]), int(events[-1]))
    interval = np.searchsorted(events, positions, side="right") - 1
    layer_codes = np.unique(codes[positions[~np.isin(interval, cuts)]])
    return {
        "start": not np.isin(codes[: int(events[0])], layer_codes).all(),
        "end": not np.isin(codes[int(events[-1]) + 1 :], layer_codes).all(),
    }


def _open_edges(cuts: IntArray, n_events: int, whole_edges: dict[str, bool]) -> list[str]:
    """Sides of the pass that decided the count whose edge the trace may have cut.

    A pass between two boundaries is whole. With one boundary the longer side decided, so only its
    outer edge counts; with none, both edges of the one pass.
    """
    if len(cuts) >= 2:
        return []
    sides = ["start", "end"]
    if len(cuts) == 1:
        sides = ["start"] if _head_is_longer(cuts, n_events) else ["end"]
    return [side for side in sides if not whole_edges[side]]


def _head_is_longer(cuts: IntArray, n_events: int) -> bool:
    return int(cuts[0]) + 1 >= n_events - int(cuts[0]) - 1


def _short_side_problems(
    inference: PassInference, n_events: int, per_layer: int, whole_edges: dict[str, bool]
) -> list[str]:
    """With one boundary, the shorter side is taken as cut by the trace; if the trace holds its outer
    edge (embedding before it / sampling after it), it is a whole pass too and the two disagree."""
    cuts = inference.cuts
    if len(cuts) != 1:
        return []
    head, tail = int(cuts[0]) + 1, n_events - int(cuts[0]) - 1
    side, short = ("end", tail) if _head_is_longer(cuts, n_events) else ("start", head)
    if not whole_edges[side] or head == tail:
        return []
    where = "after its last layer" if side == "end" else "before its first layer"
    return [
        f"the {short // per_layer}-layer pass at the trace's {side} is whole too (kernels that no layer "
        f"runs {where}), so the two passes disagree: {inference.layers} vs {short // per_layer} layers"
    ]


def _decide(
    codes: IntArray,
    events: IntArray,
    idle_ns: IntArray,
    counts: IntArray,
    window: IntArray,
    per_layer: int,
    q: int,
    steps: list[IntArray],
) -> PassInference:
    """The first evidence that applies: boundary kernels that no layer runs, engine step ranges,
    periodic boundary kernels, idle gaps, else a single pass."""
    n_events = len(events)
    candidates = np.flatnonzero(_boundary_extra(counts, window, per_layer, q) >= MIN_BOUNDARY_EXTRA)
    strong = candidates[_has_foreign_kernels(codes, events, candidates)].astype(np.int64)
    if len(strong):
        inference = _decided(
            _from_cuts(strong, n_events, per_layer, q, "boundary-kernels"),
            f"{_boundaries(len(strong))} with >= {MIN_BOUNDARY_EXTRA} more kernels than the same-type "
            "layers around them, among them kernels no layer runs (final norm, lm_head, sampling, embedding)",
        )
        inference.reason += _step_agreement(steps, strong, n_events)
        return inference
    by_steps = _step_inference(steps, n_events, per_layer, q)
    if by_steps is not None:
        return by_steps
    weak = candidates.astype(np.int64)
    if _consistent(weak, n_events) and _pass_events(weak, n_events) >= MIN_PERIODIC_PASS_LAYERS * per_layer:
        return _decided(
            _from_cuts(weak, n_events, per_layer, q, "boundary-kernels"),
            f"{_boundaries(len(weak))} with >= {MIN_BOUNDARY_EXTRA} more kernels than the same-type layers "
            "around them, at a constant spacing",
        )
    idle = _idle_cuts(idle_ns)
    if _consistent(idle, n_events):
        return _decided(
            _from_cuts(idle, n_events, per_layer, q, "idle-gaps"),
            f"{len(idle)} long idle gaps (host work between steps) at a constant spacing",
        )
    ignored = []
    if len(weak):
        ignored.append(
            f"{len(weak)} intervals with extra kernels that the layers run too, "
            + (
                f"every {_pass_events(weak, n_events) // per_layer} layers: a repeating layer-type pattern"
                if _consistent(weak, n_events)
                else "at no constant spacing"
            )
        )
    if len(idle):
        ignored.append(f"{len(idle)} long idle gaps at no constant spacing")
    return _single_pass(n_events, per_layer, q, ignored)


def _step_cuts(steps: list[IntArray], n_events: int) -> IntArray:
    """Pass ends implied by step ranges: after each step's last anchor and before its first."""
    ends = [int(g[-1]) for g in steps if int(g[-1]) < n_events - 1]
    befores = [int(g[0]) - 1 for g in steps if int(g[0]) > 0]
    return np.unique(np.asarray(ends + befores, dtype=np.int64))


def _step_inference(steps: list[IntArray], n_events: int, per_layer: int, q: int) -> PassInference | None:
    """Passes = engine steps, when every step range holds the same number of anchor events."""
    lengths = {len(group) for group in steps}
    if len(lengths) != 1:
        return None
    length = lengths.pop()
    cuts = _step_cuts(steps, n_events)
    evidence = (
        f"the engine's step annotation range holds {length} anchor events (no boundary kernels between them)"
        if len(steps) == 1
        else f"{len(steps)} engine step annotation ranges hold {length} anchor events each (no boundary "
        "kernels between anchors)"
    )
    if len(cuts) == 0:
        layers = max(1, length // per_layer)
        return PassInference(
            cuts,
            layers,
            "step-ranges",
            f"{evidence}: one pass of {layers} layers",
            q,
            _size_problems(layers, q),
        )
    return _decided(_from_cuts(cuts, n_events, per_layer, q, "step-ranges"), evidence)


def _step_agreement(steps: list[IntArray], cuts: IntArray, n_events: int) -> str:
    """A note on whether the engine's step ranges start and end where the boundary kernels cut."""
    if not steps:
        return ""
    if np.isin(_step_cuts(steps, n_events), cuts).all():
        return f"; the {len(steps)} engine step annotation ranges agree"
    return (
        f"; {len(steps)} engine step annotation ranges cut elsewhere (a step may run several passes, "
        "e.g. speculative decoding)"
    )


def _boundaries(count: int) -> str:
    return f"{count} pass boundar{'y' if count == 1 else 'ies'}: anchor interval{'' if count == 1 else 's'}"


def _decided(inference: PassInference, evidence: str) -> PassInference:
    inference.reason = f"{evidence}; {inference.reason}"
    return inference


def _pass_events(cuts: IntArray, n_events: int) -> int:
    """Anchor events of a pass that consistent cuts delimit (the whole passes', else the edges')."""
    whole = _whole_lengths(cuts)
    return whole[0] if whole else int(cuts[0]) + 1


def _consistent(cuts: IntArray, n_events: int) -> bool:
    """Cuts that split the anchors into passes of one length: at least MIN_CONSISTENT_PASSES whole
    passes with no longer one at the trace's edges, or every pass, edges included, alike (one cut
    exactly halfway is no random host stall)."""
    if len(cuts) == 0:
        return False
    whole = _whole_lengths(cuts)
    edges = [int(cuts[0]) + 1, n_events - int(cuts[-1]) - 1]
    if len(set(whole + edges)) == 1:
        return True
    if len(whole) < MIN_CONSISTENT_PASSES or len(set(whole)) != 1:
        return False
    return max(edges) <= whole[0]


def _has_foreign_kernels(codes: IntArray, events: IntArray, candidates: IntArray) -> np.ndarray:
    """Whether each candidate interval runs a kernel (simplified name) that no other interval runs.

    A pass boundary holds the final norm, lm_head, sampling and the next pass's embedding; sampling
    and embedding kernels run in no layer. An interval that merely repeats a layer kernel (a lazy
    helper, a CPU stall splitting a launch) has none, and neither does a layer of a rarer type whose
    only own kernel is its attention variant (a global-attention layer among sliding-window ones):
    anchor kernels never count as foreign.
    """
    if len(candidates) == 0:
        return np.zeros(0, dtype=bool)
    positions = np.arange(int(events[0]), int(events[-1]))
    interval = np.searchsorted(events, positions, side="right") - 1
    is_candidate = np.isin(interval, candidates)
    ordinary = np.union1d(codes[positions[~is_candidate]], codes[events])  # anchors run in every layer
    foreign = ~np.isin(codes[positions], ordinary) & is_candidate
    return np.isin(candidates, interval[foreign])


def _layer_windows(counts: IntArray, per_layer: int) -> IntArray:
    """Kernels of every layer-long window of anchor intervals (a window starts at every event)."""
    if per_layer <= 1 or len(counts) < per_layer:
        return counts.astype(np.int64)
    cumulative = np.r_[0, np.cumsum(counts)]
    return (cumulative[per_layer:] - cumulative[:-per_layer]).astype(np.int64)


def _layer_type_period(window: IntArray, per_layer: int) -> int:
    """The shortest layer-type period q (in layers): windows q layers apart hold as many kernels."""
    for q in range(1, MAX_LAYER_TYPE_PERIOD + 1):
        shift = q * per_layer
        if len(window) <= shift:
            break
        if float(np.mean(window[shift:] == window[:-shift])) >= PERIODIC_SHARE:
            return q
    return 1


def _boundary_extra(counts: IntArray, window: IntArray, per_layer: int, q: int) -> np.ndarray:
    """Extra kernels of every anchor interval over the larger of its same-type neighbours.

    An interval lies in ``per_layer`` windows; its extra is the smallest extra of those windows, so
    only a boundary that every layer-long window across it sees counts.
    """
    shift = q * per_layer
    n_windows = len(window)
    before = np.full(n_windows, -1, dtype=np.int64)
    after = np.full(n_windows, -1, dtype=np.int64)
    before[shift:] = window[:-shift] if shift < n_windows else before[shift:]
    after[:-shift] = window[shift:] if shift < n_windows else after[:-shift]
    reference = np.maximum(before, after)
    window_extra = np.where(reference >= 0, window - reference, 0).astype(float)
    if per_layer <= 1 or len(counts) < per_layer:
        return window_extra
    padded = np.r_[np.full(per_layer - 1, np.inf), window_extra, np.full(per_layer - 1, np.inf)]
    extra = np.array([padded[i : i + per_layer].min() for i in range(len(counts))])
    return np.where(np.isfinite(extra), extra, 0.0)


def _idle_cuts(idle_ns: IntArray) -> IntArray:
    """Intervals holding an idle gap far longer than the usual one (host work between steps)."""
    if len(idle_ns) == 0:
        return np.zeros(0, dtype=np.int64)
    threshold = IDLE_FACTOR * float(np.median(idle_ns)) + IDLE_FLOOR_NS
    return np.flatnonzero(idle_ns > threshold).astype(np.int64)


def _whole_lengths(cuts: IntArray) -> list[int]:
    """Anchor events of the passes between two cuts (whole passes; the edge ones may be cut by the trace)."""
    return [int(b - a) for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)]


def _from_cuts(cuts: IntArray, n_events: int, per_layer: int, q: int, method: Method) -> PassInference:
    """Layers per pass from the passes that cuts delimit, with the plausibility problems."""
    whole = _whole_lengths(cuts)
    edges = [int(cuts[0]) + 1, n_events - int(cuts[-1]) - 1]
    problems: list[str] = []
    if whole:
        events, seen = Counter(whole).most_common(1)[0]
        reason = f"the {len(whole)} whole pass{'es' if len(whole) > 1 else ''} between them give{{}}"
        if seen < len(whole):
            layer_counts = sorted({w // per_layer for w in whole})
            problems.append(
                f"the whole passes between boundaries disagree: {_list(layer_counts)} layers; a pass "
                "boundary was missed or found where there is none"
            )
        if max(edges) > events:
            problems.append(
                f"a pass at the trace's edge has {max(edges) // per_layer} layers, more than the "
                f"{events // per_layer} of a whole pass"
            )
    else:
        events = max(edges)
        short_side = "start" if edges[0] < edges[1] else "end"
        reason = (
            "the longer side of the one boundary gives{} (the shorter one is cut by the trace's "
            f"{short_side})"
        )
    layers = max(1, events // per_layer)
    problems.extend(_size_problems(layers, q))
    return PassInference(cuts, layers, method, reason.format(f" {layers} layers per pass"), q, problems)


def repeat_problems(window: IntArray, cuts: IntArray, per_layer: int, q: int) -> list[str]:
    """Layers of a pass repeat: the intervals q layers apart inside a pass hold as many kernels.

    Intervals next to a pass boundary are left out (they hold the boundary's extra kernels); two
    intervals repeat when their counts differ by at most REPEAT_SLACK_KERNELS or REPEAT_SLACK_SHARE
    of the larger. Fewer than PERIODIC_SHARE repeating means the anchor does not mark a repeating
    layer (a training step's forward and backward kernels, a CNN, a wrong --anchor-kernel).
    """
    shift = q * per_layer
    if len(window) <= shift:
        return []
    near_cut = np.zeros(len(window), dtype=bool)
    for cut in cuts.tolist():
        near_cut[max(0, cut - per_layer + 1) : cut + 1] = True
    usable = ~near_cut[shift:] & ~near_cut[:-shift]
    if not usable.any():
        return []
    a, b = window[shift:], window[:-shift]
    alike = np.abs(a - b) <= np.maximum(REPEAT_SLACK_KERNELS, REPEAT_SLACK_SHARE * np.maximum(a, b))
    share = float(np.mean(alike[usable]))
    if share >= PERIODIC_SHARE:
        return []
    return [
        f"the kernels between anchors do not repeat layer after layer (only {share:.0%} of the "
        f"intervals inside a pass hold about as many kernels as the one {q} layer{'s' if q > 1 else ''} "
        f"on; a decoder's layers repeat in >= {PERIODIC_SHARE:.0%})"
    ]


def _single_pass(n_events: int, per_layer: int, q: int, ignored: list[str]) -> PassInference:
    layers = max(1, n_events // per_layer)
    reason = (
        f"no pass boundary between the {n_events} anchor events"
        + (f" (ignored: {'; '.join(ignored)})" if ignored else "")
        + f": one pass of {layers} layers"
    )
    return PassInference(
        np.zeros(0, dtype=np.int64), layers, "single-pass", reason, q, _size_problems(layers, q)
    )


def _size_problems(layers: int, q: int) -> list[str]:
    """A pass too short to be an LLM decoder, or no longer than its repeating layer pattern."""
    problems: list[str] = []
    minimum = load_profiles().plausibility.min_layers_per_pass
    if layers < minimum:
        problems.append(
            f"a pass of {layers} layer{'s' if layers > 1 else ''} is no LLM decoder (fewer than "
            f"{minimum}); the anchor may not run once per layer, or this is not a decoder trace"
        )
    elif q > 1 and layers <= q:
        problems.append(
            f"{layers} layers per pass is the period of the repeating layer-type pattern ({q}), not a pass"
        )
    return problems


def _list(values: list[int]) -> str:
    shown = ", ".join(str(v) for v in values[:6])
    return shown + (", ..." if len(values) > 6 else "")
