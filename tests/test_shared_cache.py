"""The per-process trace cache of tests/conftest.py: what it hands out equals a fresh read, and no
test can change what the next one gets (each call is a deep copy)."""

from __future__ import annotations

import copy
import gzip
import json
from decimal import Decimal

import pytest
from tests.conftest import (
    assert_tables_equal,
    plain_json,
    plain_json_events,
    shared_file,
    shared_report,
    shared_trace,
    shared_traces,
)

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
                assert_tables_equal(a.table(table), b.table(table))


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


def test_plain_json_equals_the_standard_library_and_refuses_changes() -> None:
    path = shared_file(ALEXNET)
    fresh = json.loads(gzip.decompress(path.read_bytes()))
    assert plain_json(path) == fresh
    assert plain_json(path) is plain_json(path)  # parsed once per process
    exact = json.loads(gzip.decompress(path.read_bytes()), parse_float=Decimal)
    assert plain_json_events(path, exact_decimals=True) == exact["traceEvents"]
    events = plain_json_events(path)
    with pytest.raises(Exception, match="deepcopy"):
        events[0]["ts"] = 0
    with pytest.raises(Exception, match="deepcopy"):
        events.sort(key=str)
    with pytest.raises(Exception, match="deepcopy"):
        plain_json(path)["traceEvents"] = []
    mine = copy.deepcopy(events)
    mine[0]["ts"] = 0
    mine.append({})
    assert type(mine) is list and type(mine[0]) is dict
    assert plain_json_events(path) == fresh["traceEvents"]
