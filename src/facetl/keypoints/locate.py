"""Keypoints on whole photos with a model trained on face crops: find the face, crop, predict,
crop again around the predicted points, predict again; points back in the photo's pixels.

The first box comes from dlib's HOG face detector (its box mapped to the training crops'
convention by a calibration fitted on training images) or, where it finds no face (or the
detector is off), from the prior: where faces sit in the training frames. So every image gets
a prediction, and `sources` says which box it started from ("dlib" or "prior"). Each later
pass crops around the previous pass's points with the training margin. Evaluation and
`facetl predict` run this same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facetl.keypoints.crops import (
    DetectorCalibration,
    box_from_points,
    crop_image,
    from_crop,
    prior_square,
    square_to_box,
)
from facetl.keypoints.layout import POINTS, mirror_points

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 crops (B, S, S, 3) -> (B, 136) fractions
Detection = tuple[float, float, float, float]  # left, top, right, bottom


def detect_largest(image: np.ndarray, upsample: int) -> Detection | None:
    """The largest face dlib's HOG detector finds in an RGB image, or None."""
    from facetl.faces.dlib_models import face_detector  # dlib loads only when detecting

    found = face_detector()(np.ascontiguousarray(image), upsample)
    if not len(found):
        return None
    best = max(found, key=lambda r: r.width() * r.height())
    return (best.left(), best.top(), best.right() + 1, best.bottom() + 1)


def detect_all(images: list[np.ndarray], detector: str, upsample: int) -> list[Detection | None]:
    if detector == "none":
        return [None] * len(images)
    return [detect_largest(image, upsample) for image in images]


def first_boxes(images: list[np.ndarray], detections: list[Detection | None],
                calibration: DetectorCalibration, prior: dict,
                margin: float) -> tuple[np.ndarray, list[str]]:
    """(N, 3) first crop boxes and where each came from: "dlib" or "prior"."""
    squares, sources = [], []
    for image, detection in zip(images, detections, strict=True):
        if detection is None:
            squares.append(prior_square(prior, image.shape[1], image.shape[0]))
            sources.append("prior")
        else:
            squares.append(calibration.square(detection))
            sources.append("dlib")
    return square_to_box(np.array(squares).reshape(-1, 3), margin), sources


def predict_crops(predict: Predict, crops: np.ndarray, flip_tta: bool) -> np.ndarray:
    """(B, 68, 2) points in crop pixels; with `flip_tta`, averaged with the prediction on the
    mirrored crops, mapped back (x -> S - 1 - x, left and right points swapped)."""
    size = crops.shape[1]
    points = predict(crops).reshape(-1, POINTS, 2) * size
    if flip_tta:
        mirrored = predict(np.ascontiguousarray(crops[:, :, ::-1])).reshape(-1, POINTS, 2) * size
        points = (points + mirror_points(mirrored, size)) / 2
    return points


@dataclass
class Located:
    points: np.ndarray  # (N, 68, 2) in pixels of each image, after the last pass
    boxes: np.ndarray  # (N, 3) the last pass's crop boxes
    sources: list[str]  # where the first box came from
    passes: list[np.ndarray]  # the points after each pass
    pass_boxes: list[np.ndarray]  # the crop boxes of each pass


def locate(predict: Predict, images: list[np.ndarray], boxes: np.ndarray, sources: list[str],
           size: int, margin: float, passes: int, flip_tta: bool) -> Located:
    """`passes` rounds of crop -> predict, each cropping around the previous points."""
    per_pass, pass_boxes = [], []
    for number in range(passes):
        if number:
            boxes = box_from_points(per_pass[-1], margin)
        crops = np.stack([crop_image(image, box, size) for image, box in zip(images, boxes,
                                                                             strict=True)])
        per_pass.append(from_crop(predict_crops(predict, crops, flip_tta), boxes, size))
        pass_boxes.append(np.asarray(boxes, dtype="float64").reshape(-1, 3))
    return Located(per_pass[-1], pass_boxes[-1], sources, per_pass, pass_boxes)


def keras_predict(model) -> Predict:
    return lambda crops: model.predict(np.asarray(crops, dtype="float32"), batch_size=32,
                                       verbose=0)


def locate_with_meta(model, meta: dict, images: list[np.ndarray],
                     detections: list[Detection | None] | None = None,
                     passes: int | None = None, flip_tta: bool | None = None) -> Located:
    """Everything from a saved model's `model.json` (crop size, margin, detector, calibration,
    prior, passes, flip averaging); `passes` and `flip_tta` override it (for ablations)."""
    if detections is None:
        detections = detect_all(images, meta["detector"], meta["upsample"])
    boxes, sources = first_boxes(images, detections, DetectorCalibration(**meta["calibration"]),
                                 meta["prior"], meta["margin"])
    return locate(keras_predict(model), images, boxes, sources, meta["input_size"],
                  meta["margin"], meta["passes"] if passes is None else passes,
                  meta["flip_tta"] if flip_tta is None else flip_tta)
