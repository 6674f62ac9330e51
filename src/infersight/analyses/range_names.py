"""Range names for grouping and display, from a full or a compact range table.

A range table holds either one ``name`` per range (a categorical of the distinct names) or, read
with compact names (``COMPACT_RANGE_COLUMNS``), each name as its emit_nvtx form plus two numbers
(:mod:`infersight.model.emit_nvtx`). Analyses that group ranges by name or show names go through
:class:`RangeNames`: the same groups and the same shown names either way, and with a compact table
no string is built for the millions of names nobody sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersight.ingest.checks import short_name
from infersight.model import union_names
from infersight.model.emit_nvtx import NO_NUMBER, first_rows, join_one, name_keys
from infersight.model.trace import RANGE_FORM_COLUMN, RANGE_NUMBER_COLUMNS


def is_compact(ranges: pd.DataFrame) -> bool:
    """The table holds names as emit_nvtx forms and numbers."""
    return RANGE_FORM_COLUMN in ranges.columns


def form_column(ranges: pd.DataFrame) -> pd.Series:
    """The names, or with a compact table their forms: only for callers that look at a name's
    :func:`~infersight.analyses.phases.canonical_range_names` form (both give the same one)."""
    return ranges[RANGE_FORM_COLUMN] if is_compact(ranges) else ranges["name"]


@dataclass(frozen=True)
class NameGroups:
    """A group code per row (equal exactly where the names are equal; -1: no name) and the
    name of a code, as the range tables show it (long names shortened as the readers do)."""

    codes: np.ndarray
    label: Callable[[int], str]


@dataclass(frozen=True)
class RangeNames:
    """The names of some ranges: a categorical, plus the emit_nvtx numbers when it holds forms."""

    names: pd.Categorical
    numbers: tuple[np.ndarray, ...] | None = None

    @classmethod
    def of(cls, ranges: pd.DataFrame, rows: np.ndarray | None = None) -> RangeNames:
        """The names of ``ranges`` (of its ``rows`` only, when given: no copy of the rest)."""
        pick: Callable[[np.ndarray], np.ndarray] = (lambda a: a) if rows is None else (lambda a: a[rows])
        names = as_categorical(form_column(ranges))
        if rows is not None:
            names = pd.Categorical.from_codes(pick(names.codes), dtype=names.dtype)
        if not is_compact(ranges):
            return cls(names)
        return cls(names, tuple(pick(ranges[key].to_numpy(np.int64)) for key in RANGE_NUMBER_COLUMNS))

    @staticmethod
    def joined(parts: list[RangeNames]) -> RangeNames:
        """The parts' names one after the other (categories united in order of first appearance)."""
        if len(parts) == 1:
            return parts[0]
        names = union_names([part.names for part in parts])
        if all(part.numbers is None for part in parts):
            return RangeNames(names)
        numbers = tuple(
            np.concatenate(
                [
                    part.numbers[field] if part.numbers is not None else np.full(len(part.names), NO_NUMBER)
                    for part in parts
                ]
            )
            for field in range(len(RANGE_NUMBER_COLUMNS))
        )
        return RangeNames(names, numbers)

    def keys(self, width: int = 1) -> np.ndarray:
        """An int64 per row, equal exactly where the names are equal (-1: no name), that can be
        multiplied by ``width`` and stay within int64 (callers combine it with other codes).

        With full names the keys are the categories' codes; with forms they are
        :func:`~infersight.model.emit_nvtx.name_keys` (no hash pass), or the name groups' codes
        when the numbers are too spread to combine by place value.
        """
        form_codes = self.names.codes.astype(np.int64)
        if self.numbers is None:
            return form_codes
        keys = name_keys(form_codes, self.numbers)
        if (int(keys.max(initial=0)) + 1) * max(width, 1) >= 2**62:
            return self.groups().codes
        return np.where(form_codes >= 0, keys, -1)

    def label_of_row(self, row: int) -> str:
        """The name of one range, as the range tables show it (long names shortened)."""
        code = int(self.names.codes[row])
        if self.numbers is None or code < 0:
            return _category(self.names, code)
        form = str(self.names.categories[code])
        return short_name(join_one(form, [int(values[row]) for values in self.numbers]))

    def groups(self) -> NameGroups:
        """The name groups: with full names, the categories' codes as they are."""
        names, numbers = self.names, self.numbers
        if numbers is None or not any(bool((values != NO_NUMBER).any()) for values in numbers):
            return NameGroups(names.codes.astype(np.int64), lambda code: _category(names, code))
        form_codes = names.codes.astype(np.int64)
        named = form_codes >= 0
        codes = np.full(len(form_codes), -1, dtype=np.int64)
        codes[named] = pd.factorize(name_keys(form_codes[named], [values[named] for values in numbers]))[0]
        first = first_rows(codes)  # -1 never exceeds the codes before it: no row of its own
        return NameGroups(
            codes, lambda code: self.label_of_row(int(first[code])) if code >= 0 else str(np.nan)
        )


def _category(names: pd.Categorical, code: int) -> str:
    """The category of ``code`` as a string (a missing name, code -1, as ``str(nan)``)."""
    return str(names.categories[code]) if code >= 0 else str(np.nan)


def as_categorical(column: pd.Series) -> pd.Categorical:
    """The column as a Categorical with string categories (the model's string columns are)."""
    values = column.array
    if not isinstance(values, pd.Categorical):
        return pd.Categorical(column.astype(str).to_numpy())
    if pd.api.types.is_string_dtype(values.categories.dtype):
        return values  # already string categories: no copy of (possibly millions of) names
    return pd.Categorical.from_codes(values.codes, categories=values.categories.astype(str))
