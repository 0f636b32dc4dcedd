"""After the forward pass: raw float32 rows become what ``encode`` returns — truncated (Matryoshka-style),
L2-normalised, quantized, as numpy arrays or tensors; token states become ``output_value`` dicts.

The same functions serve ``encode``, ``encode_iter`` / ``encode_outcomes`` (row by row) and the Ray actors; the
server renders its raw rows with the same truncate-and-normalise step
(:func:`lco_embedding.core.precision.truncate_normalize`), so every path post-processes alike.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from lco_embedding.core.precision import Precision, quantize_calibrated, truncate_normalize

__all__ = ["finish", "finish_row", "token_output"]


def finish(
    rows: list[torch.Tensor],
    *,
    dimension: int,
    single: bool = False,
    normalize: bool = True,
    truncate_dim: int | None = None,
    precision: Precision = "float32",
    convert_to_numpy: bool = True,
    convert_to_tensor: bool = False,
    layered: bool = False,
) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
    """Stack raw rows and post-process them: truncate, then normalise, then quantize.

    Args:
        rows: Raw float32 embeddings, ``[d]`` (or ``[layers, d]`` with ``layered``) each.
        dimension: The embedding size, for an empty result.
        single: Return the one row rather than a batch.
        normalize: L2-normalise (after truncating, as sentence-transformers does).
        truncate_dim: Keep the first ``truncate_dim`` dimensions.
        precision: ``float32`` or a quantization of sentence-transformers' ``quantize_embeddings`` (calibrated on
            these rows for int8/uint8).
        convert_to_numpy, convert_to_tensor: The return type, as in ``SentenceTransformer.encode``.
        layered: The rows are per-layer states (``output_layers``): no quantization.

    Example:
        >>> finish([torch.tensor([3.0, 4.0])], dimension=2).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    stacked = torch.stack(rows) if rows else torch.empty((0, dimension), dtype=torch.float32)
    array = truncate_normalize(stacked.numpy(), truncate_dim, normalize)
    if precision != "float32":
        if layered:
            raise ValueError("precision other than float32 cannot be combined with output_layers.")
        array = quantize_calibrated(array, precision)
    stacked = torch.from_numpy(np.ascontiguousarray(array))
    if convert_to_tensor:
        return stacked[0] if single else stacked
    if convert_to_numpy:
        array = stacked.numpy()
        return array[0] if single else array
    return stacked[0] if single else list(stacked)


def finish_row(
    row: torch.Tensor,
    *,
    normalize: bool = True,
    truncate_dim: int | None = None,
    precision: Literal["float32", "binary", "ubinary"] = "float32",
    layered: bool = False,
) -> np.ndarray:
    """One raw row post-processed as :func:`finish` does, as a numpy array (for streams: no int8/uint8, which need
    calibration over a set)."""
    out = finish(
        [row],
        dimension=row.shape[-1],
        single=True,
        normalize=normalize,
        truncate_dim=truncate_dim,
        precision=precision,
        layered=layered,
    )
    assert isinstance(out, np.ndarray)
    return out


def token_output(
    output: dict[str, torch.Tensor], output_value: str | None, normalize: bool, truncate_dim: int | None
) -> torch.Tensor | dict[str, torch.Tensor]:
    """One item's ``encode(output_value=...)`` result from its token states (the last real token is the
    embedding): the ``[tokens, d]`` states, or sentence-transformers' dict of them."""
    if output_value == "token_embeddings":
        return output["token_embeddings"]
    sentence = torch.from_numpy(truncate_normalize(output["token_embeddings"][-1].numpy(), truncate_dim, normalize))
    return {
        "sentence_embedding": sentence,
        "token_embeddings": output["token_embeddings"],
        "input_ids": output["input_ids"],
        "attention_mask": torch.ones_like(output["input_ids"]),
    }
