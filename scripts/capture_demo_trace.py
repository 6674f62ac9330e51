#!/usr/bin/env python3
"""Capture a real PyTorch-profiler (Kineto) trace of LLM prefill + decode for demos and tests.

Why this exists: infersight's demo and its end-to-end tests need a Kineto trace whose provenance
is known exactly (model shape, phases, step count), that anyone can regenerate without a model
download. A small, randomly initialised Llama-architecture model from ``transformers`` gives the
same operator mix as a real Llama (RMSNorm, GQA attention with RoPE, SwiGLU MLP, KV cache) at a
size that profiles in seconds on a laptop CPU. Weights are random, so the generated tokens are
meaningless; the *timing structure* is what matters.

The trace marks the phases the way serving engines do, with ``record_function`` ranges:
``prefill`` around the prompt forward pass and ``decode_step_<i>`` around each decode step, so
infersight's annotation-based prefill/decode split can be exercised.

On a machine with CUDA the model runs in bf16 (fp16 if bf16 is unsupported) and the trace holds
GPU kernels; on CPU it runs in fp32 and the trace holds CPU operators only (analyse it with
``infersight analyze ... --cpu-ops-as-kernels``).

Requires ``torch`` and ``transformers`` (``pip install infersight[capture]``); infersight itself
does not need them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TRACE_SUFFIX = ".pt.trace.json.gz"
SEED = 1234
WARMUP_DECODE_STEPS = 2


@dataclass(frozen=True)
class CaptureSettings:
    """What one capture does; recorded verbatim in the trace metadata."""

    out_prefix: str
    layers: int
    prompt_len: int
    decode_steps: int
    batch: int
    device: str  # "cpu" or "cuda" (resolved, never "auto")
    hidden: int = 256
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 688
    vocab: int = 4096


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; defaults give the bundled demo's shape."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        default="tiny_llama",
        help=f"output path prefix; the trace is written to <out>{TRACE_SUFFIX}",
    )
    parser.add_argument("--layers", type=int, default=4, help="decoder layers (default 4)")
    parser.add_argument("--prompt-len", type=int, default=128, help="prompt tokens per sequence")
    parser.add_argument("--decode-steps", type=int, default=16, help="decode steps after prefill")
    parser.add_argument("--batch", type=int, default=2, help="sequences per batch")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: cuda when torch.cuda.is_available(), else cpu",
    )
    args = parser.parse_args(argv)
    for name in ("layers", "prompt_len", "decode_steps", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def resolve_device(requested: str) -> str:
    """Pick the device; asking for cuda without one is a clear error, not a silent CPU run."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        sys.exit("capture_demo_trace: --device cuda requested but torch.cuda.is_available() is False")
    return requested


def output_path(prefix: str) -> Path:
    """``<prefix>.pt.trace.json.gz``; a prefix that already carries the suffix is accepted as is."""
    text = prefix[: -len(TRACE_SUFFIX)] if prefix.endswith(TRACE_SUFFIX) else prefix
    return Path(text + TRACE_SUFFIX)


