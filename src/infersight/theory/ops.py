"""Per-shape time predictions for a user's own operator list (``infersight roofline --ops OPS.csv``).

Why: the model-level estimate hides which shapes the time model gets right; a user who has
microbenchmarked GEMMs or all-reduces can hold every one of them against the same calibrated
model the estimate uses (:mod:`infersight.theory.time_model`). The CSV has the columns
``id,op,m,n,k,bytes,ranks``:

* ``gemm``: m, n, k (positive integers); FLOPs = 2·m·n·k, bytes = (m·k + k·n + m·n)·element size
  of ``--dtype``, unless ``bytes`` is given (then it is the memory traffic);
* ``allreduce``: ``bytes`` (the message size, as nccl-tests' ``size``) and ``ranks`` (≥ 1); rows
  with more ranks than ``ranks_per_node`` cross nodes and use the network link.

Everything is computed on whole columns (numpy), so tens of thousands of rows take well under a
second; every row is validated first and the first bad one is reported with its file line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, Field

from infersight.errors import InputError
from infersight.hardware.gpu_specs import GpuSpec
from infersight.theory.time_model import (
    FloatArray,
    TimeModelParams,
    allreduce_time,
    combine,
    kernel_parts,
    time_model_params,
)

OPS_SCHEMA_VERSION = "1.0"
OPS_COLUMNS = ("id", "op", "m", "n", "k", "bytes", "ranks")
OP_KINDS = ("gemm", "allreduce")
ELEMENT_BYTES = {"fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5}
DEFAULT_RANKS_PER_NODE = 8  # an HGX/DGX node
MAX_OPS_ROWS = 5_000_000

OpBound = Literal["compute", "memory", "latency", "communication"]


class OpPrediction(BaseModel):
    """One CSV row's predicted time and what bounds it."""

    id: str
    op: Literal["gemm", "allreduce"]
    predicted_s: float = Field(description="predicted duration of one call, seconds")
    bound: OpBound = Field(
        description="compute / memory (gemm), communication (allreduce bandwidth), or latency when the "
        "fixed floor (t_floor or α) is the largest part"
    )
    flops: float = Field(description="FLOPs of the row (0 for allreduce)")
    bytes: float = Field(description="memory bytes (gemm) or message bytes (allreduce)")


class OpsPrediction(BaseModel):
    """``roofline --ops`` output: the GPU, the time-model figures used, and one prediction per row."""

    schema_version: str = OPS_SCHEMA_VERSION
    gpu: str
    dtype: str
    time_model: str = Field(
        description="which generation's calibrated figures were used (data/time_model.toml)"
    )
    peak_flops: float
    memory_bandwidth: float = Field(description="bytes/s")
    intra_node_link: float | None = Field(description="per-direction GPU-to-GPU link, bytes/s")
    network_link: float | None = Field(description="per-direction network link per GPU, bytes/s")
    ranks_per_node: int
    ops: list[OpPrediction]


def read_ops_csv(path: Path) -> pd.DataFrame:
    """The rows of an ops CSV, validated: InputError naming the file and line of the first bad row."""
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=True, nrows=MAX_OPS_ROWS + 1
        )
    except FileNotFoundError as exc:
        raise InputError(path, "no such file") from exc
    except (IsADirectoryError, PermissionError) as exc:
        raise InputError(path, f"cannot read it ({exc.strerror})") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            path, f"not a readable CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from exc
    return validate_ops(raw, path)


