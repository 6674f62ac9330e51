"""Roofline plot: every theory operator as a point under the GPU's roofs (methodology §2, §8).

x = arithmetic intensity I = F / bytes, y = attainable FLOP/s = F / T_roof. Operators lie on the
roof by construction (that is what theory means); measured categories, when given, are drawn
at their achieved rate below it, so the vertical distance is 1 / E_roof. Point area follows
the operator's share of its pass. Output by suffix: ``.png``, ``.svg``, or ``.html`` (the SVG
inlined in a self-contained page). Needs matplotlib (``pip install 'infersight[plot]'``).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from infersight.errors import InputError
from infersight.theory.estimates import ModelEstimate
from infersight.theory.measured import MeasuredVsTheory
from infersight.theory.roofline_points import category_points, roof

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SUFFIXES = (".png", ".svg", ".html")
PHASE_COLOURS = {"prefill": "tab:blue", "decode": "tab:orange"}
MIN_POINT_AREA = 12.0
MAX_POINT_AREA = 400.0
LABELLED_POINTS_PER_PHASE = 6
KERNEL_ROOF_STYLES = (":", "-.", (0, (5, 1, 1, 1)))


def check_plot_path(path: Path) -> None:
    """Refuse an output suffix we cannot write, before any work is done."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(
            path, f"--plot: unsupported file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}"
        )


@dataclass(frozen=True)
class KernelPoint:
    """One measured kernel (Nsight Compute counters) at its achieved FLOP/s, with the roof it is judged by.

    ``peak_flop_per_s`` is the peak of the kernel's own dtype and ``peak_bytes_per_s`` the GPU's DRAM
    bandwidth (not the η-derated B_eff of the theory roofs), as E_roof of a measured kernel uses them.
    """

    label: str
    intensity: float
    flop_per_s: float
    roof_label: str | None = None
    peak_flop_per_s: float | None = None
    peak_bytes_per_s: float | None = None


def render_roofline_plot(
    est: ModelEstimate,
    path: Path,
    measured: MeasuredVsTheory | None = None,
    kernels: Sequence[KernelPoint] = (),
) -> bytes:
    """The plot as the bytes of a ``path.suffix`` file (png, svg or html).

    ``kernels`` (measured ncu kernels) are drawn on the same axes as the theory operators, with
    their own roofs (kernel dtype peak, DRAM bandwidth).
    """
    return _render(
        path,
        lambda axes: _draw(axes, est, measured, kernels),
        f"infersight roofline — {est.model} on {est.gpu}",
    )


def render_kernel_roofline_plot(kernels: Sequence[KernelPoint], path: Path, title: str) -> bytes:
    """Measured kernels alone (no theory scenario) under their roofs, as png, svg or html bytes."""

    def draw(axes: Axes) -> None:
        xs = [k.intensity for k in kernels] or [1.0]
        ridges = [
            k.peak_flop_per_s / k.peak_bytes_per_s
            for k in kernels
            if k.peak_flop_per_s and k.peak_bytes_per_s
        ]
        _draw_kernels(axes, kernels, min(xs) / 4, max([x * 4 for x in xs] + [4 * r for r in ridges]))
        _finish_axes(axes, title)
        axes.set_ylabel("achieved FLOP/s")

    return _render(path, draw, title)


def _render(path: Path, draw: Callable[[Axes], None], title: str) -> bytes:
    check_plot_path(path)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(path, "the roofline plot needs matplotlib: pip install 'infersight[plot]'") from None
    figure, axes = plt.subplots(figsize=(10, 6.5), dpi=110)
    try:
        draw(axes)
        buffer = io.BytesIO()
        kind = "png" if path.suffix.lower() == ".png" else "svg"
        figure.savefig(buffer, format=kind, bbox_inches="tight")
    finally:
        plt.close(figure)
    data = buffer.getvalue()
    if path.suffix.lower() != ".html":
        return data
    title = html.escape(title)
    svg = data.decode("utf-8")
    svg = svg[svg.index("<svg") :]
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body>\n{svg}\n</body></html>\n"
    )
    return page.encode("utf-8")


