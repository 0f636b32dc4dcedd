"""The embedder: :class:`LCOEmbedder`, a sentence-transformers-style front over the pipeline.

Everything an item goes through lives in its own module, and every caller builds it the same way through
:meth:`LCOEmbedder.forward_engine`: settings (:mod:`.settings`), featurize (:mod:`.featurize`: text many items at
once, :mod:`.text_batch`; media per item in :mod:`.workers`), the engine (:mod:`.engine`: windows, the planner of
:mod:`.batching`, out-of-memory recovery, outcomes), the forward pass (:mod:`.backbone`: collate, device, backbone,
pooling) and post-processing (:mod:`.postprocess`). This module holds the model and its settings and turns the
engine's outcomes into ``encode``'s return values.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Executor
from functools import partial
from typing import Any, Literal, overload

import numpy as np
import torch
from tqdm.auto import tqdm

from lco_embedding.backbone import Backbone
from lco_embedding.batching import default_batch_overhead, default_max_tokens
from lco_embedding.engine import Engine, EngineStats, ForwardCosts
from lco_embedding.errors import EncodeReport, ItemError, LCOEmbeddingError, LCOInputError
from lco_embedding.featurize import Features, Featurizer, featurize_in_worker
from lco_embedding.hub import locate_checkpoint
from lco_embedding.inputs import AudioInVideo, split_inputs
from lco_embedding.loading import (
    load_model,
    read_config,
    read_optional_json,
    resolve_attn,
    resolve_device,
    resolve_dtype,
)
from lco_embedding.outcomes import Outcome
from lco_embedding.postprocess import Precision, check_encode_arguments, finish, finish_row, token_output
from lco_embedding.preprocessing import AudioOptions, ImageOptions, VideoOptions
from lco_embedding.preprocessing.image import MAX_IMAGE_PIXELS
from lco_embedding.preprocessing.sources import MAX_URL_BYTES, URL_TIMEOUT
from lco_embedding.preprocessing.video import VIDEO_MAX_TOKENS
from lco_embedding.prompts import MixedSuffixRule
from lco_embedding.quantization import Quantization, check_quantization, stored_dtype
from lco_embedding.segments import Segments, SegmentSpec, SourceSegments
from lco_embedding.segments.grouping import grouped_segments
from lco_embedding.settings import SETTINGS_FILE, EmbedderSettings, Preprocessing
from lco_embedding.special_tokens import SpecialTokenPolicy
from lco_embedding.st_compat import SentenceTransformerSurface, check_unknown_keywords
from lco_embedding.types import Modality, SingleInput
from lco_embedding.workers import FeaturizeWorkers, WorkerType

__all__ = ["LCOEmbedder"]

logger = logging.getLogger(__name__)

_OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)


class LCOEmbedder(SentenceTransformerSurface):
    """Embed text, images, audio, video and mixed inputs with an LCO-Embedding checkpoint.

    Args:
        model_name_or_path: Hub id (e.g. ``"LCO-Embedding/LCO-Embedding-Omni-3B"``) or local folder.
        device: ``"cuda"``, ``"cpu"``, ``"mps"``, ...; default cuda if available, else mps, else cpu.
        dtype: Weight dtype. ``None``/``"auto"``: bfloat16 on CUDA; on a CPU bfloat16 when the checkpoint is stored
            in bfloat16 (the LCO-Embedding checkpoints are) and the CPU computes it natively (AVX-512 BF16, AMX,
            Arm BF16), float32 otherwise; float32 on MPS (:mod:`lco_embedding.quantization`).
        quantization: Quantize the language model's linear layers while loading: ``"int8"`` (weights; CPU and
            CUDA), ``"int8-dynamic"`` (weights and activations), ``"int4"`` or ``"nf4"`` (CUDA); the towers stay
            in ``dtype``. Needs ``pip install 'lco-embedding[quantization]'`` (``[nf4]`` for nf4).
        attn_implementation: Default flash_attention_2 on CUDA when ``flash_attn`` is importable, else sdpa.
        revision: Hub revision (branch, tag or commit).
        cache_folder: Hub cache folder.
        token: Hub token.
        local_files_only: Never touch the network.
        prompts: Task instructions by name, e.g. ``{"query": "Find the document that answers: "}``; used with
            ``prompt_name=`` and by :meth:`encode_query` / :meth:`encode_document`. Default: none (the reference
            uses none).
        default_prompt_name: Prompt used when ``encode`` gets neither ``prompt`` nor ``prompt_name``.
        truncate_dim: Default dimension to truncate embeddings to (Matryoshka-style); default: full size.
        model_kwargs: Extra keyword arguments for the model's ``from_pretrained``.
        processor_kwargs: Extra keyword arguments for the processor's ``from_pretrained``.
        min_pixels: Smallest image size in pixels after resizing (default 4*28*28).
        max_pixels: Largest image size in pixels (default 1280*28*28, the authors' evaluation setting).
        video_fps: Frames sampled per second of video (default 2, qwen-omni-utils').
        video_max_frames: Most frames per video (default 768, qwen-omni-utils').
        video_max_pixels: Largest frame size in pixels (default 768*28*28, qwen-omni-utils').
        max_audio_seconds: Audio is cut after this many seconds (default 300, Qwen2.5-Omni's chunk length).
        max_length: User text is cut to this many tokens before the prompt is built (default 300, as in the
            authors' evaluation and mteb); ``None`` keeps all of it. The suffix and template are never cut.
        mixed_suffix: ``"reference"`` (``"\\nSummarize the above in one word:"`` for mixed inputs) or
            ``"dominant"`` (mteb 2.x: the suffix of the dominant modality, image > video > audio > text).
        special_tokens: ``"text"`` (default): special-token strings in user text (``"<|im_end|>"``,
            ``"<|IMAGE|>"``, ...) are tokenized as ordinary text, so every string embeds and none can close the
            turn; ``"parse"``: they are parsed as special tokens, as in the reference pipeline.
        max_image_pixels: Images larger than this (width x height, before resizing) are refused before decoding
            (default 64,000,000); so are video frames.
        max_item_pixels: The most pixels an item's own ``min_pixels`` / ``max_pixels`` may ask for (an image, or
            each frame of a video); default: the model's ``max_pixels`` for images and ``video_max_pixels`` for
            frames. Never above ``max_image_pixels``.
        max_video_tokens: The most visual tokens one video item may become (default 115,200, qwen-omni-utils'
            total budget, which the model's own settings never reach); a video above it is refused before decoding.
        url_timeout: Seconds a whole URL download may take (default 20).
        max_url_bytes: Largest URL download in bytes (default 256 MiB).
        preprocessing: ``"reference"`` (default): images resized by qwen-omni-utils with Pillow, exactly as the
            reference pipeline; ``"fast"``: decoded images go to the processor, which resizes them in torch (on
            the model's GPU when it has one), skipping the Pillow resize (see ``docs/performance.md`` for speed
            and deviation).
        use_audio_in_video: Embed videos with their sound tracks (decoded with PyAV, interleaved with the frames in
            2-second chunks as Qwen2.5-Omni does): True (a video without one is an error naming the item),
            False (default: frames only, as the reference pipeline's default), or ``"auto"`` (the sound where
            the item's videos have it). An item's own ``"use_audio_in_video"`` key, or ``encode``'s, wins.
        max_tokens_per_batch: Token budget of one forward pass, counted with padding (``items x longest``).
            Default: 8192 on CPU and MPS; on CUDA derived from the free memory (see ``docs/performance.md``).
            Lowered automatically for the rest of a call after an out-of-memory error.
        num_workers: Background workers that load, decode and preprocess media while the model runs; 0 does it on
            the calling thread (text is always featurized there, many items per tokenizer call). Default: see
            :attr:`num_workers`.
        worker_type: ``"thread"`` (default) or ``"process"`` (spawned once, kept until :meth:`close`).
        torch_dtype: Deprecated alias of ``dtype``.

    Example:
        >>> model = LCOEmbedder("LCO-Embedding/LCO-Embedding-Omni-3B")  # doctest: +SKIP
        >>> emb = model.encode(["a cat on a mat", {"image": "cat.jpg"}])  # doctest: +SKIP
        >>> model.similarity(emb[:1], emb[1:])  # doctest: +SKIP
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        quantization: Quantization | None = None,
        attn_implementation: str | None = None,
        revision: str | None = None,
        cache_folder: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        truncate_dim: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        min_pixels: int = 4 * 28 * 28,
        max_pixels: int = 1280 * 28 * 28,
        video_fps: float = 2.0,
        video_max_frames: int = 768,
        video_max_pixels: int = 768 * 28 * 28,
        max_audio_seconds: float | None = 300.0,
        max_length: int | None = 300,
        mixed_suffix: MixedSuffixRule = "reference",
        special_tokens: SpecialTokenPolicy = "text",
        preprocessing: Preprocessing = "reference",
        use_audio_in_video: AudioInVideo = False,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
        max_item_pixels: int | None = None,
        max_video_tokens: int = VIDEO_MAX_TOKENS,
        url_timeout: float = URL_TIMEOUT,
        max_url_bytes: int = MAX_URL_BYTES,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        worker_type: WorkerType = "thread",
        torch_dtype: str | torch.dtype | None = None,
    ) -> None:
        if torch_dtype is not None:
            warnings.warn("torch_dtype is deprecated; use dtype.", FutureWarning, stacklevel=2)
            dtype = dtype if dtype is not None else torch_dtype
        if max_tokens_per_batch is not None and max_tokens_per_batch < 1:
            raise ValueError(f"max_tokens_per_batch must be a positive integer or None, got {max_tokens_per_batch}.")
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 0):
            raise ValueError(f"num_workers must be a non-negative integer or None, got {num_workers}.")
        if worker_type not in ("thread", "process"):
            raise ValueError(f"worker_type must be 'thread' or 'process', got {worker_type!r}.")
        given = {name: value for name, value in locals().items() if name in EmbedderSettings.names()}
        EmbedderSettings(**given)  # bad values fail here, before anything is read or loaded
        # config.json first: it decides everything, and where it was found (folder, hub, or the cache when the
        # hub is out of reach) is where every other file is read from, without further network attempts.
        checkpoint = locate_checkpoint(
            model_name_or_path,
            revision=revision,
            cache_dir=cache_folder,
            token=token,
            local_files_only=local_files_only,
        )
        source, hub_kwargs = checkpoint.source, checkpoint.hub_kwargs
        self._settings = EmbedderSettings.resolve(given, read_optional_json(source, SETTINGS_FILE, hub_kwargs))
        if prompts is None:
            st_config = read_optional_json(source, "config_sentence_transformers.json", hub_kwargs)
            prompts = st_config.get("prompts") or None
            default_prompt_name = default_prompt_name or st_config.get("default_prompt_name")
        self.prompts: dict[str, str] = dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {default_prompt_name!r} is not in prompts ({sorted(self.prompts)}).")
        self.default_prompt_name = default_prompt_name
        self.truncate_dim = truncate_dim
        self.model_name_or_path = model_name_or_path
        self.revision = revision
        self.max_tokens_per_batch = max_tokens_per_batch
        self._num_workers = num_workers
        self.worker_type: WorkerType = worker_type
        self.workers = FeaturizeWorkers()
        """The featurize workers (a process pool is kept until :meth:`close`)."""
        self._featurizer: tuple[Any, Featurizer] | None = None
        self.last_report = EncodeReport()
        self.last_stats = EngineStats()
        self.forward_costs = ForwardCosts()
        """Timings of this model's forward passes, from which the batch planner learns their fixed cost."""
        self.forward_fault: Callable[[list[Features]], None] | None = None
        """Testing hook run before every forward pass; see :func:`lco_embedding.testing.simulate_oom`."""

        resolved_device = resolve_device(device)
        check_quantization(quantization, resolved_device)
        self.quantization = quantization
        """How the language model's linear layers are quantized (None: not)."""
        loaded = load_model(
            checkpoint,
            device=resolved_device,
            dtype=resolve_dtype(dtype, resolved_device, stored_dtype(read_config(checkpoint))),
            attn_implementation=resolve_attn(attn_implementation, resolved_device),
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            quantization=quantization,
        )
        self.model = loaded.model
        self.processor = loaded.processor
        self.model_type = loaded.model_type
        self.commit = loaded.commit
        """The hub commit the checkpoint was loaded from (None for a local folder)."""
        self._modalities = loaded.modalities
        self._dimension = loaded.hidden_size
        self._patch_size = loaded.patch_size
        pad_token_id = getattr(self.processor.tokenizer, "pad_token_id", None)
        self.backbone = Backbone(loaded.model, loaded.backbone, pad_token_id if pad_token_id is not None else 0)
        """The forward stage: collate, device, backbone, pooling."""

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return self.backbone.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights."""
        return self.backbone.dtype

    @property
    def dimension(self) -> int:
        """The model's embedding size (its hidden size), before any ``truncate_dim``."""
        return self._dimension

    @property
    def modalities(self) -> list[Modality]:
        """The modalities this checkpoint can embed."""
        return list(self._modalities)

    @property
    def num_workers(self) -> int:
        """Background featurize workers for media: the constructor's ``num_workers``, else 0 on CPU (the forward
        pass already uses every core), ``min(4, cores - 1)`` on GPUs."""
        if self._num_workers is not None:
            return self._num_workers
        if self.device.type == "cpu":
            return 0
        return max(0, min(4, (os.cpu_count() or 1) - 1))

    @num_workers.setter
    def num_workers(self, value: int | None) -> None:
        self._num_workers = value

    @property
    def pad_token_id(self) -> int:
        """The id :func:`~lco_embedding.collate.collate` pads ``input_ids`` with (the tokenizer's pad token)."""
        return self.backbone.pad_token_id

    @property
    def num_layers(self) -> int:
        """Number of decoder layers; ``output_layers="all"`` returns ``num_layers + 1`` states."""
        return self.model.config.get_text_config().num_hidden_layers

    def supports(self, modality: str) -> bool:
        """True if this checkpoint can embed ``modality`` (``"text"``, ``"image"``, ``"audio"``, ``"video"``)."""
        return modality in self._modalities

    def __repr__(self) -> str:
        return (
            f"LCOEmbedder({self.model_name_or_path!r}, model_type={self.model_type!r}, device={str(self.device)!r}, "
            f"dtype={self.dtype}, "
            + (f"quantization={self.quantization!r}, " if self.quantization else "")
            + f"dimension={self._dimension})"
        )

    # ------------------------------------------------------------------------------------------------ settings
    @property
    def embedder_settings(self) -> EmbedderSettings:
        """All settings about inputs, as one frozen object."""
        return self._settings

    def settings(self) -> dict[str, Any]:
        """Everything that decides the embeddings: the input settings saved with a checkpoint
        (:attr:`embedder_settings` ``.saved()``, also in corpus manifests), the weights' ``dtype`` and their
        ``quantization`` (None: not quantized)."""
        return {
            **self._settings.saved(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "quantization": self.quantization,
        }

    @property
    def max_length(self) -> int | None:
        """User text is cut to this many tokens (``None``: not cut); settable, as ``max_seq_length``."""
        return self._settings.max_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self._settings = self._settings.replace(max_length=value)

    @property
    def mixed_suffix(self) -> MixedSuffixRule:
        """The suffix rule for mixed items (``"reference"`` or ``"dominant"``)."""
        return self._settings.mixed_suffix

    @property
    def special_tokens(self) -> SpecialTokenPolicy:
        """How special-token strings in user text are tokenized (``"text"`` or ``"parse"``)."""
        return self._settings.special_tokens

    @property
    def use_audio_in_video(self) -> AudioInVideo:
        """Whether videos are embedded with their sound tracks (True, False or ``"auto"``)."""
        return self._settings.use_audio_in_video

    @property
    def image_options(self) -> ImageOptions:
        """How images are read and sized."""
        return self._settings.image_options(self._patch_size)

    @property
    def video_options(self) -> VideoOptions:
        """How videos are sampled and sized."""
        return self._settings.video_options(self._patch_size)

    @property
    def audio_options(self) -> AudioOptions:
        """How audio is read."""
        extractor = getattr(self.processor, "feature_extractor", None)
        return self._settings.audio_options(getattr(extractor, "sampling_rate", 16000))

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write a folder that ``LCOEmbedder(path)``, ``SentenceTransformer(path, trust_remote_code=True)`` and
        transformers' ``from_pretrained`` all load: weights, processor, settings, prompts and the
        sentence-transformers module files. See ``docs/integrations.md``."""
        self.to_sentence_transformer().save(str(path))

    def to_sentence_transformer(self) -> Any:
        """A ``SentenceTransformer`` sharing this embedder's weights, whose ``encode`` gives the same embeddings
        (with ``normalize_embeddings=True``), prompts included."""
        from lco_embedding.integrations.sentence_transformers import to_sentence_transformer

        return to_sentence_transformer(self)

    def resolve_prompt(self, prompt_name: str | None, prompt: str | None) -> str | None:
        """The instruction ``encode`` puts in front of the content: ``prompt``, else the prompt named ``prompt_name``,
        else the default prompt, else None.

        Raises:
            ValueError: ``prompt_name`` is not one of ``prompts``.
        """
        if prompt is not None:
            return prompt
        prompt_name = prompt_name if prompt_name is not None else self.default_prompt_name
        if prompt_name is None:
            return None
        if prompt_name not in self.prompts:
            raise ValueError(
                f"prompt_name {prompt_name!r} is not in prompts ({sorted(self.prompts)}); pass prompts={{...}} to "
                "the constructor or use prompt=..."
            )
        return self.prompts[prompt_name] or None

    # --------------------------------------------------------------------------------------------- the stages
    def featurizer(self, use_audio_in_video: AudioInVideo | None = None) -> Featurizer:
        """The :class:`~lco_embedding.featurize.Featurizer` for this embedder's current settings (kept while they
        stay the same, with what it has learned: the text template, the tokenizer copies); ``use_audio_in_video``
        overrides the setting of that name."""
        if use_audio_in_video is not None:
            self._settings.replace(use_audio_in_video=use_audio_in_video)  # a bad value is a ValueError here
        wanted = self._settings.use_audio_in_video if use_audio_in_video is None else use_audio_in_video
        key = (self._settings, wanted, self.device, self.worker_type, id(self.processor))
        if self._featurizer is None or self._featurizer[0] != key:
            self._featurizer = (key, self._new_featurizer(wanted))
        return self._featurizer[1]

    def _new_featurizer(self, use_audio_in_video: AudioInVideo) -> Featurizer:
        return Featurizer(
            self.processor,
            modalities=self._modalities,
            model_type=self.model_type,
            image_options=self.image_options,
            audio_options=self.audio_options,
            video_options=self.video_options,
            mixed_suffix=self.mixed_suffix,
            max_length=self.max_length,
            special_tokens=self.special_tokens,
            preprocessing=self._settings.preprocessing,
            use_audio_in_video=use_audio_in_video,
            item_limits=self._settings.item_limits(),
            processor_device=self.device if self.device.type == "cuda" and self.worker_type == "thread" else None,
        )

    def move_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Collated processor outputs on the model's device, floating-point media tensors in the model's dtype."""
        return self.backbone.move(inputs)

    def embed_batch(self, inputs: dict[str, Any], layers: list[int] | None = None) -> torch.Tensor:
        """Run collated processor outputs through the backbone and pool each row's last real token.

        The building block for code that batches itself (e.g. the sentence-transformers module); it keeps gradients
        unless called under ``torch.no_grad()`` / ``torch.inference_mode()``, and returns the model's dtype on the
        model's device: ``[batch, d]``, or ``[batch, len(layers), d]`` with ``layers``.
        """
        return self.backbone.embed(self.backbone.move(inputs), layers)

    def hidden_states(self, inputs: dict[str, Any], layers: list[int] | None = None) -> torch.Tensor:
        """The backbone's final (normed) hidden states of collated processor outputs: ``[batch, seq, d]``, or
        ``[batch, len(layers), seq, d]`` with ``layers``; on the model's device, in its dtype, padding included."""
        return self.backbone.hidden_states(self.backbone.move(inputs), layers)

    def forward_engine(
        self,
        featurize: Callable[[int, Any], Features] | None = None,
        *,
        layers: list[int] | None = None,
        max_tokens_per_batch: int | None = None,
        batch_size: int = 32,
        on_error: str = "raise",
        executor: Executor | None = None,
        lookahead: int = 8,
        progress: Callable[[int], None] | None = None,
        tokens: bool = False,
        featurize_batch: Callable[[list[tuple[int, Any]]], list[Any]] | None = None,
        batchable: Callable[[Any], bool] | None = None,
    ) -> Engine:
        """An :class:`~lco_embedding.engine.Engine` over this model's forward pass (no vocabulary head, last-token
        pooling, raw float32 rows on the CPU), with the model's token budget, per-pass overhead and fault hook.

        ``encode`` streams items through it; code that gathers featurized items itself (the server's dynamic
        batching) calls its ``execute(batch)``, which splits a batch that runs out of memory.

        Args:
            featurize: ``(index, item) -> Features`` for ``Engine.run`` (default: the featurizer, no prompt).
            layers: Hidden-state indices to return instead of the last state.
            max_tokens_per_batch: Token budget (default: the constructor's, else the device's).
            batch_size, on_error, executor, lookahead, progress: As in :class:`~lco_embedding.engine.Engine`.
            tokens: Each item's output is ``{"token_embeddings": [len, d], "input_ids": [len]}`` of its real tokens
                (final hidden states, float32, CPU) instead of its pooled embedding.
            featurize_batch, batchable: Runs of text items featurized together (see the Engine).
        """
        max_tokens = max_tokens_per_batch or self.max_tokens_per_batch or self._default_max_tokens()
        if max_tokens < 1:
            raise ValueError(f"max_tokens_per_batch must be a positive integer, got {max_tokens}.")
        if featurize is None:
            featurizer = self.featurizer()
            featurize = partial(featurizer, modality=None, prompt=None)
        return Engine(
            featurize,
            partial(self.backbone.forward, layers=layers, tokens=tokens),
            max_tokens=max_tokens,
            batch_size=batch_size,
            batch_overhead=default_batch_overhead(self.device),
            executor=executor,
            lookahead=lookahead,
            on_error=on_error,
            fault=self.forward_fault,
            progress=progress,
            costs=self.forward_costs,
            featurize_batch=featurize_batch,
            batchable=batchable,
        )

    def _default_max_tokens(self) -> int:
        text_config = self.model.config.get_text_config()
        return default_max_tokens(self.device, text_config.hidden_size, text_config.intermediate_size, self.dtype)

    def _layer_indices(self, output_layers: str | Iterable[int] | None) -> list[int] | None:
        if output_layers is None:
            return None
        count = self.num_layers + 1
        if output_layers == "all":
            return list(range(count))
        layers = [int(i) for i in output_layers]  # type: ignore[union-attr]
        for i in layers:
            if not -count <= i < count:
                raise ValueError(f"output_layers index {i} is out of range: the model has {count} hidden states.")
        return [i % count for i in layers]

    def _stream(
        self,
        items: Iterable[Any],
        *,
        prompt_name: str | None,
        prompt: str | None,
        modality: Modality | None,
        output_layers: Literal["all"] | Iterable[int] | None,
        batch_size: int,
        max_tokens_per_batch: int | None,
        num_workers: int | None,
        on_error: str,
        progress: Callable[[int], None] | None,
        tokens: bool = False,
        use_audio_in_video: AudioInVideo | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Run ``items`` through the engine; yields ``(index, raw row or the item's error)`` in input order (with
        ``tokens``, ``{"token_embeddings", "input_ids"}`` of each item's real tokens instead of the row)."""
        prompt = self.resolve_prompt(prompt_name, prompt)
        layers = self._layer_indices(output_layers)
        num_workers = self.num_workers if num_workers is None else num_workers
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers}.")
        featurizer = self.featurizer(use_audio_in_video)
        executor = self.workers.executor(num_workers, self.worker_type, featurizer)
        if self.worker_type == "process" and executor is not None:
            featurize: Callable[[int, Any], Features] = partial(featurize_in_worker, modality=modality, prompt=prompt)
        else:
            featurize = partial(featurizer, modality=modality, prompt=prompt)
        engine = self.forward_engine(
            featurize,
            layers=layers,
            max_tokens_per_batch=max_tokens_per_batch,
            batch_size=batch_size,
            on_error=on_error,
            executor=executor,
            lookahead=max(2 * batch_size, 2 * num_workers),
            progress=progress,
            tokens=tokens,
            featurize_batch=partial(featurizer.featurize_batch, modality=modality, prompt=prompt),
            batchable=partial(featurizer.batchable, modality=modality),
        )
        self.last_stats = engine.stats
        try:
            yield from engine.run(items)
        finally:
            self.workers.release(executor)

    def close(self) -> None:
        """Shut down the featurize worker processes, if ``worker_type="process"`` started any."""
        self.workers.close()

    def __enter__(self) -> LCOEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------------------------- encode
    @overload
    def encode(
        self,
        inputs: SingleInput,
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding"] = ...,
        precision: Precision = ...,
        convert_to_numpy: Literal[True] = ...,
        convert_to_tensor: Literal[False] = ...,
        device: str | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        **kwargs: Any,
    ) -> np.ndarray: ...  # noqa: E501

    @overload
    def encode(
        self,
        inputs: SingleInput | Iterable[SingleInput],
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding"] = ...,
        precision: Precision = ...,
        convert_to_numpy: bool = ...,
        convert_to_tensor: Literal[True] = ...,
        device: str | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        **kwargs: Any,
    ) -> torch.Tensor: ...  # noqa: E501

    @overload
    def encode(
        self,
        inputs: Iterable[SingleInput],
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding"] = ...,
        precision: Precision = ...,
        convert_to_numpy: Literal[True] = ...,
        convert_to_tensor: Literal[False] = ...,
        device: str | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        **kwargs: Any,
    ) -> np.ndarray: ...  # noqa: E501

    @overload
    def encode(
        self,
        inputs: Iterable[SingleInput],
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding"] = ...,
        precision: Precision = ...,
        convert_to_numpy: Literal[False] = ...,
        convert_to_tensor: Literal[False] = ...,
        device: str | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        **kwargs: Any,
    ) -> list[torch.Tensor]: ...  # noqa: E501

    @torch.inference_mode()
    def encode(
        self,
        inputs: SingleInput | Iterable[SingleInput],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Precision = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        *,
        modality: Modality | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        output_layers: Literal["all"] | Iterable[int] | None = None,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        use_audio_in_video: AudioInVideo | None = None,
        segment: SegmentSpec | None = None,
        **kwargs: Any,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor] | Segments:
        """Embed one input or a list of inputs of any modality.

        Keyword names, defaults and return shapes follow ``SentenceTransformer.encode`` (6.x), except
        ``normalize_embeddings``, which defaults to True: cosine is the model's similarity, and the checkpoints'
        own sentence-transformers configuration ends in a Normalize module.

        Args:
            inputs: One item, or a list, tuple, generator or any iterable of items (read lazily); see
                ``docs/inputs.md``. A batch may mix modalities.
            prompt_name: Name of a prompt in ``prompts`` to put in front of the content.
            prompt: A task instruction put in front of the content (overrides ``prompt_name``).
            batch_size: Most items per forward pass (default 32); batches are also capped by
                ``max_tokens_per_batch`` and grouped by length.
            show_progress_bar: Default: shown when this module logs at INFO or lower.
            output_value: ``"sentence_embedding"`` (default); ``"token_embeddings"``: a list of ``[tokens, d]``
                tensors, each item's final hidden states over its real tokens (template and prompt included, no
                padding, not normalised); ``None``: a list of dicts, one per item, with ``sentence_embedding``
                (normalised and truncated as asked), ``token_embeddings``, ``input_ids`` and ``attention_mask``,
                as sentence-transformers returns them.
            precision: ``"float32"``, or ``"int8"``/``"uint8"``/``"binary"``/``"ubinary"`` quantized with
                sentence-transformers' ``quantize_embeddings``.
            convert_to_numpy: Return a numpy array (default) rather than a list of tensors.
            convert_to_tensor: Return one torch tensor (wins over ``convert_to_numpy``).
            device: Move the model to this device first.
            normalize_embeddings: L2-normalise the embeddings (default True).
            truncate_dim: Keep the first ``truncate_dim`` dimensions (before normalisation).
            modality: Force the modality of bare items, e.g. ``"text"`` for strings that look like file names.
            on_error: ``"raise"`` (default) raises the first item's error (:class:`LCOInputError`, or
                :class:`LCOEmbeddingError` when the model cannot embed it); ``"skip"`` leaves failed items out of
                the result, logs a summary and records them in ``self.last_report`` (``kept`` gives the input
                position of every returned row). Any other exception propagates either way.
            output_layers: ``"all"`` or a list of hidden-state indices (0 = embedding output, -1 = final normed
                state): returns ``[n, len(layers), d]`` instead of ``[n, d]``.
            max_tokens_per_batch: Token budget of one forward pass for this call (default: the constructor's).
            num_workers: Background featurize workers for this call (default: the constructor's).
            use_audio_in_video: Embed videos with their sound tracks for this call (True, False or ``"auto"``;
                default: the constructor's); an item's own ``"use_audio_in_video"`` key wins.
            segment: Cut long audio, video and text into segments (:class:`~lco_embedding.segments.SegmentSpec`)
                and return their :class:`~lco_embedding.segments.Segments` instead of one row per item (see
                :meth:`encode_segments`).
            **kwargs: None are accepted: an unknown keyword raises ``ValueError`` naming the closest valid one
                (as sentence-transformers 6 does), so a typo such as ``normalise_embeddings`` never passes silently.

        Returns:
            ``[n, d]`` for a list (``[d]`` for a single input) as numpy array, tensor, or list of tensors; see
            ``output_value`` for token embeddings and dicts.

        Raises:
            LCOInputError: A bad item (message names its index), with ``on_error="raise"``.
            LCOEmbeddingError: An item the model cannot embed, with ``on_error="raise"``.
            ValueError: Bad arguments, or an unknown keyword argument.
        """
        check_unknown_keywords("encode", kwargs, _ENCODE_KEYWORDS)
        check_encode_arguments(batch_size, on_error, precision)
        if segment is not None:
            if output_value != "sentence_embedding" or output_layers is not None or precision != "float32":
                raise ValueError("segment= returns sentence embeddings: output_value, output_layers and precision "
                                 "keep their defaults with it.")  # fmt: skip
            return self.encode_segments(
                inputs,
                segment,
                prompt_name=prompt_name,
                prompt=prompt,
                batch_size=batch_size,
                normalize_embeddings=normalize_embeddings,
                truncate_dim=truncate_dim,
                on_error=on_error,
                max_tokens_per_batch=max_tokens_per_batch,
                num_workers=num_workers,
                use_audio_in_video=use_audio_in_video,
            )
        if output_value not in _OUTPUT_VALUES:
            raise ValueError(
                f"output_value must be one of 'sentence_embedding', 'token_embeddings' or None, got {output_value!r}."
            )
        tokens = output_value != "sentence_embedding"
        if tokens and (output_layers is not None or precision != "float32"):
            raise ValueError(
                f"output_value={output_value!r} cannot be combined with output_layers or a precision other than "
                "float32; these apply to sentence embeddings."
            )
        if device is not None and torch.device(device) != self.device:
            self.model.to(device)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO

        items, single = split_inputs(inputs)
        total = len(items) if isinstance(items, Sized) else None
        results: dict[int, Any] = {}
        errors: dict[int, ItemError] = {}
        self.last_report = EncodeReport()
        with tqdm(total=total, desc="Encoding", unit="item", disable=not show_progress_bar) as bar:
            for index, outcome in self._stream(
                items,
                prompt_name=prompt_name,
                prompt=prompt,
                modality=modality,
                output_layers=output_layers,
                batch_size=batch_size,
                max_tokens_per_batch=max_tokens_per_batch,
                num_workers=num_workers,
                on_error=on_error,
                progress=bar.update,
                tokens=tokens,
                use_audio_in_video=use_audio_in_video,
            ):
                if isinstance(outcome, LCOInputError | LCOEmbeddingError):
                    errors[index] = outcome
                else:
                    results[index] = outcome
        self.last_report = EncodeReport(kept=list(results), errors={i: errors[i].reason for i in errors})
        if errors:
            shown = "; ".join(str(errors[i]) for i in errors)
            logger.warning("Skipped %d of %d inputs: %s", len(errors), len(errors) + len(results), shown)
        if tokens:
            outputs = [token_output(r, output_value, normalize_embeddings, truncate_dim) for r in results.values()]
            return outputs[0] if single else outputs
        return finish(
            list(results.values()),
            dimension=self._dimension,
            single=single,
            normalize=normalize_embeddings,
            truncate_dim=truncate_dim,
            precision=precision,
            convert_to_numpy=convert_to_numpy,
            convert_to_tensor=convert_to_tensor,
            layered=output_layers is not None,
        )

    def encode_outcomes(
        self,
        inputs: Iterable[SingleInput],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        precision: Literal["float32", "binary", "ubinary"] = "float32",
        *,
        modality: Modality | None = None,
        output_layers: Literal["all"] | Iterable[int] | None = None,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        use_audio_in_video: AudioInVideo | None = None,
    ) -> Iterator[Outcome]:
        """Every item's :class:`~lco_embedding.Outcome`, in input order, as batches finish: ``Outcome(index,
        embedding, None)``, or ``Outcome(index, None, error)`` for an item that failed (an :class:`LCOInputError`
        or :class:`LCOEmbeddingError`; any other exception propagates).

        Items are read from ``inputs`` lazily (a generator over a million files is fine): about one window of
        items is held at a time. Arguments are those of :meth:`encode`; ``int8``/``uint8`` precision needs
        calibration over the whole set, so only ``float32``, ``binary`` and ``ubinary`` are accepted.

        Example:
            >>> for outcome in model.encode_outcomes(items):  # doctest: +SKIP
            ...     store[outcome.index] = outcome.embedding if outcome.ok else None
        """
        check_encode_arguments(batch_size, "skip", precision)
        if precision not in ("float32", "binary", "ubinary"):
            raise ValueError(
                f"streams support precision float32, binary or ubinary, not {precision!r}: int8/uint8 ranges are "
                "calibrated on the whole set; use encode, or quantize afterwards with calibration embeddings."
            )
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        items, single = split_inputs(inputs)
        if single:
            raise ValueError("streams take an iterable of items; use encode for a single item.")
        for index, raw in self._stream(
            items,
            prompt_name=prompt_name,
            prompt=prompt,
            modality=modality,
            output_layers=output_layers,
            batch_size=batch_size,
            max_tokens_per_batch=max_tokens_per_batch,
            num_workers=num_workers,
            on_error="skip",
            progress=None,
            use_audio_in_video=use_audio_in_video,
        ):
            if isinstance(raw, LCOInputError | LCOEmbeddingError):
                yield Outcome(index, None, raw)
            else:
                row = finish_row(
                    raw,
                    normalize=normalize_embeddings,
                    truncate_dim=truncate_dim,
                    precision=precision,
                    layered=output_layers is not None,
                )
                yield Outcome(index, row, None)

    def encode_segments(
        self,
        inputs: SingleInput | Iterable[SingleInput],
        segment: SegmentSpec | None = None,
        *,
        window: float | None = None,
        stride: float | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 8,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        use_audio_in_video: AudioInVideo | None = None,
    ) -> Segments:
        """Embed long audio, video and text as segments: windows of seconds (audio, video) or of tokens of the
        checkpoint's tokenizer (text), each embedded as an ordinary item with its modality's prompt.

        Long media is decoded once and streamed (a two-hour recording is never one array); a video's windows get
        the frames the model's video settings sample from them (and their sound with ``use_audio_in_video``);
        text windows overlap and end at sentence ends where they can (:mod:`lco_embedding.segments.text`).
        Items that are not one audio, video or text (images, mixed items) are one segment each, NaN ``start``
        and ``end``. A source's segments are kept together: if one fails, the source fails.

        Args:
            inputs: One item or many (as ``encode``).
            segment: Window sizes per modality (default :class:`~lco_embedding.segments.SegmentSpec`: audio and
                video 30 s, text 300 tokens overlapping by 50).
            window: Overrides the window of every modality: seconds for audio and video, tokens for text.
            stride: Overrides the step between window starts (seconds, or tokens for text; default: ``window``
                for media, ``window`` minus the overlap for text).
            batch_size: Most segments per forward pass (default 8: the pipeline reads about twice as many ahead,
                and a 30-s window is a few megabytes until it is embedded).
            on_error: ``"raise"`` (default) raises the first failed source's error (naming the segment);
                ``"skip"`` leaves failed sources out and lists them in the result's ``errors``.
            Others: As in :meth:`encode`.

        Returns:
            :class:`~lco_embedding.segments.Segments`: ``embeddings [n, d]``, and per row its ``source`` position,
            ``segment`` number, ``start`` / ``end`` (seconds, or character offsets for text) and ``tokens``.

        Raises:
            LCOInputError: A source cannot be read or cut, or would be cut in windows longer than the model sees
                (text windows above ``max_length``, audio windows above ``max_audio_seconds``), with
                ``on_error="raise"``.
            ValueError: Bad arguments.

        Example:
            >>> segments = model.encode_segments("lecture.mp4")  # doctest: +SKIP
            >>> list(zip(segments.start, segments.end))[:2]  # doctest: +SKIP
            [(0.0, 30.0), (30.0, 60.0)]
        """
        check_encode_arguments(batch_size, on_error, "float32")
        items, _ = split_inputs(inputs)
        outcomes = self.segment_outcomes(
            items,
            segment,
            window=window,
            stride=stride,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            max_tokens_per_batch=max_tokens_per_batch,
            num_workers=num_workers,
            use_audio_in_video=use_audio_in_video,
        )
        parts = []
        for part in outcomes:
            if part.error is not None and on_error == "raise":
                raise part.error
            if part.error is not None:
                logger.warning("Skipped %s", part.error)
            parts.append(part)
        dimension = truncate_dim or self._dimension
        return Segments.collect(parts, dimension)

    def segment_outcomes(
        self,
        inputs: Iterable[SingleInput],
        segment: SegmentSpec | None = None,
        *,
        window: float | None = None,
        stride: float | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 8,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        use_audio_in_video: AudioInVideo | None = None,
    ) -> Iterator[SourceSegments]:
        """:meth:`encode_segments` as a stream: each source's :class:`~lco_embedding.segments.SourceSegments`
        (its segments' embeddings and places, or its error), in input order, as its last segment is embedded.
        Items are read lazily; what streams through the model is segments, planned by tokens like any items."""
        spec = _segment_spec(segment, window, stride)
        featurizer = self.featurizer(use_audio_in_video)
        embed = partial(
            self.encode_outcomes,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            max_tokens_per_batch=max_tokens_per_batch,
            num_workers=num_workers,
            use_audio_in_video=use_audio_in_video,
        )
        # On the CPU, where memory is short and the forward dominates, freed windows go back to the system at once.
        return grouped_segments(inputs, spec, featurizer, embed, map_large_allocations=self.device.type == "cpu")

    def encode_iter(
        self,
        inputs: Iterable[SingleInput],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        precision: Literal["float32", "binary", "ubinary"] = "float32",
        *,
        modality: Modality | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        output_layers: Literal["all"] | Iterable[int] | None = None,
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        use_audio_in_video: AudioInVideo | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Embed a stream of items, yielding ``(input position, embedding)`` in input order as batches finish.

        :meth:`encode_outcomes` without the failures: with ``on_error="raise"`` (default) the first failed item's
        error is raised; with ``"skip"`` failed items are not yielded, are logged, and are recorded in
        ``self.last_report.errors`` as the stream goes. ``last_report.kept`` stays empty: every yielded pair carries
        its position, and a list of them would grow with the stream.

        Example:
            >>> for index, embedding in model.encode_iter(path.open()):  # doctest: +SKIP
            ...     store[index] = embedding
        """
        check_encode_arguments(batch_size, on_error, precision)
        report = self.last_report = EncodeReport()
        for outcome in self.encode_outcomes(
            inputs,
            prompt_name,
            prompt,
            batch_size,
            normalize_embeddings,
            truncate_dim,
            precision,
            modality=modality,
            output_layers=output_layers,
            max_tokens_per_batch=max_tokens_per_batch,
            num_workers=num_workers,
            use_audio_in_video=use_audio_in_video,
        ):
            if outcome.error is None:
                yield outcome.index, outcome.embedding
            elif on_error == "raise":
                raise outcome.error
            else:
                report.errors[outcome.index] = outcome.error.reason
                logger.warning("Skipped %s", outcome.error)


def _segment_spec(segment: SegmentSpec | None, window: float | None, stride: float | None) -> SegmentSpec:
    """``segment`` (default :class:`SegmentSpec`) with ``window`` / ``stride`` applied to every modality."""
    spec = SegmentSpec() if segment is None else segment
    if not isinstance(spec, SegmentSpec):
        raise ValueError(f"segment must be a SegmentSpec, got {type(spec).__name__}.")
    return spec.with_window(window, stride)


_ENCODE_KEYWORDS = [name for name in inspect.signature(LCOEmbedder.encode).parameters if name not in ("self", "kwargs")]
