"""What cutting items into segments needs of the model that embeds them, as one value: the segments layer sits
below the pipeline, so the pipeline's featurizer hands it these values (:meth:`Featurizer.cut_context
<lco_embedding.pipeline.featurize.Featurizer.cut_context>`) rather than itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lco_embedding.inputs.parse import AudioInVideo
    from lco_embedding.preprocessing.audio import AudioOptions

__all__ = ["CutContext"]


@dataclass(frozen=True)
class CutContext:
    """What :func:`~lco_embedding.segments.split.split_item` needs to cut an item.

    Attributes:
        tokenizer: The checkpoint's tokenizer (text windows are counted in its tokens).
        sound: The sound's preprocessor options (its sampling rate, download limits).
        use_audio_in_video: Whether videos are cut with their sound (the call's setting; an item's own key wins).
        bounds: The settings that bound a window (the modality table's ``window_limit``: ``max_length``,
            ``max_audio_seconds``) -> their values (None: unbounded).
        options_for: ``(modality, item budgets) -> preprocessor options``, the item's budgets applied and checked.
    """

    tokenizer: Any
    sound: AudioOptions
    use_audio_in_video: AudioInVideo
    bounds: Mapping[str, float | None]
    options_for: Callable[[str, dict[str, Any] | None], Any]
