"""The sentence-transformers-style API: shapes, options, prompts, batch invariance, truncation, layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentence_transformers.util import quantize_embeddings

from lco_embedding import LCOEmbedder
from lco_embedding.testing.reference import text_content

TOL = 1e-5


def test_shapes_and_return_types(embedder):
    assert embedder.encode("x").shape == (64,)
    assert embedder.encode(["x", "y"]).shape == (2, 64)
    assert embedder.encode(["x"]).shape == (1, 64)
    tensor = embedder.encode(["x", "y"], convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (2, 64) and tensor.dtype == torch.float32
    as_list = embedder.encode(["x", "y"], convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 2 and as_list[0].shape == (64,)
    assert embedder.encode([]).shape == (0, 64)


def test_properties(embedder):
    assert embedder.get_embedding_dimension() == 64
    assert embedder.modalities == ["text", "image", "audio", "video"]
    assert embedder.supports("audio") and not embedder.supports("smell")
    assert embedder.device == torch.device("cpu") and embedder.dtype == torch.float32
    assert "qwen2_5_omni_thinker" in repr(embedder)


def test_normalization_and_truncate_dim(embedder):
    raw = embedder.encode(["x", "a longer text"], normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    normed = embedder.encode(["x", "a longer text"])
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(normed, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=TOL)
    short = embedder.encode(["x", "a longer text"], truncate_dim=16)
    expected = raw[:, :16] / np.linalg.norm(raw[:, :16], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, atol=TOL)


@pytest.mark.parametrize(
    ("precision", "dtype", "width"),
    [("int8", np.int8, 64), ("uint8", np.uint8, 64), ("binary", np.int8, 8), ("ubinary", np.uint8, 8)],
)
def test_precision_uses_sentence_transformers_quantization(embedder, precision, dtype, width):
    texts = ["a cat", "a dog", "a fox on a box"]
    out = embedder.encode(texts, precision=precision)
    assert out.dtype == dtype and out.shape == (3, width)
    np.testing.assert_array_equal(out, quantize_embeddings(embedder.encode(texts), precision=precision))


def test_prompts_go_in_front_of_the_content(tiny_omni, reference):
    model = LCOEmbedder(tiny_omni, device="cpu", prompts={"query": "Query: ", "document": ""})
    query = model.encode_query("a cat")
    np.testing.assert_allclose(query, reference.embed([text_content("Query: a cat")])[0], atol=TOL, rtol=0)
    np.testing.assert_allclose(model.encode("a cat", prompt="Query: "), query, atol=TOL, rtol=0)
    np.testing.assert_allclose(model.encode_document("a cat"), model.encode("a cat"), atol=TOL, rtol=0)
    assert np.abs(query - model.encode("a cat")).max() > 1e-3


def test_over_long_text_equals_its_truncated_text(embedder):
    long_text = " ".join(f"word{i} the quick brown fox" for i in range(200))
    tokenizer = embedder.processor.tokenizer
    ids = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    assert len(ids) > embedder.max_length
    truncated = tokenizer.decode(ids[: embedder.max_length])
    np.testing.assert_allclose(embedder.encode(long_text), embedder.encode(truncated), atol=TOL, rtol=0)
    assert np.abs(embedder.encode(long_text) - embedder.encode(long_text[:200])).max() > 1e-4


def test_output_layers(embedder, media):
    items = ["a cat", media["png"]]
    layers = embedder.encode(items, output_layers="all", normalize_embeddings=False)
    assert layers.shape == (2, embedder.num_layers + 1, 64)
    np.testing.assert_allclose(layers[:, -1], embedder.encode(items, normalize_embeddings=False), atol=TOL)
    picked = embedder.encode(items, output_layers=[0, -1], normalize_embeddings=False)
    np.testing.assert_allclose(picked, layers[:, [0, -1]], atol=TOL)
    with pytest.raises(ValueError, match="out of range"):
        embedder.encode(items, output_layers=[7])


def test_similarity(embedder):
    emb = embedder.encode(["a", "b", "c"])
    sim = embedder.similarity(emb, emb[:2])
    assert sim.shape == (3, 2)
    np.testing.assert_allclose(sim.numpy(), emb @ emb[:2].T, atol=1e-5)
    np.testing.assert_allclose(embedder.similarity_pairwise(emb, emb).numpy(), 1.0, atol=1e-5)


def test_modality_keyword_forces_text(embedder, tmp_path):
    name = "report.pdf.png"
    forced = embedder.encode([name], modality="text")
    np.testing.assert_allclose(forced[0], embedder.encode({"text": name}), atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def corpus(embedder, media):
    items = [
        "a cat",
        "the quick brown fox jumps over the lazy dog again and again",
        media["png"],
        {"audio": media["wav"]},
        {"text": "gradient", "image": media["jpg"]},
        {"video": media["mp4_short"]},
        "z",
    ]
    singles = np.stack([embedder.encode(item) for item in items])
    return items, singles


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_batch_invariance(embedder, corpus, data):
    """An item's embedding does not depend on its neighbours, their order or the batch size."""
    items, singles = corpus
    order = data.draw(st.permutations(range(len(items))))
    batch_size = data.draw(st.integers(1, len(items)))
    out = embedder.encode([items[i] for i in order], batch_size=batch_size)
    np.testing.assert_allclose(out, singles[list(order)], atol=TOL, rtol=0)
