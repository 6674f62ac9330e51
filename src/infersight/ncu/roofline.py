"""The measured roofline point of a kernel: achieved FLOP/s and DRAM bytes -> intensity -> E_roof.

FLOPs follow methodology §6: CUDA-core work is add + mul + 2·fma per precision (SASS thread
instructions); tensor-core work comes from the tensor-pipe op counters
(``sm__ops_path_tensor_src_<dtype>[_dst_*][_sparsity_*].sum``, one aggregation level per dtype, see
``data/ncu_metrics.toml``), never from the CUDA-core counters nor from tensor instruction counts
(whose FLOPs depend on the MMA shape: with only those, FLOP/s and E_roof are flagged lower bounds).
The roof is the GPU's peak for the precision with the most FLOPs and its DRAM bandwidth, from
:mod:`infersight.hardware.gpu_specs`; without a known GPU, E_roof is None with the reason.

E_roof = P_achieved / P_upper with P_upper = min(P_peak, I·B_peak). Below the ridge this equals
achieved bandwidth / peak bandwidth, which is how a kernel without FLOPs (a copy) still gets one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from infersight.ncu.results import RooflinePoint

CUDA_CORE_PRECISIONS = ("fp32", "fp16", "fp64")


def cuda_core_flops(metrics: Mapping[str, float | None]) -> tuple[dict[str, float], list[str]]:
    """FLOPs per precision from add/mul/fma counters; the precisions whose counters are missing."""
    flops: dict[str, float] = {}
    missing: list[str] = []
    for precision in CUDA_CORE_PRECISIONS:
        add, mul, fma = (metrics.get(f"{precision}_{op}") for op in ("add", "mul", "fma"))
        if add is None or mul is None or fma is None:
            missing.append(precision)
            continue
        flops[precision] = add + mul + 2.0 * fma
    return flops, missing


class GpuPeaks:
    """Peak FLOP/s per dtype and DRAM bandwidth of a GPU, or why they are unknown."""

    def __init__(self, gpu_name: str | None, spec: Any = None, unknown_reason: str | None = None) -> None:
        self.name = gpu_name
        self.spec: Any = spec
        self.reason: str | None = None
        if spec is not None:
            return
        if not gpu_name:
            self.reason = unknown_reason or (
                "GPU unknown: the export carries neither its name nor its compute capability and SM "
                "count; pass --gpu NAME"
            )
            return
        try:
            from infersight.hardware.gpu_specs import lookup_gpu
        except ImportError:
            self.reason = "GPU spec table (infersight.hardware.gpu_specs) is not available in this build"
            return
        try:
            self.spec = lookup_gpu(gpu_name)
        except Exception as exc:  # unknown GPU: the table raises its own error type with a message
            self.reason = f"GPU {gpu_name!r} is not in the spec table ({' '.join(str(exc).split())[:160]})"
            return
        if self.spec is None:
            self.reason = f"GPU {gpu_name!r} is not in the spec table"

    def peak_flops(self, dtype: str) -> float | None:
        """Peak dense FLOP/s for dtype, None when the table has no figure."""
        if self.spec is None:
            return None
        try:
            value = self.spec.peak_flops(dtype)
        except Exception:  # a dtype the table does not list
            return None
        return float(value) if value else None

    def bandwidth(self) -> float | None:
        """Peak DRAM bandwidth in bytes/s."""
        if self.spec is None:
            return None
        value = getattr(self.spec, "memory_bandwidth_gb_per_s", None)
        return float(value) * 1e9 if value else None


def roofline_point(
    metrics: Mapping[str, float | None], tensor_flops: Mapping[str, float], peaks: GpuPeaks
) -> RooflinePoint:
    """The measured roofline point of one kernel (medians of its launches)."""
    by_precision, missing_precisions = cuda_core_flops(metrics)
    for dtype, value in tensor_flops.items():
        key = f"tensor_{dtype}"  # dtype already normalised by metrics.tensor_flops_by_dtype
        by_precision[key] = by_precision.get(key, 0.0) + value
    duration = metrics.get("duration_ns")
    dram_bytes = metrics.get("dram_bytes")
    point = RooflinePoint(duration_ns=duration, dram_bytes=dram_bytes, flops_by_precision=by_precision)
    complete = not missing_precisions
    if by_precision and (complete or sum(by_precision.values()) > 0):
        point.flops = sum(by_precision.values())
        if missing_precisions:
            point.flops_na_reason = (
                f"no {'/'.join(missing_precisions)} add/mul/fma counters: those FLOPs are not counted "
                "(achieved FLOP/s and E_roof are lower bounds)"
            )
    elif by_precision:
        point.flops_na_reason = (
            f"tensor pipe did no work and there are no {'/'.join(missing_precisions)} add/mul/fma counters: "
            "the kernel's FLOPs are unknown"
        )
    else:
        point.flops_na_reason = (
            "no FLOP counters (smsp__sass_thread_inst_executed_op_{f,h,d}{add,mul,fma}_pred_on.sum or "
            "sm__ops_path_tensor_*) — collect them with ncu-plan's --metrics"
        )
    if duration:
        seconds = duration * 1e-9
        point.achieved_flop_per_s = _ratio(point.flops, seconds)
        point.achieved_bytes_per_s = _ratio(dram_bytes, seconds)
    if point.flops is not None and dram_bytes:
        point.intensity = _ratio(point.flops, dram_bytes)
    if point.flops:
        point.precision = max(by_precision, key=lambda k: by_precision[k])
    tensor_instructions = metrics.get("tensor_instructions")
    if tensor_instructions and not any(value > 0 for value in tensor_flops.values()):
        complete = False
        point.flops_na_reason = "; ".join(
            r
            for r in (
                point.flops_na_reason,
                f"{tensor_instructions:,.0f} tensor-pipe instructions ran but no sm__ops_path_tensor_*"
                " counter gives their FLOPs (instructions are not converted: FLOPs per instruction depend"
                " on the MMA shape): achieved FLOP/s and E_roof are lower bounds",
            )
            if r
        )
    _e_roof(point, peaks, complete)
    return point


def _ratio(numerator: float | None, denominator: float) -> float | None:
    """numerator / denominator, or None when it is unknown or not a finite number.

    Counters are validated finite and non-negative when read, but a huge counter over a tiny
    duration can still overflow: no ``inf`` may reach the report.
    """
    if numerator is None or not denominator > 0:
        return None
    try:
        value = numerator / denominator
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _peak_dtype(precision: str) -> str:
    """The gpu_specs dtype whose peak bounds this precision (tensor work -> its input dtype)."""
    return precision.removeprefix("tensor_")


def _e_roof(point: RooflinePoint, peaks: GpuPeaks, flops_complete: bool) -> None:
    if point.duration_ns is None:
        point.e_roof_na_reason = "no kernel duration"
        return
    if peaks.reason is not None:
        point.e_roof_na_reason = peaks.reason
        return
    point.peak_bytes_per_s = peaks.bandwidth()
    if point.precision is not None:
        point.peak_flop_per_s = peaks.peak_flops(_peak_dtype(point.precision))
    bandwidth, peak = point.peak_bytes_per_s, point.peak_flop_per_s
    achieved = point.achieved_flop_per_s
    if bandwidth and point.achieved_bytes_per_s is not None:
        point.dram_efficiency = _ratio(point.achieved_bytes_per_s, bandwidth)
    if not point.flops and not flops_complete:
        point.e_roof_na_reason = (
            f"FLOPs unknown: {point.flops_na_reason}; "
            "DRAM efficiency (achieved / peak bandwidth) is reported instead"
        )
        return
    if not point.flops and point.achieved_bytes_per_s is not None and bandwidth:
        point.bound = "memory"  # no FLOPs: the memory roof at I -> 0, i.e. bandwidth efficiency
        point.e_roof = _ratio(point.achieved_bytes_per_s, bandwidth)
        return
    if point.flops and achieved is not None and peak:
        if point.intensity is not None and bandwidth:
            memory_roof = point.intensity * bandwidth  # finite: intensity and bandwidth are bounded
            point.upper_flop_per_s = min(peak, memory_roof)
            point.bound = "memory" if memory_roof < peak else "compute"
        elif point.dram_bytes == 0:  # everything hit in cache: only the compute roof bounds it
            point.upper_flop_per_s, point.bound = peak, "compute"
        if point.upper_flop_per_s:
            point.e_roof = _ratio(achieved, point.upper_flop_per_s)
            return
    reasons = []
    if point.dram_bytes is None:
        reasons.append("no DRAM byte counters (dram__bytes_read.sum / dram__bytes_write.sum)")
    if not bandwidth:
        reasons.append(f"no memory bandwidth for {peaks.name}")
    if point.flops and not peak:
        reasons.append(f"no {_peak_dtype(point.precision or '')} peak FLOP/s for {peaks.name}")
    if point.flops is None:
        reasons.append(point.flops_na_reason or "no FLOP counters")
    point.e_roof_na_reason = "; ".join(reasons) or "not enough counters"