def validate_ops(raw: pd.DataFrame, path: Path | None = None) -> pd.DataFrame:
    """Typed columns (id, op, m, n, k, bytes, ranks) from string cells; the first bad row is an error.

    Line numbers count the header as line 1 (what an editor shows).
    """
    raw = raw.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in OPS_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(
            path, f"missing column(s) {', '.join(missing)}: expected header {','.join(OPS_COLUMNS)}"
        )
    if raw.empty:
        raise InputError(path, "no rows after the header")
    if len(raw) > MAX_OPS_ROWS:
        raise InputError(path, f"more than {MAX_OPS_ROWS:,} rows")
    raw = raw[list(OPS_COLUMNS)].apply(lambda col: col.astype(str).str.strip())
    op = raw["op"].str.lower()
    numbers = {
        c: pd.to_numeric(raw[c].where(raw[c] != ""), errors="coerce")
        for c in ("m", "n", "k", "bytes", "ranks")
    }
    given = {c: raw[c] != "" for c in numbers}
    unparsable = {c: given[c] & ~np.isfinite(numbers[c].astype(float)) for c in numbers}
    problems: list[tuple[pd.Series, str]] = [(raw["id"] == "", "empty id")]
    problems.append((~op.isin(OP_KINDS), "op must be gemm or allreduce"))
    for c in numbers:
        problems.append((unparsable[c], f"{c} is not a number"))
    gemm, ar = op == "gemm", op == "allreduce"
    for c in ("m", "n", "k"):
        bad = gemm & (~given[c] | unparsable[c] | (numbers[c] < 1) | (numbers[c] != np.floor(numbers[c])))
        problems.append((bad, f"gemm needs {c} as a positive integer"))
    problems.append(
        (gemm & given["bytes"] & ~unparsable["bytes"] & (numbers["bytes"] <= 0), "bytes must be > 0")
    )
    problems.append(
        (ar & (~given["bytes"] | unparsable["bytes"] | (numbers["bytes"] <= 0)), "allreduce needs bytes > 0")
    )
    bad_ranks = (
        ~given["ranks"]
        | unparsable["ranks"]
        | (numbers["ranks"] < 1)
        | (numbers["ranks"] != np.floor(numbers["ranks"]))
    )
    problems.append((ar & bad_ranks, "allreduce needs ranks as an integer ≥ 1"))
    first = _first_problem(problems)
    if first is not None:
        row, message = first
        raise InputError(path, f"line {row + 2} (id {raw['id'].iloc[row]!r}): {message}")
    return pd.DataFrame(
        {
            "id": raw["id"].to_numpy(),
            "op": op.to_numpy(),
            **{c: numbers[c].to_numpy(dtype=np.float64) for c in numbers},
        }
    )


def _first_problem(problems: list[tuple[pd.Series, str]]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for mask, message in problems:
        hits = np.flatnonzero(mask.fillna(True).to_numpy(dtype=bool))
        if hits.size and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), message)
    return best


def predict_ops(
    ops: pd.DataFrame,
    gpu: GpuSpec,
    dtype: str,
    *,
    intra_link_gb_per_s: float | None,
    network_link_gb_per_s: float | None = None,
    ranks_per_node: int = DEFAULT_RANKS_PER_NODE,
) -> OpsPrediction:
    """Predicted time of every row of a validated ops table (:func:`validate_ops`) on ``gpu``.

    ``network_link_gb_per_s`` defaults to the generation's network link (data/time_model.toml).
    """
    if ranks_per_node < 1:
        raise InputError(None, f"--ranks-per-node {ranks_per_node}: expected ≥ 1")
    params = time_model_params(gpu.family)
    peak, bandwidth = gpu.peak_flops(dtype), gpu.memory_bandwidth_bytes_per_s
    if network_link_gb_per_s is None:
        network_link_gb_per_s = _link_gb_per_s(params.network_link)
    gemm = (ops["op"] == "gemm").to_numpy()
    m, n, k = (ops[c].fillna(0).to_numpy(dtype=np.float64) for c in ("m", "n", "k"))
    flops = np.where(gemm, 2.0 * m * n * k, 0.0)
    computed = (m * k + k * n + m * n) * ELEMENT_BYTES.get(dtype, 2.0)
    given_bytes = ops["bytes"].to_numpy(dtype=np.float64)
    mem_bytes = np.where(np.isnan(given_bytes), computed, given_bytes)
    t_c, t_m = kernel_parts(
        flops,
        mem_bytes,
        peak,
        bandwidth,
        compute_efficiency=params.kernel.compute_efficiency,
        memory_efficiency=params.kernel.memory_efficiency,
    )
    busy = combine(t_c, t_m, params.kernel.overlap_exponent)
    t_gemm = busy + params.kernel.floor_s
    gemm_bound = np.where(params.kernel.floor_s > busy, "latency", np.where(t_c > t_m, "compute", "memory"))
    t_ar, ar_bound = _allreduce(ops, gemm, params, intra_link_gb_per_s, network_link_gb_per_s, ranks_per_node)
    predicted = np.where(gemm, t_gemm, t_ar)
    bound = np.where(gemm, gemm_bound, ar_bound)
    shown_bytes = np.where(gemm, mem_bytes, given_bytes)
    rows = [
        OpPrediction(id=i, op=o, predicted_s=float(t), bound=b, flops=float(f), bytes=float(by))
        for i, o, t, b, f, by in zip(
            ops["id"].tolist(),
            ops["op"].tolist(),
            predicted.tolist(),
            bound.tolist(),
            flops.tolist(),
            shown_bytes.tolist(),
            strict=True,
        )
    ]
    return OpsPrediction(
        gpu=gpu.name,
        dtype=dtype,
        time_model=params.generation,
        peak_flops=peak,
        memory_bandwidth=bandwidth,
        intra_node_link=None if intra_link_gb_per_s is None else intra_link_gb_per_s * 1e9,
        network_link=network_link_gb_per_s * 1e9,
        ranks_per_node=ranks_per_node,
        ops=rows,
    )


