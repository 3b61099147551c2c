"""68 keypoints from image files, in pixels of each input image (`facetl predict`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetl.data.images import resize_square
from facetl.models.export import load_task_model
from facetl.models.inference import stream_predictions


def predict_keypoints(files: list[str], models_root: Path = Path("models")) -> list[dict]:
    """The model predicts fractions of the width and height, so any input size maps back."""
    model, meta = load_task_model("keypoints", models_root)

    def prepare(image: np.ndarray):
        height, width = image.shape[:2]
        return resize_square(image, meta["input_size"]), (width, height)

    def describe(file: str, output: np.ndarray, size: tuple[int, int]) -> dict:
        points = output.reshape(-1, 2) * np.asarray(size, dtype="float64")
        return {"image": file, "keypoints": np.round(points, 2).tolist()}

    return stream_predictions(files, model, prepare, describe)
