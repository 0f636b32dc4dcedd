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


# ------------------------------------------------------------------------------------------ pixels, decoded right
def _rgb(source, **options) -> np.ndarray:
    from lco_embedding.preprocessing.image import load_image

    return np.asarray(load_image(source, ImageOptions(**options) if options else None))


def test_16_bit_and_float_images_are_scaled_by_their_range_not_saturated(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65,520
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)  # a 16-bit grayscale PNG
    assert Image.open(path).mode in ("I;16", "I")
    expected = np.round(ramp / 257).astype(np.uint8)
    np.testing.assert_array_equal(_rgb(path), np.repeat(expected[..., None], 3, axis=-1))
    np.testing.assert_array_equal(_rgb(Image.fromarray(ramp))[..., 0], expected)  # an in-memory I;16 image
    unit = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    np.testing.assert_array_equal(_rgb(Image.fromarray(unit, mode="F"))[..., 0], np.round(unit * 255))
    wide = unit * 1000 - 500  # outside [0, 255]: scaled by its min..max
    np.testing.assert_array_equal(_rgb(Image.fromarray(wide, mode="F"))[..., 0], np.round((wide + 500) * 0.255))


def test_two_unrelated_16_bit_images_no_longer_embed_alike(tmp_path, embedder):
    rng = np.random.default_rng(0)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(rng.integers(0, 65535, (64, 64), dtype=np.uint16)).save(first)
    Image.fromarray(np.full((64, 64), 20000, np.uint16)).save(second)  # the old saturation made both white
    a, b = embedder.encode([str(first), str(second)])
    assert float(a @ b) < 0.99


def test_every_mode_with_transparency_is_composited_over_white_like_rgba():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 40
    rgba[:4, :, 3] = 255  # top half opaque grey, bottom half fully transparent
    expected = _rgb(Image.fromarray(rgba, "RGBA"))
    assert (expected[:4] == 40).all() and (expected[4:] == 255).all()
    np.testing.assert_array_equal(_rgb(Image.fromarray(rgba, "RGBA").convert("LA")), expected)
    palette = Image.fromarray((rgba[..., 3] == 255).astype(np.uint8), "P")  # index 1: grey, index 0: transparent
    palette.putpalette([0, 0, 0, 40, 40, 40])
    palette.info["transparency"] = 0
    np.testing.assert_array_equal(_rgb(palette), expected)
    keyed = Image.fromarray(rgba[..., :3], "RGB")
    keyed.info["transparency"] = (40, 40, 40)  # an RGB image with a transparent colour
    np.testing.assert_array_equal(_rgb(keyed), 255)


def test_cmyk_ycbcr_and_lab_are_converted_to_the_colours_they_hold():
    assert tuple(_rgb(Image.new("CMYK", (2, 2), (255, 0, 0, 0)))[0, 0]) == (0, 255, 255)  # cyan
    assert np.abs(_rgb(Image.new("YCbCr", (2, 2), (76, 85, 255)))[0, 0].astype(int) - (255, 0, 0)).max() <= 2
    encoded = _lab_of_srgb((200, 60, 40))  # the standard formulas, written out independently below
    assert np.abs(_rgb(Image.new("LAB", (2, 2), encoded))[0, 0].astype(int) - (200, 60, 40)).max() <= 3
    assert (_rgb(Image.new("LAB", (2, 2), (255, 128, 128)))[0, 0] >= 254).all()  # L* 100: white


def _lab_of_srgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """CIE L*a*b* (D50, as LittleCMS's LAB profile) of an sRGB colour, in Pillow's 8-bit LAB encoding."""
    linear = [(c / 255 / 12.92) if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    to_xyz_d65 = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    bradford_d65_to_d50 = np.array([[1.0478, 0.0229, -0.0501], [0.0295, 0.9905, -0.0171], [-0.0092, 0.0151, 0.7519]])
    x, y, z = bradford_d65_to_d50 @ to_xyz_d65 @ np.array(linear) / np.array([0.9642, 1.0, 0.8249])

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    lightness, a, b = 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))
    return round(lightness * 255 / 100), round(a + 128), round(b + 128)


def test_images_above_the_pixel_cap_or_empty_are_refused_before_decoding(media):
    with pytest.raises(LCOInputError, match=r"80x60 = 4,800 pixels, above the limit of 1,000 \(max_image_pixels\)"):
        _rgb(media["png"], max_image_pixels=1000)
    with pytest.raises(LCOInputError, match=r"the image is empty \(0x0 pixels\)"):
        _rgb(Image.new("RGB", (0, 0)))
    with pytest.raises(LCOInputError, match="complex numbers"):
        _rgb(np.ones((4, 4, 3), np.complex64))


