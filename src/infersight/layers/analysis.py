"""The layer / forward-pass view of one device (methodology §5): the public entry point of this package.

:func:`analyze_layers` segments the kernels into passes and layers (:mod:`.segment`), times them,
and builds the tables of :class:`LayerReport`: all passes, the layers of one pass, layer-type
clusters, the compute flow of one layer, a two-layer diff, and Perfetto time ranges.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from infersight.analyses.categories import CATEGORIES
from infersight.errors import InputError
from infersight.layers.anchors import anchor_events, choose_anchor
from infersight.layers.kernels import ATTENTION, GEMM, MOE, NCCL, DeviceKernels, IntArray, device_kernels
from infersight.layers.launch_shapes import GRAPH_REASON, NO_DIMS_REASON, LaunchShapes, perfetto_origin
from infersight.layers.profiles import detect_engine, layer_types, load_profiles, select_profile
from infersight.layers.results import (
    AnchorChoice,
    ComputeFlow,
    DiffRow,
    FlowRow,
    LayerDiff,
    LayerReport,
    LayerRow,
    LayerTypeCluster,
    PassRow,
    PassState,
    PassStructure,
    PerfettoRange,
)
from infersight.layers.segment import Segmentation, segment
from infersight.layers.theory import (
    ENABLE_HINT,
    LayerTheoryRequest,
    layer_theory,
    theory_setup,
    with_cluster_theory,
)
from infersight.model import Trace
from infersight.theory.model_config import ModelConfig
from infersight.validate import MAX_LAYERS, bounded_int

HEAVY_CATEGORIES = np.array([GEMM, ATTENTION, NCCL, MOE])
SHAPE_DURATION_JUMP = 1.5  # passes of one shape differ less than this in duration
COLD_START_FACTOR = 1.15  # first pass of a shape this much slower than the others' median: cold start


@dataclass(frozen=True)
class LayerTimes:
    """Every layer found, in time order, with its pass and number."""

    pass_index: IntArray
    number: IntArray
    start_ns: IntArray
    end_ns: IntArray
    layer_type: list[str]


def analyze_layers(
    trace: Trace,
    *,
    config: ModelConfig | None = None,
    num_layers: int | None = None,
    profile: str | None = None,
    anchor_kernel: str | None = None,
    device: int | None = None,
    fwd_pass: int | None = None,
    layer: int | None = None,
    compare_layer: int | None = None,
    theory: LayerTheoryRequest | None = None,
) -> LayerReport:
    """Segment one device's kernels into forward passes and layers and tabulate them.

    With ``theory`` (model options + batch and sequence lengths), every layer of the selected pass
    also gets its theory roofline time and E_roof (:mod:`infersight.layers.theory`).
    """
    kernels = device_kernels(trace, device, perfetto_origin(trace))
    setup = theory_setup(trace, theory, kernels.device) if theory is not None else None
    engine = detect_engine(kernels.names)
    chosen_profile, profile_reason = select_profile(profile, engine, config)
    anchor = choose_anchor(kernels, chosen_profile, anchor_kernel)
    structural, events = anchor_events(kernels, anchor)
    expected, expected_source = _expected_layers(config, num_layers)
    types = layer_types(config, expected) if config is not None and expected is not None else None
    seg = segment(kernels, anchor, structural, events, expected, types)
    warnings = [*anchor.warnings, *seg.warnings]
    times = _layer_times(kernels, seg, types)
    pass_bounds = _pass_bounds(kernels, seg, times)
    layer_of, pass_of = _assign(kernels, times, pass_bounds)
    passes = _pass_rows(kernels, seg, times, pass_bounds, pass_of, layer_of)
    anchor_names = sorted({kernels.short_names[c] for c in np.unique(kernels.short_code[anchor.matches])})
    structure = _pass_structure(seg, expected_source, anchor_names)
    warnings = _count_warnings(passes, seg, expected_source, structure) + warnings
    if structure is not None and not structure.plausible and seg.warnings:
        # per-pass segmentation details of a split that is not trusted are noise: count them only
        warnings = [w for w in warnings if w not in seg.warnings]
        warnings.append(f"{len(seg.warnings)} warnings on the layers of individual passes left out")
    selected, selected_reason = _select_pass(passes, fwd_pass)
    layers = _layer_rows(kernels, times, layer_of, selected) if selected is not None else []
    clusters = _clusters(layers)
    theory_result = None
    if setup is not None:
        theory_result, layers = layer_theory(setup, passes, selected, layers)
        clusters = with_cluster_theory(clusters, layers)
    flow = diff = None
    if layers:
        shapes = LaunchShapes(trace)
        flow_layer = _flow_layer(layers, layer)
        flow = _compute_flow(kernels, times, layer_of, layers[flow_layer], shapes)
        if compare_layer is not None:
            other = _compute_flow(
                kernels, times, layer_of, layers[_check_layer(layers, compare_layer)], shapes
            )
            diff = _diff(flow, other)
    elif layer is not None or compare_layer is not None:
        raise InputError(trace.source, "--layer/--compare-layer: no layers were found to show")
    return LayerReport(
        trace=trace.source,
        device=kernels.device,
        model=config.name if config is not None else None,
        layers_expected=expected,
        layers_expected_source=expected_source,
        anchor=AnchorChoice(
            profile=chosen_profile.name,
            source=anchor.source,  # type: ignore[arg-type]
            pattern=anchor.pattern,
            names=anchor_names,
            occurrences=len(events),
            anchors_per_layer=anchor.anchors_per_layer,
            boundary=anchor.boundary,
            period_kernels=seg.period_kernels,
            period_stability=seg.period_stability,
            reason=f"profile {chosen_profile.name} ({profile_reason}); {anchor.reason}",
        ),
        pass_structure=structure,
        passes=passes,
        selected_pass=selected,
        selected_reason=selected_reason,
        layers=layers,
        clusters=clusters,
        verdict=_verdict(clusters, layers),
        flow=flow,
        diff=diff,
        theory=theory_result,
        theory_hint=None if theory is not None else ENABLE_HINT,
        warnings=warnings,
    )


def _expected_layers(config: ModelConfig | None, num_layers: int | None) -> tuple[int | None, str | None]:
    if num_layers is not None:  # bounded as a config's layer count is: per-layer loops follow
        return bounded_int(num_layers, "--num-layers", maximum=MAX_LAYERS), "--num-layers"
    if config is not None:
        return config.num_layers, f"config {config.name}"
    return None, None


def _layer_times(kernels: DeviceKernels, seg: Segmentation, types: list[str] | None) -> LayerTimes:
    """Start/end of every layer: a layer runs until the next one starts; a pass's last layer until
    the end of its last kernel."""
    st_start = kernels.start[seg.structural]
    st_end = kernels.end[seg.structural]
    pass_index: list[int] = []
    number: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, span in enumerate(seg.passes):
        layer_start = st_start[span.layer_starts]
        layer_end = np.r_[layer_start[1:], int(st_end[span.layer_starts[-1] : span.layer_ends[-1]].max())]
        pass_index.extend([index] * len(layer_start))
        number.extend(range(span.first_layer, span.first_layer + len(layer_start)))
        starts.extend(layer_start.tolist())
        ends.extend(layer_end.tolist())
    numbers = np.asarray(number, dtype=np.int64)
    labels = [types[n] if types is not None and n < len(types) else "" for n in numbers.tolist()]
    return LayerTimes(
        np.asarray(pass_index, dtype=np.int64),
        numbers,
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        labels,
    )


def _pass_bounds(kernels: DeviceKernels, seg: Segmentation, times: LayerTimes) -> list[tuple[int, int]]:
    """[start, end] of every pass: the kernels between two passes' layers are split at their longest
    idle gap into the epilogue of one (final norm, lm_head, sampling) and the prologue of the next.
    Before the first and after the last pass, an idle gap far longer than any inside the layers
    (setup work, another request) ends the pass instead."""
    n = len(seg.passes)
    firsts = [int(times.start_ns[times.pass_index == p].min()) for p in range(n)]
    lasts = [int(times.end_ns[times.pass_index == p].max()) for p in range(n)]
    starts = [_edge_start(kernels, times, firsts[0])]
    ends: list[int] = []
    for p in range(n - 1):
        lo, hi = np.searchsorted(kernels.start, [lasts[p], firsts[p + 1]])
        point = np.r_[kernels.start[lo:hi], firsts[p + 1]]
        reach = np.maximum.accumulate(np.r_[lasts[p], kernels.end[lo:hi]])
        cut = int(np.argmax(point - reach))
        ends.append(int(reach[cut]))
        starts.append(int(point[cut]))
    ends.append(_edge_end(kernels, times, lasts[-1]))
    return list(zip(starts, ends, strict=True))


def _long_gap_limit(kernels: DeviceKernels, times: LayerTimes) -> int:
    """An idle gap longer than this is not part of a pass: 20x the longest gap inside the layers."""
    inside = (kernels.start >= times.start_ns[0]) & (kernels.end <= times.end_ns[-1])
    starts, ends = kernels.start[inside], np.maximum.accumulate(kernels.end[inside])
    longest = int((starts[1:] - ends[:-1]).max()) if len(starts) > 1 else 0
    return max(20 * longest, 1_000_000)


def _edge_start(kernels: DeviceKernels, times: LayerTimes, first_layer: int) -> int:
    hi = int(np.searchsorted(kernels.start, first_layer))
    if hi == 0:
        return first_layer
    point = np.r_[kernels.start[:hi], first_layer]
    reach = np.r_[np.iinfo(np.int64).min, np.maximum.accumulate(kernels.end[:hi])]
    gaps = point[1:] - reach[1:]
    cut = int(np.argmax(gaps))
    return int(point[cut + 1]) if gaps[cut] > _long_gap_limit(kernels, times) else int(point[0])


def _edge_end(kernels: DeviceKernels, times: LayerTimes, last_layer_end: int) -> int:
    lo = int(np.searchsorted(kernels.start, last_layer_end))
    if lo >= len(kernels):
        return max(last_layer_end, int(kernels.end[lo - 1 :].max()) if lo else last_layer_end)
    reach = np.maximum.accumulate(np.r_[last_layer_end, kernels.end[lo:]])
    gaps = kernels.start[lo:] - reach[:-1]
    cut = int(np.argmax(gaps))
    return int(reach[cut]) if gaps[cut] > _long_gap_limit(kernels, times) else int(reach[-1])


def _assign(
    kernels: DeviceKernels, times: LayerTimes, pass_bounds: list[tuple[int, int]]
) -> tuple[IntArray, IntArray]:
    """Layer and pass of every device kernel by its start time (-1: outside any layer / pass)."""
    layer_of = np.searchsorted(times.start_ns, kernels.start, side="right") - 1
    inside = (layer_of >= 0) & (kernels.start < times.end_ns[np.clip(layer_of, 0, None)])
    layer_of = np.where(inside, layer_of, -1)
    pass_starts = np.asarray([b[0] for b in pass_bounds], dtype=np.int64)
    pass_ends = np.asarray([b[1] for b in pass_bounds], dtype=np.int64)
    pass_of = np.searchsorted(pass_starts, kernels.start, side="right") - 1
    inside = (pass_of >= 0) & (kernels.start <= pass_ends[np.clip(pass_of, 0, None)])
    return layer_of.astype(np.int64), np.where(inside, pass_of, -1).astype(np.int64)


def _perfetto(kernels: DeviceKernels, start: int, end: int) -> PerfettoRange:
    return PerfettoRange(
        start_s=round((start - kernels.origin_ns) / 1e9, 9), end_s=round((end - kernels.origin_ns) / 1e9, 9)
    )


def _pass_rows(
    kernels: DeviceKernels,
    seg: Segmentation,
    times: LayerTimes,
    pass_bounds: list[tuple[int, int]],
    pass_of: IntArray,
    layer_of: IntArray,
) -> list[PassRow]:
    kernel_counts = np.bincount(pass_of[pass_of >= 0], minlength=len(pass_bounds))
    shapes = _shapes(kernels, seg, layer_of, times, [end - start for start, end in pass_bounds])
    rows: list[PassRow] = []
    for index, ((start, end), span) in enumerate(zip(pass_bounds, seg.passes, strict=True)):
        mine = times.pass_index == index
        walls = times.end_ns[mine] - times.start_ns[mine]
        layers_start, layers_end = int(times.start_ns[mine].min()), int(times.end_ns[mine].max())
        rows.append(
            PassRow(
                index=index,
                start_ns=start,
                end_ns=end,
                duration_ns=end - start,
                layers_start_ns=layers_start,
                layers_end_ns=layers_end,
                layers_ns=int(walls.sum()),
                prologue_ns=layers_start - start,
                epilogue_ns=end - layers_end,
                layer_count=int(mine.sum()),
                kernel_count=int(kernel_counts[index]),
                avg_layer_ns=int(walls.mean()) if len(walls) else None,
                first_layer_ns=int(walls[0]) if len(walls) and span.first_layer == 0 else None,
                shape=shapes[index],
                state="truncated" if span.truncated else "single",
                perfetto=_perfetto(kernels, start, end),
            )
        )
    _label_states(rows)
    return rows


def _shapes(
    kernels: DeviceKernels, seg: Segmentation, layer_of: IntArray, times: LayerTimes, durations: list[int]
) -> list[int]:
    """Shape id of every pass: same layer count, the same GEMM / attention / collective / MoE kernels
    in every layer, and a duration within 1.5x of its neighbours (prefill and decode of a CPU
    capture run the same operators). Small kernels are left out of the key: which of them a
    layer runs can vary (CPU operators standing in for kernels, lazy helpers)."""
    heavy = np.isin(kernels.category, HEAVY_CATEGORIES)
    layer_pass = np.where((layer_of >= 0) & heavy, times.pass_index[np.clip(layer_of, 0, None)], -1)
    groups: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for index, span in enumerate(seg.passes):
        mine = layer_of[layer_pass == index]
        codes = kernels.short_code[layer_pass == index]
        in_layers = [set(codes[mine == layer].tolist()) for layer in np.unique(mine).tolist()]
        core = tuple(sorted(set.intersection(*in_layers))) if in_layers else ()
        groups.setdefault((len(span.layer_starts), core), []).append(index)
    shapes = [0] * len(seg.passes)
    next_id = 0
    for members in groups.values():
        ordered = sorted(members, key=lambda i: durations[i])
        for position, index in enumerate(ordered):
            if position and durations[index] > SHAPE_DURATION_JUMP * durations[ordered[position - 1]]:
                next_id += 1
            shapes[index] = next_id
        next_id += 1
    remap: dict[int, int] = {}
    return [remap.setdefault(shape, len(remap)) for shape in shapes]


def _label_states(rows: list[PassRow]) -> None:
    """cold-start / steady-state within each shape; a shape seen once is 'single' (e.g. one prefill)."""
    by_shape: dict[int, list[PassRow]] = {}
    for row in rows:
        if row.state != "truncated":
            by_shape.setdefault(row.shape, []).append(row)
    for group in by_shape.values():
        if len(group) < 2:
            continue
        others = float(np.median([r.duration_ns for r in group[1:]]))
        state: PassState = (
            "cold-start" if group[0].duration_ns > COLD_START_FACTOR * others else "steady-state"
        )
        group[0].state = state
        for row in group[1:]:
            row.state = "steady-state"


def _pass_structure(
    seg: Segmentation, expected_source: str | None, anchor_names: list[str]
) -> PassStructure | None:
    """Layers per pass and the evidence that decided it (a config, --num-layers, or the trace itself).

    Without a layer count, an anchor that only runs in a backward pass is a problem too: the trace is
    a training step, whose forward and backward kernels do not form inference passes.
    """
    if not seg.passes:
        return None
    inference = seg.inference
    if inference is None:
        method = "--num-layers" if expected_source == "--num-layers" else "config"
        return PassStructure(
            layers_per_pass=seg.layers_per_pass,
            method=method,  # type: ignore[arg-type]
            plausible=True,
            reason=f"{expected_source} says {seg.layers_per_pass} layers",
        )
    problems = list(inference.problems)
    backward_anchor = load_profiles().plausibility.backward_anchor  # data/model_profiles.toml
    backward = [name for name in anchor_names if backward_anchor.search(name)]
    if backward and len(backward) == len(anchor_names):
        problems.append(
            f"the anchor ({', '.join(backward[:2])}) runs in a backward pass: this looks like a training "
            "step, not inference passes"
        )
    return PassStructure(
        layers_per_pass=inference.layers if not problems else None,
        method=inference.method,
        plausible=not problems,
        reason=inference.reason,
        layer_type_period=inference.layer_type_period,
        problems=problems,
        lower_bound=bool(inference.open_edges),
    )


def _count_warnings(
    passes: list[PassRow], seg: Segmentation, source: str | None, structure: PassStructure | None
) -> list[str]:
    warnings: list[str] = []
    expected = seg.layers_per_pass
    if structure is not None and not structure.plausible:
        warnings.append(
            f"the anchor count per pass is implausible: {'; '.join(structure.problems)} — the passes "
            "below are how the anchors fell, not a layer count; pass --config or --layers N"
        )
    for row in passes:
        if row.state == "truncated":
            of = f"{row.layer_count} of {expected} layers" if expected else f"{row.layer_count} layers"
            warnings.append(
                f"pass {row.index} is truncated ({of}: the trace "
                f"{'starts' if row.index == 0 else 'ends'} inside it)"
            )
        elif source is not None and expected is not None and row.layer_count != expected:
            warnings.append(
                f"pass {row.index}: {row.layer_count} layers found, {source} says {expected}; the "
                "table is a best effort (a missed or extra pass boundary, or a different model?)"
            )
    if not passes:
        warnings.append("no layers found: the anchor never occurs on this device")
    return warnings


def _select_pass(passes: list[PassRow], wanted: int | None) -> tuple[int | None, str]:
    if wanted is not None:
        if not 0 <= wanted < len(passes):
            raise InputError(
                None, f"--fwd-pass {wanted}: the trace has {len(passes)} passes (0..{len(passes) - 1})"
            )
        return wanted, f"--fwd-pass {wanted}"
    for state, why in (
        ("steady-state", "the first steady-state pass"),
        ("single", "the first complete pass"),
        ("cold-start", "the first complete pass (cold start)"),
    ):
        for row in passes:
            if row.state == state:
                return row.index, why
    return (passes[0].index, "only truncated passes were found") if passes else (None, "no passes found")


def _layer_rows(
    kernels: DeviceKernels, times: LayerTimes, layer_of: IntArray, selected: int
) -> list[LayerRow]:
    duration = kernels.end - kernels.start
    n_layers = len(times.start_ns)
    assigned = layer_of >= 0
    time_by_layer = np.bincount(layer_of[assigned], weights=duration[assigned], minlength=n_layers)
    count_by_layer = np.bincount(layer_of[assigned], minlength=n_layers)
    allreduce = np.bincount(layer_of[assigned & kernels.is_allreduce], minlength=n_layers)
    moe = np.bincount(layer_of[assigned & (kernels.category == MOE)], minlength=n_layers)
    rows: list[LayerRow] = []
    for index in np.flatnonzero(times.pass_index == selected).tolist():
        mine = layer_of == index
        total = float(time_by_layer[index])
        shares = _category_shares(kernels.category[mine], duration[mine], total)
        label = times.layer_type[index] or ("MoE" if moe[index] else "dense")
        start, end = int(times.start_ns[index]), int(times.end_ns[index])
        rows.append(
            LayerRow(
                pass_index=selected,
                layer=int(times.number[index]),
                layer_type=label,
                start_ns=start,
                end_ns=end,
                wall_ns=end - start,
                kernel_time_ns=int(total),
                kernel_count=int(count_by_layer[index]),
                allreduce_count=int(allreduce[index]),
                category_shares=shares,
                perfetto=_perfetto(kernels, start, end),
            )
        )
    return rows


def _category_shares(categories: IntArray, durations: IntArray, total: float) -> dict[str, float]:
    sums = np.bincount(categories, weights=durations, minlength=len(CATEGORIES))
    if total <= 0:
        return {}
    return {
        CATEGORIES[c]: round(float(sums[c]) / total, 4)
        for c in np.argsort(-sums, kind="stable")
        if sums[c] > 0
    }


def _clusters(layers: list[LayerRow]) -> list[LayerTypeCluster]:
    total_wall = sum(r.wall_ns for r in layers)
    clusters: list[LayerTypeCluster] = []
    for label in dict.fromkeys(r.layer_type for r in layers):
        group = [r for r in layers if r.layer_type == label]
        kernel_time = sum(r.kernel_time_ns for r in group)
        merged: dict[str, float] = {}
        for r in group:
            for category, share in r.category_shares.items():
                merged[category] = merged.get(category, 0.0) + share * r.kernel_time_ns
        clusters.append(
            LayerTypeCluster(
                layer_type=label,
                count=len(group),
                avg_wall_ns=sum(r.wall_ns for r in group) // len(group),
                avg_kernel_time_ns=kernel_time // len(group),
                share_of_layers=round(sum(r.wall_ns for r in group) / total_wall, 4) if total_wall else 0.0,
                category_shares={
                    c: round(v / kernel_time, 4) for c, v in sorted(merged.items(), key=lambda item: -item[1])
                }
                if kernel_time
                else {},
            )
        )
    return sorted(clusters, key=lambda c: -c.share_of_layers)


def _verdict(clusters: list[LayerTypeCluster], layers: list[LayerRow]) -> str:
    if not clusters:
        return "no layers found"
    top = clusters[0]
    mix = ", ".join(f"{c} {s:.0%}" for c, s in list(top.category_shares.items())[:3])
    busy = top.avg_kernel_time_ns / top.avg_wall_ns if top.avg_wall_ns else 0.0
    scope = (
        f"all {top.count} layers are {top.layer_type}"
        if len(clusters) == 1
        else f"{top.layer_type} layers ({top.count} of {len(layers)}) take {top.share_of_layers:.0%} "
        "of the layer time"
    )
    return (
        f"{scope}; avg {top.avg_wall_ns / 1e3:.1f} µs per layer, kernels busy {busy:.0%} of it; "
        f"kernel time: {mix}"
    )


def _flow_layer(layers: list[LayerRow], wanted: int | None) -> int:
    if wanted is not None:
        return _check_layer(layers, wanted)
    common = Counter(r.layer_type for r in layers).most_common(1)[0][0]
    candidates = [i for i, r in enumerate(layers) if r.layer_type == common]
    return next((i for i in candidates if layers[i].layer >= 1), candidates[0])


def _check_layer(layers: list[LayerRow], wanted: int) -> int:
    for index, row in enumerate(layers):
        if row.layer == wanted:
            return index
    numbers = f"{layers[0].layer}..{layers[-1].layer}"
    raise InputError(None, f"layer {wanted} is not in the selected pass (layers {numbers})")


def _compute_flow(
    kernels: DeviceKernels, times: LayerTimes, layer_of: IntArray, row: LayerRow, shapes: LaunchShapes
) -> ComputeFlow:
    index = int(np.flatnonzero((times.pass_index == row.pass_index) & (times.number == row.layer))[0])
    mine = np.flatnonzero(layer_of == index)
    durations = kernels.end[mine] - kernels.start[mine]
    total = float(durations.sum())
    ranks = np.empty(len(mine), dtype=np.int64)
    ranks[np.argsort(-durations, kind="stable")] = np.arange(1, len(mine) + 1)
    dims = [shapes.input_dims(int(kernels.correlation[k])) for k in mine.tolist()]
    rows = [
        FlowRow(
            rank=int(ranks[i]),
            category=CATEGORIES[int(kernels.category[k])],
            name=kernels.short_names[int(kernels.short_code[k])],
            duration_ns=int(durations[i]),
            share=round(float(durations[i]) / total, 4) if total else 0.0,
            offset_ns=int(kernels.start[k] - row.start_ns),
            stream=int(kernels.stream[k]),
            input_dims=dims[i],
        )
        for i, k in enumerate(mine.tolist())
    ]
    missing = [int(kernels.correlation[k]) for k, d in zip(mine.tolist(), dims, strict=True) if d is None]
    if not missing:
        reason = None
    elif all(shapes.graph_launched(c) for c in missing):
        reason = GRAPH_REASON
    elif not shapes.has_dims:
        reason = (
            NO_DIMS_REASON if kernels.trace.format == "kineto" else "nsys exports carry no operator shapes"
        )
    else:
        reason = f"{len(missing)} of {len(dims)} kernels have no shaped launching operator ({GRAPH_REASON})"
    return ComputeFlow(
        pass_index=row.pass_index,
        layer=row.layer,
        layer_type=row.layer_type,
        wall_ns=row.wall_ns,
        kernel_time_ns=int(total),
        rows=rows,
        input_dims_na_reason=reason,
    )


def _diff(a: ComputeFlow, b: ComputeFlow) -> LayerDiff:
    """Kernels matched by (simplified name, occurrence within the layer)."""

    def keyed(flow: ComputeFlow) -> dict[tuple[str, int], FlowRow]:
        seen: Counter[str] = Counter()
        out: dict[tuple[str, int], FlowRow] = {}
        for row in flow.rows:
            seen[row.name] += 1
            out[(row.name, seen[row.name])] = row
        return out

    left, right = keyed(a), keyed(b)
    shared = [
        DiffRow(
            name=k[0],
            occurrence=k[1],
            a_ns=left[k].duration_ns,
            b_ns=right[k].duration_ns,
            delta_ns=right[k].duration_ns - left[k].duration_ns,
        )
        for k in left
        if k in right
    ]
    return LayerDiff(
        layer_a=a.layer,
        layer_b=b.layer,
        type_a=a.layer_type,
        type_b=b.layer_type,
        wall_a_ns=a.wall_ns,
        wall_b_ns=b.wall_ns,
        only_in_a=[r for k, r in left.items() if k not in right],
        only_in_b=[r for k, r in right.items() if k not in left],
        shared=sorted(shared, key=lambda d: -abs(d.delta_ns)),
    )
