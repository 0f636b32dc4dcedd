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

import json
import wave
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = [
    "build_tiny_checkpoint",
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

CheckpointKind = Literal["omni-thinker", "omni", "qwen2_5_vl"]

# Chat templates of the same form as the released Qwen2.5-Omni and Qwen2.5-VL ones (default system turn,
# one placeholder per media part, generation prompt).
_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "SYSTEM_PROMPT<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}IMAGE_PLACEHOLDER"
    "AUDIO_BRANCH"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}VIDEO_PLACEHOLDER"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
OMNI_CHAT_TEMPLATE = (
    _TEMPLATE.replace(
        "SYSTEM_PROMPT",
        "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
        "auditory and visual inputs, as well as generating text and speech.",
    )
    .replace("IMAGE_PLACEHOLDER", "<|vision_bos|><|IMAGE|><|vision_eos|>")
    .replace(
        "AUDIO_BRANCH",
        "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
        "<|audio_bos|><|AUDIO|><|audio_eos|>",
    )
    .replace("VIDEO_PLACEHOLDER", "<|vision_bos|><|VIDEO|><|vision_eos|>")
)
"""Chat template of Qwen2.5-Omni's form, used by the tiny Omni checkpoints."""

VL_CHAT_TEMPLATE = (
    _TEMPLATE.replace("SYSTEM_PROMPT", "You are a helpful assistant.")
    .replace("IMAGE_PLACEHOLDER", "<|vision_start|><|image_pad|><|vision_end|>")
    .replace("AUDIO_BRANCH", "")
    .replace("VIDEO_PLACEHOLDER", "<|vision_start|><|video_pad|><|vision_end|>")
)
"""Chat template of Qwen2.5-VL's form, used by the tiny Qwen2.5-VL checkpoint."""

_OMNI_SPECIAL = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
_VL_SPECIAL = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
}
_CORPUS = [
    "Summarize the above text in one word:",
    "Summarize the above image in one word:",
    "Summarize the above audio in one word:",
    "Summarize the above video in one word:",
    "Summarize the above in one word:",
    "a cat on a mat. A dog in the fog. The quick brown fox jumps over the lazy dog.",
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
    "auditory and visual inputs, as well as generating text and speech. You are a helpful assistant.",
    "system user assistant Picture Video Audio query document Represent this sentence for searching",
    "0123456789 the of and to in is that for it with as was on be by at this",
]


def _build_tokenizer(special: dict[str, str]):
    """A byte-level BPE trained on a few sentences, wrapped as Qwen's fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *special.values()]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=special,
        model_max_length=32768,
    )


def _vision_processors(temporal_patch_size: int = 2):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=16384 * 28 * 28)
    video = Qwen2VLVideoProcessor(temporal_patch_size=temporal_patch_size)
    return image, video


def _text_config(vocab_size: int, pad_id: int, eos_id: int) -> dict:
    # mrope_section must sum to head_dim / 2: hidden 64 / 4 heads = 16 -> 8 = 2 + 3 + 3.
    return {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        "pad_token_id": pad_id,
        "bos_token_id": None,  # Qwen has none; the VL config's default is the real vocabulary's 151643
        "eos_token_id": eos_id,
        "tie_word_embeddings": False,
    }


def _vision_config() -> dict:
    return {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    }


def _audio_config() -> dict:
    return {
        "num_mel_bins": 128,
        "encoder_layers": 2,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "d_model": 32,
        "max_source_positions": 1500,
        "n_window": 100,
        "output_dim": 64,
    }


def _omni_thinker_config(tokenizer, overrides: dict[str, dict]):
    from transformers import Qwen2_5OmniThinkerConfig

    ids = tokenizer.convert_tokens_to_ids
    return Qwen2_5OmniThinkerConfig(
        text_config={
            **_text_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id),
            **overrides["text"],
        },
        vision_config={**_vision_config(), **overrides["vision"]},
        audio_config={**_audio_config(), **overrides["audio"]},
        audio_token_index=ids("<|AUDIO|>"),
        image_token_index=ids("<|IMAGE|>"),
        video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"),
        audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_bos|>"),
        vision_end_token_id=ids("<|vision_eos|>"),
        user_token_id=ids("user") if ids("user") is not None else 0,
    )


def _randomize(model, init_std: float, seed: int) -> None:
    """Re-draw every floating weight: the default init (std 0.02) makes all embeddings nearly equal."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if not param.dtype.is_floating_point:
                continue
            if name.endswith("norm.weight") or "layer_norm" in name or name.endswith("ln_q.weight"):
                param.fill_(1.0)
            elif name.endswith(".bias"):
                param.zero_()
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * init_std)


