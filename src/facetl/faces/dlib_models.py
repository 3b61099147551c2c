"""dlib's pretrained models: the files `face_recognition_models` installs, loaded once per process.

Kept apart from the Keras layer (dlib_face.py) so the faces stage's workers import no TensorFlow.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

from facetl.core.errors import FacetlError

PACKAGED = "face_recognition_models"  # the `weights` value naming the packaged model file


def packaged_model_file(kind: str) -> str:
    """A model file `face_recognition_models` installs: "recognition", "landmarks5" or "cnn"."""
    try:
        with warnings.catch_warnings():  # it imports pkg_resources, deprecated in setuptools
            warnings.simplefilter("ignore")
            import face_recognition_models as models
    except ImportError as exc:
        raise FacetlError(
            "dlib's model files come from the `face-recognition-models` package: install the "
            f"project's requirements.txt ({exc})"
        ) from exc
    locate = {"recognition": models.face_recognition_model_location,
              "landmarks5": models.pose_predictor_five_point_model_location,
              "cnn": models.cnn_face_detector_model_location}[kind]
    return locate()


@functools.cache
def face_detector():
    """dlib's HOG + linear SVM frontal face detector (built into dlib, no model file)."""
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def cnn_face_detector():
    """dlib's CNN (MMOD) face detector: finds some faces HOG misses, at about twice the time.

    Loaded only when `faces.cnn` is on; the file is mmod_human_face_detector.dat (CC0 1.0).
    """
    import dlib

    return dlib.cnn_face_detection_model_v1(packaged_model_file("cnn"))


@functools.cache
def landmark_predictor():
    """dlib's 5-point landmarks: two corners of each eye and the base of the nose."""
    import dlib

    return dlib.shape_predictor(packaged_model_file("landmarks5"))


def recognition_model_file(weights: str) -> str:
    """The `.dat` path a `backbones.dlib_face.weights` value names."""
    return packaged_model_file("recognition") if weights == PACKAGED else weights


@functools.cache
def recognition_model(weights: str):
    """dlib's ResNet face descriptor from the packaged file (`weights` = PACKAGED) or a path."""
    import dlib

    file = recognition_model_file(weights)
    if not Path(file).is_file():
        raise FacetlError(f"backbones.dlib_face.weights: no such file {weights!r}; use "
                          f"`{PACKAGED}` or the path of a dlib face recognition model (.dat)")
    try:
        return dlib.face_recognition_model_v1(file)
    except RuntimeError as exc:
        raise FacetlError(f"{weights}: cannot load as a dlib face recognition model "
                          f"({exc})") from exc
