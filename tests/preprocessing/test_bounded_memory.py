"""Memory stays within the caps: a generated 1-hour 44.1 kHz stereo WAV and a 1.5 GB chunked URL, each read in a
fresh process whose peak RSS growth is measured. Slow (a 635 MB file, 256 MB over loopback); the logic is covered
fast by tests/preprocessing/test_preprocessing.py (decoding stops at the cap, equal to the whole file cut) and
tests/preprocessing/test_sources.py (the size cap)."""

from __future__ import annotations

import json
import subprocess
import sys
import wave

import numpy as np
import pytest

pytestmark = pytest.mark.slow

_MEASURE = """
import json, resource, sys
from lco_embedding.preprocessing.audio import AudioOptions, preprocess_audio
from lco_embedding.preprocessing.sources import fetch_url
from lco_embedding import LCOInputError
preprocess_audio({"array": __import__("numpy").zeros(16000, "float32"), "sampling_rate": 16000})  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kind, target = sys.argv[1], sys.argv[2]
outcome = ""
if kind == "audio":
    outcome = str(preprocess_audio(target, AudioOptions(max_seconds=300)).shape)
else:
    try:
        fetch_url(target, timeout=60, max_bytes=256 * 2**20)
    except LCOInputError as e:
        outcome = e.reason
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "outcome": outcome}))
"""


def _growth(kind: str, target: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _MEASURE, kind, target], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_one_hour_wav_costs_what_five_minutes_cost(tmp_path):
    path = tmp_path / "hour.wav"
    rate, block = 44100, np.random.default_rng(0).integers(-3000, 3000, (44100 * 60, 2), dtype=np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(rate)
        for _ in range(60):  # one hour, a minute at a time
            f.writeframes(block.tobytes())
    measured = _growth("audio", str(path))
    assert measured["outcome"] == "(4800000,)"  # 300 s at 16 kHz
    assert measured["growth_mb"] <= 400, measured


def test_a_1_5_gb_url_is_cut_at_the_cap(tmp_path):
    from tests.preprocessing.test_sources import _HostileServer

    server = _HostileServer(b"")
    try:
        measured = _growth("url", server.url("huge-chunked"))
    finally:
        server.close()
    assert "larger than the limit of 268,435,456 bytes" in measured["outcome"]
    assert measured["growth_mb"] <= 300, measured
