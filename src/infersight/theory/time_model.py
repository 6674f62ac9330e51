"""The calibrated time model: from an operator's arithmetic (FLOPs, bytes) to seconds (methodology §2).

Why not a plain roofline: against measured fp16 GEMMs on H100 (Vidur's profiling data) a plain
``max(F/P, B/BW)`` is ~1.03× right for decode-sized GEMMs but 1.3–1.6× optimistic for prefill
sizes (cuBLAS reaches ~70% of dense peak), and it has no latency floor, so a 4 µs kernel or a
20 µs all-reduce is "predicted" at a few ns. The model here keeps the roofline's two physical
limits and adds what the measurements show, with every figure in ``data/time_model.toml``:

* kernel: ``T = (t_c^p + t_m^p)^(1/p) + t_floor`` with ``t_c = F / (η_c·P_peak)``,
  ``t_m = B / (η_m·BW)``. p → ∞ is the roofline's max (compute and memory overlap perfectly),
  p = 1 their sum; the fitted p ≈ 1.4 is the partial overlap a tiled GEMM achieves. t_floor is
  the fixed cost of one kernel (launch, prologue, the tail of the last wave): one figure for
  matmul kernels (GEMM, attention: tiled, pipelined, sometimes split-K) and a smaller one for
  the single-pass elementwise / reduction kernels (norms, activations, copies).
* collective (ring all-reduce): ``T = α + S·2(n−1)/n / (η_link·BW_link)`` — α the per-call NCCL
  latency, BW_link the per-direction bandwidth of the link the ring crosses (NVLink/PCIe inside a
  node, the network NIC across nodes, from ``data/interconnects.toml``). Engines replace the ring
  for small TP all-reduces by one-shot custom kernels (vLLM, SGLang, TensorRT-LLM): same form,
  a much smaller α and a lower η (the kernel, not the link, limits it); a model's all-reduce
  takes the faster of the two.

The efficiencies and floors are per GPU generation where measurements exist and a generic
default otherwise, so a GPU is described by its spec figures only (peak FLOP/s, bandwidth, link).
Everything is vectorised over numpy arrays: one call times tens of thousands of shapes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from infersight.errors import InputError

_TABLE = "time_model.toml"
DEFAULT_GENERATION = "default"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class KernelEfficiency:
    """How close one GPU generation's kernels get to the roofline, and their fixed cost."""

    compute_efficiency: float
    memory_efficiency: float
    overlap_exponent: float
    floor_s: float
    vector_floor_s: float
    source: str


@dataclass(frozen=True)
class CollectiveEfficiency:
    """α–β parameters of NCCL all-reduce for one scope (inside a node, or across the network)."""

    alpha_s: float
    bus_efficiency: float
    source: str


@dataclass(frozen=True)
class TimeModelParams:
    """The calibrated figures for one GPU generation (``generation`` = the table's key used)."""

    generation: str
    kernel: KernelEfficiency
    intra_node: CollectiveEfficiency
    oneshot: CollectiveEfficiency
    network: CollectiveEfficiency
    network_link: str


