"""The HTTP API with the real openai client and httpx: parity with encode, errors, auth, limits, batching,
back-pressure and disconnects."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import numpy as np
import openai
import pytest

from lco_embedding import SegmentSpec
from tests.serving.conftest import API_KEY, NAME, data_uri

TOL = 1e-5


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)


def _post(url: str, body: dict, key: str | None = API_KEY, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/embeddings", json=body, headers=headers, timeout=60, **kwargs)


def test_the_openai_client_gets_the_embeddings_of_encode(client, embedder):
    texts = ["a cat on a mat", "the quick brown fox", "a dog in the fog"]
    response = client.embeddings.create(model=NAME, input=texts)  # the client asks for base64 and decodes it
    got = np.array([item.embedding for item in response.data], dtype=np.float32)
    np.testing.assert_allclose(got, embedder.encode(texts, show_progress_bar=False), atol=TOL, rtol=0)
    assert [item.index for item in response.data] == [0, 1, 2] and response.model == NAME
    lengths = [embedder.pipeline().featurizer(i, {"text": t}, None, None).length for i, t in enumerate(texts)]
    assert response.usage.prompt_tokens == sum(lengths) == response.usage.total_tokens
    single = client.embeddings.create(model=NAME, input="a cat on a mat", encoding_format="float")
    np.testing.assert_allclose(single.data[0].embedding, got[0], atol=TOL, rtol=0)


def test_dimensions_truncate_then_normalise_like_encode(client, embedder):
    response = client.embeddings.create(model=NAME, input=["a cat", "a dog"], dimensions=16)
    got = np.array([item.embedding for item in response.data])
    expected = embedder.encode(["a cat", "a dog"], truncate_dim=16, show_progress_bar=False)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    assert got.shape == (2, 16)


def test_multimodal_items_and_base64(server, media, embedder):
    items = [
        {"image": data_uri(media["png"], "image/png")},
        {"audio": data_uri(media["wav"], "audio/wav")},
        {"video": data_uri(media["mp4"], "video/mp4")},
        {"text": "a caption", "image": data_uri(media["jpg"], "image/jpeg")},
        "plain text",
    ]
    response = _post(server, {"model": NAME, "input": items, "encoding_format": "base64"})
    assert response.status_code == 200, response.text
    got = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in response.json()["data"]])
    expected = embedder.encode([{"text": i} if isinstance(i, str) else i for i in items], show_progress_bar=False)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


@pytest.mark.parametrize(
    ("entry", "index", "message"),
    [
        ({"image": "data:image/png;base64,bm90IGFuIGltYWdl"}, 1, "cannot decode the image"),
        ({"image": "/etc/passwd"}, 1, "does not read files on its own disk"),
        ({"image": "https://example.com/cat.png"}, 1, "remote URLs are not fetched"),
        ({"audio": "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA="}, 1,
         "audio is empty"),
        ("   ", 1, "empty text"),
        ({"picture": "x"}, 1, "not understood"),
        ({"text": 5}, 1, "'text' must be a string"),
    ],
)  # fmt: skip
def test_a_bad_item_is_a_400_naming_its_index(server, entry, index, message):
    response = _post(server, {"model": NAME, "input": ["fine", entry]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"].startswith(f"input[{index}]: ") and message in error["message"]
    assert error["param"] == f"input[{index}]" and error["type"] == "invalid_request_error"


def test_request_level_errors(server, client):
    cases = [
        ({"model": NAME, "input": [1, 2, 3]}, 400, "token arrays are not supported"),
        ({"model": NAME, "input": []}, 400, "input is empty"),
        ({"model": NAME, "input": ["x"] * 9}, 400, "at most 8 per request"),
        ({"model": NAME, "input": "x", "dimensions": 0}, 400, "dimensions"),
        ({"model": NAME, "input": "x", "dimensions": 65}, 400, "between 1 and 64"),
        ({"model": NAME, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
        (
            {"model": NAME, "input": "x", "prompt_name": "nope"},
            400,
            "prompt_name 'nope' is not one of this server's prompts (it has none); the server adds prompts with "
            "`lco-embed serve --prompt NAME=TEXT`.",
        ),
        ({"input": "x"}, 400, "model: Field required"),
        ({"model": "other", "input": "x"}, 404, "is not served here"),
        ({"model": NAME, "input": "x" * (2**20 + 10)}, 413, "larger than this server's limit"),
    ]
    for body, status, message in cases:
        response = _post(server, body)
        assert response.status_code == status, (body, response.text[:300])
        assert message in response.json()["error"]["message"], response.text[:300]
    with pytest.raises(openai.BadRequestError, match=r"input\[1\]"):
        client.embeddings.create(model=NAME, input=["fine", "  "])
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="other", input="x")


def test_auth_models_health_ready_metrics(server):
    assert _post(server, {"model": NAME, "input": "x"}, key=None).status_code == 401
    response = _post(server, {"model": NAME, "input": "x"}, key="wrong")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).embeddings.create(model=NAME, input="x")
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server}/ready").json() == {"status": "ready", "model": NAME, "dimension": 64}
    assert httpx.get(f"{server}/metrics").status_code == 401
    models = openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY).models.list()
    assert [m.id for m in models.data] == [NAME]
    metrics = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).text
    for name in ("lco_requests_total", "lco_items_total", "lco_batch_items_bucket", "lco_queue_items",
                 "lco_request_seconds_bucket", "lco_cancelled_items_total"):  # fmt: skip
        assert name in metrics


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def _wait_for(server: str, metric: str, value: float) -> None:
    """Wait until the server's ``metric`` reaches ``value`` (a state, reached in any time; the deadline only stops
    a broken server from hanging the suite)."""
    deadline = time.monotonic() + 120
    while _metric(server, metric) != value:
        assert time.monotonic() < deadline, f"{metric} never reached {value}: {_metric(server, metric)}"
        time.sleep(0.01)


def test_concurrent_requests_share_forward_passes(batching_server, embedder):
    texts = ["one", "two", "three"]
    batches_before, items_before = (
        _metric(batching_server, "lco_batch_items_count"),
        _metric(batching_server, "lco_items_total"),
    )
    results: dict[int, httpx.Response] = {}

    def send(i: int) -> None:
        results[i] = _post(batching_server, {"model": NAME, "input": texts[i]}, key=None)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.status_code == 200 for r in results.values())
    got = np.array([results[i].json()["data"][0]["embedding"] for i in range(3)])
    np.testing.assert_allclose(got, embedder.encode(texts, show_progress_bar=False), atol=TOL, rtol=0)
    assert _metric(batching_server, "lco_items_total") - items_before == 3
    assert _metric(batching_server, "lco_batch_items_count") - batches_before == 1  # three requests, one pass


def test_a_full_queue_answers_429_with_retry_after(gated_server):
    server, gate = gated_server
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        response = _post(server, {"model": NAME, "input": "x"}, key=None)
        with lock:
            responses.append(response)

    gate.close()
    held = [threading.Thread(target=send) for _ in range(3)]
    held[0].start()
    assert gate.entered.wait(120)  # the first request's forward pass waits at the gate
    for thread in held[1:]:
        thread.start()
    _wait_for(server, "lco_queue_items", 3)  # the server now holds as many items as it may
    refused = [_post(server, {"model": NAME, "input": "y"}, key=None) for _ in range(4)]
    gate.open()
    for thread in held:
        thread.join()
    assert [r.status_code for r in refused] == [429] * 4 and sorted(r.status_code for r in responses) == [200] * 3
    assert int(refused[0].headers["Retry-After"]) >= 1 and refused[0].json()["error"]["type"] == "rate_limit_error"


def test_a_disconnected_client_is_dropped_without_harming_the_batch(gated_server, embedder):
    server, gate = gated_server
    cancelled_before = _metric(server, "lco_cancelled_items_total")
    gate.close()
    first: dict[str, httpx.Response] = {}
    threads = [threading.Thread(target=lambda: first.setdefault("r", _post(server, {"model": NAME, "input": "a"})))]
    threads[0].start()
    assert gate.entered.wait(120)  # the model is busy: what comes next waits in the queue
    address = urlparse(server)
    body = json.dumps({"model": NAME, "input": "a client that leaves"}).encode()
    raw = socket.create_connection((address.hostname, address.port))
    raw.sendall(
        b"POST /v1/embeddings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )  # fmt: skip
    stayed: dict[str, httpx.Response] = {}
    threads.append(
        threading.Thread(target=lambda: stayed.setdefault("r", _post(server, {"model": NAME, "input": "stay"})))
    )
    threads[1].start()
    _wait_for(server, "lco_pending_items", 2)  # both queued for the model
    raw.close()
    _wait_for(server, "lco_queue_items", 2)  # the server saw the disconnect and gave back the leaver's room
    gate.open()
    for thread in threads:
        thread.join()
    assert first["r"].status_code == 200 and stayed["r"].status_code == 200
    np.testing.assert_allclose(stayed["r"].json()["data"][0]["embedding"], embedder.encode("stay"), atol=TOL, rtol=0)
    assert _metric(server, "lco_cancelled_items_total") == cancelled_before + 1  # dropped, never run


def test_32_concurrent_requests_each_get_their_own_embedding(server, embedder):
    """No cross-talk: 32 connections at once (so requests share forward passes), each answered with the
    embedding of its own text."""
    import asyncio

    texts = [f"text number {i}: " + "word " * (i % 7) for i in range(64)]

    async def run() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server, headers=headers, limits=limits, timeout=60) as session:
            body = [{"model": NAME, "input": text, "encoding_format": "float"} for text in texts]
            return await asyncio.gather(*(session.post("/v1/embeddings", json=b) for b in body))

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * len(texts)
    got = np.array([r.json()["data"][0]["embedding"] for r in responses])
    np.testing.assert_allclose(got, embedder.encode(texts, show_progress_bar=False), atol=TOL, rtol=0)


def test_an_item_may_carry_its_own_media_settings(server, embedder, tmp_path):
    from PIL import Image

    from lco_embedding.testing import synthetic_image

    photo = tmp_path / "photo.png"
    Image.fromarray(synthetic_image(240, 320, np.random.default_rng(0))).save(photo)
    small = 8 * 28 * 28
    body = {
        "model": NAME,
        "input": [{"image": data_uri(photo, "image/png"), "max_pixels": small}],
        "encoding_format": "float",
    }
    response = _post(server, body)
    assert response.status_code == 200, response.text
    got = np.array(response.json()["data"][0]["embedding"])
    np.testing.assert_allclose(got, embedder.encode({"image": str(photo), "max_pixels": small}), atol=TOL, rtol=0)
    assert not np.allclose(got, embedder.encode({"image": str(photo)}), atol=1e-3)  # the budget took effect
    refused = _post(server, {"model": NAME, "input": ["fine", {"text": "words", "fps": 2}]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "input[1]"
    assert "'fps' applies to video" in refused.json()["error"]["message"]


def test_an_item_with_segment_gets_one_embedding_per_segment(client, server, embedder, tmp_path):
    """Over the real openai client: a long audio and a long text cut into segments (with their place), beside a
    plain item; each equals encode_segments."""
    from lco_embedding.testing import write_wav

    rate = 8000  # under the test server's 1 MiB body limit as a data URI
    t = np.arange(35 * rate) / rate
    wav = tmp_path / "talk.wav"
    write_wav(wav, 0.3 * np.sin(2 * np.pi * (220 + 5 * t) * t), rate)
    text = " ".join(f"Sentence {i} tells of the {('cat', 'dog')[i % 2]} and its day." for i in range(12))
    inputs = [
        "a plain text",
        {"audio": data_uri(wav, "audio/wav"), "segment": {"window": 10}},
        {"text": text, "segment": {"text": 40, "text_overlap": 8}},
    ]
    response = client.embeddings.create(model=NAME, input=inputs)
    entries = [(item.index, (item.model_extra or {}).get("segment"), item) for item in response.data]
    assert [index for index, _, _ in entries][:5] == [0, 1, 1, 1, 1]
    got = {index: np.array([e.embedding for i, _, e in entries if i == index], np.float32) for index in (0, 1, 2)}
    audio = embedder.encode_segments(str(wav), window=10)
    story = embedder.encode_segments(text, SegmentSpec(text=40, text_overlap=8))
    np.testing.assert_allclose(got[0][0], embedder.encode("a plain text"), atol=TOL, rtol=0)
    np.testing.assert_allclose(got[1], audio.embeddings, atol=TOL, rtol=0)
    np.testing.assert_allclose(got[2], story.embeddings, atol=TOL, rtol=0)
    places = [(e.model_extra["start"], e.model_extra["end"]) for i, _, e in entries if i == 1]
    assert places == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 35.0)]
    assert "segment" not in (entries[0][2].model_extra or {})
    refused = _post(server, {"model": NAME, "input": [{"text": "x", "segment": {"frames": 3}}]})
    assert refused.status_code == 400 and "segment keys ['frames']" in refused.json()["error"]["message"]


def test_an_item_may_ask_for_its_videos_sound(server, embedder, tmp_path):
    from lco_embedding.testing import write_clip_with_sound

    clip = write_clip_with_sound(tmp_path / "clip.mp4", seconds=2.0)
    body = {"model": NAME, "input": [{"video": data_uri(clip, "video/mp4"), "use_audio_in_video": True}]}
    response = _post(server, {**body, "encoding_format": "float"})
    assert response.status_code == 200, response.text
    got = np.array(response.json()["data"][0]["embedding"])
    want = embedder.encode({"video": str(clip), "use_audio_in_video": True})
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    assert float(got @ embedder.encode(str(clip))) < 0.99


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("image", "'min_pixels' of 1,000,000,000 is above the 1,003,520 pixels per image"),
        ("video", "'min_pixels' of 1,000,000,000 is above the 602,112 pixels per video frame"),
        ({"text": "word " * 500, "segment": {"text": 1_000_000}}, "text windows of 1,000,000 tokens are longer than"),
        ({"text": "x", "segment": {"window": 1e308}}, "segment audio must be a positive number of seconds (at most"),
        ({"video": "clip", "fps": 1e300}, "'fps' must be at most 60 frames per second"),  # JSON has no inf
    ],
)
def test_budgets_and_segments_past_the_limits_are_a_400_naming_the_item(server, media, entry, message):
    """What once grew the server by 13.3 GB (a billion pixels asked for a 64x64 image) or claimed a span the model
    never saw (a text window past max_length) is refused at once, naming the item."""
    from lco_embedding.testing import peak_memory_growth

    if entry in ("image", "video"):
        path, mime = (media["png"], "image/png") if entry == "image" else (media["mp4"], "video/mp4")
        entry = {entry: data_uri(path, mime), "min_pixels": 10**9, "max_pixels": 10**9}
    elif "video" in entry:
        entry = {**entry, "video": data_uri(media["mp4"], "video/mp4")}
    body = json.dumps({"model": NAME, "input": ["fine", entry]})
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    response, grown = peak_memory_growth(
        lambda: httpx.post(f"{server}/v1/embeddings", content=body, headers=headers, timeout=60)
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input[1]" and error["message"].startswith("input[1]: ") and message in error["message"]
    assert grown < 100 * 2**20, grown  # the server runs in this process


def test_a_request_past_the_queued_tokens_gets_429_while_others_wait(tiny_omni, media):
    """Admission counts an item's tokens after its own media settings: a request whose featurized items would take
    the queue past max_queue_tokens while others wait is answered 429 with Retry-After; alone it runs. A request
    whose own tokens pass max_queue_tokens could never be admitted: 413 naming the limit, never 429."""
    from tests.serving.conftest import Gate, running_server

    gate = Gate()
    image = {"image": data_uri(media["png"], "image/png")}  # 105 tokens; "y" is 96
    with running_server(tiny_omni, gate, max_wait_ms=0, max_queue_tokens=150) as server:
        assert _post(server, {"model": NAME, "input": [image]}, key=None).status_code == 200  # alone: runs
        never = _post(server, {"model": NAME, "input": [image, image]}, key=None)
        assert never.status_code == 413 and "queues at most 150 (max_queue_tokens)" in never.text, never.text
        assert "Retry-After" not in never.headers
        gate.close()
        results: list[httpx.Response] = []
        first = threading.Thread(target=lambda: results.append(_post(server, {"model": NAME, "input": "x"}, key=None)))
        first.start()
        assert gate.entered.wait(120)  # the first request is in the model
        second = threading.Thread(target=lambda: results.append(_post(server, {"model": NAME, "input": "y"}, key=None)))
        second.start()
        _wait_for(server, "lco_pending_items", 1)  # the second waits for the model
        refused = _post(server, {"model": NAME, "input": [image]}, key=None)
        gate.open()
        first.join()
        second.join()
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1, refused.text
    assert [r.status_code for r in results] == [200, 200]


def test_pdf_pages_are_items_and_a_segmented_pdf_gives_one_embedding_per_page(client, server, embedder, tmp_path):
    from lco_embedding.preprocessing.pdf import PdfPage, render_page
    from tests.inputs.test_documents import text_pdf, with_broken_page

    path = tmp_path / "report.pdf"
    uri = "data:application/pdf;base64," + base64.b64encode(text_pdf(path)).decode()
    small = 40 * 28 * 28
    inputs = [{"pdf": uri, "page": 2, "max_pixels": small}, {"pdf": uri, "segment": True, "max_pixels": small}]
    response = client.embeddings.create(model=NAME, input=inputs)
    entries = [(item.index, item.model_extra or {}, np.array(item.embedding, np.float32)) for item in response.data]
    assert [index for index, _, _ in entries] == [0, 1, 1]
    want = embedder.encode({"pdf": str(path), "page": 2, "max_pixels": small})
    np.testing.assert_allclose(entries[0][2], want, atol=TOL, rtol=0)
    pages = embedder.encode_segments({"pdf": str(path), "max_pixels": small})
    np.testing.assert_allclose(np.stack([e for _, _, e in entries[1:]]), pages.embeddings, atol=TOL, rtol=0)
    assert [(extra["start"], extra["end"]) for _, extra, _ in entries[1:]] == [(1.0, 1.0), (2.0, 2.0)]
    # OpenAI's file content part, with the page ours adds: the same page, with a caption after it.
    parts = [{"type": "file", "file": {"file_data": uri, "page": 2}}, {"type": "text", "text": "the costs"}]
    response = client.embeddings.create(model=NAME, input=[parts])
    page = render_page(PdfPage(str(path), 2), 1280 * 28 * 28)
    want = embedder.encode([[{"type": "image", "image": page}, {"type": "text", "text": "the costs"}]])[0]
    np.testing.assert_allclose(response.data[0].embedding, want, atol=TOL, rtol=0)
    # A page that fails fails the request, naming it; the document's other pages are asked for with "pages".
    broken = base64.b64encode(open(with_broken_page(path, 2), "rb").read()).decode()
    broken = {"pdf": "data:application/pdf;base64," + broken, "segment": True, "max_pixels": small}
    refused = _post(server, {"model": NAME, "input": [broken]})
    assert refused.status_code == 400 and "page 2 cannot be loaded" in refused.json()["error"]["message"]
    response = client.embeddings.create(model=NAME, input=[{**broken, "pages": [1]}])
    np.testing.assert_allclose(response.data[0].embedding, pages.embeddings[0], atol=TOL, rtol=0)
    for entry, message in (
        ([{"type": "file", "file": {"file_data": uri}}], "the file part names no page"),
        ({"pdf": uri}, "container of pages"),
        ({"pdf": "/srv/report.pdf", "page": 1}, "does not read files on its own disk"),
        ({"pdf": uri, "page": 3}, "page 3 is not in the PDF: it has 2 pages"),
    ):
        refused = _post(server, {"model": NAME, "input": [entry]})
        assert refused.status_code == 400 and message in refused.json()["error"]["message"], refused.text
