"""The batch planner: group items of similar length into batches under a token budget.

A batch costs ``len(batch) * longest(batch)`` tokens once padded, plus a fixed cost per forward pass.
:func:`plan_batches` sorts items by length (longest first, so an out-of-memory shows up on the first batch, not
after an hour) and cuts them into the batches of least total cost within ``max_tokens`` and ``batch_size``.
:func:`default_max_tokens` and :func:`default_batch_overhead` pick the budget and the fixed cost for a device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CPU_MAX_TOKENS", "padded_tokens", "plan_batches", "default_batch_overhead", "default_max_tokens"]

CPU_MAX_TOKENS = 8192
"""Default token budget on CPU (and MPS): beyond a few thousand tokens a bigger CPU batch is not faster."""

_CUDA_MIN_TOKENS = 4096
_CUDA_MAX_TOKENS = 131072


def padded_tokens(lengths: Sequence[int]) -> int:
    """Tokens a batch of sequences of these lengths costs once padded to the longest."""
    return len(lengths) * max(lengths) if lengths else 0


def plan_batches(
    lengths: Sequence[tuple[int, int]], max_tokens: int, batch_size: int, batch_overhead: int = 0
) -> list[list[int]]:
    """Cut ``(key, length)`` pairs into batches that waste the least compute on padding.

    Items are sorted by length, longest first; batches are runs of that order (for a padded cost this loses
    nothing). Among all such cuts, a dynamic program picks the one with the least total cost, a batch costing
    ``len(batch) * longest + batch_overhead``: ``batch_overhead`` (in tokens) is the fixed cost of one forward pass,
    which makes merging short items worth a little padding (large on a GPU, small on a CPU). Limits: at most
    ``batch_size`` items and ``max_tokens`` padded tokens per batch; an item longer than ``max_tokens`` gets a batch
    of its own.

    Args:
        lengths: ``(key, length in tokens)`` for each item; keys are returned, lengths only steer the plan.
        max_tokens: Budget of one batch in padded tokens (``len(batch) * longest``).
        batch_size: Most items in one batch.
        batch_overhead: Fixed cost of one forward pass, in tokens.

    Returns:
        Lists of keys, longest items first. Every key appears exactly once.

    Example:
        >>> plan_batches([(0, 10), (1, 500), (2, 12), (3, 480)], max_tokens=1000, batch_size=8, batch_overhead=64)
        [[1, 3], [2, 0]]
    """
    if max_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_tokens and batch_size must be positive, got {max_tokens} and {batch_size}.")
    order = sorted(lengths, key=lambda pair: -pair[1])
    n = len(order)
    # best[j]: least cost of the first j items; start[j]: where the last batch of that plan begins.
    best = [0] + [0] * n
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        best[j] = -1
        for i in range(j - 1, max(j - batch_size, 0) - 1, -1):
            size, longest = j - i, order[i][1]
            if size > 1 and size * longest > max_tokens:
                break  # earlier starts are longer still
            cost = best[i] + size * longest + batch_overhead
            if best[j] < 0 or cost < best[j]:
                best[j], start[j] = cost, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append([key for key, _ in order[start[j] : j]])
        j = start[j]
    return batches[::-1]


def default_max_tokens(device: torch.device, hidden_size: int, intermediate_size: int, dtype: torch.dtype) -> int:
    """The default ``max_tokens_per_batch`` for a device.

    CPU and MPS: :data:`CPU_MAX_TOKENS`. CUDA: half of the memory free once the model is loaded, divided by the
    transient activation memory of one token in one decoder layer (``(3 * intermediate + 8 * hidden) * bytes``: the
    MLP's three projections and the attention's projections and residuals; no layer's output is kept), rounded
    down to a power of two and clamped to [4096, 131072]. A budget that turns out too high is lowered on the fly by
    out-of-memory recovery.
    """
    if device.type != "cuda":
        return CPU_MAX_TOKENS
    free, _ = torch.cuda.mem_get_info(device)
    per_token = (3 * intermediate_size + 8 * hidden_size) * torch.finfo(dtype).bits // 8
    budget = max(1, free // 2 // max(per_token, 1))
    power = 1 << (int(budget).bit_length() - 1)
    return int(min(max(power, _CUDA_MIN_TOKENS), _CUDA_MAX_TOKENS))


def default_batch_overhead(device: torch.device) -> int:
    """Fixed cost of one forward pass in tokens, for :func:`plan_batches`: 32 on CPU, 512 on GPUs; the starting value
    until :class:`~lco_embedding.pipeline.engine.ForwardCosts` has timed enough passes to measure it.

    On a CPU a token costs about the same in a batch of one as in a batch of thirty, so padding is pure waste; a GPU
    runs a batch of short items in nearly the time of one, so merging them is worth some padding.
    """
    return 32 if device.type == "cpu" else 512