def build_tiny_checkpoint(
    path: str | Path,
    kind: CheckpointKind = "omni-thinker",
    *,
    seed: int = 0,
    init_std: float = 0.2,
    text_config: dict | None = None,
    vision_config: dict | None = None,
    audio_config: dict | None = None,
    dtype: str = "float32",
    low_memory: bool = False,
) -> Path:
    """Build and save a tiny random checkpoint of a real architecture, loadable by ``LCOEmbedder(path)``.

    Args:
        path: Folder to write (created if missing).
        kind: ``"omni-thinker"`` (model_type ``qwen2_5_omni_thinker``, like the LCO-Embedding-Omni
            checkpoints), ``"omni"`` (a full ``qwen2_5_omni`` checkpoint whose weights sit under
            ``thinker.``) or ``"qwen2_5_vl"`` (text, image and video only).
        seed: Seed of the random weights.
        init_std: Standard deviation of the random weights; 0.2 keeps embeddings of different inputs
            clearly apart so parity tests are discriminating (use 0.02 for deep models, whose activations
            overflow otherwise).
        text_config: Overrides of the language model's config (e.g. ``{"hidden_size": 256,
            "num_hidden_layers": 28, ...}`` for a model of realistic proportions); ``vocab_size`` may exceed the
            tokenizer's (the extra rows are never used).
        vision_config: Overrides of the vision encoder's config (its ``out_hidden_size`` must equal the
            language model's ``hidden_size``).
        audio_config: Overrides of the audio encoder's config (Omni kinds; ``output_dim`` = ``hidden_size``).
        dtype: dtype of the saved weights (the model is built in it).
        low_memory: Never hold the whole model: it is built on the meta device and its weights are drawn tensor
            by tensor into 2 GB safetensors shards (for the real 3B / 7B architectures on a small machine; other
            random values than the default path for the same seed).

    Returns:
        The folder, holding ``config.json``, safetensors weights, tokenizer, processor and chat template.

    Example:
        >>> sorted(p.name for p in build_tiny_checkpoint("tiny-vl", kind="qwen2_5_vl").glob("*.json"))[:2]
        ['config.json', 'generation_config.json']
    """
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    previous_default = torch.get_default_dtype()
    try:  # built in the target dtype: a 7B in bfloat16 never exists in float32 here
        torch.set_default_dtype(getattr(torch, dtype))
        if low_memory:
            with torch.device("meta"):
                model, processor = _build_model(kind, text_config, vision_config, audio_config)
        else:
            model, processor = _build_model(kind, text_config, vision_config, audio_config)
            _randomize(model, init_std, seed)
    finally:
        torch.set_default_dtype(previous_default)
    if low_memory:
        _save_streaming(model, path, init_std, seed, getattr(torch, dtype))
    else:
        model.to(getattr(torch, dtype))
        with _transformers_quiet():
            model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