# ------------------------------------------------------------------------------------- audio and video, bounded
def test_long_audio_is_decoded_only_up_to_the_cap_and_equals_the_whole_file_cut(tmp_path):
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((44100 * 12, 2)) * 0.1).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, samples, 44100, subtype="PCM_16")
    whole = librosa.load(str(path), sr=16000)[0]
    for seconds in (3.0, 5.5):
        ours = preprocess_audio(str(path), AudioOptions(max_seconds=seconds))
        np.testing.assert_array_equal(ours, whole[: int(seconds * 16000)])
        in_memory = preprocess_audio({"array": samples, "sampling_rate": 44100}, AudioOptions(max_seconds=seconds))
        resampled = librosa.resample(librosa.to_mono(samples.T), orig_sr=44100, target_sr=16000)
        np.testing.assert_array_equal(in_memory, resampled[: int(seconds * 16000)])


def test_nan_samples_and_complex_arrays_are_named_as_such(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.1, np.nan, 0.2] * 2000, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(LCOInputError, match="NaN or infinite samples; the file's samples are damaged"):
        preprocess_audio(str(path))
    with pytest.raises(LCOInputError, match="complex numbers"):
        preprocess_audio(np.ones(1000, np.complex64))


def test_audio_only_mp4_as_video_says_so(tmp_path):
    from lco_embedding.testing import write_audio_only_mp4

    path = write_audio_only_mp4(tmp_path / "sound.mp4")
    with pytest.raises(
        LCOInputError, match=r"no video stream \(it holds audio only: embed it as \{'audio': \.\.\.\}\)"
    ):
        preprocess_video(str(path))


def test_pyav_keeps_only_the_sampled_frames_and_matches_decord(tmp_path):
    from lco_embedding.preprocessing.video import _read_decord, _read_pyav
    from lco_embedding.testing import write_mp4

    path = write_mp4(tmp_path / "clip.mp4", seconds=6, fps=8, width=64, height=48, rng=np.random.default_rng(1))
    torch.testing.assert_close(_read_pyav(str(path), VideoOptions()), _read_decord(str(path), VideoOptions()))


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGBA pixels and holds almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_an_image_just_under_pillows_guard_is_refused_from_its_header():
    data = _png_declaring(13000, 13000)  # 169 M pixels: under Pillow's 179 M guard, 676 MB once decoded
    assert len(data) < 200
    with pytest.raises(LCOInputError, match=r"13000x13000 = 169,000,000 pixels, above the limit of 64,000,000"):
        preprocess_image(data)


def test_huge_images_decode_one_budget_at_a_time():
    import threading

    from lco_embedding.preprocessing.image import _DecodeBudget

    budget, order = _DecodeBudget(), []
    first_in, release_first = threading.Event(), threading.Event()

    def first() -> None:
        with budget.hold(80, 100):
            first_in.set()
            release_first.wait(60)
            order.append("first done")

    def second() -> None:
        with budget.hold(80, 100):  # 80 + 80 > 100: waits for the first
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_in.wait(60)
    threads[1].start()
    with budget.hold(10, 100):  # a small image still decodes beside the first
        order.append("small")
    release_first.set()
    for thread in threads:
        thread.join(60)
    assert order == ["small", "first done", "second in"]


# ----------------------------------------------------------------------------------------- fast preprocessing
@pytest.fixture(scope="module")
def fast_and_reference(tiny_omni):
    from lco_embedding import LCOEmbedder

    return LCOEmbedder(tiny_omni, device="cpu", preprocessing="fast"), LCOEmbedder(tiny_omni, device="cpu")


def test_fast_preprocessing_gives_the_reference_sizes_and_stays_within_0_999_cosine(fast_and_reference, tmp_path):
    """Noise JPEGs below, near and above the pixel budget (every pixel an edge: the worst case for a different
    resize filter) on the std-0.2 tiny model: the same grid and tokens, cosine >= 0.999 to the reference mode
    (benchmarks/fast_preprocessing.py prints each item's value; docs/performance.md records them)."""
    from lco_embedding.testing import write_noise_jpegs

    fast, reference = fast_and_reference
    items = [{"image": str(path)} for path in write_noise_jpegs(tmp_path)]
    for index, item in enumerate(items):
        got = fast.pipeline().featurizer(index, item, None, None)
        want = reference.pipeline().featurizer(index, item, None, None)
        assert got.length == want.length
        assert torch.equal(got.inputs["image_grid_thw"], want.inputs["image_grid_thw"])
        assert torch.equal(got.inputs["input_ids"], want.inputs["input_ids"])
    cosine = (fast.encode(items) * reference.encode(items)).sum(axis=1)
    assert cosine.min() >= 0.999
    assert cosine.max() < 1 - 1e-7  # the modes do differ: the check is not comparing a mode with itself


def _with_processor_limits(tiny_omni: str, folder: Path, low: int, high: int) -> str:
    """A copy of the checkpoint whose image processor resizes into ``[low, high]`` pixels (its own limits)."""
    import json
    import shutil

    shutil.copytree(tiny_omni, folder)
    config = json.loads((folder / "processor_config.json").read_text())
    config["image_processor"]["size"] = {"shortest_edge": low, "longest_edge": high}
    (folder / "processor_config.json").write_text(json.dumps(config))
    return str(folder)


