"""Gender from photo files: each photo through the face front end the model was trained
behind, then the model (shared by `facetl predict` and the out-of-distribution evaluation)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.detect import check_settings, face_crops
from facetl.gender.no_face import calibrated_by_face
from facetl.models.inference import Loader, stream_predictions
from facetl.models.saving import load_task_model

UNCERTAIN = "uncertain"  # the answer below --min-confidence


def load_gender(models_root: Path = Path("models"),
                load: Loader | None = None) -> tuple[keras.Model, dict]:
    """The gender model and its model.json, its face settings checked against this front end
    (loaded once by a caller that predicts many times: `facetl serve`). `load`: another
    runtime's loader (`facetl predict --runtime onnx`) in place of the Keras model's."""
    model, meta = (load or load_task_model)("gender", models_root)
    faces = meta.get("faces", {"align": False})
    if faces["align"]:
        try:
            check_settings(faces)
        except FacetlError as exc:  # trained behind an older front end (e.g. the LBP cascade)
            raise FacetlError(f"{models_root / 'gender' / 'model.json'}: the model's `faces` "
                              f"settings do not fit this front end ({exc}); retrain it with "
                              f"`dvc repro`") from exc
    return model, meta


def predict_gender(files: list[str], models_root: Path = Path("models"),
                   min_confidence: float | None = None, all_faces: bool = False,
                   loaded: tuple[keras.Model, dict] | None = None) -> list[dict]:
    """One dict per file, in order: gender, p_<positive class>, and what the front end did.

    `face` is found (HOG), fallback (padded HOG or CNN), none (centred square, answered with
    the no-face group's own calibration) or off (trained without alignment); `faces` is how
    many faces it saw. Unreadable files get an `error` entry.
    With `min_confidence`, a photo whose calibrated probability of the answer is below it gets
    the answer "uncertain" (its probability still given). With `all_faces`, the largest face
    answers as always and `all_faces` lists every face found, each with its box. `loaded`:
    what `load_gender` returned, else the model is loaded from `models_root`.
    """
    model, meta = loaded or load_gender(models_root)
    faces = meta.get("faces", {"align": False})
    negative, positive = meta["classes"]

    def prepare(image: np.ndarray):
        crops = face_crops(image, faces, every_face=all_faces)
        return np.stack([resize_square(c.image, meta["input_size"]) for c in crops]), crops

    def answer(p: float, face: str) -> dict:
        p = float(calibrated_by_face(np.array([p]), np.array([face]), meta.get("no_face"))[0])
        sure = max(p, 1 - p)
        said = positive if p >= 0.5 else negative
        return {"gender": UNCERTAIN if min_confidence is not None and sure < min_confidence
                else said, f"p_{positive}": round(p, 5)}

    def describe(file: str, outputs: np.ndarray, crops: list) -> dict:
        largest = crops[0]
        entry = {"image": file, **answer(float(outputs[0, 0]), largest.status),
                 "face": largest.status, "faces": largest.faces}
        if all_faces:
            entry["all_faces"] = [{"box": list(crop.box) if crop.box else None,
                                   **answer(float(output[0]), crop.status)}
                                  for crop, output in zip(crops, outputs, strict=True)]
        return entry

    return stream_predictions(files, model, prepare, describe)
