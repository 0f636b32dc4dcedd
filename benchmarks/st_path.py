"""The sentence-transformers 6 path of the throughput benchmark: the same checkpoint as
``SentenceTransformer(modules=[Transformer(path), Pooling(dim, "lasttoken"), Normalize()])``, fed the same content
as :class:`lco_embedding.LCOEmbedder`.

How sentence-transformers (ST) 6.2 runs a ``qwen2_5_omni_thinker`` checkpoint (checked against the installed
source, transformers 5.23, on a tiny random checkpoint):

* Modules: ``sentence_transformers.sentence_transformer.modules`` re-exports ``Transformer`` / ``Normalize`` (now in
  ``sentence_transformers.base.modules``) next to ``Pooling``. ``Pooling(dim, "lasttoken")`` is the new signature
  (the ``pooling_mode_lasttoken=True`` keyword still works, deprecated).
* Model: ``transformer_task="feature-extraction"`` loads ``AutoModel``, i.e. ``Qwen2_5OmniThinkerModel``: the base
  model without the vocabulary head (``lm_head.weight`` is reported UNEXPECTED and dropped), called through
  ``forward`` and read from ``last_hidden_state``. No vocabulary logits are computed.
* Modalities: inferred from the processor (text, image, audio, video) plus ``"message"`` because it has a chat
  template. Whenever ``"message"`` is supported, ``Transformer.preprocess`` turns *every* input (plain strings too)
  into a user message and tokenizes it with ``processor.apply_chat_template`` (``base/modules/transformer.py``, "Always
  convert to the message format if it's supported"). Multimodal dicts become one message whose content follows the
  dict's key order, so ``{"image": path, "text": suffix}`` renders exactly like the SDK's image-then-text content.
  ``add_generation_prompt`` is off by default; it is turned on through
  ``processing_kwargs={"chat_template": {"add_generation_prompt": True}}``. The template's default system prompt is
  rendered, as in the SDK.
* Padding: left. ST only sets ``padding_side`` itself for the causal tasks; here ``Qwen2_5OmniProcessor``'s default
  ``text_kwargs={"padding_side": "left"}`` wins (its tokenizer attribute still reads "right").
  ``Pooling("lasttoken")`` finds the last real token for either side.
* Batching: ``encode`` sorts by a length *estimate* (characters of the text, plus ``len(path)`` for a media path
  and the element count of an array/tensor: meaningless for media), ``batch_size=32`` by default, no token budget.
* Audio: ``Qwen2_5OmniProcessor._process_audio`` forces ``padding="max_length"``, so every clip's Whisper features
  are computed over 300 s (30,000 frames), whatever ST asks for. The audio encoder only reads the real frames, so the
  embedding is unaffected but feature extraction costs about as much as 300 s of audio per item.
  ``load_st(audio_max_seconds=...)`` lowers that cap (longer clips are then truncated).

Per workload, with the inputs :func:`st_inputs` builds (token ids checked equal to the SDK's for every case below):

1. text: runs. Plain strings + the prompt-table suffix, truncated to the SDK's 300 user tokens; ST renders the
   chat template itself, giving the same string and token ids as the SDK (max |diff| 0 on the tiny checkpoint).
   A *pre-rendered* chat string does NOT work with the default module: it is wrapped in a second user message
   (double system prompt, no generation prompt). It works only if ``"message"`` is left out of ``modality_config``
   (see :func:`load_st_prerendered`): then ``processor(text=...)`` tokenizes it as is, adds no special token
   (Qwen2's tokenizer has no BOS/EOS to add) and matches the SDK exactly. That module cannot take media in mixed
   batches (ST raises "This batch mixes multiple modalities ... cannot encode in a single batch"), hence the
   message route is the default.
2. images: runs. ``{"image": path, "text": suffix}``; the processor loads the file and resizes it inside
   ``encode`` with the SDK's pixel bounds (``processing_kwargs["image"]``: 4..1280 x 28 x 28), so the token
   count is the same; pixel values differ slightly (the SDK resizes with qwen-omni-utils before the processor),
   about 2e-3 max |diff| of the normalised embeddings on the tiny checkpoint.
3. audio: runs. ``{"audio": path, "text": suffix}``; loaded at 16 kHz by transformers inside ``encode``
   (0 max |diff| for 16 kHz mono files). See the 300 s padding above.
4. video: runs only from decoded frames. A video path fails in transformers 5.23 whatever ST does:
   ``BaseVideoProcessor.fetch_videos`` (``transformers/video_processing_utils.py``) only decodes with torchcodec
   (not installed) or ``torchvision.io.read_video`` (removed in torchvision 0.26): "ImportError: `torchcodec` is
   not installed or can't be loaded, so it cannot decode the video by default". ST's own ``VideoDecoder`` input
   also needs torchcodec. :func:`st_inputs` therefore decodes, samples (2 fps) and resizes the frames with the SDK's
   ``preprocess_video`` and hands ST a ``(T, C, H, W)`` tensor: identical tokens and embeddings (0 max |diff|),
   but the decoding happens *outside* ``st.encode`` (untimed), which favours ST in a speed comparison. Pass
   ``decode_video=False`` to get the NotImplementedError instead.
5. mixed (text+image, text+audio, image+audio, text+video): runs, mixed kinds in one batch (ST converts the batch to
   messages). Same caveats as the single modalities.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from lco_embedding.inputs.prompts import suffix_for
from lco_embedding.model.loading import resolve_attn, resolve_device, resolve_dtype
from lco_embedding.preprocessing import VideoOptions, preprocess_video

__all__ = ["load_st", "load_st_prerendered", "st_inputs", "st_item", "render_text"]

MEDIA_ORDER = ("video", "audio", "image")
"""Content order of the SDK for a dict item: media first (video, audio, image), then the text."""

IMAGE_PIXELS = {"min_pixels": 4 * 28 * 28, "max_pixels": 1280 * 28 * 28}
"""The SDK's default image pixel bounds (``LCOEmbedder(min_pixels=..., max_pixels=...)``)."""

