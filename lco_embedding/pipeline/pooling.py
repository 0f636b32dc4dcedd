"""Last-token pooling: the final hidden state of each sequence's last real token."""

from __future__ import annotations

import torch

__all__ = ["last_token_indices", "last_token_pool", "rows_at"]


def last_token_indices(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of the last non-padding token of each row, for left or right padding alike.

    Raises:
        ValueError: If a row has no real token.
    """
    mask = attention_mask.bool()
    if not mask.any(dim=1).all():
        raise ValueError("a sequence in the batch has no tokens (all padding).")
    length = mask.shape[1]
    return length - 1 - mask.flip(dims=[1]).int().argmax(dim=1)


def last_token_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Gather ``hidden_states[i, last_real_token(i)]``.

    Args:
        hidden_states: ``(batch, seq, dim)`` or ``(batch, layers, seq, dim)``.
        attention_mask: ``(batch, seq)``, 1 for real tokens.

    Returns:
        ``(batch, dim)`` or ``(batch, layers, dim)``.

    Example:
        >>> h = torch.arange(12.).reshape(2, 3, 2)
        >>> last_token_pool(h, torch.tensor([[1, 1, 0], [0, 1, 1]])).tolist()
        [[2.0, 3.0], [10.0, 11.0]]
    """
    return rows_at(hidden_states, last_token_indices(attention_mask))


def rows_at(hidden_states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Gather ``hidden_states[i, positions[i]]`` (every layer's, for ``(batch, layers, seq, dim)`` states).

    Example:
        >>> h = torch.arange(12.).reshape(2, 3, 2)
        >>> rows_at(h, torch.tensor([0, 2])).tolist()
        [[0.0, 1.0], [10.0, 11.0]]
    """
    positions = positions.to(hidden_states.device)
    rows = torch.arange(hidden_states.shape[0], device=hidden_states.device)
    if hidden_states.ndim == 4:
        return hidden_states[rows, :, positions]
    return hidden_states[rows, positions]
