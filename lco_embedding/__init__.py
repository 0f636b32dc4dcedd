"""lco-embedding: omnimodal embeddings (text, image, audio, video, mixed) with the LCO-Embedding models.

Example:
    >>> from lco_embedding import LCOEmbedder
    >>> model = LCOEmbedder("LCO-Embedding/LCO-Embedding-Omni-3B")  # doctest: +SKIP
    >>> model.encode(["a cat on a mat", {"image": "cat.jpg"}]).shape  # doctest: +SKIP
    (2, 2048)
"""

from lco_embedding.embedder import LCOEmbedder
from lco_embedding.errors import EncodeReport, LCOInputError

__version__ = "0.1.0"

__all__ = ["LCOEmbedder", "LCOInputError", "EncodeReport", "__version__"]
