"""What every item comes out as — :class:`Outcome`, its embedding or the error that kept it out — and the one
function that applies an ``on_error`` policy to a stream of them (:func:`apply_on_error`).

The engine yields one outcome per input item, in input order (raw float32 rows); the pipeline post-processes them
(the same type, numpy rows), and every caller — ``encode`` and its streams, the corpus job, the Ray actors, the
server — reads outcomes, and decides what a failure means through :func:`apply_on_error` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Literal, NamedTuple

from lco_embedding.core.errors import EncodeReport, ItemError

__all__ = ["ON_ERROR", "OnError", "Outcome", "apply_on_error", "check_on_error"]

logger = logging.getLogger("lco_embedding.embedder")  # where skips are logged (the command line quiets it)

OnError = Literal["raise", "skip"]
ON_ERROR: tuple[str, ...] = ("raise", "skip")


class Outcome(NamedTuple):
    """One item's result.

    Attributes:
        index: The item's position in the inputs of the call.
        embedding: Its embedding (a raw float32 tensor from the engine; a numpy array, post-processed as asked, from
            the pipeline), or None when it failed.
        error: Why it failed (:class:`~lco_embedding.LCOInputError` or :class:`~lco_embedding.LCOEmbeddingError`),
            or None.

    Example:
        >>> Outcome(3, None, None).ok
        True
    """

    index: int
    embedding: Any
    error: ItemError | None

    @property
    def ok(self) -> bool:
        """True when the item was embedded."""
        return self.error is None


def check_on_error(on_error: Any) -> OnError:
    """``on_error`` if it is ``"raise"`` or ``"skip"``.

    Raises:
        ValueError: Any other value.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    return on_error


def apply_on_error(
    outcomes: Iterable[Outcome], on_error: OnError, report: EncodeReport | None = None
) -> Iterator[Outcome]:
    """The outcomes that hold an embedding, in order. A failure raises its error (``"raise"``), or is logged and,
    with a ``report``, recorded in its ``errors`` (``"skip"``).

    Example:
        >>> from lco_embedding.core.errors import LCOInputError
        >>> stream = [Outcome(0, [1.0], None), Outcome(1, None, LCOInputError("empty text", 1))]
        >>> report = EncodeReport()
        >>> [o.index for o in apply_on_error(stream, "skip", report)], report.errors
        ([0], {1: 'empty text'})
    """
    for outcome in outcomes:
        if outcome.error is None:
            yield outcome
        elif on_error == "raise":
            raise outcome.error
        else:
            if report is not None:
                report.errors[outcome.index] = outcome.error.reason
            logger.warning("Skipped %s", outcome.error)
