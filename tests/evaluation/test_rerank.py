"""``eval --rerank`` on a dataset made so that the reranker knows the answers: each query's relevant document is the
one the (tiny, random) reranker scores highest, so reranking must lift MRR@10 and nDCG@10 to 1.0; with the same
judgements shuffled across queries the reranked numbers are what the reranker's order predicts, with no such gain.
Both stages are reported side by side (results.json, results.md), through Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lco_embedding import LCOReranker
from lco_embedding.evaluation import evaluate_retrieval
from tests.cli.conftest import run_cli

TEXTS = ["a cat on a mat", "a dog in the fog", "the quick brown fox", "stock prices fell sharply",
         "the lazy dog sleeps", "rain over the sea", "a mat for the cat", "quick brown foxes run"]  # fmt: skip
QUERIES = ["a cat", "the fog", "a fox", "prices", "sleep", "the sea"]


@pytest.fixture(scope="module")
def reranker(tiny_reranker) -> LCOReranker:
    return LCOReranker(tiny_reranker, device="cpu")


def _write(root, relevant: dict[int, int]) -> None:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS))
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(QUERIES))
    )
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{q}\td{d}\t1" for q, d in relevant.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")


def test_a_reranker_that_knows_the_answers_lifts_the_metrics_and_shuffled_judgements_do_not(
    tmp_path, embedder, reranker
):
    scores = reranker.predict([(q, t) for q in QUERIES for t in TEXTS]).reshape(len(QUERIES), len(TEXTS))
    best = {q: int(np.argmax(scores[q])) for q in range(len(QUERIES))}
    _write(tmp_path / "known", best)
    known = evaluate_retrieval(tmp_path / "known", tmp_path / "known-eval", model=embedder, rerank=reranker, rerank_k=8)
    assert known.reranked["all -> all"]["mrr@10"] == pytest.approx(1.0)
    assert known.reranked["all -> all"]["ndcg@10"] == pytest.approx(1.0)
    assert known.pairs["all -> all"]["mrr@10"] < 1.0  # the first stage (a random tiny embedder) does not know them
    # The same judgements, shuffled across queries: the reranked MRR is what the reranker's order gives each
    # query's (now arbitrary) document — predicted here from its scores — and short of the 1.0 above.
    shuffled = {q: best[(q + 1) % len(QUERIES)] for q in range(len(QUERIES))}
    _write(tmp_path / "shuffled", shuffled)
    result = evaluate_retrieval(tmp_path / "shuffled", tmp_path / "shuffled-eval", model=embedder, rerank=reranker,
                                rerank_k=8)  # fmt: skip
    ranks = [1 + int(np.sum(scores[q] > scores[q][d])) for q, d in shuffled.items()]
    predicted = float(np.mean([1.0 / r if r <= 10 else 0.0 for r in ranks]))
    assert result.reranked["all -> all"]["mrr@10"] == pytest.approx(predicted, abs=1e-6)
    assert predicted < 1.0
    written = json.loads((tmp_path / "shuffled-eval" / "results.json").read_text())
    assert written["reranked"] == result.reranked and written["rerank"]["backend"] == "generative"
    assert "| all -> all, reranked |" in (tmp_path / "shuffled-eval" / "results.md").read_text()


def test_lco_embed_eval_rerank_prints_both_rows(tmp_path, tiny_omni, tiny_reranker, reranker):
    scores = reranker.predict([(q, t) for q in QUERIES for t in TEXTS]).reshape(len(QUERIES), len(TEXTS))
    _write(tmp_path / "data", {q: int(np.argmax(scores[q])) for q in range(len(QUERIES))})
    result = run_cli("eval", tmp_path / "data", "--model", tiny_omni, "--rerank", tiny_reranker, "--rerank-k", 8, "-q")
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| all -> all")}
    assert set(rows) == {"all -> all", "all -> all, reranked"}
    assert rows["all -> all, reranked"].split("|")[-2].strip() == "1.0000"  # MAP@100: the known document first
