"""Image preprocessing: load from any source, convert to RGB, resize to the pixel budget.

The resize is qwen-omni-utils' ``fetch_image`` (``smart_resize`` to multiples of 28 within
``[min_pixels, max_pixels]``), the reference behaviour. Decoding is bounded: the header is read first (Pillow opens
lazily), and an image above ``max_image_pixels`` (default 64 M pixels, far below Pillow's decompression-bomb
guard) is refused before any pixel is decoded; images decode one budget of pixels at a time per process, so
worker threads cannot decode several huge images at once.

Colour: RGBA is composited over white, as qwen-omni-utils does, and so is every other mode with transparency
(LA, La, PA, P or L/RGB with a transparent colour), which the reference turns black instead. 16-bit and 32-bit
integer images are scaled to 8 bits by their range (``I;16`` / 65535 -> 255, i.e. / 257; ``I`` likewise when its
values fit 16 bits, else by its min..max), float images (``F``) by ×255 when they lie in [0, 1], as they are in
[0, 255], else by their min..max — the reference saturates them. CMYK is converted through the file's embedded ICC
profile when it has one, LAB colorimetrically; other modes with Pillow's ``convert("RGB")``. RGB and RGBA images,
what nearly every file holds, come out exactly as in the reference.
"""

from __future__ import annotations

import io
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.pdf import PdfPage, render_page
from lco_embedding.preprocessing.sources import ReadLimits, is_file_object, is_reference, read_bytes

__all__ = ["MAX_IMAGE_PIXELS", "ImageOptions", "load_image", "preprocess_image", "array_to_image", "to_rgb"]

MAX_IMAGE_PIXELS = 64_000_000
"""Default ``max_image_pixels``: the largest image (in pixels, before resizing) that is decoded."""


@dataclass(frozen=True)
class ImageOptions:
    """How images are sized for the model.

    Attributes:
        min_pixels: Smallest pixel count after resizing (qwen-omni-utils default: 4 tokens = 4*28*28).
        max_pixels: Largest pixel count after resizing. Default 1280*28*28 (1,280 visual tokens), as in the
            authors' evaluation; the processor's own default allows 16,384 tokens per image.
        patch_size: The vision encoder's patch size (14 for Qwen2.5 models); sizes are multiples of 2x it.
        max_image_pixels: Images with more pixels than this (width x height, before resizing) are refused before
            they are decoded. Default 64 M.
        limits: How long and how large a URL download may be.
    """

    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 1280 * 28 * 28
    patch_size: int = 14
    max_image_pixels: int = MAX_IMAGE_PIXELS
    limits: ReadLimits = field(default_factory=ReadLimits)

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"image pixels need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}."
            )
        if not isinstance(self.max_image_pixels, int) or self.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels must be a positive integer, got {self.max_image_pixels!r}.")


def array_to_image(array: np.ndarray | torch.Tensor) -> Image.Image:
    """Turn an HWC / HW array or CHW tensor (uint8, or float in [0, 1]) into a PIL image."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            array = array.permute(1, 2, 0)
        array = array.numpy()
    if np.iscomplexobj(array):
        raise LCOInputError(
            "the image array holds complex numbers; pass real pixel values (uint8, or floats in [0, 1])."
        )
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise LCOInputError(
            f"an image array must be HxW, HxWx3 or HxWx4 (or a CxHxW tensor), got shape {tuple(array.shape)}."
        )
    if array.size == 0:
        raise LCOInputError(f"the image array is empty (shape {tuple(array.shape)}).")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
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


class _DecodeBudget:
    """Pixels being decoded at once in this process: an image waits while others hold the budget (one image
    larger than the whole budget still decodes, alone)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._held = 0

    @contextmanager
    def hold(self, pixels: int, budget: int) -> Iterator[None]:
        with self._condition:
            while self._held and self._held + pixels > budget:
                self._condition.wait()
            self._held += pixels
        try:
            yield
        finally:
            with self._condition:
                self._held -= pixels
                self._condition.notify_all()


_DECODING = _DecodeBudget()


def _open(source: Any, options: ImageOptions) -> Image.Image:
    """The image behind ``source``, header read but pixels not yet decoded (for files and bytes); a PDF page
    rendered at the budget (:func:`~lco_embedding.preprocessing.pdf.render_page`)."""
    limits = options.limits
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, PdfPage):
        return render_page(source, options.max_pixels, limits)
    if isinstance(source, np.ndarray | torch.Tensor):
        return array_to_image(source)
    if isinstance(source, bytes | bytearray) or is_reference(source) or is_file_object(source):
        data = read_bytes(source, limits=limits)
        try:
            with warnings.catch_warnings():  # the size is checked against max_image_pixels right after
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise LCOInputError(
                f"image refused by Pillow's decompression-bomb guard ({e}). If you trust the file, raise "
                "PIL.Image.MAX_IMAGE_PIXELS and max_image_pixels before encoding."
            ) from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise LCOInputError(
                f"cannot decode the image ({type(e).__name__}: {_reason(e)}); the data is corrupt or not an image. If "
                "it is audio or video, say so: {'audio': data} or {'video': data}."
            ) from e
    raise LCOInputError(
        f"an image must be a path, URL, data URI, bytes, PIL image or array, got {type(source).__name__}."
    )


