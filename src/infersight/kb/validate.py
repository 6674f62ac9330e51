"""Checks of what goes into (and comes out of) the knowledge base.

A knowledge base outlives the command that filled it: one bad value stored today (a
``wall_ns`` of 2**70, a NaN share, a string where a count belongs) would make every later
lookup fail or, worse, rank runs on a wrong number. So every record is checked before it is
stored — integers within int64 and not negative where they count or time something, floats
finite, text where text belongs — and a report that does not have the shape of an
``analyze --json`` report is refused with the field that is wrong, naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infersight.errors import InputError

__all__ = [
    "INT64_MAX",
    "WHERE_KEY",
    "RecordError",
    "as_input_error",
    "check_rows",
    "check_values",
    "checked_float",
    "checked_int",
    "report_list",
]

INT64_MAX = 2**63 - 1
WHERE_KEY = "_where"


class RecordError(ValueError):
    """A value that cannot be stored; the message names the field."""


def checked_int(value: Any, where: str, *, minimum: int = 0) -> int | None:
    """``value`` as an int within [minimum, int64 max] (None stays None); an integral float is fine."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{where}: expected an integer, got {type(value).__name__} {_show(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != math.floor(value):
            raise RecordError(f"{where}: expected an integer, got {_show(value)}")
        if abs(value) > INT64_MAX:  # before int(): an overflowing float is not a count
            raise RecordError(f"{where}: {_show(value)} is outside the 64-bit integer range")
        value = int(value)
    if not minimum <= value <= INT64_MAX:
        bound = "below 0" if value < minimum else "outside the 64-bit integer range"
        raise RecordError(f"{where}: {_show(value)} is {bound}")
    return int(value)


def checked_float(value: Any, where: str) -> float | None:
    """``value`` as a finite float (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{where}: expected a number, got {type(value).__name__} {_show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        raise RecordError(f"{where}: {_show(value)} is outside the floating-point range") from None
    if not math.isfinite(number):
        raise RecordError(f"{where}: {_show(value)} is not a finite number")
    return number


def _checked_text(value: Any, where: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{where}: expected text, got {type(value).__name__} {_show(value)}")
    return value


# column -> kind: int (>= 0), sint (signed int), float (finite), text, text! (required text)
RUN_COLUMNS = {
    "wall_ns": "int",
    "busy_ns": "int",
    "idle_ratio": "float",
    "gpu_count": "int",
    "tp": "int",
    "ep": "int",
    "pp": "int",
    "batch": "int",
    "prompt_len": "int",
    "context_len": "int",
    "label": "text!",
    "tool_version": "text",
    "gpu": "text",
    "driver": "text",
    "cuda": "text",
    "torch": "text",
    "engine": "text",
    "engine_version": "text",
    "model": "text",
    "dtype": "text",
}
MEASUREMENT_COLUMNS = {
    "kind": "text!",
    "phase": "text!",
    "operator": "text!",
    "category": "text",
    "count": "int",
    "total_ns": "int",
    "share": "float",
    "ns_per_step": "float",
    "e_roof": "float",
    "flops": "float",
    "bytes": "float",
}
RECOMMENDATION_COLUMNS = {
    "finding_id": "text!",
    "type": "text!",
    "title": "text!",
    "severity": "text",
    "gain_low": "float",
    "gain_high": "float",
    "confidence": "text",
    "confidence_reason": "text",
}


def _checked(kind: str, value: Any, where: str) -> Any:
    if kind == "int":
        return checked_int(value, where)
    if kind == "float":
        return checked_float(value, where)
    return _checked_text(value, where, required=kind == "text!")


def check_rows(
    rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], where: str
) -> list[dict[str, Any]]:
    """The rows with every listed column checked (and integral floats made ints); RecordError else.

    A row may carry ``WHERE_KEY`` (the report field it came from, e.g. ``profile.kernels[3]``)
    so the message points at the report, not at our table; it is removed from the result.
    """
    out = []
    for index, row in enumerate(rows):
        clean = dict(row)
        prefix = str(clean.pop(WHERE_KEY, f"{where}[{index}]"))
        out.append(check_values(clean, columns, prefix))
    return out


def check_values(values: Mapping[str, Any], columns: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """One record's listed columns checked, errors named ``prefix.column``."""
    clean = dict(values)
    for column, kind in columns.items():
        if column in clean:
            clean[column] = _checked(kind, clean[column], f"{prefix}.{column}")
    return clean


def report_list(report: Mapping[str, Any], *keys: str) -> list[Mapping[str, Any]]:
    """A list of objects at ``report[keys...]`` (missing or null: empty); RecordError when the
    value is not a list of JSON objects, so a damaged report never reaches a KeyError."""
    value: Any = report
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None:
        return []
    where = ".".join(keys)
    if not isinstance(value, list):
        raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RecordError(f"{where}[{index}]: expected an object, got {type(item).__name__}")
    return value


def as_input_error(exc: RecordError, source: str | Path | None) -> InputError:
    """The one-line error for a report that cannot be recorded."""
    return InputError(source, f"cannot be stored in the knowledge base: {exc}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
