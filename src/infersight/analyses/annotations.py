"""What ``infersight annotate`` lays over a trace's own tracks: where the time goes, idle gaps by
likely cause, phases and steps (docs/methodology.md §3.2 for the buckets, §4 for the gap causes).

Why a separate analysis: a timeline needs the *intervals* behind the numbers of ``analyze``, not
only their totals. Everything here is computed from the same windows, labels and priority rules
as the report, so what the timeline shows sums to what the report says. Pure: numpy arrays and
frames in, typed dataclasses out; the Chrome-trace writer (:mod:`infersight.render.perfetto`)
only converts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infersight.analyses.attribution import Spans, trace_bucket_intervals
from infersight.analyses.phases import NO_PHASE, label_trace
from infersight.analyses.window import analysis_windows
from infersight.model import Trace

STEP_COLUMNS = ("device", "phase", "step", "start", "end")
RUN_COLUMNS = ("device", "phase", "start", "end", "steps")


@dataclass(frozen=True)
class GapCauses:
    """Gap-length buckets (ns lower bounds) and the host activity each length usually means.

    From ``data/host_thresholds.toml`` ``[drilldown]``, the table the host analysis uses, so the
    timeline and ``infersight host`` name a gap of one length alike.
    """

    edges_ns: tuple[int, ...]
    causes: tuple[str, ...]

    def of(self, lengths_ns: np.ndarray) -> np.ndarray:
        """Index into ``causes`` of each length (the last bucket whose lower bound it reaches)."""
        edges = np.asarray(self.edges_ns, dtype=np.int64)
        which = np.searchsorted(edges, np.asarray(lengths_ns, dtype=np.int64), side="right") - 1
        return np.clip(which, 0, len(self.causes) - 1).astype(np.int64)


@dataclass(frozen=True)
class DeviceAnnotation:
    """One device: its attribution window, each bucket's intervals, and the host gaps' causes."""

    device: int
    window: Spans
    buckets: dict[str, Spans]
    host_cause: np.ndarray  # per host interval: index into GapCauses.causes

    def bucket_ns(self, bucket: str) -> int:
        """Total length of one bucket's intervals (equals DeviceAttribution.times_ns)."""
        starts, ends = self.buckets[bucket]
        return int((ends - starts).sum())


@dataclass(frozen=True)
class TraceAnnotation:
    """Everything infersight adds to one trace (one rank / file)."""

    trace: Trace
    devices: list[DeviceAnnotation]
    steps: pd.DataFrame  # device, phase ('' unknown), step, start, end: one row per (device, step)
    phase_method: str  # annotation | kernel-mix | none

    def phase_runs(self) -> pd.DataFrame:
        """Consecutive steps of one phase on one device merged: device, phase, start, end, steps."""
        return phase_runs(self.steps)


def gap_causes(cfg: Mapping[str, Any]) -> GapCauses:
    """The gap-length buckets and causes of the host analysis's ``drilldown`` thresholds section
    (passed in: the thresholds belong to the host package, a floor above this one)."""
    return GapCauses(
        edges_ns=tuple(int(e) for e in cfg["bucket_edges_ns"]),
        causes=tuple(str(c) for c in cfg["bucket_causes"]),
    )


def annotate_trace(trace: Trace, causes: GapCauses, window_nvtx: str | None = None) -> TraceAnnotation:
    """The attribution intervals, host-gap causes and step spans of one trace."""
    windows = analysis_windows(trace, window_nvtx) if not trace.kernels.empty else {}
    devices = [
        DeviceAnnotation(
            device=device,
            window=window,
            buckets=buckets,
            host_cause=causes.of(buckets["host"][1] - buckets["host"][0]),
        )
        for device, (window, buckets) in trace_bucket_intervals(trace, window_nvtx, windows=windows).items()
    ]
    if not windows:
        return TraceAnnotation(trace, devices, _no_steps(), "none")
    labelled = label_trace(trace, windows)
    return TraceAnnotation(trace, devices, step_spans(labelled.kernels), labelled.method)


def step_spans(kernels: pd.DataFrame) -> pd.DataFrame:
    """One row per (device, step): first kernel start to last kernel end, and the step's phase."""
    if kernels.empty or "step" not in kernels:
        return _no_steps()
    k = kernels[kernels["step"].to_numpy() >= 0]
    if k.empty:
        return _no_steps()
    frame = pd.DataFrame(
        {
            "device": k["device"].to_numpy(np.int64),
            "phase": k["phase"].astype(str).to_numpy() if "phase" in k else NO_PHASE,
            "step": k["step"].to_numpy(np.int64),
            "start": k["start"].to_numpy(np.int64),
            "end": k["end"].to_numpy(np.int64),
        }
    )
    spans = (
        frame.groupby(["device", "phase", "step"], sort=False)
        .agg(start=("start", "min"), end=("end", "max"))
        .reset_index()
        .sort_values(["device", "start"], kind="stable")
        .reset_index(drop=True)
    )
    return spans[list(STEP_COLUMNS)]


def _no_steps() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object if c == "phase" else np.int64) for c in STEP_COLUMNS})


def phase_runs(steps: pd.DataFrame) -> pd.DataFrame:
    """Merge each device's consecutive same-phase steps (ordered by start) into one run.

    Why: "prefill, then 9 decode steps" reads at a glance as two slices over the steps track.
    """
    named = steps[steps["phase"].astype(str).to_numpy() != NO_PHASE]
    if named.empty:
        return pd.DataFrame(
            {c: pd.Series([], dtype=object if c == "phase" else np.int64) for c in RUN_COLUMNS}
        )
    device = named["device"].to_numpy(np.int64)
    phase = named["phase"].astype(str).to_numpy()
    new_run = np.ones(len(named), dtype=bool)
    new_run[1:] = (device[1:] != device[:-1]) | (phase[1:] != phase[:-1])
    run = np.cumsum(new_run)
    return (
        pd.DataFrame(
            {
                "run": run,
                "device": device,
                "phase": phase,
                "start": named["start"].to_numpy(np.int64),
                "end": named["end"].to_numpy(np.int64),
            }
        )
        .groupby("run", sort=True)
        .agg(
            device=("device", "first"),
            phase=("phase", "first"),
            start=("start", "min"),
            end=("end", "max"),
            steps=("start", "size"),
        )
        .reset_index(drop=True)[list(RUN_COLUMNS)]
    )
