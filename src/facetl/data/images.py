"""Decoding any common image format to RGB, and resizing it the same way everywhere."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

# A decoded image is held in memory whole; this stops a decompression bomb from filling it.
Image.MAX_IMAGE_PIXELS = 100_000_000


class ImageDecodeError(ValueError):
    """The bytes are not an image we can fully decode; `status` says which way it failed."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status  # "not_an_image" (HTML, unknown format), "corrupt_image", "too_large"


def decode_image(data: bytes) -> np.ndarray:
    """Decode bytes to an (H, W, 3) uint8 RGB array.

    The format is sniffed from the content, not the file name (PNG data named .jpg is common).
    Grayscale, palette, RGBA and CMYK become RGB; truncated files are errors, not grey padding.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            rgb = image.convert("RGB")
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(str(exc), "not_an_image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(str(exc), "too_large") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(str(exc) or type(exc).__name__, "corrupt_image") from exc
    array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or min(array.shape[:2]) == 0:
        raise ImageDecodeError(f"empty image of shape {array.shape}", "corrupt_image")
    return array


def read_image(path: str | Path) -> np.ndarray:
    return decode_image(Path(path).read_bytes())


def image_format(data: bytes) -> str:
    """The real format's usual file extension ("jpg", "png", ...), from the content."""
    with Image.open(io.BytesIO(data)) as image:
        fmt = (image.format or "img").lower()
    return {"jpeg": "jpg", "tiff": "tif"}.get(fmt, fmt)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size like the chapter (aspect not kept); area filter when shrinking."""
    height, width = image.shape[:2]
    shrinking = size < min(height, width)
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def mirror_image(image: np.ndarray) -> np.ndarray:
    """Left-right flip of an (H, W, C) image, or of a batch (N, H, W, C)."""
    return image[..., :, ::-1, :]
