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
