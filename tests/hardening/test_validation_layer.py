"""The validation layer as the API and MCP tools meet it, and Hypothesis properties of the readers.

Front ends other than the CLI (``TheoryOptions``/``TheoryRequest``/``Scenario``, the MCP tools,
the GPU overrides) must refuse what the CLI's options refuse, with the same one-line InputError.
The properties feed random junk into the fields of a real config and the cells of a real ncu
export: the result is an InputError, or a report whose every number is finite and >= 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import examples, shared_file
from tests.hardening.test_config_ncu_hostile import NCU_OLD, QWEN3_8B, QWEN3_MOE, assert_finite_non_negative

from infersight.errors import InputError
from infersight.hardware.gpu_specs import custom_gpu, lookup_gpu
from infersight.ncu.analysis import analyze_ncu
from infersight.ncu.reader import parse_ncu_csv
from infersight.render.ncu import render_ncu_json
from infersight.theory.config_reader import parse_config
from infersight.theory.estimates import estimate
from infersight.theory.inputs import TheoryOptions, resolve_hardware
from infersight.theory.operators import Scenario
from infersight.theory.run import TheoryRequest
from infersight.validate import JsonFields, bounded_int, ensure_finite, finite_float, parse_json, shown

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------- request models


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("link_bandwidth_gb_per_s", NAN, "--link-bandwidth"),
        ("link_bandwidth_gb_per_s", INF, "--link-bandwidth"),
        ("link_bandwidth_gb_per_s", -1.0, "--link-bandwidth"),
        ("bandwidth_gb_per_s", INF, "--bandwidth"),
        ("peak_tflops", 0.0, "--peak-tflops"),
        ("kappa", NAN, "--kappa"),
        ("kappa", 0.5, "--kappa"),
        ("memory_efficiency", INF, "--mem-efficiency"),
        ("memory_efficiency", 0.0, "--mem-efficiency"),
    ],
)
def test_theory_options_refuse_non_finite_values(field: str, value: float, option: str) -> None:
    with pytest.raises(InputError, match=option):
        TheoryOptions(model="llama-3-8b", **{field: value})


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"batch": 2**21}, "--batch"),
        ({"prompt": 2**32}, "--prompt"),
        ({"context": 2**32}, "--context"),
        ({"tp": 10**6}, "--tp"),
        ({"measured_tpot_ms": NAN}, "--measured-tpot"),
        ({"measured_ttft_ms": -1.0}, "--measured-ttft"),
        ({"measured_tps": INF}, "--measured-tps"),
        ({"retest_delta": NAN}, "--retest-delta"),
    ],
)
def test_theory_request_refuses_out_of_range(changes: dict[str, Any], option: str) -> None:
    values = {"options": TheoryOptions(model="llama-3-8b"), "batch": 1, "prompt": 16, **changes}
    with pytest.raises(InputError, match=option):
        TheoryRequest(**values)


def test_scenario_refuses_sizes_beyond_the_bounds() -> None:
    with pytest.raises(InputError, match="--batch"):
        Scenario(batch=2**30, prompt_len=1, context_len=1)
    with pytest.raises(InputError, match="temporary factor"):
        Scenario(batch=1, prompt_len=1, context_len=1, temporary_factor=INF)


@pytest.mark.parametrize("value", [NAN, INF, -INF, 0.0, -2.0])
def test_gpu_overrides_refuse_non_finite(value: float) -> None:
    with pytest.raises(InputError, match="--bandwidth"):
        custom_gpu(100.0, value)
    with pytest.raises(InputError, match="--peak-tflops"):
        lookup_gpu("H100-SXM").with_overrides(peak_tflops=value)


def test_mcp_roofline_tool_refuses_like_the_cli() -> None:
    from infersight.agent.tools import layers_tool, roofline_tool

    with pytest.raises(InputError, match="--batch"):
        roofline_tool(model="llama-3-8b", gpu="H100-SXM", batch=10**9, prompt=512)
    with pytest.raises(InputError, match="--tp"):
        roofline_tool(model="llama-3-8b", gpu="H100-SXM", tp=10**7, batch=1, prompt=512)
    with pytest.raises(InputError, match="device"):
        roofline_tool(config="/dev/zero", gpu="H100-SXM", batch=1, prompt=512)
    with pytest.raises(InputError, match="batch"):  # no silent default scenario (the CLI requires it too)
        roofline_tool(model="llama-3-8b", gpu="H100-SXM", prompt=512)
    with pytest.raises(InputError, match="device"):
        layers_tool(str(shared_file("kineto/hta_alexnet_a100.json.gz")), config="/dev/zero")


# ---------------------------------------------------------------- the helpers themselves


def test_shown_never_prints_a_deep_structure() -> None:
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    assert shown(deep) == "a JSON list"
    assert shown({"a": 1}) == "a JSON object"
    assert len(shown("x" * 10_000)) <= 61


def test_number_helpers() -> None:
    assert finite_float(3, "x") == 3.0
    assert bounded_int(4, "x") == 4
    for bad in (NAN, INF, True, "1", None, [1]):
        with pytest.raises(InputError):
            finite_float(bad, "x")
    for bad_int in (0, -1, 2**60, 1.0, True, "2"):
        with pytest.raises(InputError):
            bounded_int(bad_int, "x", maximum=2**53)
    with pytest.raises(InputError, match="too large"):
        finite_float(10**400, "x")


def test_parse_json_is_strict() -> None:
    assert parse_json('{"a": 1.5}', "f") == {"a": 1.5}
    for text in (
        '{"a": NaN}',
        '{"a": -Infinity}',
        '{"a": 1e999}',
        "[" * 100_000,
        '{"a": ' + "9" * 5000 + "}",
    ):
        with pytest.raises(InputError):
            parse_json(text, "f")


def test_json_fields_name_the_key_path() -> None:
    fields = JsonFields({"q": {"bits": "four"}}, "config.json")
    child = fields.child("q")
    assert child is not None
    with pytest.raises(InputError, match=r"config.json: q.bits must be an integer, got 'four'"):
        child.integer("bits")


def test_ensure_finite_is_the_last_guard() -> None:
    ensure_finite({"a": [1.0, {"b": 2}], "c": "inf"}, "report")
    with pytest.raises(ArithmeticError, match=r"report: non-finite number at a\.1\.b"):
        ensure_finite({"a": [1.0, {"b": INF}]}, "report")


# ---------------------------------------------------------------- properties

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
CONFIG_FIELDS = [
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "vocab_size", "tie_word_embeddings", "torch_dtype", "sliding_window",
    "use_sliding_window", "max_window_layers", "attention_bias", "max_position_embeddings",
]  # fmt: skip
MOE_FIELDS = [
    "num_experts", "num_experts_per_tok", "moe_intermediate_size", "decoder_sparse_step", "mlp_only_layers",
    "norm_topk_prob",
]  # fmt: skip
QUANT_FIELDS = ["quant_method", "bits", "group_size", "zero_point", "weight_block_size"]


def _estimate_is_sound(raw: dict[str, Any]) -> None:
    """parse_config + a roofline estimate: InputError, or every number finite and >= 0."""
    try:
        model = parse_config(raw, source="config.json", name="junk")
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("config.json: ")
        return
    options = TheoryOptions(model="unused", gpu="H100-SXM")
    hardware = resolve_hardware(options, model, tp=2)
    scenario = Scenario(batch=2, prompt_len=32, context_len=64, tp=2)
    result = estimate(model, scenario, hardware)
    assert_finite_non_negative(json.loads(result.model_dump_json()))
    assert result.ttft_s > 0 and result.tpot_s > 0


@settings(max_examples=examples(ci=60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CONFIG_FIELDS), JUNK)
def test_junk_in_a_dense_config_field(key: str, value: Any) -> None:
    raw = json.loads(shared_file(QWEN3_8B).read_text(encoding="utf-8"))
    raw[key] = value
    _estimate_is_sound(raw)


@settings(max_examples=examples(ci=40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MOE_FIELDS), JUNK)
def test_junk_in_a_moe_config_field(key: str, value: Any) -> None:
    raw = json.loads(shared_file(QWEN3_MOE).read_text(encoding="utf-8"))
    raw[key] = value
    _estimate_is_sound(raw)


@settings(max_examples=examples(ci=40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["awq", "gptq", "fp8", "compressed-tensors", "bitsandbytes"]),
    st.sampled_from(QUANT_FIELDS),
    JUNK,
)
def test_junk_in_a_quantization_config(method: str, key: str, value: Any) -> None:
    raw = json.loads(shared_file(QWEN3_8B).read_text(encoding="utf-8"))
    raw["quantization_config"] = {"quant_method": method, key: value}
    _estimate_is_sound(raw)


NCU_JUNK = st.one_of(
    st.sampled_from(
        ["", "n/a", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "-0.5", "0", "1e30", "1e-300"]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.text(alphabet="0123456789.,-eE", max_size=10),
)
NCU_UNITS = st.sampled_from(["", "byte", "Mbyte", "%", "ns", "usecond", "cycle", "inst", "Ghz", "bogus"])


@pytest.fixture(scope="module")
def ncu_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(shared_file(NCU_OLD).read_text(encoding="utf-8-sig"))))


@settings(
    max_examples=examples(ci=40, quick=12),  # each example parses and analyses a whole export
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(1, 10_000), NCU_JUNK, st.none() | NCU_UNITS), min_size=1, max_size=12))
def test_junk_in_ncu_cells(ncu_rows: list[list[str]], edits: list[tuple[int, str, str | None]]) -> None:
    rows = [list(row) for row in ncu_rows]
    header = rows[0]
    unit_col, value_col = header.index("Metric Unit"), header.index("Metric Value")
    body = [row for row in rows[1:] if len(row) > value_col and row[value_col]]
    for index, value, unit in edits:
        row = body[index % len(body)]
        row[value_col] = value
        if unit is not None:
            row[unit_col] = unit
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    try:
        export = parse_ncu_csv(buffer.getvalue(), "export.csv")
    except InputError as exc:  # e.g. both decimal conventions in one file
        assert "\n" not in str(exc)
        return
    report = analyze_ncu([export], gpu="A100-SXM-40GB")
    document = json.loads(render_ncu_json(report), parse_constant=lambda token: pytest.fail(token))
    assert_finite_non_negative(document["kernels"])
    assert_finite_non_negative(document["findings"])
    for kernel in document["kernels"]:
        for name, value in kernel["metrics"].items():
            assert value is not None or kernel["missing"].get(name), name
        e_roof = kernel["roofline"]["e_roof"]
        assert e_roof is None or (math.isfinite(e_roof) and e_roof >= 0)


def test_property_inputs_are_real(tmp_path: Path) -> None:
    """The properties start from real files (a guard against an empty strategy input)."""
    assert json.loads(shared_file(QWEN3_MOE).read_text(encoding="utf-8"))["num_experts"] == 128
    assert shared_file(NCU_OLD).stat().st_size > 0
