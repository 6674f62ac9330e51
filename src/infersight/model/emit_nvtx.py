"""emit_nvtx range names as a *form* plus two numbers, and back.

``torch.autograd.profiler.emit_nvtx`` names every range ``op, seq = N, op_id = M[, sizes = ...]``,
so a capture of 1M kernels holds ~4.6M distinct names made of a few hundred forms. One Python
string per distinct name costs more memory than the rest of the trace; a compact range table
(``COMPACT_RANGE_COLUMNS`` in :mod:`infersight.model.trace`) holds each name as its form (the
two numbers set to 0, a categorical of a few hundred values) and the numbers (int64 columns).
Equal (form, numbers) means equal name (:func:`name_keys`), so ranges are grouped by name
without building the names, and a name is built (:func:`join_one`) only where it is shown.

The split is exact (``join(split(name)) == name`` for every string): a number is taken apart only
where it is the one ``, seq = <digits>`` (or ``, op_id = <digits>``) of its name and written the
way ``str(int)`` writes it (no leading zero, at most 18 digits); anything else stays in the form
and its number is -1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

FIELDS: tuple[bytes, ...] = (b", seq = ", b", op_id = ")
NO_NUMBER = -1
_MAX_DIGITS = 18  # every 18-digit number fits an int64
MAX_EXTRA_CHARS = len(FIELDS) * (_MAX_DIGITS - 1)  # a name is at most this longer than its form
_DIGIT_0, _DIGIT_9 = ord("0"), ord("9")
# in a form: the one place of each field whose digits were set to 0 (the only digit-led one)
_FORM_SLOTS = tuple(re.compile(re.escape(field.decode()) + "(?=[0-9])") for field in FIELDS)


@dataclass(frozen=True)
class SplitNames:
    """Forms and numbers of a list of names (one entry per name, in order)."""

    forms: list[str]
    numbers: tuple[np.ndarray, ...]  # per field of :data:`FIELDS`: int64, NO_NUMBER where kept in the form


def split_joined(joined: bytes, separator: bytes) -> SplitNames:
    """Split the UTF-8 names of ``joined`` (one or more names, separated by ``separator``).

    Works on the bytes with numpy (the fields and digits are ASCII, and no byte of a multi-byte
    UTF-8 character is ASCII, so matches are exact), ~10x faster than regular expressions that
    hand back the numbers. Invalid UTF-8 is replaced as ``bytes.decode(errors="replace")`` does,
    the same as decoding the names first.
    """
    if len(separator) != 1:  # a multi-byte separator: the names one by one
        return split_names(joined.decode("utf-8", errors="replace").split(separator.decode()))
    buf = np.frombuffer(joined, dtype=np.uint8)
    padded = np.zeros(len(buf) + _PAD, dtype=np.uint8)
    padded[: len(buf)] = buf
    separators = np.flatnonzero(buf == separator[0])
    rows = len(separators) + 1
    keep = np.ones(len(buf), dtype=bool)
    zeroed = buf.copy()
    numbers = []
    after_equals = _digits_after_equals(buf)
    for field in FIELDS:
        digits_at = _preceded_by(buf, after_equals, field)
        lengths, values = _digit_runs(padded, digits_at)
        row = np.searchsorted(separators, digits_at)
        single = np.bincount(row, minlength=rows)[row] == 1
        exact = (lengths <= _MAX_DIGITS) & ((buf[digits_at] != _DIGIT_0) | (lengths == 1)) & single
        digits_at, lengths = digits_at[exact], lengths[exact]
        per_row = np.full(rows, NO_NUMBER, dtype=np.int64)
        per_row[row[exact]] = values[exact]
        numbers.append(per_row)
        zeroed[digits_at] = _DIGIT_0
        keep[_spans(digits_at + 1, lengths - 1)] = False
    forms = zeroed[keep].tobytes().decode("utf-8", errors="replace").split(separator.decode())
    return SplitNames(forms, tuple(numbers))


_EQUALS = b" = "


def _digits_after_equals(buf: np.ndarray) -> np.ndarray:
    """Offsets of the digits that follow a `` = `` (both fields end so)."""
    equals = np.flatnonzero(buf[1 : len(buf) - 2] == _EQUALS[1]) + 1  # room for " " and a digit
    equals = equals[(buf[equals - 1] == _EQUALS[0]) & (buf[equals + 1] == _EQUALS[2])]
    return equals[_is_digit(buf[equals + 2])] + 2


def _preceded_by(buf: np.ndarray, digits_at: np.ndarray, field: bytes) -> np.ndarray:
    """The offsets of ``digits_at`` that come right after ``field`` (its rarest bytes, the last, first)."""
    at = digits_at[digits_at >= len(field)]
    for offset in range(len(field) - len(_EQUALS) - 1, -1, -1):
        at = at[buf[at - len(field) + offset] == field[offset]]
    return at


def _digit_runs(padded: np.ndarray, digits_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(digit count, value) of the digit run at each offset of ``padded`` (the bytes plus
    :data:`_PAD` zeros, so no run reads past the end); values are exact up to 18 digits."""
    lengths = np.zeros(len(digits_at), dtype=np.int64)
    values = np.zeros(len(digits_at), dtype=np.int64)
    running = np.ones(len(digits_at), dtype=bool)
    for offset in range(_PAD):  # a run of _PAD digits is already too long to be exact
        digit = padded[digits_at + offset] - np.uint8(_DIGIT_0)  # non-digits wrap above 9
        running &= digit <= 9
        if not running.any():
            break
        lengths += running
        if offset < _MAX_DIGITS:
            values = np.where(running, values * 10 + digit, values)
    return lengths, values


