"""GPU spec table: sourced numbers, lookups by user key and by the names real traces report."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
from pathlib import Path

import pytest
from tests.conftest import SHARED_DATA, shared_file

from infersight.errors import InputError
from infersight.hardware.gpu_specs import (
    DTYPES,
    custom_gpu,
    gpu_for_device,
    list_gpus,
    lookup_gpu,
)

REQUIRED = (
    "a100-pcie-40gb",
    "a100-pcie-80gb",
    "a100-sxm-40gb",
    "a100-sxm-80gb",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "h20",
    "l40s",
    "l4",
    "a10",
    "rtx-4090",
    "rtx-4060-ti",
    "b200",
    "mi300x",
)

# Device names as the shared traces report them -> the entry they are.
KINETO_EXPECTED = {
    "NVIDIA A100-PG509-200": "a100-sxm-40gb",
    "AMD Radeon Graphics": "mi250",  # ROCm name of an MI250 GCD: resolved by 104 CUs and 64 GiB
    "Tesla V100-SXM2-32GB": "v100-sxm2-32gb",
    "Tesla V100-SXM2-16GB": "v100-sxm2-16gb",
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "AMD Instinct MI300X": "mi300x",
    "NVIDIA B200": "b200",
    "": "mi300x",  # the vLLM gpt-oss trace has an empty name: 304 CUs and 192 GiB
}
NSYS_EXPECTED = {
    "Tesla T4": "t4",
    "NVIDIA RTX A4500": "rtx-a4500",
    "NVIDIA A100-SXM4-40GB": "a100-sxm-40gb",
    "NVIDIA GeForce RTX 3090": "rtx-3090",
    "A100-PCIE-40GB": "a100-pcie-40gb",
}
NSYS_NOT_IN_TABLE = {
    "GeForce GTX 1060 with Max-Q Design",
    "Intel(R) HD Graphics 630",
    "Microsoft Basic Render Driver",
    "NVIDIA GeForce RTX 5060 Ti",
}


def kineto_devices() -> list[tuple[str, int | None, int | None]]:
    """(name, numSms, totalGlobalMem) of every deviceProperties entry, read with plain json."""
    shared_file("kineto")
    devices = []
    for path in sorted((SHARED_DATA / "kineto").rglob("*.json.gz")):
        with gzip.open(path, "rt") as handle:
            text = handle.read()
        start = text.find('"deviceProperties"')
        if start < 0:
            continue
        props, _ = json.JSONDecoder().raw_decode(text, text.index("[", start))
        devices += [(p.get("name", ""), p.get("numSms"), p.get("totalGlobalMem")) for p in props]
    return devices


def nsys_devices() -> list[tuple[str, int | None, int | None]]:
    """(name, smCount, totalMemory) of TARGET_INFO_GPU rows, where the export has one."""
    shared_file("nsys")
    devices = []
    for path in sorted((SHARED_DATA / "nsys").glob("*.sqlite")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "TARGET_INFO_GPU" not in tables:
                continue
            columns = {row[1] for row in connection.execute("PRAGMA table_info(TARGET_INFO_GPU)")}
            sms = "smCount" if "smCount" in columns else "NULL"
            memory = "totalMemory" if "totalMemory" in columns else "NULL"
            devices += list(connection.execute(f"SELECT name, {sms}, {memory} FROM TARGET_INFO_GPU"))
    return devices


# ------------------------------------------------------------------ the table


def test_required_gpus_are_present() -> None:
    assert set(REQUIRED) <= {spec.key for spec in list_gpus()}


@pytest.mark.parametrize("spec", list_gpus(), ids=lambda spec: spec.key)
def test_every_number_has_a_source(spec: object) -> None:
    from infersight.hardware.gpu_specs import GpuSpec

    assert isinstance(spec, GpuSpec)
    for field in ("memory_bandwidth_gb_per_s", "memory_gb", "sm_count", "l2_mb"):
        if getattr(spec, field) is not None:
            assert spec.sources.get(field), f"{spec.key}: {field} has no source"
    for dtype in spec.peak_tflops:
        assert spec.sources.get(f"peak_tflops.{dtype}") or spec.sources.get("peak_tflops"), (spec.key, dtype)
    assert spec.l2_mb is not None or any("l2" in note.lower() for note in spec.notes), spec.key


@pytest.mark.parametrize("spec", list_gpus(), ids=lambda spec: spec.key)
def test_rates_are_consistent(spec: object) -> None:
    from infersight.hardware.gpu_specs import GpuSpec

    assert isinstance(spec, GpuSpec)
    assert set(spec.peak_tflops) <= set(DTYPES)
    assert all(value > 0 for value in spec.peak_tflops.values())
    if "fp16" in spec.peak_tflops and "bf16" in spec.peak_tflops:
        assert spec.peak_tflops["bf16"] == spec.peak_tflops["fp16"]
    if "fp8" in spec.peak_tflops:  # fp8 tensor math is never slower than fp16
        assert spec.peak_tflops["fp8"] >= spec.peak_tflops["fp16"]
    if "tf32" in spec.peak_tflops:
        assert spec.peak_tflops["tf32"] <= spec.peak_tflops["fp16"]
    for pattern in spec.patterns:
        re.compile(pattern)
    # the roofline ridge point: every listed part needs > 10 FLOP per byte at fp16 to be compute-bound
    assert spec.peak_flops("fp16") / spec.memory_bandwidth_bytes_per_s > 10


def test_dense_not_sparse_rates() -> None:
    assert lookup_gpu("h100-sxm").peak_flops("bf16") == pytest.approx(989.4e12)
    assert lookup_gpu("a100").peak_flops("bfloat16") == pytest.approx(312e12)
    assert lookup_gpu("b200").peak_flops("fp4") == pytest.approx(9000e12)
    assert lookup_gpu("l4").peak_flops("fp8") == pytest.approx(485e12 / 2)


def test_missing_dtype_is_a_clear_error() -> None:
    with pytest.raises(
        InputError, match=r"Tesla V100 SXM2 32GB has no bf16 peak rate \(it has: fp32, fp16\)"
    ):
        lookup_gpu("v100").peak_flops("bf16")
    with pytest.raises(InputError, match="no fp8 peak rate"):
        lookup_gpu("a100").peak_flops("fp8")


# ------------------------------------------------------------------ lookups


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("h100", "h100-sxm"),
        ("H100-SXM", "h100-sxm"),
        ("A100 80GB", "a100-sxm-80gb"),
        ("a100-40gb", "a100-sxm-40gb"),
        ("MI300X", "mi300x"),
        ("4090", "rtx-4090"),
        ("RTX-4060-Ti", "rtx-4060-ti"),
        ("h20", "h20"),
        ("H200", "h200"),
    ],
)
def test_user_keys_and_aliases(typed: str, key: str) -> None:
    assert lookup_gpu(typed).key == key


@pytest.mark.parametrize(
    ("reported", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA H20", "h20"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA A10", "a10"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 4060 Ti", "rtx-4060-ti"),
        ("NVIDIA B200", "b200"),
        ("AMD Instinct MI300X", "mi300x"),
    ],
)
def test_nvidia_smi_style_names(reported: str, key: str) -> None:
    assert lookup_gpu(reported).key == key


def test_family_name_is_narrowed_by_memory() -> None:
    # 40 GB: SXM and PCIe have identical peaks and bandwidth, so either gives the same roofline
    forty = gpu_for_device("NVIDIA A100", sm_count=108, memory_bytes=42_297_524_224)
    assert forty.key in {"a100-sxm-40gb", "a100-pcie-40gb"}
    assert forty.memory_bandwidth_gb_per_s == 1555
    with pytest.raises(InputError, match=r"matches several entries .*a100-sxm-80gb"):
        lookup_gpu("NVIDIA A100")  # 80 GB SXM (2039 GB/s) and PCIe (1935 GB/s) differ
    with pytest.raises(InputError, match="matches several entries"):
        gpu_for_device("NVIDIA A100", sm_count=108, memory_bytes=85_000_000_000)


def test_near_names_do_not_match() -> None:
    for name in ("NVIDIA A10G", "NVIDIA L40", "NVIDIA GeForce RTX 4090 D"):
        with pytest.raises(InputError, match="unknown GPU"):
            lookup_gpu(name)


def test_unknown_gpu_lists_known_ones_and_the_override() -> None:
    with pytest.raises(InputError) as caught:
        lookup_gpu("NVIDIA GeForce GTX 1060 with Max-Q Design")
    message = str(caught.value)
    assert "unknown GPU 'NVIDIA GeForce GTX 1060 with Max-Q Design'" in message
    assert "h100-sxm" in message and "--peak-tflops" in message and "--bandwidth" in message


def test_custom_gpu_and_overrides() -> None:
    custom = custom_gpu(100.0, 1000.0, "bfloat16")
    assert custom.peak_flops("bf16") == 100e12
    assert custom.memory_bandwidth_bytes_per_s == 1e12
    with pytest.raises(InputError, match="no fp8 peak rate"):
        custom.peak_flops("fp8")
    with pytest.raises(InputError, match="--bandwidth must be a positive number"):
        custom_gpu(100.0, 0.0)
    measured = lookup_gpu("h100").with_overrides(bandwidth_gb_per_s=3000.0)
    assert measured.memory_bandwidth_gb_per_s == 3000.0
    assert measured.peak_flops("bf16") == lookup_gpu("h100").peak_flops("bf16")
    assert "override" in measured.sources["memory_bandwidth_gb_per_s"]


# ------------------------------------------------------------------ real trace names


def test_every_kineto_device_maps_to_its_entry() -> None:
    devices = kineto_devices()
    assert {name for name, _, _ in devices} == set(KINETO_EXPECTED)
    for name, sms, memory in devices:
        spec = gpu_for_device(name, sms, memory)
        assert spec.key == KINETO_EXPECTED[name], name
        assert spec.sm_count == sms  # the table agrees with what the device reported


def test_every_nsys_device_maps_or_fails_clearly() -> None:
    devices = nsys_devices()
    assert {name for name, _, _ in devices} == set(NSYS_EXPECTED) | NSYS_NOT_IN_TABLE
    for name, sms, memory in devices:
        if name in NSYS_EXPECTED:
            spec = gpu_for_device(name, sms, memory)
            assert spec.key == NSYS_EXPECTED[name]
            assert sms is None or spec.sm_count == sms
        else:
            with pytest.raises(InputError, match="--peak-tflops"):
                gpu_for_device(name, sms or None, memory or None)


def test_trace_memory_and_bandwidth_agree_with_the_table() -> None:
    """nsys records memoryBandwidth and l2CacheSize: our numbers must agree within 1%."""
    path: Path = shared_file("nsys/vectoradd_a4500_memcpy.sqlite")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        name, bandwidth, l2_bytes = connection.execute(
            "SELECT name, memoryBandwidth, l2CacheSize FROM TARGET_INFO_GPU"
        ).fetchone()
    spec = lookup_gpu(name)
    assert spec.memory_bandwidth_bytes_per_s == pytest.approx(bandwidth, rel=0.01)
    assert spec.l2_mb == pytest.approx(l2_bytes / 2**20)


def test_mig_instances_get_their_slice() -> None:
    whole = lookup_gpu("NVIDIA A100-SXM4-40GB")
    sliced = gpu_for_device("NVIDIA A100-SXM4-40GB MIG 3g.20gb", sm_count=42, memory_bytes=20 * 2**30)
    assert sliced.key == "a100-sxm-40gb-mig-3g.20gb"
    assert sliced.peak_flops("bf16") == pytest.approx(whole.peak_flops("bf16") * 42 / 108)
    assert sliced.memory_bandwidth_gb_per_s == pytest.approx(1555 / 2)
    assert sliced.l2_mb == pytest.approx(20) and sliced.memory_gb == 20
    assert "mig" in sliced.sources
    one = lookup_gpu("NVIDIA H100 80GB HBM3 MIG 1g.10gb")  # no SM count: g/7 of the compute
    assert one.peak_flops("fp8") == pytest.approx(lookup_gpu("h100").peak_flops("fp8") / 7)
    assert one.memory_bandwidth_gb_per_s == pytest.approx(3350 / 8)
