"""The face front end: find the largest face in a photo and align it to a square crop.

The detection chain is the one benchmarks/face_detection.py measured best
(docs/face-front-end.md): dlib's HOG detector on the photo resized to one long side (a
bounded cost per photo); if it finds nothing, HOG again on that photo inside a black border,
which recovers faces that fill the frame (HOG needs some room around a face); optionally dlib's
CNN detector; and as a last resort the centred square of the photo taken as the face box.
Every box, the last resort's too, is aligned with dlib's 5-point landmarks (eye corners, nose):
rotated upright and scaled so the eyes land at the same place in every crop, like dlib's face
chips, so tight face crops are aligned even when no detector answers. Every photo gets a crop
and a status (`found`, `fallback`, `none`), so nothing is dropped silently; the `faces` stage
and `facetl predict` run this same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facetl.core.errors import FacetlError
from facetl.faces.dlib_models import cnn_face_detector, face_detector, landmark_predictor

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo's pixels
KEYS = ("align", "upsample", "detect_long_side", "pad", "cnn", "crop_size", "margin")
HOG_WINDOW = 80  # dlib's HOG detector looks for faces of about 80 px and up (before upsampling)
CNN_LONG_SIDE = 200  # the CNN stage as measured: photo at long side 200, no upsampling


class FaceFrontEndError(FacetlError):
    """OpenCV or dlib failed on one photo: that photo's own error, never the batch's end."""


@dataclass(frozen=True)
class FaceCrop:
    """A photo's crop and how it was made; `box` is (x0, y0, x1, y1) in the photo's pixels."""

    image: np.ndarray
    status: str  # found (HOG) | fallback (padded HOG, CNN) | none (centred square) | off
    faces: int = 0  # faces the detector that answered saw (0: none answered)
    box: Box | None = None  # the box aligned: a face's, or the centred square's


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The `faces` params, validated: a wrong value is an error naming it and saying the fix."""
    if "fallback" in settings:
        raise FacetlError("params.yaml: faces.fallback is gone (its LBP cascade was at chance): "
                          "remove it; faces.pad (padded HOG retry) and faces.cnn (dlib's CNN "
                          "detector) are the fallbacks now (docs/face-front-end.md)")
    if "size" in settings:
        raise FacetlError("params.yaml: faces.size is renamed faces.crop_size (DVC's run cache "
                          "ignores keys named `size`, treeverse/dvc#10296): rename it")
    missing = sorted(set(KEYS) - settings.keys())
    if missing:
        raise FacetlError(f"params.yaml: `faces` lacks {missing} (docs/settings.md)")
    for key in ("align", "cnn"):
        if not isinstance(settings[key], bool):
            raise FacetlError(f"params.yaml: faces.{key} must be true or false, "
                              f"got {settings[key]!r}")
    upsample, long_side, pad = (settings[k] for k in ("upsample", "detect_long_side", "pad"))
    if not isinstance(upsample, int) or isinstance(upsample, bool) or not 0 <= upsample <= 3:
        raise FacetlError(f"params.yaml: faces.upsample must be 0, 1, 2 or 3 (HOG doubles the "
                          f"photo that many times), got {upsample!r}")
    if not isinstance(long_side, int) or isinstance(long_side, bool) or long_side < HOG_WINDOW:
        raise FacetlError(f"params.yaml: faces.detect_long_side must be a whole number of "
                          f"pixels >= {HOG_WINDOW} (HOG's window; 240 is the measured value), "
                          f"got {long_side!r}")
    if not is_number(pad) or not 0 <= pad <= 1:
        raise FacetlError(f"params.yaml: faces.pad must be a share of the long side from 0 "
                          f"(no padded retry) to 1 (0.3 is the measured value), got {pad!r}")
    size = settings["crop_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 16:
        raise FacetlError(f"params.yaml: faces.crop_size must be a whole number of pixels >= 16, "
                          f"got {size!r}")
    if not is_number(settings["margin"]) or not 0 <= settings["margin"] <= 2:
        raise FacetlError(f"params.yaml: faces.margin must be between 0 and 2 (dlib_face "
                          f"expects 0.25), got {settings['margin']!r}")
    return settings


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` scaled by `scale`: bicubic when enlarging, area averaging (no aliasing) when
    shrinking. A side never rounds to 0 pixels: a 4000 x 8 banner at long side 240 keeps a
    1-pixel short side (OpenCV refuses an empty size), where no face can be seen anyway."""
    if scale == 1.0:
        return image
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    height, width = image.shape[:2]
    if round(min(height, width) * scale) >= 1:  # OpenCV's own rounding of fx, fy
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=interpolation)


def detection_view(image: np.ndarray, long_side: int, pad: float = 0.0
                   ) -> tuple[np.ndarray, float]:
    """What a detector sees, and its scale: the photo resized so its long side is `long_side`
    (every photo costs about the same), inside a black border of `pad` x the long side."""
    scale = long_side / max(image.shape[:2])
    view = resized(image, scale)
    if pad:
        border = int(round(pad * max(view.shape[:2])))
        view = cv2.copyMakeBorder(view, border, border, border, border, cv2.BORDER_CONSTANT,
                                  value=0)
    return view, scale


def to_photo(found: Iterable[tuple[float, float, float, float]], view: np.ndarray,
             scale: float, image: np.ndarray) -> list[Box]:
    """Boxes seen in `detection_view`, in the photo's pixels; a face centred in the border
    (outside the photo) is dropped.

    Mapped about the centres: the border adds the same on every side, so only the scale moves a
    position relative to the centre.
    """
    (view_h, view_w), (h, w) = view.shape[:2], image.shape[:2]
    boxes = []
    for left, top, right, bottom in found:
        x0, x1 = ((x - view_w / 2) / scale + w / 2 for x in (left, right))
        y0, y1 = ((y - view_h / 2) / scale + h / 2 for y in (top, bottom))
        if 0 <= (x0 + x1) / 2 < w and 0 <= (y0 + y1) / 2 < h:
            boxes.append((round(x0), round(y0), round(x1), round(y1)))
    return boxes


def hog_faces(image: np.ndarray, long_side: int, pad: float, upsample: int) -> list[Box]:
    """dlib's HOG detector on the photo at `long_side`, in a border of `pad` (0: none)."""
    view, scale = detection_view(image, long_side, pad)
    found = [(r.left(), r.top(), r.right(), r.bottom()) for r in face_detector()(view, upsample)]
    return to_photo(found, view, scale, image)


def cnn_faces(image: np.ndarray) -> list[Box]:
    """dlib's CNN (MMOD) detector on the photo at long side CNN_LONG_SIDE, as measured."""
    view, scale = detection_view(image, CNN_LONG_SIDE)
    found = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
             for d in cnn_face_detector()(view, 0)]
    return to_photo(found, view, scale, image)


def centre_square(image: np.ndarray) -> Box:
    """The last resort's face box: the centred square, side the photo's short side. A photo
    with no face found is often a tight face crop, which landmarks on this box still align."""
    h, w = image.shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) / 2, (h - side) / 2
    return (round(x0), round(y0), round(x0 + side - 1), round(y0 + side - 1))


def area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def largest(boxes: list[Box]) -> Box:
    return max(boxes, key=area)


def landmarks(image: np.ndarray, box: Box):
    """dlib's 5 points (two corners of each eye, the base of the nose) inside `box`."""
    import dlib

    return landmark_predictor()(image, dlib.rectangle(*box))


def eye_centres(points) -> np.ndarray:
    """(2, 2): the centres of the two eyes, from dlib's 5 points (0-1 one eye, 2-3 the other)."""
    xy = np.array([(p.x, p.y) for p in points.parts()], dtype="float64")
    return np.stack([xy[0:2].mean(axis=0), xy[2:4].mean(axis=0)])


def align(image: np.ndarray, box: Box, size: int, margin: float) -> np.ndarray:
    """The face in `box` rotated upright and scaled by its landmarks, `margin` around it."""
    import dlib

    return dlib.get_face_chip(image, landmarks(image, box), size=size, padding=margin)


def detect(image: np.ndarray, settings: Mapping[str, Any]) -> tuple[str, list[Box]]:
    """Which stage answered (found / fallback / none) and the boxes it saw, in the photo's
    pixels; `settings` are the `faces` params. `none` comes with no boxes."""
    long_side, upsample = settings["detect_long_side"], settings["upsample"]
    boxes = hog_faces(image, long_side, 0.0, upsample)
    if boxes:
        return "found", boxes
    if settings["pad"]:
        boxes = hog_faces(image, long_side, settings["pad"], upsample)
        if boxes:
            return "fallback", boxes
    if settings["cnn"]:
        boxes = cnn_faces(image)
        if boxes:
            return "fallback", boxes
    return "none", []


def chosen_boxes(image: np.ndarray, boxes: list[Box], every_face: bool = False) -> list[Box]:
    """The boxes to align, largest first: the largest alone (every one with `every_face`), or
    the centred square when none was found."""
    return sorted(boxes, key=area, reverse=True)[:None if every_face else 1] or [
        centre_square(image)]


def face_crops(image: np.ndarray, settings: Mapping[str, Any],
               every_face: bool = False) -> list[FaceCrop]:
    """The photo's aligned largest face, or with `every_face` each face found, largest first
    (with none found: the aligned centred square alone); `settings` are the `faces` params.
    With `align: false` the photo passes through unchanged."""
    if not settings["align"]:
        return [FaceCrop(image, "off")]
    image = np.ascontiguousarray(image)
    try:
        status, boxes = detect(image, settings)
        return aligned_crops(image, status, boxes, settings, every_face)
    except (cv2.error, RuntimeError) as exc:  # OpenCV's or dlib's refusal of this one photo
        height, width = image.shape[:2]
        raise FaceFrontEndError(
            f"the face front end failed on this {width} x {height} photo ({type(exc).__name__}: "
            f"{str(exc).strip()}); the other photos are not affected; please report it with "
            "the photo") from exc


def aligned_crops(image: np.ndarray, status: str, boxes: list[Box],
                  settings: Mapping[str, Any], every_face: bool = False) -> list[FaceCrop]:
    """The crops of what `detect` answered (with `none` and no boxes: the centred square)."""
    image = np.ascontiguousarray(image)
    return [FaceCrop(align(image, box, settings["crop_size"], settings["margin"]), status,
                     len(boxes), box) for box in chosen_boxes(image, boxes, every_face)]


def face_crop(image: np.ndarray, settings: Mapping[str, Any]) -> FaceCrop:
    """The photo's aligned largest face (see `face_crops`)."""
    return face_crops(image, settings)[0]
