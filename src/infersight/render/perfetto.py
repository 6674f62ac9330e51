"""The annotated trace as Chrome trace-event JSON, the format Perfetto UI and chrome://tracing open.

Why this format: it is where GPU engineers already look, and the JSON object form
(``{"traceEvents": [...]}``) loads in Perfetto UI, ``chrome://tracing`` and Perfetto's trace
processor alike. Layout:

* one process per GPU (``GPU 0 · NVIDIA H100``), holding infersight's tracks first (where the
  time goes, idle gaps by cause, phases, steps, findings) and then one thread per stream with its
  kernels, memcpys and memsets, plus the GPU-side annotations;
* one process per host process, with two threads per host thread: its annotation / NVTX /
  operator ranges, and its CUDA/HIP API calls;
* findings not tied to one device on a process of their own;
* a flow arrow (``ph: "s"`` / ``"f"``) from each launching API call to the kernel or copy it
  launched (joined on process + correlation id, as Kineto's own ``ac2g`` flows).

Events are complete events (``ph: "X"``) with ``ts``/``dur`` in microseconds (floats; the model's
integer nanoseconds divided by 1000, so ``round(dur * 1000)`` gives the nanoseconds back) and
track names as metadata events (``ph: "M"``). Big traces: each table is turned into events from
its numpy columns in chunks and written straight to the stream, so memory holds one chunk of
dicts at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from infersight import __version__
from infersight.analyses.annotations import DeviceAnnotation, GapCauses, TraceAnnotation
from infersight.analyses.attribution import BUCKETS, kernel_labels
from infersight.analyses.results import DeviceAttribution
from infersight.api._core import AnnotatedTraces
from infersight.model import Trace
from infersight.rules.finding import Finding

CHUNK = 100_000
# MAJOR.MINOR of the annotated trace's otherData: a new optional key bumps the minor.
ANNOTATE_SCHEMA_VERSION = "1.0"
ATTRIBUTION_TRACK = "infersight: where the time goes"
GAPS_TRACK = "infersight: idle gaps by likely cause"
PHASES_TRACK = "infersight: phases"
STEPS_TRACK = "infersight: steps"
FINDINGS_TRACK = "infersight: findings"
RUN_FINDINGS_PROCESS = "infersight: findings about the whole run"
# Chrome trace reserved colour names (catapult's colour scheme): green = GPU busy, purple =
# collectives, blue = copies, red = nothing runs.
BUCKET_COLOURS = {
    "gpu": "thread_state_running",
    "communication": "rail_animation",
    "copy": "thread_state_runnable",
    "host": "terrible",
}
# gap causes from short (normal dispatch) to long (host sync): yellow -> orange -> red
CAUSE_COLOURS = ("good", "good", "yellow", "yellow", "bad", "bad", "terrible", "terrible", "terrible")
GAP_NAMING = (
    "by its length alone: the host activity a gap of this length usually means in LLM serving "
    "(docs/methodology.md §4 gap buckets); `infersight host` looks at what the host did"
)
SEVERITY_COLOURS = {"critical": "terrible", "warning": "bad", "info": "generic_work"}
STREAM_SORT = 100
NS_PER_US = 1000.0


# ---------------------------------------------------------------- track layout


class ByteSink(Protocol):
    """Where the file goes: an open binary file, a GzipFile, a BytesIO."""

    def write(self, data: bytes, /) -> object: ...


class _Layout:
    """Process and thread ids with their names: the metadata events of the file."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []
        self._pids: dict[tuple[Any, ...], int] = {}
        self._tids: dict[tuple[int, tuple[Any, ...]], int] = {}

    def process(self, key: tuple[Any, ...], name: str, sort: int) -> int:
        if key not in self._pids:
            pid = len(self._pids) + 1
            self._pids[key] = pid
            self.metadata += [
                _meta("process_name", pid, 0, {"name": name}),
                _meta("process_sort_index", pid, 0, {"sort_index": sort}),
            ]
        return self._pids[key]

    def thread(self, pid: int, key: tuple[Any, ...], name: str, sort: int) -> int:
        if (pid, key) not in self._tids:
            tid = len(self._tids) + 1
            self._tids[(pid, key)] = tid
            self.metadata += [
                _meta("thread_name", pid, tid, {"name": name}),
                _meta("thread_sort_index", pid, tid, {"sort_index": sort}),
            ]
        return self._tids[(pid, key)]


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args}


