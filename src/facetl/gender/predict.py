"""Gender from photo files: each photo through the face front end the model was trained
behind, then the model (shared by `facetl predict` and the out-of-distribution evaluation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.detect import check_settings, face_crop
from facetl.models.export import load_task_model
from facetl.models.inference import stream_predictions


def predict_gender(files: list[str], models_root: Path = Path("models")) -> list[dict]:
    """One dict per file, in order: gender, p_<positive class>, and what the front end did.

    `face` is found (HOG), fallback (padded HOG or CNN), none (centred square) or off (trained
    without alignment); `faces` is how many faces it saw. Unreadable files get an `error` entry.
    """
    model, meta = load_task_model("gender", models_root)
    faces = meta.get("faces", {"align": False})
    if faces["align"]:
        try:
            check_settings(faces)
        except FacetlError as exc:  # trained behind an older front end (e.g. the LBP cascade)
            raise FacetlError(f"{models_root / 'gender' / 'model.json'}: the model's `faces` "
                              f"settings do not fit this front end ({exc}); retrain it with "
                              f"`dvc repro`") from exc
    negative, positive = meta["classes"]

    def prepare(image: np.ndarray):
        crop = face_crop(image, faces)
        return resize_square(crop.image, meta["input_size"]), crop

    def describe(file: str, output: np.ndarray, crop) -> dict:
        p = float(output[0])
        return {"image": file, "gender": positive if p >= 0.5 else negative,
                f"p_{positive}": round(p, 5), "face": crop.status, "faces": crop.faces}

    return stream_predictions(files, model, prepare, describe)