SAMPLING_RATE = 16000
_AUDIO_TAIL = 480  # zeros after the longest clip so its last STFT frame is exact (featurize.AUDIO_TAIL)
_FORWARD = {"method": "forward", "method_output_name": "last_hidden_state"}


def _model_kwargs(device: torch.device, dtype: Any, attn_implementation: str | None) -> dict[str, Any]:
    return {"dtype": resolve_dtype(dtype, device), "attn_implementation": resolve_attn(attn_implementation, device)}


def load_st(
    path: str,
    dim: int,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    audio_max_seconds: float | None = None,
) -> SentenceTransformer:
    """``Transformer(path) + Pooling(dim, "lasttoken") + Normalize()``, set up to render what the SDK renders.

    Args:
        path: Checkpoint folder or hub id (a ``qwen2_5_omni_thinker`` checkpoint).
        dim: Hidden size (``LCOEmbedder.get_embedding_dimension()``).
        device, dtype, attn_implementation: As for :class:`LCOEmbedder` (same defaults: bfloat16 on CUDA, float32
            elsewhere; flash_attention_2 on CUDA when importable, else sdpa).
        audio_max_seconds: Length every clip's Whisper features are padded (and truncated) to. ``None`` keeps the
            processor's 300 s, which is what ST users get.

    Returns:
        The model; use it with :func:`st_inputs` (``model.encode(st_inputs(items, model))``).
    """
    device = resolve_device(device)
    processing_kwargs: dict[str, dict[str, Any]] = {
        "chat_template": {"add_generation_prompt": True},
        "image": dict(IMAGE_PIXELS),
    }
    if audio_max_seconds is not None:
        processing_kwargs["audio"] = {"max_length": int(audio_max_seconds * SAMPLING_RATE) + _AUDIO_TAIL}
    transformer = Transformer(
        path,
        model_kwargs=_model_kwargs(device, dtype, attn_implementation),
        processing_kwargs=processing_kwargs,
    )
    return SentenceTransformer(modules=[transformer, Pooling(dim, "lasttoken"), Normalize()], device=str(device))


def load_st_prerendered(
    path: str,
    dim: int,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
) -> SentenceTransformer:
    """A text-only module that tokenizes strings as given (no chat template): feed it :func:`render_text` output.

    ``"message"`` is left out of ``modality_config``, so ST calls ``processor(text=...)`` instead of wrapping the
    string in a message. Only for text: this module has no message route, so media (and batches mixing them) are
    refused.
    """
    device = resolve_device(device)
    transformer = Transformer(
        path,
        model_kwargs=_model_kwargs(device, dtype, attn_implementation),
        modality_config={"text": dict(_FORWARD)},
        module_output_name="token_embeddings",
    )
    return SentenceTransformer(modules=[transformer, Pooling(dim, "lasttoken"), Normalize()], device=str(device))


