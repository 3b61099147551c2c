"""Photos in which the front end finds no face (`face: none`), calibrated as their own group.

The model's temperature is fitted on validation people, who all have faces: a picture with no
face in it got answers as sure as a face's (a 40x40 square of noise: p(male) 0.9995). Such a
picture has no right answer; a photo whose face the detector missed has one. So the no-face
temperature is fitted on both, one to one: the validation photos with their labels, and
pictures with no face (`faces.faceless`, through the same front end) with the target 1/2. The
group's answers then sit between: sure where a photo still shows its person, nearer 1/2 on
noise. It is stored in model.json (`no_face`) and applied by evaluation and `facetl predict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from facetl.data.images import resize_square
from facetl.faces.detect import aligned_crops
from facetl.faces.faceless import faceless_pictures
from facetl.models.calibration import fit_temperature, rescaled, temperature_of

NONE = "none"  # the front end's status for a photo in which no detector found a face
MAX_PICTURES = 400  # faceless pictures: as many as validation photos, up to this (weighted
#                    to weigh as much as them)


def faceless_inputs(faces: Mapping[str, Any], input_size: int, count: int,
                    seed: int) -> np.ndarray:
    """What the model is shown for `count` faceless pictures: the front end's `none` crop.
    The detectors are not run (they take ~0.1 s a picture): they find no face in these
    pictures (tests/test_no_face.py, benchmarks/no_face.py check it)."""
    return np.stack([resize_square(aligned_crops(picture, NONE, [], faces)[0].image,
                                   input_size)
                     for picture in faceless_pictures(count, seed)])


def no_face_calibration(model: keras.Model, faces: Mapping[str, Any], input_size: int,
                        p_validation: np.ndarray, labels_validation: np.ndarray,
                        seed: int) -> dict[str, Any] | None:
    """model.json's `no_face` entry for `model` (calibrated on `p_validation`, its answers on
    the validation photos); None where the front end is off (there is no such group)."""
    if not faces["align"]:
        return None
    temperature = temperature_of(model)
    inputs = faceless_inputs(faces, input_size, min(len(p_validation), MAX_PICTURES), seed)
    p_faceless = model.predict(inputs, verbose=0)[:, 0]
    # the raw probabilities (temperature 1) of both sets, fitted together
    raw = rescaled(np.concatenate([p_validation, p_faceless]), temperature)
    targets = np.concatenate([labels_validation, np.full(len(p_faceless), 0.5)])
    weights = np.concatenate([np.ones(len(p_validation)),
                              np.full(len(p_faceless), len(p_validation) / len(p_faceless))])
    return {"temperature": fit_temperature(raw, targets, weights),
            "model_temperature": temperature,
            "fitted_on": {"validation_photos": len(p_validation),
                          "faceless_pictures": len(p_faceless)}}


def calibrated_by_face(p_positive: np.ndarray, face: np.ndarray,
                       no_face: Mapping[str, Any] | None) -> np.ndarray:
    """The model's probabilities with the `none` group's own temperature applied to that group
    (`face`: the front end's status per photo)."""
    p_positive = np.asarray(p_positive, dtype="float64")
    if not no_face:
        return p_positive
    none = np.asarray(face).astype(str) == NONE
    return np.where(none, rescaled(p_positive, no_face["model_temperature"]
                                   / no_face["temperature"]), p_positive)