def _save_streaming(model, path: Path, init_std: float, seed: int, dtype, shard_bytes: int = 2 * 10**9) -> None:
    """Write random weights for a model built on the meta device, a shard at a time, with the config and an index
    (the rule of :func:`_randomize`: norms 1, biases 0, other floating weights normal with ``init_std``)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    weight_map: dict[str, str] = {}
    shard: dict[str, Any] = {}
    size, total, number = 0, 0, 0

    def flush() -> None:
        nonlocal shard, size, number
        if shard:
            number += 1
            name = f"model-{number:05d}.safetensors"
            save_file(shard, str(path / name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
            shard, size = {}, 0

    for name, meta in sorted(model.state_dict().items()):
        if not meta.dtype.is_floating_point:
            tensor = torch.zeros(meta.shape, dtype=meta.dtype)
        elif name.endswith("norm.weight") or "layer_norm" in name or name.endswith("ln_q.weight"):
            tensor = torch.ones(meta.shape, dtype=dtype)
        elif name.endswith(".bias"):
            tensor = torch.zeros(meta.shape, dtype=dtype)
        else:
            tensor = (torch.randn(meta.shape, generator=generator, dtype=torch.float32) * init_std).to(dtype)
        shard[name] = tensor
        size += tensor.numel() * tensor.element_size()
        total += tensor.numel() * tensor.element_size()
        if size >= shard_bytes:
            flush()
    flush()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=1) + "\n")
    model.config.dtype = dtype
    model.config.save_pretrained(path)


def _build_model(
    kind: CheckpointKind, text_config: dict | None, vision_config: dict | None, audio_config: dict | None
) -> tuple[Any, Any]:
    """The random model of ``kind`` (in the default dtype) and its processor."""
    from transformers import WhisperFeatureExtractor

    overrides = {"text": text_config or {}, "vision": vision_config or {}, "audio": audio_config or {}}
    if kind in ("omni-thinker", "omni"):
        from transformers import (
            Qwen2_5OmniConfig,
            Qwen2_5OmniForConditionalGeneration,
            Qwen2_5OmniProcessor,
            Qwen2_5OmniThinkerForConditionalGeneration,
        )

        tokenizer = _build_tokenizer(_OMNI_SPECIAL)
        thinker_config = _omni_thinker_config(tokenizer, overrides)
        if kind == "omni-thinker":
            model = Qwen2_5OmniThinkerForConditionalGeneration(thinker_config)
        else:
            # The talker (speech output) is never built: its default config's token ids lie outside the tiny
            # vocabulary, which transformers would warn about.
            with _transformers_quiet():
                config = Qwen2_5OmniConfig(thinker_config=thinker_config.to_dict(), enable_audio_output=False)
            model = Qwen2_5OmniForConditionalGeneration(config)
        image, video = _vision_processors()
        processor = Qwen2_5OmniProcessor(
            image_processor=image,
            video_processor=video,
            feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=300, n_samples=4_800_000),
            tokenizer=tokenizer,
            chat_template=OMNI_CHAT_TEMPLATE,
        )
    elif kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

        tokenizer = _build_tokenizer(_VL_SPECIAL)
        ids = tokenizer.convert_tokens_to_ids
        config = Qwen2_5_VLConfig(
            text_config={
                **_text_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id),
                **overrides["text"],
            },
            vision_config={**_vision_config(), **overrides["vision"]},
            image_token_id=ids("<|image_pad|>"),
            video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"),
            vision_end_token_id=ids("<|vision_end|>"),
        )
        model = Qwen2_5_VLForConditionalGeneration(config)
        image, video = _vision_processors()
        processor = Qwen2_5_VLProcessor(
            image_processor=image, video_processor=video, tokenizer=tokenizer, chat_template=VL_CHAT_TEMPLATE
        )
    else:
        raise ValueError(f"kind must be one of 'omni-thinker', 'omni', 'qwen2_5_vl', got {kind!r}.")
    return model, processor


@contextmanager
def _transformers_quiet() -> Iterator[None]:
    """transformers' warnings and progress bars off for the block (a few-KB checkpoint needs no "Writing model
    shards" bar, nor warnings about token ids of parts it never builds)."""
    from transformers.utils import logging as transformers_logging

    level, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(level)
        if bars:
            transformers_logging.enable_progress_bar()


