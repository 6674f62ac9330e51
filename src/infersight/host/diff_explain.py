"""What a diff explains before it blames (docs/methodology.md §4, diff).

A per-operation delta only means something when the two runs did the same work on the same
hardware. So before ranking operations, a diff states:

* the **environment** of each side — GPU model, GPUs in the trace, world size, software versions,
  dtype and batch where the trace records them — and which of these changed;
* the **wall decomposition** — the per-step wall of each side split into the attribution buckets of
  §3.2 (gpu / communication / copy / host, gpu further by operator category) over the same steady
  step windows the diff averages, so the bucket deltas sum exactly to the step-wall delta;
* the **workload similarity** — the share of kernel time both traces spend in kernels the other
  trace also runs; below a threshold the traces run different workloads and per-op deltas are not
  blame;
* per operation, the **bucket its delta falls in**: what the GPU was doing while the host sat in the
  operation's self time. A host op that waits on the GPU (``aten::_local_scalar_dense``,
  ``cudaMemcpy`` D2H) grows in the gpu bucket when kernels get slower; host work that grows shows
  up in the host bucket.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.attribution import (
    BUCKETS,
    DeviceActivity,
    bucket_times,
    category_times,
    device_activity,
    kernel_labels,
)
from infersight.host.results import (
    BucketRow,
    EnvironmentChange,
    IterationSet,
    RunEnvironment,
    StepBuckets,
    WallDecomposition,
    WorkloadSimilarity,
)
from infersight.model import Trace

NS_PER_US = 1_000.0
Spans = tuple[np.ndarray, np.ndarray]
WORLD_SIZE_KEY = "distributedInfo.world_size"
WindowKind = Literal["steps", "activity"]


# ---------------------------------------------------------------- environment


def active_devices(trace: Trace) -> list[int]:
    """Devices with any GPU activity (kernel, memcpy, memset) in this trace."""
    found = {
        int(d) for t in (trace.kernels, trace.memcpy, trace.memset) for d in np.unique(t["device"].to_numpy())
    }
    return sorted(d for d in found if d >= 0)


def run_environment(
    trace: Trace, iterations: IterationSet, cfg: dict[str, Any], labels: pd.DataFrame | None = None
) -> RunEnvironment:
    """The environment facts one trace records (None / empty where it records nothing)."""
    devices = active_devices(trace)
    names = sorted({str(trace.gpus[d].name) for d in devices if d in trace.gpus and trace.gpus[d].name})
    world = trace.metadata.get(WORLD_SIZE_KEY, "")
    return RunEnvironment(
        gpu_model=" + ".join(names) if names else None,
        gpus_active=len(devices),
        gpus_visible=len(trace.gpus),
        world_size=int(world) if world.isdigit() else None,
        rank=trace.rank,
        versions=_versions(trace.metadata, cfg),
        dtypes=_matching(trace.metadata, str(cfg["dtype_key_pattern"])),
        batch={**_matching(trace.metadata, str(cfg["batch_key_pattern"])), **_step_batch(iterations, cfg)},
        kernel_dtypes=kernel_dtype_hint(trace, labels if labels is not None else kernel_labels(trace), cfg),
    )


def kernel_dtype_hint(trace: Trace, labels: pd.DataFrame, cfg: dict[str, Any]) -> dict[str, float]:
    """Share of matmul-class kernel time per dtype token found in the kernel names.

    Headers rarely record the dtype; GEMM/attention kernel names usually do (bf16, e4m3, sgemm).
    The first matching token of ``dtype_hint_tokens`` wins; names with none are ``unknown``.
    """
    k = trace.kernels
    pick = np.isin(labels["category"].to_numpy(), list(cfg["dtype_hint_categories"]))
    if not pick.any():
        return {}
    names = pd.Categorical(k["name"].to_numpy()[pick])
    tokens = [(str(t), re.compile(str(p))) for t, p in cfg["dtype_hint_tokens"]]
    per_name = np.array(
        [next((t for t, p in tokens if p.search(str(n))), "unknown") for n in names.categories], dtype=object
    )
    duration = (k["end"] - k["start"]).to_numpy(np.int64)[pick]
    totals = pd.Series(duration).groupby(per_name[np.asarray(names.codes)]).sum()
    grand = float(totals.sum())
    if grand <= 0:
        return {}
    return {str(t): round(float(v) / grand, 4) for t, v in totals.sort_values(ascending=False).items()}


def dominant_dtype(hint: dict[str, float]) -> str | None:
    """The dtype token with most matmul-class kernel time (``unknown`` does not count)."""
    known = {k: v for k, v in hint.items() if k != "unknown"}
    return max(known, key=lambda k: known[k]) if known else None


def _matching(meta: dict[str, str], pattern: str) -> dict[str, str]:
    key = re.compile(pattern)
    return {k: v for k, v in meta.items() if key.search(k)}


def _versions(meta: dict[str, str], cfg: dict[str, Any]) -> dict[str, str]:
    """Header version keys, plus the versions of the listed packages in a recorded pip list."""
    ignored = set(cfg["ignored_version_keys"])
    found = {k: v for k, v in _matching(meta, str(cfg["version_key_pattern"])).items() if k not in ignored}
    packages = "|".join(re.escape(p) for p in cfg["packages"])
    pin = re.compile(rf'(?<![\w.-])({packages})==([^",\]\s]+)', re.IGNORECASE)
    out: dict[str, str] = {}
    for key, value in found.items():
        pins = pin.findall(value)
        if pins:  # a package list: keep only the packages that shape an inference run
            out.update({name.lower(): version for name, version in pins})
        elif len(value) <= 64:
            out[key] = value
    return out


def _step_batch(iterations: IterationSet, cfg: dict[str, Any]) -> dict[str, str]:
    """Requests (and tokens) per steady step from step-marker names that carry them."""
    pattern = re.compile(str(cfg["batch_step_pattern"]))
    rows = [m.groupdict() for s in iterations.steady() if (m := pattern.search(s.label))]
    if not rows:
        return {}
    out: dict[str, str] = {}
    for field in ("context", "generation", "tokens"):
        values = [float(r[field]) for r in rows if r.get(field) is not None]
        if values:
            out[f"step marker {field} per step"] = f"{np.mean(values):g}"
    return out


def environment_changes(base: RunEnvironment, target: RunEnvironment) -> list[EnvironmentChange]:
    """Every recorded fact that differs (a fact only one side records counts as a change)."""
    changes = []
    scalar = (
        ("gpu_model", base.gpu_model, target.gpu_model, True),
        ("world_size", base.world_size, target.world_size, True),
        ("gpus_active", base.gpus_active, target.gpus_active, True),
    )
    for field, a, b, hardware in scalar:
        if a is not None and b is not None and a != b:
            changes.append(EnvironmentChange(field=field, baseline=str(a), target=str(b), hardware=hardware))
    dtype_a, dtype_b = dominant_dtype(base.kernel_dtypes), dominant_dtype(target.kernel_dtypes)
    if dtype_a is not None and dtype_b is not None and dtype_a != dtype_b:
        changes.append(
            EnvironmentChange(
                field="dtype:matmul kernels (hint)", baseline=dtype_a, target=dtype_b, hardware=False
            )
        )
    for prefix, da, db in (
        ("version", base.versions, target.versions),
        ("dtype", base.dtypes, target.dtypes),
        ("batch", base.batch, target.batch),
    ):
        for key in sorted(set(da) | set(db)):
            if da.get(key) != db.get(key):
                changes.append(
                    EnvironmentChange(
                        field=f"{prefix}:{key}", baseline=da.get(key), target=db.get(key), hardware=False
                    )
                )
    return changes


def hardware_warning(base: RunEnvironment, target: RunEnvironment, gpu_share: float | None) -> str:
    """The sentence that says the comparison mixes hardware, and what that does to the delta."""

    def side(env: RunEnvironment) -> str:
        count, unit = (env.world_size, "rank") if env.world_size is not None else (env.gpus_active, "GPU")
        return f"{env.gpu_model or 'unknown GPU'} ×{count} {unit}{'s' if count != 1 else ''}"

    text = f"the comparison mixes hardware: {side(base)} vs {side(target)}"
    if gpu_share is not None and gpu_share >= 0.5:
        return f"{text}; GPU kernel time is {gpu_share:.0%} of the step-wall delta, which that change drives"
    return f"{text}; kernel times are not comparable across it"


# ---------------------------------------------------------------- workload similarity


def workload_similarity(
    base: Trace, target: Trace, cfg: dict[str, Any], labels: tuple[pd.DataFrame, pd.DataFrame]
) -> WorkloadSimilarity:
    """Share of both traces' kernel time in kernels (simplified names) the other trace also runs."""
    a, b = _time_by_name(base, labels[0]), _time_by_name(target, labels[1])
    shared = a.index.intersection(b.index)
    a_shared = float(a[shared].sum()) / float(a.sum()) if a.sum() > 0 else 0.0
    b_shared = float(b[shared].sum()) / float(b.sum()) if b.sum() > 0 else 0.0
    total = float(a.sum() + b.sum())
    both = float(a[shared].sum() + b[shared].sum()) / total if total > 0 else 0.0
    threshold = float(cfg["min_shared_kernel_time"])
    return WorkloadSimilarity(
        shared_kernel_time=both,
        baseline_shared=a_shared,
        target_shared=b_shared,
        shared_names=len(shared),
        baseline_names=len(a),
        target_names=len(b),
        threshold=threshold,
        threshold_source=str(cfg["shared_kernel_time_source"]),
        comparable=both >= threshold,
    )


