"""The contrastive loss: InfoNCE over cosine similarities with in-batch and hard negatives, across processes.

Each query's candidates are every document of the global batch: all positives and all hard negatives, from every
process under ``torch.distributed``. Documents are all-gathered with a gradient-carrying gather (its backward
sums each process's gradient for the local rows), so together with a gradient *sum* across processes the update
equals that of one process holding the whole global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["gather_rows", "info_nce_loss"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherRows(torch.autograd.Function):
    """All-gather rows of possibly different counts per process; backward returns the summed gradient of the
    local rows."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, sizes: list[int]) -> torch.Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        padded = rows.new_zeros((max(sizes), *rows.shape[1:]))
        padded[: rows.shape[0]] = rows
        gathered = [torch.zeros_like(padded) for _ in range(world)]
        dist.all_gather(gathered, padded.contiguous())
        ctx.sizes, ctx.rank = sizes, rank
        return torch.cat([g[:n] for g, n in zip(gathered, sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_rows(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Rows of every process, in rank order (gradients flow back to each process's own rows), and the offset of
    this process's rows in them. Without ``torch.distributed``: ``(rows, 0)``."""
    if not _distributed():
        return rows, 0
    counts = [torch.zeros(1, dtype=torch.long, device=rows.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([rows.shape[0]], device=rows.device))
    sizes = [int(c.item()) for c in counts]
    return _GatherRows.apply(rows, sizes), sum(sizes[: dist.get_rank()])


def info_nce_loss(
    queries: torch.Tensor,
    documents: torch.Tensor,
    *,
    temperature: float = 0.03,
    global_queries: int | None = None,
) -> torch.Tensor:
    """InfoNCE of ``queries[i]`` against ``documents``, whose first ``len(queries)`` rows are the positives in
    order (row ``i`` for query ``i``) and whose other rows are hard negatives.

    Rows are L2-normalised (cosine similarity) and scaled by ``1 / temperature``. Under ``torch.distributed``,
    documents are gathered from all processes and each query's positive is found at its process's offset.

    Args:
        queries: ``[B, d]`` anchor embeddings of this process.
        documents: ``[B + negatives, d]`` positive then negative embeddings of this process.
        temperature: Softmax temperature (the authors': 0.03).
        global_queries: Queries in the whole global batch; the loss is this process's sum over its queries
            divided by it, so that summing losses and gradients over processes gives the global mean. Default:
            ``len(queries)`` (the mean, for one process).
    """
    if documents.shape[0] < queries.shape[0]:
        raise ValueError(f"documents must start with one positive per query: {documents.shape[0]} < {len(queries)}.")
    queries = F.normalize(queries.float(), dim=-1)
    documents = F.normalize(documents.float(), dim=-1)
    documents, offset = gather_rows(documents)
    scores = queries @ documents.T / temperature
    labels = torch.arange(queries.shape[0], device=queries.device) + offset
    return F.cross_entropy(scores, labels, reduction="sum") / (global_queries or queries.shape[0])
