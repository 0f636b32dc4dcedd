"""What every item comes out as: :class:`Outcome` — its embedding, or the error that kept it out.

The pipeline yields one outcome per input item, in input order; ``encode`` and ``encode_iter`` build their
report from them, and the corpus job and the Ray actors read them directly (:meth:`LCOEmbedder.encode_outcomes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from lco_embedding.errors import ItemError

__all__ = ["Outcome"]


class Outcome(NamedTuple):
    """One item's result.

    Attributes:
        index: The item's position in the inputs of the call.
        embedding: Its embedding (a numpy array, post-processed as asked), or None when it failed.
        error: Why it failed (:class:`~lco_embedding.LCOInputError` or :class:`~lco_embedding.LCOEmbeddingError`),
            or None.
    """

    index: int
    embedding: Any
    error: ItemError | None

    @property
    def ok(self) -> bool:
        """True when the item was embedded."""
        return self.error is None
