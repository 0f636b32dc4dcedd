"""Where a corpus job's records are embedded: this process (:class:`LocalRunner`, the default), or Ray actors
(:class:`lco_embedding.distributed.RayRunner`). A runner takes the job's :class:`~.job_options.ModelSpec` and
returns a :class:`RunnerJob`, which describes the model for the manifest and turns records into outcomes, in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lco_embedding.corpus.description import describe_embedder
from lco_embedding.corpus.job_options import CorpusOptions, ModelSpec
from lco_embedding.corpus.records import Record

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["LocalRunner", "Runner", "RunnerJob", "record_outcomes"]


class RunnerJob(Protocol):
    """One run's embedding side, as :func:`~.job.encode_corpus` drives it."""

    def describe(self, options: CorpusOptions) -> dict[str, Any]:
        """What the run's output depends on (model, dimension, prompts, settings), for the manifest."""
        ...

    def outcomes(self, records: Iterable[Record], **encode_kwargs: Any) -> Iterator[tuple[Record, Any, str | None]]:
        """``(record, embedding, None)`` or ``(record, None, reason)`` for every record, in order (with
        ``segment=`` among ``encode``'s keywords, the embedding is the record's
        :class:`~lco_embedding.segments.SourceSegments`)."""
        ...


class Runner(Protocol):
    """Where a corpus job's records are embedded (see the module)."""

    def start(self, spec: ModelSpec) -> RunnerJob:
        """Load what embeds the records (after the output was checked)."""
        ...


class LocalRunner:
    """Embeds a corpus job's records in this process, with one :class:`~lco_embedding.LCOEmbedder`."""

    def start(self, spec: ModelSpec) -> RunnerJob:
        """The model itself, or the one loaded from its name."""
        return _LocalJob(spec.load())


@dataclass
class _LocalJob:
    embedder: LCOEmbedder

    def describe(self, options: CorpusOptions) -> dict[str, Any]:
        return describe_embedder(self.embedder, options.prompt_name, options.prompt, options.use_audio_in_video)

    def outcomes(self, records: Iterable[Record], **encode_kwargs: Any) -> Iterator[tuple[Record, Any, str | None]]:
        return record_outcomes(self.embedder, records, **encode_kwargs)


def record_outcomes(
    embedder: LCOEmbedder, records: Iterable[Record], **encode_kwargs: Any
) -> Iterator[tuple[Record, np.ndarray | None, str | None]]:
    """``(record, embedding, None)`` or ``(record, None, reason)`` for every record, in order.

    Only records with an item go to the model, numbered in the order they are fed; its outcomes come back in that
    order, one each, so they pair up with the records in flight.
    """
    in_flight: deque[tuple[Record, int | None]] = deque()
    segment = encode_kwargs.pop("segment", None)

    def feed() -> Iterator[Any]:
        fed = 0
        for record in records:
            in_flight.append((record, None if record.error is not None else fed))
            if record.error is None:
                fed += 1
                yield record.item

    pipeline = embedder.pipeline(segment=segment, **encode_kwargs)
    # One outcome per fed record: its embedding, or its segments (a SourceSegments), or its error.
    stream: Iterator[Any] = pipeline.outcomes(feed()) if segment is None else pipeline.segment_outcomes(feed())
    for outcome in stream:
        while True:
            record, number = in_flight.popleft()
            if number is None:
                yield record, None, record.error  # failed before the model: never fed
                continue
            if number != outcome.index:
                raise RuntimeError(f"outcome {outcome.index} arrived where item {number} was due.")
            result = outcome.embedding if segment is None else outcome
            yield (
                record,
                result if outcome.error is None else None,
                None if outcome.error is None else outcome.error.reason,
            )
            break
    while in_flight:
        record, number = in_flight.popleft()
        if number is not None:
            raise RuntimeError(f"no outcome came for item {number} ({record.id}).")
        yield record, None, record.error
