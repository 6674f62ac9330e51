"""GPU peak rates for the roofline, read from ``data/gpu_specs.toml`` (every number sourced there).

Why data and not code: peak numbers are facts with provenance that change as vendors publish
new parts; a reviewer checks the TOML against the cited datasheet, not Python. This module only
finds the right entry for what a user types (``--gpu h100``) or what a trace reports
("NVIDIA H100 80GB HBM3", ROCm's bare "AMD Radeon Graphics" plus its CU count), and states
clearly when it cannot, pointing at ``--peak-tflops/--bandwidth``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from infersight.errors import InputError
from infersight.validate import finite_float

DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4")
DTYPE_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "float8": "fp8",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "e4m3": "fp8",
    "nvfp4": "fp4",
    "mxfp4": "fp4",
}
MEMORY_MATCH_TOLERANCE = 0.10  # a trace's totalGlobalMem vs the marketed size (GB or GiB, minus reserved)
OVERRIDE_HINT = "pass --peak-tflops and --bandwidth (GB/s) to describe it"


def normalise_dtype(dtype: str) -> str:
    """``bfloat16``/``BF16``/``bf16`` -> ``bf16``; unknown names are returned lower-cased."""
    key = dtype.strip().lower().removeprefix("torch.")
    return DTYPE_ALIASES.get(key, key)


def _normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class GpuSpec:
    """Peak rates of one GPU (dense tensor TFLOP/s per dtype, memory, SMs, L2) and their sources."""

    key: str
    name: str
    peak_tflops: dict[str, float]
    memory_bandwidth_gb_per_s: float
    memory_gb: float | None = None
    sm_count: int | None = None
    l2_mb: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    family: str = ""
    patterns: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # what names the GPU of an ncu export without a device name (infersight/ncu/device.py)
    compute_capability: str | None = None
    base_clock_mhz: float | None = None
    boost_clock_mhz: float | None = None
    memory_data_rate_gbps: float | None = None
    memory_bus_bits: int | None = None
    # the GPU's links by their [link.<id>] in data/interconnects.toml (infersight/hardware/links.py)
    host_link: str | None = None
    peer_link: str | None = None

    def peak_flops(self, dtype: str) -> float:
        """Peak dense FLOP/s (OP/s for int8) for ``dtype``; InputError when the GPU has no such rate."""
        key = normalise_dtype(dtype)
        if key not in self.peak_tflops:
            have = ", ".join(sorted(self.peak_tflops, key=_dtype_order))
            raise InputError(
                None,
                f"{self.name} has no {key} peak rate (it has: {have}); choose another --dtype "
                "or pass --peak-tflops",
            )
        return self.peak_tflops[key] * 1e12

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_per_s * 1e9

    def with_overrides(
        self, peak_tflops: float | None = None, bandwidth_gb_per_s: float | None = None, dtype: str = "bf16"
    ) -> GpuSpec:
        """This GPU with user-measured or user-given figures replacing the datasheet ones."""
        peaks = dict(self.peak_tflops)
        sources = dict(self.sources)
        if peak_tflops is not None:
            _check_positive(peak_tflops, "--peak-tflops")
            peaks[normalise_dtype(dtype)] = peak_tflops
            sources[f"peak_tflops.{normalise_dtype(dtype)}"] = "user override (--peak-tflops)"
        bandwidth = self.memory_bandwidth_gb_per_s
        if bandwidth_gb_per_s is not None:
            _check_positive(bandwidth_gb_per_s, "--bandwidth")
            bandwidth = bandwidth_gb_per_s
            sources["memory_bandwidth_gb_per_s"] = "user override (--bandwidth)"
        return dataclasses.replace(
            self, peak_tflops=peaks, memory_bandwidth_gb_per_s=bandwidth, sources=sources
        )


def _dtype_order(dtype: str) -> int:
    return DTYPES.index(dtype) if dtype in DTYPES else len(DTYPES)


def _check_positive(value: float, option: str) -> None:
    """A user's GPU figure: finite and > 0 (``inf`` would print "memory inf PB/s")."""
    finite_float(value, option, above=0.0)


def custom_gpu(peak_tflops: float, bandwidth_gb_per_s: float, dtype: str = "bf16") -> GpuSpec:
    """A GPU described only by the user's numbers (for parts not in the table)."""
    _check_positive(peak_tflops, "--peak-tflops")
    _check_positive(bandwidth_gb_per_s, "--bandwidth")
    key = normalise_dtype(dtype)
    return GpuSpec(
        key="custom",
        name=f"custom GPU ({peak_tflops:g} TFLOP/s {key}, {bandwidth_gb_per_s:g} GB/s)",
        peak_tflops={key: peak_tflops},
        memory_bandwidth_gb_per_s=bandwidth_gb_per_s,
        sources={
            "peak_tflops": "user (--peak-tflops)",
            "memory_bandwidth_gb_per_s": "user (--bandwidth)",
        },
    )


