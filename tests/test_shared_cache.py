"""The per-process trace cache of tests/conftest.py: what it hands out equals a fresh read, and no
test can change what the next one gets (each call is a deep copy)."""

from __future__ import annotations

import pandas as pd
from tests.conftest import shared_file, shared_report, shared_trace, shared_traces

from infersight import api
from infersight.model.trace import TABLE_COLUMNS

ALEXNET = "kineto/hta_alexnet_a100.json.gz"
TWO_RANKS = "kineto/hta_sampled_128ranks"


def test_cached_traces_equal_a_fresh_read() -> None:
    for relative in (ALEXNET, TWO_RANKS):
        fresh = api.load([shared_file(relative)], executor="local")
        cached = shared_traces(relative)
        assert [t.source for t in cached] == [t.source for t in fresh]
        for a, b in zip(fresh, cached, strict=True):
            assert (a.rank, a.notes, a.gpus, a.metadata) == (b.rank, b.notes, b.gpus, b.metadata)
            for table in TABLE_COLUMNS:
                pd.testing.assert_frame_equal(a.table(table), b.table(table))


def test_changing_a_handed_out_trace_changes_no_later_one() -> None:
    first = shared_trace(ALEXNET)
    kernels = len(first.kernels)
    assert kernels == 79  # INDEX.md
    first.kernels.loc[:, "start"] = 0  # in place, as a careless test might
    first.kernels = first.kernels.iloc[:0]
    first.notes.append("changed")
    first.gpus.clear()
    second = shared_trace(ALEXNET)
    assert second is not first and len(first.kernels) == 0
    assert len(second.kernels) == kernels and int(second.kernels["start"].min()) > 0
    assert "changed" not in second.notes and second.gpus


def test_cached_report_equals_the_api_and_is_a_copy() -> None:
    expected = api.report_from_traces(api.load([shared_file(ALEXNET)], executor="local"))
    first = shared_report(ALEXNET)
    assert first.model_dump_json() == expected.model_dump_json()
    first.findings.clear()
    first.profile.devices.clear()
    second = shared_report(ALEXNET)
    assert second.model_dump_json() == expected.model_dump_json()
