"""The roofline's geometry, computed once for every drawing of it.

The HTML report draws the roofline as inline SVG (no plotting library in a self-contained page)
and ``roofline --plot`` / ``ncu --plot`` draw it with matplotlib (png, svg). Both take the roof
lines and the measured category points from here, so the two pictures cannot disagree on where
the roof bends or where a category sits.

The roof of a GPU is min(P_peak, I · B) over arithmetic intensity I; on log-log axes it is two
straight segments meeting at the ridge I = P_peak / B, so its corner points draw it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from infersight.theory.measured import MeasuredVsTheory


@dataclass(frozen=True)
class CategoryPoint:
    """One measured (phase, category) on the roofline: its theory operators' intensity, the rate
    the theory gives them (on the roof, less the kernel floors) and the rate measured per step."""

    phase: str
    category: str
    intensity: float  # theory FLOP / theory bytes of the category's operators
    theory_flop_per_s: float  # theory FLOP / Σ T_roof
    achieved_flop_per_s: float  # theory FLOP / measured time per step
    e_roof: float | None

    @property
    def label(self) -> str:
        return f"{self.phase} {self.category}"


def roof(peak_flop_per_s: float, bytes_per_s: float, x_lo: float, x_hi: float) -> list[tuple[float, float]]:
    """Corner points (intensity, FLOP/s) of min(peak, I · B) from ``x_lo`` to ``x_hi``."""
    ridge = peak_flop_per_s / bytes_per_s
    points = [(x_lo, min(peak_flop_per_s, x_lo * bytes_per_s))]
    if x_lo < ridge < x_hi:
        points.append((ridge, peak_flop_per_s))
    points.append((x_hi, min(peak_flop_per_s, x_hi * bytes_per_s)))
    return points


def category_points(measured: MeasuredVsTheory) -> list[CategoryPoint]:
    """The rows with a theory rate and a measured rate (prefill/decode rows with an E_roof)."""
    return [
        CategoryPoint(
            phase=row.phase,
            category=row.category,
            intensity=row.theory_flops / row.theory_bytes,
            theory_flop_per_s=row.theory_flops / row.theory_roof_s,
            achieved_flop_per_s=row.achieved_flops_per_s,
            e_roof=row.e_roof,
        )
        for row in measured.rows
        if row.theory_flops > 0 and row.theory_bytes > 0 and row.theory_roof_s and row.achieved_flops_per_s
    ]
