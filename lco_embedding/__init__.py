"""lco-embedding: omnimodal embeddings (text, image, audio, video, mixed) with the LCO-Embedding models.

Example:
    >>> from lco_embedding import LCOEmbedder
    >>> model = LCOEmbedder("LCO-Embedding/LCO-Embedding-Omni-3B")  # doctest: +SKIP
    >>> model.encode(["a cat on a mat", {"image": "cat.jpg"}]).shape  # doctest: +SKIP
    (2, 2048)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lco_embedding.errors import CheckpointNotFoundError, EncodeReport, LCOEmbeddingError, LCOInputError
from lco_embedding.outcomes import Outcome

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__version__ = "0.1.0"

__all__ = [
    "LCOEmbedder",
    "LCOInputError",
    "LCOEmbeddingError",
    "CheckpointNotFoundError",
    "EncodeReport",
    "Outcome",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # LCOEmbedder imports torch and transformers: only when it is asked for, so that `lco-embed --help` and
    # `import lco_embedding.corpus` stay fast.
    if name == "LCOEmbedder":
        from lco_embedding.embedder import LCOEmbedder

        return LCOEmbedder
    raise AttributeError(f"module 'lco_embedding' has no attribute {name!r}")
