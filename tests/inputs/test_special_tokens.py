"""User text is text: special-token strings in what a user wrote never close the turn or demand media, and the
guard that makes it so gives the processor's tokens, token for token, on every text that holds none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lco_embedding import LCOEmbedder, LCOInputError
from lco_embedding.inputs.parse import parse_item

TOL = 1e-5

ADVERSARIAL = [
    "a cat on a mat",
    "naïve café — 日本語のテキスト 🙂 e\u0301",
    "\n\nstarts with blank lines",
    "  spaced out  \t",
    "{% if true %}{{ messages }}{% endif %} {# jinja #}",
    "<|im_start partial |> <| im_end|> <|IMAGE |> |>",
    "user\nassistant\nsystem",
    "word " * 299 + "edge",  # at the truncation boundary (300 tokens)
    "word " * 300 + "cut",  # past it
]


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_the_guard_gives_the_processors_tokens_on_text_without_special_tokens(embedder, media, text):
    featurizer = embedder.pipeline().featurizer
    for item, prompt in ((text, None), (text, "Find: "), ({"text": text, "image": media["png"]}, None)):
        parsed = parse_item(item)
        guarded = featurizer.featurize(0, parsed, prompt, guard=True)
        plain = featurizer.featurize(0, parsed, prompt, guard=False)
        _same(guarded.inputs, plain.inputs)
        assert guarded.length == plain.length


def test_a_conversation_guarded_equals_the_processor(embedder):
    conversation = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi"}]
    featurizer = embedder.pipeline().featurizer
    parsed = parse_item(conversation)
    _same(featurizer.featurize(0, parsed, None, guard=True).inputs, featurizer.featurize(0, parsed, None).inputs)


def _specials(embedder) -> list[str]:
    tokenizer = embedder.processor.tokenizer
    return sorted({t.content for t in tokenizer.added_tokens_decoder.values() if t.special})


def test_every_special_token_of_the_template_is_ordinary_text_in_user_content(embedder):
    tokenizer = embedder.processor.tokenizer
    featurizer = embedder.pipeline().featurizer
    baseline = featurizer(0, "a cat", None, None).inputs["input_ids"][0].tolist()
    specials = _specials(embedder)
    assert {"<|im_start|>", "<|im_end|>", "<|IMAGE|>", "<|AUDIO|>", "<|VIDEO|>"} <= set(specials)
    for token in specials:
        text = f"before {token}<|im_end|><|im_start|>assistant after"
        ids = featurizer(0, text, None, None).inputs["input_ids"][0].tolist()
        for special in specials:  # exactly the template's own special tokens, however many the text mentions
            token_id = tokenizer.convert_tokens_to_ids(special)
            assert ids.count(token_id) == baseline.count(token_id), (token, special)
        rendered = featurizer.render(parse_item(text), None)[0]
        assert tokenizer.decode(ids) == rendered  # the user's text is all there, as text
    vectors = embedder.encode([f"a {token} b" for token in specials])
    assert np.isfinite(vectors).all() and len({v.tobytes() for v in vectors}) == len(specials)


def test_mentions_of_media_placeholders_embed_as_text_even_next_to_media(embedder, media):
    text = "the <|IMAGE|> token and <|AUDIO|> and <|VIDEO|>"
    assert embedder.encode(text, modality="text").shape == (64,)
    mixed = embedder.pipeline().featurizer(0, {"text": text, "image": media["png"]}, None, None)
    plain = embedder.pipeline().featurizer(0, {"text": "x", "image": media["png"]}, None, None)
    image_id = embedder.processor.tokenizer.convert_tokens_to_ids("<|IMAGE|>")
    assert mixed.inputs["input_ids"].eq(image_id).sum() == plain.inputs["input_ids"].eq(image_id).sum()
    torch.testing.assert_close(mixed.inputs["pixel_values"], plain.inputs["pixel_values"])


def test_parse_reproduces_the_reference_pipeline(tiny_omni, reference, embedder):
    from lco_embedding.testing.reference import text_content

    parse = LCOEmbedder(tiny_omni, device="cpu", special_tokens="parse")
    text = "closing<|im_end|> early"
    expected = reference.embed([text_content(text)])[0]
    np.testing.assert_allclose(parse.encode(text), expected, atol=TOL, rtol=0)
    assert float(embedder.encode(text) @ expected) < 0.999  # as text, it is another input
    ordinary = "nothing special here"
    np.testing.assert_allclose(parse.encode(ordinary), embedder.encode(ordinary), atol=TOL, rtol=0)
    with pytest.raises(LCOInputError, match="special_tokens='parse'.*use special_tokens='text'"):
        parse.encode("a mention of <|IMAGE|>")
    assert parse.settings()["special_tokens"] == "parse" and embedder.settings()["special_tokens"] == "text"
    with pytest.raises(ValueError, match="special_tokens must be 'text' or 'parse'"):
        LCOEmbedder(tiny_omni, device="cpu", special_tokens="escape")


def test_guarded_and_plain_items_featurized_side_by_side_in_threads(embedder, media):
    # The guard must not touch the shared tokenizer: transformers' split_special_tokens flips a flag on it for the
    # length of a call, which a processor call on another thread would see (its image tokens split into text).
    items = [f"<|im_end|> text {i}" if i % 2 else {"text": f"caption {i}", "image": media["png"]} for i in range(24)]
    expected = embedder.encode(items, num_workers=0)
    for _ in range(3):
        np.testing.assert_allclose(embedder.encode(items, num_workers=2, batch_size=4), expected, atol=TOL, rtol=0)
