"""Media preprocessors: every source form of a modality gives the same result as its file."""

from __future__ import annotations

import base64
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from lco_embedding import LCOInputError
from lco_embedding.preprocessing import (
    AudioOptions,
    ImageOptions,
    VideoOptions,
    preprocess_audio,
    preprocess_image,
    preprocess_video,
)


def test_image_sources_agree(media):
    expected = np.asarray(preprocess_image(media["jpg"]))
    data = Path(media["jpg"]).read_bytes()
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    rgb = Image.open(media["jpg"]).convert("RGB")
    tensor = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
    for source in (data, uri, "file://" + media["jpg"], Path(media["jpg"]), rgb, np.asarray(rgb), tensor):
        np.testing.assert_array_equal(np.asarray(preprocess_image(source)), expected)


def test_image_modes_and_budget(media):
    assert preprocess_image(media["gray_png"]).mode == "RGB"
    assert preprocess_image(media["png_rgba"]).mode == "RGB"
    small = preprocess_image(media["png"], ImageOptions(min_pixels=28 * 28, max_pixels=2 * 28 * 28))
    assert small.width * small.height <= 2 * 28 * 28
    with pytest.raises(ValueError, match="min_pixels <= max_pixels"):
        ImageOptions(min_pixels=10, max_pixels=5)
    with pytest.raises(LCOInputError, match="values in \\[0, 1\\]"):
        preprocess_image(np.full((8, 8, 3), 7.0))


def test_audio_array_equals_file_load(media):
    from_file = preprocess_audio(media["wav_22k_stereo"])
    samples, rate = sf.read(media["wav_22k_stereo"], dtype="float32")  # (samples, channels)
    from_array = preprocess_audio({"array": samples, "sampling_rate": rate})
    np.testing.assert_allclose(from_array, from_file, atol=1e-6)
    from_channels_first = preprocess_audio({"array": torch.from_numpy(samples.T.copy()), "sampling_rate": rate})
    np.testing.assert_allclose(from_channels_first, from_file, atol=1e-6)
    np.testing.assert_allclose(from_file, librosa.load(media["wav_22k_stereo"], sr=16000)[0], atol=0)


def test_audio_bytes_uri_and_cap(media):
    expected = preprocess_audio(media["flac"])
    data = Path(media["flac"]).read_bytes()
    np.testing.assert_array_equal(preprocess_audio(data), expected)
    np.testing.assert_array_equal(
        preprocess_audio("data:audio/flac;base64," + base64.b64encode(data).decode()), expected
    )
    assert len(preprocess_audio(media["wav"], AudioOptions(max_seconds=0.25))) == 4000
    int16 = (np.sin(np.arange(1600)) * 1000).astype(np.int16)
    assert preprocess_audio({"array": int16, "sampling_rate": 16000}).dtype == np.float32


def test_video_file_frames(media):
    video = preprocess_video(media["mp4"])  # 2 s at 8 fps -> 4 frames at 2 fps
    assert video.shape[0] == 4 and video.shape[1] == 3 and video.dtype == torch.float32
    assert video.shape[2] % 28 == 0 and video.shape[3] % 28 == 0
    assert preprocess_video(media["mp4"], VideoOptions(fps=4.0)).shape[0] == 8


def test_video_frame_lists(media):
    frames = [Image.open(media["png"]).convert("RGB")] * 3
    video = preprocess_video(frames)
    assert video.shape[0] == 4  # padded to an even count
    array = np.stack([np.asarray(f) for f in frames])
    torch.testing.assert_close(preprocess_video(array), video)
    long = preprocess_video(frames * 10, VideoOptions(max_frames=6))
    assert long.shape[0] == 6
    with pytest.raises(LCOInputError, match="one size"):
        preprocess_video([frames[0], frames[0].resize((20, 20))])
