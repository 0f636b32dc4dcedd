"""The request shapes other servers speak, with the real clients: typed content parts and vLLM's ``messages`` on
``/v1/embeddings`` (openai, httpx), Cohere's ``/v2/embed`` (the ``cohere`` client: every embedding type,
``output_dimension``, ``input_type``, ``truncate``), what was cut in ``usage``, and a table of malformed requests
that must each be a 4xx naming the field."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from lco_embedding import LCOEmbedder
from lco_embedding.serving.cohere import quantize
from tests.serving.conftest import NAME, data_uri, running_server

cohere = pytest.importorskip("cohere")

TOL = 1e-5
PROMPTS = {"query": "Find what answers this: ", "document": "Passage: "}
LONG = "word " * 400  # past max_length (300 tokens)


@pytest.fixture(scope="module")
def prompted(tiny_omni):
    """A server whose model has query and document prompts (no API key), and the same model locally."""
    with running_server(tiny_omni, embedder_kwargs={"prompts": PROMPTS}) as url:
        yield url, LCOEmbedder(tiny_omni, device="cpu", prompts=PROMPTS)


@pytest.fixture(scope="module")
def uris(media):
    return {
        "png": data_uri(media["png"], "image/png"),
        "jpg": data_uri(media["jpg"], "image/jpeg"),
        "wav": data_uri(media["wav"], "audio/wav"),
        "mp4": data_uri(media["mp4"], "video/mp4"),
        "wav_b64": base64.b64encode(Path(media["wav"]).read_bytes()).decode(),
    }


def _rows(response_json: dict) -> np.ndarray:
    return np.array([d["embedding"] for d in response_json["data"]], dtype=np.float32)


# ------------------------------------------------------------------------------------------------------- /v1
def test_typed_content_parts_are_items(prompted, uris):
    url, model = prompted
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    entries = [
        "plain text",
        {"type": "image_url", "image_url": {"url": uris["png"]}},
        [{"type": "image_url", "image_url": uris["jpg"]}, {"type": "text", "text": "a caption"}],
        {"type": "input_audio", "input_audio": {"data": uris["wav_b64"], "format": "wav"}},
        {"type": "video_url", "video_url": {"url": uris["mp4"]}},
        [{"type": "audio_url", "audio_url": {"url": uris["wav"]}}, {"type": "text", "text": "a tone"}],
    ]
    response = client.embeddings.create(model=NAME, input=entries, encoding_format="float")
    got = np.array([d.embedding for d in response.data], dtype=np.float32)
    expected = model.encode(
        [
            "plain text",
            {"image": uris["png"]},
            [{"type": "image", "image": uris["jpg"]}, {"type": "text", "text": "a caption"}],
            {"audio": uris["wav"]},
            {"video": uris["mp4"]},
            [{"type": "audio", "audio": uris["wav"]}, {"type": "text", "text": "a tone"}],
        ],
        show_progress_bar=False,
    )
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_messages_are_one_conversation_embedded_as_given(prompted, uris):
    url, model = prompted
    messages = [
        {"role": "system", "content": "You embed things."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": uris["png"]}},
                                     {"type": "text", "text": "Represent the image."}]},
    ]  # fmt: skip
    response = httpx.post(f"{url}/v1/embeddings", json={"model": NAME, "messages": messages}, timeout=60)
    assert response.status_code == 200, response.text
    conversation = [
        {"role": "system", "content": [{"type": "text", "text": "You embed things."}]},
        {"role": "user", "content": [{"type": "image", "image": uris["png"]},
                                     {"type": "text", "text": "Represent the image."}]},
    ]  # fmt: skip
    expected = model.encode(conversation, show_progress_bar=False)
    np.testing.assert_allclose(_rows(response.json())[0], expected, atol=TOL, rtol=0)
    assert len(response.json()["data"]) == 1


def test_usage_says_what_was_cut(prompted, media, uris):
    url, _ = prompted
    items = [LONG, {"audio": uris["wav"]}, {"video": uris["mp4"]}, "short"]
    response = httpx.post(f"{url}/v1/embeddings", json={"model": NAME, "input": items}, timeout=60)
    usage = response.json()["usage"]
    assert usage["text_truncated"] == 1 and usage["truncated_items"] == 1
    assert usage["video_frames_sampled"] == 1  # a 2-s clip at 8 fps is sampled at 2 fps
    assert usage["audio_truncated_seconds"] == 0
    metrics = httpx.get(f"{url}/metrics").text
    assert 'lco_truncated_items_total{kind="text"}' in metrics and 'lco_truncated_items_total{kind="video"}' in metrics


def test_sound_past_max_audio_seconds_is_reported(tiny_omni, media):
    with running_server(tiny_omni, embedder_kwargs={"max_audio_seconds": 0.5}) as url:
        wav = data_uri(media["wav"], "audio/wav")
        response = httpx.post(f"{url}/v1/embeddings", json={"model": NAME, "input": [{"audio": wav}]}, timeout=60)
    assert response.status_code == 200, response.text
    import soundfile

    expected = soundfile.info(media["wav"]).duration - 0.5
    assert abs(response.json()["usage"]["audio_truncated_seconds"] - expected) < 1e-3


# ------------------------------------------------------------------------------------------------------- /v2
@pytest.fixture(scope="module")
def co(prompted):
    return cohere.ClientV2(api_key="none", base_url=prompted[0])


def test_cohere_texts_every_embedding_type_and_input_types(co, prompted):
    _, model = prompted
    texts = ["a cat on a mat", "stock markets fell", "bread with flour"]
    types = ["float", "int8", "uint8", "binary", "ubinary", "base64"]
    documents = co.embed(model=NAME, texts=texts, input_type="search_document", embedding_types=types)
    expected = model.encode_document(texts, show_progress_bar=False)
    floats = np.array(documents.embeddings.float_, dtype=np.float32)
    np.testing.assert_allclose(floats, expected, atol=TOL, rtol=0)
    for kind in ("int8", "uint8", "binary", "ubinary"):
        assert getattr(documents.embeddings, kind) == quantize(floats, kind), kind
    decoded = np.stack([np.frombuffer(base64.b64decode(b), dtype="<f4") for b in documents.embeddings.base64])
    np.testing.assert_array_equal(decoded, floats)
    from sentence_transformers.util import quantize_embeddings

    for kind in ("binary", "ubinary"):  # the bit types as sentence-transformers defines them
        assert getattr(documents.embeddings, kind) == quantize_embeddings(floats, kind).tolist(), kind
    assert documents.texts == texts and documents.meta.billed_units.input_tokens > 0

    queries = co.embed(model=NAME, texts=texts[:1], input_type="search_query", embedding_types=["float"])
    np.testing.assert_allclose(queries.embeddings.float_[0], model.encode_query(texts[0]), atol=TOL, rtol=0)
    plain = co.embed(model=NAME, texts=texts[:1], input_type="clustering", embedding_types=["float"])
    np.testing.assert_allclose(plain.embeddings.float_[0], model.encode(texts[0]), atol=TOL, rtol=0)


def test_cohere_output_dimension_images_and_inputs(co, prompted, uris):
    _, model = prompted
    short = co.embed(model=NAME, texts=["a cat"], input_type="search_document", output_dimension=16)
    expected = model.encode_document(["a cat"], truncate_dim=16, show_progress_bar=False)
    np.testing.assert_allclose(short.embeddings.float_, expected, atol=TOL, rtol=0)
    images = co.embed(model=NAME, images=[uris["png"], uris["jpg"]], input_type="image", embedding_types=["float"])
    expected = model.encode_document([{"image": uris["png"]}, {"image": uris["jpg"]}], show_progress_bar=False)
    np.testing.assert_allclose(images.embeddings.float_, expected, atol=TOL, rtol=0)
    content = [{"type": "text", "text": "a caption"}, {"type": "image_url", "image_url": {"url": uris["png"]}}]
    inputs = co.embed(
        model=NAME, inputs=[{"content": content}], input_type="search_document", embedding_types=["float"]
    )
    parts = [{"type": "text", "text": "a caption"}, {"type": "image", "image": uris["png"]}]
    np.testing.assert_allclose(inputs.embeddings.float_[0], model.encode_document(parts), atol=TOL, rtol=0)


def test_cohere_truncate(co, prompted):
    _, model = prompted
    with pytest.raises(cohere.BadRequestError) as refused:
        co.embed(model=NAME, texts=["fine", LONG + "end"], input_type="search_document", truncate="NONE")
    assert "texts[1]" in refused.value.body["message"] and "truncate is NONE" in refused.value.body["message"]
    fine = co.embed(model=NAME, texts=["fine"], input_type="search_document", truncate="NONE")
    np.testing.assert_allclose(fine.embeddings.float_[0], model.encode_document("fine"), atol=TOL, rtol=0)
    text = "first " * 200 + "last " * 200
    end = co.embed(model=NAME, texts=[text], input_type="search_document", truncate="END")
    np.testing.assert_allclose(end.embeddings.float_[0], model.encode_document(text), atol=TOL, rtol=0)
    assert end.meta.truncation["text_truncated"] == 1
    start = co.embed(model=NAME, texts=[text], input_type="search_document", truncate="START")
    kept = model.pipeline().featurizer.text_batcher.keep_end(text)
    assert "first" not in kept and text.rstrip().endswith(kept.strip()) and len(kept) < len(text)
    np.testing.assert_allclose(start.embeddings.float_[0], model.encode_document(kept), atol=TOL, rtol=0)
    assert not np.allclose(start.embeddings.float_[0], end.embeddings.float_[0], atol=1e-3)


# ------------------------------------------------------------------------------------------ malformed requests
V1 = [
    ({"model": NAME}, "input"),
    ({"model": NAME, "input": [{"type": "picture", "picture": "x"}]}, "input[0]"),
    ({"model": NAME, "input": [[]]}, "input[0]"),
    ({"model": NAME, "input": [{"type": "image_url", "image_url": {"url": 5}}]}, "input[0]"),
    ({"model": NAME, "input": [{"type": "image_url", "image_url": {"url": "/etc/passwd"}}]}, "input[0]"),
    ({"model": NAME, "input": [{"type": "input_audio", "input_audio": "x"}]}, "input[0]"),
    ({"model": NAME, "input": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "../x"}}]},
     "input[0]"),
    ({"model": NAME, "input": [{"type": "text", "text": 3}]}, "input[0]"),
    ({"model": NAME, "input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90"}}]},
     "input[0]"),
    ({"model": NAME, "messages": []}, "messages"),
    ({"model": NAME, "messages": "hi"}, "messages"),
    ({"model": NAME, "messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
    ({"model": NAME, "messages": [{"role": "user", "content": 5}]}, "messages[0]"),
    ({"model": NAME, "messages": [{"role": "user", "content": [{"type": "video_url"}]}]}, "messages[0]"),
    ({"model": NAME, "input": "x", "messages": [{"role": "user", "content": "x"}]}, "input"),
]  # fmt: skip
V2 = [
    ({"input_type": "search_document", "texts": ["x"]}, "model"),
    ({"model": NAME, "texts": ["x"]}, "input_type"),
    ({"model": NAME, "input_type": "poetry", "texts": ["x"]}, "input_type"),
    ({"model": NAME, "input_type": "search_query"}, "texts"),
    ({"model": NAME, "input_type": "search_query", "texts": ["x"], "images": ["y"]}, "texts"),
    ({"model": NAME, "input_type": "search_query", "texts": []}, "texts"),
    ({"model": NAME, "input_type": "search_query", "texts": ["ok", "  "]}, "texts[1]"),
    ({"model": NAME, "input_type": "search_query", "texts": ["ok", 4]}, "texts[1]"),
    ({"model": NAME, "input_type": "image", "images": ["not a uri"]}, "images[0]"),
    ({"model": NAME, "input_type": "image", "images": ["data:image/png;base64,bm90"]}, "images[0]"),
    ({"model": NAME, "input_type": "search_query", "inputs": [{"content": "x"}]}, "inputs[0]"),
    ({"model": NAME, "input_type": "search_query", "inputs": [{"content": [{"type": "nope"}]}]}, "inputs[0]"),
    ({"model": NAME, "input_type": "search_query", "texts": ["x"], "embedding_types": ["int4"]}, "embedding_types"),
    ({"model": NAME, "input_type": "search_query", "texts": ["x"], "output_dimension": 0}, "output_dimension"),
    ({"model": NAME, "input_type": "search_query", "texts": ["x"], "output_dimension": 10**6}, "output_dimension"),
    ({"model": NAME, "input_type": "search_query", "texts": ["x"], "truncate": "MIDDLE"}, "truncate"),
    ({"model": "other", "input_type": "search_query", "texts": ["x"]}, "model"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), V1)
def test_a_malformed_v1_request_is_a_4xx_naming_the_field(prompted, body, field):
    response = httpx.post(f"{prompted[0]}/v1/embeddings", json=body, timeout=60)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["param"] == field, error


@pytest.mark.parametrize(("body", "field"), V2)
def test_a_malformed_v2_request_is_a_4xx_naming_the_field(prompted, body, field):
    response = httpx.post(f"{prompted[0]}/v2/embed", json=body, timeout=60)
    assert 400 <= response.status_code < 500, response.text
    answer = response.json()
    assert set(answer) == {"id", "message"} and field in answer["message"], answer
