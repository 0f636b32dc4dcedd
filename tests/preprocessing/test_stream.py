"""Streaming audio windows (lco_embedding.preprocessing.stream): parity with ``librosa.load`` of the whole file on
real wav / flac files, the AAC sound track of an mp4, argument and input errors, and bounded memory on a generated
two-hour wav streamed in a fresh process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import av
import librosa
import numpy as np
import pytest
import soundfile as sf

from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.stream import AudioWindow, audio_duration, audio_windows
from lco_embedding.testing import write_video, write_wav

SR = 16000
RESAMPLED_ATOL = 1e-6
"""Tolerance against librosa for resampled sources; measured difference: 0.0 (soxr's streaming and one-shot paths
give bit-identical samples)."""


def _signal(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """A tone plus noise, ``(n,)`` or ``(n, channels)``, within [-0.9, 0.9]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tracks = [0.5 * np.sin(2 * np.pi * (330 + 220 * c) * t) + 0.2 * rng.uniform(-1, 1, t.size) for c in range(channels)]
    return tracks[0] if channels == 1 else np.stack(tracks, -1)


def _slice(whole: np.ndarray, w: AudioWindow) -> np.ndarray:
    return whole[int(round(w.start * SR)) : int(round(w.end * SR))]


def _max_difference(windows: list[AudioWindow], whole: np.ndarray) -> float:
    diff = 0.0
    for w in windows:
        expected = _slice(whole, w)
        assert w.samples.dtype == np.float32 and w.samples.ndim == 1
        assert w.samples.shape == expected.shape, (w.start, w.end)
        diff = max(diff, float(np.abs(w.samples - expected).max()))
    return diff


def test_a_95_s_wav_at_16_khz_gives_four_windows_equal_to_librosa(tmp_path):
    path = tmp_path / "long.wav"
    write_wav(path, _signal(95, SR, 1), SR)
    windows = list(audio_windows(str(path)))
    assert [(w.start, w.end) for w in windows] == [(0, 30), (30, 60), (60, 90), (90, 95)]
    whole = librosa.load(path, sr=SR)[0]
    for w in windows:
        np.testing.assert_array_equal(w.samples, _slice(whole, w))
    assert sum(w.samples.size for w in windows) == whole.size == 95 * SR
    assert audio_duration(str(path)) == 95.0


def test_a_22_khz_stereo_wav_is_mixed_down_and_resampled_as_librosa_does(tmp_path):
    path = tmp_path / "stereo.wav"
    write_wav(path, _signal(40.3, 22050, 2), 22050)
    windows = list(audio_windows(str(path), window=10.0))
    assert [(w.start, w.end) for w in windows][:4] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    whole = librosa.load(path, sr=SR)[0]
    assert math.isclose(windows[-1].end, whole.size / SR)
    joined = np.concatenate([w.samples for w in windows])
    assert joined.shape == whole.shape
    diff = float(np.abs(joined - whole).max())
    print(f"22.05 kHz stereo, 40.3 s: max |stream - librosa.load| = {diff:.3g}")
    assert diff <= RESAMPLED_ATOL


