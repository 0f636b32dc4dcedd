"""Training on the tiny checkpoint: the loss, gradient caching, the generative stage, resuming, and merging."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lco_embedding import LCOEmbedder
from lco_embedding.training import (
    GenerativeExample,
    LoraSettings,
    TrainingConfig,
    add_lora,
    contrastive_backward,
    info_nce_loss,
    load_adapter,
    merge_adapter,
    train,
)
from tests.training.conftest import top1, write_jsonl

FAST = {"learning_rate": 3e-3, "warmup_ratio": 0.0, "lora": LoraSettings(rank=16, alpha=32, dropout=0.0)}


def _lora_embedder(checkpoint: str, dropout: float = 0.0) -> LCOEmbedder:
    """An embedder with LoRA whose B matrices are random too, so every adapter weight gets a gradient."""
    embedder = LCOEmbedder(checkpoint, device="cpu")
    add_lora(embedder, LoraSettings(rank=4, alpha=8, dropout=dropout))
    with torch.no_grad():
        for name, parameter in embedder.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    embedder.model.train()
    return embedder


def _encoder(embedder: LCOEmbedder):
    pipeline = embedder.pipeline()
    return lambda features: pipeline.embed(list(features), grad=True)


def _assert_same_grads(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Equal up to float32 rounding: the largest difference is at most 1e-5 of the tensor's largest gradient."""
    assert got.keys() == expected.keys()
    for name, grad in got.items():
        scale = float(expected[name].abs().max())
        assert float((grad - expected[name]).abs().max()) <= 1e-5 * scale, name


def _grads(embedder: LCOEmbedder) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in embedder.model.named_parameters() if p.grad is not None}
    embedder.model.zero_grad(set_to_none=True)
    return grads


def _batch(embedder: LCOEmbedder, media: dict[str, str]):
    """5 anchors, their positives, and 3 hard negatives; images and audio among them."""
    featurize = embedder.pipeline().featurizer
    anchors = ["a cat on a mat", {"image": media["png"]}, "the lazy dog", "a quick brown fox", {"audio": media["wav"]}]
    positives = ["a mat with a cat", "a gradient picture", {"image": media["jpg"], "text": "dog"}, "fox", "a tone"]
    negatives = ["the fog", "a dog on a mat", {"image": media["gray_png"]}]
    queries = [featurize(i, item, None, None) for i, item in enumerate(anchors)]
    documents = [featurize(i, item, None, None) for i, item in enumerate(positives + negatives)]
    return queries, documents


def test_info_nce_equals_its_formula():
    generator = torch.Generator().manual_seed(0)
    queries, documents = torch.randn(3, 8, generator=generator), torch.randn(5, 8, generator=generator)
    expected = 0.0
    for i in range(3):
        scores = [float(F.cosine_similarity(queries[i], d, dim=0)) / 0.05 for d in documents]
        expected -= scores[i] - np.log(np.sum(np.exp(scores)))
    loss = info_nce_loss(queries, documents, temperature=0.05)
    assert float(loss) == pytest.approx(expected / 3, rel=1e-5)
    with pytest.raises(ValueError, match="one positive per query"):
        info_nce_loss(queries, documents[:2])


def test_gradient_cache_equals_the_uncached_step(tiny_omni, media):
    embedder = _lora_embedder(tiny_omni)
    queries, documents = _batch(embedder, media)
    encode = _encoder(embedder)
    uncached = contrastive_backward(encode, queries, documents, temperature=0.03)
    expected = _grads(embedder)
    assert len(expected) == 2 * 7 * 2  # A and B of 7 linear layers in each of the 2 decoder layers
    assert all(g.abs().sum() > 0 for g in expected.values())
    for mini_batch_size in (1, 2, 3):
        cached = contrastive_backward(encode, queries, documents, temperature=0.03, mini_batch_size=mini_batch_size)
        assert cached == pytest.approx(uncached, rel=1e-5)
        _assert_same_grads(_grads(embedder), expected)


