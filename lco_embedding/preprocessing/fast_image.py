"""``preprocessing="fast"`` for images: one torch resize, straight to the size the reference pipeline ends at.

The reference resizes twice: qwen-omni-utils' ``fetch_image`` with Pillow, to ``smart_resize`` of the embedder's
``[min_pixels, max_pixels]``, then the checkpoint's image processor, in torch, to ``smart_resize`` of *its own*
limits (``preprocessor_config.json``; a no-op when they contain the embedder's). :class:`FastImageLoader` computes
both sizes from the decoded image's size, resizes once with the processor's own torch resize (its interpolation,
antialiased, on the processor's device when it has one), and hands the processor an image it need not resize: the
same grid (``image_grid_thw``) and token count as the reference for every checkpoint, only the resampling filter
differs (docs/performance.md#fast-preprocessing).

Does not apply to image processors without a torch backend or without Qwen-VL's dynamic resolution: the reference
loader is used for them (same embeddings as ``preprocessing="reference"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.image import ImageOptions, load_image

__all__ = ["FastImageLoader"]


class FastImageLoader:
    """Loads images for the fast mode (see the module).

    Args:
        image_processor: The checkpoint's image processor (a Qwen-VL image processor with a torch backend).
        device: Where the resize runs (the model's CUDA device), or None for the CPU.
    """

    PROCESSOR_SETTINGS = {"do_resize": False}
    """The processor's image settings for images this loader gives: already at their final size."""

    def __init__(self, image_processor: Any, device: Any = None) -> None:
        self.image_processor = image_processor
        self.device = device

    @staticmethod
    def supports(image_processor: Any) -> bool:
        """True for a Qwen-VL image processor with a torch backend (the checkpoints LCO-Embedding builds on)."""
        try:
            from transformers.image_processing_backends import TorchvisionBackend
            from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
        except ImportError:
            return False
        return isinstance(image_processor, Qwen2VLImageProcessor) and isinstance(image_processor, TorchvisionBackend)

    def target_size(self, height: int, width: int, options: ImageOptions) -> tuple[int, int]:
        """The ``(height, width)`` the reference pipeline ends at for an image of ``height x width``.

        Raises:
            LCOInputError: The image cannot be resized (aspect ratio above 200:1).
        """
        from qwen_omni_utils.v2_5.vision_process import SPATIAL_MERGE_SIZE
        from qwen_omni_utils.v2_5.vision_process import smart_resize as omni_resize
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as processor_resize

        processor = self.image_processor
        try:
            first = omni_resize(
                height,
                width,
                factor=options.patch_size * SPATIAL_MERGE_SIZE,
                min_pixels=options.min_pixels,
                max_pixels=options.max_pixels,
            )
            return processor_resize(
                *first,
                factor=processor.patch_size * processor.merge_size,
                min_pixels=processor.size["shortest_edge"],
                max_pixels=processor.size["longest_edge"],
            )
        except ValueError as e:
            raise LCOInputError(f"cannot resize the image of size {(width, height)}: {e}.") from e

    def __call__(self, source: Any, options: ImageOptions) -> torch.Tensor:
        """The image behind ``source``, decoded (bounded as :func:`~lco_embedding.preprocessing.image.load_image`)
        and resized to its final size: a ``(3, H, W)`` uint8 tensor.

        Raises:
            LCOInputError: As ``load_image``, or an image that cannot be resized.
        """
        from transformers.image_processing_backends import TorchvisionBackend
        from transformers.image_utils import SizeDict

        image = load_image(source, options)
        height, width = self.target_size(image.height, image.width, options)
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        if self.device is not None:
            pixels = pixels.to(self.device, non_blocking=True)
        resize = TorchvisionBackend.resize  # the processor's own resize, without its second smart_resize
        resample = self.image_processor.resample
        return resize(self.image_processor, pixels, SizeDict(height=height, width=width), resample=resample)