@cache
def _table() -> dict[str, GpuSpec]:
    """All entries of ``data/gpu_specs.toml`` by key (read once)."""
    text = resources.files("infersight.data").joinpath("gpu_specs.toml").read_text(encoding="utf-8")
    return {key: _spec_from_entry(key, entry) for key, entry in tomllib.loads(text).items()}


def _spec_from_entry(key: str, entry: dict[str, Any]) -> GpuSpec:
    return GpuSpec(
        key=key,
        name=entry["name"],
        peak_tflops={dtype: float(value) for dtype, value in entry["peak_tflops"].items()},
        memory_bandwidth_gb_per_s=float(entry["memory_bandwidth_gb_per_s"]),
        memory_gb=float(entry["memory_gb"]) if "memory_gb" in entry else None,
        sm_count=int(entry["sm_count"]) if "sm_count" in entry else None,
        l2_mb=float(entry["l2_mb"]) if "l2_mb" in entry else None,
        sources=dict(entry.get("sources", {})),
        notes=tuple(entry.get("notes", ())),
        family=entry.get("family", ""),
        patterns=tuple(entry.get("patterns", ())),
        aliases=tuple(entry.get("aliases", ())),
        compute_capability=str(entry["compute_capability"]) if "compute_capability" in entry else None,
        base_clock_mhz=_optional_float(entry, "base_clock_mhz"),
        boost_clock_mhz=_optional_float(entry, "boost_clock_mhz"),
        memory_data_rate_gbps=_optional_float(entry, "memory_data_rate_gbps"),
        memory_bus_bits=int(entry["memory_bus_bits"]) if "memory_bus_bits" in entry else None,
        host_link=entry.get("host_link"),
        peer_link=entry.get("peer_link"),
    )


def _optional_float(entry: dict[str, Any], key: str) -> float | None:
    return float(entry[key]) if key in entry else None


def list_gpus() -> list[GpuSpec]:
    """Every GPU in the table, in file order."""
    return list(_table().values())


def _memory_matches(spec: GpuSpec, memory_bytes: int | None) -> bool:
    """Whether a trace's device memory fits the marketed size (in GB or GiB, within 10%)."""
    if memory_bytes is None or spec.memory_gb is None:
        return True
    return any(
        abs(memory_bytes / unit - spec.memory_gb) <= MEMORY_MATCH_TOLERANCE * spec.memory_gb
        for unit in (1e9, 2**30)
    )


def _narrow(candidates: list[GpuSpec], sm_count: int | None, memory_bytes: int | None) -> list[GpuSpec]:
    """Keep candidates consistent with the SM count and memory size the trace reports."""
    narrowed = [
        spec
        for spec in candidates
        if (sm_count is None or spec.sm_count is None or spec.sm_count == sm_count)
        and _memory_matches(spec, memory_bytes)
    ]
    return narrowed or candidates


def lookup_gpu(name: str, *, sm_count: int | None = None, memory_bytes: int | None = None) -> GpuSpec:
    """The table entry for a user-typed key/alias or a device name from a trace.

    Order: exact key or alias (``h100``, ``A100-80GB``); then the entries' name patterns
    ("NVIDIA H100 80GB HBM3"); then the family named in the string ("NVIDIA A100") narrowed by
    ``sm_count``/``memory_bytes``; then, for nameless ROCm devices, the SM count and memory alone.
    A MIG instance ("... MIG 3g.20gb") gets the whole GPU's entry scaled to its slice.
    """
    mig = MIG_PATTERN.search(name)
    if mig is not None:
        whole = lookup_gpu(name[: mig.start()].strip())  # the slice's SMs/memory say nothing of the GPU
        return mig_slice(whole, int(mig.group(1)), float(mig.group(2)), sm_count)
    table = _table()
    narrowed = matching_gpus(name, sm_count=sm_count, memory_bytes=memory_bytes)
    if narrowed:
        if len(narrowed) == 1 or _same_rates(narrowed):
            return narrowed[0]  # variants with identical peaks give the same roofline
        raise InputError(
            None,
            f"GPU {name!r} matches several entries ({', '.join(spec.key for spec in narrowed)}); "
            "pass one of these keys to --gpu",
        )
    if sm_count is not None and memory_bytes is not None:
        fingerprint = [
            spec
            for spec in table.values()
            if spec.sm_count == sm_count and _memory_matches(spec, memory_bytes)
        ]
        if len(fingerprint) == 1:
            return fingerprint[0]
    raise InputError(
        None,
        f"unknown GPU {name!r}; known: {', '.join(table)}; {OVERRIDE_HINT}",
    )