def build_model(settings: CaptureSettings) -> tuple[Any, Any]:
    """A randomly initialised Llama (GQA) in eval mode on the target device, and its config."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        num_hidden_layers=settings.layers,
        hidden_size=settings.hidden,
        num_attention_heads=settings.heads,
        num_key_value_heads=settings.kv_heads,
        intermediate_size=settings.intermediate,
        vocab_size=settings.vocab,
        max_position_embeddings=max(2048, settings.prompt_len + settings.decode_steps + 16),
    )
    model = LlamaForCausalLM(config).eval().to(settings.device, dtype=model_dtype(settings.device))
    return model, config


def model_dtype(device: str) -> Any:
    """fp32 on CPU (what CPU inference of a toy model would use); bf16/fp16 on GPU as in serving."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def make_prompt(settings: CaptureSettings) -> Any:
    """Deterministic random token ids, shape (batch, prompt_len)."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, settings.vocab, (settings.batch, settings.prompt_len), generator=generator)
    return ids.to(settings.device)


def generate(model: Any, prompt: Any, decode_steps: int, *, annotate: bool) -> Any:
    """Prefill then greedy decode with the KV cache; each phase in its own record_function range.

    Returns the generated token ids (batch, decode_steps) so the work cannot be skipped.
    """
    import torch
    from torch.profiler import record_function

    def prefill() -> Any:
        return model(input_ids=prompt, use_cache=True)

    with torch.inference_mode():
        if annotate:
            with record_function("prefill"):
                out = prefill()
        else:
            out = prefill()
        cache = out.past_key_values
        next_token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        tokens = [next_token]
        for step in range(decode_steps):
            if annotate:
                with record_function(f"decode_step_{step}"):
                    out = model(input_ids=next_token, past_key_values=cache, use_cache=True)
            else:
                out = model(input_ids=next_token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            next_token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            tokens.append(next_token)
        synchronize(prompt.device.type)
    return torch.cat(tokens, dim=1)


def synchronize(device_type: str) -> None:
    """Wait for the GPU so the profiled region holds all of its kernels."""
    import torch

    if device_type == "cuda":
        torch.cuda.synchronize()


def capture_metadata(settings: CaptureSettings, config: Any, wall_s: float) -> dict[str, Any]:
    """Provenance written into the trace: device, versions, model config, the exact command."""
    import torch
    import transformers

    device_name = torch.cuda.get_device_name(0) if settings.device == "cuda" else cpu_model_name()
    return {
        "made_by": "infersight scripts/capture_demo_trace.py",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "captured_at_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": settings.device,
        "device_name": device_name,
        "cpu_count": os.cpu_count(),
        "dtype": str(model_dtype(settings.device)).removeprefix("torch."),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "seed": SEED,
        "weights": "random init (no download); outputs are meaningless, timings are real",
        "scenario": {
            "batch": settings.batch,
            "prompt_len": settings.prompt_len,
            "decode_steps": settings.decode_steps,
            "annotations": ["prefill", *(f"decode_step_{i}" for i in range(settings.decode_steps))],
        },
        "model_config": {
            "architecture": "LlamaForCausalLM",
            "num_hidden_layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size,
            "num_attention_heads": config.num_attention_heads,
            "num_key_value_heads": config.num_key_value_heads,
            "head_dim": config.hidden_size // config.num_attention_heads,
            "intermediate_size": config.intermediate_size,
            "vocab_size": config.vocab_size,
        },
        "profiled_wall_s": round(wall_s, 4),
        "note": (
            "CPU capture: no GPU was available; CPU operators stand in for kernels; analyse with "
            "`infersight analyze ... --cpu-ops-as-kernels`"
            if settings.device == "cpu"
            else "GPU capture: CUDA kernels recorded by CUPTI"
        ),
    }


def cpu_model_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def capture(settings: CaptureSettings) -> Path:
    """Warm up, profile prefill + decode, and write the gzipped trace with provenance metadata."""
    from torch.profiler import ProfilerActivity, profile

    model, config = build_model(settings)
    prompt = make_prompt(settings)
    # Warm-up: first calls allocate, pick kernels/algorithms and fill caches; keep them out.
    generate(model, prompt, WARMUP_DECODE_STEPS, annotate=False)

    activities = [ProfilerActivity.CPU]
    if settings.device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        started = time.perf_counter()
        generate(model, prompt, settings.decode_steps, annotate=True)
        wall_s = time.perf_counter() - started
        # Kineto only accepts metadata while the session is live, hence inside the block.
        prof.add_metadata_json("infersight_capture", json.dumps(capture_metadata(settings, config, wall_s)))
    return write_gzipped_trace(prof, output_path(settings.out_prefix))


def write_gzipped_trace(prof: Any, destination: Path) -> Path:
    """Export the Chrome trace to a temp file, then gzip it to the destination (mtime 0: reproducible)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(raw))
        json.loads(raw.read_text())  # fail here, not in the analyser, if the export is not valid JSON
        with (
            raw.open("rb") as src,
            destination.open("wb") as dst_file,
            gzip.GzipFile(filename="", mode="wb", fileobj=dst_file, mtime=0, compresslevel=9) as dst,
        ):
            shutil.copyfileobj(src, dst)
    return destination


def summarize(path: Path) -> dict[str, int]:
    """Event counts by category, and the phase ranges, so the caller sees what was captured."""
    with gzip.open(path, "rt") as fh:
        events = json.load(fh)["traceEvents"]
    counts: dict[str, int] = {}
    for event in events:
        cat = str(event.get("cat", ""))
        counts[cat] = counts.get(cat, 0) + 1
    counts["prefill ranges"] = sum(
        1 for e in events if e.get("cat") == "user_annotation" and e.get("name") == "prefill"
    )
    counts["decode ranges"] = sum(
        1
        for e in events
        if e.get("cat") == "user_annotation" and str(e.get("name", "")).startswith("decode_step_")
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, capture, print where the trace went and what it holds."""
    args = parse_args(argv)
    settings = CaptureSettings(
        out_prefix=args.out,
        layers=args.layers,
        prompt_len=args.prompt_len,
        decode_steps=args.decode_steps,
        batch=args.batch,
        device=resolve_device(args.device),
    )
    path = capture(settings)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB) on {settings.device}")
    print(json.dumps({"settings": asdict(settings), "events": summarize(path)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