def _time_by_name(trace: Trace, labels: pd.DataFrame) -> pd.Series:
    k = trace.kernels
    duration = (k["end"] - k["start"]).to_numpy(np.int64)
    return pd.Series(duration).groupby(labels["simple"].to_numpy()).sum()


# ---------------------------------------------------------------- wall decomposition


def step_windows(trace: Trace, iterations: IterationSet) -> tuple[dict[int, Spans], WindowKind]:
    """Per device, the steady steps' windows; the device activity windows when there are no steps."""
    steady = iterations.steady()
    if steady:
        out: dict[int, Spans] = {}
        for device in sorted({s.device for s in steady}):
            mine = [s for s in steady if s.device == device]
            out[device] = (
                np.array([s.start_ns for s in mine], dtype=np.int64),
                np.array([s.end_ns for s in mine], dtype=np.int64),
            )
        return out, "steps"
    return {}, "activity"


def step_buckets(trace: Trace, iterations: IterationSet, labels: pd.DataFrame) -> StepBuckets:
    """The trace's steady-step windows (or its activity window) split into the buckets."""
    windows, kind = step_windows(trace, iterations)
    activities = {d: device_activity(trace, d, labels) for d in active_devices(trace)}
    if not windows:
        for device, activity in activities.items():
            span = activity.span()
            if span is not None and span[1] > span[0]:
                windows[device] = (np.array([span[0]], dtype=np.int64), np.array([span[1]], dtype=np.int64))
    times = dict.fromkeys(BUCKETS, 0)
    categories: dict[str, float] = {}
    wall = 0
    for device, (starts, ends) in windows.items():
        activity = activities.get(device) or device_activity(trace, device, labels)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):  # per step: its own window
            window = (np.array([s], dtype=np.int64), np.array([e], dtype=np.int64))
            part = bucket_times(activity, window)
            for bucket in BUCKETS:
                times[bucket] += part[bucket]
            for row in category_times(activity, window):  # the gpu bucket split by kernel-time share
                categories[row.category] = categories.get(row.category, 0.0) + row.share * part["gpu"]
            wall += e - s
    steps = sum(len(w[0]) for w in windows.values()) if kind == "steps" else 1
    return StepBuckets(steps=steps, window=kind, wall_ns=wall, times_ns=times, gpu_categories_ns=categories)


