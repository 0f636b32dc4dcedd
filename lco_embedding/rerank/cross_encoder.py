"""sentence-transformers ``CrossEncoder`` models as a reranker backend: the text (and, with sentence-transformers
5.4+, image) rerankers users already have, scored through sentence-transformers' own ``CrossEncoder.predict``
(its activation included: a one-label model's scores are sigmoid probabilities by default)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from lco_embedding.core.outcomes import Outcome

__all__ = ["CrossEncoderScorer"]


class CrossEncoderScorer:
    """Scores pairs with a sentence-transformers ``CrossEncoder``.

    Args:
        model: A ``CrossEncoder`` or its name or path.
        **kwargs: ``CrossEncoder``'s own keywords (``device``, ``max_length``, ``trust_remote_code``, ...).
    """

    def __init__(self, model: Any, **kwargs: Any) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(model, **kwargs) if isinstance(model, str) else model

    def outcomes(
        self, pairs: Iterable[tuple[Any, Any]], *, batch_size: int = 32, show_progress_bar: bool | None = None
    ) -> Iterator[Outcome]:
        """Each pair's score, in order (``CrossEncoder.predict`` on all of them)."""
        listed = [tuple(pair) for pair in pairs]
        for index, pair in enumerate(listed):
            if len(pair) != 2:
                raise ValueError(f"pair {index} is not a (query, document) pair: {pair!r:.80}")
        if not listed:
            return
        scores = self.model.predict(listed, batch_size=batch_size, show_progress_bar=show_progress_bar)
        for index, score in enumerate(np.asarray(scores, dtype=np.float32).reshape(len(listed), -1)):
            yield Outcome(index, float(score[0]) if score.size == 1 else score, None)