def _allreduce(
    ops: pd.DataFrame,
    gemm: npt.NDArray[np.bool_],
    params: TimeModelParams,
    intra_gb: float | None,
    network_gb: float,
    ranks_per_node: int,
) -> tuple[FloatArray, npt.NDArray[np.str_]]:
    """α + S·2(n−1)/n / (η·BW) per allreduce row: the peer link inside a node, the network across."""
    ranks = ops["ranks"].fillna(1).to_numpy(dtype=np.float64)
    size = ops["bytes"].fillna(0).to_numpy(dtype=np.float64)
    needs_intra = ~gemm & (ranks > 1) & (ranks <= ranks_per_node)
    if intra_gb is None and needs_intra.any():
        row = int(np.flatnonzero(needs_intra)[0])
        raise InputError(
            None,
            f"ops row {ops['id'].iloc[row]!r}: no GPU-to-GPU link known for this GPU; "
            "pass --link-bandwidth GB/s",
        )
    intra_bw = (intra_gb or 1.0) * 1e9
    cross = ranks > ranks_per_node
    t_intra = allreduce_time(size, ranks, intra_bw, params.intra_node)
    t_net = allreduce_time(size, ranks, network_gb * 1e9, params.network)
    t = np.where(cross, t_net, t_intra)
    alpha = np.where(cross, params.network.alpha_s, params.intra_node.alpha_s)
    bound = np.where((ranks <= 1) | (alpha > t - alpha), "latency", "communication")
    return t, bound


def predict_ops_for_gpu(
    ops: pd.DataFrame,
    *,
    gpu: str | None,
    dtype: str,
    peak_tflops: float | None = None,
    bandwidth_gb_per_s: float | None = None,
    link_bandwidth_gb_per_s: float | None = None,
    ranks_per_node: int = DEFAULT_RANKS_PER_NODE,
) -> OpsPrediction:
    """:func:`predict_ops` with the GPU resolved the way ``roofline`` resolves it.

    ``--gpu`` from the spec table (optionally with ``--peak-tflops``/``--bandwidth`` replacing its
    figures), or a custom GPU from both figures; the intra-node link is ``--link-bandwidth`` or the
    GPU's peer link (its host PCIe link when it has none).
    """
    from infersight.hardware.gpu_specs import custom_gpu, lookup_gpu, normalise_dtype
    from infersight.hardware.links import spec_links

    key = normalise_dtype(dtype)
    if key not in ELEMENT_BYTES:
        raise InputError(None, f"--dtype {dtype!r}: expected one of {', '.join(ELEMENT_BYTES)}")
    if gpu is not None:
        spec = lookup_gpu(gpu)
        if peak_tflops is not None or bandwidth_gb_per_s is not None:
            spec = spec.with_overrides(peak_tflops, bandwidth_gb_per_s, key)
    elif peak_tflops is not None and bandwidth_gb_per_s is not None:
        spec = custom_gpu(peak_tflops, bandwidth_gb_per_s, key)
    else:
        raise InputError(None, "no GPU: give --gpu NAME, or both --peak-tflops and --bandwidth")
    link = link_bandwidth_gb_per_s
    if link is None:
        links = spec_links(spec)
        chosen = links.peer or links.host
        link = None if chosen is None else chosen.gb_per_s
    return predict_ops(ops, spec, key, intra_link_gb_per_s=link, ranks_per_node=ranks_per_node)


def _link_gb_per_s(link_id: str) -> float:
    from infersight.hardware.links import link_by_id

    return link_by_id(link_id).gb_per_s
