"""Calibrate and check the theory engine's time model on Vidur's measured kernels and all-reduces.

    PYTHONPATH=src python bench/calibrate_theory.py [--data DIR] [--fit] [--ops-rows 50000]

Prints median / p90 of |ln(measured / predicted)| before (κ roofline: max(F/P, B/(0.85·BW))·1.1,
collectives bytes/(0.8·link), no latency) and after (the calibrated model with the figures in
src/infersight/data/time_model.toml): H100 GEMMs by op, decode / prefill sizes, fit and held-out
models; H100 and A100 all-reduce. ``--fit`` refits the figures (they should match the TOML);
``--ops-rows N`` times ``api.predict_ops`` on N random shapes. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from infersight.theory.calibration import (
    HELD_OUT_MODELS,
    Accuracy,
    accuracy,
    allreduce_table,
    fit_collective,
    fit_kernel,
    gemm_table,
    load_oneshot_latencies,
    load_vidur,
    oneshot_accuracy,
    pairwise_links,
    predict_gemms,
)
from infersight.theory.time_model import time_model_params

ONESHOT = Path(__file__).resolve().parent / "data" / "sglang_custom_allreduce_h100.csv"
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "measured" / "vidur"


def print_table(title: str, before: dict[str, Accuracy], after: dict[str, Accuracy]) -> None:
    """One Markdown table: rows, then before/after median and p90 of |ln error| and the median bias."""
    print(f"\n### {title}\n")
    print("| rows | n | before median | before p90 | after median | after p90 | after bias (median ln) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, a in after.items():
        b = before.get(name)
        b_med = f"{b.median:.3f}" if b else "—"
        b_p90 = f"{b.p90:.3f}" if b else "—"
        print(f"| {name} | {a.count:,} | {b_med} | {b_p90} | {a.median:.3f} | {a.p90:.3f} | {a.bias:+.3f} |")


def refit(data_dir: Path) -> None:
    """Refit every figure of time_model.toml from the data and print it."""
    from infersight.hardware.gpu_specs import lookup_gpu
    from infersight.theory.calibration import _link

    data = load_vidur(data_dir)
    gpu = lookup_gpu("h100")
    peak, bw = gpu.peak_flops("fp16"), gpu.memory_bandwidth_bytes_per_s
    print("\n### Refit\n")
    full = fit_kernel(data.gemms, peak, bw, "all models")
    fit_models = data.gemms[~data.gemms["model"].isin(HELD_OUT_MODELS)]
    part = fit_kernel(fit_models, peak, bw, "3 models")
    for label, e in (("H100 kernel, all 6 models", full), ("H100 kernel, 3 fit models only", part)):
        print(
            f"- {label}: η_c {e.compute_efficiency:.3f}, η_m {e.memory_efficiency:.3f}, "
            f"p {e.overlap_exponent:.3f}, t_floor {e.floor_s * 1e6:.2f} µs"
        )
    small_tp = data.gemms[data.gemms["tp"] <= 2]
    large_tp = data.gemms[data.gemms["tp"] >= 4]
    by_tp = fit_kernel(small_tp, peak, bw, "TP 1-2")
    held = accuracy(large_tp["measured_s"], predict_gemms(large_tp, peak, bw, by_tp))
    print(
        f"- H100 kernel fitted on TP 1–2 only: η_c {by_tp.compute_efficiency:.3f}, "
        f"η_m {by_tp.memory_efficiency:.3f}, "
        f"p {by_tp.overlap_exponent:.3f}, t_floor {by_tp.floor_s * 1e6:.2f} µs; on the held-out TP 4–8 GEMMs "
        f"({held.count:,}): median {held.median:.3f}, p90 {held.p90:.3f}"
    )
    from infersight.theory.calibration import fit_vector_floor

    floor = fit_vector_floor(data.adds, bw, full.memory_efficiency)
    print(f"- H100 vector-kernel floor (residual add, M ≤ 64): {floor * 1e6:.2f} µs")
    h = data.h100_dgx.assign(link=_link("nvlink4_h100"))
    pw = data.h100_pairwise.assign(link=pairwise_links(data.h100_pairwise))
    both = pd.concat([h, pw], ignore_index=True)
    c = fit_collective(both, both["link"].to_numpy(), "H100")
    one = fit_collective(load_oneshot_latencies(ONESHOT), _link("nvlink4_h100"), "one-shot")
    print(f"- H100 one-shot custom all-reduce: α {one.alpha_s * 1e6:.2f} µs, η_link {one.bus_efficiency:.3f}")
    print(f"- H100 all-reduce (DGX + pairs): α {c.alpha_s * 1e6:.1f} µs, η_link {c.bus_efficiency:.3f}")
    a = data.a100_dgx
    cross = a["ranks_per_node"] < a["ranks"]
    intra = a[~cross & a["ranks"].isin([2, 8])]
    ci = fit_collective(intra, _link("nvlink3_a100"), "A100")
    print(
        f"- A100 in-node all-reduce (2 and 8 ranks): α {ci.alpha_s * 1e6:.1f} µs, "
        f"η_link {ci.bus_efficiency:.3f}"
    )
    net = a[cross & a["ranks"].isin([2, 8])]
    cn = fit_collective(net, _link("ib_hdr_200"), "network")
    print(
        f"- A100 cross-node all-reduce (2 ranks/2 nodes, 8/2): α {cn.alpha_s * 1e6:.1f} µs, "
        f"η {cn.bus_efficiency:.3f}"
    )


def time_ops(rows: int) -> None:
    """Seconds for api.predict_ops on ``rows`` random GEMM / all-reduce shapes written to a CSV."""
    from infersight import api

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ops.csv"
        lines = ["id,op,m,n,k,bytes,ranks"]
        for i in range(rows):
            if i % 4 == 3:
                lines.append(
                    f"r{i},allreduce,,,,{int(rng.integers(1024, 1 << 28))},{int(rng.choice([2, 4, 8, 16]))}"
                )
            else:
                m, n, k = (int(x) for x in rng.integers(1, 16384, size=3))
                lines.append(f"g{i},gemm,{m},{n},{k},,")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        start = time.perf_counter()
        result = api.predict_ops(path, gpu="h100", dtype="bf16")
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        text = result.model_dump_json()
        dump = time.perf_counter() - start
    print(
        f"\n### predict_ops speed\n\n- {rows:,} rows: {elapsed:.2f} s (read + validate + predict), "
        f"JSON {dump:.2f} s, {len(text) / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the measured/vidur folder")
    parser.add_argument("--fit", action="store_true", help="refit the figures and print them")
    parser.add_argument("--ops-rows", type=int, default=0, help="time predict_ops on this many rows")
    args = parser.parse_args()
    data = load_vidur(args.data)
    kernel = time_model_params("H100").kernel
    print(
        f"H100 kernel figures in use: η_c {kernel.compute_efficiency}, η_m {kernel.memory_efficiency}, "
        f"p {kernel.overlap_exponent}, t_floor {kernel.floor_s * 1e6:g} µs, "
        f"vector floor {kernel.vector_floor_s * 1e6:g} µs"
    )
    print_table("H100 fp16 GEMMs (21,924 measured shapes)", gemm_table(data, None), gemm_table(data, kernel))
    print_table("NCCL all-reduce", allreduce_table(data, old=True), allreduce_table(data))
    oneshot = load_oneshot_latencies(ONESHOT)
    acc = oneshot_accuracy(oneshot, time_model_params("H100").oneshot)
    print(
        f"\nOne-shot custom all-reduce (SGLang PR #2904, H100, {acc.count} points): "
        f"median {acc.median:.3f}, p90 {acc.p90:.3f}, bias {acc.bias:+.3f}"
    )
    if args.fit:
        refit(args.data)
    if args.ops_rows:
        time_ops(args.ops_rows)


if __name__ == "__main__":
    main()
