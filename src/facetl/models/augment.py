"""Random augmentation of uint8 image batches, with 2-D points that follow the image.

It runs in the data loader on numpy arrays (OpenCV does the pixel work), so it is the same
under every Keras backend. Per image, in this order:

1. geometry: one affine (horizontal flip, rotation about the centre, scale, shift) applied
   with a single `cv2.warpAffine`, so the pixels are resampled once; points (x, y in pixels)
   get the same affine, and a flip also swaps left and right points (`mirror`);
2. colour: brightness, contrast, saturation, and sometimes grayscale;
3. resolution: sometimes downscaled and upscaled back (a small photo enlarged), blurred, or
   JPEG-compressed, the blemishes real face photos carry.

Settings are all off by default, which leaves the images as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype="float32")  # ITU-R BT.601, as JPEG uses
PROBABILITIES = ("grayscale_p", "downscale_p", "blur_p", "jpeg_p")
MAGNITUDES = ("rotate_deg", "scale", "shift", "brightness", "contrast", "saturation",
              "blur_sigma")


@dataclass(frozen=True)
class AugmentSettings:
    """How strongly to augment; each random amount is drawn uniformly per image.

    `scale` 0.1 draws a zoom factor in [0.9, 1.1]; `shift` is a fraction of the side;
    `brightness`, `contrast` and `saturation` 0.2 draw factors in [0.8, 1.2]. The `*_p` fields
    are per-image probabilities: downscaling by a factor in [downscale_min, 1), a Gaussian blur
    with sigma in [blur_sigma / 2, blur_sigma], JPEG at a quality in [jpeg_quality_min, 100].
    """

    flip: bool = False
    rotate_deg: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    grayscale_p: float = 0.0
    downscale_p: float = 0.0
    downscale_min: float = 0.5
    blur_p: float = 0.0
    blur_sigma: float = 1.0
    jpeg_p: float = 0.0
    jpeg_quality_min: int = 30

    def __post_init__(self) -> None:
        for name in PROBABILITIES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} is a probability in [0, 1], "
                                 f"got {getattr(self, name)}")
        for name in MAGNITUDES:
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0, got {getattr(self, name)}")
        if self.scale >= 1:
            raise ValueError(f"augment.scale must be below 1 (factor 1 ± scale), got {self.scale}")
        if not 0.0 < self.downscale_min <= 1.0:
            raise ValueError(f"augment.downscale_min must be in (0, 1], got {self.downscale_min}")
        if not 1 <= self.jpeg_quality_min <= 100:
            raise ValueError(f"augment.jpeg_quality_min must be in [1, 100], "
                             f"got {self.jpeg_quality_min}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> AugmentSettings:
        """Settings from a params.yaml section; a misspelt key fails instead of doing nothing."""
        allowed = [field.name for field in fields(cls)]
        for key in params or {}:
            if key not in allowed:
                raise ValueError(f"unknown augment setting {key!r}; allowed: {', '.join(allowed)}")
        return cls(**(params or {}))

    @property
    def geometric(self) -> bool:
        return self.flip or any((self.rotate_deg, self.scale, self.shift))

    @property
    def photometric(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.grayscale_p))


def random_affine(rng: np.random.Generator, settings: AugmentSettings, height: int,
                  width: int) -> tuple[np.ndarray, bool]:
    """A 2x3 pixel-coordinate affine and whether it flips.

    Pixel centres sit at integer coordinates, so flipping maps x to width - 1 - x (as
    `cv2.flip` does) and the centre of rotation and scaling is ((width - 1) / 2, (height - 1) / 2).
    """
    flipped = bool(settings.flip and rng.random() < 0.5)
    angle = np.deg2rad(rng.uniform(-settings.rotate_deg, settings.rotate_deg))
    zoom = 1.0 + rng.uniform(-settings.scale, settings.scale)
    shift = rng.uniform(-settings.shift, settings.shift, size=2) * (width, height)
    cos, sin = np.cos(angle), np.sin(angle)
    linear = zoom * np.array([[cos, -sin], [sin, cos]]) @ np.diag([-1.0 if flipped else 1.0, 1.0])
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    return np.column_stack([linear, centre + shift - linear @ centre]), flipped


def _check_mirror(mirror: np.ndarray | None, points: int) -> np.ndarray:
    if mirror is None:
        raise ValueError("flipping points needs `mirror`, the permutation that swaps left and "
                         "right point indices (e.g. facetl's flip.MIRROR for 68 iBUG points)")
    mirror = np.asarray(mirror)
    if sorted(mirror.tolist()) != list(range(points)):
        raise ValueError(f"`mirror` must be a permutation of 0..{points - 1}, got {mirror}")
    return mirror


def _geometry(images: np.ndarray, rng: np.random.Generator, settings: AugmentSettings,
              points: np.ndarray | None, mirror: np.ndarray | None) -> None:
    """Warps `images` (and moves `points`) in place; borders reflect (cv2.BORDER_REFLECT_101)."""
    height, width = images.shape[1:3]
    for i, image in enumerate(images):
        matrix, flipped = random_affine(rng, settings, height, width)
        images[i] = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT_101)
        if points is not None:
            moved = points[i] @ matrix[:, :2].T + matrix[:, 2]
            points[i] = moved[mirror] if flipped else moved


def _jitter_colour(image: np.ndarray, rng: np.random.Generator,
                   settings: AugmentSettings) -> np.ndarray:
    """Brightness scales, contrast stretches about the mean luma, saturation about each pixel's
    luma; then grayscale with probability `grayscale_p`."""
    x = image.astype("float32")
    x *= 1.0 + rng.uniform(-settings.brightness, settings.brightness)
    mean = float((x @ LUMA_RGB).mean())
    x = (x - mean) * (1.0 + rng.uniform(-settings.contrast, settings.contrast)) + mean
    luma = (x @ LUMA_RGB)[..., None]
    x = luma + (x - luma) * (1.0 + rng.uniform(-settings.saturation, settings.saturation))
    if rng.random() < settings.grayscale_p:
        x = np.repeat((x @ LUMA_RGB)[..., None], 3, axis=-1)
    return np.clip(np.rint(x), 0, 255).astype("uint8")


def _downscale(image: np.ndarray, rng: np.random.Generator, minimum: float) -> np.ndarray:
    height, width = image.shape[:2]
    factor = rng.uniform(minimum, 1.0)
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _jpeg(image: np.ndarray, rng: np.random.Generator, quality_min: int) -> np.ndarray:
    """JPEG round trip; OpenCV codes BGR, so the channels are reversed there and back."""
    quality = int(rng.integers(quality_min, 101))
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode an augmented image")
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])


def _degrade(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Resolution jitter: downscale and back, then blur, then JPEG, each with its probability."""
    if rng.random() < settings.downscale_p:
        image = _downscale(image, rng, settings.downscale_min)
    if rng.random() < settings.blur_p:
        sigma = rng.uniform(settings.blur_sigma / 2, settings.blur_sigma)
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)
    if rng.random() < settings.jpeg_p:
        image = _jpeg(image, rng, settings.jpeg_quality_min)
    return image


def augment_batch(images: np.ndarray, rng: np.random.Generator, settings: AugmentSettings,
                  points: np.ndarray | None = None,
                  mirror: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Augmented copies of uint8 `images` (B, H, W, 3) and of `points` (B, K, 2; pixel x, y).

    `mirror`: `flipped_points = points[:, mirror]`, needed when flipping with points. Returns
    new arrays (the inputs, e.g. a memory map, are never written); points come back as float.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (B, H, W, 3), got {images.dtype} {images.shape}")
    images = images.copy()
    if points is not None:
        points = np.asarray(points)
        points = points.astype(np.result_type(points.dtype, np.float32))
        if points.shape[:1] != images.shape[:1] or points.ndim != 3 or points.shape[2] != 2:
            raise ValueError(f"expected points (B, K, 2) for {len(images)} images, "
                             f"got {points.shape}")
        if settings.flip:
            mirror = _check_mirror(mirror, points.shape[1])
    if settings.geometric:
        _geometry(images, rng, settings, points, mirror)
    for i in range(len(images)):
        if settings.photometric:
            images[i] = _jitter_colour(images[i], rng, settings)
        images[i] = _degrade(images[i], rng, settings)
    return images, points
