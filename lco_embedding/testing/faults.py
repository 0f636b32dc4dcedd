"""Fault and memory helpers for tests: a simulated out-of-memory on the forward pass, and the peak resident-memory
growth of a call (see :mod:`lco_embedding.testing`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["peak_memory_growth", "simulate_oom"]


def peak_memory_growth(function: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``function`` and return what it returned (or the exception it raised) and how far this process's peak
    resident memory rose above what it held before, in bytes. The high-water mark is reset first (Linux'
    ``/proc/self/clear_refs``), so earlier peaks do not hide this one.

    Example:
        >>> import mmap
        >>> def touch_50_mb():  # fresh pages (the heap may hold freed ones, which cost no growth)
        ...     block = mmap.mmap(-1, 50 * 2**20)
        ...     for offset in range(0, len(block), mmap.PAGESIZE):
        ...         block[offset] = 1
        ...     return block
        >>> outcome, grown = peak_memory_growth(touch_50_mb)
        >>> grown > 40 * 2**20
        True
    """

    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"/proc/self/status has no {field}")

    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    try:
        outcome: Any = function()
    except Exception as e:  # the caller asserts on it
        outcome = e
    return outcome, status("VmHWM") - before


@contextmanager
def simulate_oom(model: LCOEmbedder, max_padded_tokens: int) -> Iterator[list[tuple[int, ...]]]:
    """Make every forward pass of ``model`` whose padded size exceeds ``max_padded_tokens`` fail with
    ``torch.OutOfMemoryError``, as a device with that little memory would.

    Yields the list of batches (tuples of input positions) that were refused, for assertions.

    Example:
        >>> texts = ["a few words", "a few more words than that"] * 4
        >>> with simulate_oom(model, 200) as refused:
        ...     out = model.encode(texts)
        >>> len(refused) > 0, out.shape  # the big batches were refused, split and retried
        (True, (8, 64))
    """
    import torch

    refused: list[tuple[int, ...]] = []

    def fault(batch) -> None:
        cost = len(batch) * max(features.length for features in batch)
        if cost > max_padded_tokens:
            refused.append(tuple(features.index for features in batch))
            raise torch.OutOfMemoryError(
                f"simulated out of memory: {cost} padded tokens > {max_padded_tokens} (lco_embedding.testing)"
            )

    previous = model.parts.fault
    model.parts.fault = fault
    try:
        yield refused
    finally:
        model.parts.fault = previous
