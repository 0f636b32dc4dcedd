"""The embedder: :class:`LCOEmbedder`, the model and its settings, and the one factory of the pipeline every caller
embeds through (:meth:`LCOEmbedder.pipeline`).

What an item goes through lives in :mod:`lco_embedding.pipeline` (settings, featurize, plan, forward,
post-process); this module loads the model, holds what the pipeline shares between calls
(:class:`~lco_embedding.pipeline.pipeline.ModelParts`), and turns ``encode``'s keywords into an
:class:`~lco_embedding.pipeline.options.EncodeOptions`. The sentence-transformers surface (``encode``'s typed
signature, ``similarity``, ``max_seq_length``, ...) is :mod:`lco_embedding.embedder.st_compat`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from lco_embedding.core.errors import EncodeReport, LCOInputError
from lco_embedding.core.modalities import Modality
from lco_embedding.core.outcomes import Outcome, apply_on_error, check_on_error
from lco_embedding.core.types import SingleInput
from lco_embedding.embedder.st_compat import SentenceTransformerSurface
from lco_embedding.inputs.parse import split_inputs
from lco_embedding.model.hub import locate_checkpoint
from lco_embedding.model.loading import (
    load_model,
    read_config,
    read_optional_json,
    resolve_attn,
    resolve_device,
    resolve_dtype,
)
from lco_embedding.model.quantization import Quantization, check_quantization, stored_dtype
from lco_embedding.pipeline.backbone import Backbone
from lco_embedding.pipeline.options import EncodeOptions
from lco_embedding.pipeline.pipeline import ModelParts, Pipeline
from lco_embedding.pipeline.settings import PRESET_DTYPES, SETTINGS_FILE, EmbedderSettings
from lco_embedding.pipeline.workers import WorkerType
from lco_embedding.segments.result import Segments, SourceSegments

__all__ = ["LCOEmbedder"]

SEGMENT_BATCH_SIZE = 8
"""``encode_segments``' default batch size: the pipeline reads about twice as many windows ahead, a few MB each."""


