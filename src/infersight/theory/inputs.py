"""Turn the user's theory options into a model, a scenario and roofline hardware.

Shared by ``infersight roofline`` and ``infersight analyze --model``, so both read
``--model/--config/--gpu/--peak-tflops/--bandwidth/--dtype/...`` the same way and fail with
the same one-line messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from infersight.errors import InputError
from infersight.theory.model_config import ModelConfig
from infersight.theory.roofline import DEFAULT_KAPPA, Hardware, hardware_from_gpu
from infersight.validate import finite_float, optional_float

if TYPE_CHECKING:
    from infersight.hardware.gpu_specs import GpuSpec

KAPPA_MAX = 10.0  # the CLI allows 1-2; the API a wider range for calibration experiments
OPTION_NAMES = {
    "peak_tflops": "--peak-tflops",
    "bandwidth_gb_per_s": "--bandwidth",
    "link_bandwidth_gb_per_s": "--link-bandwidth",
}
WEIGHT_BYTES_BY_DTYPE = {"fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0}


class TheoryOptions(BaseModel):
    """Everything a theory run needs besides the scenario, as the user gave it."""

    model: str | None = None
    config: Path | None = None
    gpu: str | None = None
    peak_tflops: float | None = None
    bandwidth_gb_per_s: float | None = None
    link_bandwidth_gb_per_s: float | None = None
    dtype: str | None = Field(default=None, description="override: compute dtype and weight element width")
    kappa: float = DEFAULT_KAPPA
    memory_efficiency: float | None = Field(default=None, description="η_m override; None: calibrated")

    @field_validator("peak_tflops", "bandwidth_gb_per_s", "link_bandwidth_gb_per_s")
    @classmethod
    def _positive_rate(cls, value: float | None, info: ValidationInfo) -> float | None:
        """A GPU figure is finite and > 0 (``nan`` made an all-reduce take 4.3 ns; ``inf``: "inf PB/s")."""
        return optional_float(value, OPTION_NAMES[info.field_name or ""], above=0.0)

    @field_validator("kappa")
    @classmethod
    def _kappa(cls, value: float) -> float:
        """κ multiplies every roofline time: finite and in [1, KAPPA_MAX] (it only ever adds overhead)."""
        return finite_float(value, "--kappa", minimum=1.0, maximum=KAPPA_MAX)

    @field_validator("memory_efficiency")
    @classmethod
    def _memory_efficiency(cls, value: float | None) -> float | None:
        """η scales the bandwidth: a fraction in (0, 1] (None: the GPU generation's calibrated η_m)."""
        return None if value is None else finite_float(value, "--mem-efficiency", above=0.0, maximum=1.0)


def load_model(options: TheoryOptions) -> ModelConfig:
    """The model from ``--model NAME`` or ``--config PATH`` (exactly one), with ``--dtype`` applied."""
    from infersight.theory.config_reader import load_model_config, resolve_model

    if (options.model is None) == (options.config is None):
        raise InputError(None, "give exactly one of --model NAME (a built-in model) or --config PATH")
    model = resolve_model(options.model) if options.model is not None else load_model_config(options.config)  # type: ignore[arg-type]
    if options.dtype is None:
        return model
    dtype = normalise_compute_dtype(options.dtype)
    return dataclasses.replace(
        model,
        compute_dtype=dtype,
        weight_bytes=WEIGHT_BYTES_BY_DTYPE[dtype],
        notes=(*model.notes, f"--dtype {dtype}: {WEIGHT_BYTES_BY_DTYPE[dtype]:g} bytes per weight"),
    )


def normalise_compute_dtype(dtype: str) -> str:
    """The canonical compute dtype label (fp32, tf32, fp16, bf16, fp8, int8)."""
    from infersight.hardware.gpu_specs import normalise_dtype

    key = normalise_dtype(dtype)
    if key not in WEIGHT_BYTES_BY_DTYPE:
        raise InputError(None, f"--dtype {dtype!r}: expected one of {', '.join(WEIGHT_BYTES_BY_DTYPE)}")
    return key


def resolve_hardware(
    options: TheoryOptions, model: ModelConfig, *, tp: int, gpu_name: str | None = None
) -> Hardware:
    """Roofline parameters from ``--gpu`` (or the trace's GPU name) and the overrides.

    Without a known GPU both ``--peak-tflops`` and ``--bandwidth`` are needed. The link
    bandwidth for TP all-reduces is ``--link-bandwidth`` or the GPU's peer link (its
    ``gpu_specs.toml`` entry names it; the figure is in ``data/interconnects.toml``).
    """
    from infersight.hardware.gpu_specs import custom_gpu, lookup_gpu

    dtype = model.compute_dtype
    name = options.gpu or gpu_name
    if name is not None:
        spec = lookup_gpu(name)
        if options.peak_tflops is not None or options.bandwidth_gb_per_s is not None:
            spec = spec.with_overrides(options.peak_tflops, options.bandwidth_gb_per_s, dtype)
    elif options.peak_tflops is not None and options.bandwidth_gb_per_s is not None:
        spec = custom_gpu(options.peak_tflops, options.bandwidth_gb_per_s, dtype)
    else:
        raise InputError(None, "no GPU: give --gpu NAME, or both --peak-tflops and --bandwidth")
    link = options.link_bandwidth_gb_per_s
    if link is None and tp > 1:
        link = _peer_link_gb_per_s(spec)
    return hardware_from_gpu(
        spec,
        dtype,
        kappa=options.kappa,
        memory_efficiency=options.memory_efficiency,
        link_bandwidth_gb_per_s=link,
    )


def _peer_link_gb_per_s(spec: GpuSpec) -> float | None:
    from infersight.hardware.links import spec_links

    peer = spec_links(spec).peer
    return None if peer is None else peer.gb_per_s


def gpu_memory_gb(options: TheoryOptions, gpu_name: str | None = None) -> tuple[str, float | None]:
    """(GPU label, marketed memory in GB) of ``--gpu`` or the trace's GPU; None when unknown.

    A custom GPU (``--peak-tflops``/``--bandwidth`` only) has no known memory: the fit is then
    "unknown", never a guess.
    """
    from infersight.hardware.gpu_specs import lookup_gpu

    name = options.gpu or gpu_name
    if name is None:
        return "custom GPU", None
    spec = lookup_gpu(name)
    return spec.name, spec.memory_gb
