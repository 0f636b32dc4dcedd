"""The batch planner: group items of similar length into batches under a token budget.

A batch costs ``len(batch) * longest(batch)`` tokens once padded. :func:`plan_batches` sorts items by length
(longest first, so an out-of-memory shows up on the first batch, not after an hour) and fills each batch while its
padded cost stays within ``max_tokens`` and its size within ``batch_size``. An item longer than the budget gets a
batch of its own. :func:`default_max_tokens` picks the budget for a device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CPU_MAX_TOKENS", "padded_tokens", "plan_batches", "default_max_tokens"]

CPU_MAX_TOKENS = 8192
"""Default token budget on CPU (and MPS): beyond a few thousand tokens a bigger CPU batch is not faster."""

_CUDA_MIN_TOKENS = 4096
_CUDA_MAX_TOKENS = 131072


def padded_tokens(lengths: Sequence[int]) -> int:
    """Tokens a batch of sequences of these lengths costs once padded to the longest."""
    return len(lengths) * max(lengths) if lengths else 0


def plan_batches(lengths: Sequence[tuple[int, int]], max_tokens: int, batch_size: int) -> list[list[int]]:
    """Cut ``(key, length)`` pairs into batches of similar length.

    Args:
        lengths: ``(key, length in tokens)`` for each item; keys are returned, lengths only steer the plan.
        max_tokens: Budget of one batch in padded tokens (``len(batch) * longest``).
        batch_size: Most items in one batch.

    Returns:
        Lists of keys, longest items first. Every key appears exactly once.

    Example:
        >>> plan_batches([(0, 10), (1, 500), (2, 12), (3, 480)], max_tokens=1000, batch_size=8)
        [[1, 3], [2, 0]]
    """
    if max_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_tokens and batch_size must be positive, got {max_tokens} and {batch_size}.")
    order = sorted(lengths, key=lambda pair: -pair[1])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for key, length in order:
        if current and (len(current) >= batch_size or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        if not current:
            longest = length
        current.append(key)
    if current:
        batches.append(current)
    return batches


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
