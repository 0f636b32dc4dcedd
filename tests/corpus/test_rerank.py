"""A second stage on a store's search (a folder, LanceDB, Milvus): each first-stage hit's content is read back from
its source (files, PDF pages, text and audio windows, table rows) and scored by the reranker with the query; hits are
ranked by that score, which equals the reranker's score of the same item; a hit that cannot be read back follows,
named."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from lco_embedding import LCOReranker
from lco_embedding.corpus import encode_corpus, search_folder
from tests.corpus.test_update import target
from tests.inputs.test_documents import text_pdf

TOL = 1e-5


@pytest.fixture(scope="module")
def reranker(tiny_reranker) -> LCOReranker:
    return LCOReranker(tiny_reranker, device="cpu")


@pytest.mark.parametrize("kind", ["parquet", "lancedb", "milvus"])
def test_reranked_hits_carry_the_rerankers_score_of_their_content(tmp_path, embedder, reranker, media, caplog, kind):
    from PIL import Image

    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "cat.txt").write_text("a cat on a mat")
    (folder / "dog.txt").write_text("a dog in the fog")
    Image.open(media["png"]).save(folder / "gradient.png")
    text_pdf(folder / "report.pdf", texts=("Revenue rose", "Costs fell"))
    (folder / "gone.txt").write_text("the quick brown fox")
    table = tmp_path / "captions.jsonl"
    table.write_text(
        json.dumps({"id": "c1", "text": "a cat asleep"}) + "\n" + json.dumps({"id": "c2", "image": media["jpg"]}) + "\n"
    )
    out = target(kind, tmp_path, "emb")
    encode_corpus([folder, table], out, model=embedder, show_progress_bar=False)
    (folder / "gone.txt").unlink()  # a hit whose source is gone cannot be read back
    query = "a cat"
    vector = embedder.encode(query)
    first = search_folder(out, vector, 10)[0]
    with caplog.at_level(logging.WARNING):
        hits = search_folder(out, vector, 10, rerank=reranker, query_items=query, rerank_k=10)[0]
    assert len(hits) == len(first) == 8 and [hit.rank for hit in hits] == list(range(1, 9))
    items = {
        "cat.txt": {"text": "a cat on a mat"},
        "dog.txt": {"text": "a dog in the fog"},
        "gradient.png": {"image": str(folder / "gradient.png")},
        "c1": {"text": "a cat asleep"},
        "c2": {"image": media["jpg"]},
    }
    for page in (1, 2):
        items[f"report.pdf@{page}"] = {"pdf": str(folder / "report.pdf"), "page": page}
    reranked = [hit for hit in hits if hit.rerank_score is not None]
    for hit in reranked:
        name = hit.id.rsplit("/", 1)[-1] + (f"@{hit.start:.0f}" if hit.start is not None else "")
        assert hit.rerank_score == pytest.approx(reranker.predict([(query, items[name])])[0], abs=TOL)
    assert [hit.rerank_score for hit in reranked] == sorted((hit.rerank_score for hit in reranked), reverse=True)
    assert hits[-1].id.endswith("gone.txt") and hits[-1].rerank_score is None  # last, and named in a warning
    assert "gone.txt" in caplog.text
    cosines = {hit.row: hit.score for hit in first}
    assert all(hit.score == pytest.approx(cosines[hit.row]) for hit in hits)  # the first stage's score is kept
    best = search_folder(out, vector, 2, rerank=reranker, query_items=query, rerank_k=10)[0]
    assert [hit.row for hit in best] == [hit.row for hit in hits[:2]]
    with pytest.raises(ValueError, match="query_items"):
        search_folder(out, vector, 2, rerank=reranker)


def test_windows_of_texts_and_sounds_are_read_back(tmp_path, embedder, reranker):
    from lco_embedding import SegmentSpec
    from lco_embedding.testing import write_wav

    folder = tmp_path / "long"
    folder.mkdir()
    story = " ".join(f"Line {i} speaks of the {('sun', 'moon')[i % 2]} tonight." for i in range(10))
    (folder / "story.txt").write_text(story)
    t = np.arange(25 * 16000) / 16000
    write_wav(folder / "talk.wav", 0.3 * np.sin(2 * np.pi * (180 + 6 * t) * t), 16000)
    out = tmp_path / "emb"
    spec = SegmentSpec(audio=10.0, text=30, text_overlap=5)
    encode_corpus([folder], out, model=embedder, segment=spec, show_progress_bar=False)
    hits = search_folder(out, embedder.encode("the moon"), 20, rerank=reranker, query_items="the moon", rerank_k=20)[0]
    assert all(hit.rerank_score is not None for hit in hits)
    window = next(hit for hit in hits if hit.id.endswith("story.txt") and hit.start > 0)
    want = reranker.predict([("the moon", story[int(window.start) : int(window.end)])])[0]
    assert window.rerank_score == pytest.approx(want, abs=TOL)
    sound = next(hit for hit in hits if hit.id.endswith("talk.wav") and hit.start == 10.0)
    import soundfile

    samples, rate = soundfile.read(folder / "talk.wav", dtype="float32")  # written at 16 kHz: seconds 10-20 exactly
    clip = {"audio": {"array": samples[10 * rate : 20 * rate], "sampling_rate": rate}}
    assert sound.end == 20.0 and sound.rerank_score == pytest.approx(reranker.predict([("the moon", clip)])[0], abs=TOL)
