"""mteb 2.x: the encoder on mteb's own offline mock tasks, and its embeddings against ``LCOEmbedder.encode``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lco_embedding import LCOEmbedder

mteb = pytest.importorskip("mteb")


@pytest.fixture(scope="module")
def model(tiny_omni) -> LCOEmbedder:
    return LCOEmbedder(tiny_omni, device="cpu", prompts={"query": "Find: "})


def test_evaluate_runs_mock_tasks_and_writes_results(model, tmp_path):
    from mteb.mocks.mock_tasks.classification import MockImageClassificationTask
    from mteb.mocks.mock_tasks.retrieval import MockAny2AnyRetrievalT2ITask, MockRetrievalTask
    from mteb.mocks.mock_tasks.sts import MockSTSTask

    from lco_embedding.integrations.mteb import load

    encoder = load(model)
    meta = encoder.mteb_model_meta
    assert set(meta.modalities) == {"text", "image", "audio", "video"}
    assert meta.embed_dim == 64 and meta.similarity_fn_name.value == "cosine"
    tasks = [MockRetrievalTask(), MockSTSTask(), MockImageClassificationTask(), MockAny2AnyRetrievalT2ITask()]
    results = mteb.evaluate(
        encoder, tasks, cache=mteb.ResultCache(str(tmp_path)), overwrite_strategy="always", show_progress_bar=False
    )
    assert not results.exceptions
    scores = {r.task_name: r.get_score() for r in results.task_results}
    assert len(scores) == 4 and all(0.0 <= s <= 1.0 for s in scores.values())
    written = {p.stem for p in tmp_path.rglob("*.json")}
    assert {"MockRetrievalTask", "MockSTSTask", "MockImageClassification", "MockAny2AnyRetrievalT2I"} <= written
    saved = json.loads(next(tmp_path.rglob("MockSTSTask.json")).read_text())
    assert saved["task_name"] == "MockSTSTask"


def test_encoder_embeddings_equal_encode(model, media):
    from mteb.mocks.mock_tasks.sts import MockSTSTask
    from mteb.types import PromptType
    from torch.utils.data import DataLoader

    from lco_embedding.integrations.mteb import LCOMtebEncoder

    encoder = LCOMtebEncoder(model)
    meta = MockSTSTask().metadata
    texts = ["a cat on a mat", "markets fell on monday", "bread with flour"]
    images = [Image.open(media["png"]), Image.open(media["jpg"])]
    rows = [{"text": t} for t in texts]
    loader = DataLoader(rows, batch_size=2, collate_fn=lambda b: {"text": [r["text"] for r in b]})
    out = encoder.encode(loader, task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=PromptType.query)
    np.testing.assert_allclose(out, model.encode_query(texts), atol=1e-5, rtol=0)
    out = encoder.encode(loader, task_metadata=meta, hf_split="test", hf_subset="default")
    np.testing.assert_allclose(out, model.encode(texts), atol=1e-5, rtol=0)
    mixed = DataLoader(
        [{"text": "caption", "image": images[0]}, {"text": "photo", "image": images[1]}],
        batch_size=2,
        collate_fn=lambda b: {"text": [r["text"] for r in b], "image": [r["image"] for r in b]},
    )
    out = encoder.encode(mixed, task_metadata=meta, hf_split="test", hf_subset="default")
    expected = model.encode([{"text": "caption", "image": media["png"]}, {"text": "photo", "image": media["jpg"]}])
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def test_encoder_handles_collated_audio_and_video(model, media):
    """The forms mteb's AudioCollator / VideoCollator produce: audio dicts and (T, C, H, W) uint8 frame tensors."""
    import torch
    from mteb.mocks.mock_tasks.sts import MockSTSTask
    from torch.utils.data import DataLoader

    from lco_embedding.integrations.mteb import LCOMtebEncoder

    encoder = LCOMtebEncoder(model)
    audio = {"array": np.sin(np.arange(16000) / 10.0).astype(np.float32), "sampling_rate": 16000}
    frames = [np.asarray(Image.open(media["png"]).convert("RGB").resize((56, 56))) for _ in range(4)]
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # (T, C, H, W) uint8
    batch = {"audio": [audio, None], "video": [None, video], "text": [None, "a clip"]}
    loader = DataLoader([batch], batch_size=None)
    out = encoder.encode(loader, task_metadata=MockSTSTask().metadata, hf_split="test", hf_subset="default")
    expected = model.encode([{"audio": audio}, {"video": frames, "text": "a clip"}])
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def test_encoder_embeds_a_videos_audio_column_as_its_sound_track(model, media):
    """With use_audio_in_video, mteb's video and audio columns of a row are one video with its sound track."""
    import torch
    from mteb.mocks.mock_tasks.sts import MockSTSTask
    from torch.utils.data import DataLoader

    from lco_embedding.integrations.mteb import LCOMtebEncoder

    audio = {"array": np.sin(np.arange(24000) / 7.0).astype(np.float32), "sampling_rate": 16000}
    frames = [np.asarray(Image.open(media["png"]).convert("RGB").resize((56, 56))) for _ in range(4)]
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    loader = DataLoader([{"audio": [audio], "video": [video]}], batch_size=None)
    metadata = MockSTSTask().metadata
    together = LCOMtebEncoder(model, use_audio_in_video=True)
    out = together.encode(loader, task_metadata=metadata, hf_split="test", hf_subset="default")
    expected = model.encode({"video": {"frames": frames, "audio": audio}, "use_audio_in_video": True})
    np.testing.assert_allclose(out[0], expected, atol=1e-5, rtol=0)
    apart = LCOMtebEncoder(model).encode(loader, task_metadata=metadata, hf_split="test", hf_subset="default")
    assert float(out[0] @ apart[0]) < 0.99
