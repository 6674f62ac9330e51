"""Choosing the anchor kernel that marks the layers of a forward pass.

An *anchor event* is a run of consecutive anchor kernels on the anchor's streams (a kernel split
into two launches counts once). The choice is explained in :class:`AnchorChoice.reason` so a
wrong one is visible, and ``--anchor-kernel REGEX`` overrides it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from infersight.errors import InputError
from infersight.layers.kernels import ATTENTION, GEMM, NORM, BoolArray, DeviceKernels, IntArray
from infersight.layers.profiles import AUTO_ATTENTION, Boundary, ModelProfile, check_regex

MIN_SECONDARY_SHARE = 0.25  # a second attention name joins when it occurs >= 1/4 as often as the first


@dataclass(frozen=True)
class Anchor:
    """The chosen anchor: which kernels match, and how layers relate to it."""

    matches: BoolArray  # per device kernel
    pattern: str
    source: str  # "--anchor-kernel" | "profile" | "auto"
    anchors_per_layer: int
    boundary: Boundary
    reason: str
    warnings: tuple[str, ...] = ()


def choose_anchor(kernels: DeviceKernels, profile: ModelProfile, override: str | None) -> Anchor:
    """The anchor from ``--anchor-kernel``, else the profile's, else the automatic choice."""
    warnings: list[str] = []
    if override is not None:
        regex = check_regex(override, "--anchor-kernel")
        matches = _matching(kernels, lambda name: regex.search(name) is not None)
        if matches.any():
            attention_only = bool((kernels.category[matches] == ATTENTION).all())
            boundary: Boundary = "attention_walk_back" if attention_only else "anchor_start"
            per_layer = _per_layer_estimate(kernels, matches)
            return Anchor(
                matches,
                override,
                "--anchor-kernel",
                per_layer,
                boundary,
                f"--anchor-kernel {override!r}; " + _boundary_text(boundary, per_layer),
            )
        warnings.append(
            f"--anchor-kernel {override!r} matches no kernel on device {kernels.device}; "
            "fell back to automatic anchor detection"
        )
    elif profile.anchor != AUTO_ATTENTION:
        regex = check_regex(profile.anchor, f"profile {profile.name}")
        matches = _matching(kernels, lambda name: regex.search(name) is not None)
        if matches.any():
            return Anchor(
                matches,
                profile.anchor,
                "profile",
                profile.anchors_per_layer,
                profile.boundary,
                f"profile {profile.name}: {profile.reason}",
            )
        warnings.append(
            f"profile {profile.name}: its anchor {profile.anchor!r} never occurs; fell back to "
            "automatic anchor detection"
        )
    anchor = _auto_attention(kernels) or _auto_norm(kernels)
    if anchor is None:
        raise _no_anchor(kernels)
    return Anchor(
        anchor.matches,
        anchor.pattern,
        anchor.source,
        anchor.anchors_per_layer,
        anchor.boundary,
        anchor.reason,
        (*warnings, *anchor.warnings),
    )


def _no_anchor(kernels: DeviceKernels) -> InputError:
    """No attention and no periodic norm kernel: the user has to name the anchor."""
    return InputError(
        kernels.trace.source,
        f"device {kernels.device}: no attention kernel and no periodic norm "
        "kernel found to mark layers; pass --anchor-kernel REGEX (a kernel that runs once per layer, "
        "e.g. the input RMSNorm)",
    )


def anchor_events(kernels: DeviceKernels, anchor: Anchor) -> tuple[IntArray, IntArray]:
    """(structural kernel indices, positions of anchor events within them).

    The structural sequence is the device's kernels on the streams that run anchors or attention,
    in start order; side streams (sampling helpers, copies) would otherwise break the layer
    pattern. Consecutive anchor kernels form one event.
    """
    streams = np.unique(kernels.stream[anchor.matches | (kernels.category == ATTENTION)])
    structural = np.flatnonzero(np.isin(kernels.stream, streams)).astype(np.int64)
    hits = np.flatnonzero(anchor.matches[structural]).astype(np.int64)
    if len(hits) == 0:
        return structural, hits
    first_of_run = np.r_[True, np.diff(hits) > 1]
    return structural, hits[first_of_run]


def _matching(kernels: DeviceKernels, predicate: Callable[[str], bool]) -> BoolArray:
    by_name = np.zeros(len(kernels.names), dtype=np.bool_)
    for code, name in enumerate(kernels.names):
        by_name[code] = predicate(name)
    matches: BoolArray = by_name[kernels.name_code]
    return matches


