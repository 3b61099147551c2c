"""68 keypoints from image files, in pixels of each input image (`facetl predict`).

A model of the chapter's recipe sees the whole photo resized to a square and predicts
fractions of its width and height. A model of the finetune recipe finds the face first (dlib's
detector, or the fallback box where it finds none: `"box": "dlib" | "prior"` says which),
predicts on the crop, crops again around those points and predicts again (`model.json` says
how many passes and whether mirrored crops are averaged in).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.keypoints import losses  # noqa: F401  registers WingLoss: saved models load
from facetl.keypoints.config import PIPELINE
from facetl.keypoints.locate import locate_with_meta
from facetl.models import inference
from facetl.models.inference import Loader, chunks, read_input, stream_predictions
from facetl.models.saving import load_task_model


def load_keypoints(models_root: Path = Path("models"),
                   load: Loader | None = None) -> tuple[keras.Model, dict]:
    """`load`: another runtime's loader (`facetl predict --runtime onnx`), else Keras'."""
    if load is not None:
        return load("keypoints", models_root)
    return load_task_model("keypoints", models_root, PIPELINE)


def predict_keypoints(files: list[str], models_root: Path = Path("models"),
                      loaded: tuple[keras.Model, dict] | None = None,
                      overlay: str | None = None) -> list[dict]:
    """`loaded`: what `load_keypoints` returned, else the model is loaded from `models_root`.
    `overlay`: a folder that gets each image with its points drawn (`facetl predict
    --overlay`)."""
    model, meta = loaded or load_keypoints(models_root)
    results = (predict_on_faces(files, model, meta) if meta.get("recipe") == "finetune"
               else predict_on_frames(files, model, meta))
    if overlay:
        write_overlays(results, Path(overlay))
    return results


def predict_on_frames(files: list[str], model, meta: dict) -> list[dict]:
    """The chapter's recipe: the whole photo in, fractions of its sides out."""

    def prepare(image: np.ndarray):
        height, width = image.shape[:2]
        return resize_square(image, meta["input_size"])[None], (width, height)

    def describe(file: str, outputs: np.ndarray, size: tuple[int, int]) -> dict:
        points = outputs[0].reshape(-1, 2) * np.asarray(size, dtype="float64")
        return {"image": file, "keypoints": np.round(points, 2).tolist()}

    return stream_predictions(files, model, prepare, describe)


def predict_on_faces(files: list[str], model, meta: dict) -> list[dict]:
    """Batches of files (memory flat in their number); an unreadable file is its own entry."""
    results: list[dict] = []
    for batch in chunks(files, inference.BATCH):
        images, slots = [], []
        for file in batch:
            try:
                images.append(read_input(file))
            except FacetlError as exc:
                results.append({"image": file, "error": str(exc)})
                continue
            slots.append(len(results))
            results.append({"image": file})
        if not images:
            continue
        located = locate_with_meta(model, meta, images)
        for slot, points, source in zip(slots, located.points, located.sources, strict=True):
            results[slot] |= {"keypoints": np.round(points, 2).tolist(), "box": source}
    return results


def write_overlays(results: list[dict], folder: Path) -> None:
    """Each input image with its predicted points, as `folder/<name>_keypoints.png`.

    Adds the written path to each result as "overlay"; same-named inputs get numbered files.
    """
    from facetl.keypoints.plots import write_overlay  # here: it loads matplotlib

    used: set[str] = set()
    for number, result in enumerate(results):
        if "error" in result:
            continue
        name = f"{Path(result['image']).stem}_keypoints.png"
        if name in used:
            name = f"{Path(result['image']).stem}_{number}_keypoints.png"
        used.add(name)
        write_overlay(read_input(result["image"]), np.array(result["keypoints"]), folder / name)
        result["overlay"] = str(folder / name)