def _photos(folder: Path, count: int) -> list[str]:
    """``count`` JPEG photos of three sizes: below, near and above the embedder's pixel budget."""
    from lco_embedding.testing import synthetic_image

    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(11)
    sizes = [(200, 300), (480, 640), (1200, 1600)]
    paths = []
    for index in range(count):
        path = folder / f"{index}.jpg"
        Image.fromarray(synthetic_image(*sizes[index % 3], rng)).save(path, quality=90)
        paths.append(str(path))
    return paths


LIMITS = {
    "below": (56 * 56, 64 * 28 * 28),  # the checkpoint's processor caps images under the embedder's max_pixels
    "equal": (4 * 28 * 28, 1280 * 28 * 28),
    "above": (56 * 56, 16384 * 28 * 28),
}


def _fast_matches_the_reference(checkpoint: str, photos: list[str]) -> np.ndarray:
    from lco_embedding import LCOEmbedder

    fast = LCOEmbedder(checkpoint, device="cpu", preprocessing="fast")
    reference = LCOEmbedder(checkpoint, device="cpu")
    for index, photo in enumerate(photos[:6]):
        got = fast.pipeline().featurizer(index, {"image": photo}, None, None)
        want = reference.pipeline().featurizer(index, {"image": photo}, None, None)
        assert torch.equal(got.inputs["image_grid_thw"], want.inputs["image_grid_thw"]), photo
        assert got.length == want.length and torch.equal(got.inputs["input_ids"], want.inputs["input_ids"])
    items = [{"image": photo} for photo in photos]
    return (fast.encode(items, batch_size=8) * reference.encode(items, batch_size=8)).sum(axis=1)


@pytest.mark.parametrize("limits", list(LIMITS))
def test_fast_preprocessing_ends_at_the_references_grid_whatever_the_processors_own_limits(tiny_omni, tmp_path, limits):
    checkpoint = _with_processor_limits(tiny_omni, tmp_path / "ckpt", *LIMITS[limits])
    cosine = _fast_matches_the_reference(checkpoint, _photos(tmp_path / "photos", 9))
    assert cosine.min() >= 0.999, cosine


@pytest.mark.slow
@pytest.mark.parametrize("limits", list(LIMITS))
def test_fast_preprocessing_on_120_photos_of_three_sizes(tiny_omni, tmp_path, limits):
    """The acceptance's run (the fast test above checks the same on 9 photos)."""
    checkpoint = _with_processor_limits(tiny_omni, tmp_path / "ckpt", *LIMITS[limits])
    cosine = _fast_matches_the_reference(checkpoint, _photos(tmp_path / "photos", 120))
    assert cosine.min() >= 0.999, cosine


def test_fast_preprocessing_is_a_saved_setting_and_checked(fast_and_reference, tiny_omni):
    from lco_embedding import LCOEmbedder

    fast, _ = fast_and_reference
    assert fast.settings()["preprocessing"] == "fast"
    with pytest.raises(ValueError, match="preprocessing must be 'reference' or 'fast'"):
        LCOEmbedder(tiny_omni, device="cpu", preprocessing="pillow")


def test_long_audios_features_computed_in_chunks_equal_the_extractors(embedder):
    from lco_embedding.preprocessing.audio_features import CHUNK_FRAMES, lean_feature_extractor

    extractor = embedder.processor.feature_extractor
    lean = lean_feature_extractor(extractor)
    assert type(lean) is not type(extractor) and lean_feature_extractor(lean) is lean
    rng = np.random.default_rng(3)
    for seconds in (1.0, CHUNK_FRAMES / 100 + 0.013, 45.5):  # one chunk, just over one, several
        samples = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        settings = {"sampling_rate": 16000, "max_length": len(samples) + 480, "padding": "max_length"}
        want = extractor(samples, return_attention_mask=True, return_tensors="pt", **settings)
        got = lean(samples, return_attention_mask=True, return_tensors="pt", **settings)
        # The same frames and arithmetic; a chunk's matrix product may round its last bit differently (seen: 1 ULP
        # in 3e-5 of the values at 20.013 s with torch 2.14), never more.
        torch.testing.assert_close(got["input_features"], want["input_features"], rtol=0, atol=2e-7, msg=str(seconds))
        assert torch.equal(got["attention_mask"], want["attention_mask"])


def test_an_hour_of_audio_beside_other_items_stays_within_300_mb(embedder, media, tmp_path):
    from lco_embedding.testing import peak_memory_growth, write_long_wav

    hour = str(write_long_wav(tmp_path / "hour.wav", minutes=60, silent=True))  # 115 MB; 300 s are embedded
    items = [{"audio": hour}, "a text", {"image": media["png"]}]
    outcome, grown = peak_memory_growth(lambda: embedder.encode(items))
    assert outcome.shape == (3, embedder.dimension) and grown < 300 * 2**20, grown  # was +719 MB
