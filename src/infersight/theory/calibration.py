"""Fit and check the time model against measured kernels and all-reduces (Vidur's profiling data).

Used by ``bench/calibrate_theory.py`` (prints the accuracy tables and the fitted figures that go
into ``data/time_model.toml``) and by the tests that pin the fit. The data are Vidur's public
H100 measurements (microsoft/vidur ``data/profiling``, MIT): fp16 GEMM time of one transformer
layer's projections for 6 models at TP 1–8 and 1–4096 tokens, and NCCL all-reduce time by
message size and rank count on H100 (DGX, NVLink pairs) and A100 (DGX, also across nodes).

Accuracy is ``|ln(measured / predicted)|`` (symmetric: 2× slow and 2× fast count the same);
the fit minimises its mean with a small Nelder–Mead (no SciPy dependency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from infersight.errors import InputError
from infersight.theory.time_model import (
    CollectiveEfficiency,
    FloatArray,
    KernelEfficiency,
    allreduce_time,
    kernel_time,
)

GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
DECODE_MAX_TOKENS = 64  # M ≤ 64: decode-sized GEMMs (a batch of sequences, one token each)
FP16_BYTES = 2.0


@dataclass(frozen=True)
class Accuracy:
    """median and p90 of |ln(measured/predicted)| over ``count`` rows, and the median signed ln."""

    count: int
    median: float
    p90: float
    bias: float


def accuracy(measured: FloatArray | pd.Series, predicted: FloatArray | pd.Series) -> Accuracy:
    """|ln(measured/predicted)| statistics (NaN when there are no rows)."""
    log_ratio = np.log(np.asarray(measured, dtype=np.float64) / np.asarray(predicted, dtype=np.float64))
    if log_ratio.size == 0:
        return Accuracy(0, float("nan"), float("nan"), float("nan"))
    err = np.abs(log_ratio)
    return Accuracy(
        count=int(err.size),
        median=float(np.median(err)),
        p90=float(np.quantile(err, 0.9)),
        bias=float(np.median(log_ratio)),
    )


def load_vidur_gemms(folder: Path) -> pd.DataFrame:
    """One row per measured GEMM: model, op, m, n, k, tp, measured_s (Vidur ``*_mlp.csv``).

    The GEMM shapes follow from each row's model columns (INDEX of the shared data):
    QKV N=(heads+2·kv_heads)·head_dim/tp, K=hidden; O N=hidden, K=hidden/tp; up N=(2 if gated)·
    ffn/tp, K=hidden; down N=hidden, K=ffn/tp; M = num_tokens.
    """
    files = sorted(folder.glob("*_mlp.csv"))
    if not files:
        raise InputError(folder, "no Vidur *_mlp.csv files")
    return pd.concat([_gemm_rows(f) for f in files], ignore_index=True)


def _gemm_rows(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    model = path.name.removesuffix("_mlp.csv")
    tp = df["num_tensor_parallel_workers"].astype(int)
    heads, kv = df["n_head"].astype(int), df["n_kv_head"].astype(int)
    hidden, ffn = df["n_embd"].astype(int), df["n_expanded_embd"].astype(int)
    gated = df["use_gated_mlp"].astype(str).str.lower().eq("true")
    head_dim = hidden // heads
    shapes = {
        "attn_pre_proj": ((heads + 2 * kv) * head_dim // tp, hidden),
        "attn_post_proj": (hidden, hidden // tp),
        "mlp_up_proj": (np.where(gated, 2, 1) * ffn // tp, hidden),
        "mlp_down_proj": (hidden, ffn // tp),
    }
    parts = []
    for op, (n, k) in shapes.items():
        column = f"time_stats.{op}.median"
        if column not in df.columns:
            continue
        parts.append(
            pd.DataFrame(
                {
                    "model": model,
                    "op": op,
                    "m": df["num_tokens"].astype(np.int64),
                    "n": np.asarray(n, dtype=np.int64),
                    "k": np.asarray(k, dtype=np.int64),
                    "tp": tp,
                    "measured_s": df[column].astype(float) * 1e-3,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def load_vidur_adds(folder: Path) -> pd.DataFrame:
    """Every Vidur row's residual add: m, bytes (reads 2·M·hidden, writes M·hidden, fp16), measured_s.

    The add is one elementwise kernel with exactly known traffic, so its small-M time is the
    floor of a non-matmul kernel.
    """
    parts = []
    for path in sorted(folder.glob("*_mlp.csv")):
        df = pd.read_csv(path)
        if "time_stats.add.median" not in df.columns:
            continue
        m = df["num_tokens"].astype(float)
        parts.append(
            pd.DataFrame(
                {
                    "model": path.name.removesuffix("_mlp.csv"),
                    "m": m,
                    "bytes": 3.0 * m * df["n_embd"].astype(float) * FP16_BYTES,
                    "measured_s": df["time_stats.add.median"].astype(float) * 1e-3,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def fit_vector_floor(adds: pd.DataFrame, bandwidth: float, memory_efficiency: float) -> float:
    """Median of measured − bytes/(η_m·BW) over the decode-sized (M ≤ 64) adds, seconds."""
    small = adds[adds["m"] <= DECODE_MAX_TOKENS]
    return float(np.median(small["measured_s"] - small["bytes"] / (memory_efficiency * bandwidth)))


def load_vidur_allreduce(path: Path) -> pd.DataFrame:
    """One row per measured all-reduce: size (bytes), ranks, ranks_per_node, measured_s."""
    df = pd.read_csv(path)
    return pd.DataFrame(
        {
            "size": df["size"].astype(float),
            "ranks": df["num_workers"].astype(int),
            "ranks_per_node": df["devices_per_node"].astype(int),
            "measured_s": df["time_stats.all_reduce.median"].astype(float) * 1e-3,
        }
    )


def gemm_flops_bytes(
    m: FloatArray, n: FloatArray, k: FloatArray, elem_bytes: float
) -> tuple[FloatArray, FloatArray]:
    """F = 2·M·N·K; bytes = (M·K + K·N + M·N)·element size (A and B read once, C written once)."""
    m, n, k = (np.asarray(x, dtype=np.float64) for x in (m, n, k))
    return 2.0 * m * n * k, (m * k + k * n + m * n) * elem_bytes


def predict_gemms(df: pd.DataFrame, peak_flops: float, bandwidth: float, eff: KernelEfficiency) -> FloatArray:
    """Predicted seconds of every fp16 GEMM row of ``df`` (columns m, n, k)."""
    flops, bytes_ = gemm_flops_bytes(df["m"].to_numpy(), df["n"].to_numpy(), df["k"].to_numpy(), FP16_BYTES)
    return kernel_time(flops, bytes_, peak_flops, bandwidth, eff)


def predict_gemms_kappa(df: pd.DataFrame, peak_flops: float, bandwidth: float) -> FloatArray:
    """The previous model, for the before/after table: ``max(F/P, B/(0.85·BW))·1.1``."""
    flops, bytes_ = gemm_flops_bytes(df["m"].to_numpy(), df["n"].to_numpy(), df["k"].to_numpy(), FP16_BYTES)
    return np.maximum(flops / peak_flops, bytes_ / (0.85 * bandwidth)) * 1.1


def predict_allreduce(
    df: pd.DataFrame,
    intra_link: FloatArray | float,
    network_link: float,
    intra: CollectiveEfficiency,
    network: CollectiveEfficiency,
) -> FloatArray:
    """Predicted seconds per row: rows whose ranks span nodes use the network link and its α/η."""
    cross = (df["ranks_per_node"] < df["ranks"]).to_numpy()
    t_intra = allreduce_time(df["size"].to_numpy(), df["ranks"].to_numpy(), intra_link, intra)
    t_net = allreduce_time(df["size"].to_numpy(), df["ranks"].to_numpy(), network_link, network)
    return np.where(cross, t_net, t_intra)


def predict_allreduce_link_only(df: pd.DataFrame, link: FloatArray | float) -> FloatArray:
    """The previous model: bytes over the link at 0.8 efficiency, no latency, no ring factor."""
    return df["size"].to_numpy(dtype=np.float64) / (np.asarray(link, dtype=np.float64) * 0.8)


def nelder_mead(
    objective: Callable[[FloatArray], float], start: list[float], *, step: float = 0.15, iterations: int = 800
) -> FloatArray:
    """Minimise ``objective`` from ``start`` (standard reflect/expand/contract/shrink simplex)."""
    points = [np.asarray(start, dtype=np.float64)]
    for i in range(len(start)):
        p = points[0].copy()
        p[i] = p[i] * (1 + step) if p[i] != 0 else step
        points.append(p)
    values = [objective(p) for p in points]
    for _ in range(iterations):
        order = np.argsort(values)
        points = [points[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < 1e-10:
            break
        centre = np.mean(points[:-1], axis=0)
        reflected = centre + (centre - points[-1])
        f_r = objective(reflected)
        if f_r < values[0]:
            expanded = centre + 2 * (centre - points[-1])
            f_e = objective(expanded)
            points[-1], values[-1] = (expanded, f_e) if f_e < f_r else (reflected, f_r)
        elif f_r < values[-2]:
            points[-1], values[-1] = reflected, f_r
        else:
            contracted = centre + 0.5 * (points[-1] - centre)
            f_c = objective(contracted)
            if f_c < values[-1]:
                points[-1], values[-1] = contracted, f_c
            else:
                points = [points[0]] + [points[0] + 0.5 * (p - points[0]) for p in points[1:]]
                values = [values[0]] + [objective(p) for p in points[1:]]
    return points[int(np.argmin(values))]


def fit_kernel(df: pd.DataFrame, peak_flops: float, bandwidth: float, source: str) -> KernelEfficiency:
    """η_c, η_m, p and t_floor minimising mean |ln error| on GEMM rows (efficiencies kept in (0, 1])."""

    def eff(x: FloatArray) -> KernelEfficiency:
        return KernelEfficiency(float(x[0]), float(x[1]), float(x[3]), float(x[2]) * 1e-6, 0.0, source)

    measured = df["measured_s"].to_numpy()

    def objective(x: FloatArray) -> float:
        if not (0 < x[0] <= 1 and 0 < x[1] <= 1 and x[2] >= 0 and x[3] >= 1):
            return 1e9
        return float(np.mean(np.abs(np.log(measured / predict_gemms(df, peak_flops, bandwidth, eff(x))))))

    return eff(nelder_mead(objective, [0.75, 0.9, 5.0, 2.0], iterations=1500))


def fit_collective(df: pd.DataFrame, link: FloatArray | float, source: str) -> CollectiveEfficiency:
    """α and η_link minimising mean |ln error| on all-reduce rows that stay on one link type."""
    measured = df["measured_s"].to_numpy()
    sizes, ranks = df["size"].to_numpy(), df["ranks"].to_numpy()

    def objective(x: FloatArray) -> float:
        if not (x[0] > 0 and 0 < x[1] <= 1):
            return 1e9
        eff = CollectiveEfficiency(float(x[0]) * 1e-6, float(x[1]), source)
        return float(np.mean(np.abs(np.log(measured / allreduce_time(sizes, ranks, link, eff)))))

    x = nelder_mead(objective, [20.0, 0.7])
    return CollectiveEfficiency(float(x[0]) * 1e-6, float(x[1]), source)


# ---------------------------------------------------------------- the accuracy tables of the bench

H100_PEAK_FP16 = "h100"  # gpu_specs key the Vidur H100 data was measured on (H100 SXM, 80 GB HBM3)
HELD_OUT_MODELS = ("codellama_CodeLlama-34b-Instruct-hf", "Qwen_Qwen-72B", "microsoft_phi-2")


@dataclass(frozen=True)
class VidurData:
    """The shared Vidur measurements, loaded once."""

    gemms: pd.DataFrame
    adds: pd.DataFrame
    h100_dgx: pd.DataFrame
    h100_pairwise: pd.DataFrame
    a100_dgx: pd.DataFrame


def load_vidur(folder: Path) -> VidurData:
    """All of ``measured/vidur``: H100 GEMMs, H100 DGX and NVLink-pair all-reduces, A100 DGX all-reduces."""
    return VidurData(
        gemms=load_vidur_gemms(folder / "h100"),
        adds=load_vidur_adds(folder / "h100"),
        h100_dgx=load_vidur_allreduce(folder / "h100" / "h100_dgx_all_reduce.csv"),
        h100_pairwise=load_vidur_allreduce(folder / "h100" / "h100_pairwise_nvlink_all_reduce.csv"),
        a100_dgx=load_vidur_allreduce(folder / "a100" / "a100_dgx_all_reduce.csv"),
    )


def _link(link_id: str) -> float:
    from infersight.hardware.links import link_by_id

    return link_by_id(link_id).gb_per_s * 1e9


def pairwise_links(df: pd.DataFrame) -> FloatArray:
    """The H100 NVLink-pair machine: 2 ranks share an NVLink bridge, 4 ranks cross PCIe Gen5."""
    return np.where(df["ranks"].to_numpy() <= 2, _link("nvlink4_bridge"), _link("pcie5_x16"))


def gemm_table(data: VidurData, eff: KernelEfficiency | None) -> dict[str, Accuracy]:
    """GEMM accuracy on H100 by op, decode/prefill size, held-out models and overall.

    ``eff`` None is the previous model (``max(F/P, B/(0.85·BW))·1.1``).
    """
    from infersight.hardware.gpu_specs import lookup_gpu

    gpu = lookup_gpu(H100_PEAK_FP16)
    peak, bandwidth = gpu.peak_flops("fp16"), gpu.memory_bandwidth_bytes_per_s
    df = data.gemms
    if eff is None:
        predicted = predict_gemms_kappa(df, peak, bandwidth)
    else:
        predicted = predict_gemms(df, peak, bandwidth, eff)
    measured = df["measured_s"].to_numpy()
    masks: dict[str, npt.NDArray[np.bool_]] = {"all": np.ones(len(df), dtype=bool)}
    for op in GEMM_OPS:
        masks[op] = (df["op"] == op).to_numpy()
    masks["decode (M ≤ 64)"] = (df["m"] <= DECODE_MAX_TOKENS).to_numpy()
    masks["prefill (M > 64)"] = (df["m"] > DECODE_MAX_TOKENS).to_numpy()
    held = df["model"].isin(HELD_OUT_MODELS).to_numpy()
    masks["fit models (Llama-2-7B/70B, InternLM-20B)"] = ~held
    masks["held-out models (CodeLlama-34B, Qwen-72B, Phi-2)"] = held
    table = {name: accuracy(measured[m], predicted[m]) for name, m in masks.items()}
    adds = data.adds
    if eff is None:
        add_pred = adds["bytes"].to_numpy() / (0.85 * bandwidth) * 1.1
    else:
        add_pred = (
            kernel_time(0.0, adds["bytes"].to_numpy(), peak, bandwidth, eff)
            - eff.floor_s
            + eff.vector_floor_s
        )
    small = (adds["m"] <= DECODE_MAX_TOKENS).to_numpy()
    add_measured = adds["measured_s"].to_numpy()
    table["elementwise add, M ≤ 64 (vector floor)"] = accuracy(add_measured[small], add_pred[small])
    table["elementwise add, all M"] = accuracy(add_measured, add_pred)
    return table


def allreduce_table(data: VidurData, old: bool = False) -> dict[str, Accuracy]:
    """All-reduce accuracy: H100 (fit data), A100 with its own figures and with the generic ones."""
    from infersight.theory.time_model import time_model_params

    h100, a100, generic = time_model_params("H100"), time_model_params("A100"), time_model_params(None)
    nv4, nv3 = _link("nvlink4_h100"), _link("nvlink3_a100")
    net_h100, net_a100 = _link(h100.network_link), _link(a100.network_link)
    a = data.a100_dgx
    cross = (a["ranks_per_node"] < a["ranks"]).to_numpy()
    four = (a["ranks"] == 4).to_numpy() & ~cross
    cross_held = cross & a["ranks"].isin([4, 16]).to_numpy()
    if old:
        a_link = np.where(cross, net_a100, nv3)
        p = {
            "dgx": predict_allreduce_link_only(data.h100_dgx, nv4),
            "pair": predict_allreduce_link_only(data.h100_pairwise, pairwise_links(data.h100_pairwise)),
            "a100": predict_allreduce_link_only(a, a_link),
        }
        p["a100_generic"] = p["a100"]
    else:
        p = {
            "dgx": predict_allreduce(data.h100_dgx, nv4, net_h100, h100.intra_node, h100.network),
            "pair": predict_allreduce(
                data.h100_pairwise,
                pairwise_links(data.h100_pairwise),
                net_h100,
                h100.intra_node,
                h100.network,
            ),
            "a100": predict_allreduce(a, nv3, net_a100, a100.intra_node, a100.network),
            "a100_generic": predict_allreduce(a, nv3, net_a100, generic.intra_node, generic.network),
        }
    h_measured = np.concatenate(
        [data.h100_dgx["measured_s"].to_numpy(), data.h100_pairwise["measured_s"].to_numpy()]
    )
    am = a["measured_s"].to_numpy()
    return {
        "H100 all (DGX + NVLink pairs)": accuracy(h_measured, np.concatenate([p["dgx"], p["pair"]])),
        "H100 DGX (NVLink 4)": accuracy(data.h100_dgx["measured_s"], p["dgx"]),
        "H100 NVLink pairs / PCIe": accuracy(data.h100_pairwise["measured_s"], p["pair"]),
        "A100 in-node, A100 figures": accuracy(am[~cross], p["a100"][~cross]),
        "A100 in-node 4 ranks (held out of the A100 fit)": accuracy(am[four], p["a100"][four]),
        "A100 in-node, generic (H100) figures": accuracy(am[~cross], p["a100_generic"][~cross]),
        "A100 across nodes (IB HDR)": accuracy(am[cross], p["a100"][cross]),
        "A100 across nodes, held out (4 ranks/2 nodes, 16/2)": accuracy(
            am[cross_held], p["a100"][cross_held]
        ),
        "A100 all rows, A100 figures": accuracy(am, p["a100"]),
    }


def load_oneshot_latencies(path: Path) -> pd.DataFrame:
    """Published one-shot custom all-reduce latencies (ranks, size, measured_s; CSV with # comments)."""
    df = pd.read_csv(path, comment="#")
    return pd.DataFrame(
        {
            "size": df["size"].astype(float),
            "ranks": df["ranks"].astype(int),
            "ranks_per_node": df["ranks"].astype(int),
            "measured_s": df["latency_us"].astype(float) * 1e-6,
        }
    )


def oneshot_accuracy(df: pd.DataFrame, eff: CollectiveEfficiency) -> Accuracy:
    """Accuracy of the one-shot model on H100 NVLink 4 latencies."""
    return accuracy(
        df["measured_s"],
        allreduce_time(df["size"].to_numpy(), df["ranks"].to_numpy(), _link("nvlink4_h100"), eff),
    )
