"""``tests.conftest.assert_tables_equal`` (the readers' equivalence tests rely on it) catches
every difference ``pd.testing.assert_frame_equal(check_exact=True)`` catches on trace tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.conftest import assert_tables_equal


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start": np.array([1, 2, 3], dtype=np.int64),
            "share": np.array([0.5, np.nan, 1.0]),
            "name": pd.Categorical(["a", "b", "a"], categories=["a", "b"]),
            "bytes": pd.arrays.SparseArray([-1, 4, -1], fill_value=-1),
        }
    )


def test_equal_tables_pass_nan_included() -> None:
    assert_tables_equal(_table(), _table())


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.assign(start=t["start"] + np.array([0, 0, 1])),
        lambda t: t.assign(start=t["start"].astype(np.int32)),
        lambda t: t.assign(share=t["share"].fillna(0.0)),
        lambda t: t.assign(name=pd.Categorical(["a", "b", "b"], categories=["a", "b"])),
        lambda t: t.assign(name=pd.Categorical(["a", "b", "a"], categories=["b", "a"])),  # same values
        lambda t: t.assign(name=pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"])),
        lambda t: t.assign(bytes=pd.arrays.SparseArray([-1, 5, -1], fill_value=-1)),
        lambda t: t[["start", "name", "share", "bytes"]],
        lambda t: t.iloc[:2],
        lambda t: t.set_axis([1, 2, 3]),
    ],
)
def test_each_kind_of_difference_fails(change: object) -> None:
    with pytest.raises(AssertionError):
        assert_tables_equal(change(_table()), _table())  # type: ignore[operator]
    with pytest.raises(AssertionError):
        assert_tables_equal(_table(), change(_table()))  # type: ignore[operator]