def _separated_by_gemm(kernels: DeviceKernels, mask: BoolArray) -> bool:
    """Whether every two consecutive kernels in ``mask`` have a GEMM between them."""
    gemms_before = np.cumsum(kernels.category == GEMM)
    positions = np.flatnonzero(mask)
    return len(positions) < 2 or bool((np.diff(gemms_before[positions]) > 0).all())


def _auto_attention(kernels: DeviceKernels) -> Anchor | None:
    """Attention kernels by simplified name (template variants of one kernel count together)."""
    counts = np.bincount(kernels.short_code, minlength=len(kernels.short_names))
    short_category = np.zeros(len(kernels.short_names), dtype=np.int64)
    short_category[kernels.short_code] = kernels.category
    ranked = [
        int(code)
        for code in np.argsort(-counts, kind="stable")
        if counts[code] > 0 and short_category[code] == ATTENTION
    ]
    if not ranked:
        return None
    chosen = [ranked[0]]
    for code in ranked[1:]:
        if counts[code] < MIN_SECONDARY_SHARE * counts[chosen[0]]:
            continue
        if _separated_by_gemm(kernels, np.isin(kernels.short_code, [*chosen, code])):
            chosen.append(code)
    matches = np.isin(kernels.short_code, chosen)
    names = ", ".join(kernels.short_names[c] for c in chosen)
    reason = (
        f"auto: attention kernel(s) {names} ({int(matches.sum())} launches) mark the layers — every "
        "decoder layer runs attention once"
    )
    left_out = [kernels.short_names[c] for c in ranked if c not in chosen]
    if left_out:
        reason += f"; other attention kernels not used as anchors: {', '.join(left_out[:4])}"
    reason += "; " + _boundary_text("attention_walk_back", 1)
    codes = np.unique(kernels.name_code[matches])
    pattern = (
        "|".join(_literal(kernels.names[c]) for c in codes)
        if len(codes) <= 4
        else ("|".join(re.escape(kernels.short_names[c]) for c in chosen))
    )
    return Anchor(matches, pattern, "auto", 1, "attention_walk_back", reason)


def _auto_norm(kernels: DeviceKernels) -> Anchor | None:
    counts = kernels.name_counts()
    for code in np.argsort(-counts, kind="stable"):
        if counts[code] < 2 or _name_category(kernels, code) != NORM:
            continue
        matches = kernels.name_code == code
        if _separated_by_gemm(kernels, matches):
            reason = (
                f"auto: no attention kernels; norm kernel {_short_of(kernels, code)} ({int(counts[code])} "
                "launches, a GEMM between every two) marks the layers; " + _boundary_text("anchor_start", 1)
            )
            warning = (
                "no attention kernels found: layers are marked by a norm kernel, so a layer may start at "
                "its post-attention norm rather than its input norm; give --anchor-kernel to be sure"
            )
            return Anchor(
                matches, _literal(kernels.names[code]), "auto", 1, "anchor_start", reason, (warning,)
            )
    return None


def _per_layer_estimate(kernels: DeviceKernels, matches: BoolArray) -> int:
    """Anchor events per layer for a user anchor: the median count between attention kernels (else 1)."""
    attention = np.flatnonzero(kernels.category == ATTENTION)
    hits = np.flatnonzero(matches)
    if len(attention) < 3 or len(hits) == 0:
        return 1
    hits = hits[np.r_[True, np.diff(hits) > 1]]
    between = np.diff(np.searchsorted(hits, attention))
    return max(1, round(float(np.median(between))))


def _boundary_text(boundary: Boundary, per_layer: int) -> str:
    per = f"{per_layer} anchor events per layer; " if per_layer > 1 else ""
    if boundary == "attention_walk_back":
        return (
            per + "a layer opens at its input norm (walk back from attention over RoPE/KV writes and the "
            "q/k/v projection to just after the previous layer's last GEMM, collective or MoE kernel)"
        )
    return per + "a layer opens at its anchor kernel"


def _name_category(kernels: DeviceKernels, code: int) -> int:
    return int(kernels.name_category[code])


def _short_of(kernels: DeviceKernels, code: int) -> str:
    return kernels.short_names[int(kernels.name_short[code])]


def _literal(name: str) -> str:
    return "^" + re.escape(name) + "$"
