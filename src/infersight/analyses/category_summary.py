"""Kernel time per operator category (GEMM, attention, norm, ..., methodology §3) with top kernels."""

from __future__ import annotations

import pandas as pd

from infersight.analyses.kernel_summary import summarize
from infersight.analyses.results import CategoryStat

TOP_KERNELS_PER_CATEGORY = 5


def category_summary(kernels: pd.DataFrame, top: int = TOP_KERNELS_PER_CATEGORY) -> list[CategoryStat]:
    """One row per category, by total time descending; ``kernels`` from ``windowed_kernels``."""
    if kernels.empty:
        return []
    return category_stats(summarize(kernels, "category"), kernels, top)


def category_stats(stats: pd.DataFrame, durations: pd.DataFrame, top: int) -> list[CategoryStat]:
    """The rows: ``stats`` from ``summarize`` by ``category``; ``durations`` has
    ``category``/``simple``/``duration`` columns (a row per kernel, or per full name with its
    total) and ranks each category's ``top`` simplified names."""
    per_name = (
        durations.groupby(["category", "simple"], observed=True)["duration"]
        .sum()
        .reset_index()
        .sort_values("duration", ascending=False)
    )
    tops = {
        str(cat): [str(n) for n in grp["simple"].head(top)]
        for cat, grp in per_name.groupby("category", observed=True, sort=False)
    }
    return [
        CategoryStat(
            category=str(cat),
            count=int(row["count"]),
            total_ns=int(row["sum"]),
            share=float(row["share"]),
            avg_ns=float(row["mean"]),
            median_ns=float(row["median"]),
            min_ns=int(row["min"]),
            max_ns=int(row["max"]),
            std_ns=float(row["std"]),
            top_kernels=tops.get(str(cat), []),
        )
        for cat, row in stats.iterrows()
    ]
