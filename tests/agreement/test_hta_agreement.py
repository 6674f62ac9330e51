"""Agreement with Holistic Trace Analysis (HTA 0.5.0) on every real Kineto trace in ../shared/data.

HTA's figures are precomputed in ``hta_reference.json`` by ``bench/hta_reference.py`` (run it in
the HTA virtual environment to regenerate; HTA is too heavy for a test dependency). HTA ran
with ``HTA_DISABLE_NS_ROUNDING=1``.

Compared per rank, 0.5% tolerance:

* temporal breakdown: HTA's busy time (``kernel_time - idle_time``) and window (``kernel_time``)
  vs infersight's interval union / span of the same GPU events in its trace tables. HTA counts
  every GPU-stream event as busy (kernels, memcpy, memset and ``gpu_user_annotation`` ranges),
  so the union here takes the same set — infersight's own idle ratio counts kernels only;
* kernel breakdown: per full kernel name, HTA's summed duration vs infersight's;
* the number of GPU events.

Explained exceptions (documented, checked in their weaker form):

1. HTA's default µs rounding of ns-resolution traces (start up, end down) shortens every event
   by up to 1 µs: that is why the fixture is made with the rounding disabled (bench/README.md
   shows the size of the effect: idle 0.1618 with rounding vs 0.1081 without on the vLLM trace).
2. With two or more ``ProfilerStep`` annotations HTA drops the kernels of the last step and
   those without a launching CPU operator (``Trace._filter_irrelevant_gpu_kernels``);
   infersight keeps every kernel. For those traces HTA's per-name sums and counts must be at
   most infersight's (HTA sees a subset), not equal.
3. ``hta_cpu_only_no_gpu``: HTA fails with an IndexError; infersight exits 2 with a message.
4. HTA's GPU events are all complete events with an ``args.stream`` other than -1: besides
   kernels, copies and memsets, that takes in ``cuda_sync`` waits ("Stream Wait Event"),
   ``gpu_user_annotation`` ranges and CPU operators with a stream argument (the Triton example's
   launcher ``triton_poi_fused_add_cos_sin_0``, 95.8 µs on the CPU, is summed with its 1.76 µs
   kernel). The test reads those extra events from the raw JSON and adds them to infersight's
   side, so the remaining comparison is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import KINETO_DIR, plain_json, shared_file

from infersight.analyses import intervals
from infersight.errors import InputError
from infersight.ingest import load_traces
from infersight.model import Trace

TOLERANCE = 0.005
REFERENCE = json.loads((Path(__file__).parent / "hta_reference.json").read_text())
TRACES: dict[str, Any] = REFERENCE["traces"]


def _close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= TOLERANCE * max(abs(theirs), 1.0)


OUR_GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


def _hta_only_events(trace: Trace) -> list[tuple[str, int, int]]:
    """(name, start ns, end ns) of the events HTA puts on a GPU stream and infersight does not.

    HTA takes every complete event whose ``args.stream`` is not -1 as GPU work (exception 4):
    ``cuda_sync`` waits, ``gpu_user_annotation`` ranges, and even CPU operators that carry a
    stream argument (Inductor's Triton launchers record ``stream: 0``). Read from the raw JSON.
    """
    path = Path(trace.source)
    document = plain_json(path)
    events = document["traceEvents"] if isinstance(document, dict) else document
    out = []
    for e in events:
        args = e.get("args")
        if e.get("ph") != "X" or not isinstance(args, dict) or args.get("stream", -1) == -1:
            continue
        if e.get("cat") in OUR_GPU_CATEGORIES:
            continue
        start = round(e["ts"] * 1000)
        out.append((str(e.get("name")), start, start + round(e.get("dur", 0) * 1000)))
    return out


def _gpu_events(trace: Trace, extra: list[tuple[str, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Start/end (ns) of every event HTA puts on a GPU stream: infersight's tables + the extras."""
    parts = [trace.kernels, trace.memcpy, trace.memset]
    return (
        np.concatenate([*(p["start"].to_numpy(np.int64) for p in parts), [s for _, s, _ in extra]]),
        np.concatenate([*(p["end"].to_numpy(np.int64) for p in parts), [e for _, _, e in extra]]),
    )


def _by_rank(name: str) -> dict[str, Trace]:
    traces = load_traces(shared_file(f"kineto/{name}"))
    if len(traces) == 1:
        return {next(iter(TRACES[name]["ranks"])): traces[0]}
    return {str(t.rank): t for t in traces}


def _kernel_sums_us(trace: Trace) -> dict[str, tuple[int, float]]:
    k = trace.kernels
    frame = k.assign(duration=(k["end"] - k["start"]) / 1000.0).groupby("name", observed=True)["duration"]
    return {
        str(n): (int(c), float(s))
        for n, c, s in zip(frame.sum().index, frame.count(), frame.sum(), strict=True)
    }


def test_reference_covers_every_kineto_trace() -> None:
    shared_file("kineto/hta_alexnet_a100.json.gz")
    on_disk = {p.name for p in KINETO_DIR.iterdir() if p.is_dir() or p.name.endswith((".json", ".json.gz"))}
    assert on_disk <= set(TRACES), f"regenerate with bench/hta_reference.py: {on_disk - set(TRACES)}"


@pytest.mark.parametrize("name", sorted(n for n, e in TRACES.items() if "error" not in e))
def test_agrees_with_hta(name: str) -> None:
    entry = TRACES[name]
    filtered = entry["profiler_steps"] >= 2  # exception 2
    for rank, trace in _by_rank(name).items():
        hta = entry["ranks"][rank]
        ours = _kernel_sums_us(trace)
        extra = _hta_only_events(trace)
        extra_sum: dict[str, float] = {}
        for event_name, start, end in extra:
            extra_sum[event_name] = extra_sum.get(event_name, 0.0) + (end - start) / 1000.0
        for kernel, hta_sum in hta["kernel_sum_us"].items():
            total = ours.get(kernel, (0, 0.0))[1] + extra_sum.get(kernel, 0.0)
            if filtered:
                assert hta_sum <= total * (1 + TOLERANCE), (kernel, hta_sum, total)
            else:
                assert _close(total, hta_sum), (name, rank, kernel, total, hta_sum)
        ours_events = len(trace.kernels) + len(trace.memcpy) + len(trace.memset) + len(extra)
        if filtered:
            assert hta["gpu_events"] <= ours_events
            continue
        assert hta["gpu_events"] == ours_events, hta["gpu_events_by_type"]
        starts, ends = _gpu_events(trace, extra)
        busy_us = intervals.total_length(starts, ends) / 1000.0
        window_us = (ends.max() - starts.min()) / 1000.0
        assert _close(window_us, hta["kernel_time_us"]), (window_us, hta["kernel_time_us"])
        assert _close(busy_us, hta["kernel_time_us"] - hta["idle_us"]), (busy_us, hta)


def test_cpu_only_trace_fails_cleanly_where_hta_crashes() -> None:
    assert "error" in TRACES["hta_cpu_only_no_gpu.json.gz"]  # exception 3
    with pytest.raises(InputError, match="no GPU kernels"):
        load_traces(shared_file("kineto/hta_cpu_only_no_gpu.json.gz"))
