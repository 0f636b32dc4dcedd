"""Tiny random checkpoints of the real architectures (see :mod:`lco_embedding.testing`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CheckpointKind",
    "OMNI_CHAT_TEMPLATE",
    "VL_CHAT_TEMPLATE",
    "build_tiny_checkpoint",
    "build_tiny_cross_encoder",
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


def _build_tokenizer(special: dict[str, str], words: tuple[str, ...] = ()):
    """A byte-level BPE trained on a few sentences, wrapped as Qwen's fast tokenizer; ``words`` added as whole-word
    tokens."""
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
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=special,
        model_max_length=32768,
    )
    if words:
        from tokenizers import AddedToken

        tokenizer.add_tokens([AddedToken(word, single_word=True, normalized=False) for word in words])
    return tokenizer


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
    words: tuple[str, ...] = (),
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
        words: Whole words the tokenizer holds as single tokens (e.g. ``("yes", "no")``, the answers a
            generative reranker reads); none by default, so every other text tokenizes as without them.

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
                model, processor = _build_model(kind, text_config, vision_config, audio_config, words)
        else:
            model, processor = _build_model(kind, text_config, vision_config, audio_config, words)
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
    kind: CheckpointKind,
    text_config: dict | None,
    vision_config: dict | None,
    audio_config: dict | None,
    words: tuple[str, ...] = (),
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

        tokenizer = _build_tokenizer(_OMNI_SPECIAL, words)
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

        tokenizer = _build_tokenizer(_VL_SPECIAL, words)
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


def build_tiny_cross_encoder(path: str | Path, *, seed: int = 0) -> Path:
    """Build and save a tiny random sentence-transformers ``CrossEncoder`` (a BERT with a one-label head, a word-piece
    vocabulary of a few words), loadable by ``CrossEncoder(path)`` and ``LCOReranker(path)``.

    Example:
        >>> from sentence_transformers import CrossEncoder
        >>> CrossEncoder(str(build_tiny_cross_encoder("tiny-ce"))).predict([("a cat", "a mat")]).shape
        (1,)
    """
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    words = sorted({word for line in _CORPUS for word in line.lower().replace(".", " ").replace(",", " ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *"abcdefghijklmnopqrstuvwxyz0123456789"]
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    with _transformers_quiet():
        model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    CrossEncoder(str(path)).save(str(path))  # sentence-transformers' own files beside the weights
    return path
