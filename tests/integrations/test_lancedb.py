"""The "lco-embedding" LanceDB embedding function, used through LanceDB's own API only: vectors made at ingest equal
``encode_document``, queries (text, a PIL image, an audio item) are embedded with the query prompt, and a table
opened again in a new connection keeps its function."""

# No `from __future__ import annotations`: pydantic evaluates the schemas' annotations (Vector(...)) in place.
from pathlib import Path

import numpy as np
import pytest

lancedb = pytest.importorskip("lancedb")

from lancedb.embeddings import get_registry  # noqa: E402
from lancedb.pydantic import LanceModel, Vector  # noqa: E402

from lco_embedding import LCOEmbedder  # noqa: E402

TOL = 1e-5
PROMPTS = {"query": "Find what matches: ", "document": ""}


@pytest.fixture(scope="module")
def function(tiny_omni):
    import lco_embedding.integrations.lancedb  # noqa: F401 - registers the function

    return (
        get_registry().get("lco-embedding").create(name=tiny_omni, device="cpu", embedder_kwargs={"prompts": PROMPTS})
    )


@pytest.fixture(scope="module")
def model(tiny_omni):
    return LCOEmbedder(tiny_omni, device="cpu", prompts=PROMPTS)


def _cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_text_column_is_embedded_at_ingest_and_searched_with_the_query_prompt(tmp_path, function, model):
    class Caption(LanceModel):
        text: str = function.SourceField()
        vector: Vector(function.ndims()) = function.VectorField()  # type: ignore[valid-type]

    texts = ["a cat on a mat", "stock markets fell", "bread with flour", "a kitten with yarn"]
    table = lancedb.connect(tmp_path / "db").create_table("captions", schema=Caption)
    table.add([{"text": text} for text in texts])
    stored = {row["text"]: np.asarray(row["vector"]) for row in table.to_arrow().to_pylist()}
    expected = model.encode_document(texts)
    for text, row in zip(texts, expected, strict=True):
        np.testing.assert_allclose(stored[text], row, atol=TOL, rtol=0)
    hits = table.search("where is the cat").metric("cosine").limit(4).to_list()
    query = model.encode_query("where is the cat")
    assert query.tolist() != model.encode("where is the cat").tolist()  # the query prompt made a difference
    for hit in hits:
        assert abs((1 - hit["_distance"]) - _cosine(query, stored[hit["text"]])) < TOL
    ranked = sorted(texts, key=lambda text: -_cosine(query, stored[text]))
    assert [hit["text"] for hit in hits] == ranked

    # A new connection re-creates the function from the table's metadata.
    again = lancedb.connect(tmp_path / "db").open_table("captions")
    assert [hit["text"] for hit in again.search("where is the cat").metric("cosine").limit(4).to_list()] == ranked


def test_media_columns_of_paths_and_bytes_and_media_queries(tmp_path, function, model, media):
    from PIL import Image

    class Media(LanceModel):
        source: str = function.SourceField()
        vector: Vector(function.ndims()) = function.VectorField()  # type: ignore[valid-type]

    sources = [media["png"], media["jpg"], media["wav"], media["flac"], media["mp4"], "a caption, as text"]
    table = lancedb.connect(tmp_path / "db").create_table("media", schema=Media)
    table.add([{"source": source} for source in sources])
    stored = {row["source"]: np.asarray(row["vector"]) for row in table.to_arrow().to_pylist()}
    for source, row in zip(sources, model.encode_document(sources), strict=True):
        np.testing.assert_allclose(stored[source], row, atol=TOL, rtol=0)

    image_query = Image.open(media["png"])
    hits = table.search(image_query).metric("cosine").limit(6).to_list()
    query = model.encode_query({"image": media["png"]})
    assert [hit["source"] for hit in hits] == sorted(sources, key=lambda s: -_cosine(query, stored[s]))
    assert abs((1 - hits[0]["_distance"]) - _cosine(query, stored[hits[0]["source"]])) < TOL

    audio_query = {"audio": media["wav"]}
    hits = table.search(audio_query).metric("cosine").limit(6).to_list()
    query = model.encode_query(audio_query)
    assert [hit["source"] for hit in hits] == sorted(sources, key=lambda s: -_cosine(query, stored[s]))

    # A column of bytes, read as images (modality="image").
    images = (
        get_registry()
        .get("lco-embedding")
        .create(name=function.name, device="cpu", modality="image", embedder_kwargs={"prompts": PROMPTS})
    )

    class Photo(LanceModel):
        data: bytes = images.SourceField()
        vector: Vector(images.ndims()) = images.VectorField()  # type: ignore[valid-type]

    photos = lancedb.connect(tmp_path / "db").create_table("photos", schema=Photo)
    photos.add([{"data": Path(media["png"]).read_bytes()}, {"data": Path(media["jpg"]).read_bytes()}])
    vectors = [np.asarray(row["vector"]) for row in photos.to_arrow().to_pylist()]
    np.testing.assert_allclose(vectors[0], stored[media["png"]], atol=TOL, rtol=0)
    np.testing.assert_allclose(vectors[1], stored[media["jpg"]], atol=TOL, rtol=0)
