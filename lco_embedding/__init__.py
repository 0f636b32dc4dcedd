"""lco-embedding: omnimodal embeddings (text, image, audio, video, mixed) with the LCO-Embedding models.

Example:
    >>> from lco_embedding import LCOEmbedder
    >>> model = LCOEmbedder(tiny_checkpoint)  # e.g. "LCO-Embedding/LCO-Embedding-Omni-3B": 2048-d
    >>> model.encode(["a cat on a mat", {"image": "photos/cat.png"}]).shape
    (2, 64)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lco_embedding.core.errors import (
    CheckpointNotFoundError,
    EncodeReport,
    LCOEmbeddingError,
    LCOError,
    LCOInputError,
)
from lco_embedding.core.outcomes import Outcome

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.rerank import LCOReranker
    from lco_embedding.segments import Segments, SegmentSpec

__version__ = "0.1.0"

# transformers imports torchao (when installed) with every model class, and torchao's registrations make torch log
# a deprecation warning about its own pytree API at each start: not the user's concern. Only that logger is quieted.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

__all__ = [
    "LCOEmbedder",
    "LCOReranker",
    "LCOError",
    "LCOInputError",
    "LCOEmbeddingError",
    "CheckpointNotFoundError",
    "EncodeReport",
    "Outcome",
    "SegmentSpec",
    "Segments",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # LCOEmbedder imports torch and transformers: only when it is asked for, so that `lco-embed --help` and
    # `import lco_embedding.corpus` stay fast.
    if name == "LCOEmbedder":
        from lco_embedding.embedder import LCOEmbedder

        return LCOEmbedder
    if name == "LCOReranker":
        from lco_embedding.rerank import LCOReranker

        return LCOReranker
    if name in ("SegmentSpec", "Segments"):
        from lco_embedding import segments

        return getattr(segments, name)
    raise AttributeError(f"module 'lco_embedding' has no attribute {name!r}")
