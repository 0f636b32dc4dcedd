"""One featurized item: its processor outputs and its exact length in tokens (what the planner needs).

The currency between the stages: featurize makes it (:mod:`.featurize`, :mod:`.text_batch`), the planner reads
its length (:mod:`.batching`), collate pads it (:mod:`.collate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Features"]


@dataclass
class Features:
    """One item's processor outputs (batch dimension 1) and its sequence length in tokens.

    Attributes:
        index: Position of the item in the inputs of the call.
        inputs: The processor's outputs for this item alone (``input_ids``, ``attention_mask``, ``pixel_values``,
            ``image_grid_thw``, ``input_features``, ...).
        length: Tokens the language model sees for this item: text tokens plus the expanded image, audio and
            video placeholders (image tokens from the resized grid, audio tokens from the duration, video tokens
            from sampled frames x grid).
        audio_in_video: Its videos' sound tracks are interleaved with their frames (``use_audio_in_video``): the
            model's rotary positions are computed with that flag for this item.
        cut: What preprocessing cut from the item (:mod:`lco_embedding.core.notes`: a text cut at ``max_length``,
            seconds of sound past ``max_audio_seconds``, videos whose frames were sampled); empty when nothing was.
    """

    index: int
    inputs: dict[str, Any]
    length: int
    audio_in_video: bool = False
    cut: dict[str, float] = field(default_factory=dict)
