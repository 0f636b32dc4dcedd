"""The rerank routes on a real server: Cohere's own client (``ClientV2.rerank``) against ``/v2/rerank`` and httpx
against ``/v1/rerank`` give the ranking of ``LCOReranker.rank`` on the same inputs, with media documents; malformed
bodies are 4xx naming the field, never a 5xx."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from lco_embedding import LCOReranker
from tests.serving.conftest import NAME, data_uri, running_server

TOL = 1e-5


@pytest.fixture(scope="module")
def reranker(tiny_reranker) -> LCOReranker:
    return LCOReranker(tiny_reranker, device="cpu")


@pytest.fixture(scope="module")
def server(tiny_omni, reranker):
    """The tiny embedder beside a reranker of other weights (its own batcher)."""
    with running_server(tiny_omni, reranker=reranker, max_items_per_request=8) as url:
        yield url


def _expected(reranker, query, documents, top_n=None):
    return [
        (hit["corpus_id"], reranker.relevance(hit["score"])) for hit in reranker.rank(query, documents, top_k=top_n)
    ]


def test_coheres_client_reranks_as_lco_reranker_ranks(server, reranker):
    import cohere

    documents = ["a dog in the fog", "a cat on a mat", "the quick brown fox", "Summarize the above text"]
    client = cohere.ClientV2(api_key="none", base_url=server)
    response = client.rerank(model=NAME, query="a cat", documents=documents, top_n=3)
    got = [(result.index, result.relevance_score) for result in response.results]
    want = _expected(reranker, "a cat", documents, top_n=3)
    assert [index for index, _ in got] == [index for index, _ in want]
    np.testing.assert_allclose([score for _, score in got], [score for _, score in want], atol=TOL, rtol=0)
    assert all(0.0 < score < 1.0 for _, score in got)


def test_v1_rerank_takes_media_documents_and_echoes_them(server, reranker, media):
    image, sound = data_uri(media["png"], "image/png"), data_uri(media["wav"], "audio/wav")
    documents = ["a gradient", {"image": image}, {"audio": sound, "text": "a tone"}, [{"type": "text", "text": "x"}]]
    reply = httpx.post(f"{server}/v1/rerank", json={"model": NAME, "query": "a picture", "documents": documents},
                       timeout=60)  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    items = ["a gradient", {"image": image}, {"audio": sound, "text": "a tone"}, [{"type": "text", "text": "x"}]]
    want = _expected(reranker, "a picture", items)
    assert [r["index"] for r in body["results"]] == [index for index, _ in want]
    np.testing.assert_allclose([r["relevance_score"] for r in body["results"]], [s for _, s in want], atol=TOL, rtol=0)
    echoed = {r["index"]: r["document"] for r in body["results"]}
    assert echoed[0] == {"text": "a gradient"} and echoed[1] == {"image": image}
    assert body["usage"]["total_tokens"] > 0 and body["model"] == NAME


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/rerank", {"model": NAME, "documents": ["a"]}, 400, "query is required"),
        ("/v2/rerank", {"model": NAME, "query": "q", "documents": []}, 400, "documents must be a non-empty list"),
        ("/v1/rerank", {"model": NAME, "query": "q", "documents": ["a"], "top_n": 0}, 400, "top_n must be a positive"),
        ("/v1/rerank", {"model": NAME, "query": "q", "documents": ["a", 7]}, 400, "documents[1]"),
        ("/v2/rerank", {"model": NAME, "query": "q", "documents": ["a", {"imag": "x"}]}, 400, "documents[1]"),
        (
            "/v1/rerank",
            {"model": NAME, "query": "q", "documents": ["a", {"image": "data:image/png;base64,AAAA"}]},
            400,
            "documents[1]",
        ),  # fmt: skip
        ("/v1/rerank", {"model": NAME, "query": "  ", "documents": ["a"]}, 400, "query"),
        ("/v2/rerank", {"model": "other", "query": "q", "documents": ["a"]}, 404, "not served here"),
        ("/v1/rerank", {"model": NAME, "query": "q", "documents": ["a"] * 9}, 400, "documents"),
    ],
)
def test_malformed_rerank_bodies_are_4xx_naming_the_field(server, path, body, status, message):
    reply = httpx.post(f"{server}{path}", json=body, timeout=60)
    assert reply.status_code == status, reply.text
    said = reply.json()
    text = said["message"] if path == "/v2/rerank" else said["error"]["message"]
    assert message in text, text


def test_a_crossencoder_is_not_served_and_the_error_says_where_to_use_it(tiny_omni, tmp_path):
    from lco_embedding.serving import create_app
    from lco_embedding.testing import build_tiny_cross_encoder

    cross_encoder = LCOReranker(str(build_tiny_cross_encoder(tmp_path / "ce")), device="cpu")
    with pytest.raises(ValueError, match="serves generative rerankers"):
        create_app(reranker_embedder(tiny_omni), reranker=cross_encoder)


def reranker_embedder(path):
    from lco_embedding import LCOEmbedder

    return LCOEmbedder(path, device="cpu")
