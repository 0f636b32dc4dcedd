"""LanceDB: the ``"lco-embedding"`` embedding function, registered in LanceDB's registry when this module is imported
(``pip install 'lco-embedding[lancedb]'``).

A LanceDB table whose schema names it embeds its source column at ingest, whatever the column holds — text, or
images, audio and video as paths, URLs, data URIs or bytes — and ``table.search(query)`` embeds the query (a string,
a ``PIL.Image``, media bytes or an ``encode`` item such as ``{"audio": "meow.wav"}``) with the same model: one space
for every modality. Sources are embedded with the model's ``"document"`` prompt and queries with its ``"query"``
prompt when the model has them.

Example:
    >>> import lancedb
    >>> from lancedb.embeddings import get_registry
    >>> from lancedb.pydantic import LanceModel, Vector
    >>> import lco_embedding.integrations.lancedb  # registers "lco-embedding"
    >>> lco = get_registry().get("lco-embedding").create(name=tiny_checkpoint, device="cpu")
    >>> class Photo(LanceModel):
    ...     path: str = lco.SourceField()
    ...     vector: Vector(lco.ndims()) = lco.VectorField()
    >>> table = lancedb.connect(lance_folder).create_table("photos", schema=Photo)
    >>> _ = table.add([{"path": cat_png}, {"path": "a dog in the fog"}])
    >>> hits = table.search("a cat").limit(2).to_list()  # the query embedded with the model's query prompt
    >>> sorted(hit["path"] for hit in hits) == sorted([cat_png, "a dog in the fog"])
    True

Does not cache embeddings between calls; a table's function loads its model once per process (shared by every
function created with the same arguments).
"""

# No `from __future__ import annotations` here: pydantic (LanceDB's schemas, this module's docstring example) reads
# the annotations of the classes defined with this module's compiler flags.
import json
import threading
from typing import Any

import numpy as np

from lco_embedding.core.require import require

require("lancedb", "lancedb")
from lancedb.embeddings import EmbeddingFunction, register  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

__all__ = ["LCOLanceEmbeddings", "NAME"]

NAME = "lco-embedding"
"""The name the function is registered under: ``get_registry().get("lco-embedding")``."""

_MODELS: dict[tuple, Any] = {}
_LOADING = threading.Lock()


@register(NAME)
class LCOLanceEmbeddings(EmbeddingFunction):
    """LanceDB's embedding function for LCO-Embedding models (see the module).

    Attributes:
        name: The checkpoint (hub id or folder).
        device: Where the model runs (default: cuda, else mps, else cpu).
        dtype: The weights' dtype (default: the embedder's choice).
        modality: How source values are read: None (default) decides per value as ``encode`` does (a string is text
            unless it names an existing media file, or a URL or data URI of one; bytes by their container), or
            ``"text"``, ``"image"``, ``"audio"``, ``"video"`` for every value.
        batch_size: Items per forward pass.
        embedder_kwargs: Other ``LCOEmbedder`` arguments (e.g. ``{"max_pixels": 602112}``).
    """

    name: str = "LCO-Embedding/LCO-Embedding-Omni-3B"
    device: str | None = None
    dtype: str | None = None
    modality: str | None = None
    batch_size: int = 32
    embedder_kwargs: dict[str, Any] = {}
    _model: Any = PrivateAttr(default=None)

    def embedder(self) -> Any:
        """The :class:`~lco_embedding.LCOEmbedder`, loaded once per process for these arguments."""
        if self._model is None:
            key = (self.name, self.device, self.dtype, json.dumps(self.embedder_kwargs, sort_keys=True, default=str))
            with _LOADING:
                if key not in _MODELS:
                    from lco_embedding.embedder import LCOEmbedder

                    _MODELS[key] = LCOEmbedder(self.name, device=self.device, dtype=self.dtype, **self.embedder_kwargs)
            self._model = _MODELS[key]
        return self._model

    def ndims(self) -> int:
        """The model's embedding size."""
        return self.embedder().get_embedding_dimension()

    def compute_source_embeddings(self, values: Any, *args: Any, **kwargs: Any) -> list[np.ndarray | None]:
        """Embed a column's values as documents (None stays None)."""
        items = _values(values)
        present = [i for i, value in enumerate(items) if value is not None]
        out: list[np.ndarray | None] = [None] * len(items)
        if present:
            model = self.embedder()
            wrapped = [self._item(items[i]) for i in present]
            vectors = model.encode_document(wrapped, batch_size=self.batch_size, show_progress_bar=False)
            for i, vector in zip(present, vectors, strict=True):
                out[i] = vector
        return out

    def compute_query_embeddings(self, query: Any, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        """Embed a query: a string, a ``PIL.Image``, media bytes or an ``encode`` item."""
        return [self.embedder().encode_query(self._item(query), show_progress_bar=False)]

    def _item(self, value: Any) -> Any:
        if self.modality is None or isinstance(value, dict):
            return value
        return {self.modality: value}


def _values(values: Any) -> list[Any]:
    """A column's values as a list (LanceDB passes arrays, lists or one value)."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().to_pylist()
    if isinstance(values, pa.Array):
        return values.to_pylist()
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
        return [values]
    return list(values)
