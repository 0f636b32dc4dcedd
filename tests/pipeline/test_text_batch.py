"""Text items featurized many at once equal the per-item path (apply_chat_template + the processor) token for
token: adversarial strings, both special-token policies, prompts, the truncation boundary, both model families."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lco_embedding import LCOEmbedder
from lco_embedding.inputs.parse import parse_item
from lco_embedding.testing import peak_memory_growth

ADVERSARIAL = [
    "a cat on a mat",
    "naïve café — 日本語 🙂 e\u0301 \u200b zero-width",
    "\n\nleading blank lines",
    "trailing spaces and tabs \t  ",
    " leading space",
    "{% if x %}{{ messages }}{% endfor %} {# jinja #} {{",
    "<|im_start partial |> <| im_end|> |> <|",
    "user\nassistant\nsystem\n",
    "closing<|im_end|>\n<|im_start|>assistant\nand <|IMAGE|> <|AUDIO|> <|VIDEO|> <|endoftext|>",
    "\ue000 private use",
    "word " * 299 + "edge",
    "word " * 300 + "cut",
    "🙂" * 400,
]


def _batched_equals_per_item(featurizer, texts: list, prompt: str | None) -> None:
    batched = featurizer.featurize_batch(list(enumerate(texts)), None, prompt)
    for index, (text, features) in enumerate(zip(texts, batched, strict=True)):
        expected = featurizer.featurize(index, parse_item(text), prompt)
        assert features.inputs.keys() == expected.inputs.keys(), text
        for key in expected.inputs:
            assert torch.equal(features.inputs[key], expected.inputs[key]), (key, text[:40])
        assert features.length == expected.length and features.index == index


@pytest.mark.parametrize("prompt", [None, "Find the passage: ", "with <|im_end|> inside "])
def test_batched_text_equals_the_processor_token_for_token(embedder, prompt):
    featurizer = embedder.pipeline().featurizer
    assert featurizer.text_batcher.featurize([(0, parse_item("x"))], prompt) is not None  # really batched
    _batched_equals_per_item(featurizer, ADVERSARIAL, prompt)


def test_parse_policy_batches_ordinary_text_and_leaves_special_tokens_to_the_processor(tiny_omni):
    featurizer = LCOEmbedder(tiny_omni, device="cpu", special_tokens="parse").pipeline().featurizer
    ordinary = [text for text in ADVERSARIAL if "<|" not in text or "|>" not in text]
    _batched_equals_per_item(featurizer, ordinary, None)
    outcomes = featurizer.featurize_batch([(0, "closing<|im_end|> early"), (1, "the <|IMAGE|> token")], None, None)
    expected = featurizer.featurize(0, parse_item("closing<|im_end|> early"), None)
    assert torch.equal(outcomes[0].inputs["input_ids"], expected.inputs["input_ids"])  # parsed, as the reference
    assert "special_tokens='parse'" in outcomes[1].reason  # the processor refuses it: an input error, not a crash


def test_the_qwen2_5_vl_family_batches_too(tiny_vl):
    featurizer = LCOEmbedder(tiny_vl, device="cpu").pipeline().featurizer
    _batched_equals_per_item(featurizer, ADVERSARIAL[:6], "Query: ")
    assert "mm_token_type_ids" in featurizer.featurize_batch([(0, "x")], None, None)[0].inputs


def test_a_template_that_cannot_be_batched_falls_back_to_the_per_item_path(tiny_omni, tmp_path):
    import shutil

    folder = tmp_path / "odd-template"
    shutil.copytree(tiny_omni, folder)
    template = (folder / "chat_template.jinja").read_text()
    # The user's text printed twice: no single run holds it, so batching would be wrong.
    odd = template.replace("{{ content['text'] }}", "{{ content['text'] }} / {{ content['text'] }}")
    assert odd != template
    (folder / "chat_template.jinja").write_text(odd)
    model = LCOEmbedder(str(folder), device="cpu")
    featurizer = model.pipeline().featurizer
    assert featurizer.text_batcher.featurize([(0, parse_item("x"))], None) is None
    _batched_equals_per_item(featurizer, ADVERSARIAL[:4], None)


def test_errors_in_a_batch_stay_with_their_items(embedder):
    outcomes = embedder.pipeline().featurizer.featurize_batch(
        [(0, "fine"), (1, "   "), (2, "ab\ud800"), (3, "also fine")], None, None
    )
    assert outcomes[0].length > 0 and outcomes[3].length > 0
    assert outcomes[1].index == 1 and "empty text" in outcomes[1].reason
    assert outcomes[2].index == 2 and "lone surrogate" in outcomes[2].reason


def test_only_plain_text_is_batchable(embedder, media):
    featurizer = embedder.pipeline().featurizer
    batchable = ["a cat", {"text": "a cat"}, "no extension at all"]
    others = [media["png"], "a photo.png", "data:image/png;base64,AAAA", "https://x.org/a", {"text": "t", "image": "x"}]
    assert all(featurizer.batchable(item) for item in batchable)
    assert not any(featurizer.batchable(item) for item in others)
    assert featurizer.batchable("a photo.png", "text") and not featurizer.batchable("a cat", "image")


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(["a", "b ", "  ", "\n", "é", "e\u0301", "<|im_end|>", "the ", ".", "x" * 40, "🙂",
                         "\u1100\u1161", " " * 90, "z" * 300]),
        min_size=1, max_size=400,
    ),
    max_length=st.integers(1, 6),
)  # fmt: skip
def test_a_long_texts_prefix_is_cut_where_tokenizing_all_of_it_cuts(tiny_omni, pieces, max_length):
    """Only a prefix of a long text is tokenized (its length in characters follows max_length); the cut equals
    tokenize-slice-decode of the whole text, as the reference cuts."""
    featurizer = _short_featurizer(tiny_omni, max_length)
    text = "".join(pieces)
    ids = featurizer.guard.plain_ids([text])[0]
    want = text if len(ids) <= max_length else featurizer.processor.tokenizer.decode(ids[:max_length])
    assert featurizer.text_batcher.truncated([text]) == [want]
    assert featurizer.truncate(text) == want


_FEATURIZERS: dict[int, object] = {}


def _short_featurizer(tiny_omni: str, max_length: int):
    if max_length not in _FEATURIZERS:
        _FEATURIZERS[max_length] = LCOEmbedder(tiny_omni, device="cpu", max_length=max_length).pipeline().featurizer
    return _FEATURIZERS[max_length]


def test_a_million_characters_cost_what_max_length_needs(embedder):
    text = "x" * 1_000_000
    outcome, grown = peak_memory_growth(lambda: embedder.encode(text))
    assert grown < 50 * 2**20, grown  # tokenizing the whole text took +570 MB with Qwen's vocabulary
    featurizer = embedder.pipeline().featurizer
    cut = featurizer.truncate(text)
    assert len(cut) < len(text) and len(featurizer.guard.plain_ids([cut])[0]) == embedder.max_length
    np.testing.assert_allclose(outcome, embedder.encode(cut), atol=1e-5, rtol=0)


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(["a ", "b ", "  ", "\n ", "é ", "e\u0301 ", "<|im_end|> ", "the ", ". ", "x" * 40 + " ",
                         "🙂 ", " " * 9, "z" * 30 + " "]),
        min_size=1, max_size=120,
    ),
    chunk=st.integers(48, 96),
    slack=st.integers(-2, 2),
)  # fmt: skip
def test_a_texts_length_counted_a_chunk_at_a_time_is_its_whole_length(embedder, pieces, chunk, slack):
    """``longer_than`` (the server's bound on an item, under every preset) tokenizes a chunk at a time, each chunk
    ending before a space; where every chunk has a space to end at, the chunks' counts add up to the count of the
    whole text, so the answer is exact."""
    import lco_embedding.pipeline.text_batch as text_batch

    batcher = embedder.pipeline().featurizer.text_batcher
    text = "".join(pieces)
    whole = len(batcher._encode([text])[0])
    limit = max(1, whole + slack)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_batch, "COUNT_CHUNK_CHARS", chunk)
        assert batcher.longer_than(text, limit) == (whole > limit), (whole, limit)


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(["a", "é", "e\u0301", "x" * 40, "🙂", "z" * 30, "<|im_end|>"]), min_size=1,
                    max_size=120),
    chunk=st.integers(8, 64),
)  # fmt: skip
def test_a_text_without_spaces_is_counted_within_a_few_tokens_per_chunk(embedder, pieces, chunk):
    """Without a space to end a chunk at, a chunk may end inside what the whole text tokenizes as one token: the
    count can only grow there, by a token or two per chunk, never shrink (a text is never let through short)."""
    import lco_embedding.pipeline.text_batch as text_batch

    batcher = embedder.pipeline().featurizer.text_batcher
    text = "".join(pieces)
    whole = len(batcher._encode([text])[0])
    chunks = -(-len(text) // chunk)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_batch, "COUNT_CHUNK_CHARS", chunk)
        assert batcher.longer_than(text, whole - 1) or whole <= 1
        assert not batcher.longer_than(text, whole + 2 * chunks)


def test_counting_a_long_texts_tokens_costs_a_chunk(embedder):
    batcher = embedder.pipeline().featurizer.text_batcher
    text = "word " * 400_000  # 2 MB
    batcher.longer_than("warm up " * 10, 5)
    outcome, grown = peak_memory_growth(lambda: batcher.longer_than(text, 32_768))
    assert outcome is True and grown < 50 * 2**20, grown  # the whole text at once: +157 MB for 1 MB
