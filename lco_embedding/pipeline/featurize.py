"""Turn one input item into model-ready tensors, away from the model: the work that background workers do.

A :class:`Featurizer` parses an item (:mod:`.inputs`), loads and resizes its media (:mod:`.preprocessing`),
renders the chat template with the prompt table's suffix, and runs the checkpoint's processor on that one item
(tokenizing, patchifying images and video frames, computing Whisper features). The result, a :class:`Features`,
knows its exact sequence length, so batches can be planned by tokens before the forward pass
(:mod:`.batching`) and padded into one batch later (:mod:`.collate`).

A Featurizer holds no model and is picklable, so it runs in threads or in worker processes alike.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

import torch

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITY_TABLE, SOUND, TEXT, resolve, spec_of
from lco_embedding.core.notes import collecting
from lco_embedding.core.types import Modality
from lco_embedding.inputs.budgets import ItemLimits
from lco_embedding.inputs.parse import (
    ITEM_BUDGETS,
    AudioInVideo,
    ParsedItem,
    build_messages,
    parse_item,
)
from lco_embedding.inputs.prompts import MixedSuffixRule
from lco_embedding.inputs.sniff import looks_like_file
from lco_embedding.inputs.special_tokens import SpecialTokenGuard, SpecialTokenPolicy
from lco_embedding.pipeline.features import Features
from lco_embedding.pipeline.settings import EmbedderSettings, Geometry
from lco_embedding.pipeline.text_batch import TextBatcher
from lco_embedding.preprocessing.fast_image import FastImageLoader
from lco_embedding.preprocessing.soundtrack import preprocess_video_with_sound
from lco_embedding.segments.context import CutContext

__all__ = ["AUDIO_TAIL", "Features", "Featurizer", "featurize_in_worker", "install_worker_featurizer"]

logger = logging.getLogger(__name__)

AUDIO_TAIL = 480
"""Zeros appended after an item's longest audio. The Whisper STFT frame at the end of the real audio reaches
200 samples further, so every real frame equals the reference's (300 s of zero padding)."""


