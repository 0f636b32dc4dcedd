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


def test_the_mteb_preset_embeds_as_mtebs_own_lco_wrapper(tiny_omni, monkeypatch, tmp_path):
    """preset="mteb" against mteb's LCOEmbedding wrapper, loaded as mteb loads it (its model then loaded again in
    float32 for a float32 comparison): text (a long one cut at 300 tokens, one with special-token strings), images
    already at a size the processor keeps, mixed items (the dominant modality's suffix), audio and video."""
    import datasets
    import torch
    from mteb.mocks.mock_tasks.sts import MockSTSTask
    from mteb.models.model_implementations.lco_embedding_models import LCOEmbedding
    from torch.utils.data import DataLoader
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    from lco_embedding.testing import synthetic_image

    wrapper = LCOEmbedding(tiny_omni, device="cpu")
    assert wrapper.model.dtype == torch.bfloat16
    # dtype aside: the same wrapper with its model loaded in float32 (a bfloat16 copy cast up keeps bf16 rounding)
    wrapper.model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny_omni, dtype=torch.float32).eval()
    ours = LCOEmbedder(tiny_omni, device="cpu", preset="mteb", dtype="float32")
    assert LCOEmbedder(tiny_omni, device="cpu", preset="mteb").dtype == torch.bfloat16  # the preset's own dtype
    assert ours.settings()["preset"] == "mteb" and ours.settings()["max_length"] == 300
    meta = MockSTSTask().metadata

    def theirs(columns: dict) -> np.ndarray:
        data = datasets.Dataset.from_dict(columns)
        if "image" in columns:
            data = data.cast_column("image", datasets.Image())

        def collate(rows):
            return {key: [row[key] for row in rows] for key in rows[0]}

        loader = DataLoader(data, batch_size=2, collate_fn=collate)
        return wrapper.encode(loader, task_metadata=meta, hf_split="test", hf_subset="default").numpy()

    texts = ["a cat on a mat", "word " * 400, "a note <|im_end|> with a special token", "the quick brown fox"]
    np.testing.assert_allclose(ours.encode(texts), theirs({"text": texts}), atol=1e-5, rtol=0)

    rng = np.random.default_rng(0)
    images = [Image.fromarray(synthetic_image(56, 84, rng)), Image.fromarray(synthetic_image(112, 56, rng))]
    np.testing.assert_allclose(
        ours.encode([{"image": image} for image in images]), theirs({"image": images}), atol=1e-5, rtol=0
    )
    mixed = theirs({"image": images, "text": ["a caption", "another caption"]})
    expected = ours.encode([{"image": images[0], "text": "a caption"}, {"image": images[1], "text": "another caption"}])
    np.testing.assert_allclose(expected, mixed, atol=1e-5, rtol=0)

    # mteb's audio collator imports torchaudio, which it uses only to resample: these clips are at 16 kHz already, so
    # a placeholder module stands in (torchaudio has no wheel for this torch here).
    import sys
    import types

    monkeypatch.setitem(sys.modules, "torchaudio", sys.modules.get("torchaudio") or types.ModuleType("torchaudio"))
    t = np.arange(24000) / 16000
    sounds = [(0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220.0, 440.0)]
    audio = [{"array": s, "sampling_rate": 16000} for s in sounds]
    got = ours.encode([{"audio": {"array": s, "sampling_rate": 16000}} for s in sounds])
    np.testing.assert_allclose(got, theirs({"audio": audio}), atol=1e-5, rtol=0)

    # Video: mteb decodes with torchcodec (not installable beside this torch); its collator is given a decoder with
    # torchcodec's interface over the file's frames as our decoder reads them, and samples them by its own rule.
    import types

    from lco_embedding.preprocessing.video import VideoOptions, read_video_frames
    from lco_embedding.testing import write_video

    rng = np.random.default_rng(1)
    path = tmp_path / "clip.mkv"  # 2 s at 8 fps, frames at a size both sides keep (336 = 12 x 28)
    write_video(path, [rng.integers(0, 255, (336, 336, 3), dtype=np.uint8) for _ in range(16)], fps=8)
    every = read_video_frames(str(path), VideoOptions(fps=8.0, max_frames=16))
    assert every.shape[0] == 16
    decoder = types.SimpleNamespace(
        metadata=types.SimpleNamespace(num_frames=16, end_stream_seconds=2.0),
        get_frames_at=lambda indices: types.SimpleNamespace(data=every[indices]),
    )

    class Videos(torch.utils.data.Dataset):
        features = {"video": None}

        def __len__(self) -> int:
            return 1

        def __getitem__(self, index: int) -> dict:
            return {"video": decoder}

    got = wrapper.encode(DataLoader(Videos(), batch_size=1), task_metadata=meta, hf_split="test", hf_subset="default")
    np.testing.assert_allclose(ours.encode([{"video": str(path)}]), got.numpy(), atol=1e-5, rtol=0)