@cache
def _table() -> dict[str, Any]:
    text = (resources.files("infersight") / "data" / _TABLE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def generations() -> list[str]:
    """The GPU generations with their own calibrated figures (besides ``default``)."""
    return [key for key in _table()["generation"] if key != DEFAULT_GENERATION]


def time_model_params(family: str | None) -> TimeModelParams:
    """The figures for a GPU family (``GpuSpec.family``, e.g. "H100"), else the generic default.

    Each field falls back to the default separately, so a generation calibrated only for
    collectives still gets the default kernel efficiencies.
    """
    table = _table()["generation"]
    default = table[DEFAULT_GENERATION]
    key = family if family and family in table else DEFAULT_GENERATION
    row = table[key]

    def section(name: str) -> dict[str, Any]:
        return dict(row.get(name, default[name]))

    kernel = section("kernel")
    intra = section("intra_node")
    oneshot = section("oneshot")
    net = section("network")
    return TimeModelParams(
        generation=key,
        kernel=KernelEfficiency(
            compute_efficiency=float(kernel["compute_efficiency"]),
            memory_efficiency=float(kernel["memory_efficiency"]),
            overlap_exponent=float(kernel["overlap_exponent"]),
            floor_s=float(kernel["floor_us"]) * 1e-6,
            vector_floor_s=float(kernel["vector_floor_us"]) * 1e-6,
            source=str(kernel["source"]),
        ),
        intra_node=_collective(intra),
        oneshot=_collective(oneshot),
        network=_collective(net),
        network_link=str(row.get("network_link", default["network_link"])),
    )


def _collective(row: dict[str, Any]) -> CollectiveEfficiency:
    return CollectiveEfficiency(
        alpha_s=float(row["alpha_us"]) * 1e-6,
        bus_efficiency=float(row["bus_efficiency"]),
        source=str(row["source"]),
    )


def kernel_parts(
    flops: FloatArray | float,
    bytes_: FloatArray | float,
    peak_flops: FloatArray | float,
    bandwidth: FloatArray | float,
    *,
    compute_efficiency: float,
    memory_efficiency: float,
) -> tuple[FloatArray, FloatArray]:
    """``t_c = F/(η_c·P)`` and ``t_m = B/(η_m·BW)`` (seconds), element-wise."""
    t_c = np.asarray(flops, dtype=np.float64) / (
        np.asarray(peak_flops, dtype=np.float64) * compute_efficiency
    )
    t_m = np.asarray(bytes_, dtype=np.float64) / (np.asarray(bandwidth, dtype=np.float64) * memory_efficiency)
    return t_c, t_m


def combine(t_c: FloatArray | float, t_m: FloatArray | float, overlap_exponent: float) -> FloatArray:
    """``(t_c^p + t_m^p)^(1/p)``, computed scaled by the larger term so it cannot overflow."""
    t_c, t_m = np.asarray(t_c, dtype=np.float64), np.asarray(t_m, dtype=np.float64)
    big = np.maximum(t_c, t_m)
    safe = np.where(big > 0, big, 1.0)
    p = overlap_exponent
    return np.where(big > 0, safe * ((t_c / safe) ** p + (t_m / safe) ** p) ** (1.0 / p), 0.0)


def kernel_time(
    flops: FloatArray | float,
    bytes_: FloatArray | float,
    peak_flops: FloatArray | float,
    bandwidth: FloatArray | float,
    eff: KernelEfficiency,
) -> FloatArray:
    """Predicted duration of one kernel (seconds): ``(t_c^p + t_m^p)^(1/p) + t_floor``."""
    t_c, t_m = kernel_parts(
        flops,
        bytes_,
        peak_flops,
        bandwidth,
        compute_efficiency=eff.compute_efficiency,
        memory_efficiency=eff.memory_efficiency,
    )
    return combine(t_c, t_m, eff.overlap_exponent) + eff.floor_s


def ring_factor(ranks: FloatArray | float) -> FloatArray:
    """All-reduce bytes per rank over the busiest link / message size: 2(n−1)/n (nccl-tests busbw)."""
    n = np.asarray(ranks, dtype=np.float64)
    return 2.0 * (n - 1.0) / n


def allreduce_time(
    message_bytes: FloatArray | float,
    ranks: FloatArray | float,
    link_bandwidth: FloatArray | float,
    eff: CollectiveEfficiency,
) -> FloatArray:
    """Ring all-reduce of ``message_bytes`` over ``ranks`` GPUs: ``α + S·2(n−1)/n / (η·BW_link)``.

    One rank is no collective at all (0 s); the caller decides which link (and so which ``eff``)
    applies.
    """
    n = np.asarray(ranks, dtype=np.float64)
    wire = np.asarray(message_bytes, dtype=np.float64) * ring_factor(n)
    t = eff.alpha_s + wire / (np.asarray(link_bandwidth, dtype=np.float64) * eff.bus_efficiency)
    return np.where(n > 1, t, 0.0)


def check_efficiency(value: float, what: str) -> float:
    """An efficiency from the table or a user: a fraction in (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise InputError(None, f"{what} = {value!r}: expected a fraction in (0, 1]")
    return value
