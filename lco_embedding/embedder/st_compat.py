"""The sentence-transformers surface of :class:`~lco_embedding.LCOEmbedder`: the attributes and methods that
``SentenceTransformer`` users reach for, with the same names and behaviour.

``encode`` with sentence-transformers' keywords, defaults and typed return shapes (its overloads; the embedder's
``_encode`` does the work), ``max_seq_length``, ``tokenizer``, ``similarity_fn_name`` / ``similarity`` /
``similarity_pairwise``, ``get_embedding_dimension`` and the deprecated ``get_sentence_embedding_dimension``,
``encode_query`` / ``encode_document``, ``.to()`` / ``.half()`` / ``.bfloat16()`` / ``.float()``.
``tests/integrations/test_sentence_transformers.py`` checks each against ``SentenceTransformer`` itself.

Does not hold state of its own: everything lives on the embedder (``max_length``, ``processor``, ``model``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch

if TYPE_CHECKING:
    from lco_embedding.core.precision import Precision
    from lco_embedding.core.types import SingleInput

__all__ = ["SentenceTransformerSurface"]

SimilarityName = Literal["cosine", "dot", "euclidean", "manhattan"]
SIMILARITY_FN_NAMES: tuple[str, ...] = ("cosine", "dot", "euclidean", "manhattan")


class SentenceTransformerSurface:
    """Mixed into :class:`~lco_embedding.LCOEmbedder`; expects ``model``, ``processor``, ``max_length``,
    ``truncate_dim``, ``prompts``, ``dimension`` and ``_encode``."""

    model: torch.nn.Module
    processor: Any
    max_length: int | None
    truncate_dim: int | None
    prompts: dict[str, str]
    dimension: int
    _similarity_fn_name: SimilarityName = "cosine"

    def _encode(self, inputs: Any, **keywords: Any) -> Any:  # pragma: no cover - provided by LCOEmbedder
        raise NotImplementedError

    @overload
    def encode(self, inputs: SingleInput, prompt_name: str | None = ..., prompt: str | None = ...,
               batch_size: int = ..., show_progress_bar: bool | None = ...,
               output_value: Literal["sentence_embedding"] = ..., precision: Precision = ...,
               convert_to_numpy: Literal[True] = ..., convert_to_tensor: Literal[False] = ...,
               device: str | None = ..., normalize_embeddings: bool = ..., truncate_dim: int | None = ...,
               **kwargs: Any) -> np.ndarray: ...  # fmt: skip
    @overload
    def encode(self, inputs: SingleInput | Iterable[SingleInput], prompt_name: str | None = ...,
               prompt: str | None = ..., batch_size: int = ..., show_progress_bar: bool | None = ...,
               output_value: Literal["sentence_embedding"] = ..., precision: Precision = ...,
               convert_to_numpy: bool = ..., convert_to_tensor: Literal[True] = ..., device: str | None = ...,
               normalize_embeddings: bool = ..., truncate_dim: int | None = ...,
               **kwargs: Any) -> torch.Tensor: ...  # fmt: skip
    @overload
    def encode(self, inputs: Iterable[SingleInput], prompt_name: str | None = ..., prompt: str | None = ...,
               batch_size: int = ..., show_progress_bar: bool | None = ...,
               output_value: Literal["sentence_embedding"] = ..., precision: Precision = ...,
               convert_to_numpy: Literal[False] = ..., convert_to_tensor: Literal[False] = ...,
               device: str | None = ..., normalize_embeddings: bool = ..., truncate_dim: int | None = ...,
               **kwargs: Any) -> list[torch.Tensor]: ...  # fmt: skip
    @overload
    def encode(self, inputs: Iterable[SingleInput], prompt_name: str | None = ..., prompt: str | None = ...,
               batch_size: int = ..., show_progress_bar: bool | None = ...,
               output_value: Literal["sentence_embedding"] = ..., precision: Precision = ...,
               convert_to_numpy: Literal[True] = ..., convert_to_tensor: Literal[False] = ...,
               device: str | None = ..., normalize_embeddings: bool = ..., truncate_dim: int | None = ...,
               **kwargs: Any) -> np.ndarray: ...  # fmt: skip

    def encode(
        self,
        inputs: Any,
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
        **kwargs: Any,
    ) -> Any:
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
            show_progress_bar: Default: shown when the embedder logs at INFO or lower.
            output_value: ``"sentence_embedding"`` (default); ``"token_embeddings"``: a list of ``[tokens, d]``
                tensors, each item's final hidden states over its real tokens (template and prompt included, no
                padding, not normalised); ``None``: a list of dicts, one per item, with ``sentence_embedding``,
                ``token_embeddings``, ``input_ids`` and ``attention_mask``, as sentence-transformers returns them.
            precision: ``"float32"``, or ``"int8"``/``"uint8"``/``"binary"``/``"ubinary"`` quantized with
                sentence-transformers' ``quantize_embeddings``.
            convert_to_numpy: Return a numpy array (default) rather than a list of tensors.
            convert_to_tensor: Return one torch tensor (wins over ``convert_to_numpy``).
            device: Move the model to this device first.
            normalize_embeddings: L2-normalise the embeddings (default True).
            truncate_dim: Keep the first ``truncate_dim`` dimensions (before normalisation).
            **kwargs: The other fields of :class:`~lco_embedding.pipeline.options.EncodeOptions`: ``modality``
                (force the modality of bare items), ``on_error`` (``"raise"``, default: the first item's
                :class:`LCOInputError` or :class:`LCOEmbeddingError`; ``"skip"``: failed items are left out and
                logged), ``output_layers`` (``"all"`` or hidden-state indices: ``[n, len(layers), d]``),
                ``max_tokens_per_batch``, ``num_workers``, ``use_audio_in_video``, ``segment`` (a
                :class:`~lco_embedding.segments.SegmentSpec`: returns ``Segments``); and ``report`` (an
                :class:`~lco_embedding.EncodeReport` filled with the input position of every returned row,
                the skipped items' reasons and the engine's counters). An unknown keyword raises ``ValueError``
                naming the closest valid one, so a typo such as ``normalise_embeddings`` never passes silently.

        Returns:
            ``[n, d]`` for a list (``[d]`` for a single input) as numpy array, tensor, or list of tensors; see
            ``output_value`` for token embeddings and dicts.

        Raises:
            LCOInputError: A bad item (message names its index), with ``on_error="raise"``.
            LCOEmbeddingError: An item the model cannot embed, with ``on_error="raise"``.
            ValueError: Bad arguments, or an unknown keyword argument.

        Example:
            >>> model.encode("a cat on a mat").shape
            (64,)
            >>> model.encode(["a cat", {"image": cat_png}], convert_to_tensor=True).shape
            torch.Size([2, 64])
        """
        return self._encode(
            inputs,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            output_value=output_value,
            precision=precision,
            convert_to_numpy=convert_to_numpy,
            convert_to_tensor=convert_to_tensor,
            device=device,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            **kwargs,
        )

    # ------------------------------------------------------------------------------------------- attributes
    @property
    def max_seq_length(self) -> int | None:
        """User text is cut to this many tokens before the prompt is built (``max_length``; None: not cut). As in
        sentence-transformers, settable: ``model.max_seq_length = 512``."""
        return self.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"max_seq_length must be a positive integer or None, got {value!r}.")
        self.max_length = value

    @property
    def tokenizer(self) -> Any:
        """The checkpoint's tokenizer (``processor.tokenizer``)."""
        return self.processor.tokenizer

    @property
    def similarity_fn_name(self) -> SimilarityName:
        """The similarity :meth:`similarity` computes: ``"cosine"`` (the model's; default), ``"dot"``,
        ``"euclidean"`` or ``"manhattan"`` (negative distances), as in sentence-transformers."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        name = getattr(value, "value", value)  # sentence-transformers' SimilarityFunction enum, or its name
        if name not in SIMILARITY_FN_NAMES:
            raise ValueError(f"similarity_fn_name must be one of {', '.join(SIMILARITY_FN_NAMES)}, got {value!r}.")
        self._similarity_fn_name = name

    def similarity(self, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Similarity (``similarity_fn_name``, cosine by default) of every row of ``a`` with every row of ``b``:
        ``[len(a), len(b)]``."""
        from sentence_transformers.util import SimilarityFunction

        return SimilarityFunction.to_similarity_fn(self._similarity_fn_name)(a, b)

    def similarity_pairwise(self, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Similarity (``similarity_fn_name``) of ``a[i]`` with ``b[i]``: ``[len(a)]``."""
        from sentence_transformers.util import SimilarityFunction

        return SimilarityFunction.to_similarity_pairwise_fn(self._similarity_fn_name)(a, b)

    def get_embedding_dimension(self) -> int:
        """The size of the embeddings ``encode`` returns (``truncate_dim`` if set)."""
        return min(self.truncate_dim, self.dimension) if self.truncate_dim else self.dimension

    def get_sentence_embedding_dimension(self) -> int:
        """Deprecated (as in sentence-transformers 6): use :meth:`get_embedding_dimension`."""
        warnings.warn(
            "The `get_sentence_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
            FutureWarning,
            stacklevel=2,
        )
        return self.get_embedding_dimension()

    # ---------------------------------------------------------------------------------------- device, dtype
    def to(self, *args: Any, **kwargs: Any) -> SentenceTransformerSurface:
        """Move the model to a device and/or dtype, as ``torch.nn.Module.to``: ``model.to("cuda")``,
        ``model.to(torch.bfloat16)``. Returns the embedder."""
        self.model.to(*args, **kwargs)
        return self

    def half(self) -> SentenceTransformerSurface:
        """Cast the weights to float16 (prone to overflow on CPU: NaN embeddings are then refused). Returns self."""
        return self.to(torch.float16)

    def bfloat16(self) -> SentenceTransformerSurface:
        """Cast the weights to bfloat16. Returns the embedder."""
        return self.to(torch.bfloat16)

    def float(self) -> SentenceTransformerSurface:
        """Cast the weights to float32. Returns the embedder."""
        return self.to(torch.float32)

    # ---------------------------------------------------------------------------------------------- encode
    def encode_query(self, inputs: SingleInput | Iterable[SingleInput], **kwargs: Any) -> Any:
        """``encode`` with the ``"query"`` prompt when ``prompts`` has one and no prompt is given."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(inputs, **kwargs)

    def encode_document(self, inputs: SingleInput | Iterable[SingleInput], **kwargs: Any) -> Any:
        """``encode`` with the ``"document"`` prompt when ``prompts`` has one and no prompt is given."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None and "document" in self.prompts:
            kwargs["prompt_name"] = "document"
        return self.encode(inputs, **kwargs)