class Featurizer:
    """Everything needed to turn an input item into :class:`Features`, except the model.

    Args:
        processor: The checkpoint's processor.
        settings: What decides the embeddings (:class:`~lco_embedding.pipeline.settings.EmbedderSettings`): media
            budgets, text truncation, the suffix rule, special tokens, preprocessing, sound tracks, and the
            ceilings of items' own budgets.
        modalities: Modalities the checkpoint can embed; other media raise :class:`LCOInputError`.
        model_type: The checkpoint's ``model_type``, for error messages.
        patch_size: The vision encoder's patch size (image and frame sizes are multiples of twice it).
        sampling_rate: The feature extractor's audio rate.
        processor_device: Where images are resized in fast mode (a CUDA device), or None for the CPU.
    """

    def __init__(
        self,
        processor: Any,
        settings: EmbedderSettings,
        *,
        modalities: tuple[Modality, ...] | list[Modality],
        model_type: str,
        patch_size: int = 14,
        sampling_rate: int = 16000,
        processor_device: Any = None,
    ) -> None:
        self.processor = _with_lean_audio_features(processor)
        self.settings = settings
        self.modalities = tuple(modalities)
        self.model_type = model_type
        self.processor_device = processor_device
        geometry = Geometry(patch_size=patch_size, sampling_rate=sampling_rate)
        self.image_options = settings.image_options(geometry)
        self.audio_options = settings.audio_options(geometry)
        self.video_options = settings.video_options(geometry)
        self.item_limits: ItemLimits = settings.item_limits()
        self.fast_loaders = _fast_loaders(processor, processor_device) if settings.preprocessing == "fast" else {}
        self.guard = SpecialTokenGuard(processor.tokenizer)
        self.text_batcher = TextBatcher(self)

    @property
    def max_length(self) -> int | None:
        """User text is cut to this many tokens (None: not cut)."""
        return self.settings.max_length

    @property
    def mixed_suffix(self) -> MixedSuffixRule:
        """The suffix rule of mixed items."""
        return self.settings.mixed_suffix

    @property
    def special_tokens(self) -> SpecialTokenPolicy:
        """How special-token strings in user text are tokenized."""
        return self.settings.special_tokens

    @property
    def preprocessing(self) -> str:
        """``"reference"`` or ``"fast"``."""
        return self.settings.preprocessing

    @property
    def use_audio_in_video(self) -> AudioInVideo:
        """Whether videos are embedded with their sound tracks (an item's own key wins)."""
        return self.settings.use_audio_in_video

    @functools.cached_property
    def cut_context(self) -> CutContext:
        """What cutting items into segments needs of this featurizer (:class:`~lco_embedding.segments.CutContext`)."""
        limits = {row.window_limit for row in MODALITY_TABLE.values() if row.window_limit}
        return CutContext(
            tokenizer=self.processor.tokenizer,
            sound=getattr(self, SOUND.options or ""),
            use_audio_in_video=self.use_audio_in_video,
            bounds={name: getattr(self.settings, name) for name in sorted(limits)},
            options_for=self.options_for,
        )

    def __call__(self, index: int, item: Any, modality: Modality | None, prompt: str | None) -> Features:
        """Featurize the raw input ``item`` found at position ``index``.

        Raises:
            LCOInputError: The item cannot be embedded (bound to ``index``).
        """
        try:
            with collecting() as cut:
                features = self.featurize(index, parse_item(item, modality), prompt)
            features.cut = cut
            return features
        except LCOInputError as e:
            raise e.at(index) from e

    def batchable(self, item: Any, modality: Modality | None = None) -> bool:
        """True when ``item`` is surely plain text (cheap: no file-system call), so :meth:`featurize_batch` can take
        it with others; anything else goes through :meth:`__call__` one by one."""
        if modality is not None and spec_of(modality).is_media:
            return False
        if isinstance(item, dict):
            item = item.get(TEXT.name) if len(item) == 1 else None
        if not isinstance(item, str):
            return False
        return modality is not None or not (  # a string forced to be text, or one that cannot name a file
            item.startswith(("data:", "http://", "https://", "file://")) or looks_like_file(item)
        )

    def featurize_batch(
        self, items: list[tuple[int, Any]], modality: Modality | None, prompt: str | None
    ) -> list[Features | LCOInputError]:
        """Featurize ``(index, item)`` pairs together: text items in one tokenizer call (:mod:`.text_batch`),
        the others one by one. Returns each item's features, or its :class:`LCOInputError`, in order."""
        results: dict[int, Features | LCOInputError] = {}
        texts: list[tuple[int, ParsedItem]] = []
        for index, item in items:
            try:
                parsed = parse_item(item, modality)
            except LCOInputError as e:
                results[index] = e.at(index)
                continue
            parse = self.special_tokens == "parse" and self._mentions_special_tokens(parsed, prompt)
            if TextBatcher.accepts(parsed) and not parse:
                texts.append((index, parsed))
            else:
                results[index] = self._featurize_or_error(index, parsed, prompt)
        if texts:
            batched = self.text_batcher.featurize(texts, prompt)
            if batched is None:  # this checkpoint's template cannot be batched
                batched = [self._featurize_or_error(index, parsed, prompt) for index, parsed in texts]
            results.update({index: features for (index, _), features in zip(texts, batched, strict=True)})
        return [results[index] for index, _ in items]

    def _featurize_or_error(self, index: int, item: ParsedItem, prompt: str | None) -> Features | LCOInputError:
        try:
            with collecting() as cut:
                features = self.featurize(index, item, prompt)
            features.cut = cut
            return features
        except LCOInputError as e:
            return e.at(index)

    def featurize(self, index: int, item: ParsedItem, prompt: str | None, *, guard: bool | None = None) -> Features:
        """Featurize an already parsed item.

        ``guard`` forces the special-token guard on or off (default: on when the policy is ``"text"`` and the
        item's text holds a special-token string); tests compare both paths.
        """
        messages, media, sound_of = self.load(item, prompt)
        if guard is None:
            guard = self.special_tokens == "text" and self._mentions_special_tokens(item, prompt)
        if guard:
            masked, texts = self.guard.mask(messages)
            rendered = self.processor.apply_chat_template(masked, tokenize=False, add_generation_prompt=True)
            text, segments = self.guard.segments(rendered, texts)
        else:
            text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        kwargs: dict[str, Any] = {}
        for modality, values in media.items():
            spec = MODALITY_TABLE[modality]
            assert spec.processor_keyword is not None
            kwargs[spec.processor_keyword] = values or None
            options = self.options_for(modality, item.budgets) if values else None
            settings = resolve(spec.processor_settings)(self, modality, values, options) if values else None
            if settings:
                kwargs[f"{spec.processor_keyword}_kwargs"] = settings
        if sound_of is not None:  # each audio slot: a standalone audio (None) or the sound of video i
            kwargs.update(load_audio_from_video=True, audio_from_video_indices=sound_of)
        try:
            inputs = self.processor(text=[text], return_tensors="pt", **kwargs)
        except (ValueError, IndexError) as e:
            if self.special_tokens == "parse" and self._mentions_special_tokens(item, prompt):
                raise LCOInputError(
                    f"the text holds special-token strings, parsed as special tokens (special_tokens='parse'), "
                    f"which the processor refuses ({e}); use special_tokens='text' to embed them as text."
                ) from e
            raise
        inputs = dict(inputs)
        if guard:
            inputs["input_ids"] = self.guard.splice(inputs["input_ids"], segments)
            inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        length = int(inputs["input_ids"].shape[1])
        return Features(index=index, inputs=inputs, length=length, audio_in_video=sound_of is not None)

    def _mentions_special_tokens(self, item: ParsedItem, prompt: str | None) -> bool:
        texts = [part.value for part in item.parts if not part.is_media]
        for message in item.conversation or []:
            content = message.get("content")
            texts += [content] if isinstance(content, str) else [p.get("text", "") for p in content or []]
        return any(self.guard.found_in(text) for text in [prompt or "", *texts] if isinstance(text, str))

    def render(self, item: ParsedItem, prompt: str | None) -> tuple[str, dict[str, list[Any]]]:
        """Load the item's media and render its chat text: ``(text, {"image": [...], "audio": [...], ...})``."""
        messages, media = self.prepare(item, prompt)
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), media

    def prepare(self, item: ParsedItem, prompt: str | None) -> tuple[list[Any], dict[str, list[Any]]]:
        """Load the item's media and build its chat messages: ``(messages, {"image": [...], ...})``."""
        messages, media, _ = self.load(item, prompt)
        return messages, media

    def load(self, item: ParsedItem, prompt: str | None) -> tuple[list[Any], dict[str, list[Any]], list[Any] | None]:
        """Load the item's media and build its chat messages: ``(messages, {"image": [...], ...}, sound_of)``.

        With the sound tracks of its videos (``use_audio_in_video``), ``media["audio"]`` holds every audio in the
        order the model reads them — standalone audio and the videos' sound tracks — and ``sound_of`` says, for
        each, None (a standalone audio) or the index of the video it is the sound of; else ``sound_of`` is None.
        """
        media: dict[str, list[Any]] = {modality: [] for modality in MEDIA_MODALITIES}
        wanted = item.with_sound(self.use_audio_in_video)
        with_sound = wanted is not False and any(spec_of(part.modality).sound == "track" for part in item.media)
        sounds: list[tuple[int | None, Any]] = []  # (None, a sound) or (i, the track of video i), in order
        for part in item.media:
            if part.modality not in self.modalities:
                raise LCOInputError(
                    f"this checkpoint ({self.model_type}) has no {part.modality} encoder; it embeds "
                    f"{', '.join(self.modalities)}. Use an LCO-Embedding-Omni checkpoint for {part.modality}."
                )
            spec, values = spec_of(part.modality), media[part.modality]
            if spec.sound == "track" and with_sound:
                frames, sound = preprocess_video_with_sound(
                    part.value,
                    self.options_for(part.modality, item.budgets),
                    getattr(self, SOUND.options or ""),
                    required=wanted is True,
                )
                values.append(frames)
                sounds.append((len(values) - 1, sound))
                continue
            values.append(self._load(part.modality, part.value, item.budgets))
            if spec.sound == "item":
                sounds.append((None, values[-1]))
        if item.kind == "conversation" and prompt:
            logger.warning("A prompt is not applied to conversation inputs: they are used as given.")
        messages = build_messages(item, prompt=prompt, mixed_suffix=self.mixed_suffix, truncate=self.truncate)
        if not with_sound or any(sound is None for _, sound in sounds):  # "auto", and a video without sound
            return messages, media, None
        media[SOUND.name] = [sound for _, sound in sounds]
        return messages, media, [track for track, _ in sounds]

    def _load(self, modality: str, value: Any, budgets: dict[str, Any] | None = None) -> Any:
        spec = spec_of(modality)
        assert spec.loader is not None
        loader = self.fast_loaders.get(modality) or resolve(spec.loader)
        return loader(value, self.options_for(modality, budgets))

    def options_for(self, modality: str, budgets: dict[str, Any] | None = None) -> Any:
        """The preprocessor options of ``modality``, with an item's own budgets (``ITEM_BUDGETS``) applied.

        Raises:
            LCOInputError: The budgets pass the ceilings (:attr:`item_limits`), or contradict each other or the
                model's settings (e.g. min above max).
        """
        spec = spec_of(modality)
        assert spec.options is not None
        options = getattr(self, spec.options)
        changes = {name: v for name, v in (budgets or {}).items() if modality in ITEM_BUDGETS[name][1]}
        if not changes:
            return options
        self.item_limits.check(modality, changes)
        try:
            return dataclasses.replace(options, **changes)
        except ValueError as e:
            raise LCOInputError(f"the item's {modality} settings {changes} do not work with the model's: {e}") from e

    def config_key(self) -> tuple[Any, ...]:
        """What decides the output, for telling whether a worker pool's copy is still current."""
        return (id(self.processor), self.settings, self.modalities, str(self.processor_device))

    def truncate(self, text: str) -> str:
        """Cut user text to ``max_length`` tokens (:meth:`TextBatcher.truncated`)."""
        return self.text_batcher.truncated([text])[0]


