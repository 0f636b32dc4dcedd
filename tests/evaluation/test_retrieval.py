"""``evaluate_retrieval`` and ``lco-embed eval`` on a dataset of four modalities with known answers: the metrics
equal pytrec_eval's on the same embeddings, copies of media are found first, a reused corpus gives the same numbers,
and the command line writes the results; ``--mteb`` says what is wrong with an unknown task or missing data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lco_embedding.evaluation import evaluate_retrieval, load_dataset
from tests.cli.conftest import run_cli

pytest.importorskip("pytrec_eval")


def test_metrics_per_pair_equal_pytrec_eval_on_the_same_embeddings(dataset, embedder, tmp_path):
    import pytrec_eval

    root, answers = dataset
    result = evaluate_retrieval(root, tmp_path / "out", model=embedder)
    assert list(result.pairs)[0] == "all -> all"
    assert {"image -> image", "audio -> audio", "video -> video", "text -> text"} <= set(result.pairs)
    for pair in ("image -> image", "audio -> audio", "video -> video"):  # copies of the same file: found first
        assert result.pairs[pair]["recall@1"] == 1.0 and result.pairs[pair]["mrr@10"] == 1.0, pair

    # The same ranking computed here from the embeddings alone, scored by pytrec_eval itself.
    data = load_dataset(root)
    corpus_ids = list(data.corpus)
    corpus = embedder.encode_document([{k: v for k, v in data.corpus[d].items() if k != "_id"} for d in corpus_ids])
    query_ids = list(answers)
    queries = embedder.encode_query([{k: v for k, v in data.queries[q].items() if k != "_id"} for q in query_ids])
    scores = queries @ corpus.T
    run = {
        q: {d: float(s) for d, s in zip(corpus_ids, row, strict=True)} for q, row in zip(query_ids, scores, strict=True)
    }
    expected = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10", "recall.1,10,100"}).evaluate(run)
    mean = {name: np.mean([v[name] for v in expected.values()]) for name in ("ndcg_cut_10", "recall_1", "recall_10")}
    got = result.pairs["all -> all"]
    assert got["ndcg@10"] == pytest.approx(mean["ndcg_cut_10"], abs=1e-6)
    assert got["recall@1"] == pytest.approx(mean["recall_1"], abs=1e-6)
    assert got["recall@10"] == pytest.approx(mean["recall_10"], abs=1e-6)
    assert got["queries"] == len(answers)

    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["pairs"] == result.pairs and written["settings"]["preset"] == "default"
    assert (tmp_path / "out" / "results.md").read_text().startswith("| pair |")
    assert (tmp_path / "out" / "results.png").stat().st_size > 1000

    again = evaluate_retrieval(root, tmp_path / "again", model=embedder, corpus_from=str(tmp_path / "out" / "corpus"))
    assert again.pairs == result.pairs  # the corpus reused, not embedded again
    calibrated = evaluate_retrieval(root, tmp_path / "calibrated", corpus_from=str(tmp_path / "out" / "corpus"))
    assert set(calibrated.pairs) == set(result.pairs)


def test_shuffled_qrels_drop_to_chance(dataset, embedder, tmp_path):
    root, answers = dataset
    data = load_dataset(root)
    rng = np.random.default_rng(0)
    documents = list(data.corpus)
    data.qrels = {q: {documents[int(rng.integers(len(documents)))]: 1} for q in answers}
    shuffled = evaluate_retrieval(data, tmp_path / "shuffled", model=embedder)
    right = evaluate_retrieval(
        root, tmp_path / "right", model=embedder, corpus_from=str(tmp_path / "shuffled" / "corpus")
    )
    assert right.pairs["all -> all"]["mrr@10"] > 0.6
    assert shuffled.pairs["all -> all"]["mrr@10"] < 0.3  # chance: about 1 / 16 at rank 10 over 29 documents


def test_a_bad_dataset_names_the_problem(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{"_id": "d1", "text": "y"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(ValueError, match="the corpus id 'd1' is given twice"):
        load_dataset(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td9\t1\n")
    with pytest.raises(ValueError, match=r"names ids the dataset does not have: queries \[\], corpus \['d9'\]"):
        load_dataset(tmp_path)


def test_the_command_line(dataset, tiny_omni, tmp_path):
    root, _ = dataset
    out = tmp_path / "eval"
    result = run_cli("eval", root, "--model", tiny_omni, "--out", out, "--preset", "mteb", "--dtype", "float32", "-q")
    assert "| all -> all |" in result.stdout and "image -> image" in result.stdout
    written = json.loads((out / "results.json").read_text())
    assert written["settings"]["preset"] == "mteb" and written["pairs"]["image -> image"]["recall@1"] == 1.0
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    assert manifest["settings"]["preset"] == "mteb"

    unknown = run_cli("eval", "--mteb", "NoSuchTaskAtAll", "--model", tiny_omni, "--out", tmp_path / "m", check=False)
    assert unknown.returncode != 0 and "mteb has no such task" in unknown.stderr
    both = run_cli("eval", root, "--mteb", "STS12", check=False)
    assert both.returncode != 0 and "not both" in both.stderr


def test_a_segmented_corpus_scores_each_document_by_its_best_segment(tmp_path, embedder):
    from lco_embedding import SegmentSpec

    root = tmp_path / "data"
    (root / "qrels").mkdir(parents=True)
    story = " ".join(f"Part {i}: the fox crossed river number {i}." for i in range(40))
    corpus = [{"_id": "long", "text": story}, {"_id": "short", "text": "a cat on a mat"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q", "text": "Part 7: the fox crossed river number 7."}) + "\n"
    )
    (root / "qrels" / "test.tsv").write_text("q\tlong\t1\n")
    result = evaluate_retrieval(root, tmp_path / "out", model=embedder, segment=SegmentSpec(text=20, text_overlap=4))
    ranked = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result.pairs["all -> all"]["queries"] == 1 and "per_query" in ranked
    from lco_embedding.corpus import read_embeddings

    rows = read_embeddings(tmp_path / "out" / "corpus").column("id").to_pylist()
    assert rows.count("long") > 3 and rows.count("short") == 1  # the long text in segments, one row for the short
    assert result.pairs["all -> all"]["recall@100"] == 1.0  # the document counted once, by its best segment


def test_a_corpus_of_pdf_pages_finds_each_page_from_its_image(tmp_path, embedder):
    """A ViDoRe-style layout: corpus rows are pages of PDFs (``pdf``, ``page``); each query, the image of one page,
    finds its page first."""
    from lco_embedding.preprocessing.pdf import PdfPage, render_page
    from tests.inputs.test_documents import image_pdf

    root = tmp_path / "data"
    (root / "qrels").mkdir(parents=True)
    image_pdf(root / "a.pdf", [(300, 400), (500, 200)])
    image_pdf(root / "b.pdf", [(400, 300)])
    pages = [("a.pdf", 1), ("a.pdf", 2), ("b.pdf", 1)]
    corpus = [{"_id": f"{name}#{page}", "pdf": name, "page": page} for name, page in pages]
    queries = []
    for number, (name, page) in enumerate(pages):
        render_page(PdfPage(str(root / name), page), 1280 * 28 * 28).save(root / f"q{number}.png")
        queries.append({"_id": f"q{number}", "image": f"q{number}.png"})
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries))
    (root / "qrels" / "test.tsv").write_text(
        "".join(f"q{i}\t{name}#{page}\t1\n" for i, (name, page) in enumerate(pages))
    )
    result = evaluate_retrieval(root, tmp_path / "out", model=embedder)
    assert result.pairs["image -> image"]["recall@1"] == 1.0 and result.pairs["image -> image"]["queries"] == 3
