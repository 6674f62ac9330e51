"""Link bandwidths (PCIe, NVLink, device memory) and NCCL bus-bandwidth factors, from data.

The figures live in ``infersight/data/interconnects.toml`` with their sources. Which links a GPU
has is part of its entry in ``gpu_specs.toml`` (``host_link``/``peer_link``), found by the same
lookup as its peak rates, so a GPU is named in one place; GPUs that table does not list keep a
name pattern in ``interconnects.toml`` (``[[unlisted_gpu]]``). This module picks the links of a
GPU and of a copy direction, and evaluates nccl-tests' busbw factor.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import BaseModel

from infersight.errors import InputError
from infersight.hardware.gpu_specs import MIG_PATTERN, GpuSpec, lookup_gpu, matching_gpus
from infersight.model.trace import GpuInfo


class LinkSpec(BaseModel):
    """A physical link and its per-direction bandwidth (from data/interconnects.toml)."""

    id: str
    name: str
    gb_per_s: float
    source: str


_TABLE = "interconnects.toml"


@dataclass(frozen=True)
class GpuLinks:
    """The host (PCIe) and peer (NVLink / fabric) links of one GPU model."""

    host: LinkSpec | None
    peer: LinkSpec | None
    na_reason: str | None = None


@dataclass(frozen=True)
class CollectiveSpec:
    """nccl-tests' bus-bandwidth rule of one collective."""

    name: str
    factor_expr: str
    size_from: str  # "in" | "out"
    source: str

    def factor(self, ranks: int) -> float:
        """busbw / algbw for ``ranks`` participants (nccl-tests PERFORMANCE.md)."""
        n = float(ranks)
        return {"2*(n-1)/n": 2.0 * (n - 1.0) / n, "(n-1)/n": (n - 1.0) / n, "1": 1.0}[self.factor_expr]


@functools.cache
def _table() -> dict[str, Any]:
    text = (resources.files("infersight") / "data" / _TABLE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _link(link_id: str) -> LinkSpec:
    row = _table()["link"][link_id]
    return LinkSpec(id=link_id, name=row["name"], gb_per_s=float(row["gb_per_s"]), source=row["source"])


def link_by_id(link_id: str) -> LinkSpec:
    """A ``[link.<id>]`` row of the table (the time model names its network link this way)."""
    if link_id not in _table()["link"]:
        raise InputError(None, f"no link {link_id!r} in {_TABLE}")
    return _link(link_id)


def gpu_links(
    gpu_name: str | None, *, sm_count: int | None = None, memory_bytes: int | None = None
) -> GpuLinks:
    """Host and peer links of a GPU: those of its ``gpu_specs.toml`` entry, else of the first
    ``[[unlisted_gpu]]`` pattern matching its name.

    A name several entries fit (``NVIDIA A100`` without its memory size) still has links when
    those entries share them; a MIG instance has the links of its whole GPU.
    """
    if not gpu_name:
        return GpuLinks(None, None, "the trace does not name the GPU, so its links are unknown")
    mig = MIG_PATTERN.search(gpu_name)
    if mig is not None:  # the slice's SMs and memory say nothing of the whole GPU
        gpu_name, sm_count, memory_bytes = gpu_name[: mig.start()].strip(), None, None
    candidates = matching_gpus(gpu_name, sm_count=sm_count, memory_bytes=memory_bytes)
    if candidates:
        if len({(spec.host_link, spec.peer_link) for spec in candidates}) == 1:
            return spec_links(candidates[0])
        keys = ", ".join(spec.key for spec in candidates)
        return GpuLinks(None, None, f"GPU {gpu_name!r} may be any of {keys}, whose links differ")
    for row in _table()["unlisted_gpu"]:
        if re.search(row["match"], gpu_name, re.IGNORECASE):
            host = _link(row["host"]) if "host" in row else None
            peer = _link(row["peer"]) if "peer" in row else None
            return GpuLinks(host, peer)
    return GpuLinks(None, None, f"no link figures for GPU {gpu_name!r} in gpu_specs.toml or {_TABLE}")


def device_links(gpu: GpuInfo | None) -> GpuLinks:
    """Links of a device a trace describes: its name, with its SM count and memory size telling
    apart variants that share a name ("NVIDIA H100": SXM, PCIe or NVL)."""
    if gpu is None:
        return gpu_links(None)
    return gpu_links(gpu.name, sm_count=gpu.sm_count, memory_bytes=gpu.memory_bytes)


def spec_links(spec: GpuSpec) -> GpuLinks:
    """The links a ``gpu_specs.toml`` entry names (none for a custom GPU or an unsourced one)."""
    host = _link(spec.host_link) if spec.host_link else None
    peer = _link(spec.peer_link) if spec.peer_link else None
    if host is None and peer is None:
        return GpuLinks(None, None, f"no link figures for GPU {spec.name!r} in gpu_specs.toml")
    return GpuLinks(host, peer)


def copy_link(direction: str, gpu: GpuInfo | None) -> tuple[LinkSpec | None, str | None]:
    """The link a copy of ``direction`` crosses on this GPU, or the reason it is unknown.

    HtoD/DtoH cross the host link (PCIe); PtoP the peer link (NVLink, else PCIe); DtoD stays in
    device memory, which it reads and writes, so its ceiling is half the DRAM bandwidth.
    """
    if direction == "DtoD":
        bandwidth = _memory_bandwidth(gpu)
        if bandwidth is None:
            return None, "device memory bandwidth unknown (not in the trace, GPU not in the spec table)"
        return (
            LinkSpec(
                id="device_memory",
                name="device memory (read + write)",
                gb_per_s=bandwidth / 2.0 / 1e9,
                source="DRAM bandwidth of the GPU / 2 (a device copy reads and writes every byte)",
            ),
            None,
        )
    links = device_links(gpu)
    if direction in ("HtoD", "DtoH", "UVM HtoD", "UVM DtoH", "HtoA", "AtoH"):
        # unified-memory migrations and array copies to/from the host cross the same host link
        return links.host, links.na_reason if links.host is None else None
    if direction == "PtoP":
        link = links.peer or links.host
        return link, links.na_reason if link is None else None
    return None, f"no link for {direction} copies (unified-memory migrations and others are not rated)"


def _memory_bandwidth(gpu: GpuInfo | None) -> float | None:
    """Bytes/s of device memory: the trace's figure, else the GPU spec table when it is installed."""
    if gpu is None:
        return None
    if gpu.memory_bandwidth_bytes_per_s:
        return float(gpu.memory_bandwidth_bytes_per_s)
    if not gpu.name:
        return None
    try:  # an unknown GPU leaves DtoD copies unrated
        spec = lookup_gpu(gpu.name, sm_count=gpu.sm_count, memory_bytes=gpu.memory_bytes)
    except InputError:
        return None
    value = getattr(spec, "memory_bandwidth_gb_per_s", None)
    return float(value) * 1e9 if isinstance(value, int | float) and value > 0 else None


def collective_spec(collective: str) -> CollectiveSpec | None:
    """The busbw rule of a canonical collective name (AllReduce, AllGather, ...)."""
    row = _table()["collective"].get(collective)
    if row is None:
        return None
    return CollectiveSpec(collective, row["factor"], row["size_from"], row["source"])
