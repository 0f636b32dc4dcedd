"""The exceptions the package raises, all :class:`LCOError` (each keeps the built-in base its callers catch:
``ValueError`` for bad inputs, ``RuntimeError`` for the model, ``FileNotFoundError`` for checkpoints), and the report
of items skipped with ``on_error="skip"``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckpointNotFoundError", "EncodeReport", "ItemError", "LCOEmbeddingError", "LCOError", "LCOInputError"]


class LCOError(Exception):
    """Every error lco-embedding raises on purpose: ``except LCOError`` catches the package's own failures (bad
    inputs, items the model cannot embed, checkpoints not found, refused output folders, server request errors),
    never a bug's."""


class _ItemError:
    """What the errors of one item share: the item's position and the reason, pickled as such."""

    reason: str
    index: int | None

    def _set(self, reason: str, index: int | None) -> str:
        self.reason = reason
        self.index = index
        return reason if index is None else f"Input {index}: {reason}"

    def __reduce__(self) -> tuple:
        # Pickled across worker processes with its reason and index, not its formatted message.
        return (type(self), (self.reason, self.index))

    def at(self, index: int):  # noqa: ANN201 - the same type as self
        """Return the same error bound to the item at ``index`` (keeps the original as its cause)."""
        error = type(self)(self.reason, index)
        error.__cause__ = self.__cause__ or self  # type: ignore[attr-defined]
        return error


class LCOInputError(_ItemError, LCOError, ValueError):
    """An input item cannot be embedded: it cannot be read, decoded or validated.

    The message names the item's position in the call (``index``), what is wrong and what is accepted.
    Raised by :meth:`LCOEmbedder.encode` with ``on_error="raise"`` (the default); with ``on_error="skip"``
    the same messages are collected in an :class:`EncodeReport` instead.

    Attributes:
        index: Position of the bad item in the inputs of the call, or ``None`` when not known yet.
        reason: What is wrong with it, without the position.
    """

    def __init__(self, reason: str, index: int | None = None):
        super().__init__(self._set(reason, index))


class LCOEmbeddingError(_ItemError, LCOError, RuntimeError):
    """The model could not embed a valid item: it does not fit in memory even alone, or its output holds NaN or
    infinite values.

    Like :class:`LCOInputError` it names the item (``index``, ``reason``) and is skipped and reported with
    ``on_error="skip"``. Any other failure of the model (a bug, a broken device) is not an item's error and
    propagates as it is.
    """

    def __init__(self, reason: str, index: int | None = None):
        super().__init__(self._set(reason, index))


ItemError = LCOInputError | LCOEmbeddingError
"""An item's own error: what ``on_error="skip"`` skips and reports."""


class CheckpointNotFoundError(LCOError, FileNotFoundError):
    """A checkpoint's files cannot be found: no such local folder, a folder without ``config.json``, or a hub id
    that is neither reachable nor in the local cache.

    The message says which, and how to fix it (a local folder, ``local_files_only=True`` / ``HF_HUB_OFFLINE=1``
    with a pre-downloaded cache, the network). A ``FileNotFoundError``, so ``except OSError`` catches it as it
    catches transformers' own loading errors.
    """


@dataclass
class EncodeReport:
    """What happened to the items of one call: pass ``report=EncodeReport()`` to ``encode``, ``encode_iter`` or
    ``encode_segments`` and read it afterwards (nothing is kept on the model between calls).

    Example:
        >>> report = EncodeReport()
        >>> emb = model.encode(["a cat", "", "a dog"], on_error="skip", report=report)
        >>> report.kept, sorted(report.errors), report.stats.batches >= 1
        ([0, 2], [1], True)

    Attributes:
        kept: Input positions that were embedded, in the order of the returned rows (``encode`` only; empty after
            ``encode_iter``, whose pairs carry their positions).
        errors: Input position -> reason, for every item that was skipped.
        stats: The engine's counters of the call (an ``EngineStats``: batches, real and padded tokens, out-of-memory
            splits, the final token budget); ``encode`` only.
    """

    kept: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    stats: Any = None

    @property
    def ok(self) -> bool:
        """True when no item was skipped."""
        return not self.errors