def test_gradient_cache_replays_the_dropout_masks(tiny_omni, media):
    """With dropout, the cached step must equal the plain step over the same mini-batches with the same masks."""
    embedder = _lora_embedder(tiny_omni, dropout=0.3)
    queries, documents = _batch(embedder, media)
    encode = _encoder(embedder)
    torch.manual_seed(7)
    cached = contrastive_backward(encode, queries, documents, temperature=0.03, mini_batch_size=2)
    grads = _grads(embedder)
    torch.manual_seed(7)
    chunks = [queries[0:2], queries[2:4], queries[4:], documents[0:2], documents[2:4], documents[4:6], documents[6:]]
    embeddings = torch.cat([encode(chunk) for chunk in chunks])
    loss = info_nce_loss(embeddings[:5], embeddings[5:], temperature=0.03)
    loss.backward()
    assert cached == pytest.approx(float(loss.detach()), rel=1e-5)
    _assert_same_grads(grads, _grads(embedder))
    torch.manual_seed(8)  # other masks give another loss: the test can tell
    assert contrastive_backward(encode, queries, documents, mini_batch_size=2) != pytest.approx(cached, rel=1e-4)


def test_contrastive_training_learns_the_toy_pairs(trainable_checkpoint, toy_data, tmp_path):
    path, pairs = toy_data
    before = top1(LCOEmbedder(trainable_checkpoint, device="cpu"), pairs)
    config = TrainingConfig(max_steps=40, batch_size=8, temperature=0.05, **FAST)
    result = train(trainable_checkpoint, path, tmp_path / "run", config, device="cpu")
    log = [json.loads(line) for line in result.log.read_text().splitlines()]
    losses = [record["loss"] for record in log]
    assert [record["step"] for record in log] == list(range(1, 41)) and result.steps == 40
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses
    after = top1(load_adapter(result.adapter, device="cpu"), pairs)
    assert after >= before + 0.4, (before, after)
    # Only the language model's adapters were trained: the adapter holds nothing of the towers.
    from safetensors.torch import load_file

    keys = load_file(result.adapter / "adapter_model.safetensors").keys()
    assert keys and all(".language_model.layers." in key and "lora_" in key for key in keys)
    info = json.loads((result.adapter / "lco_adapter.json").read_text())
    assert info["base_model"] == trainable_checkpoint and info["stage"] == "contrastive"


def test_merged_checkpoint_embeds_like_the_adapter(trainable_checkpoint, toy_data, media, tmp_path):
    path, _ = toy_data
    config = TrainingConfig(max_steps=4, batch_size=8, **FAST)
    adapter = train(trainable_checkpoint, path, tmp_path / "run", config, device="cpu").adapter
    merged = merge_adapter(adapter, tmp_path / "merged", device="cpu")
    for name in ("chat_template.jinja", "tokenizer.json", "processor_config.json", "modules.json"):
        assert (merged / name).is_file(), name
    items = ["a cat on a mat", {"image": media["png"]}, {"audio": media["wav"]}, {"image": media["jpg"], "text": "x"}]
    with_adapter = load_adapter(adapter, device="cpu").encode(items)
    from_merged = LCOEmbedder(str(merged), device="cpu").encode(items)
    np.testing.assert_allclose(from_merged, with_adapter, atol=1e-5, rtol=0)
    base = LCOEmbedder(trainable_checkpoint, device="cpu").encode(items)
    assert np.abs(base - with_adapter).max() > 1e-2  # the adapter changed the embeddings
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(merged), trust_remote_code=True, device="cpu")
    normalized = with_adapter / np.linalg.norm(with_adapter, axis=1, keepdims=True)
    np.testing.assert_allclose(st.encode(items[:2], normalize_embeddings=True), normalized[:2], atol=1e-5)


def test_generative_stage_lowers_a_finite_loss(trainable_checkpoint, media, tmp_path):
    examples = [
        GenerativeExample("a cat on a mat and a dog in the fog", {}, 1),
        GenerativeExample("a gradient of colours", {"image": media["png"]}, 2),
        GenerativeExample("a photo", {"image": media["jpg"]}, 3),
        GenerativeExample("a tone at 440 hertz", {"audio": media["wav"]}, 4),
    ]
    config = TrainingConfig(stage="generative", max_steps=8, batch_size=4, mini_batch_size=2, **FAST)
    result = train(trainable_checkpoint, examples, tmp_path / "run", config, device="cpu")
    losses = [json.loads(line)["loss"] for line in result.log.read_text().splitlines()]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses


