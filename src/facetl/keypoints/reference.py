"""A reference row for evaluation only: dlib's own 68-point shape predictor on the same frames.

The model file is `shape_predictor_68_face_landmarks.dat`, installed by `face-recognition-models`
0.3.0 (by Davis King, trained on the iBUG 300-W data set, whose terms exclude commercial use).
It is measured here as what a user would otherwise pick, never shipped or used by facetl's own
model. It runs on dlib's HOG detector box, as dlib intends; where the detector finds no face
it gets the square where faces sit in the training frames (`calibration` maps that square to
a detector-style box; evaluation passes the identity, so both recipes get the same row).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from facetl.core.errors import FacetlError
from facetl.keypoints.crops import DetectorCalibration, prior_square
from facetl.keypoints.layout import POINTS

SOURCE = ("dlib shape_predictor_68_face_landmarks.dat from face-recognition-models 0.3.0 "
          "(Davis King; trained on iBUG 300-W, non-commercial terms): a reference only")


@functools.cache
def predictor_68():
    try:
        with warnings.catch_warnings():  # it imports pkg_resources, deprecated in setuptools
            warnings.simplefilter("ignore")
            import face_recognition_models as models
    except ImportError as exc:
        raise FacetlError("the dlib reference needs `face-recognition-models` (requirements.txt)"
                          f": {exc}") from exc
    import dlib

    return dlib.shape_predictor(models.pose_predictor_model_location())


def dlib_points(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(68, 2) points of dlib's predictor for one detector-style box (l, t, r, b)."""
    import dlib

    left, top, right, bottom = (round(v) for v in box)
    shape = predictor_68()(np.ascontiguousarray(image), dlib.rectangle(left, top, right - 1,
                                                                        bottom - 1))
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(POINTS)], dtype=float)


def reference_points(images: list[np.ndarray], detections: list, calibration: DetectorCalibration,
                     prior: dict) -> np.ndarray:
    """(N, 68, 2) dlib's points on each image: its detector's box, else the fallback box."""
    points = []
    for image, detection in zip(images, detections, strict=True):
        if detection is None:
            detection = calibration.detection(prior_square(prior, image.shape[1], image.shape[0]))
        points.append(dlib_points(image, detection))
    return np.array(points).reshape(-1, POINTS, 2)
