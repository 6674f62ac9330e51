"""Collective args from the model's optional columns: each of the three sources PyTorch uses, on a
hand-built trace whose answer is known by construction (no file behind it: nothing is re-read)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from infersight.model.trace import API_COLUMNS, KERNEL_COLUMNS, RANGE_COLUMNS, Trace, make_table
from infersight.overlap.comm import comm_overlaps
from infersight.overlap.comm_args import NO_SIZES, CommArgs, comm_args

NCCL = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)"
GATHER = "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)"
LAUNCH_THREAD = 5


def optional(values: dict[str, list[Any]]) -> dict[str, Any]:
    """Optional model columns: strings as categoricals, numbers sparse with -1 for unknown."""
    return {
        name: pd.Categorical(column)
        if isinstance(column[0], str)
        else pd.arrays.SparseArray(np.array(column, dtype=np.int64), dtype=pd.SparseDtype(np.int64, -1))
        for name, column in values.items()
    }


def three_source_trace() -> Trace:
    """Kernel 0 carries its args; kernel 1 links to a record_param_comms op by External id;
    kernel 2's launch lies inside a ``nccl:all_reduce`` annotation and an old-style op."""
    kernels = make_table(
        KERNEL_COLUMNS,
        {
            "stream": [7, 7, 7],
            "start": [1000, 2000, 3000],
            "end": [1100, 2100, 3100],
            "name": [NCCL, GATHER, NCCL],
            "correlation": [1, 2, 3],
            "process": [0, 0, 0],
            "device": [0, 0, 0],
        },
    )
    kernels = kernels.assign(
        **optional(
            {
                "comm_collective": ["allreduce", "", ""],
                "comm_dtype": ["BFloat16", "", ""],
                "comm_in_nelems": [1000, -1, -1],
                "comm_out_nelems": [1000, -1, -1],
                "comm_group_size": [8, -1, -1],
                "external_id": [-1, 42, -1],
            }
        )
    )
    ranges = make_table(
        RANGE_COLUMNS,
        {
            "thread": [LAUNCH_THREAD, LAUNCH_THREAD, LAUNCH_THREAD],
            "start": [100, 250, 260],
            "end": [200, 400, 390],
            "name": ["record_param_comms", "nccl:all_reduce", "record_param_comms"],
            "source": ["cpu_op", "user_annotation", "cpu_op"],
        },
    )
    ranges = ranges.assign(
        **optional(
            {
                "comm_collective": ["_allgather_base", "", ""],
                "comm_dtype": ["Float", "", ""],
                "comm_in_nelems": [500, -1, -1],
                "comm_out_nelems": [2000, -1, -1],
                "comm_group_size": [4, -1, 2],
                "external_id": [42, -1, 43],
                "comm_input_nelems": [-1, -1, 64],
                "comm_input_type": ["", "", "float"],
            }
        )
    )
    api = make_table(
        API_COLUMNS,
        {
            "thread": [LAUNCH_THREAD] * 3,
            "start": [150, 180, 300],
            "end": [160, 190, 310],
            "name": ["cudaLaunchKernel"] * 3,
            "correlation": [1, 2, 3],
            "source": ["runtime"] * 3,
        },
    )
    trace = Trace(source="no/such/file.json", format="kineto", kernels=kernels, ranges=ranges, api=api)
    trace.check_schema()
    return trace


def test_each_source_of_collective_args() -> None:
    found, reason = comm_args(three_source_trace(), np.array([0, 1, 2]))
    assert reason is None
    assert found == {
        0: CommArgs("AllReduce", 2000, 2000, 8, "kernel args"),  # 1000 bf16 elements
        1: CommArgs("AllGather", 2000, 8000, 4, "record_param_comms"),  # 500 / 2000 floats
        2: CommArgs("AllReduce", 256, None, 2, "record_param_comms input dims"),  # 64 floats
    }


def test_kernels_without_any_source_get_none() -> None:
    trace = three_source_trace()
    trace.api = trace.api.assign(thread=np.int64(LAUNCH_THREAD + 1))  # launches on another thread
    trace.kernels = trace.kernels.drop(columns=["comm_in_nelems"])  # and no kernel args
    found, reason = comm_args(trace, np.array([0, 2]))
    assert (found, reason) == ({}, NO_SIZES)


def test_message_sizes_reach_the_collective_table() -> None:
    (overlap,) = comm_overlaps(three_source_trace())
    by_name = {s.collective: s for s in overlap.collectives}
    assert by_name["AllGather"].message_bytes == 8000  # all-gather's size is its output
    assert by_name["AllReduce"].message_bytes == (2000 + 256) // 2
    assert by_name["AllReduce"].size_source == "kernel args"


@pytest.mark.parametrize("rows", [np.array([], dtype=np.int64), np.array([0])])
def test_nsys_and_uncorrelated_kernels_say_why(rows: np.ndarray) -> None:
    trace = three_source_trace()
    trace.format = "nsys-sqlite"
    assert (
        comm_args(trace, rows)[1]
        == "nsys exports carry no NCCL message sizes (NCCL NVTX payloads are not decoded)"
    )
    trace.format = "kineto"
    trace.kernels = trace.kernels.assign(correlation=np.int64(-1))
    assert comm_args(trace, np.array([0, 1]))[1] == "the communication kernels carry no correlation id"
