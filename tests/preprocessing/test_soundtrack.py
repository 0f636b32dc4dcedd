"""Video with its sound track (``use_audio_in_video``): parity with the model card's pipeline, batches that mix
items with and without it, and the errors of videos that have no sound.

The reference reads a video's sound through audioread, which runs an ``ffmpeg`` executable; the tests put the one
the ``imageio-ffmpeg`` wheel ships on ``PATH`` (and skip the reference comparisons where it is absent). The SDK
itself needs no executable: it decodes with PyAV, which one test checks with an empty ``PATH``.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from lco_embedding import LCOEmbedder, LCOInputError
from lco_embedding.preprocessing.soundtrack import read_soundtrack
from lco_embedding.testing import write_clip_with_silent_track, write_clip_with_sound
from lco_embedding.testing.reference import media_content, mixed_content

TOL = 1e-5


@pytest.fixture(scope="module")
def ffmpeg(tmp_path_factory) -> str:
    """A folder holding an ``ffmpeg`` executable, for the reference's audioread."""
    found = shutil.which("ffmpeg")
    if found:
        return os.path.dirname(found)
    try:
        import imageio_ffmpeg

        binary = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        pytest.skip(f"the reference reads sound tracks with an ffmpeg executable, and none is available ({e})")
    folder = tmp_path_factory.mktemp("ffmpeg-bin")
    os.symlink(binary, folder / "ffmpeg")
    return str(folder)


@pytest.fixture
def with_ffmpeg(ffmpeg, monkeypatch):
    import audioread

    monkeypatch.setenv("PATH", ffmpeg + os.pathsep + os.environ.get("PATH", ""))
    audioread.available_backends(flush_cache=True)  # audioread keeps the backends it found first
    yield
    monkeypatch.undo()
    audioread.available_backends(flush_cache=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "mono16k": str(write_clip_with_sound(folder / "tone.mp4", seconds=3.0)),
        "stereo44k": str(write_clip_with_sound(folder / "stereo.mp4", seconds=2.5, rate=44100, channels=2, tone=300)),
    }


def test_the_sound_track_equals_the_references_waveform(clips, with_ffmpeg):
    import audioread
    import librosa

    for path in clips.values():
        want = librosa.load(audioread.ffdec.FFmpegAudioFile(path), sr=16000)[0]
        np.testing.assert_array_equal(read_soundtrack(path), want)


def test_a_video_with_its_sound_equals_the_reference_alone_and_differs_from_frames_only(
    embedder, reference, clips, with_ffmpeg
):
    for path in clips.values():
        want = reference.embed([media_content("video", path)], use_audio_in_video=True)[0]
        got = embedder.encode({"video": path, "use_audio_in_video": True})
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
        frames_only = embedder.encode({"video": path})
        assert float(got @ frames_only) < 0.99
        np.testing.assert_allclose(embedder.encode(path, use_audio_in_video=True), got, atol=TOL, rtol=0)


def test_sound_tracks_in_a_batch_with_other_modalities_equal_the_reference(
    embedder, reference, clips, media, with_ffmpeg
):
    contents = [
        media_content("video", clips["stereo44k"]),
        [{"type": "text", "text": "a short text\nSummarize the above text in one word:"}],
        media_content("image", media["png"]),
        media_content("audio", media["wav"]),
        mixed_content([("video", clips["mono16k"]), ("audio", media["flac"]), ("text", "a clip and a chirp")]),
        media_content("video", clips["mono16k"]),
    ]
    want = reference.embed(contents, use_audio_in_video=True)
    items = [
        clips["stereo44k"],
        "a short text",
        media["png"],
        media["wav"],
        {"video": clips["mono16k"], "audio": media["flac"], "text": "a clip and a chirp"},
        clips["mono16k"],
    ]
    got = embedder.encode(items, use_audio_in_video=True, batch_size=8, max_tokens_per_batch=100_000)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_one_forward_pass_mixes_items_with_and_without_sound(embedder, clips, media):
    featurize = embedder.pipeline().featurizer
    items = [
        {"video": clips["mono16k"], "use_audio_in_video": True},
        {"video": clips["stereo44k"]},
        {"video": media["mp4"], "audio": media["wav"]},
        "some text",
        {"video": clips["stereo44k"], "text": "with sound", "use_audio_in_video": True},
    ]
    batch = [featurize(i, item, None, None) for i, item in enumerate(items)]
    assert [features.audio_in_video for features in batch] == [True, False, False, False, True]
    with torch.inference_mode():
        together = embedder.parts.backbone.forward(batch)
        alone = torch.cat([embedder.parts.backbone.forward([features]) for features in batch])
    torch.testing.assert_close(together, alone, atol=TOL, rtol=0)
    np.testing.assert_allclose(
        embedder.encode(items, batch_size=8, max_tokens_per_batch=100_000),
        embedder.encode(items, batch_size=1),
        atol=TOL,
        rtol=0,
    )