def _bucket_row(name: str, base: float, target: float, wall_delta: float) -> BucketRow:
    delta = target - base
    return BucketRow(
        name=name,
        baseline=base,
        target=target,
        delta=delta,
        share_of_wall_delta=delta / wall_delta if wall_delta else None,
    )


def wall_decomposition(base: StepBuckets, target: StepBuckets) -> WallDecomposition:
    """Per-step bucket averages of both sides and their deltas (which sum to the wall delta)."""

    def per_step(ns: float, side: StepBuckets) -> float:
        return ns / NS_PER_US / side.steps if side.steps else 0.0

    wall_b, wall_t = per_step(base.wall_ns, base), per_step(target.wall_ns, target)
    wall_delta = wall_t - wall_b
    buckets = [
        _bucket_row(b, per_step(base.times_ns[b], base), per_step(target.times_ns[b], target), wall_delta)
        for b in BUCKETS
    ]
    names = set(base.gpu_categories_ns) | set(target.gpu_categories_ns)
    categories = sorted(
        (
            _bucket_row(
                f"gpu:{c}",
                per_step(base.gpu_categories_ns.get(c, 0.0), base),
                per_step(target.gpu_categories_ns.get(c, 0.0), target),
                wall_delta,
            )
            for c in names
        ),
        key=lambda r: (-abs(r.delta), -r.baseline),
    )
    sides = [name for name, side in (("baseline", base), ("target", target)) if side.window == "activity"]
    note = None
    if sides:
        note = f"no steps isolated in the {' and '.join(sides)}: the whole activity window counts as one step"
    return WallDecomposition(
        baseline=base,
        target=target,
        wall=_bucket_row("step wall", wall_b, wall_t, wall_delta),
        buckets=buckets,
        gpu_categories=categories,
        note=note,
    )