def matching_gpus(
    name: str, *, sm_count: int | None = None, memory_bytes: int | None = None
) -> list[GpuSpec]:
    """The entries a name can mean, before :func:`lookup_gpu` insists on one.

    An exact key or alias is one entry; else the entries whose patterns match, else those whose
    family the name ends in, narrowed by ``sm_count``/``memory_bytes``; empty when none fits.
    The links of a GPU (:mod:`infersight.hardware.links`) are read from these too: variants
    whose peak rates differ may still share their links.
    """
    table = _table()
    wanted = _normalise_name(name)
    for spec in table.values():
        if wanted and wanted in {_normalise_name(spec.key), *map(_normalise_name, spec.aliases)}:
            return [spec]
    matched = [
        spec for spec in table.values() if any(re.search(p, name, re.IGNORECASE) for p in spec.patterns)
    ]
    if not matched:
        matched = [spec for spec in table.values() if spec.family and _family_in(spec.family, name)]
    return _narrow(matched, sm_count, memory_bytes) if matched else []


MIG_PATTERN = re.compile(r"\bMIG\s+(\d+)g\.(\d+)gb\b", re.IGNORECASE)
MIG_COMPUTE_SLICES = 7  # A100/H100/H200/B200: 7 GPCs available to MIG
MIG_SOURCE = (
    "NVIDIA MIG user guide https://docs.nvidia.com/datacenter/tesla/mig-user-guide/ (an instance owns "
    "g of 7 compute slices and memory slices with their share of bandwidth and L2)"
)


def mig_slice(whole: GpuSpec, compute_slices: int, memory_gb: float, sm_count: int | None = None) -> GpuSpec:
    """A MIG instance: compute scaled by its SMs (or g/7), bandwidth and L2 by its memory share.

    A "0g" or "0gb" instance would give a GPU with no compute or no bandwidth (a division by
    zero further on): refused as a bad GPU name.
    """
    if not 1 <= compute_slices <= MIG_COMPUTE_SLICES or not memory_gb > 0:
        raise InputError(
            None,
            f"GPU name: MIG {compute_slices}g.{memory_gb:g}gb is not a MIG instance "
            f"(1 to {MIG_COMPUTE_SLICES} compute slices and a positive memory size)",
        )
    if whole.sm_count and sm_count:
        compute_share = sm_count / whole.sm_count
    else:
        compute_share = min(compute_slices / MIG_COMPUTE_SLICES, 1.0)
    memory_share = min(memory_gb / whole.memory_gb, 1.0) if whole.memory_gb else 1.0
    label = f"MIG {compute_slices}g.{memory_gb:g}gb"
    return dataclasses.replace(
        whole,
        key=f"{whole.key}-mig-{compute_slices}g.{memory_gb:g}gb",
        name=f"{whole.name} {label}",
        peak_tflops={dtype: value * compute_share for dtype, value in whole.peak_tflops.items()},
        memory_bandwidth_gb_per_s=whole.memory_bandwidth_gb_per_s * memory_share,
        memory_gb=memory_gb,
        sm_count=sm_count or (round(whole.sm_count * compute_share) if whole.sm_count else None),
        l2_mb=whole.l2_mb * memory_share if whole.l2_mb else None,
        sources={**whole.sources, "mig": MIG_SOURCE},
        notes=(
            *whole.notes,
            f"{label}: {compute_share:.0%} of the compute, {memory_share:.0%} of bandwidth and L2",
        ),
    )


def _family_in(family: str, name: str) -> bool:
    """Whether ``name`` ends in the bare ``family`` ("NVIDIA A100", "A100 40GB").

    Anything else after the family ("H200 NVL", "RTX 4090 D") is a different part: no match.
    """
    pattern = rf"(?<![A-Za-z0-9]){re.escape(family)}(?:[\s-]*\d+\s*GB)?\s*$"
    return re.search(pattern, name, re.IGNORECASE) is not None


def _same_rates(specs: list[GpuSpec]) -> bool:
    """Whether every candidate has the same peak rates and bandwidth (e.g. A100 40GB SXM vs PCIe)."""
    first = specs[0]
    return all(
        spec.peak_tflops == first.peak_tflops
        and spec.memory_bandwidth_gb_per_s == first.memory_bandwidth_gb_per_s
        for spec in specs
    )


def gpu_for_device(name: str | None, sm_count: int | None = None, memory_bytes: int | None = None) -> GpuSpec:
    """The entry for a device a trace describes (``GpuInfo`` fields); the name may be empty on ROCm."""
    return lookup_gpu(name or "", sm_count=sm_count, memory_bytes=memory_bytes)
