"""The kernels of one device in start order, with the per-kernel labels the layer view needs.

Category and simplified name are computed once per distinct kernel name
(:mod:`infersight.analyses.categories`, :mod:`infersight.analyses.kernel_names`) and kept as
integer codes, so the segmentation works on plain numpy arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from infersight.analyses.categories import CATEGORIES, categorize
from infersight.analyses.kernel_names import simplify_names
from infersight.errors import InputError
from infersight.model import Trace

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

GEMM = CATEGORIES.index("GEMM")
ATTENTION = CATEGORIES.index("attention")
NCCL = CATEGORIES.index("NCCL")
MOE = CATEGORIES.index("MoE")
NORM = CATEGORIES.index("norm")
COPY = CATEGORIES.index("copy")

_ALLREDUCE_RE = re.compile(r"all_?reduce|cross_device_reduce|reduce_?scatter", re.IGNORECASE)


@dataclass(frozen=True)
class DeviceKernels:
    """Columns of one device's kernels, sorted by start (stable)."""

    trace: Trace
    device: int
    start: IntArray
    end: IntArray
    stream: IntArray
    name_code: IntArray  # code into ``names`` (full kernel name)
    names: list[str]
    short_code: IntArray  # code into ``short_names``
    short_names: list[str]
    category: IntArray  # index into CATEGORIES
    name_category: IntArray  # category of every full name (indexed by name code)
    name_short: IntArray  # short-name code of every full name
    is_allreduce: BoolArray
    origin_ns: int  # the trace's first event (Perfetto's time zero)
    correlation: IntArray  # launch correlation id (-1 unknown)
    row: IntArray  # position of every kernel in ``trace.kernels`` (to join per-kernel tables)

    def __len__(self) -> int:
        return len(self.start)

    def name_counts(self) -> IntArray:
        """Occurrences of every full name (indexed by name code)."""
        return np.bincount(self.name_code, minlength=len(self.names)).astype(np.int64)


def device_kernels(trace: Trace, device: int | None, origin_ns: int) -> DeviceKernels:
    """The kernels of ``device`` (default: the device with the most kernels) in start order;
    ``origin_ns`` is Perfetto's time zero (:func:`infersight.layers.launch_shapes.perfetto_origin`)."""
    kernels = trace.kernels
    if kernels.empty:
        raise InputError(
            trace.source,
            "the trace has no GPU kernels (for a CPU-only PyTorch capture add --cpu-ops-as-kernels)",
        )
    devices = kernels["device"].value_counts()
    chosen = int(devices.index[0]) if device is None else device
    if chosen not in devices.index:
        raise InputError(
            trace.source,
            f"--device {device}: no kernels on that device; devices with kernels: "
            f"{sorted(int(d) for d in devices.index)}",
        )
    on_device = (kernels["device"] == chosen).to_numpy()
    frame = kernels[on_device]
    order = np.argsort(frame["start"].to_numpy(), kind="stable")
    rows = np.flatnonzero(on_device)[order].astype(np.int64)
    frame = frame.iloc[order]
    names: pd.Categorical = pd.Categorical(frame["name"].astype(object))
    short = simplify_names(names)
    categories = categorize(names)
    full_names = [str(n) for n in names.categories]
    allreduce_by_name = np.array([bool(_ALLREDUCE_RE.search(n)) for n in full_names], dtype=bool)
    name_code = np.asarray(names.codes, dtype=np.int64)
    category = np.asarray(categories.codes, dtype=np.int64)
    short_code = np.asarray(short.codes, dtype=np.int64)
    name_category = np.zeros(len(full_names), dtype=np.int64)
    name_category[name_code] = category
    name_short = np.zeros(len(full_names), dtype=np.int64)
    name_short[name_code] = short_code
    return DeviceKernels(
        trace=trace,
        device=chosen,
        start=frame["start"].to_numpy(dtype=np.int64),
        end=frame["end"].to_numpy(dtype=np.int64),
        stream=frame["stream"].to_numpy(dtype=np.int64),
        name_code=name_code,
        names=full_names,
        short_code=short_code,
        short_names=[str(n) for n in short.categories],
        category=category,
        name_category=name_category,
        name_short=name_short,
        is_allreduce=allreduce_by_name[name_code] & (category == NCCL),
        origin_ns=origin_ns,
        correlation=frame["correlation"].to_numpy(dtype=np.int64),
        row=rows,
    )
