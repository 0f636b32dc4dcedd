"""Image preprocessing: load from any source, convert to RGB, resize to the pixel budget.

The resize is qwen-omni-utils' ``fetch_image`` (``smart_resize`` to multiples of 28 within
``[min_pixels, max_pixels]``), the reference behaviour. Pillow's decompression-bomb guard stays on: an image
above ``PIL.Image.MAX_IMAGE_PIXELS * 2`` is refused; anything smaller is downscaled by the budget before it
reaches the model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lco_embedding.errors import LCOInputError
from lco_embedding.preprocessing.sources import is_reference, read_bytes

__all__ = ["ImageOptions", "load_image", "preprocess_image", "array_to_image"]


@dataclass(frozen=True)
class ImageOptions:
    """How images are sized for the model.

    Attributes:
        min_pixels: Smallest pixel count after resizing (qwen-omni-utils default: 4 tokens = 4*28*28).
        max_pixels: Largest pixel count after resizing. Default 1280*28*28 (1,280 visual tokens), as in the
            authors' evaluation; the processor's own default allows 16,384 tokens per image.
        patch_size: The vision encoder's patch size (14 for Qwen2.5 models); sizes are multiples of 2x it.
    """

    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 1280 * 28 * 28
    patch_size: int = 14

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"image pixels need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}."
            )


def array_to_image(array: np.ndarray | torch.Tensor) -> Image.Image:
    """Turn an HWC / HW array or CHW tensor (uint8, or float in [0, 1]) into a PIL image."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            array = array.permute(1, 2, 0)
        array = array.numpy()
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise LCOInputError(
            f"an image array must be HxW, HxWx3 or HxWx4 (or a CxHxW tensor), got shape {tuple(array.shape)}."
        )
    if array.size == 0:
        raise LCOInputError(f"the image array is empty (shape {tuple(array.shape)}).")
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise LCOInputError("the image array holds NaN or infinite values.")
        if array.min() < 0 or array.max() > 1:
            raise LCOInputError(
                f"a float image array must hold values in [0, 1], got [{array.min():.3g}, {array.max():.3g}]; "
                "pass uint8 for 0-255 data."
            )
        array = np.round(array * 255).astype(np.uint8)
    return Image.fromarray(array)


def load_image(source: Any) -> Image.Image:
    """Load an image from a path, URL, data URI, bytes, PIL image or array, fully decoded, in RGB.

    RGBA is composited over white, as qwen-omni-utils does.

    Raises:
        LCOInputError: Missing file, unreachable URL, undecodable data, decompression bomb, bad array.
    """
    from qwen_omni_utils.v2_5.vision_process import to_rgb

    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray | torch.Tensor):
        image = array_to_image(source)
    elif isinstance(source, bytes | bytearray) or is_reference(source):
        data = read_bytes(source)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Image.DecompressionBombError as e:
            raise LCOInputError(
                f"image refused by Pillow's decompression-bomb guard ({e}). If you trust the file, raise "
                "PIL.Image.MAX_IMAGE_PIXELS before encoding."
            ) from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise LCOInputError(
                f"cannot decode the image ({type(e).__name__}: {e}); the data is corrupt or not an image."
            ) from e
    else:
        raise LCOInputError(
            f"an image must be a path, URL, data URI, bytes, PIL image or array, got {type(source).__name__}."
        )
    return to_rgb(image)


def preprocess_image(source: Any, options: ImageOptions = ImageOptions()) -> Image.Image:
    """Load an image and resize it to the pixel budget, exactly as the reference pipeline does.

    Returns:
        An RGB PIL image whose sides are multiples of ``2 * patch_size``.

    Raises:
        LCOInputError: If the image cannot be loaded, or its aspect ratio exceeds 200:1.
    """
    from qwen_omni_utils.v2_5.vision_process import fetch_image

    image = load_image(source)
    try:
        return fetch_image(
            {"image": image, "min_pixels": options.min_pixels, "max_pixels": options.max_pixels},
            image_patch_size=options.patch_size,
        )
    except ValueError as e:
        raise LCOInputError(f"cannot resize the image of size {image.size}: {e}.") from e
