"""The tool adapters behind the MCP server return the same JSON as the analyses' own results."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tests.agent._support import FakeOpenAI, fake_openai_server
from tests.conftest import shared_file

from infersight.agent import tools
from infersight.errors import InputError


def _kernel_names(path: str) -> list[str]:
    data = json.loads(gzip.decompress(Path(path).read_bytes()))
    return [e["name"] for e in data["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "kernel"]


def test_roofline_tool_without_traces() -> None:
    result = tools.roofline_tool(model="llama-3.1-8b", gpu="H100", batch=1, prompt=128)
    assert result["estimate"]["scenario"]["prompt_len"] == 128
    assert result["measured"] is None and result["estimate"]["ttft_s"] > 0


def test_trace_tools_on_a_real_trace() -> None:
    trace = str(shared_file("kineto/hta_alexnet_a100.json.gz"))
    names = _kernel_names(trace)
    plan = tools.ncu_plan_tool([trace], top=3)
    assert 1 <= len(plan["kernels"]) <= 3
    overlap = tools.overlap_tool([trace])
    assert overlap["copies"] and "findings" in overlap
    host = tools.host_tool([trace])
    assert host["traces"] and host["verdict"]
    assert len(names) == 79  # INDEX.md: AlexNet step, 79 kernels


def test_tools_raise_input_errors() -> None:
    with pytest.raises(InputError):
        tools.analyze_tool([])
    with pytest.raises(InputError):
        tools.layers_tool("x.json", model="a", config="b")
    assert set(tools.TOOLS) >= {
        "analyze",
        "roofline",
        "host",
        "diff",
        "layers",
        "ncu_plan",
        "kb_lookup",
        "verify",
    }


def test_verify_tool_runs_no_command_without_the_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tools.ALLOW_COMMANDS_ENV, raising=False)
    marker = tmp_path / "ran"
    with pytest.raises(InputError, match="does not run commands"):
        tools.verify_tool(f"touch {marker}", f"touch {marker}", use_kb=False)
    assert not marker.exists()


def test_verify_tool_never_runs_a_mistyped_trace_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tools.ALLOW_COMMANDS_ENV, "1")
    with pytest.raises(InputError, match="no such trace file"):
        tools.verify_tool("/nonexistent/base.json.gz", "/nonexistent/cand.json.gz", use_kb=False)
    with pytest.raises(InputError, match="no such program"):
        tools.verify_tool("/nonexistent/bin/serve --x", "true", use_kb=False)
    with pytest.raises(InputError, match="command not found on this host: no-such-program-xyz"):
        tools.verify_tool("true", "no-such-program-xyz", use_kb=False)


def test_verify_tool_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tools.ALLOW_COMMANDS_ENV, "1")
    with pytest.raises(InputError, match="timeout_s must be in"):
        tools.verify_tool("true", "true", timeout_s=1e9, use_kb=False)
    with pytest.raises(InputError, match=r"timed out after 0\.3 s"):
        tools.verify_tool("sleep 5", "true", timeout_s=0.3, warmup=0, repeats=1, use_kb=False)
    done = tools.verify_tool("true", "true", repeats=1, warmup=0, use_kb=False)
    assert done["ran"] == {
        "baseline": ["true"],
        "candidate": ["true"],
        "runs_per_side": 1,
        "timeout_s": tools.DEFAULT_TIMEOUT_S,
        "shell": False,
    }


def test_loop_tools_analyze_top_ncu_kb_record(tmp_path: Path) -> None:
    trace = str(shared_file("kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz"))
    report = tools.analyze_tool([trace], top=3)
    assert len(report["profile"]["kernels"]) == 3
    assert report["truncated"]["profile.kernels"]["shown"] == 3
    assert report["truncated"]["profile.kernels"]["total"] > 3
    with pytest.raises(InputError, match="top must be >= 1"):
        tools.analyze_tool([trace], top=0)
    export = str(shared_file("ncu/dsocr_decode_cublas_gemv_rtx5090.details.csv"))
    ncu = tools.ncu_tool([export], traces=[trace])
    assert ncu["kernels"] and "compute capability 12.0" in ncu["device_warnings"][0]
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(tools.analyze_tool([trace], top=10_000)))
    kb = str(tmp_path / "kb.sqlite")
    first = tools.kb_record_tool([str(saved)], kb=kb)["records"][0]
    again = tools.kb_record_tool([str(saved)], kb=kb)["records"][0]
    assert first["created"] and not again["created"] and again["run_id"] == first["run_id"]
    FakeOpenAI.reply = lambda _body: (
        "The GPU was idle 8.5% of the window [small_kernel_storm/dev0]. "
        "The GPU idle ratio is 8.3% [small_kernel_storm/dev0]."
    )
    with fake_openai_server() as url:
        narration = tools.narrate_tool(str(saved), llm_url=url, llm_model="fake-1")
    assert narration["text"] == "The GPU was idle 8.5% of the window [small_kernel_storm/dev0]."
    assert "not the value of idle_ratio" in narration["dropped"][0]["reason"]


def test_report_tool_writes_the_html_and_refuses_an_input(tmp_path: Path) -> None:
    source = shared_file("kineto/hta_alexnet_a100.json.gz")
    out = tmp_path / "r.html"
    result = tools.report_tool([str(source)], str(out), no_layers=True)
    html = out.read_text(encoding="utf-8")
    assert result["output"] == str(out) and result["bytes"] == len(html.encode())
    assert html.lstrip().lower().startswith("<!doctype html") and result["traces"] == [str(source)]
    copy = tmp_path / "trace.json.gz"
    copy.write_bytes(source.read_bytes())
    link = tmp_path / "alias.html"
    link.symlink_to(copy)
    before = copy.read_bytes()
    with pytest.raises(InputError, match="output path is an input"):
        tools.report_tool([str(copy)], str(link))
    with pytest.raises(InputError, match=r"output must end with \.html"):
        tools.report_tool([str(copy)], str(copy))
    with pytest.raises(InputError, match="does not exist"):
        tools.report_tool([str(copy)], str(tmp_path / "no" / "r.html"))
    folder = tmp_path / "ranks"
    folder.mkdir()
    (folder / "rank0.json.gz").write_bytes(before)
    (folder / "rank0.html").symlink_to(folder / "rank0.json.gz")
    with pytest.raises(InputError, match="output path is an input"):
        tools.report_tool([str(folder)], str(folder / "rank0.html"))  # a file the folder expands to
    assert copy.read_bytes() == before and (folder / "rank0.json.gz").read_bytes() == before


def test_export_tool_inline_is_cut_to_top_and_the_file_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infersight.render.trace_export import EXPORT_SCHEMA_VERSION, load_export

    source = shared_file("kineto/hta_alexnet_a100.json.gz")
    inline = tools.export_tool([str(source)], top=10)
    kernels = inline["traces"][0]["tables"]["kernels"]
    assert kernels["rows"] == 10 and all(len(v) == 10 for v in kernels["data"].values())
    assert inline["truncated"]["traces[0].tables.kernels"] == {
        "shown": 10,
        "total": len(_kernel_names(str(source))),
    }
    assert inline["schema_version"] == EXPORT_SCHEMA_VERSION
    load_export(json.dumps({k: v for k, v in inline.items() if k != "truncated"}))  # still a valid document
    out = tmp_path / "export.json"
    summary = tools.export_tool([str(source)], output=str(out))
    whole = load_export(out.read_bytes())
    assert summary["traces"][0]["rows"]["kernels"] == whole.traces[0].tables["kernels"].rows == 79
    assert summary["bytes"] == out.stat().st_size and "truncated" not in summary
    assert "truncated" not in tools.export_tool([str(source)], top=100_000)
    with pytest.raises(InputError, match=r"output must end with \.json"):
        tools.export_tool([str(source)], output=str(tmp_path / "x.csv"))
    with pytest.raises(InputError, match="top must be >= 1"):
        tools.export_tool([str(source)], top=0)
    monkeypatch.setattr(tools, "MAX_INLINE_EXPORT_BYTES", 1000)
    with pytest.raises(InputError, match=r"inline export is .* MiB \(limit .*give output=PATH\.json"):
        tools.export_tool([str(source)], top=10)
    assert tools.export_tool([str(source)], output=str(out))["bytes"] > 1000  # a file has no such limit
    copy = tmp_path / "t.json"
    copy.write_bytes(out.read_bytes())
    with pytest.raises(InputError, match="output path is an input"):
        tools.export_tool([str(copy)], output=str(copy))


def test_tool_outputs_carry_a_major_minor_schema_version() -> None:
    import re

    trace = str(shared_file("kineto/hta_alexnet_a100.json.gz"))
    outputs = {
        "roofline": tools.roofline_tool(model="llama-3.1-8b", gpu="H100", batch=1, prompt=128),
        "ncu_plan": tools.ncu_plan_tool([trace], top=2),
        "overlap": tools.overlap_tool([trace]),
        "host": tools.host_tool([trace]),
        "analyze": tools.analyze_tool([trace], top=2),
    }
    for name, data in outputs.items():
        assert re.fullmatch(r"\d+\.\d+", data["schema_version"]), (name, data.get("schema_version"))
