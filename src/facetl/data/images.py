"""Decoding any common image format to RGB, and resizing it the same way everywhere."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# A decoded image is held in memory whole; this stops a decompression bomb from filling it.
Image.MAX_IMAGE_PIXELS = 100_000_000
WIDE_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # PIL's modes of 16-bit grayscale


class ImageDecodeError(ValueError):
    """The bytes are not an image we can fully decode; `status` says which way it failed."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status  # "not_an_image" (HTML, unknown format), "corrupt_image", "too_large"


def decode_image(data: bytes) -> np.ndarray:
    """Decode bytes to an (H, W, 3) uint8 RGB array, upright as a viewer shows it.

    The format is sniffed from the content, not the file name (PNG data named .jpg is common).
    Grayscale (8 or 16 bits), palette, RGBA and CMYK become RGB; an animation gives its first
    frame; a camera's EXIF orientation is applied (a face lying on its side is not found);
    truncated files are errors, not grey padding, and so is a photo of more pixels than
    `Image.MAX_IMAGE_PIXELS`, refused from its header before its pixels fill memory.
    """
    try:
        with warnings.catch_warnings():  # PIL's warning on size: refused below, with a reason
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width * height > Image.MAX_IMAGE_PIXELS:
                raise ImageDecodeError(
                    f"{width} x {height} pixels is over the limit of "
                    f"{Image.MAX_IMAGE_PIXELS:,}; resize the photo to fewer pixels", "too_large")
            image.load()
            array = rgb_array(upright(image))
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(str(exc), "not_an_image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(str(exc), "too_large") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(str(exc) or type(exc).__name__, "corrupt_image") from exc
    if array.ndim != 3 or min(array.shape[:2]) == 0:
        raise ImageDecodeError(f"empty image of shape {array.shape}", "corrupt_image")
    return array


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation tag says (phones store photos sideways with
    such a tag); unchanged, without a copy, when it has none or the EXIF block is unreadable."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, TypeError):  # a damaged EXIF block: the pixels stand
        return image
    return ImageOps.exif_transpose(image) if orientation in range(2, 9) else image


def rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8. 16-bit grayscale (PNG, TIFF) is scaled to 8 bits: PIL's own conversion
    clips it at 255, which turns almost every such photo white."""
    if image.mode in WIDE_GRAY:
        wide = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # x / 257, rounded
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


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