# ---------------------------------------------------------------- event building


def _names(values: pd.Series) -> np.ndarray:
    """Strings of a (categorical) column as an object array, converting each category once."""
    cat = pd.Categorical(values)
    labels = np.asarray(cat.categories.astype(str), dtype=object)
    codes = np.asarray(cat.codes)
    if labels.size == 0:
        return np.full(codes.size, "", dtype=object)
    return np.where(codes >= 0, labels[np.maximum(codes, 0)], "")


def _slices(
    cat: str,
    names: np.ndarray,
    start_ns: np.ndarray,
    end_ns: np.ndarray,
    pid: int | np.ndarray,
    tid: int | np.ndarray,
    args: dict[str, np.ndarray] | None = None,
    cname: str | np.ndarray | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Complete events from columns, CHUNK at a time (one dict per event, nothing else per row)."""
    n = len(names)
    pids = np.broadcast_to(np.asarray(pid), (n,))
    tids = np.broadcast_to(np.asarray(tid), (n,))
    keys = tuple(args) if args else ()
    colours = None if cname is None else np.broadcast_to(np.asarray(cname, dtype=object), (n,))
    start = np.asarray(start_ns, dtype=np.int64)
    dur = np.asarray(end_ns, dtype=np.int64) - start
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        columns = [
            names[a:b].tolist(),
            (start[a:b] / NS_PER_US).tolist(),
            (dur[a:b] / NS_PER_US).tolist(),
            pids[a:b].tolist(),
            tids[a:b].tolist(),
        ]
        columns += [np.asarray(args[k])[a:b].tolist() for k in keys] if args else []
        events = [
            {"ph": "X", "cat": cat, "name": row[0], "ts": row[1], "dur": row[2], "pid": row[3], "tid": row[4]}
            for row in zip(*columns, strict=True)
        ]
        if keys:
            for event, row in zip(events, zip(*columns[5:], strict=True), strict=True):
                event["args"] = dict(zip(keys, row, strict=True))
        if colours is not None:
            for event, colour in zip(events, colours[a:b].tolist(), strict=True):
                event["cname"] = colour
        yield events


class _Writer:
    """Streams ``{"traceEvents": [...], ...}`` to a binary file, counting events per kind."""

    def __init__(self, stream: ByteSink) -> None:
        self.stream = stream
        self.counts: Counter[str] = Counter()
        self._first = True
        stream.write(b'{"traceEvents":[')

    def add(self, kind: str, chunks: Iterator[list[dict[str, Any]]] | Sequence[list[dict[str, Any]]]) -> None:
        for events in chunks:
            if not events:
                continue
            body = orjson.dumps(events)[1:-1]
            self.stream.write(body if self._first else b"," + body)
            self._first = False
            self.counts[kind] += len(events)

    def close(self, other: dict[str, Any]) -> None:
        self.stream.write(b'],"displayTimeUnit":"ns","otherData":' + orjson.dumps(other) + b"}")


# ---------------------------------------------------------------- the file


def write_chrome_trace(annotated: AnnotatedTraces, stream: ByteSink) -> dict[str, int]:
    """Write the traces' own tracks and infersight's tracks; returns the event count per kind.

    Kinds: kernels, memcpy, memset, api, ranges, gpu_ranges (the traces' own events), flows (two
    events per launch arrow), attribution, gaps, phases, steps, findings (infersight's slices),
    metadata (track names).
    """
    layout = _Layout()
    out = _Writer(stream)
    several = len(annotated.traces) > 1
    device_pids: dict[tuple[int, int], int] = {}
    for index, annotation in enumerate(annotated.annotations):
        prefix = f"{annotation.trace.label()} · " if several else ""
        pids, gpu_work = _gpu_tracks(out, layout, index, prefix, annotation, annotated)
        device_pids.update(pids)
        _launch_flows(out, _host_tracks(out, layout, index, prefix, annotation.trace), gpu_work)
    _finding_tracks(out, layout, annotated, device_pids)
    out.add("metadata", [layout.metadata])
    out.close(_other_data(annotated))
    return dict(out.counts)


def _other_data(annotated: AnnotatedTraces) -> dict[str, Any]:
    primary = annotated.report.profile.primary_bottleneck
    return {
        "schema_version": ANNOTATE_SCHEMA_VERSION,
        "producer": f"infersight {__version__} annotate",
        "inputs": [t.source for t in annotated.traces],
        "primary_bottleneck": primary.bucket if primary is not None else None,
        "attribution": "each instant of a device's activity window is one of gpu / communication / copy / "
        "host (docs/methodology.md §3.2)",
        "gap_causes": f"each host-bucket stretch is named {GAP_NAMING}",
    }


# ---------------------------------------------------------------- GPU side


def _gpu_devices(trace: Trace, annotation: TraceAnnotation) -> list[int]:
    gpu_ranges = trace.ranges["device"].to_numpy()
    found = {int(d) for t in (trace.kernels, trace.memcpy, trace.memset) for d in t["device"].unique()}
    found |= {int(d) for d in np.unique(gpu_ranges[gpu_ranges >= 0])}
    found |= {d.device for d in annotation.devices}
    return sorted(found)


def _gpu_process_name(trace: Trace, device: int, prefix: str) -> str:
    if trace.device_kind == "cpu":
        return f"{prefix}CPU operators analysed as kernels (device {device})"
    gpu = trace.gpus.get(device)
    name = gpu.name if gpu is not None and gpu.name else None
    return f"{prefix}GPU {device}" + (f" · {name}" if name else "")


def _gpu_tracks(
    out: _Writer,
    layout: _Layout,
    index: int,
    prefix: str,
    annotation: TraceAnnotation,
    annotated: AnnotatedTraces,
) -> tuple[dict[tuple[int, int], int], pd.DataFrame]:
    """Each device's process: infersight tracks, then streams.

    Returns (trace, device) -> pid, and where each kernel / copy was drawn (for the launch flows).
    """
    trace, report = annotation.trace, annotated.report
    pids = {
        (index, d): layout.process(("gpu", index, d), _gpu_process_name(trace, d, prefix), index * 1000 + d)
        for d in _gpu_devices(trace, annotation)
    }
    for device in annotation.devices:
        _attribution_tracks(out, layout, pids[(index, device.device)], device, annotated.gap_causes)
    attribution = [
        d for d in report.profile.time_attribution if d.trace == trace.source and d.rank == trace.rank
    ]
    _step_tracks(out, layout, index, annotation, pids, attribution)
    return pids, _stream_tracks(out, layout, index, trace, pids)


def _attribution_tracks(
    out: _Writer, layout: _Layout, pid: int, device: DeviceAnnotation, causes: GapCauses
) -> None:
    tid = layout.thread(pid, ("attribution",), ATTRIBUTION_TRACK, 0)
    for bucket in BUCKETS:
        starts, ends = device.buckets[bucket]
        names = np.full(starts.size, bucket, dtype=object)
        out.add(
            "attribution", _slices("infersight", names, starts, ends, pid, tid, cname=BUCKET_COLOURS[bucket])
        )
    starts, ends = device.buckets["host"]
    if starts.size == 0:
        return
    gap_tid = layout.thread(pid, ("gaps",), GAPS_TRACK, 1)
    which = device.host_cause
    cause = np.asarray(causes.causes, dtype=object)
    ranges = np.asarray([_bucket_range(causes, i) for i in range(len(causes.causes))], dtype=object)
    colours = np.asarray([CAUSE_COLOURS[min(i, len(CAUSE_COLOURS) - 1)] for i in range(len(causes.causes))])
    out.add(
        "gaps",
        _slices(
            "infersight",
            (cause + " (" + ranges + ")")[which],
            starts,
            ends,
            pid,
            gap_tid,
            args={
                "gap length": ranges[which],
                "likely cause": cause[which],
            },
            cname=colours.astype(object)[which],
        ),
    )


def _bucket_range(causes: GapCauses, i: int) -> str:
    lower = causes.edges_ns[i]
    if i + 1 < len(causes.edges_ns):
        return f"{_us(lower)}–{_us(causes.edges_ns[i + 1])}"
    return f"≥ {_us(lower)}"


def _us(ns: int) -> str:
    return f"{ns / 1e6:g} ms" if ns >= 1_000_000 else f"{ns / 1e3:g} µs"


def _part_shares(
    attribution: list[DeviceAttribution], device: int, *, steps: bool
) -> dict[tuple[str, int | None], str]:
    """(phase, step) -> "gpu 85% · communication 9% · ..." from the report, for a slice's args."""
    out: dict[tuple[str, int | None], str] = {}
    for part in (p for d in attribution if d.device == device for p in (d.steps if steps else d.phases)):
        text = " · ".join(f"{b} {getattr(part.shares, b):.0%}" for b in BUCKETS)
        out[(part.phase, part.step)] = f"{text} (docs/methodology.md §3.2)"
    return out


def _step_tracks(
    out: _Writer,
    layout: _Layout,
    index: int,
    annotation: TraceAnnotation,
    pids: dict[tuple[int, int], int],
    attribution: list[DeviceAttribution],
) -> None:
    """Phase runs and steps per device, each with its share of the buckets from the report."""
    runs = annotation.phase_runs()
    for device in np.unique(runs["device"].to_numpy(np.int64)):
        group = runs[runs["device"].to_numpy(np.int64) == device]
        pid = pids[(index, int(device))]
        tid = layout.thread(pid, ("phases",), PHASES_TRACK, 2)
        shares = _part_shares(attribution, int(device), steps=False)
        out.add(
            "phases",
            _slices(
                "infersight",
                group["phase"].to_numpy(object),
                group["start"].to_numpy(np.int64),
                group["end"].to_numpy(np.int64),
                pid,
                tid,
                args={
                    "steps": group["steps"].to_numpy(np.int64),
                    "labelled by": np.full(len(group), annotation.phase_method, dtype=object),
                    "where the time goes (whole phase)": np.asarray(
                        [shares.get((p, None), "") for p in group["phase"].tolist()], dtype=object
                    ),
                },
            ),
        )
    steps = annotation.steps
    for device in np.unique(steps["device"].to_numpy(np.int64)):
        group = steps[steps["device"].to_numpy(np.int64) == device]
        pid = pids[(index, int(device))]
        tid = layout.thread(pid, ("steps",), STEPS_TRACK, 3)
        phase = group["phase"].astype(str).to_numpy(object)
        step = group["step"].to_numpy(np.int64)
        names = np.asarray([f"{p} step {s}".lstrip() for p, s in zip(phase, step, strict=True)], dtype=object)
        shares = _part_shares(attribution, int(device), steps=True)
        where = [shares.get((p, s), "") for p, s in zip(phase.tolist(), step.tolist(), strict=True)]
        out.add(
            "steps",
            _slices(
                "infersight",
                names,
                group["start"].to_numpy(np.int64),
                group["end"].to_numpy(np.int64),
                pid,
                tid,
                args={"phase": phase, "step": step, "where the time goes": np.asarray(where, dtype=object)},
            ),
        )


def _stream_tids(
    layout: _Layout, pid_of: dict[int, int], devices: np.ndarray, streams: np.ndarray
) -> np.ndarray:
    """Thread id per row: one track per (device, stream), created once per distinct pair."""
    if devices.size == 0:
        return np.empty(0, dtype=np.int64)
    pairs = np.stack([devices.astype(np.int64), streams.astype(np.int64)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    tids = np.asarray(
        [
            layout.thread(pid_of[int(d)], ("stream", int(s)), f"stream {s}", STREAM_SORT + max(int(s), 0))
            for d, s in unique
        ],
        dtype=np.int64,
    )
    return tids[np.asarray(inverse).reshape(-1)]


def _stream_tracks(
    out: _Writer, layout: _Layout, index: int, trace: Trace, pids: dict[tuple[int, int], int]
) -> pd.DataFrame:
    """Kernels, memcpys and memsets on their stream tracks; returns where each one was drawn."""
    pid_of = {d: pid for (t, d), pid in pids.items() if t == index}
    drawn = []
    k = trace.kernels
    if len(k):
        dev = k["device"].to_numpy()
        labels = kernel_labels(trace)
        place = _placed(
            k, _device_pids(pid_of, dev), _stream_tids(layout, pid_of, dev, k["stream"].to_numpy())
        )
        drawn.append(place)
        out.add(
            "kernels",
            _slices(
                "kernel",
                _names(k["name"]),
                k["start"].to_numpy(np.int64),
                k["end"].to_numpy(np.int64),
                place["pid"].to_numpy(),
                place["tid"].to_numpy(),
                args={
                    "category": labels["category"].to_numpy(object),
                    "correlation": k["correlation"].to_numpy(np.int64),
                },
            ),
        )
    for kind, table in (("memcpy", trace.memcpy), ("memset", trace.memset)):
        if table.empty:
            continue
        dev = table["device"].to_numpy()
        args = {
            "bytes": table["bytes"].to_numpy(np.int64),
            "correlation": table["correlation"].to_numpy(np.int64),
        }
        if kind == "memcpy":
            names = np.asarray(["Memcpy " + str(x) for x in _names(table["kind"])], dtype=object)
            args |= {"src": _names(table["src_kind"]), "dst": _names(table["dst_kind"])}
        else:
            names = np.full(len(table), "Memset", dtype=object)
        place = _placed(
            table, _device_pids(pid_of, dev), _stream_tids(layout, pid_of, dev, table["stream"].to_numpy())
        )
        drawn.append(place)
        out.add(
            kind,
            _slices(
                kind,
                names,
                table["start"].to_numpy(np.int64),
                table["end"].to_numpy(np.int64),
                place["pid"].to_numpy(),
                place["tid"].to_numpy(),
                args=args,
            ),
        )
    _gpu_range_track(out, layout, trace, pid_of)
    return pd.concat(drawn, ignore_index=True) if drawn else _placed(trace.kernels, np.empty(0), np.empty(0))


def _device_pids(pid_of: dict[int, int], devices: np.ndarray) -> np.ndarray:
    unique = np.unique(devices)
    return np.asarray([pid_of[int(d)] for d in unique], dtype=np.int64)[np.searchsorted(unique, devices)]


def _placed(rows: pd.DataFrame, pids: np.ndarray, tids: np.ndarray) -> pd.DataFrame:
    """Rows' launch keys (process, correlation), start and the track they were drawn on."""
    return pd.DataFrame(
        {
            "process": rows["process"].to_numpy(np.int64),
            "correlation": rows["correlation"].to_numpy(np.int64),
            "start": rows["start"].to_numpy(np.int64),
            "pid": np.asarray(pids, dtype=np.int64),
            "tid": np.asarray(tids, dtype=np.int64),
        }
    )


def _gpu_range_track(out: _Writer, layout: _Layout, trace: Trace, pid_of: dict[int, int]) -> None:
    r = trace.ranges
    r = r[r["device"].to_numpy() >= 0]
    if r.empty:
        return
    dev = r["device"].to_numpy()
    unique = np.unique(dev)
    tids = np.asarray(
        [layout.thread(pid_of[int(d)], ("gpu_ranges",), "GPU annotations", STREAM_SORT - 1) for d in unique]
    )
    where = np.searchsorted(unique, dev)
    out.add(
        "gpu_ranges",
        _slices(
            "gpu_annotation",
            _names(r["name"]),
            r["start"].to_numpy(np.int64),
            r["end"].to_numpy(np.int64),
            np.asarray([pid_of[int(d)] for d in unique])[where],
            tids[where],
        ),
    )


# ---------------------------------------------------------------- host side


def _host_tids(
    layout: _Layout, index: int, prefix: str, kind: str, processes: np.ndarray, threads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(pid, tid) per row: a process per host process, a track per (thread, kind)."""
    pairs = np.stack([processes.astype(np.int64), threads.astype(np.int64)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    pid_list, tid_list = [], []
    for process, thread in unique:
        pid = layout.process(
            ("host", index, int(process)), f"{prefix}host process {process}", index * 1000 + 500
        )
        label = "CUDA/HIP API" if kind == "api" else "annotations / NVTX / operators"
        sort = 2 * (int(thread) % 1_000_000) + (1 if kind == "api" else 0)
        pid_list.append(pid)
        tid_list.append(layout.thread(pid, (kind, int(thread)), f"thread {thread} · {label}", sort))
    flat = np.asarray(inverse).reshape(-1)
    return np.asarray(pid_list, dtype=np.int64)[flat], np.asarray(tid_list, dtype=np.int64)[flat]


def _host_tracks(out: _Writer, layout: _Layout, index: int, prefix: str, trace: Trace) -> pd.DataFrame:
    """Ranges and API calls on their host-thread tracks; returns where each API call was drawn."""
    r = trace.ranges
    r = r[r["device"].to_numpy() < 0]
    if len(r):
        pids, tids = _host_tids(
            layout, index, prefix, "ranges", r["process"].to_numpy(), r["thread"].to_numpy()
        )
        out.add(
            "ranges",
            _slices(
                "annotation",
                _names(r["name"]),
                r["start"].to_numpy(np.int64),
                r["end"].to_numpy(np.int64),
                pids,
                tids,
                args={"source": _names(r["source"])},
            ),
        )
    api = trace.api
    if len(api):
        pids, tids = _host_tids(
            layout, index, prefix, "api", api["process"].to_numpy(), api["thread"].to_numpy()
        )
        out.add(
            "api",
            _slices(
                "cuda_api",
                _names(api["name"]),
                api["start"].to_numpy(np.int64),
                api["end"].to_numpy(np.int64),
                pids,
                tids,
                args={"correlation": api["correlation"].to_numpy(np.int64)},
            ),
        )
        return _placed(api, pids, tids)
    return _placed(api, np.empty(0), np.empty(0))


def _launch_flows(out: _Writer, api: pd.DataFrame, gpu: pd.DataFrame) -> None:
    """An arrow from each launching API call to the GPU work it launched (same process + correlation).

    Why: Perfetto then follows a kernel back to the host thread and the Python scope that issued
    it, as Kineto's own ``ac2g`` flows do. Rows without a correlation id (-1) get none.
    """
    api = api[api["correlation"].to_numpy() >= 0]
    gpu = gpu[gpu["correlation"].to_numpy() >= 0]
    pairs = gpu.merge(api, on=["process", "correlation"], suffixes=("_gpu", "_api"))
    if pairs.empty:
        return
    ids = np.arange(1, len(pairs) + 1, dtype=np.int64) + out.counts["flows"] // 2
    for a in range(0, len(pairs), CHUNK):
        part = pairs.iloc[a : a + CHUNK]
        columns = zip(
            ids[a : a + CHUNK].tolist(),
            (part["start_api"].to_numpy(np.int64) / NS_PER_US).tolist(),
            part["pid_api"].tolist(),
            part["tid_api"].tolist(),
            (part["start_gpu"].to_numpy(np.int64) / NS_PER_US).tolist(),
            part["pid_gpu"].tolist(),
            part["tid_gpu"].tolist(),
            strict=True,
        )
        events: list[dict[str, Any]] = []
        for flow, ts0, pid0, tid0, ts1, pid1, tid1 in columns:
            events.append(
                {
                    "ph": "s",
                    "cat": "launch",
                    "name": "launch",
                    "id": flow,
                    "ts": ts0,
                    "pid": pid0,
                    "tid": tid0,
                }
            )
            events.append(
                {
                    "ph": "f",
                    "bp": "e",
                    "cat": "launch",
                    "name": "launch",
                    "id": flow,
                    "ts": ts1,
                    "pid": pid1,
                    "tid": tid1,
                }
            )
        out.add("flows", [events])


# ---------------------------------------------------------------- findings


PHASE_ALIASES = {"context": "prefill", "generation": "decode"}  # the host analysis' phase names


def finding_span(annotated: AnnotatedTraces, finding: Finding) -> tuple[int | None, int | None, int, int]:
    """(trace index, device, start, end) of the time a finding is about; None: no single one.

    The time: its evidence's time range when it has one, else the steps of its phase, else the
    window of its device, else the span of every device window of its rank (of all traces when it
    names no rank). The place: its device, else the one device its time belongs to, if only one.
    """
    loc = finding.location
    indexes = [
        i
        for i, a in enumerate(annotated.annotations)
        if loc.rank is None or a.trace.rank == loc.rank or len(annotated.annotations) == 1
    ] or list(range(len(annotated.annotations)))
    devices = [
        (i, d)
        for i in indexes
        for d in annotated.annotations[i].devices
        if loc.device is None or d.device == loc.device
    ]
    runs = _phase_runs_of(annotated, indexes, loc.device, loc.phase)
    places = {(i, int(d)) for i, d, _, _ in runs} or {(i, d.device) for i, d in devices}
    index, device = next(iter(places)) if len(places) == 1 else (None, None)
    if len(indexes) == 1:
        index = indexes[0]
    if loc.device is not None:
        device = loc.device
    if loc.time_range_ns is not None:
        return index, device, int(loc.time_range_ns[0]), int(loc.time_range_ns[1])
    if runs:
        return index, device, min(r[2] for r in runs), max(r[3] for r in runs)
    if not devices:
        return index, device, 0, 0
    return (
        index,
        device,
        min(int(d.window[0].min()) for _, d in devices),
        max(int(d.window[1].max()) for _, d in devices),
    )


def _phase_runs_of(
    annotated: AnnotatedTraces, indexes: list[int], device: int | None, phase: str | None
) -> list[tuple[int, int, int, int]]:
    """(trace index, device, start, end) of each run of the phase's steps; [] without a phase."""
    if phase is None:
        return []
    wanted = PHASE_ALIASES.get(phase, phase)
    out = []
    for i in indexes:
        runs = annotated.annotations[i].phase_runs()
        keep = runs["phase"].astype(str).to_numpy() == wanted
        if device is not None:
            keep &= runs["device"].to_numpy(np.int64) == device
        out += [
            (i, int(d), int(s), int(e))
            for d, s, e in zip(
                runs["device"].to_numpy(np.int64)[keep],
                runs["start"].to_numpy(np.int64)[keep],
                runs["end"].to_numpy(np.int64)[keep],
                strict=True,
            )
        ]
    return out


def _finding_tracks(
    out: _Writer, layout: _Layout, annotated: AnnotatedTraces, device_pids: dict[tuple[int, int], int]
) -> None:
    """Each finding as a slice, on its device's findings track (lanes where they overlap)."""
    lanes: dict[int, list[int]] = {}  # pid -> end of the last slice in each lane
    events = []
    for finding in annotated.report.findings:
        index, device, start, end = finding_span(annotated, finding)
        pid = device_pids.get((index, device)) if index is not None and device is not None else None
        if pid is None:
            pid = layout.process(("findings",), RUN_FINDINGS_PROCESS, -1)
        ends = lanes.setdefault(pid, [])
        lane = next((i for i, e in enumerate(ends) if e <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = end
        name = FINDINGS_TRACK if lane == 0 else f"{FINDINGS_TRACK} ({lane + 1})"
        tid = layout.thread(pid, ("findings", lane), name, 4 + lane)
        events.append(_finding_event(finding, start, end, pid, tid))
    out.add("findings", [events])


def _finding_event(finding: Finding, start: int, end: int, pid: int, tid: int) -> dict[str, Any]:
    gain = finding.expected_gain
    return {
        "ph": "X",
        "cat": "infersight_finding",
        "name": f"[{finding.severity}] {finding.title}",
        "ts": start / NS_PER_US,
        "dur": max(end - start, 0) / NS_PER_US,
        "pid": pid,
        "tid": tid,
        "cname": SEVERITY_COLOURS.get(finding.severity, "generic_work"),
        "args": {
            "title": finding.title,
            "severity": finding.severity,
            "id": finding.id,
            "bucket": finding.bucket,
            "confidence": finding.confidence,
            "expected gain": (
                f"{gain.low:.0%}–{gain.high:.0%} of {gain.unit.replace('fraction_of_', '').replace('_', ' ')}"
                f" ({gain.basis})"
                if gain is not None
                else None
            ),
            "evidence": [
                f"{e.metric} = {e.value}{(' ' + e.unit) if e.unit else ''}"
                + (f" ({e.comparison} {e.threshold})" if e.threshold is not None and e.comparison else "")
                + (f"; {e.note}" if e.note else "")
                for e in finding.evidence
            ],
            "advice": finding.advice,
            "verify": finding.verification,
        },
    }
