"""Embed audio from files and from an in-memory waveform at any sampling rate."""

import numpy as np
from _common import load_model, sample_media

media = sample_media()
model = load_model()
t = np.arange(44100) / 44100
stereo_44k = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]) * 0.3  # (channels, samples)
emb = model.encode([{"audio": media["wav"]}, media["flac"], {"array": stereo_44k, "sampling_rate": 44100}])
print(model.similarity(emb, emb).numpy().round(3))