class LCOEmbedder(SentenceTransformerSurface):
    """Embed text, images, audio, video and mixed inputs with an LCO-Embedding checkpoint.

    Args:
        model_name_or_path: Hub id (e.g. ``"LCO-Embedding/LCO-Embedding-Omni-3B"``) or local folder.
        device: ``"cuda"``, ``"cpu"``, ``"mps"``, ...; default cuda if available, else mps, else cpu.
        dtype: Weight dtype. ``None``/``"auto"``: bfloat16 on CUDA; on a CPU bfloat16 when the checkpoint is stored
            in bfloat16 (the LCO-Embedding checkpoints are) and the CPU computes it natively, float32 otherwise;
            float32 on MPS (:mod:`lco_embedding.model.quantization`).
        quantization: ``"int8"``, ``"int8-dynamic"`` (CPU, CUDA), ``"int4"`` or ``"nf4"`` (CUDA): the language
            model's linear layers quantized while loading (``pip install 'lco-embedding[quantization]'``).
        attn_implementation: Default flash_attention_2 on CUDA when ``flash_attn`` is importable, else sdpa.
        revision, cache_folder, token, local_files_only: Hub access.
        prompts: Task instructions by name, e.g. ``{"query": "Find the document that answers: "}``; used with
            ``prompt_name=`` and by :meth:`encode_query` / :meth:`encode_document`. Default: the checkpoint's.
        default_prompt_name: Prompt used when ``encode`` gets neither ``prompt`` nor ``prompt_name``.
        truncate_dim: Default dimension to truncate embeddings to (Matryoshka-style).
        model_kwargs, processor_kwargs: Extra keyword arguments for the model's / processor's ``from_pretrained``.
        max_tokens_per_batch: Token budget of one forward pass, padding included. Default: 8192 on CPU and MPS; on
            CUDA from the free memory. Lowered for the rest of a call after an out-of-memory error.
        num_workers: Background workers that load and preprocess media while the model runs (default 0 on CPU,
            ``min(4, cores - 1)`` on GPUs).
        worker_type: ``"thread"`` (default) or ``"process"`` (spawned once, kept until :meth:`close`).
        torch_dtype: Deprecated alias of ``dtype``.
        **settings: The input settings by name (:class:`~lco_embedding.pipeline.settings.EmbedderSettings`: pixel,
            video and audio budgets, ``max_length``, ``mixed_suffix``, ``special_tokens``, ``preprocessing``,
            ``use_audio_in_video``, read limits), and ``preset``: ``"default"``, ``"mteb"`` (as mteb's wrapper
            evaluates, bfloat16 unless ``dtype`` is given) or ``"card"`` (the model card's loop); settings given
            here win over the preset's, which win over those a checkpoint saved.

    Example:
        >>> model = LCOEmbedder(tiny_checkpoint, device="cpu")
        >>> emb = model.encode(["a cat on a mat", {"image": cat_png}])
        >>> emb.shape
        (2, 64)
        >>> round(float(model.similarity(emb[:1], emb[1:])), 3) <= 1.0
        True
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
        max_tokens_per_batch: int | None = None,
        num_workers: int | None = None,
        worker_type: WorkerType = "thread",
        torch_dtype: str | torch.dtype | None = None,
        **settings: Any,
    ) -> None:
        if torch_dtype is not None:
            warnings.warn("torch_dtype is deprecated; use dtype.", FutureWarning, stacklevel=2)
            dtype = dtype if dtype is not None else torch_dtype
        EncodeOptions(max_tokens_per_batch=max_tokens_per_batch, num_workers=num_workers)  # checks both
        if worker_type not in ("thread", "process"):
            raise ValueError(f"worker_type must be 'thread' or 'process', got {worker_type!r}.")
        EmbedderSettings.resolve(settings, {})  # bad names and values fail here, before anything is read
        # config.json first: it decides everything, and where it was found is where every other file is read from.
        hub = {"revision": revision, "cache_dir": cache_folder, "token": token, "local_files_only": local_files_only}
        checkpoint = locate_checkpoint(model_name_or_path, **hub)
        source, hub_kwargs = checkpoint.source, checkpoint.hub_kwargs
        self._settings = EmbedderSettings.resolve(settings, read_optional_json(source, SETTINGS_FILE, hub_kwargs))
        dtype = dtype if dtype not in (None, "auto") else PRESET_DTYPES.get(self._settings.preset, dtype)
        if prompts is None:
            st_config = read_optional_json(source, "config_sentence_transformers.json", hub_kwargs)
            prompts = st_config.get("prompts") or None
            default_prompt_name = default_prompt_name or st_config.get("default_prompt_name")
        self.prompts: dict[str, str] = dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {default_prompt_name!r} is not in prompts ({sorted(self.prompts)}).")
        self.default_prompt_name = default_prompt_name
        self.truncate_dim = truncate_dim
        self.model_name_or_path, self.revision = model_name_or_path, revision
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
        self.model, self.processor, self.model_type = loaded.model, loaded.processor, loaded.model_type
        self.commit = loaded.commit
        """The hub commit the checkpoint was loaded from (None for a local folder)."""
        pad_token_id = getattr(self.processor.tokenizer, "pad_token_id", None)
        self.parts = ModelParts(
            processor=loaded.processor,
            backbone=Backbone(loaded.model, loaded.backbone, pad_token_id if pad_token_id is not None else 0),
            modalities=tuple(loaded.modalities),
            model_type=loaded.model_type,
            dimension=loaded.hidden_size,
            patch_size=loaded.patch_size,
            max_tokens_per_batch=max_tokens_per_batch,
            num_workers=num_workers,
            worker_type=worker_type,
        )
        """What the pipeline shares between calls: processor, forward stage, measured costs, workers, featurizers."""

    # --------------------------------------------------------------------------------------------- the model
    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return self.parts.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights."""
        return self.parts.backbone.dtype

    @property
    def dimension(self) -> int:
        """The model's embedding size (its hidden size), before any ``truncate_dim``."""
        return self.parts.dimension

    @property
    def modalities(self) -> list[Modality]:
        """The modalities this checkpoint can embed."""
        return list(self.parts.modalities)

    def supports(self, modality: str) -> bool:
        """True if this checkpoint can embed ``modality`` (``"text"``, ``"image"``, ``"audio"``, ``"video"``)."""
        return modality in self.parts.modalities

    @property
    def num_layers(self) -> int:
        """Number of decoder layers; ``output_layers="all"`` returns ``num_layers + 1`` states."""
        return self.model.config.get_text_config().num_hidden_layers

    @property
    def embedder_settings(self) -> EmbedderSettings:
        """All settings about inputs, as one frozen object."""
        return self._settings

    @property
    def max_length(self) -> int | None:
        """User text is cut to this many tokens (``None``: not cut); settable, as ``max_seq_length``."""
        return self._settings.max_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self._settings = self._settings.replace(max_length=value)

    def settings(self) -> dict[str, Any]:
        """Everything that decides the embeddings: the input settings saved with a checkpoint
        (``embedder_settings.saved()``, also in corpus manifests), the weights' ``dtype`` and their
        ``quantization`` (None: not quantized)."""
        dtype = str(self.dtype).removeprefix("torch.")
        return {**self._settings.saved(), "dtype": dtype, "quantization": self.quantization}

    def __repr__(self) -> str:
        quantized = f"quantization={self.quantization!r}, " if self.quantization else ""
        return (
            f"LCOEmbedder({self.model_name_or_path!r}, model_type={self.model_type!r}, device={str(self.device)!r}, "
            f"dtype={self.dtype}, {quantized}dimension={self.dimension})"
        )

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write a folder that ``LCOEmbedder(path)``, ``SentenceTransformer(path, trust_remote_code=True)`` and
        transformers' ``from_pretrained`` all load: weights, processor, settings, prompts and the
        sentence-transformers module files. See ``docs/integrations.md``."""
        self.to_sentence_transformer().save(str(path))

    def to_sentence_transformer(self) -> Any:
        """A ``SentenceTransformer`` sharing this embedder's weights, whose ``encode`` gives the same embeddings
        (with ``normalize_embeddings=True``), prompts included."""
        from lco_embedding.embedder.st_module import to_sentence_transformer

        return to_sentence_transformer(self)

    def close(self) -> None:
        """Shut down the featurize worker processes, if ``worker_type="process"`` started any."""
        self.parts.workers.close()

    def __enter__(self) -> LCOEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- pipeline
    def pipeline(
        self, options: EncodeOptions | None = None, *, settings: EmbedderSettings | None = None, **keywords: Any
    ) -> Pipeline:
        """The pipeline every caller embeds through (the one factory): this model's parts, its settings (or
        ``settings``: a caller's own, e.g. a trainer's ``max_length``) and a call's options (``options``, or built
        from ``encode``'s keywords).

        Example:
            >>> pipeline = model.pipeline(batch_size=8, prompt="Query: ")
            >>> [outcome.index for outcome in pipeline.outcomes(["a", "b"])]
            [0, 1]
        """
        if options is None:
            options = EncodeOptions.from_keywords(self, **keywords)
        elif keywords:
            raise ValueError("give options or keywords, not both.")
        return Pipeline(self.parts, settings or self._settings, options)

    # ---------------------------------------------------------------------------------------------- encoding
    def _encode(self, inputs: Any, device: Any = None, report: EncodeReport | None = None, **keywords: Any) -> Any:
        """``encode`` (:meth:`SentenceTransformerSurface.encode` holds its signature and documentation)."""
        if device is not None and torch.device(device) != self.device:
            self.model.to(device)
        if keywords.get("segment") is not None:
            return self.encode_segments(inputs, keywords.pop("segment"), report=report, **keywords)
        options = EncodeOptions.from_keywords(self, **keywords)
        items, single = split_inputs(inputs)
        with torch.inference_mode():
            return self.pipeline(options).encode(items, single, report)

    def encode_outcomes(self, inputs: Iterable[SingleInput], **keywords: Any) -> Iterator[Outcome]:
        """Every item's :class:`~lco_embedding.Outcome`, in input order, as batches finish: ``Outcome(index,
        embedding, None)``, or ``Outcome(index, None, error)`` for an item that failed (an :class:`LCOInputError`
        or :class:`LCOEmbeddingError`; any other exception propagates). Items are read lazily: about one window is
        held at a time. Keywords are ``encode``'s (precision float32, binary or ubinary: int8/uint8 need a set).

        Example:
            >>> [(o.index, o.ok) for o in model.encode_outcomes(["a cat", "", {"image": cat_png}])]
            [(0, True), (1, False), (2, True)]
        """
        items, single = split_inputs(inputs)
        if single:
            raise ValueError("streams take an iterable of items; use encode for a single item.")
        yield from self.pipeline(**keywords).outcomes(items)

    def encode_iter(
        self, inputs: Iterable[SingleInput], *, report: EncodeReport | None = None, **keywords: Any
    ) -> Iterator[tuple[int, Any]]:
        """:meth:`encode_outcomes` without the failures: ``(input position, embedding)`` in input order. With
        ``on_error="raise"`` (default) the first failed item's error is raised; with ``"skip"`` failed items are
        logged and left out (and recorded in ``report.errors`` when a report is given).

        Example:
            >>> [index for index, _ in model.encode_iter(["a", "", "c"], on_error="skip")]
            [0, 2]
        """
        on_error = check_on_error(keywords.pop("on_error", "raise"))
        for outcome in apply_on_error(self.encode_outcomes(inputs, **keywords), on_error, report):
            yield outcome.index, outcome.embedding

    def encode_segments(
        self,
        inputs: SingleInput | Iterable[SingleInput],
        segment: Any = None,
        *,
        window: float | None = None,
        stride: float | None = None,
        report: EncodeReport | None = None,
        **keywords: Any,
    ) -> Segments:
        """Embed long audio, video and text as segments: windows of seconds (audio, video) or of tokens (text),
        each embedded as an ordinary item with its modality's prompt (docs/inputs.md#long-media-and-long-texts-as-
        segments). A source's segments are kept together: if one fails, the source fails (``on_error``); a PDF's pages
        stand alone: with ``on_error="skip"`` a page that fails is listed in ``failed_pages`` (and the report) and
        the other pages are kept.

        Args:
            inputs: One item or many.
            segment: Window sizes per modality (default :class:`~lco_embedding.segments.SegmentSpec`: audio and
                video 30 s, text 300 tokens overlapping by 50).
            window, stride: Override every modality's window and step (seconds; tokens for text).
            report: Filled with the skipped sources (``on_error="skip"``).
            **keywords: ``encode``'s (``batch_size`` defaults to 8 here).

        Example:
            >>> segments = model.encode_segments("one sentence. " * 40, window=20)
            >>> len(segments) > 1, segments.source.tolist() == [0] * len(segments)
            (True, True)
        """
        items, _ = split_inputs(inputs)
        keywords.setdefault("batch_size", SEGMENT_BATCH_SIZE)
        on_error = check_on_error(keywords.pop("on_error", "raise"))
        parts = []
        for part in self.segment_outcomes(items, segment, window=window, stride=stride, **keywords):
            if part.error is not None:  # raised at once, or recorded and logged
                list(apply_on_error([Outcome(part.index, None, part.error)], on_error, report))
            elif part.failed_pages:  # the document's other pages are kept
                problem = LCOInputError(part.pages_problem() or "", part.index)
                list(apply_on_error([Outcome(part.index, None, problem)], on_error, report))
            parts.append(part)
        return Segments.collect(parts, keywords.get("truncate_dim") or self.truncate_dim or self.dimension)

    def segment_outcomes(
        self,
        inputs: Iterable[SingleInput],
        segment: Any = None,
        *,
        window: float | None = None,
        stride: float | None = None,
        **keywords: Any,
    ) -> Iterator[SourceSegments]:
        """:meth:`encode_segments` as a stream: each source's :class:`~lco_embedding.segments.SourceSegments` (its
        segments' embeddings and places, or its error), in input order, as its last segment is embedded."""
        from lco_embedding.segments.spec import SegmentSpec

        spec = SegmentSpec() if segment is None else segment
        if not isinstance(spec, SegmentSpec):
            raise ValueError(f"segment must be a SegmentSpec, got {type(spec).__name__}.")
        keywords.setdefault("batch_size", SEGMENT_BATCH_SIZE)
        yield from self.pipeline(segment=spec.with_window(window, stride), **keywords).segment_outcomes(inputs)
