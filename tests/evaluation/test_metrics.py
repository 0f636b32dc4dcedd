"""The metrics against mteb's own retrieval evaluator (its MRR is its own code, the rest pytrec_eval through mteb)
on runs with known answers and on random runs, and a shuffled-qrels control at chance."""

from __future__ import annotations

import numpy as np
import pytest

from lco_embedding.evaluation import METRICS, score_run

pytest.importorskip("pytrec_eval")


def _random_run(rng, queries: int, documents: int, per_query: int = 100) -> dict[str, dict[str, float]]:
    return {
        f"q{q}": {f"d{d}": float(rng.random()) for d in rng.choice(documents, size=per_query, replace=False)}
        for q in range(queries)
    }


def _random_qrels(rng, queries: int, documents: int) -> dict[str, dict[str, int]]:
    return {
        f"q{q}": {f"d{d}": int(rng.integers(1, 3)) for d in rng.choice(documents, size=int(rng.integers(1, 6)))}
        for q in range(queries)
    }


def test_known_answers():
    qrels = {"a": {"d1": 1}, "b": {"d2": 1, "d3": 1}}
    run = {"a": {"d1": 0.9, "d9": 0.5}, "b": {"d8": 0.9, "d2": 0.8, "d7": 0.1}}
    means, each = score_run(run, qrels)
    assert each["a"]["recall@1"] == 1.0 and each["a"]["mrr@10"] == 1.0 and each["a"]["ndcg@10"] == 1.0
    assert each["b"]["recall@1"] == 0.0 and each["b"]["recall@10"] == 0.5 and each["b"]["mrr@10"] == 0.5
    assert each["b"]["map@100"] == pytest.approx(0.25)  # (1/2) / 2 relevant documents
    assert means["recall@10"] == pytest.approx(0.75) and set(means) == set(METRICS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_mtebs_retrieval_evaluator(seed):
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    rng = np.random.default_rng(seed)
    run, qrels = _random_run(rng, 40, 300), _random_qrels(rng, 40, 300)
    for q, judged in qrels.items():  # make some queries find their documents
        for d in list(judged)[: q.endswith("0") + 1]:
            run[q][d] = 2.0
    means, each = score_run(run, qrels)
    theirs = calculate_retrieval_scores(run, qrels, [1, 10, 100])
    # mteb reports its means rounded to 5 decimals; its per-query scores (pytrec_eval's through mteb) are raw.
    assert round(means["ndcg@10"], 5) == theirs.ndcg["NDCG@10"]
    for k in (1, 10, 100):
        assert round(means[f"recall@{k}"], 5) == theirs.recall[f"Recall@{k}"]
    assert round(means["map@100"], 5) == theirs.map["MAP@100"]
    assert means["mrr@10"] == pytest.approx(theirs.mrr["MRR@10"], abs=1e-6)  # mteb's own MRR code, unrounded
    for query, values in each.items():
        raw = theirs.all_scores[query]
        assert values["ndcg@10"] == pytest.approx(raw["ndcg_cut_10"], abs=1e-6)
        assert values["recall@100"] == pytest.approx(raw["recall_100"], abs=1e-6)
        assert values["map@100"] == pytest.approx(raw["map_cut_100"], abs=1e-6)


def test_shuffled_qrels_score_at_chance():
    """Relevance judgements that have nothing to do with the run: recall@k near k / documents."""
    rng = np.random.default_rng(5)
    documents = 1000
    run = {f"q{q}": {f"d{d}": float(rng.random()) for d in range(documents)} for q in range(300)}
    qrels = {f"q{q}": {f"d{int(rng.integers(documents))}": 1} for q in range(300)}
    means, _ = score_run(run, qrels)
    assert means["recall@100"] == pytest.approx(100 / documents, abs=0.04)
    assert means["recall@10"] < 0.04 and means["ndcg@10"] < 0.04
