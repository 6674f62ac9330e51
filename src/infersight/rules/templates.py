"""Rule texts: Python format strings over a scope's metrics.

A missing or None metric prints as "n/a" whatever its format spec, so a text never fails on a
scope that lacks a number. A ``*_ns`` metric without a format spec prints as a human duration
("12.1 µs", "261 ms"); with a spec (``{idle_ns:.0f}``) it is the plain number.
"""

from __future__ import annotations

import math

from infersight.rules.values import Metrics, MetricValue, is_number
from infersight.units import fmt_duration


class _NA:
    """Formats as 'n/a' with any format spec, so templates survive missing metrics."""

    def __format__(self, spec: str) -> str:
        return "n/a"


class _Duration(float):
    """A time in ns: ``{x}`` prints a human duration (as the report tables do), ``{x:.0f}`` the number."""

    def __format__(self, spec: str) -> str:
        return fmt_duration(float(self)) if not spec else float.__format__(self, spec)


def _template_value(name: str, value: MetricValue) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _NA()
    if name.endswith("_ns") and is_number(value):
        return _Duration(value)
    return value


class _Values(dict[str, object]):
    """Template values; a metric the scope does not have (e.g. a phase has no per-collective
    breakdown) prints as 'n/a' instead of failing."""

    def __missing__(self, key: str) -> object:
        return _NA()


def render(template: str, metrics: Metrics) -> str:
    """A rule text with metric values substituted (None or absent -> 'n/a', *_ns -> human duration)."""
    return template.format_map(_Values({k: _template_value(k, v) for k, v in metrics.items()}))
