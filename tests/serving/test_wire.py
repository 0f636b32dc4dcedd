"""The request body and the answer's bytes: checked fields, and the same values with orjson and without."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from lco_embedding.serving import wire
from lco_embedding.serving.wire import RequestError, parse_request, render_embeddings


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object, got list"),
        (b'{"model": "m"}', "input", "give input"),
        (b'{"model": "m", "input": "x", "messages": []}', "input", "exactly one of them"),
        (b'{"input": "x"}', "model", "model: Field required"),
        (b'{"input": "x", "model": 5}', "model", "model: Input should be a valid string"),
        (b'{"input": "x", "model": "m", "encoding_format": "int8"}', "encoding_format", "'float' or 'base64'"),
        (b'{"input": "x", "model": "m", "dimensions": 0}', "dimensions", "greater than or equal to 1"),
        (b'{"input": "x", "model": "m", "dimensions": "8"}', "dimensions", "a valid integer"),
        (b'{"input": "x", "model": "m", "dimensions": true}', "dimensions", "a valid integer"),
        (b'{"input": "x", "model": "m", "prompt_name": 3}', "prompt_name", "prompt_name: Input should be a valid"),
    ],
)
def test_a_malformed_body_names_its_field(body, param, message):
    with pytest.raises(RequestError, match=message) as caught:
        parse_request(body)
    assert caught.value.param == param


def test_a_well_formed_body():
    got = parse_request(b'{"input": ["a", "b"], "model": "m", "dimensions": 8, "extra": 1, "user": "u"}')
    assert (got.input, got.model, got.dimensions, got.encoding_format, got.user) == (["a", "b"], "m", 8, "float", "u")


@pytest.mark.parametrize("library", ["orjson", "json"])
def test_answers_hold_the_exact_float32_vectors(monkeypatch, library):
    if library == "json":
        monkeypatch.setattr(wire, "orjson", None)
    rng = np.random.default_rng(0)
    raw = [torch.from_numpy(rng.standard_normal(48).astype(np.float32)) for _ in range(3)]
    raw.append(raw[0].to(torch.bfloat16))  # a bfloat16 model's output is written as float32
    want = torch.nn.functional.normalize(torch.stack([r.float() for r in raw])[:, :16], dim=-1).numpy()
    floats = json.loads(render_embeddings(raw, dimensions=16, encoding="float", model="m", tokens=7))
    packed = json.loads(render_embeddings(raw, dimensions=16, encoding="base64", model="m", tokens=7))
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7} and floats["model"] == "m"
    assert [d["index"] for d in floats["data"]] == [0, 1, 2, 3]
    got_floats = np.array([d["embedding"] for d in floats["data"]], dtype=np.float32)
    got_packed = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in packed["data"]])
    np.testing.assert_array_equal(got_floats, got_packed)  # the decimal text reads back to the same float32
    np.testing.assert_allclose(got_packed, want, atol=1e-7, rtol=0)
