"""Terminal and JSON views of an :class:`OverlapReport` (``infersight overlap`` / ``ranks``).

Layout only: every number comes from the report; formatting reuses render.sections.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infersight.overlap.results import CommOverlap, CopyOverlap, MultiRankView, OverlapReport, RangeOverlap
from infersight.render.findings import print_findings
from infersight.render.sections import (
    fmt_bandwidth,
    fmt_bytes,
    fmt_duration,
    fmt_pct,
)


def render_overlap_json(report: OverlapReport) -> bytes:
    """The report as indented JSON (schema = the pydantic models of overlap.results)."""
    return orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def _who(rank: int | None, device: int, trace: str) -> str:
    return f"rank {rank} · GPU {device}" if rank is not None else f"{Path(trace).name} · GPU {device}"


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", title_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    return table


def copies_table(copies: list[CopyOverlap]) -> Table:
    """Per device and direction: count, bytes, time, bandwidth vs link, hidden vs exposed."""
    table = _table(
        "Copy/compute overlap",
        [
            "device · dir",
            "count",
            "bytes",
            "copy time",
            "GB/s",
            "link",
            "% link",
            "hidden",
            "exposed",
            "pageable",
        ],
    )
    for c in copies:
        who = _who(c.rank, c.device, c.trace)
        if c.na_reason:
            table.add_row(who, "—", "—", "—", "—", "—", "—", "—", "—", c.na_reason)
            continue
        table.add_row(
            Text(who, style="bold"),
            "",
            fmt_bytes(c.copy_bytes),
            fmt_duration(c.copy_time_ns),
            "",
            "",
            "",
            f"{fmt_duration(c.hidden_ns)} ({fmt_pct(c.hidden_ratio, 0)})",
            f"{fmt_duration(c.exposed_ns)} ({fmt_pct(c.exposed_ratio)} of wall)",
            f"eff {fmt_pct(c.serial_efficiency, 0)}",
        )
        for d in c.directions:
            table.add_row(
                f"  {d.direction}",
                str(d.count),
                fmt_bytes(d.bytes),
                fmt_duration(d.time_ns),
                fmt_bandwidth(d.achieved_gb_per_s),
                d.link.name if d.link else "n/a",
                fmt_pct(d.link_ratio, 0),
                fmt_duration(d.hidden_ns),
                fmt_duration(d.exposed_ns),
                str(d.pageable_count),
            )
    return table


def ranges_table(rows: list[RangeOverlap], regex: str | None) -> Table:
    """Per range name: load vs compute and whether the load is hidden."""
    table = _table(
        f"Load vs compute per range ({regex})",
        ["range", "n", "load", "compute", "load/compute", "hidden", "GPU span", "efficiency", "pageable"],
    )
    for r in rows:
        per = max(r.instances, 1)
        table.add_row(
            f"{r.name} (GPU)" if r.attribution == "time" else r.name,
            str(r.instances),
            fmt_duration(r.copy_ns / per),
            fmt_duration(r.compute_ns / per),
            f"{r.load_compute_ratio:.2f}×" if r.load_compute_ratio is not None else "n/a",
            fmt_pct(r.hidden_ratio, 0),
            fmt_duration(r.actual_ns / per),
            f"{r.serial_efficiency:+.0%}" if r.serial_efficiency is not None else "n/a",
            str(r.pageable_count),
        )
    return table


def comm_table(comm: list[CommOverlap]) -> Table:
    """Per rank: comm time, overlap, exposed, M5, and per collective the bandwidths."""
    table = _table(
        "Communication/computation overlap",
        [
            "rank · collective",
            "kernels",
            "comm time",
            "overlapped",
            "exposed",
            "M5",
            "msg",
            "algbw",
            "busbw",
            "% link",
        ],
    )
    for c in comm:
        who = _who(c.rank, c.device, c.trace)
        if c.na_reason:
            table.add_row(who, "0", "—", "—", "—", fmt_pct(c.m5_nccl_ratio), "", "", "", c.na_reason)
            continue
        table.add_row(
            Text(who, style="bold"),
            str(c.comm_kernel_count),
            fmt_duration(c.comm_time_ns),
            fmt_pct(c.overlap_ratio, 0),
            f"{fmt_duration(c.exposed_ns)} ({fmt_pct(c.exposed_ratio)})",
            fmt_pct(c.m5_nccl_ratio),
            "",
            "",
            "",
            "",
        )
        for s in c.collectives:
            algo = "/".join(x for x in (s.algorithm, s.protocol) if x)
            table.add_row(
                f"  {s.collective} {algo}".rstrip(),
                str(s.count),
                fmt_duration(s.time_ns),
                "",
                "",
                "",
                fmt_bytes(s.message_bytes) if s.message_bytes is not None else "n/a",
                fmt_bandwidth(s.algbw_gb_per_s),
                fmt_bandwidth(s.busbw_gb_per_s),
                fmt_pct(s.link_ratio, 0) if s.link_ratio is not None else (s.size_na_reason or "n/a"),
            )
    return table


def ranks_table(view: MultiRankView) -> Table:
    """The per-rank busy / idle / comm / wait table."""
    table = _table(
        "Ranks",
        [
            "rank",
            "wall",
            "busy",
            "idle",
            "compute",
            "comm",
            "exposed comm",
            "clock offset",
            "wait",
            "last at",
        ],
    )
    for r in view.ranks:
        style = "bold red" if r.rank == view.straggler_rank else ""
        table.add_row(
            Text(r.label, style=style),
            fmt_duration(r.wall_ns),
            fmt_duration(r.busy_ns),
            fmt_pct(r.idle_ratio),
            fmt_duration(r.compute_ns),
            fmt_duration(r.comm_ns),
            fmt_duration(r.exposed_comm_ns),
            fmt_duration(r.clock_offset_ns) if r.clock_offset_ns is not None else "n/a",
            fmt_duration(r.wait_ns) if r.wait_ns is not None else "n/a",
            f"{r.late_count}/{view.matched_collectives}" if r.late_count is not None else "n/a",
        )
    return table


def render_overlap(report: OverlapReport, console: Console, *, command: str = "overlap") -> None:
    """Print the report: tables, the multi-rank view, notes and findings."""
    console.print(Text.assemble((f"infersight {command} ", "bold"), report.tool_version))
    if any(not c.na_reason for c in report.copies):
        console.print(copies_table(report.copies))
    if report.ranges:
        console.print(ranges_table(report.ranges, report.range_regex))
    if any(c.na_reason is None for c in report.comm):
        console.print(comm_table(report.comm))
    else:
        console.print(Text("Communication: no NCCL-category kernels in any window", style="dim"))
    if report.multi_rank is not None:
        view = report.multi_rank
        console.print(ranks_table(view))
        console.print(
            Text(
                f"clock alignment: {view.alignment_method}; {view.matched_collectives} collectives matched",
                style="dim",
            )
        )
        if view.alignment_note:
            console.print(Text(view.alignment_note, style="yellow"))
        for note in view.notes:
            console.print(Text(f"note: {note}", style="yellow"))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    print_findings(console, report.findings)
