"""Thresholds and advice text of the overlap findings, from ``data/overlap_rules.toml``."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

_TABLE = "overlap_rules.toml"


@functools.cache
def overlap_rules() -> dict[str, dict[str, Any]]:
    """Every ``[finding.<type>]`` table by type."""
    text = (resources.files("infersight") / "data" / _TABLE).read_text(encoding="utf-8")
    table: dict[str, dict[str, Any]] = tomllib.loads(text)["finding"]
    return table


def rule(finding_type: str) -> dict[str, Any]:
    """The thresholds / texts of one finding type (KeyError for an unknown type: a code bug)."""
    return overlap_rules()[finding_type]
