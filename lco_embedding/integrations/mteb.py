"""mteb 2.x: :class:`LCOMtebEncoder`, an ``AbsEncoder`` (mteb's ``EncoderProtocol``) running an
:class:`~lco_embedding.LCOEmbedder`, and :func:`model_meta` describing it.

Every mteb batch (``BatchedInput``: ``"text"``, ``"image"``, ``"audio"``, ``"video"`` columns, possibly several at
once) becomes one ``LCOEmbedder.encode`` item per row, so mteb gets exactly the SDK's embeddings. Query and
document sides (``prompt_type``) use the embedder's ``"query"`` / ``"document"`` prompts when it has them; mteb's
task instructions are used instead with ``use_task_instructions=True``. Audio columns are batched by
:func:`collate_audio_rows` as they come (the SDK resamples and mixes down audio itself, with soxr), not by mteb's
``AudioCollator``, which imports ``torchaudio`` — a package with no wheel for every torch. Video columns go through
mteb's ``VideoCollator`` (it needs ``torchcodec`` and the system's FFmpeg libraries, mteb's ``[video]`` extra).

mteb's own registry also has ``LCO-Embedding/LCO-Embedding-Omni-3B`` etc. (its wrapper: bf16, the "dominant"
suffix rule, no prompts); :func:`load` builds ours with the same suffix rule by default.

Example:
    >>> import mteb
    >>> encoder = load(tiny_checkpoint)  # or "LCO-Embedding/LCO-Embedding-Omni-3B"
    >>> encoder.mteb_model_meta.embed_dim
    64
    >>> # With the benchmark's data in the local cache (the hub is needed to fetch it):
    >>> mteb.evaluate(encoder, mteb.get_benchmark("MIEB(lite)"), cache=mteb.ResultCache("results"))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from lco_embedding.core.modalities import MIXED_ORDER, MODALITY_TABLE, SOUND, TEXT
from lco_embedding.core.require import require
from lco_embedding.inputs.budgets import AUDIO_IN_VIDEO
from lco_embedding.integrations import resolve_embedder

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

_mteb = require("mteb", "mteb")
AbsEncoder = require("mteb.models.abs_encoder", "mteb").AbsEncoder
ModelMeta = require("mteb.models", "mteb").ModelMeta

__all__ = ["LCOMtebEncoder", "collate_audio_rows", "load", "model_meta"]

_COLUMNS = MIXED_ORDER
"""mteb's columns are named by modality; a row's item lists them in the mixed-item order."""


class LCOMtebEncoder(AbsEncoder):
    """mteb encoder backed by :class:`~lco_embedding.LCOEmbedder`.

    Args:
        model: An ``LCOEmbedder``, or a hub id / folder to load one from.
        revision: Hub revision, when ``model`` is a name.
        device: Device, when ``model`` is a name.
        use_task_instructions: Put mteb's task instruction in front of queries (and documents, where the task has
            one) instead of the embedder's ``"query"`` / ``"document"`` prompts.
        video_frames: Frames mteb's video collator samples per video.
        use_audio_in_video: A row with a video and an audio (mteb gives a video's sound track as its ``audio``
            column) is embedded as the video with its sound track, interleaved (``use_audio_in_video``), instead of
            the frames followed by the audio.
        **embedder_kwargs: Constructor arguments when ``model`` is a name (default ``mixed_suffix="dominant"``, the
            rule of mteb's own LCO wrapper).
    """

    def __init__(
        self,
        model: LCOEmbedder | str,
        revision: str | None = None,
        device: str | None = None,
        *,
        use_task_instructions: bool = False,
        video_frames: int = 8,
        use_audio_in_video: bool = False,
        **embedder_kwargs: Any,
    ) -> None:
        if not hasattr(model, "encode"):
            embedder_kwargs.setdefault("mixed_suffix", "dominant")
            embedder_kwargs.update({k: v for k, v in (("revision", revision), ("device", device)) if v is not None})
        self.model = resolve_embedder(model, embedder_kwargs or None)
        self.use_task_instructions = use_task_instructions
        self.video_frames = video_frames
        self.use_audio_in_video = use_audio_in_video
        self.mteb_model_meta = model_meta(self.model)

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Embed every row of mteb's DataLoader, in order: ``[rows, d]``."""
        features = getattr(getattr(inputs, "dataset", None), "features", {}) or {}
        present = [MODALITY_TABLE[name] for name in _COLUMNS if name in features]
        if any(spec.frames for spec in present):  # mteb decodes videos (and their sound) with its own collator
            collators = require("mteb.models.modality_collators", "mteb")
            inputs.collate_fn = collators.VideoCollator(
                target_sampling_rate=16000, num_frames=self.video_frames, max_samples=4_800_000
            )
        elif any(spec.sound == "item" for spec in present):
            inputs.collate_fn = collate_audio_rows  # not mteb's AudioCollator: it needs torchaudio to resample
        prompt = self._prompt(task_metadata, prompt_type)
        batch_size = kwargs.get("batch_size", 32)
        rows = (_rows(batch, self.use_audio_in_video) for batch in inputs)
        out = [self.model.encode(items, prompt=prompt, batch_size=batch_size) for items in rows]
        dimension = self.model.get_embedding_dimension()
        return np.concatenate(out) if out else np.zeros((0, dimension), dtype=np.float32)

    def _prompt(self, task_metadata: Any, prompt_type: Any) -> str | None:
        if self.use_task_instructions:
            return self.get_task_instruction(task_metadata, prompt_type) or None
        side = getattr(prompt_type, "value", prompt_type)
        return self.model.prompts.get(side) or None if side in ("query", "document") else None


def collate_audio_rows(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """mteb's rows -> its column batch (``BatchedInput``), each audio as ``{"array", "sampling_rate"}`` at its own
    rate and channels: ``encode`` resamples and mixes it down as for any other audio, so no ``torchaudio`` is
    needed (mteb's ``AudioCollator`` resamples with it first)."""
    for row in rows:
        audio = row.get(SOUND.name)
        if audio is not None:  # a dict, or datasets' decoder object, which reads the same keys
            row[SOUND.name] = {"array": np.asarray(audio["array"]), "sampling_rate": int(audio["sampling_rate"])}
    return {key: [row.get(key) for row in rows] for key in rows[0]} if rows else {}


def _rows(batch: dict[str, Any], audio_in_video: bool = False) -> list[Any]:
    """mteb's column batch -> one ``encode`` item per row (a string, or a dict of the row's modalities); with
    ``audio_in_video``, a row's video and audio are one video with its sound track."""
    columns = {name: batch[name] for name in _COLUMNS if batch.get(name) is not None}
    if not columns:
        raise ValueError(f"the mteb batch has none of the columns {_COLUMNS} (it has {sorted(batch)}).")
    count = len(next(iter(columns.values())))
    rows = []
    for i in range(count):
        item: dict[str, Any] = {}
        for name, values in columns.items():
            value = values[i]
            if value is None:
                continue
            spec = MODALITY_TABLE[name]
            if spec.frame and hasattr(value, "convert"):
                value = value.convert("RGB")  # mteb's mock images are RGBA
            elif spec.frames:
                value = [frame.permute(1, 2, 0).cpu().numpy() for frame in value]  # (T, C, H, W) -> HWC frames
            item[name] = value
        track = next((name for name in item if MODALITY_TABLE[name].sound == "track"), None)
        if audio_in_video and track is not None and SOUND.name in item:  # the row's sound is its video's track
            item[track] = {"frames": item[track], "audio": item.pop(SOUND.name)}
            item[AUDIO_IN_VIDEO] = True
        rows.append(item[TEXT.name] if list(item) == [TEXT.name] else item)
    return rows


def model_meta(model: LCOEmbedder, *, name: str | None = None, revision: str | None = None) -> Any:
    """An mteb ``ModelMeta`` for an :class:`~lco_embedding.LCOEmbedder` (cosine similarity, its modalities)."""
    given = str(model.model_name_or_path)
    name = name or (given if "/" in given and not given.startswith(("/", ".")) else f"local/{given.strip('/')}")
    return ModelMeta(
        loader=None,
        name=name,
        revision=revision or "local",
        release_date=datetime.date(2025, 10, 23).isoformat(),
        languages=["eng-Latn"],
        n_parameters=sum(p.numel() for p in model.model.parameters()),
        memory_usage_mb=None,
        max_tokens=32768,
        embed_dim=model.get_embedding_dimension(),
        license="mit",
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        reference="https://arxiv.org/abs/2510.11693",
        similarity_fn_name="cosine",
        use_instructions=bool(model.prompts),
        training_datasets=set(),
        modalities=list(model.modalities),
    )


def load(model: LCOEmbedder | str, **kwargs: Any) -> LCOMtebEncoder:
    """An mteb-ready encoder (with ``mteb_model_meta`` set) for an ``LCOEmbedder`` or a hub id / folder."""
    return LCOMtebEncoder(model, **kwargs)
