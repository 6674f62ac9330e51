"""Session fixtures: the real traces the host tests share (each is read once)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # builders, independent, inject helpers

from independent import kineto_events
from tests.conftest import shared_file

from infersight import api
from infersight.model import Trace

VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"


@pytest.fixture(scope="session")
def vllm_trace() -> Trace:
    return api.load([shared_file(VLLM)])[0]


@pytest.fixture(scope="session")
def vllm_events() -> list[dict[str, Any]]:
    return kineto_events(shared_file(VLLM))