def _with_lean_audio_features(processor: Any) -> Any:
    """``processor``, or a shallow copy of it whose Whisper feature extractor computes long audio in chunks (the
    same features in a fraction of the memory: :mod:`lco_embedding.preprocessing.audio_features`)."""
    from lco_embedding.preprocessing.audio_features import lean_feature_extractor

    extractor = getattr(processor, "feature_extractor", None)
    lean = lean_feature_extractor(extractor) if extractor is not None else None
    if lean is extractor:
        return processor
    copied = copy.copy(processor)
    copied.feature_extractor = lean
    return copied


def _fast_loaders(processor: Any, device: Any) -> dict[str, Callable[[Any, Any], Any]]:
    """Loaders of ``preprocessing="fast"`` by modality (the table's ``fast_loader``), where the processor's part allows:
    images decoded and resized once in torch to the reference's final size
    (:mod:`lco_embedding.preprocessing.fast_image`)."""
    loaders = {}
    for name, spec in MODALITY_TABLE.items():
        if spec.fast_loader is None:
            continue
        loader, part = resolve(spec.fast_loader), getattr(processor, spec.processor_part or "", None)
        if loader.supports(part):
            loaders[name] = loader(part, device)
        else:
            logger.info("preprocessing='fast' reads %s as the reference does: no torch resize in this processor", name)
    return loaders


