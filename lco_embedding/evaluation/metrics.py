"""Retrieval metrics computed by ``pytrec_eval`` (trec_eval's C code; ``pip install 'lco-embedding[eval]'``), not by
hand: nDCG@10, recall@1/10/100, MRR@10 and MAP@100, averaged over the judged queries.

``mrr@10`` is trec_eval's reciprocal rank of the run cut to each query's top 10; ``map@100`` its average precision
of the run as retrieved (the top 100). A query with no relevant document is not scored (trec_eval's rule).
"""

from __future__ import annotations

from typing import Any

from lco_embedding.core.require import require

__all__ = ["METRICS", "score_run"]

METRICS = ("ndcg@10", "recall@1", "recall@10", "recall@100", "mrr@10", "map@100")
_TREC = {
    "ndcg@10": "ndcg_cut_10",
    "recall@1": "recall_1",
    "recall@10": "recall_10",
    "recall@100": "recall_100",
    "map@100": "map",
}


def score_run(
    run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``(mean of each metric, each query's metrics)`` of ``run`` (query -> {document -> score}) against ``qrels``
    (query -> {document -> relevance}); only queries that have a relevant document count."""
    pytrec_eval = require("pytrec_eval", "eval")
    judged = {q: docs for q, docs in qrels.items() if any(v > 0 for v in docs.values())}
    run = {q: dict(run.get(q) or {"": float("-inf")}) for q in judged}  # every judged query scored (0 if empty)
    evaluator = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.1,10,100", "map"})
    found = evaluator.evaluate(run)
    # trec_eval's order: score descending, ties by document id descending
    top10 = {q: dict(sorted(docs.items(), key=lambda d: (d[1], d[0]), reverse=True)[:10]) for q, docs in run.items()}
    reciprocal = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    per_query: dict[str, dict[str, float]] = {}
    for query in judged:
        values: dict[str, Any] = {name: found[query][trec] for name, trec in _TREC.items()}
        values["mrr@10"] = reciprocal[query]["recip_rank"]
        per_query[query] = {name: float(values[name]) for name in METRICS}
    means = {name: sum(v[name] for v in per_query.values()) / len(per_query) for name in METRICS} if per_query else {}
    return means, per_query
