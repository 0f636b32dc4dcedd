"""Tiny random checkpoints and test media, for offline tests of code that uses lco-embedding.

The checkpoints have the real architectures (``Qwen2_5OmniThinkerForConditionalGeneration``, a full
``Qwen2_5OmniForConditionalGeneration`` without its speech output, and ``Qwen2_5_VLForConditionalGeneration``),
real processors (Qwen2-VL image and video processors, Whisper feature extractor) and a byte-level BPE tokenizer
with Qwen's special tokens, but a hidden size of 64 and random weights: the embeddings they give mean nothing.
They exist so that the whole loading and encoding path can be exercised without network access.

Example:
    >>> from lco_embedding.testing import build_tiny_checkpoint
    >>> from lco_embedding import LCOEmbedder
    >>> path = build_tiny_checkpoint("tiny-lco")
    >>> LCOEmbedder(str(path), device="cpu").encode("hello").shape
    (64,)

Does not build the talker / token2wav parts of a full Qwen2.5-Omni checkpoint (they are never used for
embedding).
"""

from __future__ import annotations

from lco_embedding.testing.checkpoints import (
    OMNI_CHAT_TEMPLATE,
    VL_CHAT_TEMPLATE,
    build_tiny_checkpoint,
    build_tiny_cross_encoder,
)
from lco_embedding.testing.faults import peak_memory_growth, simulate_oom
from lco_embedding.testing.media import (
    make_test_media,
    modality_offset_corpus,
    synthetic_image,
    write_audio_only_mp4,
    write_clip_with_silent_track,
    write_clip_with_sound,
    write_long_wav,
    write_mp4,
    write_noise_jpegs,
    write_video,
    write_wav,
)

__all__ = [
    "build_tiny_checkpoint",
    "build_tiny_cross_encoder",
    "make_test_media",
    "modality_offset_corpus",
    "peak_memory_growth",
    "simulate_oom",
    "synthetic_image",
    "write_audio_only_mp4",
    "write_clip_with_silent_track",
    "write_clip_with_sound",
    "write_long_wav",
    "write_mp4",
    "write_noise_jpegs",
    "write_video",
    "write_wav",
    "OMNI_CHAT_TEMPLATE",
    "VL_CHAT_TEMPLATE",
]
