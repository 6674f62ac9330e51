"""emit_nvtx names split into form + numbers and joined back: exact for every string."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from infersight.analyses.phases import canonical_range_names
from infersight.model.emit_nvtx import (
    NO_NUMBER,
    extra_chars,
    join_one,
    name_keys,
    split_joined,
    split_list,
    split_names,
)

# names built from the pieces that matter (the two fields, digits, leading zeros, long runs,
# repeated fields, non-ASCII and the separator's neighbours) plus arbitrary text
PIECES = st.sampled_from(
    [", seq = ", ", op_id = ", "0", "7", "007", "12", "1234567890123456789", "99999999999999999",
     "aten::mm", ", sizes = [[2, 3]]", "é", "名", "\x1e", " ", ",", "=", "{}", "{0}", "x"]
)  # fmt: skip
NAMES = st.one_of(st.lists(PIECES, max_size=8).map("".join), st.text(max_size=30))


def _examples() -> list[str]:
    return [
        "aten::mm, seq = 12, op_id = 345",
        "aten::mm, op_id = 345, seq = 12, sizes = [[8, 4096], [4096, 4096]]",
        "",
        "plain name",
        "a, seq = 007",  # leading zero: kept in the form
        "b, seq = 1, seq = 2, op_id = 0",  # a field twice: kept in the form
        "q, op_id = 1234567890123456789",  # 19 digits: kept in the form
        "r, op_id = 123456789012345678",  # 18 digits: taken apart
        ", seq = ",
        "é名, op_id = 99{x}",
    ]


def test_examples_split_as_documented() -> None:
    parts = split_names(_examples())
    assert parts.forms[0] == "aten::mm, seq = 0, op_id = 0"
    assert (parts.numbers[0][0], parts.numbers[1][0]) == (12, 345)
    assert parts.forms[4] == "a, seq = 007" and parts.numbers[0][4] == NO_NUMBER
    assert parts.forms[5] == "b, seq = 1, seq = 2, op_id = 0" and parts.numbers[0][5] == NO_NUMBER
    assert parts.numbers[1][5] == 0  # its one op_id is taken apart
    assert parts.forms[6] == "q, op_id = 1234567890123456789" and parts.numbers[1][6] == NO_NUMBER
    assert parts.numbers[1][7] == 123456789012345678
    for name, form, *numbers in zip(_examples(), parts.forms, *parts.numbers, strict=True):
        assert join_one(form, numbers) == name


@given(st.lists(NAMES, min_size=1, max_size=12))
def test_byte_split_equals_the_split_name_by_name_and_joins_back(names: list[str]) -> None:
    """The numpy path over the joined bytes gives what the per-name reference gives, exactly."""
    reference = split_names(names)
    fast = split_list(names)
    assert fast.forms == reference.forms
    for got, expected in zip(fast.numbers, reference.numbers, strict=True):
        assert got.tolist() == expected.tolist()
    for name, form, *numbers in zip(names, reference.forms, *reference.numbers, strict=True):
        assert join_one(form, numbers) == name
        # the phase split's canonical form of a name is that of its form (it reads forms)
        assert canonical_range_names([form]) == canonical_range_names([name])
    assert extra_chars(reference.numbers).tolist() == [
        len(name) - len(form) for name, form in zip(names, reference.forms, strict=True)
    ]


@given(st.lists(NAMES, min_size=1, max_size=20))
def test_keys_are_equal_exactly_where_names_are(names: list[str]) -> None:
    parts = split_names(names)
    form_codes, forms = pd.factorize(np.asarray(parts.forms, dtype=object))
    keys = name_keys(form_codes.astype(np.int64), parts.numbers)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert (keys[i] == keys[j]) == (a == b), (a, b)
    joined = [
        join_one(str(forms[code]), [int(values[row]) for values in parts.numbers])
        for row, code in enumerate(form_codes.tolist())
    ]
    assert joined == names


def test_keys_stay_exact_when_numbers_are_too_spread_to_combine() -> None:
    """Numbers spanning the whole int64 range take the factorising path, still exact."""
    names = [f"op, seq = {a}, op_id = {b}" for a, b in [(0, 0), (10**17, 1), (0, 10**17), (10**17, 10**17)]]
    names += names[:2]
    parts = split_names(names)
    keys = name_keys(np.zeros(len(names), dtype=np.int64), parts.numbers)
    assert len(set(keys.tolist())) == 4 and keys[4] == keys[0] and keys[5] == keys[1]


def test_a_separator_inside_a_name_takes_the_name_by_name_path() -> None:
    names = ["a\x1fb, op_id = 3", "c, op_id = 4"]
    parts = split_list(names)
    assert parts.forms == ["a\x1fb, op_id = 0", "c, op_id = 0"]
    assert parts.numbers[1].tolist() == [3, 4]


def test_invalid_utf8_is_replaced_as_decoding_does() -> None:
    raw = b"\xff\xfe, op_id = 12\x1fok, seq = 5\x80"
    parts = split_joined(raw, b"\x1f")
    expected = split_names(raw.decode("utf-8", errors="replace").split("\x1f"))
    assert parts.forms == expected.forms
    assert [n.tolist() for n in parts.numbers] == [n.tolist() for n in expected.numbers]
