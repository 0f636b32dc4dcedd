"""What each caller needs of a corpus store, as a protocol of its role: :class:`StoreReader` (``read_embeddings``,
export, eval, the calibration), :class:`SearchableStore` (search and the index) and :class:`StoreWriter` (the corpus
job and its updates); :class:`Store` is all three, and :class:`Capabilities` says what a store can do, so that no
caller asks which kind of store it has. The stores themselves are opened by :func:`~.stores.open_store`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lco_embedding.corpus.search_request import Scored, SearchRequest

__all__ = ["Capabilities", "SearchableStore", "Store", "StoreReader", "StoreWriter"]


@dataclass(frozen=True)
class Capabilities:
    """What a store can do, declared by each store so that callers never switch on its kind.

    Attributes:
        filters: Takes filter expressions (``where``).
        native_search: Its own vector search answers a search of one modality.
        native_group_by: Its own search groups hits by a column.
        replaces_foreign_data: ``--overwrite`` replaces data another program left under the target (a table or
            collection is replaced whole; a folder's foreign files are never deleted).
    """

    filters: bool
    native_search: bool
    native_group_by: bool
    replaces_foreign_data: bool


class StoreReader(Protocol):
    """What reading a store's committed rows needs (``read_embeddings``, export, eval, the calibration)."""

    kind: str
    capabilities: Capabilities

    @property
    def output(self) -> Any:
        """The output as a run's summary names it (a folder's path, a store's target)."""
        ...

    @property
    def location(self) -> str:
        """The store's target, for messages."""
        ...

    @property
    def errors_location(self) -> str:
        """Where its failures are listed, for messages."""
        ...

    @property
    def manifest(self) -> dict[str, Any]:
        """The committed manifest (``FileNotFoundError`` when there is none)."""
        ...

    def exists(self) -> bool:
        """True when the store holds a manifest."""
        ...

    def close(self) -> None:
        """Release what the store holds (its lock, its connection: a milvus-lite file is then free for others)."""
        ...

    def read_errors(self) -> list[dict[str, Any]]:
        """The committed failures."""
        ...

    def read_catalog(self, name: str) -> Any:
        """A committed catalog chunk (:mod:`.catalog`) as a ``pyarrow.Table``."""
        ...

    def iter_embeddings(
        self, columns: tuple[str, ...] = (), where: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, list]]]:
        """``(row numbers, [n, d] float32 vectors, {column: values})`` over every committed row, a batch at a
        time (rows matching ``where`` only)."""
        ...

    def rows(self, numbers: list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows ``numbers`` without their embeddings, in the given order."""
        ...

    def row_vectors(self, numbers: list[int]) -> np.ndarray:
        """The float32 vectors of rows ``numbers``, in that order."""
        ...

    def read_table(self, columns: list[str] | None = None) -> Any:
        """Every committed row as one ``pyarrow.Table``."""
        ...


class SearchableStore(StoreReader, Protocol):
    """What a search and an index need of a store, beyond reading it."""

    def lock(self) -> None:
        """Take the writer lock (building an index writes the manifest)."""
        ...

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically (building an index records it)."""
        ...

    def nearest(self, request: SearchRequest) -> list[Scored] | None:
        """The store's own search: ``(cosine, row)`` per query, best first; None where the store leaves it to the
        exact scan over :meth:`iter_embeddings`."""
        ...

    def build_index(self, **options: Any) -> dict[str, Any]:
        """Build the store's approximate index over every committed row; the manifest's entry for it."""
        ...


class StoreWriter(StoreReader, Protocol):
    """What the corpus job and its updates need of a store: the lock, the commit point and the recovery."""

    def lock(self) -> None:
        """Take the writer lock (``RuntimeError`` when another writer holds it)."""
        ...

    def unlock(self) -> None:
        """Release the writer lock."""
        ...

    def leftovers(self) -> list[str]:
        """What a store without a manifest already holds (a fresh run refuses to write beside it)."""
        ...

    def clear(self) -> None:
        """Delete everything the store's runs wrote (``--overwrite``)."""
        ...

    def create(self, manifest: dict[str, Any]) -> None:
        """Start a fresh run with its first manifest."""
        ...

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically: the commit."""
        ...

    def recover(self) -> None:
        """Remove what an interrupted run wrote after its last commit."""
        ...

    def commit_shard(
        self, manifest: dict[str, Any], shard: dict[str, Any], table: Any, errors: list[dict[str, Any]], catalog: Any
    ) -> None:
        """Write one shard's rows, failures and catalog entries, then commit them with ``manifest``."""
        ...


class Store(StoreWriter, SearchableStore, Protocol):
    """Every role: what :func:`open_store` returns."""
