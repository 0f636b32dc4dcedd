"""``LCOReranker``: the second stage of retrieve-then-rerank, in the style of sentence-transformers' ``CrossEncoder``
(``predict(pairs)``, ``rank(query, documents, top_k)``), with two backends:

* **generative** (:mod:`.generative`): any checkpoint of the Qwen2.5-Omni thinker architecture (the base
  Qwen2.5-Omni-3B/7B or an LCO-Embedding checkpoint) or Qwen2.5-VL reads each pair as one chat and the score is
  ``logit("yes") - logit("no")``; query and document may be any item this SDK embeds (text, image, audio, video,
  video with its sound, PDF pages, mixed). It runs through the embedding pipeline (no second forward path).
* **cross-encoder** (:mod:`.cross_encoder`): a sentence-transformers ``CrossEncoder`` model, through its own
  ``predict``.

``backend="auto"`` picks generative for a checkpoint whose ``config.json`` names a supported architecture (or an
:class:`~lco_embedding.LCOEmbedder` given), cross-encoder for anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lco_embedding.core.outcomes import Outcome, apply_on_error, check_on_error
from lco_embedding.rerank.prompt import RerankPrompt

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["BACKENDS", "LCOReranker"]

Backend = Literal["auto", "generative", "cross-encoder"]
BACKENDS = ("auto", "generative", "cross-encoder")


class LCOReranker:
    """Scores (query, document) pairs for relevance; higher is more relevant.

    Args:
        model: A checkpoint (name or folder), a loaded :class:`~lco_embedding.LCOEmbedder` (generative, sharing its
            weights), or a sentence-transformers ``CrossEncoder``.
        backend: ``"auto"`` (see the module), ``"generative"`` or ``"cross-encoder"``.
        prompt: The generative backend's chat (:class:`~lco_embedding.rerank.RerankPrompt`).
        batch_size: Most pairs per forward pass (the generative backend also keeps to the model's token budget).
        use_audio_in_video: Generative: read videos with their sound tracks (None: the model's setting).
        **model_kwargs: For a checkpoint name: ``LCOEmbedder``'s keywords (``device``, ``dtype``, media settings)
            or ``CrossEncoder``'s (``device``, ``max_length``, ...).

    Example:
        >>> reranker = LCOReranker(reranker_checkpoint)  # e.g. "Qwen/Qwen2.5-Omni-3B", or an LCO checkpoint
        >>> hits = reranker.rank("a cat", ["a dog in the fog", {"image": cat_png}], top_k=1)
        >>> reranker.backend, len(hits), sorted(hits[0])
        ('generative', 1, ['corpus_id', 'score'])
    """

    def __init__(
        self,
        model: str | LCOEmbedder | Any,
        *,
        backend: Backend = "auto",
        prompt: RerankPrompt | None = None,
        batch_size: int = 8,
        use_audio_in_video: Any = None,
        **model_kwargs: Any,
    ) -> None:
        from lco_embedding.embedder import LCOEmbedder

        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if backend == "auto":
            backend = "generative" if isinstance(model, LCOEmbedder) or _is_generative(model) else "cross-encoder"
        self.backend: str = backend
        """The backend in use: ``"generative"`` or ``"cross-encoder"``."""
        self.batch_size = batch_size
        self.prompt = prompt or RerankPrompt()
        self.use_audio_in_video = use_audio_in_video
        self.model_name_or_path = getattr(model, "model_name_or_path", model) if not isinstance(model, str) else model
        if backend == "generative":
            from lco_embedding.rerank.generative import GenerativeScorer

            if isinstance(model, LCOEmbedder) and model_kwargs:
                raise ValueError(f"{sorted(model_kwargs)} apply when the model is given by name; this one is loaded.")
            embedder = model if isinstance(model, LCOEmbedder) else LCOEmbedder(model, **model_kwargs)
            self.scorer: Any = GenerativeScorer(embedder, self.prompt)
        else:
            from lco_embedding.rerank.cross_encoder import CrossEncoderScorer

            if prompt is not None or use_audio_in_video is not None:
                raise ValueError(
                    "prompt and use_audio_in_video are the generative backend's; a CrossEncoder has its own."
                )
            self.scorer = CrossEncoderScorer(model, **model_kwargs)

    def __repr__(self) -> str:
        return f"LCOReranker({self.model_name_or_path!r}, backend={self.backend!r})"

    def outcomes(self, pairs: Iterable[tuple[Any, Any]], **keywords: Any) -> Iterator[Outcome]:
        """Each pair's :class:`~lco_embedding.Outcome` in order: ``Outcome(i, score, None)``, or the error of a pair
        that cannot be read (generative: an :class:`~lco_embedding.LCOInputError` naming the query or document)."""
        keywords.setdefault("batch_size", self.batch_size)
        if self.backend == "generative" and self.use_audio_in_video is not None:
            keywords.setdefault("use_audio_in_video", self.use_audio_in_video)
        return self.scorer.outcomes(pairs, **keywords)

    def relevance(self, score: float) -> float:
        """A score as a relevance in [0, 1]: the generative backend's ``sigmoid(logit(yes) - logit(no))`` (the
        model's probability of "yes" when it answers "yes" or "no"); a cross-encoder's score as its model gives it
        (sentence-transformers applies the model's activation: a sigmoid for one-label models by default).

        Example:
            >>> LCOReranker(reranker_checkpoint).relevance(0.0)
            0.5
        """
        if self.backend != "generative":
            return float(score)
        return float(1.0 / (1.0 + np.exp(-np.float64(score))))

    def predict(
        self,
        pairs: Iterable[tuple[Any, Any]],
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        on_error: str = "raise",
        report: Any = None,
    ) -> np.ndarray:
        """The scores of ``pairs`` (float32, one per pair, in order), as ``CrossEncoder.predict``.

        A pair that cannot be read raises its error (``on_error="raise"``, the default); with ``on_error="skip"``
        its score is NaN, the failure is logged, and its reason goes to ``report.errors``
        (:class:`~lco_embedding.EncodeReport`) when one is given.
        """
        on_error = check_on_error(on_error)
        listed = list(pairs)
        keywords: dict[str, Any] = {"batch_size": batch_size or self.batch_size}
        if show_progress_bar is not None:
            keywords["show_progress_bar"] = show_progress_bar
        scores = np.full(len(listed), np.nan, dtype=np.float32)
        for outcome in apply_on_error(self.outcomes(listed, **keywords), on_error, report):
            scores[outcome.index] = outcome.embedding
        return scores

    def rank(
        self,
        query: Any,
        documents: list[Any],
        *,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> list[dict[str, Any]]:
        """``documents`` ranked for ``query``, best first: ``[{"corpus_id": i, "score": s}, ...]`` (with
        ``"document"`` when ``return_documents``), the ``top_k`` best (all by default), as ``CrossEncoder.rank``.
        Ties keep the documents' order."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}.")
        scores = self.predict([(query, document) for document in documents], batch_size=batch_size,
                              show_progress_bar=show_progress_bar)  # fmt: skip
        order = np.argsort(-scores, kind="stable")[:top_k]
        ranked = [{"corpus_id": int(i), "score": float(scores[i])} for i in order]
        if return_documents:
            for hit in ranked:
                hit["document"] = documents[hit["corpus_id"]]
        return ranked


def _is_generative(model: Any) -> bool:
    """True for a checkpoint whose ``config.json`` names an architecture the generative backend runs."""
    if not isinstance(model, str):
        return False
    from lco_embedding.model.hub import CheckpointNotFoundError, locate_checkpoint
    from lco_embedding.model.loading import SUPPORTED_MODEL_TYPES, read_config

    try:
        config = read_config(locate_checkpoint(model))
    except CheckpointNotFoundError:  # not found as a checkpoint: sentence-transformers may know the name
        return False
    return config.get("model_type") in SUPPORTED_MODEL_TYPES