def synthetic_image(height: int, width: int, rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """A ``(height, width, channels)`` uint8 gradient with noise."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), (x + y) % 256], -1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    if channels == 4:
        arr = np.concatenate([arr, np.full((height, width, 1), 200, np.uint8)], -1)
    return arr


NOISE_JPEG_SIZES = ((480, 640), (200, 300), (1200, 1600), (57, 91), (1000, 333), (2000, 2000))
"""(height, width) of :func:`write_noise_jpegs`: below, near and above the default pixel budget, and thin."""


def write_noise_jpegs(folder: str | Path, *, seed: int = 0) -> list[Path]:
    """Write uniform-noise JPEGs (quality 90) of the :data:`NOISE_JPEG_SIZES`: the hardest case for a resize that
    differs from the reference's (every pixel is an edge)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for height, width in NOISE_JPEG_SIZES:
        path = folder / f"noise_{height}x{width}.jpg"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def write_video(path: str | Path, frames: Iterable[np.ndarray], *, fps: int) -> Path:
    """Write ``(height, width, 3)`` uint8 frames (even sizes) as an MPEG-4 video."""
    import av

    with av.open(str(path), "w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("mpeg4", rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError("write_video needs at least one frame.")
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_mp4(path: str | Path, *, seconds: float, fps: int, width: int, height: int, rng: np.random.Generator) -> Path:
    """Write an MPEG-4 video of a gradient scrolling sideways."""
    first = synthetic_image(height, width, rng)
    return write_video(path, (np.roll(first, shift=4 * i, axis=1) for i in range(round(fps * seconds))), fps=fps)


def write_audio_only_mp4(path: str | Path, *, seconds: float = 1.3, rate: int = 16000) -> Path:
    """Write an MPEG-4 file with an AAC sound stream (silence) and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        _encode_audio(container, stream, np.zeros((1, max(1, round(seconds * rate / 1024)) * 1024), np.float32), rate)
    return Path(path)


def _encode_audio(container: Any, stream: Any, sound: np.ndarray, rate: int) -> None:
    """Encode ``(channels, samples)`` float samples into ``stream`` of ``container``, 1024 at a time."""
    import av

    layout = "mono" if sound.shape[0] == 1 else "stereo"
    for i, start in enumerate(range(0, sound.shape[1], 1024)):
        chunk = np.zeros((sound.shape[0], 1024), np.float32)
        piece = sound[:, start : start + 1024]
        chunk[:, : piece.shape[1]] = piece
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, i * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_clip_with_sound(
    path: str | Path,
    *,
    seconds: float,
    fps: int = 4,
    width: int = 64,
    height: int = 48,
    rate: int = 16000,
    tone: float = 440.0,
    channels: int = 1,
    video_codec: str = "mpeg4",
) -> Path:
    """Write a video with a sound track: a bright square moving across a dark frame, and a sine ``tone`` (Hz,
    rising over the clip, plus a little noise) encoded as AAC at ``rate`` with ``channels`` channels. With
    ``video_codec="mjpeg"`` (and a ``.mkv`` path) every frame is a key frame: a cut made by copying packets decodes
    to the same frames."""
    import av

    rng = np.random.default_rng(int(tone))
    frames = round(seconds * fps)
    samples = round(seconds * rate)
    t = np.arange(samples) / rate
    sound = 0.4 * np.sin(2 * np.pi * (tone + 40 * t / max(seconds, 1e-9)) * t) + 0.02 * rng.standard_normal(samples)
    sound = np.repeat(sound[None, :], channels, axis=0).astype(np.float32)
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=fps)
        video.height, video.width = height, width
        video.pix_fmt = {"png": "rgb24", "mjpeg": "yuvj420p"}.get(video_codec, "yuv420p")
        audio = container.add_stream("aac", rate=rate, layout=layout)
        side = max(4, height // 4)
        for i in range(frames):
            image = np.full((height, width, 3), 30, np.uint8)
            x = int((width - side) * i / max(frames - 1, 1))
            image[height // 3 : height // 3 + side, x : x + side] = (230, 200, 40)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        _encode_audio(container, audio, sound, rate)
    return Path(path)


def write_clip_with_silent_track(path: str | Path, *, seconds: float = 2.0, fps: int = 4) -> Path:
    """Write a video whose sound track exists (an AAC stream in the container) but holds no packets, as some
    screen recorders and muted exports leave it. Give a ``.mkv`` path: MP4 muxers drop a stream without packets."""
    import av

    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.height, video.width, video.pix_fmt = 48, 64, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono")  # never given a sample
        first = synthetic_image(48, 64, rng)
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.roll(first, 4 * i, axis=1), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in [*video.encode(), *audio.encode(None)]:
            container.mux(packet)
    return Path(path)


def write_long_wav(path: str | Path, *, minutes: int, rate: int = 16000, silent: bool = False) -> Path:
    """Write ``minutes`` of a 220 Hz tone (or of silence) as 16-bit mono WAV, a minute at a time (never the whole in
    memory)."""
    amplitude = 0.0 if silent else 0.2
    minute = (amplitude * np.sin(2 * np.pi * 220 * np.arange(60 * rate) / rate) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        for _ in range(minutes):
            f.writeframes(minute)
    return Path(path)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write float samples in [-1, 1] (``(n,)`` or ``(n, channels)``) as 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


def make_test_media(folder: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Write small synthetic media files (png, jpg, wav, flac, mp4) and return their paths by name.

    Keys: ``png``, ``png_rgba``, ``jpg``, ``gray_png``, ``wav`` (16 kHz mono, 1 s), ``wav_22k_stereo``
    (22.05 kHz stereo), ``flac``, ``mp4`` (2 s at 8 fps, 64x48), ``mp4_short`` (1 s), ``corrupt_png``,
    ``empty_wav`` (no samples).
    """
    import soundfile as sf
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, Path] = {}

    def image_array(h: int, w: int, channels: int = 3) -> np.ndarray:
        return synthetic_image(h, w, rng, channels)

    out["png"] = folder / "gradient.png"
    Image.fromarray(image_array(60, 80)).save(out["png"])
    out["png_rgba"] = folder / "rgba.png"
    Image.fromarray(image_array(50, 50, 4), mode="RGBA").save(out["png_rgba"])
    out["jpg"] = folder / "photo.jpg"
    Image.fromarray(image_array(90, 70)).save(out["jpg"], quality=90)
    out["gray_png"] = folder / "gray.png"
    Image.fromarray(image_array(40, 40)[..., 0]).save(out["gray_png"])
    out["corrupt_png"] = folder / "corrupt.png"
    out["corrupt_png"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)

    t = np.arange(16000) / 16000
    out["wav"] = folder / "tone.wav"
    write_wav(out["wav"], 0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size), 16000)
    t22 = np.arange(22050 // 2) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 330 * t22), 0.3 * np.sin(2 * np.pi * 550 * t22)], -1) * 0.5
    out["wav_22k_stereo"] = folder / "stereo_22k.wav"
    write_wav(out["wav_22k_stereo"], stereo, 22050)
    out["flac"] = folder / "chirp.flac"
    chirp = 0.4 * np.sin(2 * np.pi * (200 + 600 * t[:12000]) * t[:12000])
    sf.write(out["flac"], chirp.astype(np.float32), 16000, format="FLAC")
    out["empty_wav"] = folder / "empty.wav"
    write_wav(out["empty_wav"], np.zeros(0), 16000)

    for name, seconds in (("mp4", 2), ("mp4_short", 1)):
        out[name] = folder / f"{name}.mp4"
        write_mp4(out[name], seconds=seconds, fps=8, width=64, height=48, rng=rng)
    return out


def modality_offset_corpus(
    rng: np.random.Generator,
    *,
    topics: int = 40,
    dimension: int = 256,
    offset: float = 1.5,
    noise: float = 0.1,
    modalities: tuple[str, ...] = ("text", "image", "audio", "video"),
) -> tuple[np.ndarray, list[str], list[int], np.ndarray]:
    """A corpus with a known modality gap, for testing modality-aware ranking: one row per (modality, topic), each
    its topic's unit direction plus its modality's offset (``offset`` times a unit vector every row of the modality
    shares) plus noise, normalised; and one query per topic, its direction plus the first modality's offset. Raw
    cosine then ranks every row of the first modality (about ``offset**2 / (1 + offset**2)``) above the other
    modalities' rows of the query's own topic (about ``1 / (1 + offset**2)``).

    Returns:
        ``(vectors [rows, dimension], modality of each row, topic of each row, queries [topics, dimension])``.
    """

    def unit(*shape: int) -> np.ndarray:
        x = rng.standard_normal((*shape, dimension))
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    directions = unit(topics)
    offsets = dict(zip(modalities, offset * unit(len(modalities)), strict=True))
    rows, row_modalities, topic_of = [], [], []
    for modality in modalities:
        for topic in range(topics):
            rows.append(directions[topic] + offsets[modality] + noise * unit()[0])
            row_modalities.append(modality)
            topic_of.append(topic)
    vectors = np.array(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = np.array([directions[t] + offsets[modalities[0]] for t in range(topics)], dtype=np.float32)
    return vectors, row_modalities, topic_of, queries


def peak_memory_growth(function: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``function`` and return what it returned (or the exception it raised) and how far this process's peak
    resident memory rose above what it held before, in bytes. The high-water mark is reset first (Linux'
    ``/proc/self/clear_refs``), so earlier peaks do not hide this one.

    Example:
        >>> import mmap
        >>> def touch_50_mb():  # fresh pages (the heap may hold freed ones, which cost no growth)
        ...     block = mmap.mmap(-1, 50 * 2**20)
        ...     for offset in range(0, len(block), mmap.PAGESIZE):
        ...         block[offset] = 1
        ...     return block
        >>> outcome, grown = peak_memory_growth(touch_50_mb)
        >>> grown > 40 * 2**20
        True
    """

    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"/proc/self/status has no {field}")

    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    try:
        outcome: Any = function()
    except Exception as e:  # the caller asserts on it
        outcome = e
    return outcome, status("VmHWM") - before


@contextmanager
def simulate_oom(model: LCOEmbedder, max_padded_tokens: int) -> Iterator[list[tuple[int, ...]]]:
    """Make every forward pass of ``model`` whose padded size exceeds ``max_padded_tokens`` fail with
    ``torch.OutOfMemoryError``, as a device with that little memory would.

    Yields the list of batches (tuples of input positions) that were refused, for assertions.

    Example:
        >>> texts = ["a few words", "a few more words than that"] * 4
        >>> with simulate_oom(model, 200) as refused:
        ...     out = model.encode(texts)
        >>> len(refused) > 0, out.shape  # the big batches were refused, split and retried
        (True, (8, 64))
    """
    import torch

    refused: list[tuple[int, ...]] = []

    def fault(batch) -> None:
        cost = len(batch) * max(features.length for features in batch)
        if cost > max_padded_tokens:
            refused.append(tuple(features.index for features in batch))
            raise torch.OutOfMemoryError(
                f"simulated out of memory: {cost} padded tokens > {max_padded_tokens} (lco_embedding.testing)"
            )

    previous = model.parts.fault
    model.parts.fault = fault
    try:
        yield refused
    finally:
        model.parts.fault = previous
