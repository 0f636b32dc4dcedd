"""Scale-out on Ray Data: :func:`embed_dataset`, and the Ray side of ``lco-embed encode --ray``.

Both run ``map_batches`` with a callable class, :class:`EmbedBatch`, so that each actor loads the model once and
embeds batch after batch; Ray Data streams the blocks, applies back-pressure, and re-runs the tasks of an actor
that dies (a task's output is kept only when the whole task succeeds, so every row comes out exactly once).

``pip install 'lco-embedding[ray]'``. On a cluster, every worker must be able to read the media: shared storage,
URLs, or bytes in the dataset.

Does not choose the number of actors for you on :func:`embed_dataset`: give ``concurrency`` (and
``num_gpus_per_worker`` on GPUs).
"""

from __future__ import annotations

from lco_embedding.distributed.dataset import ColumnItems, EmbedBatch, PickledItems, embed_dataset
from lco_embedding.distributed.ray_runner import RayJob, RayOptions, RayRunner

__all__ = ["ColumnItems", "EmbedBatch", "PickledItems", "RayJob", "RayOptions", "RayRunner", "embed_dataset"]
