"""sentence-transformers 6: the shared-weights SentenceTransformer, save_pretrained, multi-process, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from lco_embedding import LCOEmbedder, LCOInputError

TOL = 1e-5


@pytest.fixture(scope="module")
def model(tiny_omni) -> LCOEmbedder:
    return LCOEmbedder(tiny_omni, device="cpu", prompts={"query": "Find: ", "document": "Doc: "})


@pytest.fixture(scope="module")
def items(media) -> list:
    return [
        "a short text",
        "a longer text about cats and their habits " * 4,
        {"image": media["png"]},
        {"audio": media["wav"]},
        {"video": media["mp4_short"]},
        {"text": "a caption", "image": media["jpg"], "audio": media["flac"]},
    ]


def test_to_sentence_transformer_shares_weights_and_embeddings(model, items):
    st = model.to_sentence_transformer()
    assert isinstance(st, SentenceTransformer)
    assert st[0].auto_model is model.model  # the same module, not a copy
    np.testing.assert_allclose(st.encode(items, normalize_embeddings=True), model.encode(items), atol=TOL, rtol=0)
    texts = ["where is the cat", "the cat is on the mat"]
    np.testing.assert_allclose(
        st.encode_query(texts, normalize_embeddings=True), model.encode_query(texts), atol=TOL, rtol=0
    )
    np.testing.assert_allclose(
        st.encode_document(texts, normalize_embeddings=True), model.encode_document(texts), atol=TOL, rtol=0
    )
    np.testing.assert_allclose(
        st.encode(items, truncate_dim=16, normalize_embeddings=True), model.encode(items, truncate_dim=16), atol=TOL
    )
    for precision in ("int8", "binary"):
        theirs = st.encode(items, precision=precision, normalize_embeddings=True).astype(int)
        ours = model.encode(items, precision=precision).astype(int)
        # The floats agree to ~3e-7, which can move a value across an int8 bucket boundary: one step at most.
        assert np.abs(theirs - ours).max() <= (1 if precision == "int8" else 0)
        assert (theirs == ours).mean() > 0.98


def test_a_bad_item_raises_our_error_not_a_type_error(model):
    st = model.to_sentence_transformer()
    with pytest.raises(LCOInputError, match=r"input \{'image': '/no/such/picture.png'\}: file not found"):
        st.encode(["fine", {"image": "/no/such/picture.png"}], prompt="Find: ")


def test_save_pretrained_loads_everywhere(tmp_path, tiny_omni, items):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    original = LCOEmbedder(tiny_omni, device="cpu", prompts={"query": "Find: "}, max_length=5)
    original.save_pretrained(tmp_path)
    expected = original.encode(items)

    reloaded = LCOEmbedder(str(tmp_path), device="cpu")
    # Settings and prompts travel with the folder (sentence-transformers adds an empty "document" prompt).
    assert {k: v for k, v in reloaded.prompts.items() if v} == {"query": "Find: "} and reloaded.max_length == 5
    np.testing.assert_allclose(reloaded.encode(items), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(reloaded.encode_query(["x y z"]), original.encode_query(["x y z"]), atol=TOL)

    st = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    np.testing.assert_allclose(st.encode(items, normalize_embeddings=True), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(
        st.encode_query(["x y z"], normalize_embeddings=True), original.encode_query(["x y z"]), atol=TOL
    )

    hf = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(tmp_path))
    for name, tensor in original.model.state_dict().items():
        torch.testing.assert_close(hf.state_dict()[name], tensor, rtol=0, atol=0)


def test_multi_process_encoding(model):
    st = model.to_sentence_transformer()
    texts = [f"text number {i} " * (i + 1) for i in range(6)]
    out = st.encode(texts, device=["cpu", "cpu"], normalize_embeddings=True)
    np.testing.assert_allclose(out, model.encode(texts), atol=TOL, rtol=0)


def test_one_training_step_with_multiple_negatives_ranking_loss(tiny_omni, tmp_path):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = LCOEmbedder(tiny_omni, device="cpu")
    st = model.to_sentence_transformer()
    before = {name: p.detach().clone() for name, p in model.model.named_parameters()}
    data = Dataset.from_dict(
        {"anchor": ["a cat", "a dog", "a car", "a tree"], "positive": ["kitten", "puppy", "vehicle", "plant"]}
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=1,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = SentenceTransformerTrainer(model=st, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(st))
    loss = trainer.train().training_loss
    assert np.isfinite(loss) and loss > 0
    changed = [n for n, p in model.model.named_parameters() if not torch.equal(before[n], p)]
    assert any("layers" in n for n in changed)  # the language model was updated through LCOModule


def test_the_attributes_sentence_transformers_users_reach_for_behave_as_in_sentence_transformer(tiny_omni):
    model = LCOEmbedder(tiny_omni, device="cpu")
    st = model.to_sentence_transformer()
    assert model.max_seq_length == st.max_seq_length == 300
    st.max_seq_length = 4  # set through sentence-transformers: the shared embedder cuts text there
    assert model.max_seq_length == model.max_length == 4
    long = "one two three four five six seven eight"
    np.testing.assert_allclose(model.encode(long), model.encode("one two three four"), atol=TOL, rtol=0)
    model.max_seq_length = 300
    assert st.max_seq_length == 300
    with pytest.raises(ValueError, match="max_seq_length must be a positive integer or None"):
        model.max_seq_length = 0
    assert model.tokenizer is st.tokenizer is model.processor.tokenizer and st.processor is model.processor

    a, b = model.encode(["a cat", "a dog"]), model.encode(["a car", "a tree", "a bird"])
    assert model.similarity_fn_name == st.similarity_fn_name == "cosine"
    for name in ("dot", "euclidean", "manhattan", "cosine"):
        model.similarity_fn_name = st.similarity_fn_name = name
        torch.testing.assert_close(model.similarity(a, b), st.similarity(a, b))
        torch.testing.assert_close(model.similarity_pairwise(a, b[:2]), st.similarity_pairwise(a, b[:2]))
    with pytest.raises(ValueError, match="similarity_fn_name must be one of cosine, dot, euclidean, manhattan"):
        model.similarity_fn_name = "maxsim"

    assert model.get_embedding_dimension() == st.get_embedding_dimension() == 64
    for owner in (model, st):
        with pytest.warns(FutureWarning, match="renamed to `get_embedding_dimension`"):
            assert owner.get_sentence_embedding_dimension() == 64
    truncated = LCOEmbedder(tiny_omni, device="cpu", truncate_dim=16)
    assert truncated.get_embedding_dimension() == truncated.to_sentence_transformer().get_embedding_dimension() == 16

    with pytest.raises(ValueError, match=r"'normalise_embeddings' \(did you mean 'normalize_embeddings'\?\)"):
        model.encode("x", normalise_embeddings=False)
    with pytest.raises(ValueError, match="additional keyword arguments"):  # sentence-transformers 6 refuses too
        st.encode("x", normalise_embeddings=False)


def test_to_half_bfloat16_and_float_change_the_device_and_dtype_and_return_the_model(tiny_omni):
    model = LCOEmbedder(tiny_omni, device="cpu")
    expected = model.encode("a cat")
    st = SentenceTransformer(modules=[torch.nn.Linear(2, 2)], device="cpu")
    for method, dtype in (("half", torch.float16), ("bfloat16", torch.bfloat16), ("float", torch.float32)):
        assert getattr(model, method)() is model and model.dtype == dtype
        assert getattr(st, method)() is st and next(st.parameters()).dtype == dtype  # the same names do the same
    assert model.to("cpu") is model and model.device == torch.device("cpu")
    assert model.to(torch.bfloat16) is model and model.dtype == torch.bfloat16
    assert float((model.encode("a cat") * expected).sum()) > 0.99
    assert model.float().dtype == torch.float32  # the weights keep bfloat16's rounding, now in float32
    assert model.encode("a cat").dtype == np.float32 and float((model.encode("a cat") * expected).sum()) > 0.99


def test_output_value_token_embeddings_and_none_as_sentence_transformers_returns_them(model, media):
    st = model.to_sentence_transformer()
    texts = ["a short text", "a somewhat longer text about cats and dogs"]
    theirs = st.encode(texts, output_value=None, normalize_embeddings=True)
    ours = model.encode(texts, output_value=None)
    for mine, other in zip(ours, theirs, strict=True):
        assert {"sentence_embedding", "token_embeddings", "input_ids", "attention_mask"} <= set(other) == set(other)
        assert set(mine) == {"sentence_embedding", "token_embeddings", "input_ids", "attention_mask"}
        real = other["attention_mask"].bool()  # theirs are rows of the padded batch
        torch.testing.assert_close(mine["sentence_embedding"], other["sentence_embedding"], atol=TOL, rtol=0)
        torch.testing.assert_close(mine["token_embeddings"], other["token_embeddings"][real], atol=TOL, rtol=0)
        assert torch.equal(mine["input_ids"], other["input_ids"][real]) and bool(mine["attention_mask"].all())
    np.testing.assert_allclose(
        torch.stack([o["sentence_embedding"] for o in ours]).numpy(), model.encode(texts), atol=TOL, rtol=0
    )
    tokens = model.encode(texts, output_value="token_embeddings")
    theirs = st.encode(texts, output_value="token_embeddings")
    for mine, other in zip(tokens, theirs, strict=True):
        # sentence-transformers trims right padding only; with left padding its rows keep the leading pad tokens
        torch.testing.assert_close(mine, other[-len(mine) :], atol=TOL, rtol=0)
    image = model.encode({"image": media["png"]}, output_value=None)
    assert image["token_embeddings"].shape[0] == len(image["input_ids"]) > 10
    np.testing.assert_allclose(image["sentence_embedding"].numpy(), model.encode({"image": media["png"]}), atol=TOL)
    with pytest.raises(ValueError, match="output_value must be one of"):
        model.encode("x", output_value="word_embeddings")
