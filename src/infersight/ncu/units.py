"""Nsight Compute units and numbers -> values in base units, or a clear refusal.

ncu prints every value in the unit it finds most readable ("4.74" "Mbyte", "10.34" "us",
"13.77" "Ghz", "458.30" "Gbyte/s", "20,830" "cycle") unless ``--print-units base`` is given
("4740000" "byte", "10340" "nsecond"). Numbers carry the locale's thousands separators
("1,205.00"; on European-locale hosts "27.595.520" and "65,77"). Everything here converts to
one base unit per family (ns, byte, byte/second, hz, %, plain counts) so that a value read
from a default-units export equals the same value read from a base-units export. A unit we
do not know is refused (:class:`UnitError`) rather than guessed: a mis-scaled number would
silently change a verdict. SI prefixes in ncu units are decimal (1 Kbyte = 1000 byte).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

NumberStyle = Literal["en", "eu"]

NOT_AVAILABLE = frozenset({"n/a", "N/A", "NA", "-", "--", "nan", "NaN"})

_SI_PREFIX = {"": 1.0, "K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME_NS = {
    "nsecond": 1.0, "ns": 1.0, "nanosecond": 1.0,
    "usecond": 1e3, "us": 1e3, "µs": 1e3, "microsecond": 1e3,
    "msecond": 1e6, "ms": 1e6, "millisecond": 1e6,
    "second": 1e9, "s": 1e9, "sec": 1e9,
}  # fmt: skip
_FREQUENCY = re.compile(r"^([KkMG]?)hz$", re.IGNORECASE)
_BYTES = re.compile(r"^([KkMGTP]?)(byte|bytes|B)$")
# Count nouns ncu prints (optionally with an SI prefix when it auto-scales: "Kinst", "Mcycle").
COUNT_NOUNS = frozenset(
    {
        "inst", "cycle", "sector", "request", "warp", "thread", "block", "register", "wavefront",
        "transaction", "instance", "cluster", "SM", "pass", "flop", "op", "event", "bank",
    }
)  # fmt: skip
_COUNT = re.compile(r"^([KMGTP]?)([A-Za-z_]+)$")


class UnitError(ValueError):
    """A unit or number that cannot be converted without guessing."""


@dataclass(frozen=True)
class BaseUnit:
    """How to bring one printed unit to its base: value * scale, expressed in ``base``."""

    base: str
    scale: float
    family: str


def _simple_unit(unit: str) -> BaseUnit:
    """A unit without '/' (time, frequency, bytes, percent, counts)."""
    if unit == "":
        return BaseUnit("", 1.0, "dimensionless")
    if unit == "%":
        return BaseUnit("%", 1.0, "percent")
    if unit in _TIME_NS:
        return BaseUnit("ns", _TIME_NS[unit], "time")
    if match := _FREQUENCY.match(unit):
        return BaseUnit(
            "hz", _SI_PREFIX[match.group(1).upper() if match.group(1) != "k" else "K"], "frequency"
        )
    if match := _BYTES.match(unit):
        return BaseUnit("byte", _SI_PREFIX[match.group(1)], "bytes")
    if unit in COUNT_NOUNS:
        return BaseUnit(unit, 1.0, "count")
    if (match := _COUNT.match(unit)) and match.group(1) and match.group(2) in COUNT_NOUNS:
        return BaseUnit(match.group(2), _SI_PREFIX[match.group(1)], "count")
    raise UnitError(f"unknown unit {unit!r}")


def parse_unit(unit: str | None) -> BaseUnit:
    """The base unit and scale of a unit as ncu prints it.

    Rates are ``numerator/denominator``: a time denominator becomes "per second"
    ("Gbyte/s" -> byte/second x 1e9, "cycle/nsecond" -> cycle/second x 1e9, i.e. Hz); any other
    denominator stays ("inst/cycle", "sector/request", "register/thread", "Kbyte/block").
    Raises :class:`UnitError` for anything else.
    """
    text = (unit or "").strip()
    if "/" not in text:
        return _simple_unit(text)
    numerator_text, _, denominator_text = text.partition("/")
    numerator = _simple_unit(numerator_text.strip())
    denominator_text = denominator_text.strip()
    if numerator.family not in ("bytes", "count", "dimensionless"):
        raise UnitError(f"unknown unit {text!r}")
    if denominator_text in _TIME_NS:
        per_second = numerator.scale / (_TIME_NS[denominator_text] * 1e-9)
        base = "byte/second" if numerator.family == "bytes" else f"{numerator.base}/second"
        if numerator.base == "cycle":
            return BaseUnit("hz", per_second, "frequency")
        return BaseUnit(base, per_second, "bandwidth" if numerator.family == "bytes" else "rate")
    denominator = _simple_unit(denominator_text)
    if denominator.family != "count" or denominator.scale != 1.0:
        raise UnitError(f"unknown unit {text!r}")
    return BaseUnit(f"{numerator.base}/{denominator.base}", numerator.scale, "ratio")


# ---------------------------------------------------------------- numbers

_NUMBER = re.compile(r"^[+-]?(\d[\d.,]*)([eE][+-]?\d+)?$")


def _style_evidence(text: str) -> NumberStyle | None:
    """Which convention a numeric cell proves, or None when it fits both ("1,205", "512")."""
    match = _NUMBER.match(text)
    if not match:
        return None
    digits = match.group(1)
    commas, dots = digits.count(","), digits.count(".")
    if commas and dots:
        return "en" if digits.rfind(".") > digits.rfind(",") else "eu"
    if dots > 1:
        return "eu"
    if commas > 1:
        return "en"
    if dots == 1:
        return None if len(digits.split(".")[1]) == 3 else "en"
    if commas == 1:
        return None if len(digits.split(",")[1]) == 3 else "eu"
    return None


def detect_number_style(cells: Iterable[str]) -> NumberStyle:
    """The decimal convention of a whole export, from the cells that can only be read one way.

    "26.00" proves en_US (dot decimal), "65,77" or "27.595.520" prove a comma-decimal locale;
    "1,205" fits both and proves nothing. ncu's default (en_US) is assumed when nothing proves
    either. Raises :class:`UnitError` when the file proves both (a mixed or corrupted export).
    """
    seen: dict[str, str] = {}
    for cell in cells:
        style = _style_evidence(cell.strip())
        if style is not None and style not in seen:
            seen[style] = cell.strip()
            if len(seen) == 2:
                raise UnitError(
                    f"numbers use both decimal conventions ({seen['en']!r} reads as en_US, "
                    f"{seen['eu']!r} as comma-decimal); re-export with LC_ALL=C"
                )
    return "eu" if "eu" in seen else "en"


def parse_number(text: str, style: NumberStyle = "en") -> float | None:
    """A numeric cell as float; None for an empty or "n/a" cell. Raises UnitError otherwise."""
    cell = text.strip()
    if cell == "" or cell in NOT_AVAILABLE:
        return None
    if not _NUMBER.match(cell):
        raise UnitError(f"not a number: {cell!r}")
    plain = cell.replace(",", "") if style == "en" else cell.replace(".", "").replace(",", ".")
    try:
        return float(plain)
    except ValueError:
        raise UnitError(f"not a number: {cell!r}") from None


def looks_numeric(text: str) -> bool:
    """True for a cell that is a (possibly separated) number."""
    return bool(_NUMBER.match(text.strip()))


def to_base(text: str, unit: str | None, style: NumberStyle = "en") -> tuple[float | None, str]:
    """A printed value and unit -> (value in base units, base unit). "n/a" -> (None, base)."""
    base = parse_unit(unit)
    value = parse_number(text, style)
    return (None if value is None else value * base.scale), base.base
