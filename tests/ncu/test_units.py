"""Unit and number conversion: one test per unit family, and the refusals."""

from __future__ import annotations

import pytest

from infersight.ncu.units import UnitError, detect_number_style, parse_number, parse_unit, to_base


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [("10.34", "us", 10_340.0), ("10.34", "usecond", 10_340.0), ("1.5", "msecond", 1_500_000.0),
     ("812", "nsecond", 812.0), ("2", "second", 2e9), ("812", "ns", 812.0)],
)  # fmt: skip
def test_time_family_to_ns(text: str, unit: str, expected: float) -> None:
    assert to_base(text, unit) == (pytest.approx(expected), "ns")


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("4.74", "Mbyte", 4_740_000.0),
        ("16.38", "Kbyte", 16_380.0),
        ("1.2", "Gbyte", 1.2e9),
        ("512", "byte", 512.0),
    ],
)
def test_byte_family_is_decimal(text: str, unit: str, expected: float) -> None:
    assert to_base(text, unit) == (pytest.approx(expected), "byte")


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [("458.30", "Gbyte/s", 458.3e9), ("458.30", "Gbyte/second", 458.3e9), ("1.5", "Tbyte/second", 1.5e12),
     ("900", "Kbyte/second", 900e3), ("3", "Mbyte/usecond", 3e12)],
)  # fmt: skip
def test_bandwidth_family_to_bytes_per_second(text: str, unit: str, expected: float) -> None:
    assert to_base(text, unit) == (pytest.approx(expected), "byte/second")


@pytest.mark.parametrize(
    ("text", "unit"),
    [("1.98", "Ghz"), ("1.98", "GHz"), ("1,980", "Mhz"), ("1.98", "cycle/nsecond"), ("1980000000", "hz")],
)
def test_frequency_family_to_hz(text: str, unit: str) -> None:
    assert to_base(text, unit) == (pytest.approx(1.98e9), "hz")


def test_percent_stays_percent() -> None:
    assert to_base("26.00", "%") == (26.0, "%")


@pytest.mark.parametrize(
    ("text", "unit", "expected", "base"),
    [("2.5", "Minst", 2.5e6, "inst"), ("20,830", "cycle", 20_830.0, "cycle"),
     ("3", "Ksector", 3000.0, "sector"), ("335,544,320", "", 335_544_320.0, ""), ("4", "warp", 4.0, "warp")],
)  # fmt: skip
def test_count_family_with_prefixes(text: str, unit: str, expected: float, base: str) -> None:
    assert to_base(text, unit) == (pytest.approx(expected), base)


@pytest.mark.parametrize(
    ("unit", "base", "scale"),
    [("inst/cycle", "inst/cycle", 1.0), ("sector/request", "sector/request", 1.0),
     ("register/thread", "register/thread", 1.0), ("Kbyte/block", "byte/block", 1e3)],
)  # fmt: skip
def test_ratio_units_keep_their_denominator(unit: str, base: str, scale: float) -> None:
    parsed = parse_unit(unit)
    assert (parsed.base, parsed.scale) == (base, scale)


@pytest.mark.parametrize("unit", ["Xbyte", "furlong", "Gbyte/fortnight", "%/s", "Kibyte"])
def test_unknown_units_are_refused_not_guessed(unit: str) -> None:
    with pytest.raises(UnitError):
        parse_unit(unit)


@pytest.mark.parametrize("text", ["n/a", "N/A", "", "  "])
def test_not_available_is_none_never_zero(text: str) -> None:
    assert parse_number(text) is None


def test_thousands_separators_in_both_conventions() -> None:
    assert parse_number("1,205.50", "en") == 1205.5
    assert parse_number("27.595.520", "eu") == 27_595_520.0
    assert parse_number("65,77", "eu") == pytest.approx(65.77)


def test_number_style_is_detected_from_unambiguous_cells() -> None:
    assert detect_number_style(["1,205", "26.00"]) == "en"
    assert detect_number_style(["117.344", "65,77"]) == "eu"
    assert detect_number_style(["1,205", "512"]) == "en"  # nothing proves eu: ncu's default
    with pytest.raises(UnitError, match="both decimal conventions"):
        detect_number_style(["26.00", "65,77"])


def test_garbage_number_is_refused() -> None:
    with pytest.raises(UnitError):
        parse_number("12 MB")
