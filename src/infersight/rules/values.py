"""Metric values as the rules see them: one flat dict of numbers (or texts) per scope."""

from __future__ import annotations

import math
from collections.abc import Mapping

MetricValue = float | int | str | None
Metrics = dict[str, MetricValue]


def is_number(value: object) -> bool:
    """A real, finite number: strings, None, NaN and ±inf never satisfy a condition or feed
    arithmetic (an infinite metric would print "inf" as a measured value)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def number(m: Mapping[str, object], name: str) -> float | None:
    """The metric as a float, or None when it is missing, not a number or NaN."""
    value = m.get(name)
    return float(value) if is_number(value) and isinstance(value, int | float) else None


def ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or den is not positive."""
    if num is None or den is None or den <= 0:
        return None
    return num / den
