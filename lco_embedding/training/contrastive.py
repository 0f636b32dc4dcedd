"""One contrastive training step, with or without gradient caching (GradCache, Gao et al. 2021).

Without caching, every query and every document of the batch goes through the model at once, and the loss is
back-propagated through all of them: memory grows with the batch. With caching (``mini_batch_size``):

1. embed all items in mini-batches without building graphs, remembering the random state before each;
2. compute the loss on those embeddings and its gradient with respect to each embedding;
3. embed each mini-batch again, with the remembered random state (the same dropout masks), and back-propagate
   that mini-batch's embedding gradients into the weights.

Loss and weight gradients equal the uncached step's (up to float rounding), while only one mini-batch's graph is
ever in memory, so the paper's global batches (~1,000) fit on one GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lco_embedding.pipeline.featurize import Features
from lco_embedding.training.loss import info_nce_loss

__all__ = ["RandomState", "contrastive_backward"]

Encode = Callable[[Sequence[Features]], torch.Tensor]
"""Embeds a list of featurized items: ``[n, d]`` with gradients."""


@dataclass
class RandomState:
    """Torch's random state on the CPU and on a CUDA device, to replay dropout exactly."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None
    device: torch.device

    @classmethod
    def capture(cls, device: torch.device) -> RandomState:
        """The current random state (CPU, and ``device``'s if it is a CUDA device)."""
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(cpu=torch.get_rng_state(), cuda=cuda, device=device)

    def restore(self) -> None:
        """Make the random state what it was when captured."""
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def contrastive_backward(
    encode: Encode,
    queries: Sequence[Features],
    documents: Sequence[Features],
    *,
    temperature: float = 0.03,
    mini_batch_size: int | None = None,
    global_queries: int | None = None,
    device: torch.device | None = None,
) -> float:
    """Compute the InfoNCE loss of one batch and add its gradients to the trainable weights' ``.grad``.

    Args:
        encode: Embeds featurized items (with gradients).
        queries: The anchors of this process's share of the batch.
        documents: Their positives, in the same order, then all hard negatives.
        temperature: InfoNCE temperature.
        mini_batch_size: Items per forward pass with gradient caching; ``None`` (or one at least as large as each
            side) runs the plain step.
        global_queries: Anchors in the global batch (under ``torch.distributed``); see
            :func:`~lco_embedding.training.loss.info_nce_loss`.
        device: The model's device, whose random state is replayed (default: CPU only).

    Returns:
        This process's loss (its share of the global mean).
    """
    if mini_batch_size is None or mini_batch_size >= max(len(queries), len(documents)):
        loss = info_nce_loss(encode(queries), encode(documents), temperature=temperature, global_queries=global_queries)
        loss.backward()
        return float(loss.detach())
    device = device or torch.device("cpu")
    chunks = [*_chunks(queries, mini_batch_size), *_chunks(documents, mini_batch_size)]
    states, cached = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandomState.capture(device))
            cached.append(encode(chunk))
    reps = torch.cat(cached).float().requires_grad_(True)
    loss = info_nce_loss(
        reps[: len(queries)], reps[len(queries) :], temperature=temperature, global_queries=global_queries
    )
    loss.backward()
    assert reps.grad is not None
    grads = reps.grad.split([len(chunk) for chunk in chunks])
    after = RandomState.capture(device)
    for chunk, state, grad in zip(chunks, states, grads, strict=True):
        state.restore()
        torch.dot(encode(chunk).float().flatten(), grad.flatten()).backward()
    after.restore()
    return float(loss.detach())