@pytest.mark.parametrize(
    ("kind", "rate", "channels"),
    [("wav", 16000, 2), ("wav", 44100, 2), ("wav", 8000, 1), ("flac", 16000, 1), ("flac", 48000, 2)],
)
@pytest.mark.parametrize(("window", "stride"), [(2.0, None), (2.0, 0.7), (1 / 3, 0.1)])
def test_windows_equal_slices_of_librosa_load(tmp_path, kind, rate, channels, window, stride):
    path = tmp_path / f"audio.{kind}"
    samples = _signal(7.3, rate, channels, seed=rate + channels)
    if kind == "wav":
        write_wav(path, samples, rate)
    else:
        sf.write(path, samples.astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    whole = librosa.load(path, sr=SR)[0]
    windows = list(audio_windows(str(path), window=window, stride=stride))
    assert _max_difference(windows, whole) <= (0 if rate == SR else RESAMPLED_ATOL)
    step = window if stride is None else stride
    duration = whole.size / SR
    assert [w.start for w in windows] == [k * step for k in range(len(windows))]
    assert all(w.end == min(w.start + window, duration) for w in windows)
    # The last window is the first that reaches the end; none is empty.
    assert windows[-1].start + window >= duration > windows[-2].start + window
    assert all(w.samples.size for w in windows)


def test_overlapping_windows_stop_after_the_first_that_reaches_the_end(tmp_path):
    path = tmp_path / "long.wav"
    write_wav(path, _signal(95, SR, 1), SR)
    windows = list(audio_windows(str(path), window=30.0, stride=10.0))
    assert [(w.start, w.end) for w in windows] == [(s, s + 30) for s in range(0, 70, 10)] + [(70, 95)]
    whole = librosa.load(path, sr=SR)[0]
    assert _max_difference(windows, whole) == 0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"window": 0}, "window"),
        ({"window": -1.0}, "window"),
        ({"window": float("nan")}, "window"),
        ({"window": float("inf")}, "window"),
        ({"stride": 0}, "stride"),
        ({"stride": -5.0}, "stride"),
        ({"window": 10.0, "stride": 11.0}, "stride must be at most window"),
        ({"sampling_rate": 0}, "sampling_rate"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(tmp_path, kwargs, named):
    path = tmp_path / "tone.wav"
    write_wav(path, _signal(1, SR, 1), SR)
    with pytest.raises(ValueError, match=named):
        audio_windows(str(path), **kwargs)


def _write_mp4_with_sound(path: Path, *, seconds: float, rate: int) -> np.ndarray:
    """An mpeg4 video stream and an AAC stereo sound stream (440 Hz); returns the stereo signal encoded."""
    t = np.arange(int(rate * seconds)) / rate
    sound = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 440 * t)]).astype(np.float32)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=8)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "stereo"
        for i in range(int(8 * seconds)):
            image = np.full((48, 64, 3), i * 5 % 256, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for i in range(0, sound.shape[1], 1024):
            chunk = np.zeros((2, 1024), np.float32)
            chunk[:, : sound.shape[1] - i] = sound[:, i : i + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, i
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return sound


def test_the_aac_sound_track_of_an_mp4(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_mp4_with_sound(path, seconds=5.0, rate=44100)
    windows = list(audio_windows(str(path), window=2.0))
    assert [(w.start, w.end) for w in windows][:2] == [(0, 2), (2, 4)]
    assert windows[-1].start == 4.0 and 5.0 <= windows[-1].end < 5.1  # AAC pads to whole 1024-sample frames
    assert abs(audio_duration(str(path)) - 5.0) < 0.05
    # No ffmpeg binary, so librosa cannot read an mp4: the reference is PyAV's whole decode, then librosa.
    with av.open(str(path)) as container:
        whole = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)
    reference = librosa.resample(librosa.to_mono(whole), orig_sr=44100, target_sr=SR)
    joined = np.concatenate([w.samples for w in windows])
    assert joined.shape == reference.shape
    assert float(np.abs(joined - reference).max()) <= RESAMPLED_ATOL
    # The tone came through: 440 Hz dominates, at the mean of the two channels' amplitudes.
    middle = windows[1].samples
    assert np.argmax(np.abs(np.fft.rfft(middle))) * SR / middle.size == pytest.approx(440, abs=1)
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.05)


def test_bad_inputs_raise_input_errors(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", [np.zeros((48, 64, 3), np.uint8)] * 4, fps=8)
    with pytest.raises(LCOInputError, match="no audio stream"):
        audio_windows(str(silent))
    with pytest.raises(LCOInputError, match="no audio stream"):
        audio_duration(str(silent))
    with pytest.raises(LCOInputError):
        audio_windows(str(tmp_path / "missing.wav"))
    with pytest.raises(LCOInputError):
        audio_duration(str(tmp_path / "missing.wav"))
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8)
    with pytest.raises(LCOInputError, match="cannot decode"):
        audio_windows(str(corrupt))
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all\n" * 100)
    with pytest.raises(LCOInputError, match="cannot decode|no audio stream"):  # ffmpeg reads text as a video
        list(audio_windows(str(text)))
    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0), SR)
    with pytest.raises(LCOInputError, match="empty"):
        list(audio_windows(str(empty)))


def test_stopping_early_closes_the_file(tmp_path):
    path = tmp_path / "long.wav"
    write_wav(path, _signal(95, SR, 1), SR)
    windows = audio_windows(str(path), window=10.0)
    first = next(windows)
    windows.close()
    assert (first.start, first.end, first.samples.size) == (0, 10, 10 * SR)


_STREAM_ALL = """
import json, sys
import numpy as np
import av, soxr  # imported before measuring: only the streaming itself counts
from lco_embedding.preprocessing.stream import audio_windows

def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

windows = audio_windows(sys.argv[1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the high-water mark: what the imports took before does not count
before = status_mb("VmRSS")
count, samples, checksum, last = 0, 0, 0.0, None
for w in windows:
    count, samples = count + 1, samples + w.samples.size
    checksum += float(w.samples.astype(np.float64).sum())
    last = (w.start, w.end)
peak = status_mb("VmHWM")
print(json.dumps({"before_mb": before, "peak_mb": peak, "count": count, "samples": samples,
                  "checksum": checksum, "last": last}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures with Linux's /proc/self/status")
def test_a_two_hour_wav_streams_in_bounded_memory(tmp_path):
    path, minute = tmp_path / "two_hours.wav", SR * 60
    block = np.random.default_rng(0).integers(-3000, 9000, minute, dtype=np.int16)  # a DC offset: a nonzero sum
    with wave.open(str(path), "wb") as f:  # 230 MB, written a minute at a time
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        for _ in range(120):
            f.writeframes(block.tobytes())
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _STREAM_ALL, str(path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.splitlines()[-1])
    print(f"two-hour wav streamed in {time.perf_counter() - began:.1f} s: {measured}")
    assert measured["count"] == 240 and measured["last"] == [7170.0, 7200.0]
    assert measured["samples"] == 120 * minute
    expected = 120 * float((block.astype(np.float32) / np.float32(32768)).astype(np.float64).sum())
    assert measured["checksum"] == pytest.approx(expected, rel=1e-9)
    # librosa.load of the whole file peaks 750 MB higher (measured); a 30-s window is 1.9 MB.
    assert measured["peak_mb"] - measured["before_mb"] < 300, measured
