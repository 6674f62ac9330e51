"""Data the HTML report plots beyond the JSON report: per-device busy timelines and per-layer times.

The JSON report holds aggregates only; the busy/idle picture needs the kernel intervals, so it
is computed here from the loaded traces (vectorised: the union of kernel intervals, then the
busy time per bin from one ``covered_before`` call over the bin edges).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from infersight.agent.narrator import Narration
from infersight.analyses import intervals
from infersight.analyses.window import analysis_windows
from infersight.errors import InputError
from infersight.layers.results import LayerReport
from infersight.model import Trace

__all__ = ["DeviceBusyBins", "HtmlExtras", "busy_timeline", "html_extras"]

DEFAULT_BINS = 240


class DeviceBusyBins(BaseModel):
    """Busy fraction of one device in equal time bins across its analysis window."""

    label: str
    start_ns: int
    bin_ns: float
    busy_fraction: list[float] = Field(description="busy time / bin length, per bin, in [0, 1]")
    busy_ratio: float = Field(description="busy time / window span (cross-check with the profile)")


class HtmlExtras(BaseModel):
    """Optional plot data for :func:`infersight.render.html.render_html`."""

    timelines: list[DeviceBusyBins] = Field(default_factory=list)
    layers: LayerReport | None = None
    narration: Narration | None = Field(default=None, description="checked LLM prose (agent --llm-url)")
    notes: list[str] = Field(default_factory=list)


def busy_timeline(
    traces: Sequence[Trace], *, window_nvtx: str | None = None, bins: int = DEFAULT_BINS
) -> list[DeviceBusyBins]:
    """Busy fraction per bin for every (trace, device) over the device's analysis window."""
    out: list[DeviceBusyBins] = []
    for trace in traces:
        if trace.kernels.empty:
            continue
        for device, window in analysis_windows(trace, window_nvtx).items():
            if not window.intervals_ns:
                continue
            mask = trace.kernels["device"].to_numpy() == device
            starts = trace.kernels["start"].to_numpy(np.int64)[mask]
            ends = trace.kernels["end"].to_numpy(np.int64)[mask]
            win = (
                np.array([s for s, _ in window.intervals_ns], dtype=np.int64),
                np.array([e for _, e in window.intervals_ns], dtype=np.int64),
            )
            busy_s, busy_e = intervals.clip(starts, ends, win)
            lo, hi = int(win[0].min()), int(win[1].max())
            if hi <= lo:
                continue
            edges = np.linspace(lo, hi, bins + 1).round().astype(np.int64)
            covered = intervals.covered_before(busy_s, busy_e, edges)
            per_bin = np.diff(covered) / np.maximum(np.diff(edges), 1)
            label = f"{trace.label()} dev {device}" if len(traces) > 1 else f"device {device}"
            out.append(
                DeviceBusyBins(
                    label=label,
                    start_ns=lo,
                    bin_ns=(hi - lo) / bins,
                    busy_fraction=[round(float(v), 4) for v in np.clip(per_bin, 0.0, 1.0)],
                    busy_ratio=float(covered[-1] - covered[0]) / (hi - lo),
                )
            )
    return out


def html_extras(
    traces: Sequence[Trace], *, window_nvtx: str | None = None, with_layers: bool = True
) -> HtmlExtras:
    """Timelines for every device, and the per-layer table of the first trace when it segments."""
    extras = HtmlExtras(timelines=busy_timeline(traces, window_nvtx=window_nvtx))
    if with_layers and len(traces) == 1 and not traces[0].kernels.empty:
        from infersight.layers.analysis import analyze_layers

        try:
            report = analyze_layers(traces[0])
        except InputError as exc:
            extras.notes.append(f"per-layer chart skipped: {exc.one_line()}")
        else:
            structure = report.pass_structure
            if structure is not None and not structure.plausible:
                extras.notes.append(
                    "per-layer chart skipped: the anchor count per pass is implausible: "
                    f"{'; '.join(structure.problems)} (infersight layers --config / --layers N)"
                )
            elif report.layers:
                extras.layers = report
            else:
                extras.notes.append(f"per-layer chart skipped: {report.selected_reason or report.verdict}")
    return extras
