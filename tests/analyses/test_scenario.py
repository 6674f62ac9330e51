"""Scenario read from the trace: token-id copies, Input Dims, FlashAttention-2 grids."""

from __future__ import annotations

from functools import cache

import pytest
from tests.conftest import shared_file

from infersight.analyses.scenario import infer_scenario
from infersight.ingest import load_file
from infersight.model import Trace
from infersight.model.trace import MEMCPY_COLUMNS, make_table

VLLM_TP4 = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
HF_QWEN = "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"


@cache
def _load(relative: str) -> Trace:
    return load_file(shared_file(relative))


def test_vllm_tp4_trace_is_one_sequence_of_1049_tokens() -> None:
    inferred = infer_scenario([_load(VLLM_TP4)])
    # INDEX.md, checked independently: prefill copies 4,196 B of int32 ids (4 B x 1049) and 8,392 B
    # of int64 positions (8 B x 1049); each of the 9 decode steps copies 4 B in and 4 B out
    assert inferred.method == "token copies"
    assert (inferred.batch.value, inferred.prompt.value) == (1, 1049)
    assert inferred.batch.confidence == "high"  # prefill's sampled ids and every decode step agree
    assert inferred.prompt.confidence == "medium"
    assert (inferred.prefill_steps, inferred.decode_steps) == (1, 9)
    assert inferred.context.value == round(sum(1049 + k for k in range(1, 10)) / 9) == 1054
    assert [(s.tokens, s.batch, s.phase) for s in inferred.steps] == [(1049, 1, "prefill")] + [
        (1, 1, "decode")
    ] * 9
    assert any(
        "4,196 B of int32 token ids and 8,392 B of int64 positions" in e for e in inferred.prompt.evidence
    )


def test_hf_kineto_trace_reads_embedding_and_sdpa_shapes() -> None:
    inferred = infer_scenario([_load(HF_QWEN)])
    # aten::embedding indices 16x559; SDPA query 16x16x559x64; pytorch_flash grid y = 16
    assert inferred.method == "operator input shapes"
    assert (inferred.batch.value, inferred.prompt.value) == (16, 559)
    assert inferred.batch.confidence == inferred.prompt.confidence == "high"
    assert any("grid y = 16" in e for e in inferred.batch.evidence)
    assert inferred.context.value is None and inferred.decode_steps == 0  # one forward pass, no decode


def _copies(rows: list[tuple[int, int, str]]) -> Trace:
    """A trace holding only copies (start ns, bytes, kind)."""
    memcpy = make_table(
        MEMCPY_COLUMNS,
        {
            "device": [0] * len(rows),
            "stream": [7] * len(rows),
            "start": [r[0] for r in rows],
            "end": [r[0] + 1 for r in rows],
            "bytes": [r[1] for r in rows],
            "kind": [r[2] for r in rows],
        },
    )
    return Trace(source="synthetic", format="kineto", memcpy=memcpy)


def test_batched_prefill_and_decode_from_copies() -> None:
    # 4 prompts of 100 tokens: 1600 B of ids, 3200 B of positions, 16 B of sampled ids back;
    # then 2 decode steps of 4 tokens (16 B ids, 32 B positions, 16 B back)
    trace = _copies(
        [(0, 1600, "HtoD"), (1, 3200, "HtoD"), (2, 20, "HtoD"), (9, 16, "DtoH")]
        + [(10 + 10 * k, 16, "HtoD") for k in range(2)]
        + [(11 + 10 * k, 32, "HtoD") for k in range(2)]
        + [(15 + 10 * k, 16, "DtoH") for k in range(2)]
    )
    inferred = infer_scenario([trace])
    assert (inferred.batch.value, inferred.prompt.value, inferred.context.value) == (4, 100, 102)
    assert (inferred.prefill_steps, inferred.decode_steps) == (1, 2)


def test_no_evidence_says_why() -> None:
    inferred = infer_scenario([_copies([(0, 64, "HtoD"), (5, 3, "DtoH")])])
    assert inferred.method == "none" and not inferred.usable
    assert inferred.notes and "no token-id copies" in inferred.notes[0]


@pytest.mark.parametrize("size", [0, 6])
def test_odd_copy_sizes_are_not_read_as_tokens(size: int) -> None:
    inferred = infer_scenario([_copies([(0, size, "HtoD"), (1, 2 * size, "HtoD"), (2, 4, "DtoH")])])
    assert inferred.prompt.value is None
