"""sentence-transformers 6: :class:`LCOModule` (defined in :mod:`lco_embedding.embedder.st_module`, beside the
embedder that builds it) published under the name ``modules.json`` files give it, with the embedder class its
``load`` constructs.

``LCOEmbedder.to_sentence_transformer()`` builds ``SentenceTransformer(modules=[LCOModule(embedder), Normalize()])``
sharing the embedder's weights; ``LCOEmbedder.save_pretrained(path)`` writes a folder that
``SentenceTransformer(path, trust_remote_code=True)`` loads through this module. See ``docs/integrations.md``.
"""

from __future__ import annotations

from lco_embedding.embedder import LCOEmbedder
from lco_embedding.embedder.st_module import LCOModule, to_sentence_transformer

__all__ = ["LCOModule", "to_sentence_transformer"]

LCOModule.embedder_type = LCOEmbedder
