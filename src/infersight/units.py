"""Number formatting shared by every layer: durations, bytes, percentages, bandwidths, counts.

Why one module on the lowest floor: the rules write numbers into finding messages and the
renderers into tables; with the formatters in ``render/`` the rules imported a renderer (an arrow
running up the layers), and a second formatter elsewhere printed the same duration another way.
"""

from __future__ import annotations

__all__ = [
    "fmt_bandwidth",
    "fmt_bound",
    "fmt_bytes",
    "fmt_count",
    "fmt_duration",
    "fmt_pct",
    "fmt_quantity",
]


def _three_digits(value: float) -> str:
    """Three significant digits without switching to exponent notation: 4.10, 12.3, 250."""
    magnitude = abs(value)
    if magnitude < 10:
        return f"{value:.2f}"
    if magnitude < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def fmt_duration(ns: float | int | None) -> str:
    """Human duration from nanoseconds, 3 significant digits: 850 ns, 4.10 µs, 12.3 ms, 1.23 s."""
    if ns is None:
        return "n/a"
    value = float(ns)
    magnitude = abs(value)
    if magnitude < 1e3:
        return f"{value:.0f} ns"
    if magnitude < 1e6:
        return f"{_three_digits(value / 1e3)} µs"
    if magnitude < 1e9:
        return f"{_three_digits(value / 1e6)} ms"
    return f"{_three_digits(value / 1e9)} s"


def fmt_bound(ns: int) -> str:
    """A bucket bound in the shortest unit: 5 µs, 100 µs, 1 ms (no trailing zeros)."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:g} {unit}"
    return f"{ns} ns"


def fmt_bytes(count: int | float | None) -> str:
    """Human byte count in decimal units (as nsys stats prints them): 512 B, 1.50 MB, 2.10 GB."""
    if count is None:
        return "n/a"
    value = float(count)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f} B"


def fmt_pct(ratio: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage."""
    return "n/a" if ratio is None else f"{100.0 * ratio:.{digits}f}%"


def fmt_count(n: int | None) -> str:
    """An integer with thousands separators."""
    return "n/a" if n is None else f"{n:,}"


def fmt_bandwidth(gb_per_s: float | None) -> str:
    """Bandwidth with 3 significant digits, in MB/s or kB/s when below 1 GB/s (tiny copies)."""
    if gb_per_s is None:
        return "n/a"
    for unit, scale in (("GB/s", 1.0), ("MB/s", 1e-3), ("kB/s", 1e-6)):
        if gb_per_s >= scale:
            return f"{_three_digits(gb_per_s / scale)} {unit}"
    return f"{gb_per_s * 1e9:.0f} B/s"


def fmt_quantity(value: float | int | str | None, unit: str) -> str:
    """An evidence value in its unit: ns -> human time, ratio/fraction -> %, bytes -> B/MB/GB."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return f"{value} {unit}".strip()
    unit_key = unit.strip().lower()
    if unit_key == "ns":
        return fmt_duration(value)
    if unit_key in ("µs", "us"):
        return fmt_duration(float(value) * 1e3)
    if unit_key == "ms":
        return fmt_duration(float(value) * 1e6)
    if unit_key in ("ratio", "fraction", "share"):
        return fmt_pct(float(value))
    if unit_key in ("%", "percent"):
        return f"{float(value):.1f}%"
    if unit_key in ("b", "bytes"):
        return fmt_bytes(value)
    if unit_key in ("count", "kernels", "calls"):
        return f"{fmt_count(int(value))} {unit}".strip() if unit_key != "count" else fmt_count(int(value))
    text = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
    return f"{text} {unit}".strip()