def _reason(error: BaseException) -> str:
    """Pillow's message without the repr of the in-memory file it was given (``<_io.BytesIO object at 0x...>``)."""
    return re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(error))


def _check_size(image: Image.Image, max_image_pixels: int) -> int:
    width, height = image.size
    if width == 0 or height == 0:
        raise LCOInputError(f"the image is empty ({width}x{height} pixels).")
    pixels = width * height
    if pixels > max_image_pixels:
        raise LCOInputError(
            f"the image is {width}x{height} = {pixels:,} pixels, above the limit of {max_image_pixels:,} "
            "(max_image_pixels): refused before decoding. Downscale it first, or raise max_image_pixels."
        )
    return pixels


def load_image(source: Any, options: ImageOptions | None = None) -> Image.Image:
    """Load an image from a path, URL, data URI, bytes, PIL image or array, fully decoded, in RGB (see the module
    docstring for the colour conversions).

    Raises:
        LCOInputError: Missing file, unreachable URL, undecodable data, an image above ``max_image_pixels``, bad
            array.
    """
    options = options or ImageOptions()
    image = _open(source, options)
    pixels = _check_size(image, options.max_image_pixels)
    with _DECODING.hold(pixels, options.max_image_pixels):
        return _decoded_rgb(image)


def _decoded_rgb(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except Image.DecompressionBombError as e:
        raise LCOInputError(f"image refused by Pillow's decompression-bomb guard ({e}).") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise LCOInputError(
            f"cannot decode the image ({type(e).__name__}: {e}); the data is corrupt or truncated."
        ) from e
    return to_rgb(image)


_WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """An RGB version of ``image``: transparency composited over white, high bit depths scaled by their range,
    CMYK through its ICC profile, LAB colorimetrically (see the module docstring)."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _to_8_bit(image)
    if _has_transparency(image):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.split()[3])  # qwen-omni-utils' compositing, for every mode
        return background
    if image.mode == "CMYK" and image.info.get("icc_profile"):
        return _through_profile(image, image.info["icc_profile"])
    if image.mode == "LAB":
        from PIL import ImageCms

        transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        return ImageCms.applyTransform(image, transform)
    return image.convert("RGB")


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info


def _through_profile(image: Image.Image, profile: bytes) -> Image.Image:
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image.convert("RGB")  # a broken profile: the plain conversion


def _to_8_bit(image: Image.Image) -> Image.Image:
    """A 16/32-bit integer or float single-channel image as 8-bit grayscale (``L``), scaled by its range."""
    array = np.asarray(image)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise LCOInputError("the image holds NaN or infinite pixel values.")
        low, high = float(array.min()), float(array.max())
        if low >= 0 and high <= 1:
            scaled = array * 255.0
        elif low >= 0 and high <= 255:
            scaled = array
        else:
            scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    else:
        low, high = int(array.min()), int(array.max())
        if image.mode.startswith("I;16") or (low >= 0 and high <= 65535):
            scaled = array.astype(np.float64) / 257.0
        else:
            scaled = (array.astype(np.float64) - low) * (255.0 / (high - low)) if high > low else np.zeros(array.shape)
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")


def preprocess_image(source: Any, options: ImageOptions = ImageOptions()) -> Image.Image:
    """Load an image and resize it to the pixel budget, exactly as the reference pipeline does.

    Returns:
        An RGB PIL image whose sides are multiples of ``2 * patch_size``.

    Raises:
        LCOInputError: If the image cannot be loaded, is above ``max_image_pixels``, or its aspect ratio exceeds
            200:1.
    """
    from qwen_omni_utils.v2_5.vision_process import fetch_image

    image = _open(source, options)
    pixels = _check_size(image, options.max_image_pixels)
    with _DECODING.hold(pixels, options.max_image_pixels):  # held until the decoded original is resized away
        image = _decoded_rgb(image)
        try:
            return fetch_image(
                {"image": image, "min_pixels": options.min_pixels, "max_pixels": options.max_pixels},
                image_patch_size=options.patch_size,
            )
        except ValueError as e:
            raise LCOInputError(f"cannot resize the image of size {image.size}: {e}.") from e
