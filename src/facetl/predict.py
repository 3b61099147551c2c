"""Inference from the pipeline's saved models: image files in, JSON-ready dicts out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetl.core.errors import FacetlError
from facetl.data.images import ImageDecodeError, read_image, resize_square
from facetl.faces.detect import face_crop
from facetl.models.export import load_task_model

MODELS_ROOT = Path("models")


def read_input(file: str) -> np.ndarray:
    """An input image as RGB; a missing or unreadable file is a clear error."""
    try:
        return read_image(file)
    except FileNotFoundError as exc:
        raise FacetlError(f"{file}: no such image file") from exc
    except (ImageDecodeError, OSError) as exc:
        raise FacetlError(f"{file}: cannot read as an image ({exc})") from exc


def load_images(files: list[str], size: int,
                shapes: list[tuple[int, ...]] | None = None) -> np.ndarray:
    """The inputs resized for a model; `shapes`, when given, collects their original shapes."""
    batch = []
    for file in files:
        image = read_input(file)
        if shapes is not None:
            shapes.append(image.shape)
        batch.append(resize_square(image, size))
    return np.stack(batch)


def predict_gender(files: list[str], models_root: Path = MODELS_ROOT) -> list[dict]:
    """Each photo through the face front end the model was trained behind, then the model.

    `face` says what the front end did: found (dlib), fallback (cascade), none (whole photo),
    or off (trained without alignment); `faces` is how many faces it saw.
    """
    model, meta = load_task_model("gender", models_root)
    crops = [face_crop(read_input(file), meta.get("faces", {"align": False}))
             for file in files]
    batch = np.stack([resize_square(crop.image, meta["input_size"]) for crop in crops])
    p_positive = model.predict(batch, verbose=0)[:, 0]
    negative, positive = meta["classes"]
    return [{"image": file, "gender": positive if p >= 0.5 else negative,
             f"p_{positive}": round(float(p), 5), "face": crop.status, "faces": crop.faces}
            for file, p, crop in zip(files, p_positive, crops, strict=True)]


def predict_keypoints(files: list[str], models_root: Path = MODELS_ROOT) -> list[dict]:
    """68 (x, y) points per image, in pixels of that input image.

    The model predicts fractions of the width and height, so any input size maps back.
    """
    model, meta = load_task_model("keypoints", models_root)
    shapes: list[tuple[int, ...]] = []
    fractions = model.predict(load_images(files, meta["input_size"], shapes), verbose=0)
    sizes = np.array([(width, height) for height, width, *_ in shapes], dtype="float64")
    points = fractions.reshape(len(files), -1, 2) * sizes[:, None, :]
    return [{"image": file, "keypoints": np.round(p, 2).tolist()}
            for file, p in zip(files, points, strict=True)]


def write_overlays(results: list[dict], out_dir: Path) -> None:
    """Each input image with its predicted points, as `out_dir/<name>_keypoints.png`.

    Adds the written path to each result as "overlay"; same-named inputs get numbered files.
    """
    from facetl.keypoints.plots import write_overlay  # here: it loads matplotlib

    used: set[str] = set()
    for number, result in enumerate(results):
        name = f"{Path(result['image']).stem}_keypoints.png"
        if name in used:
            name = f"{Path(result['image']).stem}_{number}_keypoints.png"
        used.add(name)
        write_overlay(read_input(result["image"]), np.array(result["keypoints"]),
                      out_dir / name)
        result["overlay"] = str(out_dir / name)
