"""Multi-rank view: per-rank busy/idle/comm, clock alignment, collective waits, stragglers.

Participants are the ranks of a set of per-rank traces (one file per rank, the device that ran
most kernels), or the devices of one multi-GPU trace (one nsys export of several GPUs).

Clock alignment. Ranks on different hosts have different clocks; collectives give a common
signal: a collective (all-reduce, all-gather, all-to-all, ...) cannot finish on any member
before the last member's data has arrived, so its kernels **end** at nearly the same instant on
every rank, while they **start** whenever each rank gets there. Collectives are matched across
ranks by (collective type, ordinal: the k-th AllReduce of every rank); the offset of rank r is
the median over matched collectives of (end on the reference rank − end on r), the reference
being the lowest rank. The median ignores the few collectives that mismatch. Devices of one
trace share its clock: offset 0. When an offset is larger than a step (median ProfilerStep
duration), the ranks' captures do not cover the same steps, ordinal matching is unreliable and
wait times are not reported.

Waits. After alignment, at each matched collective the last rank to start sets the pace: every
other rank waits (latest start − own start) inside the collective; the rank arriving last most
often, by a margin, is the straggler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.categories import categorize
from infersight.analyses.window import analysis_window
from infersight.errors import InputError
from infersight.model import Trace
from infersight.overlap.comm import comm_overlap
from infersight.overlap.comm_args import CommArgs, comm_args, parse_kernel_name
from infersight.overlap.copies import comm_kernel_mask
from infersight.overlap.results import MultiRankView, RankRow
from infersight.overlap.rules_data import threshold

STEP_RANGE = re.compile(r"^ProfilerStep#\d+$")
MOE_CATEGORY = "MoE"
# Above this share of matched collectives with impossible waits, the matching is called rough.
MAX_IMPLAUSIBLE_WAIT_SHARE = 0.25
ALIGNMENT_METHOD = (
    "offset = median over matched collectives (same type, same ordinal) of the difference of their "
    "kernel END times to the lowest rank (collectives finish together on all members); devices of one "
    "trace share its clock"
)


@dataclass
class Participant:
    """One rank (or one device of a multi-GPU trace) and its communication kernels."""

    label: str
    rank: int
    trace: Trace
    device: int
    comm: pd.DataFrame  # collective, start, end, ordinal; sorted by start


def participants(traces: list[Trace]) -> tuple[list[Participant], bool, list[str]]:
    """The participants, whether they share one clock, and notes. InputError for unusable sets."""
    notes: list[str] = []
    if len(traces) == 1:
        trace = traces[0]
        devices = sorted(int(d) for d in np.unique(trace.kernels["device"].to_numpy()))
        if len(devices) < 2:
            raise InputError(
                trace.source,
                "the multi-rank view needs at least two ranks: pass a directory of per-rank traces "
                "or several files (this trace holds one rank and one GPU)",
            )
        return [_participant(trace, d, f"device {d}", d) for d in devices], True, notes
    ranks: dict[int, Trace] = {}
    unranked = [t for t in traces if t.rank is None]
    if unranked:
        names = ", ".join(t.source for t in unranked[:3])
        raise InputError(
            unranked[0].source,
            f"no rank in {len(unranked)} trace(s) ({names}): name files rank-N / TP-N or record "
            "distributedInfo.rank, so ranks can be compared",
        )
    for trace in traces:
        assert trace.rank is not None
        if trace.rank in ranks:
            raise InputError(
                trace.source,
                f"rank {trace.rank} appears twice (also in {ranks[trace.rank].source}): duplicated rank",
            )
        ranks[trace.rank] = trace
    out = []
    for rank in sorted(ranks):
        trace = ranks[rank]
        if trace.kernels.empty:
            raise InputError(trace.source, f"rank {rank}: no GPU kernels in the trace")
        used, counts = np.unique(trace.kernels["device"].to_numpy(np.int64), return_counts=True)
        device = int(used[counts.argmax()])  # the rank's GPU: the one that ran most kernels
        out.append(_participant(trace, device, f"rank {rank}", rank))
    return out, False, notes


def _participant(trace: Trace, device: int, label: str, rank: int) -> Participant:
    k = trace.kernels
    mask = comm_kernel_mask(trace) & (k["device"].to_numpy() == device)
    comm = k[mask]
    rows = np.flatnonzero(mask)
    args, _ = comm_args(trace, rows) if mask.any() else ({}, None)
    names = comm["name"].astype(str).to_numpy()
    parsed = {n: parse_kernel_name(n) for n in set(names)}
    found = [args.get(row) for row in rows.tolist()]
    frame = pd.DataFrame(
        {
            "collective": [
                (a.collective if a is not None and a.collective else None) or parsed[n][0] or "unknown"
                for a, n in zip(found, names, strict=True)
            ],
            "start": comm["start"].to_numpy(np.int64),
            "end": comm["end"].to_numpy(np.int64),
            "in_bytes": [_in_bytes(a) for a in found],
        }
    ).sort_values("start", kind="stable")
    frame["ordinal"] = frame.groupby("collective").cumcount()
    return Participant(label, rank, trace, device, frame.reset_index(drop=True))


def _in_bytes(found: CommArgs | None) -> float:
    return float(found.in_bytes) if found is not None and found.in_bytes else np.nan


def multi_rank_view(traces: list[Trace]) -> MultiRankView:
    """Per-rank table, clock offsets, waits and straggler of a set of ranks."""
    parts, shared_clock, notes = participants(traces)
    world, missing = _missing_ranks(parts, shared_clock)
    if missing:
        shown = ", ".join(str(r) for r in missing[:10]) + (" …" if len(missing) > 10 else "")
        notes.append(
            f"{len(missing)} of {world} ranks have no trace (missing: {shown}); the comparison covers "
            f"ranks {', '.join(str(p.rank) for p in parts)} only"
        )
    matched = _matched(parts, notes)
    offsets = _offsets(parts, matched, shared_clock)
    step = _step_ns(parts)
    ok, alignment_note = _check_offsets(parts, offsets, step, matched, shared_clock)
    waits = _waits(parts, matched, offsets) if ok else None
    rough = False
    if waits is not None:
        suspicious = _waits_beyond_kernels(parts, matched, offsets)
        rough = suspicious > MAX_IMPLAUSIBLE_WAIT_SHARE * len(matched)
        if rough:
            notes.append(
                f"at {suspicious} of {len(matched)} matched collectives a rank would wait longer than its "
                "kernel lasted: the ranks' kernels do not pair up one to one (sampled or differently "
                "windowed captures), so waits and stragglers are rough"
            )
    rows = [_row(p, offsets.get(p.rank), matched, waits) for p in parts]
    view = MultiRankView(
        ranks=rows,
        world_size=world,
        missing_ranks=missing,
        alignment_method="shared clock (one trace)" if shared_clock else ALIGNMENT_METHOD,
        alignment_ok=ok,
        alignment_note=alignment_note,
        step_ns=step,
        matched_collectives=len(matched),
        waits_rough=rough,
        notes=notes,
    )
    view.straggler_rank = straggler(view)
    return view


def _missing_ranks(parts: list[Participant], shared_clock: bool) -> tuple[int | None, list[int]]:
    if shared_clock:
        return len(parts), []
    worlds = {str(p.trace.metadata.get("distributedInfo.world_size", "")) for p in parts}
    present = {p.rank for p in parts}
    only = worlds.pop() if len(worlds) == 1 else ""
    world = int(only) if only.isdigit() else None
    upper = world if world is not None else max(present) + 1
    return world, sorted(set(range(upper)) - present)


def _matched(parts: list[Participant], notes: list[str]) -> pd.DataFrame:
    """(collective, ordinal) pairs that every participant has, with per-rank start/end columns."""
    keys: set[tuple[str, int]] | None = None
    for p in parts:
        mine = {(str(c), int(o)) for c, o in zip(p.comm["collective"], p.comm["ordinal"], strict=True)}
        keys = mine if keys is None else keys & mine
    counts = {p.rank: {str(c): int(n) for c, n in p.comm.groupby("collective").size().items()} for p in parts}
    types = {c for per in counts.values() for c in per}
    for collective in sorted(types):
        per_rank = {r: per.get(collective, 0) for r, per in counts.items()}
        if len(set(per_rank.values())) > 1:
            listed = ", ".join(f"{r}: {n}" for r, n in per_rank.items())
            notes.append(
                f"{collective} kernel counts differ between ranks ({listed}); only the first "
                f"{min(per_rank.values())} are matched"
            )
    frame = pd.DataFrame(sorted(keys or set()), columns=["collective", "ordinal"])
    for p in parts:
        frame = frame.merge(
            p.comm[["collective", "ordinal", "start", "end"]].rename(
                columns={"start": f"start_{p.rank}", "end": f"end_{p.rank}"}
            ),
            on=["collective", "ordinal"],
            how="left",
        )
    return frame


def _offsets(parts: list[Participant], matched: pd.DataFrame, shared_clock: bool) -> dict[int, int]:
    if shared_clock:
        return {p.rank: 0 for p in parts}
    if matched.empty:
        return {}
    ref = parts[0].rank
    return {
        p.rank: int(
            np.median(matched[f"end_{ref}"].to_numpy(np.int64) - matched[f"end_{p.rank}"].to_numpy(np.int64))
        )
        for p in parts
    }


def _step_ns(parts: list[Participant]) -> int | None:
    durations = []
    for p in parts:
        r = p.trace.ranges
        names = r["name"].astype(str)
        steps = r[names.str.match(STEP_RANGE.pattern).to_numpy()]
        durations.extend((steps["end"] - steps["start"]).tolist())
    return int(np.median(durations)) if durations else None


def _check_offsets(
    parts: list[Participant], offsets: dict[int, int], step: int | None, matched: pd.DataFrame, shared: bool
) -> tuple[bool, str | None]:
    if matched.empty:
        return (
            False,
            "no collective appears on every rank: clocks cannot be aligned and waits are not measured",
        )
    if shared:
        return True, None
    if step is None:
        return True, "no ProfilerStep ranges: clock offsets could not be checked against the step length"
    worst = max(parts, key=lambda p: abs(offsets[p.rank]))
    if abs(offsets[worst.rank]) > step:
        return False, (
            f"clock offset of {worst.label} ({abs(offsets[worst.rank]) / 1e6:.1f} ms) is larger than a step "
            f"({step / 1e6:.1f} ms): the ranks' captures do not cover the same steps, so collectives cannot "
            "be "
            "matched reliably — capture all ranks with the same profiler schedule"
        )
    return True, None


@dataclass(frozen=True)
class RankWait:
    """Collective wait of one rank over the matched collectives."""

    wait_ns: int
    late_count: int
    late_mean_ns: float


def _waits(parts: list[Participant], matched: pd.DataFrame, offsets: dict[int, int]) -> dict[int, RankWait]:
    """Per matched collective and rank: wait (latest start − own) and lateness (own − earliest)."""
    aligned = np.stack(
        [matched[f"start_{p.rank}"].to_numpy(np.int64) + offsets[p.rank] for p in parts], axis=1
    )
    latest = aligned.max(axis=1, keepdims=True)
    earliest = aligned.min(axis=1, keepdims=True)
    last = aligned.argmax(axis=1)
    return {
        p.rank: RankWait(
            wait_ns=int((latest[:, 0] - aligned[:, i]).sum()),
            late_count=int((last == i).sum()),
            late_mean_ns=float((aligned[:, i] - earliest[:, 0]).mean()),
        )
        for i, p in enumerate(parts)
    }


def _waits_beyond_kernels(parts: list[Participant], matched: pd.DataFrame, offsets: dict[int, int]) -> int:
    """Matched collectives where some rank's wait exceeds its own kernel's duration (impossible
    when the kernels really are the same collective: a rank waits inside its kernel)."""
    aligned = np.stack(
        [matched[f"start_{p.rank}"].to_numpy(np.int64) + offsets[p.rank] for p in parts], axis=1
    )
    durations = np.stack(
        [(matched[f"end_{p.rank}"] - matched[f"start_{p.rank}"]).to_numpy(np.int64) for p in parts], axis=1
    )
    wait = aligned.max(axis=1, keepdims=True) - aligned
    return int((wait > durations).any(axis=1).sum())


def _row(
    p: Participant, offset: int | None, matched: pd.DataFrame, waits: dict[int, RankWait] | None
) -> RankRow:
    window = analysis_window(p.trace, p.device)
    is_comm = comm_kernel_mask(p.trace)
    comm = comm_overlap(p.trace, p.device, window, is_comm, {}, None)
    k = p.trace.kernels
    on = k["device"].to_numpy() == p.device
    moe = on & np.asarray(categorize(k["name"]) == MOE_CATEGORY)
    compute = on & ~is_comm
    cs, ce = intervals.union(k["start"].to_numpy(np.int64)[compute], k["end"].to_numpy(np.int64)[compute])
    a2a = p.comm[p.comm["collective"] == "AllToAll"]["in_bytes"]
    wall = comm.wall_ns
    return RankRow(
        label=p.label,
        rank=p.rank,
        trace=p.trace.source,
        device=p.device,
        wall_ns=wall,
        busy_ns=comm.active_ns,
        idle_ratio=(wall - comm.active_ns) / wall if wall > 0 else 0.0,
        compute_ns=int((ce - cs).sum()),
        comm_ns=comm.comm_time_ns,
        exposed_comm_ns=comm.exposed_ns,
        clock_offset_ns=offset,
        collectives_matched=len(matched),
        wait_ns=waits[p.rank].wait_ns if waits is not None else None,
        late_count=waits[p.rank].late_count if waits is not None else None,
        late_mean_ns=waits[p.rank].late_mean_ns if waits is not None else None,
        moe_kernel_ns=int((k["end"] - k["start"]).to_numpy()[moe].sum()),
        all_to_all_bytes=int(a2a.sum()) if len(a2a) and a2a.notna().all() else None,
    )


def straggler(view: MultiRankView) -> int | None:
    """The rank arriving last at most collectives, if it does so often and by a clear margin."""
    rows = [r for r in view.ranks if r.late_count is not None and r.late_mean_ns is not None]
    if not rows or view.matched_collectives == 0 or not view.alignment_ok:
        return None
    worst = max(rows, key=lambda r: (r.late_count or 0, r.late_mean_ns or 0.0))
    share = (worst.late_count or 0) / view.matched_collectives
    median_duration = median_comm_duration(view)
    if (
        share > threshold("straggler", "late_share")
        and (worst.late_mean_ns or 0.0) >= threshold("straggler", "late_mean_ratio") * median_duration
    ):
        return worst.rank
    return None


def median_comm_duration(view: MultiRankView) -> float:
    """Mean comm kernel time per matched collective over ranks (a scale for lateness)."""
    per_rank = [r.comm_ns / r.collectives_matched for r in view.ranks if r.collectives_matched]
    return float(np.median(per_rank)) if per_rank else 0.0
