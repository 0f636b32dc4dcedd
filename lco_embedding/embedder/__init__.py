"""The embedder layer: :class:`LCOEmbedder` (``lco_embedder``), its sentence-transformers surface
(``st_compat``) and the sentence-transformers module over the same pipeline (``st_module``)."""

from __future__ import annotations

from lco_embedding.embedder.lco_embedder import LCOEmbedder

__all__ = ["LCOEmbedder"]