_PAD = _MAX_DIGITS + 1


def _is_digit(values: np.ndarray) -> np.ndarray:
    return (values >= _DIGIT_0) & (values <= _DIGIT_9)


def _spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Every index of the half-open spans ``[start, start + length)``."""
    total = int(lengths.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def split_list(names: Sequence[str]) -> SplitNames:
    """:func:`split_joined` of a list of names (joined by a character none of them holds)."""
    if not names:
        return split_names(names)
    joined = _JOIN.join(names)
    if joined.count(_JOIN) != len(names) - 1:  # a name holds the separator
        return split_names(names)
    try:
        encoded = joined.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which the byte path would not give back
        return split_names(names)
    return split_joined(encoded, _JOIN.encode())


_JOIN = "\x1f"


def name_keys(form_codes: np.ndarray, numbers: Sequence[np.ndarray]) -> np.ndarray:
    """One int64 per (form code, numbers), equal exactly where the full names are equal.

    The split is one-to-one, so equal keys mean equal names without building them. The columns
    are combined by place value while the product of their ranges fits an int64 (emit_nvtx
    numbers are small), else a column is factorised first so the key stays below rows ** 2.
    """
    keys = form_codes.astype(np.int64)
    span = int(keys.max(initial=-1)) + 1
    for values in numbers:
        if not len(values) or int(values.max()) == NO_NUMBER:
            continue
        low = int(values.min())
        width = int(values.max()) - low + 1
        if span * width < 2**62:
            keys = keys * width + (values - low)
            span *= width
            continue
        value_codes, distinct = pd.factorize(values)
        keys, _ = pd.factorize(keys * len(distinct) + value_codes)
        keys = keys.astype(np.int64)
        span = int(keys.max(initial=-1)) + 1
    return keys


def extra_chars(numbers: Sequence[np.ndarray]) -> np.ndarray:
    """How many characters longer than its form each name is (its numbers' digits, less the 0s)."""
    extra = np.zeros(len(numbers[0]) if len(numbers) else 0, dtype=np.int64)
    for values in numbers:
        present = values != NO_NUMBER
        digits = np.ones(len(values), dtype=np.int64)
        for power in range(1, _MAX_DIGITS):
            digits += values >= 10**power
        extra += np.where(present, digits - 1, 0)
    return extra


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Index of the first row of each code, for codes numbered in order of first appearance.

    In that numbering a code appears first exactly where it exceeds every code before it.
    """
    if not len(codes):
        return np.empty(0, dtype=np.int64)
    before = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))
    return np.flatnonzero(codes > before)


def split_names(names: Sequence[str]) -> SplitNames:
    """:func:`split_joined` of names given one by one (the reference the byte path agrees with)."""
    forms: list[str] = []
    numbers = [np.full(len(names), NO_NUMBER, dtype=np.int64) for _ in FIELDS]
    for index, name in enumerate(names):
        for field, values in zip(FIELDS, numbers, strict=True):
            name, values[index] = _split_one(name, field.decode())
        forms.append(name)
    return SplitNames(forms, tuple(numbers))


def _split_one(name: str, field: str) -> tuple[str, int]:
    """``name`` with its one exact ``field`` number set to 0, and that number (else -1)."""
    found = list(re.finditer(re.escape(field) + "([0-9]+)", name))
    if len(found) != 1:
        return name, NO_NUMBER
    digits = found[0].group(1)
    if len(digits) > _MAX_DIGITS or str(int(digits)) != digits:
        return name, NO_NUMBER
    return name[: found[0].start(1)] + "0" + name[found[0].end(1) :], int(digits)


def join_one(form: str, numbers: Sequence[int]) -> str:
    """The full name of one form and its numbers (one per field, NO_NUMBER where none)."""
    places = sorted((_slot(form, field), value) for field, value in enumerate(numbers) if value != NO_NUMBER)
    pieces, last = [], 0
    for at, value in places:  # each 0 the split left is replaced by its number
        pieces += [form[last:at], str(value)]
        last = at + 1
    pieces.append(form[last:])
    return "".join(pieces)


def _slot(form: str, field: int) -> int:
    """Offset of the 0 the split put after ``FIELDS[field]`` (the field's only digit-led place)."""
    found = _FORM_SLOTS[field].search(form)
    if found is None:
        raise ValueError(f"form {form!r} has no place for {FIELDS[field].decode()!r}")
    return found.end()
