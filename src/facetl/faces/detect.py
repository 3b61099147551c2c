"""The face front end: find the largest face in a photo and align it to a square crop.

Detection tries dlib's HOG detector, then (param `fallback: cascade`) OpenCV's LBP frontal-face
cascade (the copy scikit-image ships: OpenCV 5 no longer bundles its cascades), then keeps the
whole image. A detected face is aligned with dlib's 5-point landmarks (eye corners, nose):
rotated upright and scaled so the eyes land at the same place in every crop, like dlib's face
chips. Every photo gets a crop and a status (`found`, `fallback`, `none`), so nothing is
dropped silently; the `faces` stage and `facetl predict` run this same code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.dlib_models import face_detector, landmark_predictor

FALLBACKS = ("cascade", "image")
CASCADE_MIN_FRACTION = 0.2  # the cascade looks for faces at least this fraction of the photo


@dataclass(frozen=True)
class FaceCrop:
    """A photo's crop and how it was made; `box` is (x0, y0, x1, y1) in the photo's pixels."""

    image: np.ndarray
    status: str  # found (dlib) | fallback (cascade) | none (whole image) | off (no alignment)
    faces: int = 0  # faces the detector that answered saw
    box: tuple[int, int, int, int] | None = None


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The `faces` params, validated: a wrong value is an error naming it."""
    missing = sorted({"align", "upsample", "fallback", "size", "margin"} - settings.keys())
    if missing:
        raise FacetlError(f"params.yaml: `faces` lacks {missing}; see the README's front end")
    if not isinstance(settings["align"], bool):
        raise FacetlError(f"faces.align must be true or false, got {settings['align']!r}")
    if settings["fallback"] not in FALLBACKS:
        raise FacetlError(f"faces.fallback must be one of {FALLBACKS}, "
                          f"got {settings['fallback']!r}")
    if not isinstance(settings["upsample"], int) or not 0 <= settings["upsample"] <= 3:
        raise FacetlError(f"faces.upsample must be 0, 1, 2 or 3, got {settings['upsample']!r}")
    if not isinstance(settings["size"], int) or settings["size"] < 16:
        raise FacetlError(f"faces.size must be a whole number of pixels >= 16, "
                          f"got {settings['size']!r}")
    if not 0 <= settings["margin"] <= 2:
        raise FacetlError(f"faces.margin must be between 0 and 2, got {settings['margin']!r}")
    return settings


@functools.cache
def cascade():
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def largest(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def hog_faces(image: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
    return [(r.left(), r.top(), r.right(), r.bottom())
            for r in face_detector()(image, upsample)]


def cascade_faces(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    side = min(image.shape[:2])
    smallest = max(24, int(CASCADE_MIN_FRACTION * side))
    found = cascade().detect_multi_scale(image, scale_factor=1.1, step_ratio=1,
                                         min_size=(smallest, smallest), max_size=(side, side))
    return [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]


def landmarks(image: np.ndarray, box: tuple[int, int, int, int]):
    """dlib's 5 points (two corners of each eye, the base of the nose) inside `box`."""
    import dlib

    return landmark_predictor()(image, dlib.rectangle(*box))


def eye_centres(points) -> np.ndarray:
    """(2, 2): the centres of the two eyes, from dlib's 5 points (0-1 one eye, 2-3 the other)."""
    xy = np.array([(p.x, p.y) for p in points.parts()], dtype="float64")
    return np.stack([xy[0:2].mean(axis=0), xy[2:4].mean(axis=0)])


def align(image: np.ndarray, box: tuple[int, int, int, int], size: int,
          margin: float) -> np.ndarray:
    """The face in `box` rotated upright and scaled by its landmarks, `margin` around it."""
    import dlib

    return dlib.get_face_chip(image, landmarks(image, box), size=size, padding=margin)


def detect(image: np.ndarray, upsample: int, fallback: str
           ) -> tuple[str, list[tuple[int, int, int, int]]]:
    """Which detector answered (found / fallback / none) and the boxes it saw."""
    boxes = hog_faces(image, upsample)
    if boxes:
        return "found", boxes
    if fallback == "cascade":
        boxes = cascade_faces(image)
        if boxes:
            return "fallback", boxes
    return "none", []


def face_crop(image: np.ndarray, settings: dict[str, Any]) -> FaceCrop:
    """The photo's aligned largest face (or the whole photo), `settings` being the `faces` params.

    With `align: false` the photo passes through unchanged.
    """
    if not settings["align"]:
        return FaceCrop(image, "off")
    image = np.ascontiguousarray(image)
    status, boxes = detect(image, settings["upsample"], settings["fallback"])
    if status == "none":
        return FaceCrop(resize_square(image, settings["size"]), status)
    box = largest(boxes)
    return FaceCrop(align(image, box, settings["size"], settings["margin"]), status,
                    len(boxes), box)
