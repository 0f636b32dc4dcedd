"""The paper's analysis on your own data: embed paired items at every layer, then measure each modality's anisotropy
and the alignment between the members of each pair, layer by layer.

Pairs are ``(media item, text item)``: ``({"image": "cat.jpg"}, "a cat on a mat")``, or audio or video instead of
the image. Pairs of several media modalities are analysed per modality ("image-text", "audio-text", ...), as in
the paper's figures. Embeddings are last-token pooled hidden states of every layer (``encode(...,
output_layers="all")``: the embedding output, each decoder layer, the final normed state), taken as they are (the
metrics normalise rows themselves).

``conventions="authors"`` reproduces the LCO-Embedding authors' ``Analysis/`` scripts instead: their prompts
(``encode.py``: media with ``"\\nSummarize the above in one word:"``, text with the text suffix and not truncated),
rows normalised before the metrics, and their metric conventions (:mod:`.metrics`).

Does not embed a pair's two sides together: each side is one ``encode`` item.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from lco_embedding.analysis.metrics import ALIGNMENT_METRICS, Conventions, alignment_scores, anisotropy
from lco_embedding.core.jsonl import read_jsonl
from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITY_TABLE, TEXT, item_modality
from lco_embedding.inputs.prompts import MIXED_SUFFIX, SUFFIXES

__all__ = [
    "DEFAULT_METRICS",
    "analyze_pairs",
    "authors_item",
    "embed_pairs",
    "layer_alignment_matrix",
    "layer_embeddings",
    "read_pairs",
]

DEFAULT_METRICS = ("mutual_knn", "cka_linear", "unbiased_cka_linear", "cknna", "modality_gap")
"""Alignment metrics computed unless others are asked for (mutual k-NN with k = 10 is the paper's main one)."""

Pair = tuple[Any, Any]


class LayeredEncoder(Protocol):
    """What the analysis needs of a model (an :class:`~lco_embedding.LCOEmbedder`): per-layer states from
    ``encode(output_layers=...)`` and its number of layers. The analysis sits below the embedder layer, so it names
    this much instead of importing it."""

    num_layers: int

    def encode(self, inputs: Any, **keywords: Any) -> Any:
        """Embeddings (per layer, with ``output_layers``)."""
        ...


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Read a JSONL file of pairs: each line one media path (``image``, ``audio`` or ``video``, relative to the file's
    folder) and a ``text``, e.g. ``{"image": "img/001.jpg", "text": "a cat on a mat"}``.

    Raises:
        ValueError: A line that is not such an object (the message gives its number).
    """
    folder = Path(path).resolve().parent
    pairs = []
    for number, row in read_jsonl(path):
        media = [m for m in MEDIA_MODALITIES if isinstance(row, dict) and row.get(m)]
        if not isinstance(row, dict) or len(media) != 1 or not isinstance(row.get("text"), str):
            raise ValueError(
                f"{path}, line {number}: a pair is one of 'image', 'audio', 'video' (a path) and a 'text', e.g. "
                '{"image": "img/001.jpg", "text": "a cat on a mat"}.'
            )
        pairs.append(({media[0]: str(folder / row[media[0]])}, {"text": row["text"]}))
    if not pairs:
        raise ValueError(f"{path} holds no pairs.")
    return pairs


def _modality(item: Any) -> str:
    if isinstance(item, str):
        return "text"
    if isinstance(item, dict):
        return item_modality(item)
    return type(item).__name__


def authors_item(item: Any) -> Any:
    """``item`` as the authors' ``Analysis/encode.py`` prompts it: one user message, the media followed by
    ``"\\nSummarize the above in one word:"`` (their image prompt; used for audio and video alike), or the text
    followed by the text suffix, not truncated. Items of other shapes are returned unchanged.

    Example:
        >>> authors_item({"image": "cat.jpg"})[0]["content"]
        [{'type': 'image', 'image': 'cat.jpg'}, {'type': 'text', 'text': '\\nSummarize the above in one word:'}]
    """
    if isinstance(item, str):
        item = {"text": item}
    if not isinstance(item, dict) or len(item) != 1:
        return item
    ((modality, value),) = item.items()
    if MODALITY_TABLE.get(modality) is TEXT and isinstance(value, str):
        content = [{"type": "text", "text": value + SUFFIXES["text"]}]
    elif modality in MEDIA_MODALITIES:
        content = [{"type": modality, modality: value}, {"type": "text", "text": MIXED_SUFFIX}]
    else:
        return item
    return [{"role": "user", "content": content}]


def layer_embeddings(
    model: LayeredEncoder, items: Sequence[Any], layers: Literal["all"] | Iterable[int] = "all", **encode_kwargs: Any
) -> np.ndarray:
    """``[n, layers, d]`` float32 last-token states of ``items`` at every layer asked for (streamed and batched as
    ``encode`` does; not normalised)."""
    encode_kwargs.setdefault("show_progress_bar", False)
    states = model.encode(list(items), output_layers=layers, normalize_embeddings=False, **encode_kwargs)
    return np.asarray(states, dtype=np.float32)


def _layer_ids(count: int, layers: Literal["all"] | Iterable[int]) -> list[int]:
    return list(range(count)) if layers == "all" else [i % count for i in layers]


def embed_pairs(
    model: LayeredEncoder,
    pairs: Sequence[Pair],
    layers: Literal["all"] | Iterable[int] = "all",
    *,
    conventions: Conventions = "paper",
    **encode_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Both sides of ``pairs`` at every layer asked for: two ``[n, layers, d]`` arrays (with the authors' prompts
    for ``conventions="authors"``: :func:`authors_item`)."""
    ids = _layer_ids(model.num_layers + 1, layers)
    prompt = authors_item if conventions == "authors" else (lambda item: item)
    first = layer_embeddings(model, [prompt(a) for a, _ in pairs], ids, **encode_kwargs)
    second = layer_embeddings(model, [prompt(b) for _, b in pairs], ids, **encode_kwargs)
    return first, second


def analyze_pairs(
    model: LayeredEncoder,
    pairs: Sequence[Pair],
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    layers: Literal["all"] | Iterable[int] = "all",
    k: int = 10,
    model_name: str | None = None,
    device: str | None = None,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
    conventions: Conventions = "paper",
    **encode_kwargs: Any,
) -> Any:
    """Per layer: the anisotropy of each side and the alignment of the pairs, as a tidy ``pandas.DataFrame``.

    Args:
        model: An :class:`~lco_embedding.LCOEmbedder` (may be None when ``embeddings`` are given).
        pairs: ``(media item, text item)`` pairs; several media modalities are analysed separately.
        metrics: Names from :data:`~lco_embedding.analysis.metrics.ALIGNMENT_METRICS`.
        layers: ``"all"`` (embedding output through the final normed state) or hidden-state indices.
        k: Neighbours for the k-NN metrics (the paper: 10); lowered to ``n - 1`` for smaller groups.
        model_name: The ``model`` column (default: the checkpoint's name).
        device: Where the metrics compute (default: where the tensors are, the CPU).
        embeddings: Both sides' states from :func:`embed_pairs` with the same ``layers`` (and ``conventions``),
            if already computed.
        conventions: ``"paper"`` (default) or ``"authors"``: the authors' prompts, rows normalised before the
            metrics, their metric conventions (see :mod:`.metrics` and docs/analysis.md).
        **encode_kwargs: Passed to ``encode`` (``batch_size``, ``max_tokens_per_batch``, ...).

    Returns:
        One row per (modality pair, layer, metric) and per (side, layer) for anisotropy: columns ``model``,
        ``pair`` (e.g. ``"image-text"``), ``modality`` (the side for anisotropy, else the pair), ``layer``,
        ``metric``, ``value``, ``n`` (pairs), ``k``.

    Raises:
        ValueError: Unknown metrics, or a modality group of fewer than 4 pairs.
    """
    import pandas as pd

    unknown = sorted(set(metrics) - set(ALIGNMENT_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(ALIGNMENT_METRICS)}.")
    if not pairs:
        raise ValueError("analyze_pairs needs pairs.")
    if model is None and embeddings is None:
        raise ValueError("analyze_pairs needs a model, or the embeddings of both sides.")
    name = model_name or str(getattr(model, "model_name_or_path", "model"))
    if embeddings is not None:
        first, second = embeddings
        ids = _layer_ids(model.num_layers + 1 if model is not None else first.shape[1], layers)
    else:
        ids = _layer_ids(model.num_layers + 1, layers)
        first, second = embed_pairs(model, pairs, ids, conventions=conventions, **encode_kwargs)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, (a, b) in enumerate(pairs):
        groups.setdefault((_modality(a), _modality(b)), []).append(index)
    rows = []
    for (left, right), members in groups.items():
        if len(members) < 4:
            raise ValueError(f"the {left}-{right} pairs are {len(members)}; the metrics need at least 4.")
        pair, group_k = f"{left}-{right}", min(k, len(members) - 1)
        common = {"model": name, "pair": pair, "n": len(members), "k": group_k}
        for position, layer in enumerate(ids):
            a, b = first[members, position], second[members, position]
            if conventions == "authors":  # their script normalises rows before calling the metrics
                a, b = _normalised_rows(a), _normalised_rows(b)
            for side, states in ((left, a), (right, b)):
                value = anisotropy(states, conventions=conventions, device=device)
                rows.append({**common, "modality": side, "layer": layer, "metric": "anisotropy", "value": value})
            scores = alignment_scores(a, b, metrics, group_k, conventions=conventions, device=device)
            for metric in metrics:
                rows.append({**common, "modality": pair, "layer": layer, "metric": metric, "value": scores[metric]})
    return pd.DataFrame(rows, columns=["model", "pair", "modality", "layer", "metric", "value", "n", "k"])


def _normalised_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def layer_alignment_matrix(
    a: np.ndarray,
    b: np.ndarray,
    *,
    metric: str = "mutual_knn",
    k: int = 10,
    device: str | None = None,
    conventions: Conventions = "paper",
) -> np.ndarray:
    """``[layers of A, layers of B]`` alignment of every layer of A with every layer of B (``a``, ``b``:
    ``[n, layers, d]``), for the layer x layer heat-map."""
    score = ALIGNMENT_METRICS[metric]
    k = min(k, len(a) - 1)
    if conventions == "authors":
        a, b = (
            _normalised_rows(a.reshape(-1, a.shape[-1])).reshape(a.shape),
            _normalised_rows(b.reshape(-1, b.shape[-1])).reshape(b.shape),
        )
    return np.array(
        [
            [score(a[:, i], b[:, j], k, device=device, conventions=conventions) for j in range(b.shape[1])]
            for i in range(a.shape[1])
        ]
    )
