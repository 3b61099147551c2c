"""Square face crops and the points that go with them, train and test alike.

A box is (x0, y0, side) in pixels of the original image: the crop of size S shows the square
from (x0, y0) with that side, so a point maps by one affine, `u = (x - x0) * S / side`, and
back by its inverse. Pixel centres sit at integer coordinates on both sides, as OpenCV's
`warpAffine` has them, so the pixels and the points move by the very same affine.

Where the box comes from:
- training: the landmarks' own box (a square around them) times `margin`;
- inference: a face detector's box mapped to that convention (`DetectorCalibration`, fitted
  on training images), or, where no face is found, `prior_box` (where faces sit in the
  training frames); then the second pass: the box of the points the first pass predicted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

Box = np.ndarray  # (3,) or (N, 3): x0, y0, side


def landmark_square(points: np.ndarray) -> np.ndarray:
    """(..., 3) centre x, centre y and side of the square around each (..., 68, 2) point set:
    centred on the points' bounding box, its side the box's longer side."""
    points = np.asarray(points, dtype="float64")
    low, high = points.min(axis=-2), points.max(axis=-2)
    centre = (low + high) / 2
    return np.concatenate([centre, (high - low).max(axis=-1, keepdims=True)], axis=-1)


def square_to_box(square: np.ndarray, margin: float) -> Box:
    """Centre-and-side squares (..., 3) -> crop boxes (..., 3), `margin` times as wide."""
    square = np.asarray(square, dtype="float64")
    side = np.maximum(square[..., 2:3] * margin, 1.0)  # never a zero-size crop
    return np.concatenate([square[..., :2] - side / 2, side], axis=-1)


def box_from_points(points: np.ndarray, margin: float) -> Box:
    """The crop box of each point set: the training crops' rule, and the second pass's."""
    return square_to_box(landmark_square(points), margin)


def to_crop(points: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Points (..., 68, 2) in original pixels -> pixels of the size x size crop of `box`."""
    box = np.asarray(box, dtype="float64")[..., None, :]
    return (np.asarray(points, dtype="float64") - box[..., :2]) * (size / box[..., 2:3])


def from_crop(points: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The inverse of `to_crop`: crop pixels -> original pixels."""
    box = np.asarray(box, dtype="float64")[..., None, :]
    return np.asarray(points, dtype="float64") * (box[..., 2:3] / size) + box[..., :2]


def crop_matrix(box: Box, size: int) -> np.ndarray:
    """The 2x3 affine from original pixels to crop pixels (what `to_crop` applies)."""
    x0, y0, side = (float(v) for v in box)
    scale = size / side
    return np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])


def crop_image(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The size x size RGB crop of `box`; outside the image is black.

    A crop much smaller than its box is first shrunk with an area filter (no aliasing), and
    the affine is composed so that the points' mapping (`to_crop`) stays exact.
    """
    matrix = crop_matrix(box, size)
    scale = matrix[0, 0]
    height, width = image.shape[:2]
    if scale < 0.5:
        small_w, small_h = max(1, round(width * scale * 2)), max(1, round(height * scale * 2))
        image = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        fx, fy = small_w / width, small_h / height
        # cv2.resize maps x -> (x + 0.5) * fx - 0.5; invert it, then apply the crop's affine.
        back = np.array([[1 / fx, 0.0, 0.5 / fx - 0.5], [0.0, 1 / fy, 0.5 / fy - 0.5],
                         [0.0, 0.0, 1.0]])
        matrix = matrix @ back
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


@dataclass(frozen=True)
class DetectorCalibration:
    """Maps a detector's box to the landmarks' square: centre offsets (as fractions of the
    detector box's side) and the ratio of sides, medians over training images."""

    dx: float = 0.0
    dy: float = 0.0
    ratio: float = 1.0
    fitted_on: int = 0

    def square(self, detection: tuple[float, float, float, float]) -> np.ndarray:
        """(cx, cy, side) of the landmarks' square expected for a detector box (l, t, r, b)."""
        left, top, right, bottom = (float(v) for v in detection)
        side = ((right - left) + (bottom - top)) / 2
        return np.array([(left + right) / 2 + self.dx * side, (top + bottom) / 2 + self.dy * side,
                         self.ratio * side])

    def detection(self, square: np.ndarray) -> tuple[float, float, float, float]:
        """The inverse: the detector box (l, t, r, b) that would give this square."""
        side = float(square[2]) / self.ratio
        cx, cy = float(square[0]) - self.dx * side, float(square[1]) - self.dy * side
        return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)

    def as_dict(self) -> dict:
        return asdict(self)


def fit_detector_calibration(detections: list[tuple[float, float, float, float]],
                             squares: np.ndarray, minimum: int = 5) -> DetectorCalibration:
    """Median offsets and side ratio of landmark squares against their detector boxes; the
    identity where fewer than `minimum` faces were detected."""
    if len(detections) < minimum:
        return DetectorCalibration(fitted_on=len(detections))
    det = np.asarray(detections, dtype="float64")
    side = ((det[:, 2] - det[:, 0]) + (det[:, 3] - det[:, 1])) / 2
    squares = np.asarray(squares, dtype="float64")
    return DetectorCalibration(
        dx=float(np.median((squares[:, 0] - (det[:, 0] + det[:, 2]) / 2) / side)),
        dy=float(np.median((squares[:, 1] - (det[:, 1] + det[:, 3]) / 2) / side)),
        ratio=float(np.median(squares[:, 2] / side)), fitted_on=len(det))


def fit_prior(squares: np.ndarray, sizes: np.ndarray) -> dict:
    """Where the landmarks' square sits in a training frame: medians of its centre as
    fractions of width and height and of its side as a fraction of the shorter side."""
    squares, sizes = np.asarray(squares, "float64"), np.asarray(sizes, "float64")  # sizes: w, h
    return {"cx": float(np.median(squares[:, 0] / sizes[:, 0])),
            "cy": float(np.median(squares[:, 1] / sizes[:, 1])),
            "side": float(np.median(squares[:, 2] / sizes.min(axis=1)))}


def prior_square(prior: dict, width: int, height: int) -> np.ndarray:
    """The fallback: the training frames' typical face square placed in a width x height image."""
    return np.array([prior["cx"] * width, prior["cy"] * height,
                     prior["side"] * min(width, height)])
