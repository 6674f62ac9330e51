"""Give the memory that freed arrays leave inside the C heap back to the operating system.

glibc's ``malloc`` serves arrays below its mmap threshold (which grows to 32 MB once a mapped
block is freed) from heaps it keeps: a bulk read that parses a table slice by slice leaves
hundreds of freed 2 MB slices inside those heaps when it joins them into whole columns, and
``free`` returns only the top of a heap. The process's resident size then counts memory nobody
uses: reading 1M kernels and 4.8M NVTX ranges peaked at ~1,330 MiB RSS with ~460 MB of it
free inside the heaps. ``malloc_trim(0)`` releases every free page, wherever it lies, at the
cost of one walk over the free lists (milliseconds), so it is called where a large number of
blocks has just been freed. Elsewhere (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:  # the symbols already loaded into the process, the C library's among them
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others: no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the free pages of the C heaps to the OS; True when the C library can do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
