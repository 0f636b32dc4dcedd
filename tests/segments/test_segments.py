"""Segments: long audio, video and text cut into windows, each equal to ``encode`` of the same cut piece."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lco_embedding import LCOInputError, SegmentSpec
from lco_embedding.testing import write_clip_with_sound, write_long_wav, write_wav

TOL = 1e-5
RATE = 16000


@pytest.fixture(scope="module")
def long_media(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("long")
    t = np.arange(95 * RATE) / RATE
    audio = folder / "talk.wav"
    write_wav(audio, 0.3 * np.sin(2 * np.pi * (200 + 4 * t) * t) + 0.01 * np.sin(2 * np.pi * 3 * t), RATE)
    video = write_clip_with_sound(folder / "walk.mkv", seconds=95, fps=1, width=32, height=32, video_codec="mjpeg")
    return {"audio": str(audio), "video": str(video), "folder": str(folder)}


def _cut_video(source: str, path: str, first: int, stop: int) -> str:
    """Frames ``[first, stop)`` of an MJPEG ``source`` (every frame a key frame), their packets copied: a clip that
    decodes to exactly those frames."""
    import av

    with av.open(source) as container, av.open(path, "w") as out:
        stream = container.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for number, packet in enumerate(p for p in container.demux(stream) if p.size):
            if first <= number < stop:
                packet.stream = copy
                out.mux(packet)
    return path


def test_a_long_audio_in_30_second_windows_equals_its_cut_clips(embedder, long_media, tmp_path):
    import soundfile

    segments = embedder.encode_segments(long_media["audio"])
    assert segments.start.tolist() == [0, 30, 60, 90] and segments.end.tolist() == [30, 60, 90, 95]
    assert segments.source.tolist() == [0] * 4 and segments.segment.tolist() == [0, 1, 2, 3]
    samples, rate = soundfile.read(long_media["audio"], dtype="int16")
    clips = []
    for start, end in zip(segments.start, segments.end, strict=True):
        clip = tmp_path / f"clip_{start:g}.wav"
        soundfile.write(clip, samples[int(start * rate) : int(end * rate)], rate, subtype="PCM_16")
        clips.append(str(clip))
    np.testing.assert_allclose(segments.embeddings, embedder.encode(clips), atol=TOL, rtol=0)
    assert np.abs(segments.embeddings[0] @ segments.embeddings[1]) < 0.9999  # the windows differ


def test_a_long_video_in_30_second_windows_equals_its_cut_clips(embedder, long_media, tmp_path):
    segments = embedder.encode_segments(long_media["video"])
    assert segments.start.tolist() == [0, 30, 60, 90] and segments.end.tolist() == [30, 60, 90, 95]
    fps = 1
    clips = [
        _cut_video(long_media["video"], str(tmp_path / f"cut_{i}.mkv"), int(start * fps), int(end * fps))
        for i, (start, end) in enumerate(zip(segments.start, segments.end, strict=True))
    ]
    np.testing.assert_allclose(segments.embeddings, embedder.encode(clips), atol=TOL, rtol=0)


def test_text_windows_equal_encode_of_their_text(embedder):
    text = " ".join(f"Sentence {i} is about topic {i % 7}, told at some length." for i in range(120))
    segments = embedder.encode_segments(text, SegmentSpec(text=120, text_overlap=20))
    assert len(segments) > 5 and (segments.tokens <= 120).all() and (segments.tokens > 0).all()
    pieces = [text[int(a) : int(b)] for a, b in zip(segments.start, segments.end, strict=True)]
    assert all(piece.endswith(".") for piece in pieces[:-1])  # cut at sentence ends
    assert segments.end[-1] == len(text) and (np.diff(segments.start) > 0).all()
    np.testing.assert_allclose(segments.embeddings, embedder.encode(pieces), atol=TOL, rtol=0)


def test_many_items_at_once_keep_their_sources_and_order(embedder, long_media, media):
    spec = SegmentSpec(audio=40.0, video=None, text=None)
    items = ["a short text", long_media["audio"], {"image": media["png"]}, media["mp4"]]
    segments = embedder.encode(items, segment=spec)
    assert segments.source.tolist() == [0, 1, 1, 1, 2, 3] and segments.segment.tolist() == [0, 0, 1, 2, 0, 0]
    assert segments.modality.tolist() == ["text", "audio", "audio", "audio", "image", "video"]
    assert segments.start[1:4].tolist() == [0, 40, 80] and segments.end[1:4].tolist() == [40, 80, 95]
    assert np.isnan(segments.start[[0, 4, 5]]).all() and (segments.tokens == -1).all()
    whole = embedder.encode([items[0], items[2], items[3]])
    np.testing.assert_allclose(segments.embeddings[[0, 4, 5]], whole, atol=TOL, rtol=0)
    assert len(segments.of(1)) == 3 and segments.of(1).source.tolist() == [1, 1, 1]


def test_window_and_stride_overlap(embedder, long_media):
    segments = embedder.encode_segments(long_media["audio"], window=40, stride=30)
    assert segments.start.tolist() == [0, 30, 60] and segments.end.tolist() == [40, 70, 95]


def test_a_source_that_fails_fails_whole(embedder, long_media, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + b"\x00" * 40)
    with pytest.raises(LCOInputError, match="Input 1: "):
        embedder.encode_segments([long_media["audio"], str(broken)])
    segments = embedder.encode_segments([str(broken), long_media["audio"]], on_error="skip")
    assert set(segments.errors) == {0} and segments.source.tolist() == [1] * 4


def test_window_limits_apply_to_the_modality_they_concern(embedder, long_media):
    # A text window above max_length is refused for texts only; an audio window above max_audio_seconds for audio.
    with pytest.raises(LCOInputError, match=r"Input 0: audio windows of 600 s are longer than max_audio_seconds"):
        embedder.encode_segments(long_media["audio"], window=600)
    spoken = embedder.encode_segments(long_media["audio"], SegmentSpec(audio=30.0, text=400))  # no text to cut
    assert len(spoken) == 4
    with pytest.raises(LCOInputError, match=r"Input 1: text windows of 400 tokens are longer than max_length"):
        embedder.encode_segments([long_media["audio"], "a text"], SegmentSpec(audio=30.0, text=400))
    kept = embedder.encode_segments([long_media["audio"], "a text"], SegmentSpec(audio=30.0, text=400),
                                    on_error="skip")  # fmt: skip
    assert sorted(set(kept.source)) == [0] and list(kept.errors) == [1]


def test_a_video_given_as_frames_is_one_whole_segment(embedder):
    frames = [np.full((32, 32, 3), 30 * i, np.uint8) for i in range(4)]
    segments = embedder.encode_segments({"video": frames})
    assert len(segments) == 1 and np.isnan(segments.start[0]) and np.isnan(segments.end[0])
    np.testing.assert_allclose(segments.embeddings[0], embedder.encode({"video": frames}), atol=TOL, rtol=0)


def test_sources_are_read_lazily_and_delivered_as_they_finish(embedder, long_media):
    """The stream reads its sources as it goes, about one window of the engine ahead (16 batches), never the whole
    input first, and hands each source back once its last segment is embedded."""
    read: list[int] = []

    def sources():
        for i in range(200):
            read.append(i)
            yield long_media["audio"] if i == 199 else f"text number {i}"

    stream = embedder.segment_outcomes(sources(), batch_size=2)
    first = next(stream)
    assert first.index == 0 and len(first) == 1 and len(read) < 100
    rest = list(stream)
    assert [part.index for part in rest] == list(range(1, 200)) and len(rest[-1]) == 4


def test_bad_specs_are_refused(embedder):
    with pytest.raises(ValueError, match="stride"):
        SegmentSpec(audio=10.0, audio_stride=20.0)
    with pytest.raises(ValueError, match="text_overlap"):
        SegmentSpec(text=50, text_overlap=50)
    with pytest.raises(ValueError, match="longer than max_length"):
        embedder.encode_segments("some text", SegmentSpec(text=400))
    assert SegmentSpec.parse("audio=30s, video=20s,text=120") == SegmentSpec(30.0, 20.0, 120, text_overlap=20)
    with pytest.raises(ValueError, match=r"--segment names audio twice \('audio=30s' and 'audio=10s'\)"):
        SegmentSpec.parse("audio=30s,audio=10s")
    with pytest.raises(ValueError, match="at most 86,400"):
        SegmentSpec().with_window(1e308)
    with pytest.raises(ValueError, match="at most 1,000,000"):
        SegmentSpec(text=10**7)
    assert SegmentSpec.parse("audio=30").video is None
    for bad in ("audio=30x", "text=12.5", "text=300s", "frames=3", ""):
        with pytest.raises(ValueError, match="--segment"):
            SegmentSpec.parse(bad)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures with Linux's /proc/self/status")
@pytest.mark.slow
@pytest.mark.parametrize("minutes", [120, 60])
def test_hours_of_audio_stream_in_bounded_memory(tiny_omni, tmp_path, minutes):
    """Peak resident memory of segmenting and embedding a 2-hour (and a 1-hour) file, measured in its own process
    from a warm start (the peak reset after one window has been embedded). The growth does not depend on the
    length (the pipeline holds about two batches of windows): measured 202 MB for 2 h, 192 MB for 1 h; a pipeline
    holding the whole file would add its waveform alone (230 MB an hour). Slow (20-30 s each); covered fast by
    tests/preprocessing/test_stream.py (a 2-hour file decoded in windows in bounded memory) and the laziness test
    above."""
    path = write_long_wav(tmp_path / "long.wav", minutes=minutes)
    warm = write_long_wav(tmp_path / "one_minute.wav", minutes=1)
    script = textwrap.dedent(
        f"""
        import json, re
        from lco_embedding import LCOEmbedder

        def status(key):
            return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024

        model = LCOEmbedder({tiny_omni!r}, device="cpu")
        model.encode_segments({str(warm)!r})  # warm: every buffer of a 30-s window allocated once
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak
        before = status("VmRSS")
        rows = 0
        for part in model.segment_outcomes([{str(path)!r}]):
            rows += len(part)
        print(json.dumps({{"rows": rows, "before_mb": before, "peak_mb": status("VmHWM")}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print(measured)
    assert measured["rows"] == 2 * minutes
    assert measured["peak_mb"] - measured["before_mb"] < 300
