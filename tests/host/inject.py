"""Build a target trace from a real baseline by injecting a known host delay (test helper)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from infersight.model import Trace

GPU_TABLES = ("kernels", "memcpy", "memset")


def _shift(frame: pd.DataFrame, t: int, delay: int, extend_open: bool) -> pd.DataFrame:
    out = frame.copy()
    s, e = out["start"].to_numpy(np.int64).copy(), out["end"].to_numpy(np.int64).copy()
    after = s >= t
    open_at = (s < t) & (e >= t)
    s[after] += delay
    e[after] += delay
    if extend_open:
        e[open_at] += delay
    out["start"], out["end"] = s, e
    return out


def inject_host_delay(trace: Trace, op_name: str, delay_ns: int) -> Trace:
    """Extend every range named ``op_name`` by ``delay_ns`` and shift everything after it.

    Host ranges open at the op's end (its parents) grow with it; GPU work and API calls that
    start after it move later, as if the host had spent ``delay_ns`` more inside the op.
    """
    target = copy.copy(trace)
    r = trace.ranges
    ends = np.sort(r.loc[(r["name"].astype(str) == op_name).to_numpy(), "end"].to_numpy(np.int64))[::-1]
    assert ends.size, op_name
    tables = {name: trace.table(name) for name in ("kernels", "memcpy", "memset", "api", "ranges")}
    for t in ends.tolist():  # latest first, so earlier injections move later ones along
        for name, frame in tables.items():
            if name == "ranges":
                host = (frame["source"].astype(str) != "gpu_user_annotation").to_numpy()
                shifted_host = _shift(frame[host], t, delay_ns, extend_open=True)
                shifted_gpu = _shift(frame[~host], t, delay_ns, extend_open=False)
                tables[name] = pd.concat([shifted_host, shifted_gpu]).sort_index()
            else:
                tables[name] = _shift(frame, t, delay_ns, extend_open=name == "api")
    for name, frame in tables.items():
        setattr(target, name, frame)
    target.source = trace.source + "#injected"
    return target
