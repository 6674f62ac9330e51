"""Name the GPU an Nsight Compute export was measured on, from what the export itself carries.

A ``--page raw`` export or a ``.ncu-rep`` names the device (``device__attribute_display_name``);
a ``--page details`` export never does, but it carries the compute capability (the ``CC`` column),
the SM clock and DRAM clock (Speed Of Light section) and, from the Memory Workload Analysis, the
achieved DRAM bytes/s next to the DRAM throughput in % of peak — whose quotient is the GPU's peak
DRAM bandwidth. Launch Statistics adds the SM count when collected. These figures are compared
with the spec table (``data/gpu_specs.toml``):

* compute capability and SM count must be equal;
* the implied peak bandwidth must be within ``BANDWIDTH_TOLERANCE`` of the datasheet figure
  (ncu measures peak at the current memory clock, a few % under the datasheet);
* the DRAM data rate (2 x the DRAM clock ncu prints) within ``DATA_RATE_TOLERANCE`` of the
  entry's per-pin rate;
* the SM clock between the base clock (``CLOCK_TOLERANCE`` under it) and the boost clock
  (``BOOST_HEADROOM`` over it).

One consistent entry names the GPU. Several: ncu locks the SM clock to the base clock by default
(``--clock-control base``), so an entry whose base clock is within ``BASE_CLOCK_MATCH`` of the
measured clock is preferred and the others are named as also consistent. None: the closest entry
(fewest differences, then the smallest relative distance) is reported as "closest match" with
what differs, and is used for the roofline only when its compute capability is the export's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from infersight.hardware.gpu_specs import GpuSpec, list_gpus, lookup_gpu
from infersight.ncu.metrics import ResolvedMetrics, gpu_name_of
from infersight.ncu.reader import NcuLaunch
from infersight.ncu.results import GpuIdentity

BANDWIDTH_TOLERANCE = 0.08
DATA_RATE_TOLERANCE = 0.06
CLOCK_TOLERANCE = 0.05  # under the base clock
# over the rated boost clock: NVIDIA's boost figure is a typical clock under load; GPU Boost runs
# higher when power and temperature allow, and factory-overclocked boards higher still
BOOST_HEADROOM = 0.20
BASE_CLOCK_MATCH = 0.03


@dataclass
class ExportDevice:
    """What the export says about its GPU (medians over launches; None when not carried)."""

    name: str | None = None
    compute_capability: str | None = None
    sm_count: int | None = None
    sm_clock_mhz: float | None = None
    dram_clock_mhz: float | None = None
    implied_bandwidth_gb_per_s: float | None = None
    observed: dict[str, float | str] = field(default_factory=dict)

    @property
    def data_rate_gbps(self) -> float | None:
        """Per-pin data rate: DDR memories move two bits per pin per DRAM clock ncu prints."""
        return 2 * self.dram_clock_mhz / 1e3 if self.dram_clock_mhz else None


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _numbers(resolved: Sequence[ResolvedMetrics], name: str) -> list[float]:
    return [float(v) for r in resolved if isinstance(v := r.values.get(name), float)]


def _attribute(launches: Sequence[NcuLaunch], name: str) -> float | None:
    values = [
        cell.value
        for launch in launches
        if (cell := launch.values.get(name)) is not None and isinstance(cell.value, float)
    ]
    return _median(values)


def _compute_capability(launches: Sequence[NcuLaunch]) -> str | None:
    for launch in launches:
        if launch.compute_capability:
            return launch.compute_capability.strip()
    major = _attribute(launches, "device__attribute_compute_capability_major")
    minor = _attribute(launches, "device__attribute_compute_capability_minor")
    return f"{int(major)}.{int(minor)}" if major is not None and minor is not None else None


def export_device(launches: Sequence[NcuLaunch], resolved: Sequence[ResolvedMetrics]) -> ExportDevice:
    """The device figures of an export (all its launches: one GPU per export is what ncu writes)."""
    name = next((n for launch in launches if (n := gpu_name_of(launch))), None)
    sm_count = _median(_numbers(resolved, "sm_count"))
    sm_hz = _median(_numbers(resolved, "sm_frequency"))
    dram_hz = _median(_numbers(resolved, "dram_frequency"))
    implied = [
        bw / (pct / 100)
        for r in resolved
        if isinstance(bw := r.values.get("dram_bandwidth"), float)
        and isinstance(pct := r.values.get("dram_throughput_pct"), float)
        and pct >= 1.0  # below 1% of peak the quotient amplifies rounding of the printed %
    ]
    device = ExportDevice(
        name=name,
        compute_capability=_compute_capability(launches),
        sm_count=round(sm_count) if sm_count else None,
        sm_clock_mhz=sm_hz / 1e6 if sm_hz else None,
        dram_clock_mhz=dram_hz / 1e6 if dram_hz else None,
        implied_bandwidth_gb_per_s=statistics.median(implied) / 1e9 if implied else None,
    )
    device.observed = {
        key: value
        for key, value in (
            ("device name", device.name),
            ("compute capability", device.compute_capability),
            ("SMs", device.sm_count),
            ("SM clock (MHz)", round(device.sm_clock_mhz) if device.sm_clock_mhz else None),
            ("DRAM clock (MHz)", round(device.dram_clock_mhz) if device.dram_clock_mhz else None),
            ("DRAM data rate (Gbps)", round(device.data_rate_gbps, 2) if device.data_rate_gbps else None),
            (
                "implied peak DRAM bandwidth (GB/s)",
                round(device.implied_bandwidth_gb_per_s) if device.implied_bandwidth_gb_per_s else None,
            ),
        )
        if value is not None
    }
    return device


@dataclass
class _Fit:
    spec: GpuSpec
    differences: list[str]
    distance: float
    compared: int
    at_base_clock: bool


def _relative(measured: float, expected: float) -> float:
    return abs(measured - expected) / expected


def _fit(spec: GpuSpec, device: ExportDevice) -> _Fit:
    """How well one spec entry explains the export's figures."""
    diffs: list[str] = []
    distance = 0.0
    compared = 0
    cc = spec.compute_capability
    if device.compute_capability:
        compared += 1
        if cc != device.compute_capability:  # no CC in the table: not an NVIDIA part ncu could profile
            diffs.append(f"compute capability {cc or 'not listed'} (export {device.compute_capability})")
            distance += 1.0
    sms = spec.sm_count
    if device.sm_count and sms:
        compared += 1
        if sms != device.sm_count:
            diffs.append(f"{sms} SMs (export {device.sm_count})")
            distance += _relative(device.sm_count, sms)
    bandwidth = spec.memory_bandwidth_gb_per_s
    if device.implied_bandwidth_gb_per_s and bandwidth:
        compared += 1
        off = _relative(device.implied_bandwidth_gb_per_s, bandwidth)
        distance += off
        if off > BANDWIDTH_TOLERANCE:
            diffs.append(
                f"{bandwidth:,.0f} GB/s (export implies {device.implied_bandwidth_gb_per_s:,.0f} GB/s)"
            )
    rate = spec.memory_data_rate_gbps
    if device.data_rate_gbps and rate:
        compared += 1
        off = _relative(device.data_rate_gbps, rate)
        distance += off
        if off > DATA_RATE_TOLERANCE:
            diffs.append(f"{rate:g} Gbps memory (export {device.data_rate_gbps:.1f} Gbps)")
    base, boost = spec.base_clock_mhz, spec.boost_clock_mhz
    at_base = False
    if device.sm_clock_mhz and base and boost:
        compared += 1
        clock = device.sm_clock_mhz
        at_base = _relative(clock, base) <= BASE_CLOCK_MATCH
        distance += _relative(clock, base)
        if not base * (1 - CLOCK_TOLERANCE) <= clock <= boost * (1 + BOOST_HEADROOM):
            diffs.append(f"SM clock {base:,.0f}-{boost:,.0f} MHz (export {clock:,.0f} MHz)")
    return _Fit(spec, diffs, distance, compared, at_base)