def test_resume_continues_the_step_count_and_the_data_order(trainable_checkpoint, toy_data, tmp_path):
    path, _ = toy_data
    config = TrainingConfig(max_steps=7, batch_size=5, save_steps=2, **{**FAST, "lora": LoraSettings(8, 16, 0.1)})
    whole = train(trainable_checkpoint, path, tmp_path / "whole", config, device="cpu")

    class Crash(Exception):
        pass

    def crash_after_five(record):
        if record["step"] == 5:
            raise Crash

    with pytest.raises(Crash):
        train(trainable_checkpoint, path, tmp_path / "broken", config, device="cpu", on_step=crash_after_five)
    assert sorted(p.name for p in (tmp_path / "broken" / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    with pytest.raises(FileExistsError, match="resume"):
        train(trainable_checkpoint, path, tmp_path / "broken", config, device="cpu")
    steps = []
    resumed = train(
        trainable_checkpoint, path, tmp_path / "broken", config, device="cpu", resume=True, on_step=steps.append
    )
    assert [record["step"] for record in steps] == [5, 6, 7] and resumed.steps == 7
    expected = [json.loads(line) for line in whole.log.read_text().splitlines()]
    got = [json.loads(line) for line in resumed.log.read_text().splitlines()]
    assert [r["step"] for r in got] == list(range(1, 8))
    assert [r["examples"] for r in got] == [r["examples"] for r in expected]
    assert len({tuple(r["examples"]) for r in got}) == 7  # the order moves on: no batch repeats
    np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in expected], rtol=1e-5)
    from safetensors.torch import load_file

    a = load_file(whole.adapter / "adapter_model.safetensors")
    b = load_file(resumed.adapter / "adapter_model.safetensors")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-7)


def test_resume_refuses_a_changed_run(trainable_checkpoint, toy_data, tmp_path):
    path, _ = toy_data
    train(trainable_checkpoint, path, tmp_path / "run", TrainingConfig(max_steps=2, batch_size=4, **FAST), device="cpu")
    changed = TrainingConfig(max_steps=2, batch_size=6, **FAST)
    with pytest.raises(ValueError, match=r"config.batch_size: 4 -> 6"):
        train(trainable_checkpoint, path, tmp_path / "run", changed, device="cpu", resume=True)


def test_bad_media_during_training_names_the_line(trainable_checkpoint, media, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(open(media["corrupt_png"], "rb").read())
    path = write_jsonl(tmp_path / "pairs.jsonl", [["a", "b"], {"anchor": {"image": "corrupt.png"}, "positive": "c"}])
    config = TrainingConfig(max_steps=1, batch_size=2, **FAST)
    with pytest.raises(ValueError, match=r"pairs.jsonl, line 2: .*corrupt"):
        train(trainable_checkpoint, path, tmp_path / "run", config, device="cpu")


@pytest.mark.parametrize("base", ["tiny_omni_full", "tiny_vl"])
def test_base_qwen_checkpoints_train_and_merge(base, request, toy_data, media, tmp_path):
    """A full Qwen2.5-Omni checkpoint (thinker weights under ``thinker.``) and a Qwen2.5-VL one train and merge."""
    checkpoint = request.getfixturevalue(base)
    path, _ = toy_data
    adapter = train(checkpoint, path, tmp_path / "run", TrainingConfig(max_steps=2, batch_size=4, **FAST)).adapter
    merged = merge_adapter(adapter, tmp_path / "merged", device="cpu")
    items = ["a cat on a mat", {"image": media["png"]}]
    expected = load_adapter(adapter, device="cpu").encode(items)
    np.testing.assert_allclose(LCOEmbedder(str(merged), device="cpu").encode(items), expected, atol=1e-5)
