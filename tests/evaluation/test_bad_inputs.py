"""Bad datasets and mismatched models in ``evaluate_retrieval`` and ``lco-embed eval``: each names the file, line
or model at fault, and nothing is silently dropped or scored against another model's corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lco_embedding.evaluation import evaluate_retrieval, load_dataset
from tests.cli.conftest import run_cli

pytest.importorskip("pytrec_eval")


def _write(root, corpus, queries, qrels: str):
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries))
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


CORPUS = [{"_id": "d1", "text": "a cat on a mat"}, {"_id": "d2", "text": "rivers run to the sea"}]
QUERIES = [{"_id": "q1", "text": "cat"}, {"_id": "q2", "text": "sea"}]


@pytest.mark.parametrize(
    "qrels, judged",
    [
        ("q1\td1\t1\nq2\td2\t2\n", {"q1": {"d1": 1}, "q2": {"d2": 2}}),  # no header: the first line is a judgement
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\n", {"q1": {"d1": 1}}),  # BEIR's header
        ("qid\tdocid\trel\nq2\td2\t1\n", {"q2": {"d2": 1}}),
    ],
)
def test_a_qrels_header_is_decided_by_its_names(tmp_path, qrels, judged):
    assert load_dataset(_write(tmp_path, CORPUS, QUERIES, qrels)).qrels == judged


@pytest.mark.parametrize(
    "qrels, message",
    [
        ("q1\td1\t2.5\nq2\td2\t1\n", r"line 1: the score '2.5' is not an integer"),
        ("q1\td1\t0\nq2\td2\t-1\n", r"has no judgement with a score above 0 \(2 judgements\)"),
        ("", r"has no judgement with a score above 0 \(0 judgements\)"),
        ("query-id\tcorpus-id\tscore\n", r"has no judgement with a score above 0"),
    ],
)
def test_qrels_that_judge_nothing_are_refused(tmp_path, qrels, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(_write(tmp_path, CORPUS, QUERIES, qrels))


@pytest.mark.parametrize(
    "corpus, queries, message",
    [
        ([], QUERIES, r"corpus.jsonl has no rows"),
        (CORPUS, [], r"queries.jsonl has no rows"),
        (
            CORPUS,
            [*QUERIES, {"_id": "q3", "text": ["a"]}],
            r"queries.jsonl, line 3: query 'q3' has a 'text' that is a",
        ),
        ([*CORPUS, {"_id": "d3", "image": 7}], QUERIES, r"corpus.jsonl, line 3: corpus 'd3' has a 'image' that is a"),
        ([*CORPUS, {"_id": "d3", "title": "", "text": ""}], QUERIES, r"line 3: corpus 'd3' has none of 'text' \(or"),
    ],
)
def test_malformed_rows_name_the_file_and_line(tmp_path, corpus, queries, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(_write(tmp_path, corpus, queries, "q1\td1\t1\n"))


def test_an_empty_corpus_is_named_on_the_command_line(tmp_path, tiny_omni):
    root = _write(tmp_path / "data", [], QUERIES, "q1\td1\t1\n")
    result = run_cli("eval", root, "--model", tiny_omni, "--out", tmp_path / "out", "-q", check=False)
    assert result.returncode == 1 and "corpus.jsonl has no rows" in result.stderr
    assert "corpus-input" not in result.stderr


def test_a_row_with_a_title_and_an_empty_text_is_its_title(tmp_path, embedder):
    corpus = [*CORPUS, {"_id": "d5", "title": "Rivers", "text": ""}]
    root = _write(tmp_path / "data", corpus, [*QUERIES, {"_id": "q5", "text": "Rivers"}], "q1\td1\t1\nq5\td5\t1\n")
    result = evaluate_retrieval(root, tmp_path / "out", model=embedder)
    assert result.pairs["all -> all"]["queries"] == 2 and result.per_query["all -> all"]["q5"]["recall@1"] == 1.0
    assert "text -> text" in result.pairs


def test_a_query_that_cannot_be_embedded_is_named_by_id_and_line(tmp_path, embedder, media):
    queries = [*QUERIES, {"_id": "q3", "image": str(media["wav"])}]  # a sound where an image is said to be
    root = _write(tmp_path / "data", CORPUS, queries, "q1\td1\t1\nq3\td2\t1\n")
    with pytest.raises(ValueError, match=r"queries.jsonl, line 3: query 'q3' cannot be embedded: cannot decode"):
        evaluate_retrieval(root, tmp_path / "out", model=embedder)


@pytest.fixture(scope="module")
def made_corpus(tmp_path_factory, tiny_omni):
    """A corpus embedded by ``lco-embed eval`` (the default preset), to reuse with --corpus-from."""
    root = tmp_path_factory.mktemp("eval-corpus")
    data = _write(root / "data", CORPUS, QUERIES, "q1\td1\t1\nq2\td2\t1\n")
    run_cli("eval", data, "--model", tiny_omni, "--out", root / "first", "-q")
    return data, root / "first" / "corpus"


def test_corpus_from_refuses_queries_of_another_model_unless_asked(made_corpus, tiny_omni_full, tmp_path):
    data, corpus = made_corpus
    args = ["eval", data, "--corpus-from", corpus, "--out", tmp_path / "out", "-q"]
    refused = run_cli(*args, "--model", tiny_omni_full, check=False)
    assert refused.returncode == 1 and "was embedded by another model than the one given" in refused.stderr
    assert not (tmp_path / "out" / "results.json").exists()
    allowed = run_cli(*args, "--model", tiny_omni_full, "--allow-other-model")
    assert "| all -> all |" in allowed.stdout
    with pytest.raises(ValueError, match="another model"):
        evaluate_retrieval(data, tmp_path / "python", model=tiny_omni_full, corpus_from=str(corpus))


def test_corpus_from_refuses_a_preset_other_than_the_stores(made_corpus, tmp_path):
    data, corpus = made_corpus
    refused = run_cli("eval", data, "--corpus-from", corpus, "--preset", "card", "--out", tmp_path / "o", check=False)
    assert refused.returncode == 1 and "embedded with preset 'default', not 'card'" in refused.stderr
    run_cli("eval", data, "--corpus-from", corpus, "--preset", "default", "--out", tmp_path / "same", "-q")
    written = json.loads((tmp_path / "same" / "results.json").read_text())
    assert written["settings"]["preset"] == "default"


def test_corpus_from_embeds_queries_with_the_stores_quantization(tmp_path, tiny_omni):
    from lco_embedding import LCOEmbedder
    from lco_embedding.corpus import encode_corpus

    data = _write(tmp_path / "data", CORPUS, QUERIES, "q1\td1\t1\nq2\td2\t1\n")
    table = tmp_path / "corpus.jsonl"
    table.write_text("".join(json.dumps({"id": r["_id"], "text": r["text"]}) + "\n" for r in CORPUS))
    store = str(tmp_path / "int8-corpus")
    encode_corpus([table], store, model=tiny_omni, quantization="int8", show_progress_bar=False)
    run_cli("eval", data, "--corpus-from", store, "--out", tmp_path / "out", "-q")
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["settings"]["quantization"] == "int8" and written["pairs"]["all -> all"]["queries"] == 2
    evaluate_retrieval(data, tmp_path / "python", corpus_from=store)
    assert json.loads((tmp_path / "python" / "results.json").read_text())["settings"]["quantization"] == "int8"
    # The loader both take the queries' model from: int8 weights, the same vectors as the int8 model itself.
    from lco_embedding.corpus import open_store
    from lco_embedding.corpus.description import load_store_model

    loaded = load_store_model(open_store(store).manifest)
    expected, plain = LCOEmbedder(tiny_omni, quantization="int8"), LCOEmbedder(tiny_omni)
    texts = [q["text"] for q in QUERIES]
    assert loaded.quantization == "int8"
    np.testing.assert_allclose(loaded.encode_query(texts), expected.encode_query(texts), atol=1e-5, rtol=0)
    assert np.abs(loaded.encode_query(texts) - plain.encode_query(texts)).max() > 1e-4  # int8 is not float
