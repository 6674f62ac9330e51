"""The HTML report's chart data: the timelines and tracks of :mod:`infersight.analyses.html_data`,
the per-layer table, and the checked narration.

Why here (the api floor): it combines an analysis (timelines), a drill-down (layers) and the
agent's narration; ``render/html.py`` draws it and never computes.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from infersight.advisor.narrator import Narration
from infersight.analyses.html_data import DeviceBusyBins, DeviceTrack, busy_timeline, device_tracks
from infersight.errors import InputError
from infersight.layers.results import LayerReport
from infersight.model import Trace

__all__ = ["HtmlExtras", "html_extras"]


class HtmlExtras(BaseModel):
    """Optional plot data for :func:`infersight.render.html.render_html`."""

    timelines: list[DeviceBusyBins] = Field(default_factory=list)
    tracks: list[DeviceTrack] = Field(default_factory=list)
    layers: LayerReport | None = None
    narration: Narration | None = Field(default=None, description="checked LLM prose (agent --llm-url)")
    notes: list[str] = Field(default_factory=list)


def html_extras(
    traces: Sequence[Trace], *, window_nvtx: str | None = None, with_layers: bool = True
) -> HtmlExtras:
    """Timelines for every device, and the per-layer table of the first trace when it segments."""
    extras = HtmlExtras(
        timelines=busy_timeline(traces, window_nvtx=window_nvtx),
        tracks=device_tracks(traces, window_nvtx=window_nvtx),
    )
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