# ---------------------------------------------------------------- per-op buckets


def bucket_spans(activity: DeviceActivity) -> dict[str, Spans]:
    """Disjoint interval sets of the gpu, communication and copy buckets (host is the rest)."""
    compute = intervals.union(*activity.compute)
    comm_all = (
        np.concatenate([activity.compute[0], activity.comm[0]]),
        np.concatenate([activity.compute[1], activity.comm[1]]),
    )
    with_comm = intervals.union(*comm_all)
    everything = intervals.union(
        np.concatenate([comm_all[0], activity.copy[0]]), np.concatenate([comm_all[1], activity.copy[1]])
    )
    return {
        "gpu": compute,
        "communication": intervals.subtract(*with_comm, *compute),
        "copy": intervals.subtract(*everything, *with_comm),
    }


def self_pieces(
    starts: np.ndarray, ends: np.ndarray, threads: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(range index, start, end) of each stretch of a range that no nested range covers.

    Same nesting as :func:`infersight.host.diff.self_times`: a range is a child of the innermost
    open range of its thread that contains its start; the pieces of a range sum to its self time.
    """
    order = np.lexsort((-ends, starts, threads))
    cursor = starts.astype(np.int64).copy()
    out_i: list[int] = []
    out_s: list[int] = []
    out_e: list[int] = []

    def close(j: int) -> None:
        if cursor[j] < ends[j]:
            out_i.append(j)
            out_s.append(int(cursor[j]))
            out_e.append(int(ends[j]))

    stack: list[int] = []
    last_thread = None
    for i in order.tolist():  # per range: a stack walk, O(n)
        if threads[i] != last_thread:
            while stack:
                close(stack.pop())
            last_thread = threads[i]
        while stack and ends[stack[-1]] <= starts[i]:
            close(stack.pop())
        if stack:
            parent = stack[-1]
            if cursor[parent] < starts[i]:
                out_i.append(parent)
                out_s.append(int(cursor[parent]))
                out_e.append(int(starts[i]))
            cursor[parent] = max(cursor[parent], min(ends[i], ends[parent]))
        stack.append(i)
    while stack:
        close(stack.pop())
    return np.array(out_i, dtype=np.int64), np.array(out_s, dtype=np.int64), np.array(out_e, dtype=np.int64)


def pieces_in_buckets(spans: dict[str, Spans], starts: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray]:
    """Per piece, ns inside each bucket (host = what no GPU bucket covers)."""
    out = {b: intervals.overlap_lengths(starts, ends, spans[b]) for b in ("gpu", "communication", "copy")}
    out["host"] = (ends - starts) - out["gpu"] - out["communication"] - out["copy"]
    return out


def op_bucket(bucket_delta: dict[str, float], delta: float) -> str | None:
    """The bucket that carries most of an op's delta, in the delta's direction."""
    if not bucket_delta or delta == 0:
        return None
    sign = 1.0 if delta > 0 else -1.0
    best = max(BUCKETS, key=lambda b: sign * bucket_delta.get(b, 0.0))
    return best if sign * bucket_delta.get(best, 0.0) > 0 else None