def _draw(
    axes: Axes, est: ModelEstimate, measured: MeasuredVsTheory | None, kernels: Sequence[KernelPoint] = ()
) -> None:
    hw = est.hardware
    points = [
        (phase.phase, t.operator.name, t.intensity, t.operator.flops / t.t_roof_s, t.share or 0.0)
        for phase in (est.prefill, est.decode)
        for t in phase.operators
        if t.intensity is not None and t.t_roof_s and t.operator.flops > 0
    ]
    xs = [p[2] for p in points] + [k.intensity for k in kernels] or [1.0]
    lo, hi = min(xs) / 4, max(max(xs) * 4, 4 * hw.matmul_peak_flops / hw.effective_bandwidth)
    for peak, label, style in (
        (hw.matmul_peak_flops, f"matmul peak ({hw.compute_dtype})", "-"),
        (hw.vector_peak_flops, "vector peak (fp32)", "--"),
    ):
        corners = roof(peak, hw.effective_bandwidth, lo, hi)
        axes.plot(
            [x for x, _ in corners],
            [y for _, y in corners],
            style,
            color="black",
            lw=1,
            label=label,
        )
    for phase, colour in PHASE_COLOURS.items():
        mine = sorted((p for p in points if p[0] == phase), key=lambda p: p[4], reverse=True)
        if not mine:
            continue
        axes.scatter(
            [p[2] for p in mine],
            [p[3] for p in mine],
            s=[MIN_POINT_AREA + MAX_POINT_AREA * p[4] for p in mine],
            color=colour,
            alpha=0.6,
            edgecolors="black",
            linewidths=0.4,
            label=f"{phase} operators (area ∝ share of the pass)",
        )
        for p in mine[:LABELLED_POINTS_PER_PHASE]:
            axes.annotate(p[1], (p[2], p[3]), fontsize=7, xytext=(4, -10), textcoords="offset points")
    if measured is not None:
        _draw_measured(axes, measured)
    if kernels:
        _draw_kernels(axes, kernels, lo, hi)
    s = est.scenario
    _finish_axes(
        axes,
        f"{est.model} on {est.gpu} — B={s.batch}, S={s.prompt_len}, L={s.context_len}, TP={s.tp} "
        f"(B_eff = {hw.effective_bandwidth / 1e12:.2f} TB/s)",
    )


def _finish_axes(axes: Axes, title: str) -> None:
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP / byte)")
    axes.set_ylabel("FLOP/s")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", lw=0.3, alpha=0.5)
    axes.legend(fontsize=8, loc="lower right")


def _draw_kernels(axes: Axes, kernels: Sequence[KernelPoint], lo: float, hi: float) -> None:
    """Each distinct kernel roof as a grey line, each kernel as a labelled diamond."""
    roofs = sorted(
        {
            (k.roof_label, k.peak_flop_per_s, k.peak_bytes_per_s)
            for k in kernels
            if k.roof_label and k.peak_flop_per_s and k.peak_bytes_per_s
        },
        key=lambda roof: roof[1] or 0.0,
    )
    for index, (label, peak, bandwidth) in enumerate(roofs):
        assert peak is not None and bandwidth is not None  # filtered above
        corners = roof(peak, bandwidth, lo, hi)
        axes.plot(
            [x for x, _ in corners],
            [y for _, y in corners],
            KERNEL_ROOF_STYLES[index % len(KERNEL_ROOF_STYLES)],
            color="dimgray",
            lw=1,
            label=f"{label} (DRAM {bandwidth / 1e12:.2f} TB/s)",
        )
    axes.scatter(
        [k.intensity for k in kernels],
        [k.flop_per_s for k in kernels],
        marker="D",
        s=36,
        color="tab:red",
        edgecolors="black",
        linewidths=0.4,
        label="measured kernels (Nsight Compute)",
    )
    for kernel in kernels:
        axes.annotate(
            kernel.label,
            (kernel.intensity, kernel.flop_per_s),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
            color="tab:red",
        )


def _draw_measured(axes: Axes, measured: MeasuredVsTheory) -> None:
    for point in category_points(measured):
        if point.phase not in PHASE_COLOURS:
            continue
        axes.scatter(
            [point.intensity],
            [point.achieved_flop_per_s],
            marker="x",
            color=PHASE_COLOURS[point.phase],
            s=40,
        )
        axes.annotate(
            f"{point.category} (E={point.e_roof:.2f})" if point.e_roof is not None else point.category,
            (point.intensity, point.achieved_flop_per_s),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
            color=PHASE_COLOURS[point.phase],
        )
