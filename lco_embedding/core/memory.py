"""Keeping the process's memory what its data needs, where glibc's allocator would keep more.

glibc serves allocations above its mapping threshold with their own mappings, returned to the system when freed;
but after the first such free it raises the threshold to that size (up to 32 MiB), and from then on arrays of a few
megabytes come from the heap, whose freed space is rarely returned. A stream of large short-lived arrays (weights
staged while quantizing, windows of long media) then leaves the resident size far above what is alive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["large_allocations_mapped"]

_M_MMAP_THRESHOLD = -3
_GLIBC_CEILING = 32 << 20
"""glibc's largest dynamic mapping threshold (64-bit), where it would have settled."""


@contextmanager
def large_allocations_mapped(active: bool = True, threshold: int = 1 << 20) -> Iterator[None]:
    """While inside: every allocation of ``threshold`` bytes or more is its own mapping, returned to the system
    when freed; afterwards the heap is trimmed and the threshold fixed at glibc's ceiling (32 MiB). Does nothing
    when ``active`` is False or the process does not run on glibc."""
    libc = _glibc() if active else None
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    try:
        yield
    finally:
        libc.malloc_trim(0)
        libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_CEILING)


def _glibc() -> Any:
    """glibc, when this process runs on it (None elsewhere)."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None
