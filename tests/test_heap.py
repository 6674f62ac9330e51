"""Freed C-heap memory goes back to the OS (infersight.heap)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from infersight import heap

# In a fresh interpreter (a test worker's heap holds whatever earlier tests left, so free()
# may or may not shrink it on its own) whose free() never gives the heap's top back: 1,600
# blocks of 64 KiB, below glibc's smallest mmap threshold so served from the heap, are touched
# and freed; what the process holds then goes back only by release_freed_memory().
_FRAGMENTED_HEAP = textwrap.dedent(
    """
    import ctypes
    from infersight.heap import release_freed_memory

    def resident():
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * 4096

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(1600)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in blocks:
        libc.free(block)
    before = resident()
    assert release_freed_memory()
    print(before - resident())
    """
)


@pytest.mark.skipif(heap._malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_the_free_pages_inside_a_heap_are_given_back() -> None:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": str(2**40)}
    done = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], env=env, capture_output=True, text=True, check=True
    )
    released = int(done.stdout)
    assert released > 50 * 2**20, f"only {released / 2**20:.0f} MiB of 100 MiB given back"


def test_without_malloc_trim_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    heap._malloc_trim.cache_clear()
    try:
        assert heap.release_freed_memory() is False
    finally:
        heap._malloc_trim.cache_clear()