def test_the_sound_needs_no_ffmpeg_executable(embedder, clips, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    sound = read_soundtrack(clips["mono16k"])
    assert sound is not None and sound.dtype == np.float32 and abs(len(sound) / 16000 - 3.0) < 0.05
    assert embedder.encode({"video": clips["mono16k"], "use_audio_in_video": True}).shape == (embedder.dimension,)


def test_a_video_without_sound(embedder, media):
    silent = media["mp4"]
    with pytest.raises(LCOInputError, match=r"Input 1: .*no sound track.*'auto'"):
        embedder.encode(["text", {"video": silent, "use_audio_in_video": True}])
    frames = embedder.encode({"video": silent})
    np.testing.assert_allclose(embedder.encode(silent, use_audio_in_video="auto"), frames, atol=TOL, rtol=0)
    frame_list = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(4)]
    with pytest.raises(LCOInputError, match="given as frames has no sound track"):
        embedder.encode({"video": frame_list, "use_audio_in_video": True})
    assert embedder.encode({"video": frame_list, "use_audio_in_video": "auto"}).shape == frames.shape


def test_a_sound_track_without_samples_is_no_sound_for_auto_and_an_error_for_true(embedder, tmp_path):
    clip = str(write_clip_with_silent_track(tmp_path / "muted.mkv"))  # the track exists; it has no packets
    frames_only = embedder.encode({"video": clip})
    np.testing.assert_allclose(
        embedder.encode({"video": clip, "use_audio_in_video": "auto"}), frames_only, atol=TOL, rtol=0
    )
    with pytest.raises(LCOInputError, match="a sound track that holds no samples .*use_audio_in_video='auto'"):
        embedder.encode({"video": clip, "use_audio_in_video": True})


def test_auto_uses_the_sound_where_every_video_of_the_item_has_one(embedder, clips, media):
    with_sound = embedder.encode({"video": clips["mono16k"], "use_audio_in_video": True})
    np.testing.assert_allclose(
        embedder.encode({"video": clips["mono16k"], "use_audio_in_video": "auto"}), with_sound, atol=TOL, rtol=0
    )
    both = {"video": [clips["mono16k"], media["mp4"]], "use_audio_in_video": "auto"}
    frames_only = embedder.encode({"video": [clips["mono16k"], media["mp4"]]})
    np.testing.assert_allclose(embedder.encode(both), frames_only, atol=TOL, rtol=0)


def test_bad_settings_are_refused(embedder, tiny_omni, media):
    with pytest.raises(LCOInputError, match="'use_audio_in_video' must be true, false or 'auto'"):
        embedder.encode({"video": media["mp4"], "use_audio_in_video": "yes"})
    with pytest.raises(LCOInputError, match="applies to a video and this item has none"):
        embedder.encode({"audio": media["wav"], "use_audio_in_video": True})
    with pytest.raises(ValueError, match="use_audio_in_video must be True, False or 'auto'"):
        embedder.encode("text", use_audio_in_video="sometimes")
    with pytest.raises(ValueError, match="use_audio_in_video must be True, False or 'auto'"):
        LCOEmbedder(tiny_omni, use_audio_in_video=1)


def test_the_setting_is_saved_with_the_checkpoint(tiny_omni, clips, tmp_path):
    model = LCOEmbedder(tiny_omni, device="cpu", use_audio_in_video=True)
    assert model.settings()["use_audio_in_video"] is True
    model.save_pretrained(tmp_path / "saved")
    again = LCOEmbedder(str(tmp_path / "saved"), device="cpu")
    assert again.embedder_settings.use_audio_in_video is True
    np.testing.assert_allclose(again.encode(clips["mono16k"]), model.encode(clips["mono16k"]), atol=TOL, rtol=0)


def test_a_video_decoded_elsewhere_brings_its_sound(embedder, clips):
    """``{"frames": ..., "audio": ...}`` equals the file with its sound track when they hold the same data."""
    from lco_embedding.preprocessing.video import VideoOptions, read_video_frames

    frames = read_video_frames(clips["mono16k"], VideoOptions()).permute(0, 2, 3, 1).numpy()
    sound = read_soundtrack(clips["mono16k"])
    decoded = {"video": {"frames": list(frames), "audio": sound}, "use_audio_in_video": True}
    file = embedder.encode({"video": clips["mono16k"], "use_audio_in_video": True})
    np.testing.assert_allclose(embedder.encode(decoded), file, atol=TOL, rtol=0)
    with pytest.raises(LCOInputError, match="has no 'audio'"):
        embedder.encode({"video": {"frames": list(frames)}, "use_audio_in_video": True})
    with pytest.raises(LCOInputError, match="takes 'frames'"):
        embedder.encode({"video": {"pictures": list(frames)}})


def test_the_sentence_transformers_module_hears_the_sound_too(tiny_omni, clips):
    model = LCOEmbedder(tiny_omni, device="cpu", use_audio_in_video=True)
    items = [{"video": clips["mono16k"]}, "a text", {"video": clips["stereo44k"], "use_audio_in_video": False}]
    got = model.to_sentence_transformer().encode(items, batch_size=3)
    np.testing.assert_allclose(got, model.encode(items), atol=TOL, rtol=0)
