"""Hostile configs, safetensors, ncu exports and numeric options, each run through the CLI (issue 20).

Every case is derived here, into ``tmp_path``, from a real file under ``../shared/data`` (a
HuggingFace config, an Nsight Compute CSV, a Kineto trace). The contract: a broken input ends
with exit code 2 and one stderr line naming the file (or the option), the field and what is
wrong — never a traceback or "internal error"; a damaged-but-readable input gives a report whose
numbers are all finite and non-negative, with the damaged metric missing and its reason given.
The input is byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_file

from infersight.cli import run

QWEN3_8B = "configs/Qwen--Qwen3-8B_config.json"
QWEN3_MOE = "configs/Qwen--Qwen3-30B-A3B_config.json"
DEEPSEEK_V3 = "configs/deepseek-ai--DeepSeek-V3_config.json"
GPT_OSS = "configs/openai--gpt-oss-20b_config.json"
MIXTRAL = "configs/mistralai--Mixtral-8x7B-v0.1_config.json"
NCU_GEMV = "ncu/dsocr_decode_cublas_gemv_rtx5090.details.csv"
NCU_OLD = "ncu/gpt2_flashattn_ampere_oldlayout.csv"  # carries FLOP counters: E_roof is computed
TRACE = "kineto/hta_alexnet_a100.json.gz"  # 79 kernels: fast to read
SCENARIO = ["--batch", "1", "--prompt", "16"]
# How Python prints a non-finite float ("nan", "inf", "-inf"), as a word of its own.
NON_FINITE_WORD = re.compile(r"(?<![\w'.])-?(nan|inf)(?![\w'])")


def _strict_json(text: str) -> Any:
    """Parse JSON refusing NaN/Infinity (which Python's json would accept)."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {token} in an output")

    return json.loads(text, parse_constant=refuse)


def _numbers(node: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _numbers(value, f"{path}[{index}]")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path, float(node)


def assert_finite_non_negative(document: Any) -> None:
    """Every number of an output is finite and >= 0 (no quantity we report can be negative)."""
    for path, value in _numbers(document):
        assert math.isfinite(value), (path, value)
        assert value >= 0, (path, value)


def _digest(path: Path) -> str:
    if path.is_dir():
        return "|".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    if not path.is_file():
        return "special"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("infersight: error: "), lines[0]
    assert "Traceback" not in err and "internal error" not in err
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


# ---------------------------------------------------------------- config builders


def _config(name: str = QWEN3_8B) -> dict[str, Any]:
    return json.loads(shared_file(name).read_text(encoding="utf-8"))


def _edited(changes: dict[str, Any], source: str = QWEN3_8B) -> Callable[[Path], Path]:
    """The real config with some keys replaced (a value of ``...`` removes the key)."""

    def build(tmp: Path) -> Path:
        raw = _config(source)
        for key, value in changes.items():
            if value is ...:
                raw.pop(key, None)
            else:
                raw[key] = value
        out = tmp / "config.json"
        out.write_text(json.dumps(raw), encoding="utf-8")
        return out

    return build


def _quant(changes: dict[str, Any], source: str = DEEPSEEK_V3) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        raw = _config(source)
        raw["quantization_config"] = {**raw.get("quantization_config", {}), **changes}
        out = tmp / "config.json"
        out.write_text(json.dumps(raw), encoding="utf-8")
        return out

    return build


def _raw_text(transform: Callable[[str], str | bytes]) -> Callable[[Path], Path]:
    """The real config's text, transformed (for what json.dumps cannot write: 1e400, NaN, depth)."""

    def build(tmp: Path) -> Path:
        out = tmp / "config.json"
        data = transform(shared_file(QWEN3_8B).read_text(encoding="utf-8"))
        if isinstance(data, bytes):
            out.write_bytes(data)
        else:
            out.write_text(data, encoding="utf-8")
        return out

    return build


def _add_key(text: str, literal: str) -> str:
    return text.rstrip().rstrip("}") + f', "extra_field": {literal}}}'


def _fifo(tmp: Path) -> Path:
    out = tmp / "config.json"
    os.mkfifo(out)
    return out


@dataclass(frozen=True)
class ConfigCase:
    build: Callable[[Path], Path]
    fragments: tuple[str, ...]  # what the one error line must say (file name is checked too)


CONFIG_CASES: dict[str, ConfigCase] = {
    "layers_word": ConfigCase(
        _edited({"num_hidden_layers": "two"}), ("num_hidden_layers", "integer", "'two'")
    ),
    "hidden_3x": ConfigCase(_edited({"hidden_size": "3x"}), ("hidden_size", "integer")),
    "kv_heads_all": ConfigCase(_edited({"num_key_value_heads": "all"}), ("num_key_value_heads", "integer")),
    "heads_bool": ConfigCase(
        _edited({"num_attention_heads": True}), ("num_attention_heads", "integer", "true")
    ),
    "layers_negative": ConfigCase(_edited({"num_hidden_layers": -4}), ("num_hidden_layers", "positive")),
    "intermediate_zero": ConfigCase(_edited({"intermediate_size": 0}), ("intermediate_size", "positive")),
    "layers_float": ConfigCase(_edited({"num_hidden_layers": 36.5}), ("num_hidden_layers", "integer")),
    "layers_1e9": ConfigCase(_edited({"num_hidden_layers": 10**9}), ("num_hidden_layers", "10,000")),
    "heads_huge": ConfigCase(_edited({"num_attention_heads": 2**20}), ("num_attention_heads", "maximum")),
    "vocab_huge": ConfigCase(_edited({"vocab_size": 2**40}), ("vocab_size", "maximum")),
    "head_dim_list": ConfigCase(_edited({"head_dim": [128]}), ("head_dim", "list")),
    "hidden_missing": ConfigCase(_edited({"hidden_size": ...}), ("missing hidden_size",)),
    "tie_string": ConfigCase(
        _edited({"tie_word_embeddings": "false"}), ("tie_word_embeddings", "true or false")
    ),
    "torch_dtype_list": ConfigCase(_edited({"torch_dtype": ["bfloat16"]}), ("torch_dtype", "string")),
    "model_type_int": ConfigCase(_edited({"model_type": 3}), ("model_type", "string")),
    "text_config_list": ConfigCase(_edited({"text_config": [1, 2]}), ("text_config", "object")),
    "quant_config_list": ConfigCase(
        _edited({"quantization_config": ["awq"]}), ("quantization_config", "object")
    ),
    "sliding_window_string": ConfigCase(
        _edited({"sliding_window": "128"}, GPT_OSS), ("sliding_window", "integer")
    ),
    "layer_types_int": ConfigCase(_edited({"layer_types": 3}, GPT_OSS), ("layer_types", "list")),
    "layer_types_numbers": ConfigCase(
        _edited({"layer_types": [1, 2]}, GPT_OSS), ("layer_types[0]", "string")
    ),
    "layer_types_too_many": ConfigCase(
        _edited({"layer_types": ["sliding_attention"] * 72}, GPT_OSS), ("layer_types has 72 entries", "24")
    ),
    "mlp_only_layers_int": ConfigCase(
        _edited({"mlp_only_layers": 3}, QWEN3_MOE), ("mlp_only_layers", "list")
    ),
    "mlp_only_layers_dict": ConfigCase(
        _edited({"mlp_only_layers": {"0": 1}}, QWEN3_MOE), ("mlp_only_layers", "list")
    ),
    "mlp_only_layers_words": ConfigCase(
        _edited({"mlp_only_layers": ["a"]}, QWEN3_MOE), ("mlp_only_layers[0]", "integer")
    ),
    "decoder_sparse_step_word": ConfigCase(
        _edited({"decoder_sparse_step": "two"}, QWEN3_MOE), ("decoder_sparse_step", "integer")
    ),
    "experts_huge": ConfigCase(_edited({"num_experts": 10**6}, QWEN3_MOE), ("num_experts", "65,536")),
    "experts_negative": ConfigCase(_edited({"num_local_experts": -8}, MIXTRAL), ("num_local_experts",)),
    "top_k_word": ConfigCase(
        _edited({"num_experts_per_tok": "two"}, MIXTRAL), ("num_experts_per_tok", "integer")
    ),
    "first_k_dense_word": ConfigCase(
        _edited({"first_k_dense_replace": "3"}, DEEPSEEK_V3), ("first_k_dense_replace", "integer")
    ),
    "shared_experts_negative": ConfigCase(
        _edited({"n_shared_experts": -1}, DEEPSEEK_V3), ("n_shared_experts", "at least 0")
    ),
    "mtp_layers_all": ConfigCase(
        _edited({"num_nextn_predict_layers": "all"}, DEEPSEEK_V3), ("num_nextn_predict_layers", "integer")
    ),
    "kv_lora_rank_float": ConfigCase(
        _edited({"kv_lora_rank": 512.5}, DEEPSEEK_V3), ("kv_lora_rank", "integer")
    ),
    "fp8_block_words": ConfigCase(
        _quant({"weight_block_size": ["a", 128]}), ("quantization_config.weight_block_size[0]", "integer")
    ),
    "fp8_block_three": ConfigCase(_quant({"weight_block_size": [128, 128, 1]}), ("weight_block_size",)),
    "awq_bits_zero": ConfigCase(
        _quant({"quant_method": "awq", "bits": 0}, QWEN3_8B),
        ("quantization_config.bits", "positive"),
    ),
    "awq_bits_negative": ConfigCase(
        _quant({"quant_method": "awq", "bits": -4}, QWEN3_8B), ("quantization_config.bits", "positive")
    ),
    "awq_bits_absurd": ConfigCase(
        _quant({"quant_method": "awq", "bits": 4096}, QWEN3_8B), ("quantization_config.bits", "maximum of 8")
    ),
    "awq_group_word": ConfigCase(
        _quant({"quant_method": "awq", "bits": 4, "group_size": "all"}, QWEN3_8B), ("group_size", "integer")
    ),
    "gptq_bits_zero": ConfigCase(_quant({"quant_method": "gptq", "bits": 0}, QWEN3_8B), ("bits", "positive")),
    "awq_zero_point_string": ConfigCase(
        _quant({"quant_method": "awq", "zero_point": "yes"}, QWEN3_8B), ("zero_point", "true or false")
    ),
    "compressed_tensors_bits_word": ConfigCase(
        _quant(
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"g": {"weights": {"num_bits": "eight"}}},
            },
            QWEN3_8B,
        ),
        ("num_bits", "integer"),
    ),
    "compressed_tensors_group_list": ConfigCase(
        _quant({"quant_method": "compressed-tensors", "config_groups": {"g": [1]}}, QWEN3_8B),
        ("config_groups.g", "object"),
    ),
    "quant_method_list": ConfigCase(_quant({"quant_method": ["fp8"]}), ("quant_method", "string")),
    "number_1e400": ConfigCase(_raw_text(lambda t: _add_key(t, "1e400")), ("invalid number",)),
    "nan_literal": ConfigCase(_raw_text(lambda t: _add_key(t, "NaN")), ("invalid number",)),
    "infinity_literal": ConfigCase(
        _raw_text(lambda t: t.replace('"rope_theta": 1000000', '"rope_theta": Infinity')), ("invalid number",)
    ),
    "int_5000_digits": ConfigCase(_raw_text(lambda t: _add_key(t, "9" * 5000)), ("invalid number",)),
    "nested_10k": ConfigCase(
        _raw_text(lambda t: _add_key(t, "[" * 10_000 + "]" * 10_000)), ("nested too deeply",)
    ),
    "truncated": ConfigCase(_raw_text(lambda t: t[: len(t) // 2]), ("not valid JSON",)),
    "top_level_list": ConfigCase(_raw_text(lambda t: f"[{t}]"), ("JSON object",)),
    "latin1": ConfigCase(
        _raw_text(lambda t: t.replace('"qwen3"', '"qw\u00e9n3"').encode("latin-1")), ("not UTF-8",)
    ),
    "oversized": ConfigCase(_raw_text(lambda t: t + " " * (17 * 1024 * 1024)), ("limit",)),
    "fifo": ConfigCase(_fifo, ("named pipe",)),
}


def _config_commands(config: Path, tmp: Path) -> dict[str, list[str]]:
    trace = str(shared_file(TRACE))
    return {
        "roofline": ["roofline", "--config", str(config), "--gpu", "H100-SXM", *SCENARIO],
        "analyze": ["analyze", trace, "--config", str(config), "--gpu", "H100-SXM", *SCENARIO],
        "layers": ["layers", trace, "--config", str(config)],
        "ncu": ["ncu", str(shared_file(NCU_GEMV)), "--config", str(config), *SCENARIO],
        "ncu-plan": ["ncu-plan", trace, "--config", str(config), *SCENARIO],
        "report": ["report", trace, "-o", str(tmp / "out.html"), "--config", str(config), *SCENARIO],
    }


def test_config_corpus_is_large_enough() -> None:
    assert len(CONFIG_CASES) >= 40


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_hostile_config(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = CONFIG_CASES[name]
    config = case.build(tmp_path)
    before = _digest(config)
    commands = _config_commands(config, tmp_path)
    # roofline reads only the config: every case runs through it; the other commands share the
    # config reader, so each case also runs through one of them in turn (all of them for a few).
    chosen = ["roofline", sorted(commands)[sum(map(ord, name)) % len(commands)]]
    if name in ("layers_word", "layers_1e9", "awq_bits_zero", "nested_10k", "fifo", "number_1e400"):
        chosen = sorted(commands)
    for command in dict.fromkeys(chosen):
        code, _, err = _run(commands[command], capsys)
        assert_one_line_error(code, err, config.name, *case.fragments)
    assert _digest(config) == before, "the config was modified"
    assert not (tmp_path / "out.html").exists()


def test_dev_zero_as_config_is_refused_up_front(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["roofline", "--config", "/dev/zero", "--gpu", "H100-SXM", *SCENARIO], capsys)
    assert_one_line_error(code, err, "/dev/zero", "device")


REAL_CONFIGS = sorted(p.name for p in shared_file(QWEN3_8B).parent.glob("*.json")) if True else []


@pytest.mark.parametrize("name", REAL_CONFIGS)
def test_every_real_config_gives_a_finite_roofline(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The validation layer refuses nothing real, and what it lets through is finite and >= 0.

    The one refusal a real config may get is the memory fit (weights larger than the GPUs' memory at
    TP 2, e.g. DeepSeek-V3): then it must name a TP that fits, and that TP must give the roofline.
    """
    out = tmp_path / "roofline.json"
    config = shared_file(f"configs/{name}")

    def roofline(tp: int) -> tuple[int, str]:
        code, _, err = _run(
            ["roofline", "--config", str(config), "--gpu", "H100-SXM", "--batch", "8", "--prompt", "512",
             "--tp", str(tp), "--json", str(out)],
            capsys,
        )  # fmt: skip
        return code, err

    code, err = roofline(2)
    if code == 2 and "does not fit" in err:
        fitting = re.search(r"fit from --tp (\d+)", err)
        assert fitting is not None, err
        code, err = roofline(int(fitting.group(1)))
    assert code == 0, err
    document = _strict_json(out.read_text())
    assert document["estimate"]["ttft_s"] > 0
    assert_finite_non_negative(document["estimate"])


# ---------------------------------------------------------------- safetensors


def _safetensors(header: dict[str, Any] | bytes, *, length: int | None = None) -> bytes:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body


def _embedding_header() -> dict[str, Any]:
    """One real tensor of the Qwen3-8B config: the embedding table, bf16."""
    raw = _config()
    rows, cols = raw["vocab_size"], raw["hidden_size"]
    return {
        "model.embed_tokens.weight": {
            "dtype": "BF16",
            "shape": [rows, cols],
            "data_offsets": [0, rows * cols * 2],
        }
    }


def _model_folder(tmp: Path, files: dict[str, bytes | dict[str, Any]]) -> Path:
    folder = tmp / "model"
    folder.mkdir()
    (folder / "config.json").write_text(shared_file(QWEN3_8B).read_text(encoding="utf-8"), encoding="utf-8")
    for name, content in files.items():
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        (folder / name).write_bytes(data)
    return folder


def _tensor(**changes: Any) -> bytes:
    header = _embedding_header()
    header["model.embed_tokens.weight"].update(changes)
    return _safetensors(header)


def _index(**metadata: Any) -> dict[str, Any]:
    return {
        "metadata": metadata,
        "weight_map": {"model.embed_tokens.weight": "model-00001-of-00001.safetensors"},
    }


SAFETENSORS_CASES: dict[str, tuple[dict[str, bytes | dict[str, Any]], tuple[str, ...]]] = {
    "shape_word": ({"model.safetensors": _tensor(shape=["a"])}, ("shape[0]", "integer")),
    "shape_negative": ({"model.safetensors": _tensor(shape=[-1, 4096])}, ("shape[0]", "at least 0")),
    "shape_float": ({"model.safetensors": _tensor(shape=[1.5])}, ("shape[0]", "integer")),
    "shape_not_list": ({"model.safetensors": _tensor(shape=4096)}, ("shape", "list")),
    "shape_product_absurd": ({"model.safetensors": _tensor(shape=[2**40, 2**40])}, ("shape", "implausible")),
    "offsets_reversed": ({"model.safetensors": _tensor(data_offsets=[10, 5])}, ("data_offsets",)),
    "offsets_words": (
        {"model.safetensors": _tensor(data_offsets=["0", "5"])},
        ("data_offsets[0]", "integer"),
    ),
    "dtype_list": ({"model.safetensors": _tensor(dtype=["BF16"])}, ("dtype", "string")),
    "tensor_is_list": ({"model.safetensors": _safetensors({"w": [1, 2]})}, ("w", "object")),
    "header_length_absurd": ({"model.safetensors": _safetensors(b"{}", length=2**60)}, ("implausible",)),
    "header_nested_10k": (
        {"model.safetensors": _safetensors(b'{"w": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")},
        ("nested too deeply",),
    ),
    "header_nan": (
        {"model.safetensors": _safetensors(b'{"w": {"dtype": "BF16", "shape": [NaN]}}')},
        ("invalid number",),
    ),
    "index_total_size_string": ({"model.safetensors.index.json": _index(total_size="big")}, ("total_size",)),
    "index_total_size_1e400": (
        {"model.safetensors.index.json": b'{"metadata": {"total_size": 1e400}, "weight_map": {}}'},
        ("invalid number",),
    ),
    "index_weight_map_list": (
        {"model.safetensors.index.json": {"metadata": {"total_size": 10}, "weight_map": ["a"]}},
        ("weight_map", "object"),
    ),
    "index_shard_outside_folder": (
        {
            "model.safetensors.index.json": {
                "metadata": {"total_size": 10},
                "weight_map": {"w": "../../etc/passwd"},
            }
        },
        ("weight_map", "file name"),
    ),
    "index_shard_not_a_string": (
        {"model.safetensors.index.json": {"metadata": {"total_size": 10}, "weight_map": {"w": [1]}}},
        ("weight_map", "file name"),
    ),
}


@pytest.mark.parametrize("name", sorted(SAFETENSORS_CASES))
def test_hostile_safetensors(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, fragments = SAFETENSORS_CASES[name]
    folder = _model_folder(tmp_path, files)
    before = _digest(folder)
    code, _, err = _run(["roofline", "--config", str(folder), "--gpu", "H100-SXM", *SCENARIO], capsys)
    assert_one_line_error(code, err, *fragments)
    assert _digest(folder) == before


def test_fifo_shard_is_refused_not_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _model_folder(tmp_path, {})
    os.mkfifo(folder / "model.safetensors")
    code, _, err = _run(["roofline", "--config", str(folder), "--gpu", "H100-SXM", *SCENARIO], capsys)
    assert_one_line_error(code, err, "model.safetensors", "named pipe")


def test_valid_safetensors_header_is_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The right answer for a sound shard: its tensor is counted, and the CLI runs."""
    from infersight.theory.config_reader import load_model_config

    folder = _model_folder(tmp_path, {"model.safetensors": _safetensors(_embedding_header())})
    raw = _config()
    assert load_model_config(folder).checkpoint_params == raw["vocab_size"] * raw["hidden_size"]
    code, _, err = _run(["roofline", "--config", str(folder), "--gpu", "H100-SXM", *SCENARIO], capsys)
    assert code == 0, err


# ---------------------------------------------------------------- ncu exports


# The hostile ncu cases are cut from the first launches of a real export: every edit applies to
# all launches alike, and each launch adds a detail section the terminal report draws.
NCU_LAUNCHES = 3


def _ncu_rows(source: str) -> list[list[str]]:
    """The header and the rows of the first :data:`NCU_LAUNCHES` launches of a real export."""
    rows = list(csv.reader(io.StringIO(shared_file(source).read_text(encoding="utf-8-sig"))))
    launch = rows[0].index("ID")
    kept = {row[launch] for row in rows[1:] if len(row) > launch}
    kept = set(sorted(kept, key=int)[:NCU_LAUNCHES])
    return rows[:1] + [row for row in rows[1:] if len(row) > launch and row[launch] in kept]


def _write_csv(tmp: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    out = tmp / "export.csv"
    out.write_text(buffer.getvalue(), encoding="utf-8")
    return out


def _ncu_edit(
    metrics: tuple[str, ...], *, unit: str | None = None, value: str | None = None, source: str = NCU_OLD
) -> Callable[[Path], Path]:
    """The real export with the unit and/or value of some metrics (all their launches) replaced."""

    def build(tmp: Path) -> Path:
        rows = _ncu_rows(source)
        header = rows[0]
        name_col, unit_col, value_col = (
            header.index(c) for c in ("Metric Name", "Metric Unit", "Metric Value")
        )
        hits = 0
        for row in rows[1:]:
            if len(row) > value_col and row[name_col] in metrics:
                hits += 1
                row[unit_col] = row[unit_col] if unit is None else unit
                row[value_col] = row[value_col] if value is None else value
        assert hits, f"none of {metrics} in {source}"
        return _write_csv(tmp, rows)

    return build


def _ncu_column(column: str, value: str, source: str = NCU_GEMV) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        rows = _ncu_rows(source)
        col = rows[0].index(column)
        for row in rows[1:]:
            if len(row) > col:
                row[col] = value
        return _write_csv(tmp, rows)

    return build


@dataclass(frozen=True)
class NcuCase:
    build: Callable[[Path], Path]
    missing: str | None = None  # a canonical metric that must be None, with a reason containing...
    reason: str | None = None
    check: Callable[[dict[str, Any]], None] | None = None  # more checks on the first kernel


DRAM = ("dram__bytes.sum",)
CYCLES_PER_S = ("sm__cycles_elapsed.avg.per_second",)


def _no_block(kernel: dict[str, Any]) -> None:
    assert kernel["block"] is None


NCU_CASES: dict[str, NcuCase] = {
    "blank_unit_dram_bytes": NcuCase(_ncu_edit(DRAM, unit=""), "dram_bytes", "blank unit"),
    "blank_unit_dram_read_mbyte": NcuCase(
        _ncu_edit(("dram__bytes_read.sum",), unit="", source=NCU_GEMV), "dram_bytes", "blank unit"
    ),
    "blank_unit_clock": NcuCase(_ncu_edit(CYCLES_PER_S, unit=""), "duration_ns", "blank unit"),
    "negative_dram_bytes": NcuCase(_ncu_edit(DRAM, value="-3,642,496"), "dram_bytes", "negative"),
    "negative_flops": NcuCase(
        _ncu_edit(("sm__sass_thread_inst_executed_op_ffma_pred_on.sum",), value="-3,538,944"),
        "fp32_fma",
        "negative",
    ),
    "negative_percent": NcuCase(
        _ncu_edit(("sm__throughput.avg.pct_of_peak_sustained_elapsed",), value="-50.10"),
        "sm_throughput_pct",
        "negative",
    ),
    "zero_cycles": NcuCase(_ncu_edit(("sm__cycles_elapsed.avg",), value="0"), "duration_ns"),
    "zero_clock": NcuCase(_ncu_edit(CYCLES_PER_S, value="0"), "duration_ns"),
    "zero_duration_details": NcuCase(
        _ncu_edit(("gpu__time_duration.sum", "Duration"), value="0", source=NCU_GEMV), "duration_ns", "below"
    ),
    "tiny_duration": NcuCase(
        _ncu_edit(("gpu__time_duration.sum", "Duration"), value="1e-300", source=NCU_GEMV),
        "duration_ns",
        "below",
    ),
    "infinity_cell": NcuCase(_ncu_edit(DRAM, value="Infinity"), "dram_bytes", "not a number"),
    "nan_cell": NcuCase(_ncu_edit(DRAM, value="nan"), "dram_bytes"),
    "overflowing_cell": NcuCase(_ncu_edit(DRAM, value="1e400"), "dram_bytes", "finite"),
    "absurd_cell": NcuCase(_ncu_edit(DRAM, value="1e300"), "dram_bytes", "exceeds"),
    "block_size_inf": NcuCase(_ncu_column("Block Size", "(inf, 1, 1)"), check=_no_block),
    "block_size_nan": NcuCase(_ncu_column("Block Size", "(nan, nan, nan)"), check=_no_block),
    "block_size_huge": NcuCase(_ncu_column("Block Size", "(99999999999999999999, 1, 1)"), check=_no_block),
    "launch_stats_block_inf": NcuCase(_ncu_edit(("Block Size",), value="1e400"), check=_no_block),
    "device_huge": NcuCase(_ncu_column("Device", "99999999999999999999")),
}


def _ncu_run(export: Path, tmp: Path, gpu: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = tmp / "ncu.json"
    md = tmp / "ncu.md"
    code, stdout, err = _run(["ncu", str(export), "--gpu", gpu, "--json", str(out), "--md", str(md)], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "internal error" not in err
    for text in (stdout, md.read_text()):
        assert not NON_FINITE_WORD.search(text), NON_FINITE_WORD.search(text)
    document = _strict_json(out.read_text())
    assert_finite_non_negative(document["kernels"])
    assert_finite_non_negative(document["findings"])
    return document


@pytest.mark.parametrize("name", sorted(NCU_CASES))
def test_hostile_ncu_cells(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = NCU_CASES[name]
    export = case.build(tmp_path)
    before = _digest(export)
    document = _ncu_run(export, tmp_path, "A100-SXM-40GB", capsys)
    kernel = document["kernels"][0]
    if case.missing is not None:
        for each in document["kernels"]:
            assert each["metrics"][case.missing] is None, (case.missing, each["metrics"][case.missing])
        if case.reason is not None:
            assert case.reason.lower() in kernel["missing"][case.missing].lower(), kernel["missing"][
                case.missing
            ]
    if case.check is not None:
        case.check(kernel)
    for each in document["kernels"]:
        e_roof = each["roofline"]["e_roof"]
        assert e_roof is None or e_roof >= 0, e_roof
        assert e_roof is not None or each["roofline"]["e_roof_na_reason"]
    assert _digest(export) == before


def test_blank_unit_no_longer_inflates_intensity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The 10^6 inflation of the issue: dram bytes 4.74 (blank unit) instead of 4.74e6."""
    real = _ncu_run(shared_file(NCU_OLD), tmp_path, "A100-SXM-40GB", capsys)
    (tmp_path / "hostile").mkdir()
    hostile = _ncu_run(
        _ncu_edit(DRAM, unit="")(tmp_path / "hostile"), tmp_path / "hostile", "A100-SXM-40GB", capsys
    )
    assert any(k["roofline"]["intensity"] for k in real["kernels"])
    assert all(k["roofline"]["intensity"] is None for k in hostile["kernels"])


@pytest.mark.parametrize("source", [NCU_GEMV, NCU_OLD])
def test_real_ncu_exports_give_finite_json(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _ncu_run(shared_file(source), tmp_path, "A100-SXM-40GB", capsys)
    assert document["kernels"]


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda tmp: _fifo_named(tmp, "export.csv"), "named pipe"),
        (lambda tmp: Path("/dev/zero"), "device"),
        (lambda tmp: tmp / "absent.csv", "no such file"),
    ],
)
def test_ncu_special_files(
    build: Callable[[Path], Path], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = build(tmp_path)
    code, _, err = _run(["ncu", str(path)], capsys)
    assert_one_line_error(code, err, path.name, fragment)


def _fifo_named(tmp: Path, name: str) -> Path:
    out = tmp / name
    os.mkfifo(out)
    return out


# ---------------------------------------------------------------- numeric options


def _option_commands(tmp: Path) -> dict[str, list[str]]:
    config = str(shared_file(QWEN3_8B))
    trace = str(shared_file(TRACE))
    return {
        "roofline": ["roofline", "--config", config, "--gpu", "H100-SXM", *SCENARIO],
        "analyze": ["analyze", trace, "--config", config, "--gpu", "H100-SXM", *SCENARIO],
        "layers": ["layers", trace, "--config", config, "--gpu", "H100-SXM", *SCENARIO],
        "report": [
            "report",
            trace,
            "-o",
            str(tmp / "r.html"),
            "--config",
            config,
            "--gpu",
            "H100-SXM",
            *SCENARIO,
        ],
    }


OPTION_CASES: list[tuple[str, list[str], str]] = [
    ("roofline", ["--link-bandwidth", "nan", "--tp", "2"], "--link-bandwidth"),
    ("roofline", ["--link-bandwidth", "inf", "--tp", "2"], "--link-bandwidth"),
    ("roofline", ["--link-bandwidth", "-5", "--tp", "2"], "--link-bandwidth"),
    ("roofline", ["--link-bandwidth", "0", "--tp", "2"], "--link-bandwidth"),
    ("roofline", ["--bandwidth", "inf"], "--bandwidth"),
    ("roofline", ["--bandwidth", "1e400"], "--bandwidth"),
    ("roofline", ["--bandwidth", "-1"], "--bandwidth"),
    ("roofline", ["--peak-tflops", "nan"], "--peak-tflops"),
    ("roofline", ["--peak-tflops", "0"], "--peak-tflops"),
    ("roofline", ["--kappa", "nan"], "--kappa"),
    ("roofline", ["--kappa", "inf"], "--kappa"),
    ("roofline", ["--mem-efficiency", "nan"], "--mem-efficiency"),
    ("roofline", ["--measured-tpot", "inf"], "--measured-tpot"),
    ("roofline", ["--measured-ttft", "nan"], "--measured-ttft"),
    ("roofline", ["--measured-tps", "1e999"], "--measured-tps"),
    ("roofline", ["--retest-delta", "nan"], "--retest-delta"),
    ("roofline", ["--batch", "99999999999999999999"], "--batch"),
    ("roofline", ["--batch", "2000000"], "--batch"),
    ("roofline", ["--prompt", "4294967296"], "--prompt"),
    ("roofline", ["--context", "4294967296"], "--context"),
    ("roofline", ["--tp", "100000"], "--tp"),
    ("analyze", ["--peak-tflops", "inf"], "--peak-tflops"),
    ("analyze", ["--bandwidth", "nan"], "--bandwidth"),
    ("analyze", ["--measured-tpot", "nan"], "--measured-tpot"),
    ("analyze", ["--batch", "2000000"], "--batch"),
    ("layers", ["--link-bandwidth", "nan", "--tp", "2"], "--link-bandwidth"),
    ("layers", ["--peak-tflops", "-3"], "--peak-tflops"),
    ("layers", ["--bandwidth", "inf"], "--bandwidth"),
    ("report", ["--bandwidth", "inf"], "--bandwidth"),
    ("report", ["--peak-tflops", "nan"], "--peak-tflops"),
    ("roofline", ["--gpu", "H100-SXM MIG 0g.0gb"], "MIG 0g.0gb"),
    ("layers", ["--num-layers", "100000"], "--num-layers"),
    ("layers", ["--num-layers", "99999999999999999999"], "--num-layers"),
]


@pytest.mark.parametrize(
    ("command", "extra", "option"), OPTION_CASES, ids=[f"{c}{e}" for c, e, _ in OPTION_CASES]
)
def test_numeric_option_is_refused(
    command: str, extra: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _option_commands(tmp_path)[command]
    code, _, err = _run([*base, *extra], capsys)
    assert_one_line_error(code, err, option)


@pytest.mark.parametrize(
    "argv",
    [
        ["kb", "lookup", "--min-similarity", "nan"],
        ["ncu-plan", "TRACE", "--top", "99999999999999999999"],
        ["verify", "--baseline", "TRACE", "--candidate", "TRACE", "--timeout", "nan"],
        ["verify", "--baseline", "TRACE", "--candidate", "TRACE", "--repeats", "5000000"],
        ["verify", "--baseline", "TRACE", "--candidate", "TRACE", "--timeout", "1e300"],
    ],
)
def test_numeric_options_of_other_commands(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(shared_file(TRACE)) if arg == "TRACE" else arg for arg in argv]
    code, _, err = _run(argv, capsys)
    option = next(arg for arg in reversed(argv) if arg.startswith("--"))
    assert_one_line_error(code, err, option)


def test_link_bandwidth_value_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The right answer for a valid value: a slower link makes the TP all-reduces slower."""
    times = []
    for link in ("900", "9"):
        out = tmp_path / f"r{link}.json"
        code, _, err = _run(
            [
                *_option_commands(tmp_path)["roofline"],
                "--tp",
                "2",
                "--link-bandwidth",
                link,
                "--json",
                str(out),
            ],
            capsys,
        )
        assert code == 0, err
        estimate = _strict_json(out.read_text())["estimate"]
        assert_finite_non_negative(estimate)
        times.append(estimate["tpot_s"])
    assert times[1] > times[0]
