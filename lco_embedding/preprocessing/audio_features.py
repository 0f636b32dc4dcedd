"""Whisper log-mel features of long audio computed a chunk of frames at a time: the same numbers as the checkpoint's
``WhisperFeatureExtractor``, in a fraction of its memory.

transformers' extractor computes the whole short-time Fourier transform of an item at once: for 300 s of audio the
complex spectrum, its magnitudes, a contiguous copy and the mel and log arrays are each tens of megabytes, about
200 MB at the peak. :class:`ChunkedWhisperFeatureExtractor` computes the same frames (the same centre padding, window
and FFT per frame) :data:`CHUNK_FRAMES` at a time into one mel array, then takes the log and the item's dynamic range
as the extractor does; audio of up to one chunk takes the extractor's own code path unchanged.

Does not handle dithering or a device other than the CPU: those take the extractor's own path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CHUNK_FRAMES", "ChunkedWhisperFeatureExtractor", "lean_feature_extractor"]

CHUNK_FRAMES = 2000
"""STFT frames computed at once (20 s of audio at Whisper's 10-ms hop)."""


def lean_feature_extractor(extractor: Any) -> Any:
    """A copy of a Whisper feature extractor that computes long audio's features in chunks (the same numbers, to
    float rounding); any other extractor is returned as it is."""
    from transformers import WhisperFeatureExtractor

    if not isinstance(extractor, WhisperFeatureExtractor) or isinstance(extractor, ChunkedWhisperFeatureExtractor):
        return extractor
    return ChunkedWhisperFeatureExtractor.from_dict(extractor.to_dict())


def _base() -> type:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor


class ChunkedWhisperFeatureExtractor(_base()):  # type: ignore[misc]
    """``WhisperFeatureExtractor`` whose log-mel spectrogram of long audio is computed :data:`CHUNK_FRAMES` frames at
    a time (see the module)."""

    def _torch_extract_fbank_features(self, waveform: np.ndarray, device: str = "cpu") -> np.ndarray:
        import torch
        import torch.nn.functional as F

        frames = waveform.shape[-1] // self.hop_length  # the extractor drops the STFT's last frame
        if self.dither != 0.0 or device != "cpu" or frames <= CHUNK_FRAMES:
            return super()._torch_extract_fbank_features(waveform, device)
        signal = torch.from_numpy(waveform).to(torch.float32)
        batched = signal.dim() == 2
        rows = signal if batched else signal[None]
        half = self.n_fft // 2
        padded = F.pad(rows[:, None], (half, half), mode="reflect")[:, 0]  # torch.stft's centre padding
        window = torch.hann_window(self.n_fft)
        mel_filters = torch.from_numpy(self.mel_filters).to(torch.float32).T
        mel = torch.empty((rows.shape[0], mel_filters.shape[0], frames), dtype=torch.float32)
        for start in range(0, frames, CHUNK_FRAMES):
            stop = min(frames, start + CHUNK_FRAMES)
            piece = padded[:, start * self.hop_length : (stop - 1) * self.hop_length + self.n_fft]
            stft = torch.stft(piece, self.n_fft, self.hop_length, window=window, center=False, return_complex=True)
            mel[:, :, start:stop] = mel_filters @ (stft.abs() ** 2)
        log_spec = mel.clamp_(min=1e-10).log10_()
        floor = log_spec.amax(dim=(1, 2), keepdim=True) - 8.0
        log_spec = torch.maximum(log_spec, floor, out=log_spec).add_(4.0).div_(4.0)
        return (log_spec if batched else log_spec[0]).numpy()