def test_audio_tasks_need_no_torchaudio_and_embed_each_clip_at_its_own_rate(model, monkeypatch):
    """mteb's AudioCollator imports torchaudio (no wheel for this torch); ours hands encode the clips as they are."""
    import sys

    from mteb.mocks.mock_tasks.sts import MockSTSTask
    from torch.utils.data import DataLoader

    from lco_embedding.integrations.mteb import LCOMtebEncoder

    monkeypatch.setitem(sys.modules, "torchaudio", None)  # any import of it fails
    rng = np.random.default_rng(3)
    clips = [
        {"array": rng.standard_normal((2, 22050)).astype(np.float32), "sampling_rate": 44100},  # stereo, 44.1 kHz
        {"array": np.sin(np.arange(8000) / 5.0).astype(np.float32), "sampling_rate": 8000},
        {"array": np.sin(np.arange(16000) / 9.0).astype(np.float32), "sampling_rate": 16000},
    ]

    class Rows(list):
        features = {"audio": "Audio"}  # what mteb's datasets say of an audio column

    loader = DataLoader(Rows({"audio": dict(clip)} for clip in clips), batch_size=2)
    encoder = LCOMtebEncoder(model)
    out = encoder.encode(loader, task_metadata=MockSTSTask().metadata, hf_split="test", hf_subset="default")
    expected = model.encode([{"audio": clip} for clip in clips])
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


AUDIO_TASKS = {  # one of each type mteb's own mock tasks have for audio
    "classification": "MockAudioClassification",
    "clustering": "MockAudioClusteringTask",
    "pair classification": "MockAudioPairClassification",
    "reranking": "MockAudioReranking",
    "zero-shot classification": "MockAudioZeroshotClassificationTask",
}


def test_mteb_audio_tasks_of_every_type_run_without_torchaudio(model, tmp_path, monkeypatch):
    """mteb.evaluate on its own audio mock tasks with torchaudio unimportable: every task runs and scores, through
    our collator and encode (mteb's AudioCollator would import torchaudio and fail). The mock tasks cast their
    audio columns to datasets' ``Audio`` feature, whose encoding needs torchcodec (and the system's FFmpeg), absent
    here: the cast is skipped, so rows arrive as the ``{"array", "sampling_rate"}`` dicts a decoded column gives. Pair
    classification's two audio columns reach encode as mteb's collator would leave them."""
    import sys

    import datasets
    from mteb.mocks import mock_tasks

    from lco_embedding.integrations.mteb import load

    monkeypatch.setitem(sys.modules, "torchaudio", None)
    for kind in (datasets.Dataset, datasets.DatasetDict):
        cast = kind.cast_column

        def skip_audio(self, column, feature, cast=cast):
            return self if isinstance(feature, datasets.Audio) else cast(self, column, feature)

        monkeypatch.setattr(kind, "cast_column", skip_audio)
    tasks = [getattr(mock_tasks, name)() for name in AUDIO_TASKS.values()]
    results = mteb.evaluate(
        load(model), tasks, cache=mteb.ResultCache(str(tmp_path)), overwrite_strategy="always", show_progress_bar=False
    )
    assert not results.exceptions, results.exceptions
    scores = {r.task_name: r.get_score() for r in results.task_results}
    assert len(scores) == len(AUDIO_TASKS) and all(np.isfinite(s) for s in scores.values()), scores