def identify_gpu(device: ExportDevice) -> GpuIdentity | None:
    """The spec entry the export's figures point to, or the closest one with what differs."""
    if device.name:
        try:
            spec = lookup_gpu(device.name, sm_count=device.sm_count)
        except Exception:  # a name the table does not know: fall back to the figures
            spec = None
        if spec is not None:
            return GpuIdentity(
                name=spec.name,
                key=spec.key,
                source="export",
                match="named",
                observed=device.observed,
                reason=f"the export names the device {device.name!r}",
            )
    fits = [f for f in (_fit(spec, device) for spec in list_gpus()) if f.compared]
    if not fits or (not device.compute_capability and not device.sm_count):
        return None
    consistent = [f for f in fits if not f.differences and f.spec.compute_capability]
    if consistent:
        preferred = [f for f in consistent if f.at_base_clock]
        if len(consistent) == 1 or len(preferred) == 1:
            best, unique = (consistent if len(consistent) == 1 else preferred)[0], True
        else:
            best, unique = min(preferred or consistent, key=lambda f: f.distance), False
        others = [f.spec.key for f in consistent if f is not best]
        reason = _agreement(device, best)
        if others:
            reason += (
                f"; also consistent: {', '.join(others)} — chosen because the SM clock equals its base "
                "clock (ncu locks clocks to base by default)"
                if unique
                else f"; equally consistent: {', '.join(others)} — pass --gpu to choose"
            )
        return GpuIdentity(
            name=best.spec.name,
            key=best.spec.key,
            source="export",
            match="identified" if unique else "ambiguous",
            observed=device.observed,
            reason=reason,
            alternatives=others,
        )
    closest = min(fits, key=lambda f: (len(f.differences), f.distance))
    same_cc = closest.spec.compute_capability == device.compute_capability
    return GpuIdentity(
        name=closest.spec.name,
        key=closest.spec.key,
        source="export",
        match="closest",
        observed=device.observed,
        differences=closest.differences,
        reason=f"closest match {closest.spec.name} (differs in: {'; '.join(closest.differences)})"
        + ("" if same_cc else "; not used for the roofline (another compute capability): pass --gpu NAME"),
        usable=same_cc,
    )


def _agreement(device: ExportDevice, fit: _Fit) -> str:
    """'compute capability 12.0, 1,756 GB/s implied peak (datasheet 1,792), ...' for the report."""
    spec = fit.spec
    parts = []
    if device.compute_capability:
        parts.append(f"compute capability {device.compute_capability}")
    if device.sm_count:
        parts.append(f"{device.sm_count} SMs")
    if device.sm_clock_mhz:
        parts.append(f"SM clock {device.sm_clock_mhz:,.0f} MHz (base {_mhz(spec.base_clock_mhz)})")
    if device.data_rate_gbps:
        rate = spec.memory_data_rate_gbps
        parts.append(f"memory {device.data_rate_gbps:.1f} Gbps ({f'{rate:g} Gbps' if rate else 'n/a'})")
    if device.implied_bandwidth_gb_per_s:
        parts.append(
            f"implied peak DRAM bandwidth {device.implied_bandwidth_gb_per_s:,.0f} GB/s "
            f"(datasheet {spec.memory_bandwidth_gb_per_s:,.0f})"
        )
    return ", ".join(parts)


def _mhz(value: float | None) -> str:
    return f"{value:,.0f} MHz" if value else "n/a"