def _processor_of(processor: Any) -> Any:
    """Accept the processor itself or a SentenceTransformer built by :func:`load_st`."""
    if isinstance(processor, SentenceTransformer):
        return processor[0].processor
    return processor


def _truncate(text: str, tokenizer: Any, max_length: int | None) -> str:
    """Cut user text to ``max_length`` tokens exactly as the SDK does (``Featurizer.truncate``)."""
    if max_length is None or tokenizer is None:
        return text
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_length else tokenizer.decode(ids[:max_length])


def _media(value: Any) -> Any:
    return str(value) if isinstance(value, PurePath) else value


def st_item(
    item: Any,
    processor: Any,
    *,
    max_length: int | None = 300,
    decode_video: bool = True,
    video_options: VideoOptions | None = None,
) -> str | dict[str, Any]:
    """Convert one SDK item to what ``SentenceTransformer.encode`` accepts, with the SDK's content.

    ``"text"`` -> ``"text" + suffix``; ``{"image": p}`` -> ``{"image": p, "text": suffix}``; likewise audio;
    ``{"video": p}`` -> ``{"video": frames, "text": suffix}``; ``{"text": t, "image": p, ...}`` -> media first
    (video, audio, image), then ``t + mixed suffix``.

    Raises:
        NotImplementedError: For a video when ``decode_video`` is False (ST cannot decode video files here), and for
            item forms the benchmark does not use (content-part lists, conversations, several items per modality).
    """
    tokenizer = getattr(_processor_of(processor), "tokenizer", None)
    if isinstance(item, str):
        return _truncate(item, tokenizer, max_length) + suffix_for(["text"])
    if not isinstance(item, dict) or not item or set(item) - {"text", *MEDIA_ORDER}:
        raise NotImplementedError(
            f"st_item converts strings and dicts with 'text'/'image'/'audio'/'video' keys, got {type(item).__name__}."
        )
    if any(isinstance(value, list | tuple) for key, value in item.items() if key != "video"):
        raise NotImplementedError("st_item converts one value per modality (the benchmark's forms).")
    out: dict[str, Any] = {}
    for key in MEDIA_ORDER:
        if key not in item:
            continue
        value = _media(item[key])
        if key == "video" and isinstance(value, str):
            if not decode_video:
                raise NotImplementedError(
                    "sentence-transformers cannot embed a video file here: transformers 5.23 decodes video paths "
                    "only with torchcodec (not installed) or torchvision.io.read_video (removed in torchvision "
                    "0.26) [BaseVideoProcessor.fetch_videos]; pass decoded frames (decode_video=True)."
                )
            value = preprocess_video(value, video_options or VideoOptions())
        out[key] = value
    text = _truncate(item["text"], tokenizer, max_length) if "text" in item else ""
    out["text"] = text + suffix_for(item.keys())
    return out


def st_inputs(
    workload_items: Iterable[Any],
    processor: Any = None,
    *,
    max_length: int | None = 300,
    decode_video: bool = True,
    video_options: VideoOptions | None = None,
) -> list[str | dict[str, Any]]:
    """Convert a workload's items (see :func:`st_item`) for ``model.encode``.

    Args:
        workload_items: Items in the SDK's forms.
        processor: The checkpoint's processor (or the model from :func:`load_st`), for truncating text as the SDK
            does; ``None`` skips truncation.
        max_length: The SDK's user-text cap in tokens (``LCOEmbedder(max_length=300)``).
        decode_video: Decode videos to frames here (outside ``encode``); False raises NotImplementedError.
        video_options: Frame sampling/sizing; defaults to the SDK's (2 fps, 128..768 x 28 x 28 pixels).
    """
    return [
        st_item(item, processor, max_length=max_length, decode_video=decode_video, video_options=video_options)
        for item in workload_items
    ]


def render_text(text: str, processor: Any, *, max_length: int | None = 300) -> str:
    """The SDK's full chat string for a text item, for :func:`load_st_prerendered`."""
    processor = _processor_of(processor)
    content = [{"type": "text", "text": _truncate(text, processor.tokenizer, max_length) + suffix_for(["text"])}]
    return processor.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