def audio_settings(featurizer: Featurizer, modality: str, audio: list[Any], options: Any) -> dict[str, Any]:
    """The feature extractor's settings of an item's audio (the table's ``processor_settings``)."""
    # Pad to this item's longest audio, not to the feature extractor's 300 s: the real frames are identical, and
    # the audio encoder only reads the frames its feature_attention_mask marks.
    return {"max_length": max(len(a) for a in audio) + AUDIO_TAIL}


def video_settings(featurizer: Featurizer, modality: str, videos: list[Any], options: Any) -> dict[str, Any]:
    """The video processor's settings of an item's videos."""
    # Frames arrive already sized to the per-frame budget (qwen-omni-utils' rule, as in the reference); False is
    # the processor's behaviour when the setting is absent, said explicitly to silence its warning.
    settings: dict[str, Any] = {"cap_pixels_per_frame": False}
    if featurizer.processor_device is not None and featurizer.preprocessing == "fast":
        settings["device"] = featurizer.processor_device
    return settings


def image_settings(featurizer: Featurizer, modality: str, images: list[Any], options: Any) -> dict[str, Any] | None:
    """The image processor's settings of an item's images: none for the reference loader's; for the fast loader's
    (already at their final size), no resize, on the processor's device."""
    if modality not in featurizer.fast_loaders:
        return None
    settings: dict[str, Any] = dict(FastImageLoader.PROCESSOR_SETTINGS)
    if featurizer.processor_device is not None:
        settings["device"] = featurizer.processor_device
    return settings


_worker_featurizer: Featurizer | None = None


def install_worker_featurizer(featurizer: Featurizer) -> None:
    """Initializer of featurize worker processes: keep the featurizer they receive once."""
    global _worker_featurizer
    torch.set_num_threads(1)
    _worker_featurizer = featurizer


def featurize_in_worker(index: int, item: Any, *, modality: Modality | None, prompt: str | None) -> Features:
    """Featurize one item in a worker process set up by :func:`install_worker_featurizer`."""
    if _worker_featurizer is None:
        raise RuntimeError("featurize_in_worker runs only in a process set up by install_worker_featurizer.")
    return _worker_featurizer(index, item, modality, prompt)
