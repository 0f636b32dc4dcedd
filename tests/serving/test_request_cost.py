"""What one request may cost the server: items and content parts in every request shape, tokens per item under
every preset (the model card's, which cuts no text, included), and the request's tokens in admission. Past a bound
a request is refused with a 4xx naming the limit, before anything in it is decoded, and never with 429 when it
could never be admitted; meanwhile other clients are answered."""

from __future__ import annotations

import base64
import io
import threading

import httpx
import numpy as np
import pytest

from lco_embedding.testing import peak_memory_growth
from tests.serving.conftest import NAME, data_uri, running_server

MB_TEXT = "word " * (2**20 // 5)  # 1 MB of text: ~210,000 tokens


def _tiny_png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def default_server(tiny_omni):
    with running_server(tiny_omni) as url:
        yield url


@pytest.fixture(scope="module")
def card_server(tiny_omni):
    """The model card's settings: no text cut."""
    with running_server(tiny_omni, embedder_kwargs={"preset": "card"}) as url:
        yield url


def _v1(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json={"model": NAME, **body}, timeout=120)


def _v2(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v2/embed", json={"model": NAME, "input_type": "search_document", **body}, timeout=120)


@pytest.mark.parametrize("count", [300, 3000])
@pytest.mark.parametrize("shape", ["input", "texts", "images", "inputs", "messages"])
def test_no_request_shape_takes_more_items_or_parts_than_the_limit(default_server, shape, count):
    png = _tiny_png()
    body, post = {
        "input": ({"input": ["x"] * count}, _v1),
        "texts": ({"texts": ["x"] * count}, _v2),
        "images": ({"images": [png] * count}, _v2),
        "inputs": ({"inputs": [{"content": [{"type": "text", "text": "x"}]}] * count}, _v2),
        "messages": ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * 2 * count}]}, _v1),
    }[shape]
    response = post(default_server, body)
    assert response.status_code == 400, response.text  # not 429: waiting would never help
    if shape == "messages":  # one item of many parts
        assert f"messages has {2 * count:,} content parts; this server takes at most 512 per request" in response.text
    else:
        assert f"{shape} has {count:,} items; this server takes at most 256 per request" in response.text


def test_a_request_the_queue_could_never_hold_is_413_not_429(tiny_omni):
    with running_server(tiny_omni, max_items_per_request=2000, max_parts_per_request=4000, max_queue_items=1024) as url:
        response = _v1(url, {"input": ["x"] * 1500})
        assert response.status_code == 413 and "holds at most 1,024 at once (max_queue_items)" in response.text
        assert "Retry-After" not in response.headers
        assert _v1(url, {"input": ["x"] * 1000}).status_code == 200


def test_truncate_start_reports_the_cut(default_server):
    start = _v2(default_server, {"texts": [MB_TEXT], "truncate": "START"})
    assert start.status_code == 200, start.text
    assert start.json()["meta"]["truncation"]["text_truncated"] == 1
    end = _v2(default_server, {"texts": [MB_TEXT], "truncate": "END"})
    assert end.json()["meta"]["truncation"]["text_truncated"] == 1
    short = _v2(default_server, {"texts": ["a few words"], "truncate": "START"})
    assert short.json()["meta"]["truncation"]["text_truncated"] == 0


def _refused_while_others_are_answered(url: str, post, body: dict) -> tuple[httpx.Response, list[int], int]:
    """Send ``body`` while another client sends small requests; the big request's answer, the others' statuses and
    how far this process's peak memory (the server's, it runs here) rose."""
    others: list[int] = []
    started = threading.Event()

    def other_client() -> None:
        started.set()
        for _ in range(3):
            others.append(_v1(url, {"input": ["a small request"]}).status_code)

    thread = threading.Thread(target=other_client)
    response, grown = peak_memory_growth(lambda: (thread.start(), started.wait(60), post(url, body))[-1])
    thread.join()
    return response, others, grown


def test_a_message_of_20000_parts_is_refused_before_decoding(default_server):
    png = _tiny_png()
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png}}] * 20_000}]}
    _v1(default_server, {"input": ["warm up"]})
    response, others, grown = _refused_while_others_are_answered(default_server, _v1, body)
    assert response.status_code == 400, response.text
    assert "20,000 content parts; this server takes at most 512 per request" in response.json()["error"]["message"]
    assert response.json()["error"]["param"] == "messages"
    assert others == [200, 200, 200] and grown < 100 * 2**20, grown


@pytest.mark.parametrize("route", ["v1", "v2"])
def test_a_1_mb_text_under_the_card_preset_is_refused_at_the_item_token_limit(card_server, route):
    post, body = (_v1, {"input": ["fine", MB_TEXT]}) if route == "v1" else (_v2, {"texts": ["fine", MB_TEXT]})
    post(card_server, {"input": ["warm up"]} if route == "v1" else {"texts": ["warm up"]})
    response, others, grown = _refused_while_others_are_answered(card_server, post, body)
    assert response.status_code == 400, response.text
    assert "longer than the 32,768 tokens this server embeds per item (max_item_tokens)" in response.text
    assert ("input[1]" if route == "v1" else "texts[1]") in response.text
    assert others == [200, 200, 200] and grown < 100 * 2**20, grown
    assert (
        post(card_server, {"input": ["word " * 2000]} if route == "v1" else {"texts": ["word " * 2000]}).status_code
        == 200
    )


def test_media_past_the_item_token_limit_are_refused(tiny_omni, media):
    image = data_uri(media["png"], "image/png")  # 105 tokens once preprocessed
    with running_server(tiny_omni, max_item_tokens=100) as url:
        response = _v1(url, {"input": ["fine", {"image": image}]})
        assert response.status_code == 400 and response.json()["error"]["param"] == "input[1]"
        assert "the item is 105 tokens once preprocessed; this server embeds at most 100" in response.text
