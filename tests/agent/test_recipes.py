"""Serving-engine A/B recipes as data (golden command lines), and the ncu export's device check."""

from __future__ import annotations

import shlex

import pytest
from tests.conftest import shared_file, shared_traces

from infersight.advisor.profiling import ncu_commands
from infersight.agent.recipes import serving_recipe
from infersight.api import ncu_device_mismatches
from infersight.cli import run
from infersight.ncu.reader import read_ncu

LOAD = "--dataset-name random --num-prompts 200 --random-input-len 512 --random-output-len 128"
TRTLLM_CLIENT = "python -m tensorrt_llm.serve.scripts.benchmark_serving --backend openai"
GOLDEN = {
    "vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2": (
        "vllm",
        "vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2 --port 8000",
        "vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2 --port 8001  # plus the change",
        f"vllm bench serve --model Qwen/Qwen3-8B --port 8000 {LOAD}",
        f"vllm bench serve --model Qwen/Qwen3-8B --port 8001 {LOAD}",
    ),
    "python -m sglang.launch_server --model-path Qwen/Qwen3-8B --tp 2 --port 30010": (
        "sglang",
        "python -m sglang.launch_server --model-path Qwen/Qwen3-8B --tp 2 --port 30010",
        "python -m sglang.launch_server --model-path Qwen/Qwen3-8B --tp 2 --port 30011  # plus the change",
        f"python -m sglang.bench_serving --backend sglang --port 30010 {LOAD}",
        f"python -m sglang.bench_serving --backend sglang --port 30011 {LOAD}",
    ),
    "trtllm-serve meta-llama/Llama-3.1-8B --backend pytorch --tp_size 2": (
        "trtllm",
        "trtllm-serve meta-llama/Llama-3.1-8B --backend pytorch --tp_size 2 --port 8000",
        "trtllm-serve meta-llama/Llama-3.1-8B --backend pytorch --tp_size 2 --port 8001  # plus the change",
        f"{TRTLLM_CLIENT} --model meta-llama/Llama-3.1-8B --port 8000 {LOAD}",
        f"{TRTLLM_CLIENT} --model meta-llama/Llama-3.1-8B --port 8001 {LOAD}",
    ),
}


@pytest.mark.parametrize("app", sorted(GOLDEN))
def test_serving_recipes_golden(app: str) -> None:
    engine, start_b, start_c, client_b, client_c = GOLDEN[app]
    recipe = serving_recipe(app, recommendation="small_kernel_storm", env_report="run/report.json")
    assert recipe is not None and recipe.engine == engine
    assert (recipe.start_baseline_server, recipe.start_candidate_server) == (start_b, start_c)
    verify = shlex.split(recipe.verify)
    assert verify[:2] == ["infersight", "verify"]
    assert verify[verify.index("--baseline") + 1] == client_b
    assert verify[verify.index("--candidate") + 1] == client_c
    assert verify[-4:] == ["--recommendation", "small_kernel_storm", "--env", "run/report.json"]


def test_a_plain_command_gets_no_serving_recipe() -> None:
    assert serving_recipe("python generate.py --batch 8", recommendation="r", env_report="x") is None


def test_ncu_export_from_another_gpu_is_flagged() -> None:
    h100 = shared_traces("kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz")
    rtx5090 = read_ncu(shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"))
    (warning,) = ncu_device_mismatches([rtx5090], h100)
    assert "compute capability 12.0" in warning and "NVIDIA H100 80GB HBM3" in warning
    unknown = read_ncu(shared_file("ncu/gpt2_flashattn_ampere_oldlayout.csv"))  # no device columns
    assert ncu_device_mismatches([unknown], h100) == []


NSYS_GOLDEN = {
    "vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2": "vllm serve Qwen/Qwen3-8B --tensor-parallel-size 2",
    "python -m sglang.launch_server --model-path Qwen/Qwen3-8B --tp 2": (
        "python -m sglang.launch_server --model-path Qwen/Qwen3-8B --tp 2"
    ),
    "trtllm-serve meta-llama/Llama-3.1-8B --tp_size 2": "trtllm-serve meta-llama/Llama-3.1-8B --tp_size 2",
}
NSYS_PREFIX = (
    "nsys profile --trace=cuda,nvtx,osrt --cuda-graph-trace=node --export=sqlite --force-overwrite=false "
    "--trace-fork-before-exec=true --capture-range=cudaProfilerApi --capture-range-end=stop --delay=30 "
    "--duration=20 --output=serve"
)


@pytest.mark.parametrize("app", sorted(NSYS_GOLDEN))
def test_profile_nsys_lines_for_servers_golden(app: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["profile", "--nsys", "--dry-run", "--capture-range", "cudaProfilerApi", "--delay", "30"]
    argv += ["--duration", "20", "-o", "serve", "--", *shlex.split(app)]
    assert run(argv) == 0
    assert capsys.readouterr().out.strip() == f"{NSYS_PREFIX} {NSYS_GOLDEN[app]}"


def test_profile_limits_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["profile", "--nsys", "--dry-run", "--capture-range", "hotkey", "--", "python"]) == 2
    assert "--capture-range must be one of" in capsys.readouterr().err
    assert run(["profile", "--torch", "--delay", "3", "--", "python"]) == 2
    assert "nsys options" in capsys.readouterr().err


def test_ncu_lines_follow_tp_workers() -> None:
    (capture,) = ncu_commands(
        ["ncu --launch-count 1 -o k <your inference command>"], ["vllm", "serve", "m"], check_tool=False
    )
    assert capture.shell() == "ncu --target-processes all --launch-count 1 -o k vllm serve m"
