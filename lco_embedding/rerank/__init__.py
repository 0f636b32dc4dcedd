"""Reranking: score (query, document) pairs of any modality for relevance, the second stage of retrieve-then-rerank
(:class:`LCOReranker`; docs/rerank.md)."""

from lco_embedding.rerank.prompt import RerankPrompt
from lco_embedding.rerank.reranker import LCOReranker

__all__ = ["LCOReranker", "RerankPrompt"]
