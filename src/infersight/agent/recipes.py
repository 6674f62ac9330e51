"""A/B recipes for serving engines: time a fixed load from the engine's own benchmark client.

Why: ``verify`` times each side's command until it exits, and ``vllm serve`` / SGLang's
``launch_server`` / ``trtllm-serve`` never exit, so an A/B of the server command itself times
out instead of measuring anything. For a server the recipe is: start the baseline server and
the candidate server (the same command with the change) on two ports, then let ``verify`` time
the same benchmark client run against each port, interleaved:

* vLLM: ``vllm bench serve`` (vLLM's CLI benchmark, random dataset);
* SGLang: ``python -m sglang.bench_serving --backend sglang``;
* TensorRT-LLM: ``python -m tensorrt_llm.serve.scripts.benchmark_serving`` (the client of the
  ``trtllm-serve`` benchmarking guide) against the OpenAI-compatible endpoint.

The load is fixed (random prompts of ``INPUT_LEN`` tokens, ``OUTPUT_LEN`` output tokens,
``NUM_PROMPTS`` requests) so both sides do the same work.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pydantic import BaseModel

__all__ = ["ServingRecipe", "serving_recipe"]

INPUT_LEN = 512
OUTPUT_LEN = 128
NUM_PROMPTS = 200


@dataclass(frozen=True)
class _Engine:
    name: str
    detect: re.Pattern[str]
    default_port: int
    model_flags: tuple[str, ...]
    positional_model_after: str | None  # "serve": ``vllm serve MODEL``


ENGINES = (
    _Engine("vllm", re.compile(r"(?:^|\s)vllm\s+serve\b|vllm\.entrypoints"), 8000, ("--model",), "serve"),
    _Engine("sglang", re.compile(r"sglang\.launch_server"), 30000, ("--model-path", "--model"), None),
    _Engine("trtllm", re.compile(r"(?:^|[\s/])trtllm-serve\b"), 8000, ("--model",), "trtllm-serve"),
)


class ServingRecipe(BaseModel):
    """The commands of a serving A/B: two servers to start, and the verify line that times the client."""

    engine: str
    start_baseline_server: str
    start_candidate_server: str
    verify: str
    note: str


def _model(argv: list[str], engine: _Engine) -> str | None:
    for flag in engine.model_flags:
        for index, token in enumerate(argv):
            if token == flag and index + 1 < len(argv):
                return argv[index + 1]
            if token.startswith(flag + "="):
                return token.split("=", 1)[1]
    if engine.positional_model_after is not None:
        for index, token in enumerate(argv[:-1]):
            if token.endswith(engine.positional_model_after) and not argv[index + 1].startswith("-"):
                return argv[index + 1]
    return None


def _port(argv: list[str]) -> int | None:
    for index, token in enumerate(argv):
        if token == "--port" and index + 1 < len(argv) and argv[index + 1].isdigit():
            return int(argv[index + 1])
        if token.startswith("--port=") and token[7:].isdigit():
            return int(token[7:])
    return None


def _with_port(argv: list[str], port: int) -> list[str]:
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--port":
            skip = True
            continue
        if not token.startswith("--port="):
            out.append(token)
    return [*out, "--port", str(port)]


def _client(engine: str, model: str, port: int) -> list[str]:
    """The engine's benchmark client with the fixed random load, aimed at ``port``."""
    load = ["--dataset-name", "random", "--num-prompts", str(NUM_PROMPTS),
            "--random-input-len", str(INPUT_LEN), "--random-output-len", str(OUTPUT_LEN)]  # fmt: skip
    target = ["--port", str(port)]
    if engine == "vllm":
        return ["vllm", "bench", "serve", "--model", model, *target, *load]
    if engine == "sglang":
        return ["python", "-m", "sglang.bench_serving", "--backend", "sglang", *target, *load]
    trtllm_client = ["python", "-m", "tensorrt_llm.serve.scripts.benchmark_serving", "--backend", "openai"]
    return [*trtllm_client, "--model", model, *target, *load]


def serving_recipe(app: str, *, recommendation: str, env_report: str) -> ServingRecipe | None:
    """The serving A/B recipe when ``app`` starts a vLLM, SGLang or TensorRT-LLM server, else None."""
    try:
        argv = shlex.split(app)
    except ValueError:
        return None
    engine = next((e for e in ENGINES if e.detect.search(app)), None)
    if engine is None:
        return None
    model = _model(argv, engine) or "<model>"
    base_port = _port(argv) or engine.default_port
    cand_port = base_port + 1
    baseline_client = shlex.join(_client(engine.name, model, base_port))
    candidate_client = shlex.join(_client(engine.name, model, cand_port))
    verify = shlex.join(
        ["infersight", "verify", "--baseline", baseline_client, "--candidate", candidate_client,
         "--repeats", "5", "--warmup", "1", "--recommendation", recommendation, "--env", env_report]
    )  # fmt: skip
    return ServingRecipe(
        engine=engine.name,
        start_baseline_server=shlex.join(_with_port(argv, base_port)),
        start_candidate_server=shlex.join(_with_port(argv, cand_port)) + "  # plus the change",
        verify=verify,
        note=(
            f"a server never exits, so verify times the {engine.name} benchmark client (fixed load: "
            f"{NUM_PROMPTS} random prompts, {INPUT_LEN} in / {OUTPUT_LEN} out tokens) against each server; "
            "start both servers first and wait until they answer"
        ),
    )
