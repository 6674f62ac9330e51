"""Fixtures: the real traces the host tests share (each is read once per test run)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # builders, independent, inject helpers

from independent import kineto_events
from tests.conftest import assert_tables_equal, shared_file, shared_trace

from infersight.model import Trace
from infersight.model.trace import TABLE_COLUMNS

VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"


@pytest.fixture(scope="session")
def vllm_trace() -> Iterator[Trace]:
    """One copy of the trace shared by the host tests (and their module fixtures), which only read
    it (``inject`` edits copies); checked unchanged at the end, so a test that does change it fails."""
    trace = shared_trace(VLLM)
    yield trace
    pristine = shared_trace(VLLM)
    assert (trace.notes, trace.gpus, trace.metadata) == (pristine.notes, pristine.gpus, pristine.metadata)
    for table in TABLE_COLUMNS:
        assert_tables_equal(trace.table(table), pristine.table(table))


@pytest.fixture(scope="session")
def vllm_events() -> list[dict[str, Any]]:
    return kineto_events(shared_file(VLLM))
