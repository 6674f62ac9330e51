"""Plain-Python interval arithmetic and raw readers, independent of infersight (test oracle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import plain_json_events
from tests.interval_oracle import Interval, length, merge, overlap

__all__ = ["Interval", "kineto_events", "length", "merge", "ns", "overlap"]


def kineto_events(path: Path) -> list[dict[str, Any]]:
    return [e for e in plain_json_events(path) if e.get("ph") == "X"]


def ns(event: dict[str, Any]) -> Interval:
    start = round(float(event["ts"]) * 1000)
    return start, start + round(float(event["dur"]) * 1000)
